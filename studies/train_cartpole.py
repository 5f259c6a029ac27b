"""Time to a greedy CartPole-v1 return of 475 with the embedded default config.

    python studies/train_cartpole.py [--seeds 1,2,3,4,5] [--keep]

Each seed runs the whole command, ``python -m trainer.cli --task CartPole-v1
--seed S``, in a fresh process, so the command time includes the Python and
PyTorch imports. From the run's metrics.jsonl it reads the first evaluation
(greedy, 100 episodes) whose mean return is >= 475 and reports

* ``train_s``: training wall time (rollouts and updates) up to that evaluation;
* ``run_s``:   run wall time up to it (also evaluations and checkpoints);
* ``command_s``: the whole command, start to exit, full default budget.

The targets (issue 6) are a median ``train_s`` <= 5 s and ``command_s`` <=
10 s on a 2-core machine; the script exits with status 1 if a seed never
reaches 475 or a median misses its target.
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

ROOT = Path(__file__).resolve().parents[1]
# The checkout goes on the child's path only when it holds a development
# build (pyenvpool/_core*.so); otherwise the child imports the installed package.
IN_PLACE = [str(ROOT)] if any((ROOT / "pyenvpool").glob("_core*.so")) else []
THRESHOLD = 475.0


def run_seed(seed: int, runs_root: Path) -> dict:
    run_dir = runs_root / f"cartpole-seed{seed}"
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(IN_PLACE + [os.environ.get("PYTHONPATH", "")])
    )
    command = [
        sys.executable,
        "-m",
        "trainer.cli",
        "--task",
        "CartPole-v1",
        "--seed",
        str(seed),
        "--run-dir",
        str(run_dir),
        "--no-progress",
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    command_s = time.perf_counter() - start
    evaluations = [
        event
        for event in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
        if event["category"] == "EVALUATOR"
    ]
    hit = next((e for e in evaluations if e["mean_return"] >= THRESHOLD), None)
    return {
        "seed": seed,
        "env_steps": hit["env_steps"] if hit else None,
        "train_s": hit["train_time"] if hit else None,
        "run_s": hit["wall_time"] if hit else None,
        "command_s": command_s,
        "final_return": evaluations[-1]["mean_return"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--keep", action="store_true", help="keep the run directories")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        runs_root = Path("runs/train_cartpole") if args.keep else Path(tmp)
        results = [run_seed(seed, runs_root) for seed in seeds]
    header = ("seed", "steps to 475", "train_s", "run_s", "command_s", "final")
    print("{:>4} {:>12} {:>8} {:>7} {:>9} {:>6}".format(*header))
    for r in results:
        steps = f"{r['env_steps']:,}" if r["env_steps"] else "never"
        train = f"{r['train_s']:.2f}" if r["train_s"] is not None else "-"
        run = f"{r['run_s']:.2f}" if r["run_s"] is not None else "-"
        print(
            f"{r['seed']:>4} {steps:>12} {train:>8} {run:>7} {r['command_s']:>9.2f} "
            f"{r['final_return']:>6.1f}"
        )
    reached = [r for r in results if r["train_s"] is not None]
    ok = len(reached) == len(results)
    if reached:
        train = statistics.median(r["train_s"] for r in reached)
        command = statistics.median(r["command_s"] for r in results)
        print(
            f"median: train {train:.2f} s to {THRESHOLD:g} (target <= 5), "
            f"whole command {command:.2f} s (target <= 10); {len(reached)}/{len(results)} reached"
        )
        ok = ok and train <= 5.0 and command <= 10.0
    print(json.dumps({"cpu_count": os.cpu_count(), "results": results}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
