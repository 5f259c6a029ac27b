"""The EnvPool-compatible module (``pyenvpool.envpool``) in its two auto-reset
modes: env steps per second of ``step`` on CartPole-v1 with random actions.

    python bench/bench_envpool.py [--envs 4096] [--rounds 21]

``next_step`` (EnvPool's behaviour, the module's default) runs on the engine's
next-step mode; ``same_step`` returns the engine's results as they are. Both
are measured in the same run, in interleaved rounds; it prints the median
rates and the median of the rounds' ratios.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import pyenvpool.envpool as envpool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--steps", type=int, default=64, help="steps per round")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    actions = [rng.integers(0, 2, args.envs) for _ in range(args.steps)]
    modes = ("next_step", "same_step")
    envs = {m: envpool.make("CartPole-v1", num_envs=args.envs, seed=0, autoreset=m) for m in modes}
    rates: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.rounds):  # interleaved, so both modes see the same machine load
        for mode, env in envs.items():
            env.reset()
            start = time.perf_counter()
            for action in actions:
                env.step(action)
            rates[mode].append(args.steps * args.envs / (time.perf_counter() - start))
    for mode, env in envs.items():
        env.close()
        print(f"{mode:>9}: median {np.median(rates[mode]) / 1e6:.2f} M env steps/s")
    ratios = np.array(rates["next_step"]) / np.array(rates["same_step"])
    print(f"next_step / same_step: median of the rounds' ratios {np.median(ratios):.3f}")


if __name__ == "__main__":
    main()
