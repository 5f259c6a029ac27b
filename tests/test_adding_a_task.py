"""docs/adding-a-task.md, followed literally.

The source tree is copied to a temporary directory; the example header and the
registry lines are taken from the page's code blocks (```cpp <path>), the
extension is built with CMake as the page says, and the page's ```python
custom-build blocks and its ```bash custom-build training command run against
that build, followed by checks of what the page promises the task gets for
free. The example never enters the shipped registry.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pyenvpool

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "adding-a-task.md"
# A fenced block with a title after the language, which mkdocs shows above it:
# ```cpp title="csrc/tasks/x.h", ```python title="custom-build".
TAGGED_BLOCK = re.compile(
    r'^```(\w+)[ \t]+title="([^"]+)"[ \t]*\n(.*?)^```[ \t]*$', re.MULTILINE | re.DOTALL
)


def tagged_blocks(lang: str, tag: str | None = None) -> list[tuple[str, str]]:
    """(tag, body) of the page's blocks in language ``lang`` (and with ``tag``)."""
    return [
        (t, body)
        for lang_, t, body in TAGGED_BLOCK.findall(DOC.read_text())
        if lang_ == lang and (tag is None or t == tag)
    ]


def header_block() -> tuple[str, str]:
    [(path, body)] = [(t, b) for t, b in tagged_blocks("cpp") if t.startswith("csrc/tasks/")]
    return path, body


def task_id() -> str:
    return re.search(r'kId = "([^"]+)"', header_block()[1]).group(1)


def test_the_page_has_the_blocks_this_test_follows():
    path, body = header_block()
    assert path.endswith(".h") and "class " in body
    [(_, registry)] = tagged_blocks("cpp", "csrc/registry.cpp")
    lines = [line.strip() for line in registry.splitlines() if line.strip()]
    assert len(lines) == 2 and lines[0].startswith("#include") and lines[1].startswith("Entry<")
    assert tagged_blocks("python", "custom-build")
    assert len(tagged_blocks("bash", "custom-build")) == 1


def test_the_example_is_not_shipped():
    name = Path(header_block()[0]).name
    assert task_id() not in pyenvpool.list_tasks()
    assert not (ROOT / "csrc" / "tasks" / name).exists()
    assert name not in (ROOT / "csrc" / "registry.cpp").read_text()


def _add_registry_lines(registry: Path, lines: list[str]) -> None:
    """Insert the page's #include after the last task include and its Entry<>
    line after the last Entry<> line, as the page says."""
    text = registry.read_text().splitlines()
    for line in lines:
        if line.strip().startswith("#include"):
            anchor = max(i for i, t in enumerate(text) if t.startswith('#include "tasks/'))
        else:
            anchor = max(i for i, t in enumerate(text) if t.strip().startswith("Entry<"))
        text.insert(anchor + 1, line)
    registry.write_text("\n".join(text) + "\n")


