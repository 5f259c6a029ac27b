"""MuJoCo locomotion throughput: pyenvpool vs EnvPool vs Gymnasium's SyncVectorEnv.

    python bench/compare_mujoco.py [--tasks HalfCheetah-v5 Ant-v5] [--envs 16 256 4096]
        [--threads 2] [--rounds 7] [--seconds 1.0] [--gym-max-envs 64]
        [--snapshots] [--overhead]

Per task and env count, the engines step the same kind of random actions
(uniform in [-1, 1]) in one process, interleaved round by round, so machine
noise hits them alike; the script prints the median steps/s of each, the
median of the per-round ratios pyenvpool / EnvPool, and each engine's CPU
time per env step (all its threads; time lost to other processes on a shared
machine does not count, busy-waiting does). Gymnasium's
SyncVectorEnv steps its envs one after another in Python (one thread);
building thousands of them takes minutes and gigabytes, so it runs with at
most --gym-max-envs envs (its steps/s hardly depends on the count).

--snapshots adds, for pyenvpool: `simulate` from snapshots (a chain of
simulate calls, releasing each step's input ids) against live `step` at the
same batch size, `snapshot` + `restore` rates, and the bytes per snapshot.

--overhead compiles bench/mujoco_overhead.cc and prints the engine's cost per
env-step above mj_step on one thread (thread CPU time, so the shared
machine's load does not count).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import pyenvpool
from pyenvpool import _core, _mujoco

ROOT = Path(__file__).resolve().parents[1]


def _timed(run, seconds: float) -> tuple[float, float]:
    """(steps/s, CPU microseconds per env step) of `run(k)` (k batch steps,
    returns the env steps taken) over ~`seconds`. The CPU time is the whole
    process's (every thread), so it counts work and busy-waiting but not the
    time other processes held the shared cores."""
    run(2)  # warm
    start, cpu, stepped = time.perf_counter(), time.process_time(), 0
    while time.perf_counter() - start < seconds:
        stepped += run(8)
    cpu_us = (time.process_time() - cpu) / stepped * 1e6
    return stepped / (time.perf_counter() - start), cpu_us


def make_runners(task: str, num_envs: int, threads: int, gym_max_envs: int) -> dict:
    rng = np.random.default_rng(0)
    runners = {}
    pool = pyenvpool.make(task, num_envs, num_threads=threads)
    pool.reset(seed=0)
    dim = pool.single_action_space.shape[0]
    actions = rng.uniform(-1, 1, (16, num_envs, dim)).astype(np.float32)

    def run_pyenvpool(k: int) -> int:
        for t in range(k):
            _, reward, *_ = pool.step(actions[t % 16])
        assert np.isfinite(reward).all()
        return k * num_envs

    runners["pyenvpool"] = (run_pyenvpool, pool.close)

    try:
        import envpool
    except ImportError:
        print("envpool not installed; skipping it")
    else:
        epool = envpool.make(task, env_type="gymnasium", num_envs=num_envs, num_threads=threads)
        epool.reset()

        def run_envpool(k: int) -> int:
            for t in range(k):
                _, reward, *_ = epool.step(actions[t % 16])
            assert reward.shape == (num_envs,)
            return k * num_envs

        runners["envpool"] = (run_envpool, epool.close)

    import gymnasium as gym

    g_envs = min(num_envs, gym_max_envs)
    genv = gym.vector.SyncVectorEnv([lambda: gym.make(task) for _ in range(g_envs)])
    genv.reset(seed=0)

    def run_gymnasium(k: int) -> int:
        for t in range(k):
            _, reward, *_ = genv.step(actions[t % 16, :g_envs])
        assert reward.shape == (g_envs,)
        return k * g_envs

    runners[f"gymnasium-sync({g_envs})"] = (run_gymnasium, genv.close)
    return runners


def compare(task: str, num_envs: int, args) -> dict:
    runners = make_runners(task, num_envs, args.threads, args.gym_max_envs)
    rates = {name: [] for name in runners}
    cpu = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, (run, _) in runners.items():
            rate, cpu_us = _timed(run, args.seconds)
            rates[name].append(rate)
            cpu[name].append(cpu_us)
    for _, close in runners.values():
        close()
    row = {"task": task, "envs": num_envs, "threads": args.threads}
    for name, values in rates.items():
        row[name] = round(statistics.median(values))
    for name, values in cpu.items():
        row[f"{name}_cpu_us"] = round(statistics.median(values), 1)
    if "envpool" in rates:
        ratios = [a / b for a, b in zip(rates["pyenvpool"], rates["envpool"])]
        row["pyenvpool/envpool"] = round(statistics.median(ratios), 2)
    return row


def snapshots(task: str, num_envs: int, args) -> dict:
    """simulate and snapshot/restore throughput against live stepping."""
    pool = pyenvpool.make(task, num_envs, num_threads=args.threads, autoreset=False)
    pool.reset(seed=0)
    dim = pool.single_action_space.shape[0]
    actions = np.random.default_rng(0).uniform(-0.3, 0.3, (16, num_envs, dim)).astype(np.float32)
    for t in range(5):
        pool.step(actions[t])
    root = pool.snapshot()

    def live(k: int) -> int:
        pool.restore(root)  # from the same states as simulate (and never near the time limit)
        for t in range(k):
            _, reward, terminated, truncated, _ = pool.step(actions[t % 16])
        assert not (terminated | truncated).any()  # an ended env would be a free no-op step
        return k * num_envs

    def simulate(k: int) -> int:
        ids = root
        for t in range(k):
            _, reward, terminated, truncated, new = pool.simulate(ids, actions[t % 16])
            assert not (terminated | truncated).any()
            if ids is not root:
                pool.release(ids)
            ids = new
        pool.release(ids)
        assert np.isfinite(reward).all()
        return k * num_envs

    def snapshot_restore(k: int) -> int:
        for _ in range(k):
            ids = pool.snapshot()
            pool.restore(ids)
            pool.release(ids)
        return k * num_envs

    rates = {"step": [], "simulate": [], "snapshot+restore": []}
    for _ in range(args.rounds):
        rates["step"].append(_timed(live, args.seconds)[0])
        rates["simulate"].append(_timed(simulate, args.seconds)[0])
        rates["snapshot+restore"].append(_timed(snapshot_restore, args.seconds / 4)[0])
    ratios = [s / t for s, t in zip(rates["simulate"], rates["step"])]
    row = {"task": task, "envs": num_envs, "threads": args.threads}
    row.update({f"{k}_per_s": round(statistics.median(v)) for k, v in rates.items()})
    row["simulate/step"] = round(statistics.median(ratios), 3)
    row["bytes_per_snapshot"] = pool.state_bytes
    pool.close()
    return row


def overhead(task: str, args) -> dict:
    """Engine cost per env-step above mj_step (bench/mujoco_overhead.cc)."""
    _mujoco.prepare(task)
    library = _mujoco.find_library(task)
    include = os.path.join(os.path.dirname(library), "include")
    with tempfile.TemporaryDirectory() as tmp:
        binary = str(Path(tmp) / "mujoco_overhead")
        subprocess.run(
            ["c++", "-O3", "-std=c++17", "-ffp-contract=off", f"-I{ROOT / 'csrc'}"]
            + ["-isystem", include, str(ROOT / "bench" / "mujoco_overhead.cc")]
            + [str(ROOT / "csrc" / "mujoco" / "runtime.cpp"), "-ldl", "-pthread", "-o", binary],
            check=True,
        )
        out = subprocess.run(
            [binary, library, _mujoco.ASSETS_DIR, task, "64", "50", str(args.rounds)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["HalfCheetah-v5", "Ant-v5"])
    parser.add_argument("--envs", nargs="+", type=int, default=[16, 256, 4096])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--gym-max-envs", type=int, default=64)
    parser.add_argument("--snapshots", action="store_true")
    parser.add_argument("--overhead", action="store_true")
    args = parser.parse_args()
    python = sys.version.split()[0]
    print(f"# pyenvpool {pyenvpool.__version__}, MuJoCo {_core.mujoco_version}, Python {python}")
    for task in args.tasks:
        for n in args.envs:
            print(json.dumps(compare(task, n, args)), flush=True)
        if args.snapshots:
            for n in args.envs:
                print(json.dumps(snapshots(task, n, args)), flush=True)
        if args.overhead:
            print(json.dumps(overhead(task, args)), flush=True)


if __name__ == "__main__":
    main()
