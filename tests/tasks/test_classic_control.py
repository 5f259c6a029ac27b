"""Pendulum-v1, MountainCarContinuous-v0, Acrobot-v1 and MountainCar-v0 against
Gymnasium's own implementations, step by step.

The pool and Gymnasium's envs (``gymnasium.make``, so with its TimeLimit)
start from the same states (injected into both: Gymnasium's own reset states
and hand-picked edge states) and take the same actions: float32 for the Box
tasks, with out-of-range and extreme values (±10, ±1e30, ±FLT_MAX, tiny and
denormal ones), since an out-of-range action must behave exactly as in
Gymnasium. Observations, terminated and truncated must be bit-identical. The
engine's reward is float32 while Gymnasium's are Python or NumPy float64: the
comparable quantity is Gymnasium's reward rounded to float32 (saturated at
±FLT_MAX, see MountainCarContinuous's header), which must be bit-identical too.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import pyenvpool

FLT_MAX = float(np.finfo(np.float32).max)
TASKS = ["Pendulum-v1", "MountainCarContinuous-v0", "Acrobot-v1", "MountainCar-v0"]
BOX_HIGH = {"Pendulum-v1": 2.0, "MountainCarContinuous-v0": 1.0}

EDGE_STARTS = {
    "Pendulum-v1": [
        [np.pi, 0.0],
        [-np.pi, 0.0],
        [3 * np.pi, 8.0],
        [-3 * np.pi, -8.0],
        [2 * np.pi, 0.0],
        [0.0, 0.0],
        [-0.0, 0.0],
        [1e6, 1.0],
        [-1e6, -1.0],
        [1e-300, 0.0],
        [np.nextafter(np.pi, 4.0), 7.9],
    ],
    "MountainCarContinuous-v0": [
        [-1.2, 0.0],
        [-1.2, -0.07],
        [-1.19, -0.07],
        [0.6, 0.07],
        [0.45, 0.0],
        [0.44999, 0.07],
        [0.449, -0.0],
        [float(np.float32(0.6)), float(np.float32(0.07))],
        [float(np.float32(-1.2)), float(np.float32(-0.07))],
        [0.5, -0.07],
    ],
    "Acrobot-v1": [
        [np.pi, -np.pi, 4 * np.pi, 9 * np.pi],
        [-np.pi, np.pi, -4 * np.pi, -9 * np.pi],
        [0.0, 0.0, 0.0, 0.0],
        [np.pi / 2, 0.0, 0.0, 0.0],
        [3.0, 3.0, 12.0, 28.0],
        [np.pi, 0.0, 0.0, 0.0],
    ],
    "MountainCar-v0": [
        [-1.2, 0.0],
        [-1.2, -0.07],
        [0.6, 0.07],
        [0.5, 0.0],
        [0.49999, 0.07],
        [float(np.float32(0.6)), float(np.float32(0.07))],
        [float(np.float32(-1.2)), float(np.float32(-0.07))],
    ],
}


def _gym_obs(task_id: str, env) -> np.ndarray:
    """What Gymnasium's reset would return for the env's current state."""
    u = env.unwrapped
    if task_id == "Pendulum-v1":
        return u._get_obs()
    if task_id == "Acrobot-v1":
        return u._get_ob()
    return np.array(u.state, dtype=np.float32)


def _box_actions(rng, n: int, high: float) -> np.ndarray:
    """float32 [n, 1]: in range, far out of range, and special values."""
    special = np.array(
        [
            0.0,
            -0.0,
            high,
            -high,
            10.0,
            -10.0,
            1e30,
            -1e30,
            FLT_MAX,
            -FLT_MAX,
            1e-30,
            -1e-40,
            1e-45,
            3.3,
            -7.7e5,
        ],
        np.float32,
    )
    special = np.append(special, np.nextafter(np.float32(high), np.float32(10)))
    a = rng.uniform(-high, high, n).astype(np.float32)
    pick = rng.random(n)
    a = np.where(pick < 0.15, rng.choice(special, n), a)
    a = np.where((pick >= 0.15) & (pick < 0.3), rng.uniform(-50 * high, 50 * high, n), a)
    return a.astype(np.float32)[:, None]


def _actions(task_id: str, obs: np.ndarray, rng, pump: float) -> np.ndarray:
    """Random actions, with probability `pump` an energy-pumping push (along
    the velocity; for Acrobot, the second joint's) so that MountainCar and
    Acrobot episodes also terminate."""
    n = obs.shape[0]
    velocity = obs[:, -1]
    pump = rng.random(n) < pump
    if task_id in BOX_HIGH:
        a = _box_actions(rng, n, BOX_HIGH[task_id])
        a[pump, 0] = np.where(velocity[pump] >= 0, 1.0, -1.0).astype(np.float32)
        return a
    a = rng.integers(0, 3, n)
    a[pump] = np.where(velocity[pump] >= 0, 2, 0)
    return a


def _bits(x) -> bytes:
    return np.asarray(x, np.float32).tobytes()


def _expected_reward(g_reward) -> np.float32:
    return np.float32(max(float(g_reward), -FLT_MAX))


def lockstep(
    make_pool,
    task_id,
    n,
    steps,
    rng,
    *,
    edge=True,
    gym_kwargs=None,
    pool_kwargs=None,
    setup=None,
    pump=0.5,
):
    """Step `n` pool envs and `n` Gymnasium envs side by side; returns
    (episodes, terminations, transitions). Every transition is compared bit for
    bit; the assertion lists the first mismatches and the worst differences."""
    gym_kwargs = gym_kwargs or {}
    envs = [gym.make(task_id, **gym_kwargs) for _ in range(n)]
    for i, env in enumerate(envs):
        env.reset(seed=1000 + i)
        if setup is not None:
            setup(env.unwrapped)
    if edge:
        for i, start in enumerate(EDGE_STARTS[task_id][:n]):
            envs[i].unwrapped.state = np.array(start, np.float64)
    starts = np.stack([np.asarray(env.unwrapped.state, np.float64) for env in envs])
    pool = make_pool(task_id, n, num_threads=2, seed=3, **(pool_kwargs or {}))
    obs, _ = pool.reset(instances={"state": starts})
    obs = obs["obs"].copy()
    for i, env in enumerate(envs):
        assert _bits(obs[i]) == _bits(_gym_obs(task_id, env)), f"reset obs of env {i}"

    mismatches, worst = [], {"obs": 0.0, "reward": 0.0}
    episodes = terminations = 0
    for t in range(steps):
        actions = _actions(task_id, obs, rng, pump)
        p_obs, p_rew, p_term, p_trunc, info = pool.step(actions)
        restart = []
        for i, env in enumerate(envs):
            a = actions[i] if task_id in BOX_HIGH else int(actions[i])
            g_obs, g_rew, g_term, g_trunc, _ = env.step(a)
            done = g_term or g_trunc
            mine = info["final_obs"]["obs"][i] if done else p_obs["obs"][i]
            expected = _expected_reward(g_rew)
            same = (
                _bits(mine) == _bits(g_obs)
                and _bits(p_rew[i]) == _bits(expected)
                and bool(p_term[i]) == g_term
                and bool(p_trunc[i]) == g_trunc
            )
            if not same:
                worst["obs"] = max(worst["obs"], float(np.abs(mine - g_obs).max()))
                worst["reward"] = max(worst["reward"], abs(float(p_rew[i]) - float(expected)))
                if len(mismatches) < 5:
                    mismatches.append(
                        (
                            t,
                            i,
                            a,
                            mine.tolist(),
                            g_obs.tolist(),
                            float(p_rew[i]),
                            float(g_rew),
                            bool(p_term[i]),
                            g_term,
                            bool(p_trunc[i]),
                            g_trunc,
                        )
                    )
            if done:
                episodes += 1
                terminations += int(g_term)
                env.reset()
                restart.append(i)
        obs = p_obs["obs"].copy()
        if restart:
            states = np.stack([np.asarray(envs[i].unwrapped.state, np.float64) for i in restart])
            r_obs, _ = pool.reset(env_ids=restart, instances={"state": states})
            obs[restart] = r_obs["obs"]
    assert not mismatches, f"not bit-exact; worst differences {worst}; first: {mismatches}"
    return episodes, terminations, steps * n


@pytest.mark.parametrize(
    "task_id, n, steps, min_episodes, min_terminations",
    [
        ("Pendulum-v1", 32, 1000, 150, 0),
        ("MountainCarContinuous-v0", 32, 1500, 100, 50),
        ("Acrobot-v1", 24, 1000, 100, 50),
        ("MountainCar-v0", 32, 1000, 150, 50),
    ],
)
def test_lockstep_with_gymnasium_is_bit_exact(
    make_pool, rng, task_id, n, steps, min_episodes, min_terminations
):
    episodes, terminations, _ = lockstep(make_pool, task_id, n, steps, rng)
    assert episodes >= min_episodes and terminations >= min_terminations


def test_lockstep_through_mountain_car_continuous_time_limit(make_pool, rng):
    """Random forces rarely reach the goal: episodes end at Gymnasium's
    TimeLimit(999), compared in lockstep like every other transition."""
    episodes, terminations, _ = lockstep(
        make_pool, "MountainCarContinuous-v0", 8, 2100, rng, edge=False, pump=0.0
    )
    assert episodes - terminations >= 8


@pytest.mark.parametrize(
    "task_id, gym_kwargs, pool_kwargs, setup",
    [
        ("Pendulum-v1", {"g": 9.81}, {"g": 9.81}, None),
        ("MountainCar-v0", {"goal_velocity": 0.01}, {"goal_velocity": 0.01}, None),
        ("MountainCarContinuous-v0", {"goal_velocity": 0.01}, {"goal_velocity": 0.01}, None),
        (
            "Acrobot-v1",
            {},
            {"book_or_nips": "nips"},
            lambda env: setattr(env, "book_or_nips", "nips"),
        ),
        ("Pendulum-v1", {"max_episode_steps": 37}, {"max_episode_steps": 37}, None),
    ],
)
def test_lockstep_with_task_kwargs(make_pool, rng, task_id, gym_kwargs, pool_kwargs, setup):
    episodes, _, _ = lockstep(
        make_pool,
        task_id,
        16,
        300,
        rng,
        gym_kwargs=gym_kwargs,
        pool_kwargs=pool_kwargs,
        setup=setup,
    )
    assert episodes >= 16


@pytest.mark.parametrize("task_id", TASKS)
def test_spaces_match_gymnasium(make_pool, task_id):
    pool = make_pool(task_id, 2)
    ref = gym.make(task_id)
    assert pool.single_observation_space["obs"] == ref.observation_space
    assert pool.single_action_space == ref.action_space
    assert pool.spec.action.to_space() == ref.action_space


@pytest.mark.parametrize(
    "task_id, limit",
    [
        ("Pendulum-v1", 200),
        ("MountainCarContinuous-v0", 999),
        ("Acrobot-v1", 500),
        ("MountainCar-v0", 200),
    ],
)
def test_time_limits_are_gymnasiums(make_pool, task_id, limit):
    assert gym.spec(task_id).max_episode_steps == limit
    pool = make_pool(task_id, 4, seed=1)
    pool.reset()
    # Doing nothing: no task reaches its goal from its reset states that way.
    idle = np.zeros((4, 1), np.float32) if task_id in BOX_HIGH else np.ones(4, np.int64)
    for t in range(1, limit + 1):
        _, _, terminated, truncated, info = pool.step(idle)
        assert not terminated.any()
        assert truncated.all() == (t == limit) and truncated.any() == (t == limit)
    assert (info["episode_length"] == limit).all()


def _reset_states(task_id: str, n: int) -> np.ndarray:
    pool = pyenvpool.make(task_id, n, seed=11)
    obs, _ = pool.reset()
    o = obs["obs"].astype(np.float64)
    pool.close()
    if task_id == "Pendulum-v1":
        return np.stack([np.arctan2(o[:, 1], o[:, 0]), o[:, 2]], 1)
    if task_id == "Acrobot-v1":
        return np.stack(
            [np.arctan2(o[:, 1], o[:, 0]), np.arctan2(o[:, 3], o[:, 2]), o[:, 4], o[:, 5]], 1
        )
    return o


@pytest.mark.parametrize(
    "task_id, low, high",
    [
        ("Pendulum-v1", [-np.pi, -1.0], [np.pi, 1.0]),
        ("MountainCarContinuous-v0", [-0.6, 0.0], [-0.4, 0.0]),
        ("Acrobot-v1", [-0.1] * 4, [0.1] * 4),
        ("MountainCar-v0", [-0.6, 0.0], [-0.4, 0.0]),
    ],
)
def test_reset_distribution_is_gymnasiums_uniform(task_id, low, high):
    """Gymnasium's reset ranges, uniform: each coordinate's values fill the
    range, and every tenth of it holds 10% +- 1.5% of 40000 draws."""
    states = _reset_states(task_id, 40000)
    for k, (lo, hi) in enumerate(zip(low, high)):
        x = states[:, k]
        if lo == hi:
            assert (x == lo).all()
            continue
        assert x.min() >= lo - 1e-6 and x.max() <= hi + 1e-6
        counts = np.histogram(x, bins=10, range=(lo, hi))[0] / len(x)
        assert np.abs(counts - 0.1).max() < 0.015, counts


@pytest.mark.parametrize("task_id", TASKS)
def test_bad_instances_are_refused(make_pool, task_id):
    pool = make_pool(task_id, 2)
    obs, _ = pool.reset(seed=0)
    before = obs["obs"].copy()
    d = 4 if task_id == "Acrobot-v1" else 2
    for bad in (np.full((2, d), np.nan), np.full((2, d), 1e9)):
        with pytest.raises(ValueError, match="'state'"):
            pool.reset(instances={"state": bad})
    assert np.array_equal(pool._obs["obs"], before)


def test_pendulum_out_of_range_torque_is_clipped_like_gymnasium(make_pool):
    pool = make_pool("Pendulum-v1", 3)
    start = np.array([[0.5, 0.25]] * 3)
    pool.reset(instances={"state": start})
    obs, reward, *_ = pool.step(np.array([[2.0], [10.0], [1e30]], np.float32))
    assert np.array_equal(obs["obs"][0], obs["obs"][1]) and np.array_equal(
        obs["obs"][1], obs["obs"][2]
    )
    assert reward[0] == reward[1] == reward[2]


def test_mountain_car_continuous_huge_action_reward_saturates(make_pool):
    pool = make_pool("MountainCarContinuous-v0", 2)
    pool.reset(seed=0)
    _, reward, *_ = pool.step(np.array([[1e30], [-FLT_MAX]], np.float32))
    assert (reward == -FLT_MAX).all()
    env = gym.make("MountainCarContinuous-v0")
    env.reset(seed=0)
    assert env.step(np.array([1e30], np.float32))[1] < -FLT_MAX  # float64 in Gymnasium


FRAME_STATES = {
    "Pendulum-v1": ([[0.7, 0.3], [2.5, -4.0], [-1.0, 0.0]], [[-1.5], [2.0], [0.5]]),
    "MountainCarContinuous-v0": ([[-0.3, 0.02], [-1.1, -0.05], [0.4, 0.06]], [[0.5], [-1], [1]]),
    "Acrobot-v1": ([[0.8, 1.0, 0.5, 0.3], [-2.5, 0.5, -1, 2], [3.0, -3.0, 0, 0]], [2, 0, 1]),
    "MountainCar-v0": ([[-0.9, -0.01], [-0.5, 0.0], [0.3, 0.05]], [1, 0, 2]),
}


@pytest.mark.parametrize("task_id", TASKS)
def test_frames_look_like_gymnasiums(make_pool, task_id):
    """Gymnasium's frame size and scene: after the same state and step, fewer
    than 2% of the pixels differ (by more than 60 in a channel) from
    Gymnasium's own rgb_array frame; Gymnasium anti-aliases its edges and
    draws Pendulum's torque arrow from an image, the canvas does neither."""
    pytest.importorskip("pygame")
    starts, actions = FRAME_STATES[task_id]
    pool = make_pool(task_id, len(starts), autoreset=False)  # a final state stays drawn
    pool.reset(instances={"state": np.array(starts, np.float64)})
    dtype = np.float32 if task_id in BOX_HIGH else np.int64
    pool.step(np.array(actions, dtype))
    frames = pool.render(None, mode="rgb_array")
    assert frames.dtype == np.uint8 and frames.shape[1:] == pool.frame_shape
    for i, start in enumerate(starts):
        env = gym.make(task_id, render_mode="rgb_array")
        env.reset(seed=0)
        env.unwrapped.state = np.array(start, np.float64)
        env.step(np.array(actions[i], np.float32) if task_id in BOX_HIGH else actions[i])
        ref = env.render()
        env.close()
        assert ref.shape == frames[i].shape
        differ = (np.abs(frames[i].astype(int) - ref).max(-1) > 60).mean()
        assert differ < 0.02, f"{differ:.3%} of the pixels differ"
    # Different states draw different frames.
    assert not np.array_equal(frames[0], frames[1])


@pytest.mark.parametrize("task_id", TASKS)
def test_text_rendering(make_pool, task_id):
    pool = make_pool(task_id, 2)
    pool.reset(seed=0)
    text = pool.render(0)
    assert "step=0" in text and text != pool.render(1)
