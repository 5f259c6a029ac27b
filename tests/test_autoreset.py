"""Pools made with autoreset=False: a finished env keeps its final state until
reset(env_ids), and steps of it are absorbing (reward 0, the same flags)."""

from __future__ import annotations

import numpy as np
import pytest


def _run_until_some_end(pool, actions, max_steps=200):
    for _ in range(max_steps):
        obs, reward, terminated, truncated, info = pool.step(actions, copy=True)
        if (terminated | truncated).any():
            return obs, reward, terminated, truncated, info
    raise AssertionError("no episode ended")


def test_finished_env_shows_its_last_observation_and_absorbs(make_pool):
    pool = make_pool("CartPole-v1", 6, seed=3, autoreset=False)
    assert pool.autoreset is False
    pool.reset()
    ones = np.ones(6, np.int32)
    obs, reward, terminated, truncated, info = _run_until_some_end(pool, ones)
    ended = terminated | truncated
    # The row holds the last observation (no reset), equal to final_obs.
    assert np.array_equal(obs["obs"][ended], info["final_obs"]["obs"][ended])
    assert (info["episode_length"][ended] > 0).all()
    frozen = obs["obs"][ended].copy()
    for _ in range(5):
        obs, reward, terminated, truncated, info = pool.step(ones, copy=True)
        assert np.array_equal(obs["obs"][ended], frozen)
        assert (reward[ended] == 0).all() and terminated[ended].all()
        assert (info["episode_length"][ended] == 0).all()


def test_reset_restarts_a_finished_env_like_auto_reset_would(make_pool):
    """Resetting an ended env draws the start state the auto-resetting pool
    draws in the same step: the envs play the same episodes."""
    manual = make_pool("CartPole-v1", 4, seed=11, autoreset=False)
    auto = make_pool("CartPole-v1", 4, seed=11)
    manual.reset()
    auto.reset()
    rng = np.random.default_rng(0)
    for _ in range(300):
        actions = rng.integers(0, 2, 4).astype(np.int32)
        a = auto.step(actions, copy=True)
        m = manual.step(actions, copy=True)
        assert np.array_equal(a[1], m[1]) and np.array_equal(a[2], m[2])
        ended = np.flatnonzero(m[2] | m[3])
        if ended.size:
            obs, _ = manual.reset(env_ids=ended)
            assert np.array_equal(obs["obs"], a[0]["obs"][ended])
            assert np.array_equal(m[4]["final_obs"]["obs"][ended], a[4]["final_obs"]["obs"][ended])


def test_snapshot_of_a_finished_env_is_absorbing_and_restores(make_pool):
    pool = make_pool("CartPole-v1", 3, seed=5, autoreset=False)
    pool.reset()
    _, _, terminated, truncated, _ = _run_until_some_end(pool, np.zeros(3, np.int32))
    env = int(np.flatnonzero(terminated | truncated)[0])
    [state] = pool.snapshot([env])
    obs, reward, term, trunc, new = pool.simulate([state], [0])
    assert reward[0] == 0 and term[0]
    pool.reset(env_ids=[env])
    pool.restore([state], env_ids=[env])  # allowed: this pool keeps finished envs
    _, reward, terminated, _, _ = pool.step(np.zeros(3, np.int32))
    assert terminated[env] and reward[env] == 0
    pool.release(np.concatenate([[state], new]))
    # An auto-resetting pool refuses finished states for its live envs.
    auto = make_pool("CartPole-v1", 3, seed=5)
    ids = auto.import_states(pool.export_states(pool.snapshot([env])))
    with pytest.raises(ValueError, match="finished episode"):
        auto.restore(ids, env_ids=[0])
