"""Rendering: rgb frames/s per task, and step throughput with rendering off
against a build from before the render hook.

    python bench/bench_render.py [--rounds 5] [--seconds 0.5] [--threads 2]
                                 [--baseline /tmp/old [--baseline /tmp/hook]] [--no-frames]
                                 [--cpu-time]

Frames/s: for every task, `pool.render(0, mode="rgb_array")` (one env) and
`pool.render(ids, mode="rgb_array")` (a batch of 64 envs) on a pool of 64 envs
with --threads threads, its envs a few random steps into their episodes. The
frames are checked: the declared shape, more than two colours.

Rendering off (with --baseline, a checkout whose extension is built in place,
e.g. main at 17f5dfd, the commit before the render hook; repeatable):
CartPole-v1 (4096 envs) and BinPack-v0 (1024 envs) step throughput of this
checkout's build and of each baseline's, each imported in its own worker
process. The parent runs timed rounds on the workers in turn (the order
rotated every round), so machine noise hits all alike, and prints for each
build the median and the best round's env steps/s (the best round is the one
other load disturbed least), and the ratios of this build to each baseline. Only
`pool.step` is timed; BinPack's actions (the first legal one) are picked
outside the timer. On a loaded machine, --threads 1 --cpu-time times the
stepping thread's CPU time instead, which descheduling does not inflate.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STEP_TASKS = {"CartPole-v1": 4096, "BinPack-v0": 1024}


def random_actions(pool, obs, rng: np.random.Generator) -> np.ndarray:
    """Random actions of the task's space; legal ones where it has an action mask."""
    n, action = pool.num_envs, pool.spec.action
    if action.kind == "box":
        return rng.uniform(action.low, action.high, (n, *action.shape)).astype(np.float32)
    if action.kind == "multi_discrete":
        return rng.integers(0, action.nvec, (n, len(action.nvec))).astype(np.int32)
    if "action_mask" in obs:
        scores = rng.random((n, pool.spec.num_actions)) + obs["action_mask"]
        return scores.argmax(axis=1).astype(np.int32)
    return rng.integers(0, pool.spec.num_actions, n).astype(np.int32)


def frames_per_second(task: str, threads: int, rounds: int, seconds: float) -> dict:
    import pyenvpool

    batch = 64
    pool = pyenvpool.make(task, batch, num_threads=threads, seed=0)
    obs, _ = pool.reset()
    rng = np.random.default_rng(0)
    for _ in range(5):
        obs, *_ = pool.step(random_actions(pool, obs, rng), copy=True)
    ids = np.arange(batch)
    frames = pool.render(ids, mode="rgb_array")
    assert frames.shape == (batch, *pool.frame_shape) and frames.dtype == np.uint8
    for frame in frames:
        codes = frame.astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], np.int32)
        assert len(np.unique(codes)) > 2, f"{task}: a blank frame"

    def rate(env_ids, frames_per_call):
        calls, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            pool.render(env_ids, mode="rgb_array")
            calls += 1
        return calls * frames_per_call / elapsed

    one, many = [], []
    for _ in range(rounds):
        one.append(rate(0, 1))
        many.append(rate(ids, batch))
    pool.close()
    return {
        "shape": pool.frame_shape,
        "one": statistics.median(one),
        "batch": statistics.median(many),
    }


def worker(task: str, num_envs: int, threads: int, cpu_time: bool) -> None:
    """Steps one pool of the build on sys.path for as long as the parent asks."""
    import pyenvpool

    clock = time.thread_time if cpu_time else time.perf_counter

    print(json.dumps({"file": pyenvpool.__file__}), flush=True)
    pool = pyenvpool.make(task, num_envs, num_threads=threads, seed=0)
    obs, _ = pool.reset()
    actions = np.random.default_rng(0).integers(0, 2, (64, num_envs)).astype(np.int32)
    t = 0
    for line in sys.stdin:
        seconds = float(line)
        steps, timed, start = 0, 0.0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            if task == "BinPack-v0":
                step_actions = obs["action_mask"].argmax(axis=1).astype(np.int32)
            else:
                step_actions = actions[t % 64]
            t += 1
            begin = clock()
            obs, reward, *_ = pool.step(step_actions)
            timed += clock() - begin
            steps += num_envs
        assert np.isfinite(reward).all()
        print(json.dumps({"steps_per_second": steps / timed}), flush=True)


def step_throughput(
    baselines: list[Path], threads: int, rounds: int, seconds: float, cpu_time: bool
) -> dict:
    builds = {"this build": ROOT, **{str(path): path for path in baselines}}
    results = {}
    for task, num_envs in STEP_TASKS.items():
        workers = {}
        for name, tree in builds.items():
            command = [sys.executable, __file__, "--worker", task, "--envs", str(num_envs)]
            command += ["--threads", str(threads)] + (["--cpu-time"] if cpu_time else [])
            env = {**os.environ, "PYTHONPATH": str(tree)}
            process = subprocess.Popen(
                command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            imported = json.loads(process.stdout.readline())["file"]
            assert Path(imported).resolve().is_relative_to(tree.resolve()), (name, imported)
            workers[name] = process
        rates = {name: [] for name in builds}
        names = list(builds)
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                process = workers[name]
                process.stdin.write(f"{seconds}\n")
                process.stdin.flush()
                rates[name].append(json.loads(process.stdout.readline())["steps_per_second"])
        for process in workers.values():
            process.stdin.close()
            assert process.wait() == 0
        results[task] = {
            name: (statistics.median(values), max(values)) for name, values in rates.items()
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--baseline", type=Path, action="append", help="a checkout with its extension built"
    )
    parser.add_argument("--no-frames", action="store_true", help="only the step throughput")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time steps by the stepping thread's CPU time (needs --threads 1), which a loaded "
        "machine disturbs less than wall time",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--envs", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cpu_time and args.threads != 1:
        parser.error("--cpu-time measures one thread: use it with --threads 1")
    if args.worker:
        worker(args.worker, args.envs, args.threads, args.cpu_time)
        return

    import pyenvpool

    print(f"rgb frames/s, {args.threads} threads, median of {args.rounds} rounds")
    print(f"{'task':<16}{'frame (HxW)':>14}{'1 env':>12}{'64 envs':>12}")
    for task in [] if args.no_frames else pyenvpool.list_tasks():
        result = frames_per_second(task, args.threads, args.rounds, args.seconds)
        height, width, _ = result["shape"]
        print(
            f"{task:<16}{f'{height}x{width}':>14}{result['one']:>12,.0f}{result['batch']:>12,.0f}"
        )
    if not args.baseline:
        return
    clock = "thread CPU time" if args.cpu_time else "wall time"
    print(
        f"\nenv steps/s with rendering off, {args.threads} threads, {clock}, median of "
        f"{args.rounds} interleaved rounds"
    )
    header = f"{'task':<16}{'envs':>6}{'build':>20}{'median':>14}{'this / it':>11}"
    print(header + f"{'best':>14}{'this / it':>11}")
    results = step_throughput(args.baseline, args.threads, args.rounds, args.seconds, args.cpu_time)
    for task, rates in results.items():
        (median, best) = rates["this build"]
        for name, (their_median, their_best) in rates.items():
            print(
                f"{task:<16}{STEP_TASKS[task]:>6}{name:>20}{their_median:>14,.0f}"
                f"{median / their_median:>11.3f}{their_best:>14,.0f}{best / their_best:>11.3f}"
            )


if __name__ == "__main__":
    main()
