"""Regenerate the training-results tables of docs/training.md from the current code.

    python studies/results.py --list                      # the studies and their commands
    python studies/results.py --only CartPole-v1          # one study (several: repeat --only)
    python studies/results.py                             # every study (hours on 2 cores)
    python studies/results.py --check CartPole-v1 --prefix 4

A study is a command (a task's embedded defaults with an env-step budget) and
its seeds. Each seed runs as ``python -m trainer.cli ... --seed S`` in a fresh
process; the script then rewrites the block between the study's markers in
docs/training.md (``<!-- study NAME begin -->`` ... ``<!-- study NAME end -->``)
with the commit, date, machine and command, one row per evaluation (env steps,
the task's metric for every seed, the mean training time to that point) and
the first evaluation that met the study's target, per seed.

The metric columns are deterministic: a seeded CPU run is bit-identical for
the same code, PyTorch build and thread counts. Times are not: they depend on
the machine and its load, which the header records.

``--check NAME --prefix K`` is what CI runs: it trains the study's first seed
in this process, with the study's exact config, for just the updates that
reach the K-th evaluation, and exits non-zero unless those K evaluations equal
the page's values bit for bit.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "training.md"
# The checkout goes on the child's path only when it holds a development
# build (pyenvpool/_core*.so); otherwise the child imports the installed package.
IN_PLACE = [str(ROOT)] if any((ROOT / "pyenvpool").glob("_core*.so")) else []


@dataclasses.dataclass(frozen=True)
class Study:
    """One documented learning curve."""

    name: str
    task: str
    seeds: tuple[int, ...]
    flags: tuple[str, ...] = ()  # beyond --task and --seed
    metric: str = "mean_return"  # the EVALUATOR key the table shows
    target: float | None = None  # first evaluation at or above it, per seed

    def command(self, seed: int | str = "S") -> list[str]:
        return ["pyenvpool-train", "--task", self.task, *self.flags, "--seed", str(seed)]


STUDIES = [
    Study("CartPole-v1", "CartPole-v1", (1, 2, 3, 4, 5), target=475.0),
    Study("Bandit-v0", "Bandit-v0", (1, 2, 3)),
    Study("Squared-v0", "Squared-v0", (1, 2, 3), metric="score"),
    Study(
        "Squared-v0-d2",
        "Squared-v0",
        (1, 2, 3),
        ("--task-kwargs", "{distance_to_target: 2}"),
        metric="score",
    ),
    Study(
        "Squared-v0-spo",
        "Squared-v0",
        (1, 2, 3),
        ("--algo", "spo", "--total-steps", "32768"),
        metric="score",
    ),
    Study(
        "CartPole-v1-hidden-velocity",
        "CartPole-v1",
        (1, 2, 3),
        ("--config", "trainer/configs/examples/CartPole-v1-hidden-velocity.yaml"),
        target=475.0,
    ),
    Study(
        "CartPole-v1-hidden-velocity-ff",
        "CartPole-v1",
        (1, 2, 3),
        (
            "--config",
            "trainer/configs/examples/CartPole-v1-hidden-velocity.yaml",
            "--recurrent",
            "none",
        ),
        target=475.0,
    ),
    Study("Memory-v0", "Memory-v0", (1, 2, 3), metric="success_rate", target=0.95),
    Study(
        "Memory-v0-ff",
        "Memory-v0",
        (1, 2, 3),
        ("--recurrent", "none"),
        metric="success_rate",
        target=0.95,
    ),
    Study("Pendulum-v1", "Pendulum-v1", (1, 2, 3), target=-200.0),
    Study("Pendulum-v1-spo", "Pendulum-v1", (1, 2, 3), ("--algo", "spo"), target=-200.0),
    Study("MountainCarContinuous-v0", "MountainCarContinuous-v0", (1, 2, 3), target=90.0),
    Study("Acrobot-v1", "Acrobot-v1", (1, 2, 3), target=-100.0),
    Study("MountainCar-v0", "MountainCar-v0", (1,), target=-110.0),
    Study(
        "Maze-v0",
        "Maze-v0",
        (1, 2, 3),
        ("--total-steps", "1200000"),
        metric="success_rate",
        target=0.95,
    ),
    Study(
        "Maze-v0-spo",
        "Maze-v0",
        (1, 2, 3),
        ("--algo", "spo"),
        metric="success_rate",
        target=0.9,
    ),
    Study(
        "BinPack-v0",
        "BinPack-v0",
        (1,),
        ("--total-steps", "1200000"),
        metric="volume_utilization",
        target=0.9,
    ),
    Study(
        "ConnectFour-v0",
        "ConnectFour-v0",
        (1,),
        ("--total-steps", "12000000"),
        metric="heuristic_win",
    ),
]


def study(name: str) -> Study:
    for s in STUDIES:
        if s.name == name:
            return s
    raise SystemExit(f"unknown study {name!r}; known: {', '.join(s.name for s in STUDIES)}")


# ------------------------------------------------------------------ running
def child_env() -> dict[str, str]:
    path = os.pathsep.join(IN_PLACE + [os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path)


def evaluations(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines if line.strip()]
    return [e for e in events if e["category"] == "EVALUATOR"]


def run_seed(s: Study, seed: int, work: Path) -> list[dict]:
    run_dir = work / f"{s.name}-seed{seed}"
    command = [sys.executable, "-m", "trainer.cli", *s.command(seed)[1:]]
    command += ["--run-dir", str(run_dir), "--no-progress"]
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, env=child_env(), cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    print(f"  seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
    return evaluations(run_dir)


# ------------------------------------------------------------------- tables
def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    python = platform.python_version()
    return f"{cpu}, {os.cpu_count()} cores, Python {python}, torch {torch.__version__}"


def commit() -> str:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    page = f":!{PAGE.relative_to(ROOT)}"  # the page this script writes does not count
    status = ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"]
    dirty = subprocess.run([*status, "--", ".", page], capture_output=True, text=True)
    dirty = dirty.stdout.strip()
    return (out.stdout.strip() or "unknown") + (" (with uncommitted changes)" if dirty else "")


def table(s: Study, curves: dict[int, list[dict]]) -> str:
    seeds = list(curves)
    steps = sorted({e["env_steps"] for curve in curves.values() for e in curve})
    by_step = {seed: {e["env_steps"]: e for e in curve} for seed, curve in curves.items()}
    lines = [
        f"Commit {commit()}, {datetime.date.today().isoformat()}; {machine()}.",
        "Command: `" + " ".join(s.command()) + f"` for S in {', '.join(map(str, seeds))}.",
        "",
        "| env steps | " + " | ".join(f"seed {seed}" for seed in seeds) + " | mean train s |",
        "|---:|" + "---:|" * len(seeds) + "---:|",
    ]
    for step in steps:
        row = [by_step[seed].get(step) for seed in seeds]
        values = [repr(float(e[s.metric])) if e else "" for e in row]
        times = [e["train_time"] for e in row if e]
        lines.append(f"| {step:,} | " + " | ".join(values) + f" | {sum(times) / len(times):.1f} |")
    if s.target is not None:
        firsts = []
        for seed in seeds:
            hit = next((e for e in curves[seed] if e[s.metric] >= s.target), None)
            firsts.append(
                f"seed {seed}: "
                + (
                    f"{hit['env_steps']:,} steps, {hit['train_time']:.1f} s of training"
                    if hit
                    else "not reached"
                )
            )
        lines += [
            "",
            f"First evaluation with {s.metric} >= {s.target:g}: " + "; ".join(firsts) + ".",
        ]
    return "\n".join(lines)


def markers(name: str) -> tuple[str, str]:
    return f"<!-- study {name} begin -->", f"<!-- study {name} end -->"


def write_block(name: str, text: str) -> None:
    page = PAGE.read_text()
    begin, end = markers(name)
    if begin not in page or end not in page:
        raise SystemExit(f"{PAGE} has no markers for study {name!r}: add\n{begin}\n{end}")
    head, rest = page.split(begin, 1)
    _, tail = rest.split(end, 1)
    PAGE.write_text(f"{head}{begin}\n{text}\n{end}{tail}")


def page_values(name: str) -> list[tuple[int, float]]:
    """(env steps, first seed's value) of each row of the study's table."""
    page = PAGE.read_text()
    begin, end = markers(name)
    block = page.split(begin, 1)[1].split(end, 1)[0]
    rows = []
    for line in block.splitlines():
        m = re.match(r"\|\s*([\d,]+)\s*\|\s*([^|\s]+)\s*\|", line)
        if m:
            rows.append((int(m.group(1).replace(",", "")), float(m.group(2))))
    return rows


# -------------------------------------------------------------------- check
def check(s: Study, prefix: int) -> int:
    """Train the first seed in-process up to the prefix-th evaluation and
    compare each evaluation with the page."""
    from trainer.config import resolve
    from trainer.train import Trainer

    want = page_values(s.name)[:prefix]
    if len(want) < prefix:
        raise SystemExit(f"the page's {s.name} table has only {len(want)} rows")
    flags = dict(_flag_pairs(s.flags))
    config = resolve(flags={"task": s.task, "seed": s.seeds[0], **flags})
    with tempfile.TemporaryDirectory() as work:
        trainer = Trainer.new(config, Path(work) / "run", progress=False)
        try:
            updates = math.ceil(want[-1][0] / trainer.batch_size)
            trainer.run(max_updates=updates)
        finally:
            trainer.close()
        got = [(e["env_steps"], float(e[s.metric])) for e in evaluations(Path(work) / "run")]
    return compare_prefix(s.name, want, got[:prefix], "the page")


def compare_prefix(name: str, want: list[tuple], got: list[tuple], stored: str) -> int:
    """Print each (env steps, value) of ``want`` beside ``got`` and whether the
    first ``len(want)`` evaluations reproduce ``stored`` bit for bit; 0 if so."""
    for (steps, value), (got_steps, got_value) in zip(want, got):
        status = "ok" if (steps, value) == (got_steps, got_value) else "DIFFERS"
        print(f"{steps:>10,}  stored {value!r:>20}  now {got_value!r:>20}  {status}")
    if got[: len(want)] != want:
        print(f"{name}: the first {len(want)} evaluations do not reproduce {stored}")
        return 1
    print(f"{name}: the first {len(want)} evaluations reproduce {stored} bit for bit")
    return 0


def _flag_pairs(flags: tuple[str, ...]):
    """--kebab-flag value pairs as config field names (snake case)."""
    it = iter(flags)
    for flag in it:
        yield flag.lstrip("-").replace("-", "_"), next(it)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", help="a study's name (repeatable)")
    parser.add_argument("--list", action="store_true", help="print the studies and exit")
    parser.add_argument("--check", metavar="NAME", help="check a prefix of NAME against the page")
    parser.add_argument("--prefix", type=int, default=4, help="evaluations --check compares")
    args = parser.parse_args()
    if args.list:
        for s in STUDIES:
            print(f"{s.name:16} seeds {','.join(map(str, s.seeds)):10} {' '.join(s.command())}")
        return 0
    if args.check:
        return check(study(args.check), args.prefix)
    chosen = [study(n) for n in args.only] if args.only else STUDIES
    with tempfile.TemporaryDirectory() as work:
        for s in chosen:
            curves = {seed: run_seed(s, seed, Path(work)) for seed in s.seeds}
            write_block(s.name, table(s, curves))
            print(f"wrote {s.name} into {PAGE.relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
