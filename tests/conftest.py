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


def _keep_every_env_in_flight(pool, plan, t_of, ids) -> None:
    """Send each env of ``ids`` its next planned step. Every env stays in
    flight until the loop stops: ``recv`` needs ``batch_size`` envs in flight,
    and which envs finish first is up to the threads, so envs that stopped at
    the steps checked could leave fewer than a batch in flight while others
    still lag behind. ``plan`` has room for envs that run ahead."""
    if t_of[ids].max() >= len(plan):
        raise AssertionError("an env ran more than the plan's length ahead of the slowest")
    pool.send(plan[t_of[ids], ids], ids)


@pytest.fixture
def keep_every_env_in_flight():
    """The async tests' resend step (``_keep_every_env_in_flight``)."""
    return _keep_every_env_in_flight
