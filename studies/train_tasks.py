"""Learning curve of a task's embedded default config within a wall-clock budget.

    python studies/train_tasks.py --task Maze-v0 --budget 900 [--seed 1] [--keep]
    python studies/train_tasks.py --task BinPack-v0 --budget 3600 -- --eval-interval 100000

Runs the whole command ``python -m trainer.cli --task T --seed S`` (the
embedded defaults; anything after ``--`` is passed on as extra flags) in a
fresh process, and once ``--budget`` seconds of wall time have passed sends it
SIGINT, on which the trainer finishes the current update, saves and exits.
From the run's metrics.jsonl it prints

* the learning curve: each evaluation's env steps, run wall time,
  training time (rollouts and updates only) and the task's metric (Maze-v0:
  success rate, BinPack-v0: volume utilisation, otherwise the mean return);
* the time split of training: env stepping, model inference during rollouts,
  the rest of the rollout (storage, bookkeeping) and the PPO update, as
  shares of the training time and as steps/s if that part were all there was.

With ``--target`` it also prints the first evaluation that reached it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The checkout goes on the child's path only when it holds a development
# build (pyenvpool/_core*.so); otherwise the child imports the installed package.
IN_PLACE = [str(ROOT)] if any((ROOT / "pyenvpool").glob("_core*.so")) else []
METRIC = {"Maze-v0": "success_rate", "BinPack-v0": "volume_utilization"}


def child_env() -> dict[str, str]:
    """The environment of a trainer subprocess (with the checkout on its path)."""
    path = os.pathsep.join(IN_PLACE + [os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path)


def run(task: str, seed: int, budget: float, run_dir: Path, extra: list[str]) -> float:
    """Train ``task`` in a subprocess for at most ``budget`` seconds (then
    Ctrl-C: it stops after the update and saves); returns the wall time."""
    command = [sys.executable, "-m", "trainer.cli", "--task", task, "--seed", str(seed)]
    command += ["--run-dir", str(run_dir), "--no-progress", *extra]
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=child_env(), stdout=subprocess.DEVNULL)
    try:
        proc.wait(timeout=budget)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # stop after this update, save, exit
        try:
            proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.returncode not in (0, 130, -signal.SIGINT):
        raise SystemExit(f"the trainer exited with status {proc.returncode}")
    return time.perf_counter() - start


def report(task: str, run_dir: Path, target: float | None) -> None:
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    metric = METRIC.get(task, "mean_return")
    print(f"\nlearning curve ({metric} of the evaluation policy: greedy, or SPO's search):")
    print(f"{'env_steps':>12} {'wall_s':>8} {'train_s':>8} {metric:>20}")
    hit = None
    for e in events:
        if e["category"] != "EVALUATOR":
            continue
        value = e.get(metric, e.get("mean_return"))
        steps, wall, train = e["env_steps"], e["wall_time"], e["train_time"]
        print(f"{steps:>12,} {wall:>8.1f} {train:>8.1f} {value:>20.4f}")
        if hit is None and target is not None and value >= target:
            hit = e
    misc = [e for e in events if e["category"] == "MISC"]
    if misc:
        steps = misc[-1]["env_steps"]
        parts = {
            "env": sum(e["env_time"] for e in misc),
            "model (rollout inference)": sum(e["inference_time"] for e in misc),
            "rollout other (storage)": sum(e["storage_time"] for e in misc),
            "update": sum(e["update_time"] for e in misc),
        }
        total = sum(parts.values())
        print(
            f"\ntraining time split over {steps:,} env steps ({total:.1f} s, "
            f"{steps / total:,.0f} steps/s overall):"
        )
        for name, seconds in parts.items():
            rate = steps / seconds if seconds > 0 else float("inf")
            print(
                f"  {name:<28} {seconds:8.1f} s {100 * seconds / total:5.1f} %  "
                f"{rate:>12,.0f} steps/s alone"
            )
    if target is not None:
        if hit is None:
            print(f"\n{metric} never reached {target}")
        else:
            print(
                f"\n{metric} >= {target} first at {hit['env_steps']:,} env steps, "
                f"{hit['wall_time']:.1f} s wall ({hit['train_time']:.1f} s training)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--budget", type=float, required=True, help="wall-clock seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--target", type=float, default=None, help="report when reached")
    parser.add_argument("--runs-root", default=None, help="keep the run under this folder")
    parser.add_argument("--keep", action="store_true", help="keep the temporary run directory")
    parser.add_argument("extra", nargs="*", help="extra trainer flags, after --")
    args = parser.parse_args()
    root = Path(args.runs_root or tempfile.mkdtemp(prefix="train_tasks_"))
    run_dir = root / f"{args.task}-seed{args.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    elapsed = run(args.task, args.seed, args.budget, run_dir, args.extra)
    print(f"command wall time {elapsed:.1f} s; run directory {run_dir}")
    report(args.task, run_dir, args.target)
    if args.runs_root is None and not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
