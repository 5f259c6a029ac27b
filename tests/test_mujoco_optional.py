"""The MuJoCo tasks are optional: pyenvpool without the `mujoco` extra.

Each case runs in a fresh interpreter, because a process that has opened the
MuJoCo library keeps it open:

- mujoco not installed (hidden from the import system, as after
  `pip uninstall mujoco mujoco-core`): `import pyenvpool` and every other task
  work, the MuJoCo tasks are listed, and making one raises ImportError naming
  the extra;
- a broken install (a `mujoco` package whose library cannot be opened): the
  same ImportError, with the loader's reason;
- a build that found no MuJoCo headers (CMake with -DPYENVPOOL_MUJOCO=OFF, a
  real build of a copy of the tree): the package imports, lists no MuJoCo
  task, and making one raises ImportError saying to reinstall with the extra.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HINT = 'pip install "pyenvpool[mujoco]"'

HIDE_MUJOCO = """
import sys
class _NoMujoco:
    def find_spec(self, name, path=None, target=None):
        if name == "mujoco" or name.startswith("mujoco."):
            raise ModuleNotFoundError("No module named 'mujoco'")
sys.meta_path.insert(0, _NoMujoco())
"""

WITHOUT_MUJOCO = """
import numpy as np
import pyenvpool
assert {"HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5"} <= set(pyenvpool.list_tasks())
pool = pyenvpool.make("CartPole-v1", 2)
pool.step(np.zeros(2, np.int32))
for task in ("HalfCheetah-v5", "Ant-v5"):
    try:
        pyenvpool.make(task, 2)
    except ImportError as e:
        print("ImportError:", e)
    else:
        raise AssertionError(f"{task} was made without mujoco")
"""


# Without a development build in the checkout the children import the
# installed package, from outside the checkout (whose source would shadow it).
IN_PLACE = any((ROOT / "pyenvpool").glob("_core*.so"))


def _python(code: str, pythonpath: Path | None = None) -> str:
    """Runs `code` with `pythonpath` as the place pyenvpool comes from (also
    the working directory, which `python -c` puts first on sys.path); by
    default the checkout's build, or else the installed package."""
    if pythonpath is None and IN_PLACE:
        pythonpath = ROOT
    where = pythonpath if pythonpath is not None else Path(tempfile.gettempdir())
    paths = [str(pythonpath)] if pythonpath is not None else []
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result.stdout


def test_without_mujoco_installed_the_tasks_name_the_extra():
    out = _python(HIDE_MUJOCO + WITHOUT_MUJOCO)
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert "HalfCheetah-v5 needs MuJoCo 4.0.1, which is not installed" in lines[0]
    for line in lines:
        assert HINT in line


def test_a_broken_mujoco_install_names_the_extra(tmp_path):
    fake = tmp_path / "site" / "mujoco"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "libmujoco.so.4.0.1").write_bytes(b"not a shared library")
    code = f"import sys; sys.path.insert(0, {str(fake.parent)!r})\n" + WITHOUT_MUJOCO
    out = _python(code)
    assert "cannot open the MuJoCo library" in out and HINT in out


@pytest.fixture(scope="module")
def build_without_mujoco(tmp_path_factory) -> Path:
    """A copy of the tree built with CMake and -DPYENVPOOL_MUJOCO=OFF."""
    missing = [tool for tool in ("cmake", "ninja") if shutil.which(tool) is None]
    if importlib.util.find_spec("pybind11") is None:
        missing.append("pybind11")
    if missing:
        pytest.skip(f"building needs {', '.join(missing)} (pip install cmake ninja pybind11)")
    tree = tmp_path_factory.mktemp("no_mujoco")
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.pyc")
    for name in ("csrc", "pyenvpool"):
        shutil.copytree(ROOT / name, tree / name, ignore=ignore)
    for name in ("CMakeLists.txt", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    pybind11_dir = subprocess.run(
        [sys.executable, "-m", "pybind11", "--cmakedir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    configure = subprocess.run(
        ["cmake", "-S", ".", "-B", "build", "-G", "Ninja", f"-Dpybind11_DIR={pybind11_dir}"]
        + [f"-DPython_EXECUTABLE={sys.executable}", "-DPYENVPOOL_MUJOCO=OFF"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert configure.returncode == 0, configure.stdout + configure.stderr
    build = subprocess.run(
        ["cmake", "--build", "build"], cwd=tree, capture_output=True, text=True, timeout=1200
    )
    assert build.returncode == 0, build.stdout + build.stderr
    return tree


def test_a_build_without_the_mujoco_headers_names_the_extra(build_without_mujoco):
    out = _python(
        """
        import numpy as np
        import pyenvpool
        from pyenvpool import _core
        assert not hasattr(_core, "load_mujoco")
        assert "HalfCheetah-v5" not in pyenvpool.list_tasks()
        pyenvpool.make("CartPole-v1", 2).step(np.zeros(2, np.int32))
        try:
            pyenvpool.make("Hopper-v5", 2)
        except ImportError as e:
            print(e)
        """,
        pythonpath=build_without_mujoco,
    )
    assert "built without the MuJoCo headers" in out and HINT in out
