"""Snapshot search throughput next to live stepping, per task.

    python bench/compare_snapshots.py [--roots 256] [--particles 16] [--depth 4]

For each task, one SPO-shaped search is: snapshot the live envs (one root per
env), fan each root out to `particles` copies, simulate them `depth` times,
release everything. Live stepping uses the same batch size as one simulate
call (roots * particles envs). Actions are random *legal* actions (from
`action_mask` where the task has one; uniform within the bounds of a Box, per
component for MultiDiscrete), drawn outside the timed region; only
the engine calls are timed. Prints simulated and live steps/s, their ratio,
and the bytes of one snapshot.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import pyenvpool


def legal_actions(obs: dict, space, rng: np.random.Generator) -> np.ndarray:
    """Random legal actions of the pool's action space (`pool.spec.action`)."""
    n = next(iter(obs.values())).shape[0]
    if space.kind == "box":
        return rng.uniform(space.low, space.high, (n, *space.shape)).astype(np.float32)
    if space.kind == "multi_discrete":
        return np.stack([rng.integers(0, k, n) for k in space.nvec], 1).astype(np.int32)
    if "action_mask" not in obs:
        return rng.integers(0, space.nvec[0], n).astype(np.int32)
    mask = obs["action_mask"].reshape(n, -1)
    scores = rng.random(mask.shape) * mask
    return scores.argmax(axis=1).astype(np.int32)


def live_rate(task_id: str, batch: int, steps: int, rng) -> float:
    pool = pyenvpool.make(task_id, batch, seed=1)
    obs, _ = pool.reset()
    elapsed = 0.0
    for _ in range(steps):
        actions = legal_actions(obs, pool.spec.action, rng)
        start = time.perf_counter()
        obs, *_ = pool.step(actions)
        elapsed += time.perf_counter() - start
    pool.close()
    return batch * steps / elapsed


def search_rate(task_id: str, roots: int, particles: int, depth: int, searches: int, rng):
    pool = pyenvpool.make(task_id, roots, seed=2)
    obs, _ = pool.reset()
    elapsed, simulated = 0.0, 0
    for _ in range(searches):
        start = time.perf_counter()
        root_ids = pool.snapshot()
        elapsed += time.perf_counter() - start
        ids = np.repeat(root_ids, particles)
        sim_obs = {k: np.repeat(v, particles, axis=0) for k, v in obs.items()}
        created = [root_ids]
        for _ in range(depth):
            actions = legal_actions(sim_obs, pool.spec.action, rng)
            start = time.perf_counter()
            sim_obs, _, _, _, ids = pool.simulate(ids, actions)
            elapsed += time.perf_counter() - start
            sim_obs = {k: v.copy() for k, v in sim_obs.items()}
            created.append(ids)
            simulated += len(ids)
        start = time.perf_counter()
        pool.release(np.concatenate(created))
        elapsed += time.perf_counter() - start
        assert pool.snapshot_count == 0
        obs, *_ = pool.step(legal_actions(obs, pool.spec.action, rng))
        obs = {k: v.copy() for k, v in obs.items()}
    bytes_per_state = pool.state_bytes
    pool.close()
    return simulated / elapsed, bytes_per_state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--roots", type=int, default=256)
    parser.add_argument("--particles", type=int, default=16)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    batch = args.roots * args.particles
    print(
        f"roots={args.roots} particles={args.particles} depth={args.depth}; "
        f"live batch {batch}; median of {args.rounds} interleaved rounds\n"
    )
    print("| task | live steps/s | simulated steps/s | sim / live | bytes per snapshot |")
    print("|---|---:|---:|---:|---:|")
    for task_id in pyenvpool.list_tasks():
        if task_id == "Delay-v0":
            continue
        live, sim = [], []
        for _ in range(args.rounds):
            live.append(live_rate(task_id, batch, 20, rng))
            rate, nbytes = search_rate(task_id, args.roots, args.particles, args.depth, 5, rng)
            sim.append(rate)
        lv, sv = float(np.median(live)), float(np.median(sim))
        print(f"| {task_id} | {lv / 1e6:.2f} M | {sv / 1e6:.2f} M | {sv / lv:.0%} | {nbytes} |")


if __name__ == "__main__":
    main()
