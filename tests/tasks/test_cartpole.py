"""CartPole-v1 against Gymnasium's own implementation, step by step."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import pytest

import pyenvpool


def _gym_envs(n: int, seed: int):
    envs = [gym.make("CartPole-v1") for _ in range(n)]
    for i, env in enumerate(envs):
        env.reset(seed=seed + i)
    starts = np.stack([env.unwrapped.state for env in envs])
    return envs, starts


def test_parity_with_gymnasium_over_thousands_of_steps(make_pool, rng):
    """Synchronised start states, identical actions: identical rewards and flags,
    observations equal (the float64 dynamics run in the same order)."""
    n, steps = 16, 1500
    envs, starts = _gym_envs(n, seed=100)
    pool = make_pool("CartPole-v1", n, num_threads=2)
    pool.reset(instances={"state": starts})
    episodes_checked = 0
    max_obs_diff = 0.0
    for _ in range(steps):
        actions = rng.integers(0, 2, n)
        obs, reward, terminated, truncated, info = pool.step(actions)
        for i, env in enumerate(envs):
            g_obs, g_rew, g_term, g_trunc, _ = env.step(int(actions[i]))
            assert reward[i] == g_rew
            assert terminated[i] == g_term and truncated[i] == g_trunc
            mine = info["final_obs"]["obs"][i] if (g_term or g_trunc) else obs["obs"][i]
            max_obs_diff = max(max_obs_diff, float(np.abs(mine - g_obs).max()))
            if g_term or g_trunc:
                episodes_checked += 1
                env.reset()
                pool.reset(env_ids=[i], instances={"state": env.unwrapped.state[None]})
    assert max_obs_diff <= 1e-6
    assert episodes_checked > 100


def test_truncation_at_500_steps_matches_time_limit(make_pool):
    """A balanced pole (a controller that pushes against the lean) is truncated
    exactly at step 500, as Gymnasium's TimeLimit does."""
    pool = make_pool("CartPole-v1", 4, num_threads=1)
    obs, _ = pool.reset(seed=3)
    for t in range(1, 501):
        actions = (obs["obs"][:, 2] + 0.5 * obs["obs"][:, 3] > 0).astype(np.int32)
        obs, reward, terminated, truncated, info = pool.step(actions)
        if t < 500:
            assert not truncated.any()
    assert truncated.all() and not terminated.any()
    assert (info["episode_length"] == 500).all()
    assert (info["episode_return"] == 500.0).all()


def test_kwargs(make_pool):
    pool = make_pool("CartPole-v1", 2, max_episode_steps=7)
    pool.reset(seed=0)
    for _ in range(6):
        _, _, _, truncated, _ = pool.step(np.array([0, 1]))
    _, _, terminated, truncated, info = pool.step(np.array([0, 1]))
    assert (truncated | terminated).all()
    with pytest.raises(ValueError, match="max_episode_steps"):
        pyenvpool.make("CartPole-v1", 2, max_episode_steps=0)
    with pytest.raises(TypeError, match="sutton_barto_reward"):
        pyenvpool.make("CartPole-v1", 2, sutton_barto_reward="yes")


def test_sutton_barto_reward(make_pool):
    pool = make_pool("CartPole-v1", 1, sutton_barto_reward=True)
    pool.reset(seed=0)
    rewards = []
    while True:
        _, reward, terminated, _, _ = pool.step(np.array([1]))
        rewards.append(float(reward[0]))
        if terminated[0]:
            break
    assert rewards[-1] == -1.0 and set(rewards[:-1]) <= {0.0}


def test_spaces_match_gymnasium(make_pool):
    pool = make_pool("CartPole-v1", 2)
    ref = gym.make("CartPole-v1")
    box = pool.single_observation_space["obs"]
    assert box == ref.observation_space
    assert pool.single_action_space == ref.action_space


def test_render_shows_the_cart(make_pool):
    pool = make_pool("CartPole-v1", 1)
    pool.reset(instances={"state": np.array([[1.2, 0.0, 0.1, 0.0]])})
    text = pool.render(0)
    assert "x=+1.200" in text and "#" in text


# Gymnasium's four colours; its other pixels are the blends of its anti-aliasing.
GYMNASIUM_COLOURS = np.array([(255, 255, 255), (0, 0, 0), (202, 152, 101), (129, 132, 203)])


