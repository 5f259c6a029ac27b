"""CartPole-v1 throughput: pyenvpool vs Gymnasium's numpy vector env vs EnvPool.

    python bench/compare_cartpole.py [--envs 4096] [--rounds 7] [--seconds 0.5]

All engines are measured in the same process, interleaved round by round, so
machine noise hits them alike; the script prints the median steps/s of each
and the ratios. It also measures per-call overhead at 16 envs. Each engine is
stepped with random actions and its rewards are checked.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import pyenvpool


def make_runners(num_envs: int, num_threads: int):
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 2, (64, num_envs)).astype(np.int32)
    runners = {}

    pool = pyenvpool.make("CartPole-v1", num_envs, num_threads=num_threads)
    pool.reset(seed=0)

    def run_pyenvpool(k):
        for t in range(k):
            _, reward, *_ = pool.step(actions[t % 64])
        assert reward[0] == 1.0

    runners["pyenvpool"] = run_pyenvpool

    import gymnasium as gym

    genv = gym.make_vec("CartPole-v1", num_envs=num_envs, vectorization_mode="vector_entry_point")
    genv.reset(seed=0)

    def run_gymnasium(k):
        for t in range(k):
            _, reward, *_ = genv.step(actions[t % 64])
        assert reward.shape == (num_envs,)

    runners["gymnasium-numpy"] = run_gymnasium

    try:
        import envpool
    except ImportError:
        print("envpool not installed; skipping it")
    else:
        epool = envpool.make_gymnasium("CartPole-v1", num_envs=num_envs, num_threads=num_threads)
        epool.reset()

        def run_envpool(k):
            for t in range(k):
                _, reward, *_ = epool.step(actions[t % 64])
            assert reward.shape == (num_envs,)

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


def measure(num_envs: int, num_threads: int, rounds: int, seconds: float) -> dict[str, float]:
    runners = make_runners(num_envs, num_threads)
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
    args = parser.parse_args()

    calls = measure(args.envs, args.threads, args.rounds, args.seconds)
    steps = {k: v * args.envs for k, v in calls.items()}
    print(
        f"\nCartPole-v1, {args.envs} envs, {args.threads} threads, median of {args.rounds} rounds"
    )
    print("| engine | steps/s | pyenvpool is |")
    print("|---|---:|---:|")
    for name, v in steps.items():
        print(f"| {name} | {v / 1e6:.2f} M | {steps['pyenvpool'] / v:.1f}x |")

    small = measure(16, 1, args.rounds, args.seconds)
    print(f"\nPer-call overhead, 16 envs, 1 thread (median of {args.rounds} rounds)")
    print("| engine | µs per step call | pyenvpool is |")
    print("|---|---:|---:|")
    for name, v in small.items():
        print(f"| {name} | {1e6 / v:.2f} | {small['pyenvpool'] / v:.1f}x lower |")


if __name__ == "__main__":
    main()
