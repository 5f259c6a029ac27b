"""The training-results page reproduces: the first evaluations of its
CartPole-v1 table come out bit for bit from the current code
(``studies/results.py --check``, which trains the table's first seed with the
study's exact config for just the updates those evaluations need)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IN_PLACE = [str(ROOT)] if any((ROOT / "pyenvpool").glob("_core*.so")) else []


def test_cartpole_curve_prefix_matches_the_page():
    pytest.importorskip("torch")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [*IN_PLACE, os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "studies" / "results.py"),
            "--check",
            "CartPole-v1",
            "--prefix",
            "4",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "reproduce the page bit for bit" in result.stdout
