"""The documentation's examples run, so the docs cannot rot.

Every ```python block of a page (docs/*.md and README.md) is part of one
script per page, run top to bottom in a fresh interpreter: later blocks may
use what earlier ones defined. Code that is not meant to run goes in blocks of
another language (```bash, ```text).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The checkout goes on the child's path only when it holds a development
# build (pyenvpool/_core*.so); otherwise the child imports the installed package.
IN_PLACE = [str(ROOT)] if any((ROOT / "pyenvpool").glob("_core*.so")) else []
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
# Optional packages that a page's imports need (module imported -> package):
# a page whose package is missing is skipped.
OPTIONAL = {
    "gymnasium": "gymnasium",
    "torch": "torch",
    "stable_baselines3": "stable_baselines3",
    "sb3_contrib": "sb3_contrib",
    "pettingzoo": "pettingzoo",
    "pyenvpool.sb3": "stable_baselines3",
    "pyenvpool.pettingzoo": "pettingzoo",
    "pyenvpool.envpool": "gymnasium",
}
PYTHON_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(page: Path) -> list[str]:
    return PYTHON_BLOCK.findall(page.read_text()) if page.exists() else []


def test_block_extraction():
    text = "a\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = x\n```\n"
    assert PYTHON_BLOCK.findall(text) == ["x = 1\n", "y = x\n"]


def test_some_pages_have_examples():
    assert EXAMPLE_PAGES, "no page has a python block"


EXAMPLE_PAGES = [page for page in PAGES if python_blocks(page)]


@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_page_examples_run(page, tmp_path):
    blocks = python_blocks(page)
    code = "".join(blocks)
    needs = {
        package
        for module, package in OPTIONAL.items()
        if re.search(rf"^\s*(?:import|from) {re.escape(module)}\b", code, re.M)
    }
    if re.search(r'"(HalfCheetah|Hopper|Walker2d|Ant)-v5"', code):
        needs.add("mujoco")  # the MuJoCo tasks need the mujoco extra
    for module in sorted(needs):
        pytest.importorskip(module)
    script = tmp_path / f"example_{page.stem}.py"  # not gymnasium.py: no shadowing
    script.write_text("\n\n".join(blocks))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [*IN_PLACE, os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{page.name} examples failed:\n{result.stdout}\n{result.stderr}"