@pytest.fixture(scope="module")
def custom_build(tmp_path_factory) -> Path:
    """A copy of the source tree with the page's task in it, built with CMake."""
    missing = [tool for tool in ("cmake", "ninja") if shutil.which(tool) is None]
    if importlib.util.find_spec("pybind11") is None:
        missing.append("pybind11")
    if shutil.which(os.environ.get("CXX", "c++")) is None:
        missing.append("a C++ compiler")
    if missing:
        pytest.skip(f"building the example needs {', '.join(missing)} (pip install cmake ninja)")
    tree = tmp_path_factory.mktemp("custom_build")
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.pyc")
    for name in ("csrc", "pyenvpool", "trainer"):
        shutil.copytree(ROOT / name, tree / name, ignore=ignore)
    for name in ("CMakeLists.txt", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    path, body = header_block()
    (tree / path).write_text(body)
    [(_, registry)] = tagged_blocks("cpp", "csrc/registry.cpp")
    _add_registry_lines(tree / "csrc" / "registry.cpp", [x for x in registry.splitlines() if x])
    pybind11_dir = subprocess.run(
        [sys.executable, "-m", "pybind11", "--cmakedir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    for command in (
        ["cmake", "-S", ".", "-B", "build", "-G", "Ninja", f"-Dpybind11_DIR={pybind11_dir}"]
        + [f"-DPython_EXECUTABLE={sys.executable}"],
        ["cmake", "--build", "build"],
    ):
        result = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, (
            f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
        )
    assert list((tree / "pyenvpool").glob("_core*.so"))
    return tree


def _run(tree: Path, args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, *args], cwd=tree, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


# What the page promises the task gets for free, checked on the built example.
ENGINE_CHECKS = r"""
import numpy as np
import pyenvpool

TASK = "Corridor-v0"
assert TASK in pyenvpool.list_tasks()
n, length = 4096, 6
a = pyenvpool.make(TASK, n, num_threads=4, seed=3, length=length)
b = pyenvpool.make(TASK, n, num_threads=1, seed=3, length=length)
assert a.num_threads == 4 and a.config == "length=6;max_steps=24;"
rng = np.random.default_rng(0)
ended = truncations = 0
for _ in range(60):
    actions = rng.integers(0, 2, n).astype(np.int32)
    obs, reward, terminated, truncated, info = a.step(actions, copy=True)
    other = b.step(actions, copy=True)  # the thread count changes nothing
    assert np.array_equal(obs["obs"], other[0]["obs"]) and np.array_equal(reward, other[1])
    assert np.array_equal(terminated, other[2]) and np.array_equal(truncated, other[3])
    # Same-step auto-reset: the finished episode's last observation is in
    # final_obs (the agent on the goal), obs already holds the next episode.
    final = info["final_obs"]["obs"]
    assert (final[terminated, 0] == final[terminated, 1]).all()
    assert (obs["obs"][terminated, 0] != obs["obs"][terminated, 1]).all()
    assert (reward[terminated] == 1).all() and (info["episode_return"][terminated] == 1).all()
    assert (info["episode_length"][truncated & ~terminated] == 24).all()
    ended += int(terminated.sum())
    truncations += int((truncated & ~terminated).sum())
assert ended > n and truncations > 0

# Snapshots: simulate twice agrees; restore + step equals simulate; export/import.
roots = a.snapshot()
actions = rng.integers(0, 2, n).astype(np.int32)
first = [x.copy() if isinstance(x, np.ndarray) else {k: v.copy() for k, v in x.items()}
         for x in a.simulate(roots, actions)[:4]]
second = a.simulate(roots, actions)
assert np.array_equal(first[0]["obs"], second[0]["obs"]) and np.array_equal(first[1], second[1])
blob = a.export_states(roots)
a.restore(roots)
obs, reward, terminated, truncated, info = a.step(actions, copy=True)
done = (terminated | truncated)[:, None]
assert np.array_equal(np.where(done, info["final_obs"]["obs"], obs["obs"]), first[0]["obs"])
assert np.array_equal(reward, first[1]) and np.array_equal(terminated, first[2])
c = pyenvpool.make(TASK, n, seed=99, length=length)
c.restore(c.import_states(blob))
assert np.array_equal(c.step(actions, copy=True)[1], reward)
a.release(roots)
try:
    pyenvpool.make(TASK, n, length=7).import_states(blob)
    raise AssertionError("a state of another configuration was imported")
except ValueError as e:
    assert "length=6" in str(e)

# Async send/recv.
d = pyenvpool.make(TASK, 8, batch_size=4, num_threads=2, seed=1)
d.send(np.ones(8, np.int32), np.arange(8))
got = set()
for _ in range(2):
    obs, reward, terminated, truncated, info = d.recv()
    got |= set(info["env_id"].tolist())
assert got == set(range(8))

# Kwargs are checked by name; render works.
for kwargs, error in (({"length": 1}, ValueError), ({"width": 3}, TypeError)):
    try:
        pyenvpool.make(TASK, 1, **kwargs)
        raise AssertionError(f"{kwargs} was accepted")
    except error as e:
        assert next(iter(kwargs)) in str(e)
assert "A" in a.render(0) and "G" in a.render(0)

# rgb frames: the declared shape, the same in a pool holding the same states
# (c, imported, with its own thread count), the goal's cell green and the
# agent's disc blue where the observation puts them.
actions = np.ones(n, np.int32)
obs = a.step(actions, copy=True)[0]["obs"]
assert np.array_equal(c.step(actions, copy=True)[0]["obs"], obs)
assert a.frame_shape == (32, 192, 3) and "rgb_array" in a.render_modes
frames = a.render(np.arange(8), mode="rgb_array")
assert frames.shape == (8, 32, 192, 3) and frames.dtype == np.uint8
assert np.array_equal(frames, c.render(np.arange(8), mode="rgb_array"))
cells = np.rint(obs[:8] * (length - 1)).astype(int)
rows = np.arange(8)
assert (frames[rows, 1, 32 * cells[:, 1] + 16] == (60, 180, 75)).all()
assert (frames[rows, 16, 32 * cells[:, 0] + 16] == (40, 90, 220)).all()
assert np.array_equal(a.render(3, mode="rgb_array"), frames[3])
print("engine checks passed")
"""


def test_the_built_task_runs_the_pages_examples_and_gets_the_engine_for_free(custom_build):
    pytest.importorskip("gymnasium")
    script = custom_build / "page_examples.py"
    script.write_text("\n\n".join(body for _, body in tagged_blocks("python", "custom-build")))
    printed = _run(custom_build, [str(script)]).stdout
    assert f"Spec({task_id()}, fields={{obs: float32[2]}}, action=Discrete(2))" in printed, printed
    assert "(32, 320, 3)" in printed, printed
    checks = custom_build / "engine_checks.py"
    checks.write_text(ENGINE_CHECKS.replace("Corridor-v0", task_id()))
    assert "engine checks passed" in _run(custom_build, [str(checks)]).stdout


def test_the_built_task_trains_with_the_pages_command(custom_build):
    """The page's pyenvpool-train line (as ``python -m trainer.cli``, the console
    script of an installed build), into a run directory here, without
    TensorBoard and the plot: a few PPO updates, evaluations and a checkpoint."""
    pytest.importorskip("torch")
    [(_, bash)] = tagged_blocks("bash", "custom-build")
    [line] = [x for x in bash.splitlines() if x.startswith("pyenvpool-train")]
    args = shlex.split(line)[1:]
    run_dir = custom_build / "run"
    extra = ["--run-dir", str(run_dir), "--no-progress", "--no-tensorboard", "--no-plot"]
    _run(custom_build, ["-m", "trainer.cli", *args, *extra])
    events = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    updates = [e for e in events if e["category"] == "TRAINER"]
    evaluations = [e for e in events if e["category"] == "EVALUATOR"]
    assert len(updates) >= 3 and evaluations, events
    assert evaluations[-1]["episodes"] == 100
    assert (run_dir / "checkpoints" / "latest").exists()
