"""rgb_array frames of the MuJoCo tasks, against Gymnasium's own frames.

Frames need an OpenGL context: each case runs in a fresh interpreter with
MUJOCO_GL=egl (Mesa's software EGL is enough: apt-get install libegl1
libgl1-mesa-dri). Where no EGL context can be made the frame tests skip; the
error for a machine without any OpenGL context is tested everywhere, by
hiding MuJoCo's three context modules.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("mujoco")
pytest.importorskip("gymnasium")

ROOT = Path(__file__).resolve().parents[2]
# The checkout goes on the child's path only when it holds a development build;
# otherwise the child imports the installed package, and runs outside the
# checkout so that its source folder cannot shadow it.
IN_PLACE = any((ROOT / "pyenvpool").glob("_core*.so"))


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    paths = [str(ROOT)] if IN_PLACE else []
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(paths), **env},
        cwd=ROOT if IN_PLACE else tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def egl():
    probe = _python("from mujoco.egl import GLContext; GLContext(8, 8).free()", MUJOCO_GL="egl")
    if probe.returncode != 0:
        pytest.skip(f"no EGL context here: {probe.stderr.strip().splitlines()[-1:]}")


FRAMES_LIKE_GYMNASIUM = """
import gymnasium as gym
import mujoco
import numpy as np
import pyenvpool

rng = np.random.default_rng(0)
for task in ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5"]:
    env = gym.make(task, render_mode="rgb_array")
    env.reset(seed=0)
    u = env.unwrapped
    qpos = u.init_qpos + rng.uniform(-0.1, 0.1, u.model.nq)
    qvel = rng.uniform(-0.1, 0.1, u.model.nv)
    u.set_state(qpos, qvel)
    pool = pyenvpool.make(task, 3)
    assert pool.render_modes == ("ansi", "rgb_array") and pool.frame_shape == (480, 480, 3)
    pool.reset(env_ids=[1], instances={"qpos": qpos[None], "qvel": qvel[None]})
    theirs, mine = env.render(), pool.render(1, mode="rgb_array")
    assert mine.dtype == np.uint8 and mine.shape == theirs.shape == (480, 480, 3)
    assert np.array_equal(mine, theirs), (task, np.abs(mine.astype(int) - theirs).max())
    assert mine.std() > 10  # a picture, not a blank
    # After steps: Hopper's and Walker2d's cameras are fixed, so every frame
    # is Gymnasium's once its data has the kinematics of its current qpos
    # (after mj_step Gymnasium draws those of the last substep's start);
    # HalfCheetah's and Ant's re-centre on the robot.
    a = np.full((1,) + env.action_space.shape, 0.3, np.float32)
    actions = np.repeat(a, 3, axis=0)
    for _ in range(5):
        env.step(a[0])
        pool.step(actions)
    mine = pool.render(np.array([1, 0]), mode="rgb_array")
    assert mine.shape == (2, 480, 480, 3)
    if task in ("Hopper-v5", "Walker2d-v5"):
        mujoco.mj_forward(u.model, u.data)
        assert np.array_equal(mine[0], env.render()), task
    assert not np.array_equal(mine[0], mine[1])
    pool.close()
    env.close()
print("ok")
"""


def test_frames_are_gymnasiums(egl):
    result = _python(FRAMES_LIKE_GYMNASIUM, MUJOCO_GL="egl")
    assert result.returncode == 0 and "ok" in result.stdout, result.stdout + result.stderr


def test_without_an_opengl_context_rendering_says_what_to_install():
    result = _python(
        """
        import sys
        import numpy as np
        class _NoGL:
            def find_spec(self, name, path=None, target=None):
                if name in ("mujoco.egl", "mujoco.osmesa", "mujoco.glfw"):
                    raise ImportError(f"{name} hidden by the test")
        sys.meta_path.insert(0, _NoGL())
        import pyenvpool
        pool = pyenvpool.make("Hopper-v5", 2)
        try:
            pool.render(0, mode="rgb_array")
        except RuntimeError as e:
            print(e)
        pool.step(np.zeros((2, 3), np.float32))  # the pool still works
        print(pool.render(0))
        """
    )
    assert result.returncode == 0, result.stderr
    assert "rgb_array frames of Hopper-v5 need an OpenGL context" in result.stdout
    assert "MUJOCO_GL=egl" in result.stdout
