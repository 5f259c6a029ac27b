"""GymnasiumEnv: one copy of a pyenvpool task as a plain `gymnasium.Env`.

It runs on a one-env pool made with ``autoreset=False``: when an episode ends
the pool keeps the final state, so the observation returned is the last one
and `render` draws the last frame. Stepping again before `reset` logs
Gymnasium's warning (as Gymnasium's own CartPole does) and returns the pool's
absorbing step: the same observation, reward 0, the same flags.

Time limits follow Gymnasium: the env has no step limit of its own unless
``max_episode_steps`` is given, and ``gymnasium.make("pyenvpool/<task>")``
wraps it in ``TimeLimit`` with the registered limit (CartPole-v1: 500), or the
``max_episode_steps`` passed to ``make``, larger or smaller. A task whose own
step limit is part of its definition (CartPole's ``max_episode_steps``,
Maze's ``time_limit``) gets it switched off here unless given, so the two
limits never disagree.

Ownership: every observation returned is a fresh array (a dict of them for a
task with several observation fields); nothing returned is written again.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from pyenvpool._gymnasium_tasks import check_task_kwargs, render_fps, step_limit_kwarg
from pyenvpool._pool import make

__all__ = ["GymnasiumEnv"]

_NO_LIMIT = 1 << 30  # the largest step limit the tasks accept


class GymnasiumEnv(gymnasium.Env):
    """One copy of ``task_id`` as a `gymnasium.Env`.

    Args:
        task_id: one of `pyenvpool.list_tasks()`.
        render_mode: ``None``, ``"ansi"`` (text) or ``"rgb_array"`` (uint8
            frames ``[height, width, 3]``, for tasks that draw: see
            ``metadata["render_modes"]``).
        max_episode_steps: the task's own step limit (truncation). ``None``
            switches it off: ``gymnasium.make`` adds ``TimeLimit`` instead.
            A task without a step limit refuses it.
        **task_kwargs: task parameters, as for `pyenvpool.make`.

    Observations: a plain array and a `Box` space for a task with one
    observation field, else a dict of arrays and a `Dict` space. Actions: as
    ``action_space`` says (`Discrete`, `MultiDiscrete` or `Box`).
    """

    # The modes a task can have; an instance lists those its task supports.
    metadata: dict[str, Any] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 30}

    def __init__(
        self,
        task_id: str,
        *,
        render_mode: str | None = None,
        max_episode_steps: int | None = None,
        **task_kwargs: Any,
    ) -> None:
        check_task_kwargs("GymnasiumEnv", task_id, task_kwargs)
        limit_kwarg = step_limit_kwarg(task_id)
        if limit_kwarg is None and max_episode_steps is not None:
            raise TypeError(
                f"{task_id} has no step limit of its own; wrap it in "
                "gymnasium.wrappers.TimeLimit (gymnasium.make(..., max_episode_steps=N) does)"
            )
        if limit_kwarg is not None and limit_kwarg not in task_kwargs:
            task_kwargs[limit_kwarg] = _NO_LIMIT if max_episode_steps is None else max_episode_steps
        pool = make(task_id, 1, num_threads=1, autoreset=False, **task_kwargs)
        modes = list(pool.render_modes)
        if render_mode is not None and render_mode not in modes:
            pool.close()
            raise ValueError(
                f"{task_id} renders {modes}, not render_mode={render_mode!r}"
                + (" (the task does not draw frames)" if render_mode == "rgb_array" else "")
            )
        self._pool = pool
        self.task_id = task_id
        self.render_mode = render_mode
        self.metadata = {"render_modes": modes, "render_fps": render_fps(task_id)}
        fields = pool.spec.fields
        self._field = next(iter(fields)) if len(fields) == 1 else None
        if self._field is not None:
            self.observation_space = fields[self._field].to_space()
        else:
            self.observation_space = spaces.Dict({n: f.to_space() for n, f in fields.items()})
        self.action_space = pool.single_action_space
        self._action_shape = (1, *self.action_space.shape)
        self._started = False  # reset() has run
        self._ended = False  # the episode ended and reset() has not run since
        self._warned = False  # the step-after-end warning was given this episode

    @property
    def pool(self):
        """The one-env `EnvPool` underneath (its spec, snapshots, config)."""
        return self._pool

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start an episode.

        Args:
            seed: seeds ``np_random`` and the task's random stream. Without a
                seed the stream continues; the first reset without one draws
                a seed from ``np_random``, as Gymnasium's envs start unseeded.
            options: ``{"instances": {field: array}}`` loads a problem instance
                (one env's arrays, see ``pool.spec.instance_fields``).

        Returns:
            ``(obs, {})``.
        """
        super().reset(seed=seed)
        options = options or {}
        unknown = sorted(set(options) - {"instances"})
        if unknown:
            raise ValueError(f"unknown reset option {unknown[0]!r}; expected 'instances'")
        instances = options.get("instances")
        if instances is not None:
            instances = {k: np.asarray(v)[None] for k, v in instances.items()}
        if seed is None and not self._started:
            seed = int(self.np_random.integers(2**63))
        obs, _ = self._pool.reset(seed=seed, instances=instances)
        self._started, self._ended, self._warned = True, False, False
        return self._row(obs), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if not self._started:
            raise ResetNeeded("Cannot call env.step() before calling env.reset()")
        if self._ended and not self._warned:
            gymnasium.logger.warn(
                "You are calling 'step()' even though this environment has already returned "
                "terminated = True or truncated = True. Call 'reset()' first: the episode has "
                "ended, and further steps return its last observation with reward 0."
            )
            self._warned = True
        actions = np.asarray(action).reshape(self._action_shape)
        obs, reward, terminated, truncated, _ = self._pool.step(actions)
        terminated, truncated = bool(terminated[0]), bool(truncated[0])
        self._ended = terminated or truncated
        return self._row(obs), float(reward[0]), terminated, truncated, {}

    def _row(self, obs: dict[str, np.ndarray]) -> Any:
        """Fresh arrays of env 0's observation (0-d arrays for scalar fields)."""
        if self._field is not None:
            return np.array(obs[self._field][0])
        return {name: np.array(arr[0]) for name, arr in obs.items()}

    def render(self) -> str | np.ndarray | None:
        """A picture of the current state (the last one after an episode ended):
        a str for ``"ansi"``, uint8 ``[height, width, 3]`` for ``"rgb_array"``."""
        if self.render_mode is None:
            gymnasium.logger.warn(
                "render() called with render_mode=None; make the env with "
                f"render_mode in {self.metadata['render_modes']}"
            )
            return None
        return self._pool.render(0, mode=self.render_mode)

    def close(self) -> None:
        self._pool.close()
