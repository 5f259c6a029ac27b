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


# ------------------------------------------------------------ autoreset="next_step"
@pytest.mark.parametrize("task", ["CartPole-v1", "Maze-v0", "Pendulum-v1"])
def test_next_step_pool_equals_a_disabled_pool_reset_by_hand(make_pool, task):
    """``autoreset="next_step"`` in the engine gives exactly what a disabled
    pool gives when the caller resets the ended envs before the next step:
    the restart step ignores its action and returns reward 0 and no flags."""
    n = 16
    engine = make_pool(task, n, seed=5, autoreset="next_step")
    manual = make_pool(task, n, seed=5, autoreset=False)
    assert engine.autoreset_mode == "next_step" and engine.autoreset is False
    assert manual.autoreset_mode == "disabled"
    engine.reset()
    manual.reset()
    rng = np.random.default_rng(0)
    action = engine.spec.action
    pending = np.zeros(n, np.bool_)
    restarts = 0
    for _ in range(300):
        if action.kind == "box":
            actions = rng.uniform(action.low, action.high, (n, *action.shape)).astype(np.float32)
        else:
            actions = rng.integers(0, engine.spec.num_actions, n).astype(np.int32)
        ours = engine.step(actions, copy=True)
        ended = np.flatnonzero(pending)
        theirs = manual.step(actions, copy=True)
        if ended.size:
            first, _ = manual.reset(env_ids=ended)
            for name in theirs[0]:
                theirs[0][name][ended] = first[name]
            theirs[1][ended] = 0.0
            theirs[2][ended] = False
            theirs[3][ended] = False
            restarts += ended.size
        for name in ours[0]:
            np.testing.assert_array_equal(ours[0][name], theirs[0][name])
        for k in (1, 2, 3):
            np.testing.assert_array_equal(ours[k], theirs[k])
        done = ours[2] | ours[3]
        np.testing.assert_array_equal(
            ours[4]["episode_length"][done], theirs[4]["episode_length"][done]
        )
        assert (ours[4]["episode_length"][~done] == 0).all()
        pending = done
    assert restarts > 0


def test_next_step_snapshot_of_an_ended_env_restarts_after_restore(make_pool):
    pool = make_pool("CartPole-v1", 4, seed=2, autoreset="next_step")
    pool.reset()
    ones = np.ones(4, np.int32)
    obs, reward, terminated, truncated, info = _run_until_some_end(pool, ones)
    i = int(np.flatnonzero(terminated | truncated)[0])
    state = pool.snapshot([i])
    restart = pool.step(ones, copy=True)
    assert restart[1][i] == 0.0 and not restart[2][i] and not restart[3][i]
    assert not np.array_equal(restart[0]["obs"][i], obs["obs"][i])  # a new episode
    # The snapshot holds the ended state and its RNG: restored, the next step
    # restarts it again, drawing the same first observation.
    np.testing.assert_array_equal(pool.restore(state, [i])["obs"][0], obs["obs"][i])
    again = pool.step(ones, copy=True)
    assert again[1][i] == 0.0 and not again[2][i] and not again[3][i]
    np.testing.assert_array_equal(again[0]["obs"][i], restart[0]["obs"][i])


def test_next_step_async_pool_restarts_ended_envs_on_their_next_send(make_pool):
    pool = make_pool("CartPole-v1", 8, seed=1, batch_size=4, autoreset="next_step")
    pool.reset()
    ended_last = {}
    restarts = 0
    for _ in range(400):
        obs, reward, terminated, truncated, info = pool.recv() if ended_last else (None,) * 5
        if obs is None:
            pool.send(np.ones(8, np.int32), np.arange(8))
            ended_last = {i: False for i in range(8)}
            continue
        for row, env in enumerate(info["env_id"]):
            if ended_last[int(env)]:
                assert reward[row] == 0.0 and not terminated[row] and not truncated[row]
                restarts += 1
            ended_last[int(env)] = bool(terminated[row] or truncated[row])
        pool.send(np.ones(len(info["env_id"]), np.int32), info["env_id"])
    assert restarts > 0


@pytest.mark.parametrize("bad", ["nextstep", 2, None])
def test_autoreset_argument_is_checked(bad):
    import pyenvpool

    with pytest.raises(ValueError, match="autoreset must be True, False, 'same_step'"):
        pyenvpool.make("CartPole-v1", 2, autoreset=bad)
