"""The Python side of the MuJoCo tasks: opening the MuJoCo library, and rgb frames.

The engine has ``HalfCheetah-v5``, ``Hopper-v5``, ``Walker2d-v5`` and ``Ant-v5``
compiled in but opens libmujoco only when one of them is first made (why: the
comment at the top of the MuJoCo part of CMakeLists.txt). :func:`prepare` finds
the library inside the installed ``mujoco`` package (the ``mujoco`` extra)
without importing it, and hands it to the engine with the directory of the XML
models shipped in ``pyenvpool/assets/mujoco``. Every way this can fail raises
``ImportError`` naming the extra, so ``import pyenvpool`` itself never needs
MuJoCo.

Frames (``pool.render(ids, mode="rgb_array")``) come from MuJoCo's own OpenGL
renderer through the ``mujoco`` Python package, fed with each env's ``qpos``
(the engine's live ``info["qpos"]`` row, which every step, reset and restore
rewrites), with the kinematics of that qpos (mj_forward; after a step
Gymnasium draws those MuJoCo computed at the start of the step's last
substep, a frame behind): 480 x 480, with the camera of Gymnasium's default
``render_mode="rgb_array"`` for the task -- a free camera aimed at the median
geom position, then each task's ``default_camera_config``. Gymnasium fixes
that aim point at its first frame; here it is recomputed for every frame, so
the robot stays in view (Hopper's and Walker2d's configurations fix it, so
all their frames are Gymnasium's). The OpenGL context is the one ``MUJOCO_GL``
names (``glfw``, ``egl`` or ``osmesa``), else the first of those that works,
as Gymnasium picks it; with none, rendering raises ``RuntimeError`` saying
what to install.
"""

from __future__ import annotations

import glob
import importlib.util
import os
from typing import Any

import numpy as np

from pyenvpool import _core

INSTALL_HINT = 'pip install "pyenvpool[mujoco]"'
ASSETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "mujoco")

# task id -> (XML model, Gymnasium's DEFAULT_CAMERA_CONFIG for the task)
TASKS: dict[str, tuple[str, dict[str, Any]]] = {
    "HalfCheetah-v5": ("half_cheetah.xml", {"distance": 4.0}),
    "Hopper-v5": (
        "hopper.xml",
        {"trackbodyid": 2, "distance": 3.0, "lookat": (0.0, 0.0, 1.15), "elevation": -20.0},
    ),
    "Walker2d-v5": (
        "walker2d_v5.xml",
        {"trackbodyid": 2, "distance": 4.0, "lookat": (0.0, 0.0, 1.15), "elevation": -20.0},
    ),
    "Ant-v5": ("ant.xml", {"distance": 4.0}),
}
FRAME_SHAPE = (480, 480, 3)  # Gymnasium's DEFAULT_SIZE


def prepare(task_id: str) -> None:
    """Make sure the engine can run ``task_id``: for a MuJoCo task, open the
    MuJoCo library (once per process); for any other task, nothing."""
    if task_id not in TASKS:
        return
    if not hasattr(_core, "load_mujoco"):
        raise ImportError(
            f"{task_id} is not in this build of pyenvpool: it was built without the MuJoCo "
            f"headers. Reinstall it with the extra: {INSTALL_HINT}"
        )
    if _core.mujoco_loaded():
        return
    library = find_library(task_id)
    try:
        _core.load_mujoco(library, ASSETS_DIR)
    except ValueError as e:
        raise ImportError(f"{task_id}: {e}") from None


def find_library(task_id: str) -> str:
    """The path of libmujoco inside the installed ``mujoco`` package."""
    version = _core.mujoco_version
    missing = ImportError(
        f"{task_id} needs MuJoCo {version}, which is not installed: {INSTALL_HINT}"
    )
    try:
        spec = importlib.util.find_spec("mujoco")
    except (ImportError, ValueError):
        raise missing from None
    if spec is None or not spec.submodule_search_locations:
        raise missing
    for directory in spec.submodule_search_locations:
        exact = os.path.join(directory, f"libmujoco.so.{version}")
        if os.path.exists(exact):
            return exact
        # Another version (refused by the engine with a message saying which),
        # or macOS's naming.
        found = sorted(
            glob.glob(os.path.join(directory, "libmujoco.so*"))
            + glob.glob(os.path.join(directory, "libmujoco*.dylib"))
        )
        if found:
            return found[-1]
    raise missing


