"""pool.render: text and rgb frames, their arguments and errors, and the
properties every task's frames have (shape, determinism, no effect on the
pool). The pictures themselves are checked per task in tests/tasks/."""

from __future__ import annotations

import numpy as np
import pytest

import pyenvpool

TASKS = pyenvpool.list_tasks()


def _actions(pool, obs, rng: np.random.Generator) -> np.ndarray:
    """Random actions of the task's space; legal ones where it has an action mask."""
    n, action = pool.num_envs, pool.spec.action
    if action.kind == "box":
        return rng.uniform(action.low, action.high, (n, *action.shape)).astype(np.float32)
    if action.kind == "multi_discrete":
        return rng.integers(0, action.nvec, (n, len(action.nvec))).astype(np.int32)
    if "action_mask" in obs:
        scores = rng.random((n, pool.spec.num_actions)) + obs["action_mask"]  # legal ones above 1
        return scores.argmax(axis=1).astype(np.int32)
    return rng.integers(0, pool.spec.num_actions, n).astype(np.int32)


def _played(make_pool, task, n, steps, seed=0, **kwargs):
    """A pool of `n` envs after `steps` random steps (same actions for the same seed)."""
    pool = make_pool(task, n, seed=seed, **kwargs)
    obs, _ = pool.reset()
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        obs, *_ = pool.step(_actions(pool, obs, rng), copy=True)
    return pool, obs


def test_render_modes_and_arguments(make_pool):
    pool = make_pool("CartPole-v1", 3)
    pool.reset(seed=0)
    assert isinstance(pool.render(), str) and pool.render(2) != ""
    texts = pool.render([0, 2])
    assert isinstance(texts, list) and len(texts) == 2 and texts[1] == pool.render(2)
    assert len(pool.render(None)) == 3
    with pytest.raises(ValueError, match="mode"):
        pool.render(0, mode="human")
    with pytest.raises(ValueError, match="env_id"):
        pool.render(3)
    with pytest.raises(ValueError, match="out of range"):
        pool.render([0, 5])
    with pytest.raises(TypeError, match="integer"):
        pool.render([0.5])
    with pytest.raises(ValueError, match="env_id"):
        pool.render(3, mode="rgb_array")
    with pytest.raises(ValueError, match="out of range"):
        pool.render([0, 5], mode="rgb_array")


@pytest.mark.parametrize("task", TASKS)
def test_every_task_draws_frames_of_its_declared_shape(make_pool, task):
    pool, _ = _played(make_pool, task, 5, steps=3)
    assert "rgb_array" in pool.render_modes
    height, width, channels = pool.frame_shape
    assert channels == 3 and 16 <= height <= 1024 and 16 <= width <= 1024
    frames = pool.render(None, mode="rgb_array")
    assert frames.dtype == np.uint8 and frames.shape == (5, height, width, 3)
    one = pool.render(4, mode="rgb_array")
    assert one.shape == (height, width, 3) and np.array_equal(one, frames[4])
    picked = pool.render(np.array([3, 1, 3]), mode="rgb_array")
    assert np.array_equal(picked, frames[[3, 1, 3]])
    for frame in frames:  # a picture, not a blank frame
        colours = np.unique(frame.reshape(-1, 3), axis=0)
        assert len(colours) >= 3, f"{task}: {len(colours)} colours"
    one[:] = 0  # the caller owns its frames
    assert np.array_equal(pool.render(4, mode="rgb_array"), frames[4])


@pytest.mark.parametrize("task", TASKS)
def test_frames_are_deterministic_and_independent_of_the_thread_count(make_pool, task):
    one, _ = _played(make_pool, task, 24, steps=7, seed=5, num_threads=1)
    three, _ = _played(make_pool, task, 24, steps=7, seed=5, num_threads=3)
    frames = one.render(None, mode="rgb_array")
    assert np.array_equal(frames, three.render(None, mode="rgb_array"))
    assert np.array_equal(frames, one.render(None, mode="rgb_array"))


@pytest.mark.parametrize("task", TASKS)
def test_rendering_does_not_change_the_pool(make_pool, task):
    drawn = make_pool(task, 12, seed=3, num_threads=2)
    plain = make_pool(task, 12, seed=3, num_threads=2)
    obs, _ = drawn.reset()
    plain.reset()
    rng = np.random.default_rng(0)
    for _ in range(15):
        drawn.render(None, mode="rgb_array")
        drawn.render([0, 0, 5], mode="rgb_array")
        actions = _actions(drawn, obs, rng)
        obs, reward, terminated, truncated, _ = drawn.step(actions, copy=True)
        expected = plain.step(actions, copy=True)
        for name in obs:
            assert np.array_equal(obs[name], expected[0][name])
        assert np.array_equal(reward, expected[1]) and np.array_equal(terminated, expected[2])
        assert np.array_equal(truncated, expected[3])
    assert drawn.export_states(drawn.snapshot()) == plain.export_states(plain.snapshot())


@pytest.mark.parametrize("task", TASKS)
def test_a_frame_changes_when_its_env_changes(make_pool, task):
    """Every env's picture changes within a few steps, and stays as it was
    for the envs that were left alone."""
    pool, obs = _played(make_pool, task, 8, steps=0)
    rng = np.random.default_rng(1)
    frames = pool.render(None, mode="rgb_array")
    changed = np.zeros(pool.num_envs, bool)
    for _ in range(10):
        obs, *_ = pool.step(_actions(pool, obs, rng), copy=True)
        after = pool.render(None, mode="rgb_array")
        changed |= (after != frames).any(axis=(1, 2, 3))
        frames = after
    assert changed.all(), f"{task}: envs {np.flatnonzero(~changed)} never looked different"
    pool.reset(env_ids=[0, 1, 2])
    assert np.array_equal(pool.render([3, 4, 5, 6, 7], mode="rgb_array"), frames[3:])


@pytest.mark.parametrize(
    ("task", "kwargs", "shape"),
    [
        ("Maze-v0", {"num_rows": 5, "num_cols": 7}, (160, 224)),
        ("Maze-v0", {"num_rows": 32, "num_cols": 20}, (320, 200)),
        ("Squared-v0", {"distance_to_target": 2}, (328, 320)),
        ("Bandit-v0", {"num_arms": 10}, (152, 480)),
        ("Bandit-v0", {"num_arms": 65536}, (152, 768)),
    ],
)
def test_frame_sizes_follow_the_kwargs(make_pool, task, kwargs, shape):
    pool, _ = _played(make_pool, task, 2, steps=2, **kwargs)
    assert pool.frame_shape == (*shape, 3)
    assert pool.render(None, mode="rgb_array").shape == (2, *shape, 3)


def test_in_flight_envs_are_refused(make_pool):
    pool = make_pool("CartPole-v1", 8, batch_size=4, num_threads=2)
    pool.reset()
    pool.send(np.zeros(2, np.int32), [1, 6])
    with pytest.raises(ValueError, match="env 6 is in flight"):
        pool.render([0, 6], mode="rgb_array")
    with pytest.raises(ValueError, match="in flight"):
        pool.render(1, mode="rgb_array")
    assert pool.render([0, 2, 7], mode="rgb_array").shape[0] == 3
    pool.send(np.zeros(2, np.int32), [0, 2])
    *_, info = pool.recv()
    assert sorted(info["env_id"].tolist()) == [0, 1, 2, 6]
    assert pool.render(None, mode="rgb_array").shape[0] == 8
