"""Pendulum-v1 throughput: pyenvpool vs Gymnasium's SyncVectorEnv vs EnvPool.

    python bench/compare_pendulum.py [--envs 4096] [--threads 2] [--rounds 7] [--seconds 0.5]

Gymnasium 1.x has no vectorised Pendulum (``make_vec(...,
vectorization_mode="vector_entry_point")`` raises: Pendulum-v1 registers no
vector entry point), and its AsyncVectorEnv runs one process per env, which
4096 envs cannot afford; its fastest option here is ``make_vec(...,
vectorization_mode="sync")``, a SyncVectorEnv stepping 4096 PendulumEnv
objects in one Python thread. pyenvpool and EnvPool get `--threads` worker
threads each.

All engines are measured in the same process, interleaved round by round, so
machine noise hits them alike; the script prints the median steps/s of each and
the ratios. Each engine is stepped with random torques in [-2, 2] and its
rewards are checked to be Pendulum's (within [-16.3, 0]).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import pyenvpool


def _check(reward: np.ndarray, num_envs: int) -> None:
    assert reward.shape == (num_envs,) and reward.max() <= 0 and reward.min() >= -16.3


def make_runners(num_envs: int, num_threads: int, gymnasium: bool):
    rng = np.random.default_rng(0)
    actions = rng.uniform(-2, 2, (64, num_envs, 1)).astype(np.float32)
    runners = {}

    pool = pyenvpool.make("Pendulum-v1", num_envs, num_threads=num_threads)
    pool.reset(seed=0)

    def run_pyenvpool(k):
        for t in range(k):
            _, reward, *_ = pool.step(actions[t % 64])
        _check(reward, num_envs)

    runners["pyenvpool"] = run_pyenvpool

    if gymnasium:
        import gymnasium as gym

        genv = gym.make_vec("Pendulum-v1", num_envs=num_envs, vectorization_mode="sync")
        genv.reset(seed=0)

        def run_gymnasium(k):
            for t in range(k):
                _, reward, *_ = genv.step(actions[t % 64])
            _check(reward, num_envs)

        runners["gymnasium-sync"] = run_gymnasium

    try:
        import envpool
    except ImportError:
        print("envpool not installed; skipping it")
    else:
        epool = envpool.make_gymnasium("Pendulum-v1", num_envs=num_envs, num_threads=num_threads)
        epool.reset()

        def run_envpool(k):
            for t in range(k):
                _, reward, *_ = epool.step(actions[t % 64])
            _check(reward, num_envs)

        runners["envpool"] = run_envpool
    return runners


def calibrate(run, seconds: float) -> int:
    k = 1
    while True:
        start = time.perf_counter()
        run(k)
        if time.perf_counter() - start > seconds / 4:
            return max(1, int(k * seconds / (time.perf_counter() - start)))
        k *= 2


def measure(num_envs: int, num_threads: int, rounds: int, seconds: float, gymnasium: bool):
    runners = make_runners(num_envs, num_threads, gymnasium)
    counts = {name: calibrate(run, seconds) for name, run in runners.items()}
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            run(counts[name])
            samples[name].append(counts[name] / (time.perf_counter() - start))
    return {name: float(np.median(s)) for name, s in samples.items()}  # calls per second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--no-gymnasium", action="store_true", help="skip the slow SyncVectorEnv")
    args = parser.parse_args()

    calls = measure(args.envs, args.threads, args.rounds, args.seconds, not args.no_gymnasium)
    steps = {k: v * args.envs for k, v in calls.items()}
    print(
        f"\nPendulum-v1, {args.envs} envs, {args.threads} threads, median of {args.rounds} rounds"
    )
    print("| engine | steps/s | pyenvpool is |")
    print("|---|---:|---:|")
    for name, v in steps.items():
        print(f"| {name} | {v / 1e6:.3f} M | {steps['pyenvpool'] / v:.1f}x |")


if __name__ == "__main__":
    main()
