"""The asynchronous learner (``--algo appo``) against synchronous PPO: steps/s and
the learning curve against wall clock.

    python studies/async_vs_sync.py --study uneven [--seeds 1 2 3] [--cost 500] [--lags 0 0.25 1]
    python studies/async_vs_sync.py --study binpack [--seeds 1] [--budget 600] [--lags 1]

Each seed trains the same config with ``--algo ppo`` and then with ``--algo
appo --max-policy-lag L`` for each L of ``--lags`` (everything else equal;
appo adds V-trace and the actor thread, which acts for half the envs at a
time), one after the other in fresh ``python -m trainer.cli`` processes, so
they see the same machine load. Lag 0: the envs are stepped asynchronously
(no env waits for a slower one) but the actor waits out every update; lag 1:
it also collects the next rollout while the learner updates; a fraction such as
0.25: the first quarter of it. It prints the
greedy learning curves against wall time, the first evaluation that reached
the target, and the throughput: env steps learned from per second of training
(``train_time``: rollouts and updates; for appo the learner's waits for
rollouts and its updates) and per second of wall time; at the end, over the
seeds, each variant's median wall time to the target and the seeds on which
each appo variant got there before ppo.

* ``uneven``: CartPole-v1's embedded defaults with ``step_cost_us=COST``: about
  one step in 16 busy-waits 16 x COST microseconds (a mean of COST per step),
  so at every step a few envs are far slower than the rest (the evaluation
  pool has no step cost: evaluations measure the policy, and take the same
  short time in both runs). Training stops at a greedy mean return of 475
  (``--target-return``), within 262,144 steps.
* ``binpack``: BinPack-v0's embedded defaults for ``--budget`` wall seconds
  each (then SIGINT: the trainer finishes its update and saves). Metric:
  volume utilisation.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
from pathlib import Path

from train_tasks import run


def events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def summary(run_dir: Path, metric: str, target: float | None) -> dict:
    all_events = events(run_dir)
    evaluations = [e for e in all_events if e["category"] == "EVALUATOR"]
    actor = [e for e in all_events if e["category"] == "ACTOR"]
    last = actor[-1]
    hit = None
    if target is not None:
        hit = next((e for e in evaluations if e.get(metric, e["mean_return"]) >= target), None)
    return {
        "curve": [
            (e["env_steps"], e["wall_time"], e.get(metric, e["mean_return"])) for e in evaluations
        ],
        "steps": last["env_steps"],
        "train_rate": last["env_steps"] / last["train_time"],
        "wall_rate": last["env_steps"] / last["wall_time"],
        "hit": hit,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", choices=["uneven", "binpack"], required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--cost", type=int, default=500, help="uneven: mean step cost, us")
    parser.add_argument("--budget", type=float, default=600.0, help="binpack: wall s per run")
    parser.add_argument(
        "--lags", type=float, nargs="+", default=[0, 0.25, 1], help="appo's lag bounds"
    )
    args = parser.parse_args()
    if args.study == "uneven":
        task, metric, target, budget = "CartPole-v1", "mean_return", 475.0, 3600.0
        flags = ["--task-kwargs", f"{{step_cost_us: {args.cost}}}"]
        flags += ["--eval-task-kwargs", "{step_cost_us: 0}"]  # evaluations measure the policy
        flags += ["--total-steps", "262144", "--target-return", "475"]
    else:
        task, metric, target, budget = "BinPack-v0", "volume_utilization", 0.85, args.budget
        flags = []
    root = Path(tempfile.mkdtemp(prefix="async_vs_sync_"))
    hits: dict[str, dict[int, float]] = {}  # variant -> seed -> wall s to the target
    for seed in args.seeds:
        results = {}
        variants = {"ppo": ["--algo", "ppo"]}
        for lag in args.lags:
            variants[f"appo lag {lag:g}"] = ["--algo", "appo", "--max-policy-lag", f"{lag:g}"]
        for name, algo_flags in variants.items():
            run_dir = root / f"{args.study}-{name.replace(' ', '')}-seed{seed}"
            run(task, seed, budget, run_dir, flags + algo_flags)
            results[name] = summary(run_dir, metric, target)
        print(f"\nseed {seed}: greedy {metric} against wall time")
        for algo, r in results.items():
            print(
                f"  {algo:>10}: {r['steps']:,} env steps, {r['train_rate']:,.0f} steps/s of "
                f"training, {r['wall_rate']:,.0f} steps/s of wall time"
            )
            for steps, wall, value in r["curve"]:
                print(f"        {steps:>10,} steps {wall:8.1f} s  {value:.4f}")
            hit = r["hit"]
            hits.setdefault(algo, {})[seed] = hit["wall_time"] if hit else math.inf
            reached = (
                f"{hit['env_steps']:,} steps, {hit['wall_time']:.1f} s wall"
                if hit
                else "not reached"
            )
            print(f"        >= {target}: {reached}")
    if target is not None:
        print_summary(hits, target)
    print(f"\nrun directories: {root}")


def print_summary(hits: dict[str, dict[int, float]], target: float) -> None:
    """Each variant's median wall time to the target over the seeds (a seed that
    never got there counts as infinitely slow), and appo's wins against ppo."""
    print(f"\nover {len(hits['ppo'])} seeds: wall s to {target}")
    for algo, times in hits.items():
        line = f"  {algo:>12}: median {statistics.median(times.values()):.1f} s"
        if algo != "ppo":
            wins = [seed for seed, t in times.items() if t < hits["ppo"][seed]]
            line += f", before ppo on {len(wins)} of {len(times)} seeds {wins}"
        print(line)


if __name__ == "__main__":
    main()
