"""Shared fixtures. Tests import the installed package (or the in-place
development build when PYTHONPATH points at the checkout)."""

from __future__ import annotations

import numpy as np
import pytest

import pyenvpool


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def make_pool():
    """pyenvpool.make that closes every pool it made at teardown."""
    pools = []

    def _make(*args, **kwargs):
        pool = pyenvpool.make(*args, **kwargs)
        pools.append(pool)
        return pool

    yield _make
    for pool in pools:
        pool.close()
