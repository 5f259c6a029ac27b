"""Bandit-v0: PufferLib Ocean's one-pull bandit (pufferlib/environments/ocean/ocean.py)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import pyenvpool


def solution_arm(pool) -> int:
    config = dict(item.split("=") for item in pool.config.split(";") if item)
    return int(config["solution_arm"])


@pytest.mark.parametrize("num_arms", [*range(1, 40), 100, 1000, 4096, 65535, 65536])
def test_default_solution_arm_is_pufferlibs(make_pool, num_arms):
    """PufferLib's Bandit.reset: np.random.seed(42); np.random.randint(0, num_actions)."""
    np.random.seed(42)  # the legacy global stream, as PufferLib uses it
    expected = np.random.randint(0, num_arms)
    assert solution_arm(make_pool("Bandit-v0", 1, num_threads=1, num_arms=num_arms)) == expected


def test_every_pull_ends_the_episode_and_pays_only_the_solution_arm(make_pool):
    pool = make_pool("Bandit-v0", 8, num_arms=8, seed=3)
    obs, _ = pool.reset()
    assert (obs["obs"] == 1.0).all()
    for _ in range(3):
        obs, reward, terminated, truncated, info = pool.step(np.arange(8))
        expected = (np.arange(8) == solution_arm(pool)).astype(np.float32)
        np.testing.assert_array_equal(reward, expected)
        assert terminated.all() and not truncated.any()
        np.testing.assert_array_equal(info["episode_return"], expected)
        assert (info["episode_length"] == 1).all()
        assert (obs["obs"] == 1.0).all() and (info["final_obs"]["obs"] == 1.0).all()
    assert solution_arm(pool) == 6  # PufferLib's arm for 8 arms


def test_solution_arm_is_the_same_for_every_seed_and_settable(make_pool):
    for seed in (0, 1, 12345):
        pool = make_pool("Bandit-v0", 4, seed=seed)
        _, reward, *_ = pool.step(np.arange(4))
        np.testing.assert_array_equal(reward, [0, 0, 1, 0])  # arm 2 of 4, as PufferLib
    pool = make_pool("Bandit-v0", 4, solution_arm=0)
    _, reward, *_ = pool.step(np.arange(4))
    np.testing.assert_array_equal(reward, [1, 0, 0, 0])


def test_reward_scale_and_noise(make_pool):
    pool = make_pool("Bandit-v0", 4, reward_scale=2.5)
    _, reward, *_ = pool.step(np.arange(4))
    np.testing.assert_array_equal(reward, [0, 0, 2.5, 0])
    # (correct + 0.5 N(0, 1)) * 2: mean 2 or 0, standard deviation 1.
    n = 20000
    noisy = make_pool("Bandit-v0", n, reward_noise=0.5, reward_scale=2.0, seed=1)
    actions = np.where(np.arange(n) % 2 == 0, 2, 1)
    _, reward, *_ = noisy.step(actions)
    for arm, mean in ((2, 2.0), (1, 0.0)):
        rows = reward[actions == arm]
        assert abs(rows.mean() - mean) < 0.05 and abs(rows.std() - 1.0) < 0.05
    assert np.all(np.isfinite(reward))


