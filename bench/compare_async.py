"""Asynchronous send/recv vs synchronous step, pyenvpool vs EnvPool, same run.

    python bench/compare_async.py [--envs 4096] [--batch 1024] [--threads 2]

CartPole-v1 with random actions. Async loops are EnvPool's recommended form:
recv a batch, send actions for exactly those env ids. Rounds are interleaved;
the script prints the median env steps/s of each mode and engine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import pyenvpool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args()
    n, b = args.envs, args.batch
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 2, n).astype(np.int32)

    sync = pyenvpool.make("CartPole-v1", n, num_threads=args.threads)
    sync.reset()
    apool = pyenvpool.make("CartPole-v1", n, num_threads=args.threads, batch_size=b)
    apool.reset()
    apool.send(actions, np.arange(n))

    def run_sync(k):
        for _ in range(k):
            sync.step(actions)
        return k * n

    def run_async(k):
        for _ in range(k):
            *_, info = apool.recv()
            apool.send(actions[:b], info["env_id"])
        return k * b

    runners = {"pyenvpool sync step": run_sync, "pyenvpool async send/recv": run_async}
    try:
        import envpool
    except ImportError:
        print("envpool not installed; skipping it")
    else:
        esync = envpool.make_gymnasium("CartPole-v1", num_envs=n, num_threads=args.threads)
        esync.reset()
        easync = envpool.make_gymnasium(
            "CartPole-v1", num_envs=n, batch_size=b, num_threads=args.threads
        )
        easync.async_reset()

        def run_esync(k):
            for _ in range(k):
                esync.step(actions)
            return k * n

        def run_easync(k):
            for _ in range(k):
                *_, info = easync.recv()
                easync.send(actions[:b], info["env_id"])
            return k * b

        runners["envpool sync step"] = run_esync
        runners["envpool async send/recv"] = run_easync

    def rate(run, k):
        start = time.perf_counter()
        steps = run(k)
        return steps / (time.perf_counter() - start)

    counts = {}
    for name, run in runners.items():
        k = 1
        while True:
            start = time.perf_counter()
            run(k)
            if time.perf_counter() - start > args.seconds / 4:
                break
            k *= 2
        counts[name] = max(1, int(k * args.seconds / (time.perf_counter() - start)))
    samples = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            samples[name].append(rate(run, counts[name]))
    print(f"\nCartPole-v1, {n} envs, batch {b}, {args.threads} threads, median of {args.rounds}")
    print("| mode | env steps/s |")
    print("|---|---:|")
    for name, s in samples.items():
        print(f"| {name} | {np.median(s) / 1e6:.2f} M |")


if __name__ == "__main__":
    main()
