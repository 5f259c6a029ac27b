"""Crash safety: a CPU training run killed with SIGKILL at random points (in
rollouts, updates and checkpoint writes, which this config makes frequent)
always resumes, never leaves a half-written checkpoint, loses at most one save
interval of progress, and keeps metrics.jsonl parseable (only a torn last line,
which the resume repairs)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from trainer import checkpoint

ROOT = Path(__file__).resolve().parents[2]
# The checkout goes on the child's path only when it holds a development
# build (pyenvpool/_core*.so); otherwise the child imports the installed package.
IN_PLACE = [str(ROOT)] if any((ROOT / "pyenvpool").glob("_core*.so")) else []
INTERVAL = 256  # env steps between checkpoints: one every other update
RUN = [
    "--task", "CartPole-v1", "--num-envs", "8", "--num-steps", "16", "--total-steps", "40960",
    "--eval-interval", "100000", "--checkpoint-interval", str(INTERVAL), "--keep-checkpoints",
    "2", "--no-progress",
]  # fmt: skip


def start(args, cwd):
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(IN_PLACE + [os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.Popen(
        [sys.executable, "-m", "trainer.cli", *args], cwd=cwd, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def metric_lines(run: Path) -> list[str]:
    path = run / "metrics.jsonl"
    return path.read_text().splitlines() if path.exists() else []


def check_after_kill(run: Path) -> int:
    """Invariants of a run directory right after a SIGKILL; returns the latest
    checkpoint's env steps."""
    lines = metric_lines(run)
    for line in lines[:-1]:
        json.loads(line)  # only the last line may be torn
    folder = run / "checkpoints"
    steps = checkpoint.step_dirs(folder)
    assert steps, "no checkpoint survived"
    for step in steps:  # every visible checkpoint is complete and loads safely
        assert {p.name for p in step.iterdir()} >= {
            "model.pt",
            "optimizer.pt",
            "state.pt",
            "metadata.json",
        }
        for name in ("model.pt", "optimizer.pt", "state.pt"):
            torch.load(step / name, weights_only=True)
    latest = (folder / "latest").resolve()
    assert latest in [s.resolve() for s in steps]
    saved = json.loads((latest / "metadata.json").read_text())["env_steps"]
    logged = [json.loads(line)["env_steps"] for line in lines[:-1]]
    # Progress lost: at most one save interval plus the update in flight.
    assert max(logged, default=0) - saved <= INTERVAL + 8 * 16
    return saved


def test_sigkill_at_random_points_then_resume(tmp_path):
    rng = random.Random(1234)
    run = tmp_path / "runs" / "crash"
    kills = 0
    proc = start([*RUN, "--run-dir", "runs/crash"], cwd=tmp_path)
    saved_before = 0
    while kills < 5:
        # Wait for the run to be past its first checkpoint, then kill it at a random moment.
        deadline = time.time() + 120
        while not checkpoint.step_dirs(run / "checkpoints") and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.2, 1.5))
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        saved = check_after_kill(run)
        assert saved >= saved_before  # never goes backwards
        saved_before = saved
        proc = start(["--resume", "runs/crash"], cwd=tmp_path)
    # The last resume runs to the end of the budget.
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in metric_lines(run)]  # every line parses now
    trainer_steps = [e["env_steps"] for e in events if e["category"] == "TRAINER"]
    assert trainer_steps == sorted(set(trainer_steps)), "duplicated or reordered events"
    assert trainer_steps[-1] == 40960
    assert not list((run / "checkpoints").glob(".tmp-*")), "temporary checkpoint left behind"