class Renderer:
    """rgb frames of one MuJoCo task's envs (see the module docstring)."""

    def __init__(self, task_id: str) -> None:
        import mujoco

        self._mujoco = mujoco
        xml, self._camera_config = TASKS[task_id]
        self._model = mujoco.MjModel.from_xml_path(os.path.join(ASSETS_DIR, xml))
        height, width, _ = FRAME_SHAPE
        vis = self._model.vis.global_
        vis.offwidth, vis.offheight = max(vis.offwidth, width), max(vis.offheight, height)
        self._data = mujoco.MjData(self._model)
        self._context = _gl_context(task_id, width, height)
        self._context.make_current()
        self._scene = mujoco.MjvScene(self._model, 1000)
        self._option = mujoco.MjvOption()
        self._perturb = mujoco.MjvPerturb()
        self._mjr = mujoco.MjrContext(self._model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._mjr)
        self._viewport = mujoco.MjrRect(0, 0, width, height)
        self._rgb = np.zeros(height * width * 3, np.uint8)

    def render(self, qpos: np.ndarray) -> np.ndarray:
        """uint8 frames ``[k, 480, 480, 3]`` of the states with these ``qpos`` rows."""
        mujoco = self._mujoco
        height, width, _ = FRAME_SHAPE
        frames = np.empty((len(qpos), height, width, 3), np.uint8)
        self._context.make_current()
        for j, row in enumerate(qpos):
            self._data.qpos[:] = row
            mujoco.mj_forward(self._model, self._data)
            mujoco.mjv_updateScene(
                self._model,
                self._data,
                self._option,
                self._perturb,
                self._camera(),
                mujoco.mjtCatBit.mjCAT_ALL,
                self._scene,
            )
            mujoco.mjr_render(self._viewport, self._scene, self._mjr)
            mujoco.mjr_readPixels(self._rgb, None, self._viewport, self._mjr)
            frames[j] = self._rgb.reshape(height, width, 3)[::-1]
        return frames

    def _camera(self):
        cam = self._mujoco.MjvCamera()
        cam.type = self._mujoco.mjtCamera.mjCAMERA_FREE
        cam.fixedcamid = -1
        cam.lookat[:] = np.median(self._data.geom_xpos, axis=0)
        cam.distance = self._model.stat.extent
        for key, value in self._camera_config.items():
            if isinstance(value, tuple):
                getattr(cam, key)[:] = value
            else:
                setattr(cam, key, value)
        return cam

    def close(self) -> None:
        if self._context is not None:
            self._mjr.free()
            self._context.free()
            self._context = None


def _gl_context(task_id: str, width: int, height: int):
    """An OpenGL context from the backend MUJOCO_GL names, or the first that works."""
    requested = os.environ.get("MUJOCO_GL", "").lower()
    if requested in ("glfw", "egl", "osmesa"):
        backends = [requested]
    elif os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        backends = ["glfw", "egl", "osmesa"]
    else:  # headless: GLFW needs a display, and failing it leaves no usable context
        backends = ["egl", "osmesa"]
    errors = []
    for name in backends:
        try:
            module = importlib.import_module(f"mujoco.{name}")
            return module.GLContext(width, height)
        except Exception as e:  # any failure means: this backend is not usable here
            errors.append(f"{name}: {type(e).__name__}: {e}")
    raise RuntimeError(
        f"rgb_array frames of {task_id} need an OpenGL context, and none could be made "
        f"({'; '.join(errors)}). Headless Linux: install EGL (a GPU driver, or Mesa: "
        "apt-get install libegl1 libgl1-mesa-dri) or OSMesa (apt-get install libosmesa6) "
        "and set MUJOCO_GL=egl or MUJOCO_GL=osmesa."
    )