def test_frames_match_gymnasiums_pictures(make_pool, rng):
    """The same states drawn by Gymnasium's CartPoleEnv.render (pygame) and by
    the pool: identical but for Gymnasium's anti-aliased edges, which a canvas
    without anti-aliasing cannot reproduce. Measured (64 states): 99.95% of all
    pixels identical, 96% of the pixels either picture paints (not white),
    and 99.9996% of those where Gymnasium's pixel is one of its four colours."""
    pytest.importorskip("pygame")
    n = 64
    states = np.stack(
        [
            rng.uniform(-2.6, 2.6, n),
            rng.normal(size=n),
            np.concatenate([rng.uniform(-0.21, 0.21, n // 2), rng.uniform(-1.2, 1.2, n - n // 2)]),
            rng.normal(size=n),
        ],
        axis=1,
    )
    pool = make_pool("CartPole-v1", n, num_threads=2)
    pool.reset(instances={"state": states})
    assert pool.frame_shape == (400, 600, 3)
    frames = pool.render(None, mode="rgb_array")
    env = gym.make("CartPole-v1", render_mode="rgb_array")
    env.reset(seed=0)
    same = painted = same_painted = pure = same_pure = 0
    for state, frame in zip(states, frames):
        env.unwrapped.state = state.copy()
        theirs = env.render()
        assert theirs.shape == frame.shape and theirs.dtype == frame.dtype
        equal = (theirs == frame).all(axis=-1)
        ink = (theirs != 255).any(axis=-1) | (frame != 255).any(axis=-1)
        plain = (theirs[:, :, None, :] == GYMNASIUM_COLOURS).all(axis=-1).any(axis=-1)
        same += equal.sum()
        painted += ink.sum()
        same_painted += (equal & ink).sum()
        pure += plain.sum()
        same_pure += (equal & plain).sum()
        assert (frame[:, :, None, :] == GYMNASIUM_COLOURS).all(axis=-1).any(axis=-1).all()
    env.close()
    share, share_painted, share_pure = (
        same / frames[..., 0].size,
        same_painted / painted,
        same_pure / pure,
    )
    print(
        f"identical: {share:.5f} of all pixels, {share_painted:.4f} of painted ones, "
        f"{share_pure:.6f} of Gymnasium's plain-coloured ones"
    )
    assert share > 0.999 and share_painted > 0.95 and share_pure > 0.9999


def test_frames_of_extreme_states_are_drawn_clipped(make_pool):
    """Far off the track or spinning, the cart and pole are clipped, never wrapped."""
    pool = make_pool("CartPole-v1", 3)
    pool.reset(
        instances={"state": np.array([[1e300, 0, 1e300, 0], [-5.0, 0, 3.0, 0], [0, 0, 0, 0]])}
    )
    frames = pool.render(None, mode="rgb_array")
    track = frames[:, 299]
    assert (track == 0).all()  # the track line, whole in every frame
    for frame in frames[:2]:  # nothing but the track: the cart is off screen
        assert (np.delete(frame, 299, axis=0) == 255).all()
    assert (frames[2, 285:315, 280:320] == 0).any()


def test_hide_velocity_zeroes_the_velocities_and_nothing_else(make_pool, rng):
    """hide_velocity=True (a memory task): the same episodes as the plain task,
    with x and theta observed and both velocities reported as 0."""
    n = 64
    hidden = make_pool("CartPole-v1", n, seed=8, hide_velocity=True)
    plain = make_pool("CartPole-v1", n, seed=8)
    h_obs, _ = hidden.reset()
    p_obs, _ = plain.reset()
    assert (h_obs["obs"][:, [1, 3]] == 0).all()
    assert np.array_equal(h_obs["obs"][:, [0, 2]], p_obs["obs"][:, [0, 2]])
    episodes = 0
    for _ in range(300):
        actions = rng.integers(0, 2, n)
        h = hidden.step(actions, copy=True)
        p = plain.step(actions, copy=True)
        for obs_h in (h[0]["obs"], h[4]["final_obs"]["obs"]):
            assert (obs_h[:, [1, 3]] == 0).all()
        assert np.array_equal(h[0]["obs"][:, [0, 2]], p[0]["obs"][:, [0, 2]])
        done = h[2] | h[3]
        assert np.array_equal(
            h[4]["final_obs"]["obs"][done][:, [0, 2]], p[4]["final_obs"]["obs"][done][:, [0, 2]]
        )
        for a, b in zip(h[1:4], p[1:4]):
            assert np.array_equal(a, b)
        episodes += int(done.sum())
    assert episodes > 500
    box = hidden.single_observation_space["obs"]
    assert box.low[[1, 3]].tolist() == [0, 0] and box.high[[1, 3]].tolist() == [0, 0]
    assert box.low[0] == -4.8 and np.isclose(box.high[2], 0.41887903)
    assert "hide_velocity=1" in hidden.config and "hide_velocity=0" in plain.config
    assert box.contains(h[0]["obs"][0])


def test_step_cost_spends_time_and_changes_nothing_else(make_pool, rng):
    """step_cost_us=c: the same episodes as c = 0; about one step in 16
    busy-waits 16 c microseconds, so the steps take at least about c each."""
    n, steps, cost = 8, 200, 100
    slow = make_pool("CartPole-v1", n, seed=3, num_threads=1, step_cost_us=cost)
    plain = make_pool("CartPole-v1", n, seed=3, num_threads=1)
    slow.reset()
    plain.reset()
    start = time.perf_counter()
    for _ in range(steps):
        actions = rng.integers(0, 2, n)
        a, b = slow.step(actions, copy=True), plain.step(actions, copy=True)
        assert np.array_equal(a[0]["obs"], b[0]["obs"])
        for x, y in zip(a[1:4], b[1:4]):
            assert np.array_equal(x, y)
    elapsed = time.perf_counter() - start
    # 1600 steps at a mean cost of 100 us: 0.16 s expected (100 +- 10 slow steps).
    assert elapsed > 0.5 * n * steps * cost * 1e-6
    assert "step_cost_us=100" in slow.config
