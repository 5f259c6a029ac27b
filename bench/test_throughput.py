"""pytest-benchmark throughput of live stepping and of snapshot search.

    pytest bench/ --benchmark-only

Each benchmark also checks its result, so a broken engine cannot look fast.
"""

from __future__ import annotations

import numpy as np
import pytest

import pyenvpool

STEPS_PER_ROUND = 20


@pytest.mark.parametrize("num_threads", [1, 2])
@pytest.mark.parametrize("num_envs", [16, 256, 4096, 65536])
def test_cartpole_step(benchmark, num_envs, num_threads):
    pool = pyenvpool.make("CartPole-v1", num_envs, num_threads=num_threads)
    pool.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, (STEPS_PER_ROUND, num_envs)).astype(np.int32)

    def run():
        for a in actions:
            result = pool.step(a)
        return result

    obs, reward, *_ = benchmark(run)
    assert reward.shape == (num_envs,) and np.all(reward == 1.0)
    assert np.all(np.abs(obs["obs"][:, 0]) <= 2.4)
    stats = benchmark.stats.stats
    benchmark.extra_info["steps_per_s"] = num_envs * STEPS_PER_ROUND / stats.median
    pool.close()


@pytest.mark.parametrize("num_envs", [256, 4096])
def test_maze_step(benchmark, num_envs):
    """Random actions (an illegal move is a no-op, as in Jumanji)."""
    pool = pyenvpool.make("Maze-v0", num_envs)
    pool.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 4, (STEPS_PER_ROUND, num_envs)).astype(np.int32)

    def run():
        for a in actions:
            result = pool.step(a)
        return result

    obs, reward, terminated, *_ = benchmark(run)
    assert set(np.unique(reward)) <= {0.0, 1.0}
    assert np.array_equal(reward == 1.0, terminated)
    assert obs["walls"].shape == (num_envs, 10, 10)
    benchmark.extra_info["steps_per_s"] = num_envs * STEPS_PER_ROUND / benchmark.stats.stats.median
    pool.close()


@pytest.mark.parametrize("num_envs", [256, 4096])
def test_pendulum_step(benchmark, num_envs):
    """Box actions: random torques, a third of them out of range (the task clips)."""
    pool = pyenvpool.make("Pendulum-v1", num_envs, num_threads=2)
    pool.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-3, 3, (STEPS_PER_ROUND, num_envs, 1)).astype(np.float32)

    def run():
        for a in actions:
            result = pool.step(a)
        return result

    obs, reward, *_ = benchmark(run)
    assert reward.max() <= 0 and reward.min() >= -16.3
    assert np.abs(obs["obs"][:, 2]).max() <= 8
    benchmark.extra_info["steps_per_s"] = num_envs * STEPS_PER_ROUND / benchmark.stats.stats.median
    pool.close()


@pytest.mark.parametrize("task_id", ["CartPole-v1", "Maze-v0"])
def test_spo_shaped_search(benchmark, task_id):
    """snapshot -> simulate (fan-out 16, depth 4) -> release, for 256 roots."""
    roots, particles, depth = 256, 16, 4
    pool = pyenvpool.make(task_id, roots)
    pool.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, pool.spec.num_actions, (depth, roots * particles)).astype(np.int32)

    def search():
        root_ids = pool.snapshot()
        ids = np.repeat(root_ids, particles)
        created = [root_ids]
        for d in range(depth):
            *_, ids = pool.simulate(ids, actions[d])
            created.append(ids)
        pool.release(np.concatenate(created))

    benchmark(search)
    assert pool.snapshot_count == 0
    stats = benchmark.stats.stats
    benchmark.extra_info["simulated_steps_per_s"] = roots * particles * depth / stats.median
    pool.close()
