"""GymnasiumVectorEnv throughput against the raw pool it wraps (CartPole-v1).

    python bench/bench_gymnasium.py [--envs 4096] [--threads N] [--clock wall|cpu]

Every variant owns a pool with the same seed, thread count and actions, so all
do the same engine work. They are measured in the same process, interleaved
round by round; the script prints each one's median steps/s and its median
per-round ratio to the raw pool (which returns views of engine memory).
Target (issue 15): the safe default (``copy=True``, ``NEXT_STEP``) >= 80% of
raw; the other modes are reported beside it. Each runner checks what it
returned, so a broken adapter cannot look fast, and with ``copy=True`` that
consecutive steps share no memory. The
``DISABLED`` runner restarts the ended envs after each step with
``reset(options={"reset_mask": ...})``, as code using that mode must.

Random actions end a CartPole episode every ~22 steps, about 190 of 4096 envs
per step: the worst case for the per-ended-episode cost of Gymnasium's
``final_obs`` object array. On a machine shared with other work, wall-clock
ratios swing with the load; ``--threads 1 --clock cpu`` (CPU time of the
process, no worker threads) is the stable measure of the adapter's own cost.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from gymnasium.vector import AutoresetMode

import pyenvpool
from pyenvpool import GymnasiumVectorEnv


def make_runners(num_envs: int, num_threads: int) -> dict:
    actions = np.random.default_rng(0).integers(0, 2, (64, num_envs)).astype(np.int32)

    pool = pyenvpool.make("CartPole-v1", num_envs, num_threads=num_threads)
    pool.reset(seed=0)

    def run_raw(k: int) -> None:
        for t in range(k):
            obs, reward, *_ = pool.step(actions[t % 64])
        assert obs["obs"].shape == (num_envs, 4) and reward[0] == 1.0

    runners = {"raw pool": run_raw}
    variants = [
        (f"{mode.name} copy={copy}", mode, {"copy": copy})
        for mode in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED)
        for copy in (True, False)
    ]
    variants.append(
        ("SAME_STEP copy=True dense_final_obs", AutoresetMode.SAME_STEP, {"dense_final_obs": True})
    )
    for name, mode, kwargs in variants:
        env = GymnasiumVectorEnv(
            "CartPole-v1", num_envs, autoreset_mode=mode, num_threads=num_threads, **kwargs
        )
        env.reset(seed=0)
        runners[name] = _adapter_runner(env, actions)
    return runners


def _adapter_runner(env: GymnasiumVectorEnv, actions: np.ndarray):
    mode = env.metadata["autoreset_mode"]

    def run(k: int) -> None:
        ended = 0
        previous = None
        for t in range(k):
            obs, reward, terminated, truncated, info = env.step(actions[t % 64])
            if mode == AutoresetMode.DISABLED and info:
                env.reset(options={"reset_mask": terminated | truncated})
            ended += bool(info)
            if t == 1:
                previous = obs
        assert obs.shape == (env.num_envs, 4) and reward.shape == (env.num_envs,)
        if mode == AutoresetMode.SAME_STEP and info and not env._dense_final_obs:
            i = int(np.flatnonzero(info["_final_obs"])[0])
            assert np.shape(info["final_obs"][i]) == (4,) and reward[i] == 1.0
        if env.copy and k > 2:
            assert not np.shares_memory(obs, previous)
        assert ended > 0 or k < 50

    return run


def calibrate(run, seconds: float, clock) -> int:
    """Calls of `run(k)` that take about `seconds`."""
    k = 1
    while True:
        start = clock()
        run(k)
        elapsed = clock() - start
        if elapsed > seconds / 4:
            return max(1, int(k * seconds / elapsed))
        k *= 2


def measure(num_envs: int, num_threads: int | None, rounds: int, seconds: float, clock):
    runners = make_runners(num_envs, num_threads)
    counts = {name: calibrate(run, seconds, clock) for name, run in runners.items()}
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            start = clock()
            run(counts[name])
            rates[name].append(counts[name] * num_envs / (clock() - start))
    raw = np.array(rates["raw pool"])
    return {
        name: (float(np.median(r)), float(np.median(np.array(r) / raw)))
        for name, r in rates.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=None, help="default: one per core")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=0.3, help="per variant per round")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = parser.parse_args()

    clock = time.perf_counter if args.clock == "wall" else time.process_time
    results = measure(args.envs, args.threads, args.rounds, args.seconds, clock)
    threads = pyenvpool.make("CartPole-v1", args.envs, num_threads=args.threads).num_threads
    print(
        f"\nCartPole-v1, {args.envs} envs, {threads} threads, {args.clock} clock, "
        f"median of {args.rounds} rounds"
    )
    print("| variant | steps/s | µs per step call | of raw |")
    print("|---|---:|---:|---:|")
    for name, (rate, ratio) in results.items():
        print(f"| {name} | {rate / 1e6:.1f} M | {args.envs / rate * 1e6:.1f} | {ratio:.1%} |")


if __name__ == "__main__":
    main()
