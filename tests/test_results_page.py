"""The training-results pages reproduce: the first evaluations of their stored
curves come out bit for bit from the current code.

- CartPole-v1's table (``studies/results.py --check``, which trains the
  table's first seed with the study's exact config for just the updates those
  evaluations need);
- the 30-minute HalfCheetah-v5 curve of ours against SB3, seed 1
  (``studies/mujoco_vs_sb3.py --check 2``: the embedded default, trained to its
  second evaluation, against ``studies/data/HalfCheetah-v5/ours-seed1.json``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IN_PLACE = [str(ROOT)] if any((ROOT / "pyenvpool").glob("_core*.so")) else []


def run_study(script: str, *args: str) -> str:
    """Run ``studies/<script>`` with ``args``; its stdout, after checking it succeeded."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [*IN_PLACE, os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "studies" / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_cartpole_curve_prefix_matches_the_page():
    pytest.importorskip("torch")
    out = run_study("results.py", "--check", "CartPole-v1", "--prefix", "4")
    assert "reproduce the page bit for bit" in out


def test_halfcheetah_curve_prefix_matches_the_stored_run():
    pytest.importorskip("torch")
    pytest.importorskip("mujoco", reason="the MuJoCo tasks need the mujoco extra")
    out = run_study("mujoco_vs_sb3.py", "--seed", "1", "--check", "2")
    assert out.count(" ok\n") == 2, out
    assert "reproduce the stored curve bit for bit" in out
