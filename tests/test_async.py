"""Asynchronous send/recv (batch_size < num_envs), EnvPool style."""

from __future__ import annotations

import numpy as np
import pytest

import pyenvpool


def test_every_env_served_and_none_twice_without_a_send(make_pool):
    n, b = 64, 16
    pool = make_pool("CartPole-v1", n, batch_size=b, num_threads=2, seed=1)
    pool.reset()
    pool.send(np.zeros(n, np.int32), np.arange(n))
    outstanding = set(range(n))
    served = np.zeros(n, int)
    for _ in range(200):
        obs, reward, terminated, truncated, info = pool.recv()
        ids = info["env_id"].copy()
        assert len(ids) == b and len(set(ids.tolist())) == b
        assert set(ids.tolist()) <= outstanding  # only envs that were sent
        outstanding -= set(ids.tolist())
        served[ids] += 1
        assert obs["obs"].shape == (b, 4) and (reward == 1.0).all()
        pool.send(np.ones(b, np.int32), ids)
        outstanding |= set(ids.tolist())
    assert (served > 0).all()


def test_async_results_equal_sync_stepping(make_pool, keep_every_env_in_flight):
    """Each env's trajectory is the same whichever order the workers run it."""
    n, b, steps = 32, 8, 40
    sync = make_pool("CartPole-v1", n, seed=9)
    sync.reset()
    async_pool = make_pool("CartPole-v1", n, batch_size=b, num_threads=2, seed=9)
    async_pool.reset()
    rng = np.random.default_rng(0)
    # Twice the steps checked: see keep_every_env_in_flight in conftest.py.
    plan = rng.integers(0, 2, (2 * steps, n)).astype(np.int32)
    expected = [sync.step(plan[t], copy=True) for t in range(len(plan))]
    t_of = np.zeros(n, int)
    async_pool.send(plan[0], np.arange(n))
    while t_of.min() < steps:
        obs, reward, terminated, truncated, info = async_pool.recv()
        ids = info["env_id"].copy()
        for row, env in enumerate(ids):
            e_obs, e_rew, e_term, e_trunc, e_info = expected[t_of[env]]
            assert np.array_equal(obs["obs"][row], e_obs["obs"][env])
            assert reward[row] == e_rew[env] and terminated[row] == e_term[env]
            assert truncated[row] == e_trunc[env]
            if e_term[env] or e_trunc[env]:
                assert np.array_equal(
                    info["final_obs"]["obs"][row], e_info["final_obs"]["obs"][env]
                )
                assert info["episode_length"][row] == e_info["episode_length"][env]
            t_of[env] += 1
        keep_every_env_in_flight(async_pool, plan, t_of, ids)


def test_recv_returns_the_first_finished(make_pool):
    """Env 0 takes 50 ms a step, the others none. With two workers, one is busy
    with env 0 while the other serves the fast envs: recv keeps returning full
    batches of fast envs instead of waiting for env 0 in send order."""
    n, b = 16, 4
    pool = make_pool("Delay-v0", n, batch_size=b, num_threads=2)
    delays = np.zeros(n, np.int32)
    delays[0] = 50_000
    pool.reset(instances={"delay_us": delays})
    pool.send(np.zeros(n, np.int32), np.arange(n))
    fast_batches = 0
    for _ in range(6):
        *_, info = pool.recv()
        ids = info["env_id"].copy()
        if (ids != 0).all():
            fast_batches += 1
        pool.send(np.zeros(b, np.int32), ids)
    # In send order the first batch would have been [0, 1, 2, 3].
    assert fast_batches >= 5


def test_async_misuse_is_rejected(make_pool):
    pool = make_pool("CartPole-v1", 8, batch_size=4)
    pool.reset()
    with pytest.raises(ValueError, match="only 0 are"):
        pool.recv()
    with pytest.raises(ValueError, match="asynchronous"):
        pool.step(np.zeros(8, np.int32))
    pool.send([0, 1], [0, 1])
    with pytest.raises(ValueError, match="env 1 is already in flight"):
        pool.send([0, 1], [2, 1])
    with pytest.raises(ValueError, match="in flight"):
        pool.snapshot([0])
    with pytest.raises(ValueError, match="in flight"):
        pool.reset(env_ids=[1])
    with pytest.raises(ValueError, match="more than once"):
        pool.send([0, 0], [3, 3])
    with pytest.raises(ValueError, match="out of range"):
        pool.send([0, 5], [2, 3])
    pool.send([0, 1], [2, 3])  # nothing from the failed sends was queued
    *_, info = pool.recv()
    assert sorted(info["env_id"].tolist()) == [0, 1, 2, 3]
    sync = make_pool("CartPole-v1", 4)
    with pytest.raises(ValueError, match="asynchronous pool"):
        sync.send([0], [0])
    with pytest.raises(ValueError, match="asynchronous pool"):
        sync.recv()
    with pytest.raises(ValueError, match="batch_size"):
        pyenvpool.make("CartPole-v1", 4, batch_size=5)


def test_close_with_envs_in_flight_joins_cleanly():
    pool = pyenvpool.make("Delay-v0", 8, batch_size=2, num_threads=2, delay_us=1000)
    pool.reset()
    pool.send(np.zeros(8, np.int32), np.arange(8))
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.recv()
