"""pytest-benchmark throughput of the MuJoCo tasks: live steps and snapshot search.

    pytest bench/test_mujoco_throughput.py --benchmark-only

(bench/compare_mujoco.py compares against EnvPool and Gymnasium.) Skips
without the mujoco extra. Each benchmark checks its result.
"""

from __future__ import annotations

import numpy as np
import pytest

import pyenvpool

pytest.importorskip("mujoco")

STEPS_PER_ROUND = 10


@pytest.mark.parametrize("num_envs", [16, 256])
@pytest.mark.parametrize("task_id", ["HalfCheetah-v5", "Ant-v5"])
def test_mujoco_step(benchmark, task_id, num_envs):
    pool = pyenvpool.make(task_id, num_envs, num_threads=2)
    pool.reset(seed=0)
    shape = (STEPS_PER_ROUND, num_envs) + pool.single_action_space.shape
    actions = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)

    def run():
        for a in actions:
            result = pool.step(a)
        return result

    obs, reward, *_ = benchmark(run)
    assert np.isfinite(obs["obs"]).all() and np.isfinite(reward).all()
    benchmark.extra_info["steps_per_s"] = num_envs * STEPS_PER_ROUND / benchmark.stats.stats.median
    pool.close()


def test_mujoco_spo_shaped_search(benchmark):
    """snapshot -> simulate (fan-out 8, depth 4) -> release, for 32 HalfCheetah roots."""
    roots, particles, depth = 32, 8, 4
    pool = pyenvpool.make("HalfCheetah-v5", roots, num_threads=2)
    pool.reset(seed=0)
    shape = (depth, roots * particles, 6)
    actions = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)

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
