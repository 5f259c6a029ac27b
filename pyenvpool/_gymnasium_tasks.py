"""What Gymnasium needs to know about a task beyond its spec, and registration.

* The registered step limit and reward threshold of ``pyenvpool/<task_id>``:
  Gymnasium's own registry entry where the task reproduces a Gymnasium task
  (CartPole-v1: 500 steps, threshold 475), else this module's table (Jumanji's
  Maze: 100 steps).
* Which keyword argument is the task's own step limit (CartPole's
  ``max_episode_steps``, Maze's ``time_limit``), found in the task's
  configuration, so that Gymnasium's ``max_episode_steps`` can reach it.
* The frame rate of its videos (``metadata["render_fps"]``).

Registration gives every task an ``entry_point`` (`GymnasiumEnv`) and a
``vector_entry_point`` (`GymnasiumVectorEnv`); it imports neither module, so
``import pyenvpool`` stays cheap.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium

from pyenvpool._pool import list_tasks, make

__all__ = ["check_task_kwargs", "register_envs", "render_fps", "step_limit_kwarg"]

# Step limits of tasks that Gymnasium's registry does not know.
_STEP_LIMITS = {
    "Maze-v0": 100,  # Jumanji's Maze-v0: time_limit = num_rows * num_cols
    "Delay-v0": 100,  # the task's own default
}
# The keyword arguments tasks use for their own step limit, in lookup order.
_LIMIT_KWARGS = ("max_episode_steps", "time_limit")
# Frames per second of videos: Gymnasium's rates for the tasks it has (MuJoCo:
# 1 / dt), a slow pace for board and grid tasks that move one cell a step.
_RENDER_FPS = {
    "CartPole-v1": 50,
    "Acrobot-v1": 15,
    "HalfCheetah-v5": 20,
    "Ant-v5": 20,
    "Hopper-v5": 125,
    "Walker2d-v5": 125,
    "BinPack-v0": 4,
    "Maze-v0": 8,
    "ConnectFour-v0": 4,
    "Squared-v0": 8,
    "Bandit-v0": 4,
}
_DEFAULT_FPS = 30


def registered_limits(task_id: str) -> dict[str, Any]:
    """``max_episode_steps`` and ``reward_threshold`` for ``pyenvpool/<task_id>``."""
    original = gymnasium.registry.get(task_id)
    if original is not None:
        return {
            "max_episode_steps": original.max_episode_steps,
            "reward_threshold": original.reward_threshold,
        }
    return {"max_episode_steps": _STEP_LIMITS.get(task_id), "reward_threshold": None}


@functools.cache
def task_kwarg_names(task_id: str) -> frozenset[str]:
    """The keyword arguments the task accepts (its configuration's keys)."""
    with make(task_id, 1, num_threads=1) as pool:
        return frozenset(item.split("=", 1)[0] for item in pool.config.split(";") if item)


def step_limit_kwarg(task_id: str) -> str | None:
    """The task's own step-limit keyword argument, or None if it has none."""
    names = task_kwarg_names(task_id)
    return next((k for k in _LIMIT_KWARGS if k in names), None)


def check_task_kwargs(owner: str, task_id: str, task_kwargs: dict[str, Any]) -> None:
    """Refuse an unknown keyword argument with Python's own wording, which
    callers that probe optional arguments match on (TorchRL's ``GymEnv``
    passes ``frameskip`` and drops it on "unexpected keyword argument")."""
    names = task_kwarg_names(task_id)
    for key in task_kwargs:
        if key not in names:
            raise TypeError(
                f"{owner}.__init__() got an unexpected keyword argument {key!r} "
                f"({task_id} accepts {sorted(names)})"
            )


def render_fps(task_id: str) -> int:
    return _RENDER_FPS.get(task_id, _DEFAULT_FPS)


def register_envs() -> None:
    """Register ``pyenvpool/<task_id>`` for every task: ``gymnasium.make`` builds
    a `GymnasiumEnv` (wrapped in ``TimeLimit`` where the task has a step limit),
    ``gymnasium.make_vec`` a `GymnasiumVectorEnv` (``vector_entry_point``) or
    Gymnasium's ``SyncVectorEnv``/``AsyncVectorEnv`` of single envs. Keyword
    arguments of ``make``/``make_vec`` reach the constructors. Idempotent."""
    for task_id in list_tasks():
        env_id = f"pyenvpool/{task_id}"
        if env_id not in gymnasium.registry:
            gymnasium.register(
                id=env_id,
                entry_point="pyenvpool.gymnasium_single:GymnasiumEnv",
                vector_entry_point="pyenvpool.gymnasium_env:GymnasiumVectorEnv",
                kwargs={"task_id": task_id},
                **registered_limits(task_id),
            )