def test_noise_is_deterministic_by_seed_and_independent_of_threads(make_pool, rng):
    actions = [rng.integers(0, 4, 5000) for _ in range(5)]

    def run(seed, threads):
        pool = make_pool("Bandit-v0", 5000, seed=seed, num_threads=threads, reward_noise=1.0)
        return np.stack([pool.step(a)[1].copy() for a in actions])

    a, b, c = run(4, 1), run(4, 2), run(5, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def _copy(result):
    obs, reward, terminated, truncated, ids = result
    return obs["obs"].copy(), reward.copy(), terminated.copy(), truncated.copy(), ids


def test_snapshots_restore_simulate_and_export(make_pool, rng):
    """With noise on, the RNG is the whole state: a snapshot replays the same
    noise, simulate twice agrees, restore + step equals simulate, and a finished
    state is absorbing."""
    n = 64
    pool = make_pool("Bandit-v0", n, seed=9, reward_noise=0.3)
    pool.step(rng.integers(0, 4, n))
    roots = pool.snapshot()
    actions = rng.integers(0, 4, n)
    first = _copy(pool.simulate(roots, actions))
    second = _copy(pool.simulate(roots, actions))
    for x, y in zip(first[:4], second[:4]):
        np.testing.assert_array_equal(x, y)
    assert first[2].all()
    obs, reward, terminated, truncated, ids = _copy(pool.simulate(first[4], actions))
    assert (reward == 0).all() and terminated.all()  # absorbing
    blob = pool.export_states(roots)
    pool.restore(roots)
    _, live_reward, live_terminated, _, info = pool.step(actions, copy=True)
    np.testing.assert_array_equal(live_reward, first[1])
    assert live_terminated.all()
    other = make_pool("Bandit-v0", n, seed=100, reward_noise=0.3)
    other.restore(other.import_states(blob))
    np.testing.assert_array_equal(other.step(actions)[1], first[1])
    with pytest.raises(ValueError, match="reward_noise=0.5"):
        make_pool("Bandit-v0", n, reward_noise=0.5).import_states(blob)


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"num_arms": 0}, ValueError, "num_arms"),
        ({"num_arms": 65537}, ValueError, "num_arms"),
        ({"num_arms": 3.0}, TypeError, "num_arms"),
        ({"solution_arm": 4}, ValueError, r"solution_arm.*\[0, 3\]"),
        ({"num_arms": 10, "solution_arm": -1}, ValueError, r"solution_arm.*\[0, 9\]"),
        ({"reward_noise": -0.1}, ValueError, "reward_noise"),
        ({"reward_noise": float("nan")}, ValueError, "reward_noise"),
        ({"reward_scale": "big"}, TypeError, "reward_scale"),
        ({"num_actions": 4}, TypeError, "num_actions.*accepted: num_arms"),
    ],
)
def test_bad_kwargs(kwargs, error, message):
    with pytest.raises(error, match=message):
        pyenvpool.make("Bandit-v0", 1, **kwargs)


def test_spec_and_render(make_pool):
    pool = make_pool("Bandit-v0", 2, num_arms=6)
    assert pool.spec.num_actions == 6
    field = pool.spec.fields["obs"]
    assert field.shape == (1,) and field.dtype == np.float32
    assert field.low.min() == -1 and field.high.max() == 1
    assert pool.render(1) == "6 arms; arm 3 pays 1"


def test_gymnasium_make_vec():
    envs = gym.make_vec("pyenvpool/Bandit-v0", num_envs=4, vectorization_mode="vector_entry_point")
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (4, 1) and envs.single_action_space == gym.spaces.Discrete(4)
    obs, reward, terminated, truncated, _ = envs.step(np.array([2, 2, 0, 1]))
    np.testing.assert_array_equal(reward, [1, 1, 0, 0])
    assert terminated.all() and not truncated.any()
    envs.close()


def test_frames_show_the_arms_the_paying_one_and_the_last_pull(make_pool):
    pool = make_pool("Bandit-v0", 2, num_arms=6, solution_arm=4)
    pool.reset()
    assert pool.frame_shape == (152, 288, 3)  # 48 pixels an arm
    gold, grey = (240, 180, 20), (150, 150, 150)
    frame = pool.render(0, mode="rgb_array")
    arms = [tuple(frame[60, 48 * a + 24]) for a in range(6)]
    assert arms == [grey] * 4 + [gold] + [grey]
    assert (frame[118] == frame[118, 0]).all()  # no pull yet: no marker
    pool.step(np.array([4, 1], np.int32))
    frames = pool.render(None, mode="rgb_array")
    assert tuple(frames[0, 118, 4 * 48 + 24]) == (40, 170, 60)  # paid: green
    assert tuple(frames[1, 118, 1 * 48 + 24]) == (210, 50, 40)  # did not: red
    assert tuple(frames[1, 118, 4 * 48 + 24]) == tuple(frames[1, 118, 0])
