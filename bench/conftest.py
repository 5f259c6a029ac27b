"""Benchmarks run with `pytest bench/ --benchmark-only`."""
