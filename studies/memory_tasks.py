"""Tasks that need memory: a recurrent policy against a feed-forward one, same budget.

    python studies/memory_tasks.py --study memory [--seeds 1 2 3]
    python studies/memory_tasks.py --study cartpole [--seeds 1 2 3]

Each study trains its config with ``--recurrent`` as configured and with
``--recurrent none`` (everything else equal), seed by seed, the two runs of a
seed one after the other (so both see the same machine load), each in a fresh
``python -m trainer.cli`` process. It prints both greedy learning curves (env
steps, training seconds, the metric) and the first evaluation of each run that
reached the target.

* ``memory``: Memory-v0's embedded defaults (an LSTM; the cue 8 steps before
  the query). Metric: success rate; target 0.95; chance is 0.25.
* ``cartpole``: CartPole-v1 with ``hide_velocity=True`` from
  ``trainer/configs/examples/CartPole-v1-hidden-velocity.yaml``. Metric: the
  greedy mean return over 100 episodes; target 475.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from train_tasks import ROOT, run

STUDIES = {
    "memory": {
        "task": "Memory-v0",
        "flags": [],
        "metric": "success_rate",
        "target": 0.95,
    },
    "cartpole": {
        "task": "CartPole-v1",
        "flags": [
            "--config",
            str(ROOT / "trainer/configs/examples/CartPole-v1-hidden-velocity.yaml"),
        ],
        "metric": "mean_return",
        "target": 475.0,
    },
}


def curve(run_dir: Path, metric: str) -> list[dict]:
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [
        {"env_steps": e["env_steps"], "train_time": e["train_time"], "value": e[metric]}
        for e in events
        if e["category"] == "EVALUATOR"
    ]


def first_hit(points: list[dict], target: float) -> str:
    hit = next((p for p in points if p["value"] >= target), None)
    if hit is None:
        return "not reached"
    return f"{hit['env_steps']:,} steps, {hit['train_time']:.1f} s of training"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", choices=sorted(STUDIES), required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--budget", type=float, default=3600.0, help="wall seconds per run")
    args = parser.parse_args()
    study = STUDIES[args.study]
    root = Path(tempfile.mkdtemp(prefix="memory_tasks_"))
    for seed in args.seeds:
        curves = {}
        for kind, extra in (("recurrent", []), ("feed-forward", ["--recurrent", "none"])):
            run_dir = root / f"{args.study}-{kind}-seed{seed}"
            run(study["task"], seed, args.budget, run_dir, study["flags"] + extra)
            curves[kind] = curve(run_dir, study["metric"])
        print(f"\nseed {seed}: greedy {study['metric']} (training seconds in brackets)")
        print(f"{'env steps':>10} | {'recurrent':>18} | {'feed-forward':>18}")
        for a, b in zip(curves["recurrent"], curves["feed-forward"]):
            cells = [f"{p['value']:.4g} ({p['train_time']:.0f} s)" for p in (a, b)]
            print(f"{a['env_steps']:>10,} | {cells[0]:>18} | {cells[1]:>18}")
        target = study["target"]
        for kind, points in curves.items():
            print(f"  {kind}, first evaluation >= {target}: {first_hit(points, target)}")
    print(f"\nrun directories: {root}")


if __name__ == "__main__":
    main()
