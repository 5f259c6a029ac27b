"""ConnectFour-v0 self-play: win rates against fixed players over wall time.

    python studies/connect_four.py --budget 1800 [--seed 1] [--final-games 2000] [-- FLAGS]

Runs the whole command ``python -m trainer.cli --task ConnectFour-v0 --seed S``
(the embedded default config; anything after ``--`` is passed on as extra
trainer flags) in a fresh process and sends it SIGINT once ``--budget``
seconds of wall time have passed (the trainer finishes the update, saves and
exits). Then it prints

* the learning curve from the run's metrics.jsonl: at each evaluation (greedy,
  ``eval_episodes`` games split over the opponents, half of them moving first) the run's
  wall time, training time, env steps and the win rates against the uniformly
  random legal player and the one-step-lookahead heuristic player
  (``trainer.opponents``), as first and as second mover;
* the first evaluation that met the targets (>= 0.99 against random and
  >= 0.90 against the heuristic, both sides);
* a final evaluation of the run's last checkpoint on fresh games
  (``--final-games`` per opponent, another evaluation seed), through the CLI's
  ``--evaluate``, with win / draw / loss rates.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from train_tasks import child_env, run  # this folder is on sys.path

TASK = "ConnectFour-v0"
COLUMNS = ["random_first", "random_second", "heuristic_first", "heuristic_second"]
TARGETS = {"random": 0.99, "heuristic": 0.90}


def meets_targets(event: dict) -> bool:
    return all(event[f"{c}_win"] >= TARGETS[c.split("_")[0]] for c in COLUMNS)


def report(run_dir: Path) -> None:
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evaluations = [e for e in events if e["category"] == "EVALUATOR"]
    print("\nlearning curve (greedy; win rates per opponent and side):")
    header = " ".join(f"{c:>16}" for c in COLUMNS)
    print(f"{'env_steps':>12} {'wall_s':>8} {'train_s':>8} {header}")
    hit = None
    for e in evaluations:
        rates = " ".join(f"{e[f'{c}_win']:>16.3f}" for c in COLUMNS)
        print(f"{e['env_steps']:>12,} {e['wall_time']:>8.1f} {e['train_time']:>8.1f} {rates}")
        if hit is None and meets_targets(e):
            hit = e
    if hit is None:
        print("\ntargets (random >= 0.99, heuristic >= 0.90, both sides) not met")
    else:
        print(
            f"\ntargets (random >= 0.99, heuristic >= 0.90, both sides) first met at "
            f"{hit['env_steps']:,} env steps, {hit['wall_time']:.1f} s wall "
            f"({hit['train_time']:.1f} s training)"
        )
    misc = [e for e in events if e["category"] == "MISC"]
    if misc:
        steps = misc[-1]["env_steps"]
        train_s = sum(e["rollout_time"] + e["update_time"] for e in misc)
        update_s = sum(e["update_time"] for e in misc)
        print(
            f"{steps:,} env steps in {train_s:.1f} s of training ({steps / train_s:,.0f} steps/s; "
            f"update {100 * update_s / train_s:.0f} %)"
        )


def final_evaluation(run_dir: Path, games: int, seed: int) -> None:
    checkpoint = run_dir / "checkpoints" / "latest"
    command = [sys.executable, "-m", "trainer.cli", "--evaluate", str(checkpoint)]
    # --eval-episodes counts the games against all (two) opponents.
    command += ["--eval-episodes", str(2 * games), "--eval-seed", str(seed)]
    print("\n$", " ".join(command), flush=True)
    subprocess.run(command, env=child_env(), check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, required=True, help="wall-clock seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--final-games", type=int, default=2000, help="per opponent")
    parser.add_argument("--final-seed", type=int, default=7_000_000)
    parser.add_argument("--runs-root", default=None, help="keep the run under this folder")
    parser.add_argument("extra", nargs="*", help="extra trainer flags, after --")
    args = parser.parse_args()
    root = Path(args.runs_root or tempfile.mkdtemp(prefix="connect_four_"))
    run_dir = root / f"{TASK}-seed{args.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    elapsed = run(TASK, args.seed, args.budget, run_dir, args.extra)
    print(f"command wall time {elapsed:.1f} s; run directory {run_dir}")
    report(run_dir)
    if args.final_games > 0:
        final_evaluation(run_dir, args.final_games, args.final_seed)
    if args.runs_root is None:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
