"""GymnasiumVectorEnv: an EnvPool seen through the `gymnasium.vector.VectorEnv` API.

The engine always auto-resets in the same step: where an episode ends, its row
of `obs` already holds the next episode's first observation and the pool's
`info["final_obs"]` the finished episode's last one. The three Gymnasium
autoreset modes are built on that:

* ``SAME_STEP`` is the engine's own behaviour. `step` returns the engine's
  arrays as they are (no copy) and adds Gymnasium's ``final_obs`` (an object
  array of rows, ``None`` where no episode ended) and ``final_info``.
* ``NEXT_STEP`` (Gymnasium's default) returns the finished episode's last
  observation on the step it ends; the next `step` then returns the new
  episode's first observation with reward 0 and both flags False, and ignores
  that env's action. The engine has already reset such an env, so the adapter
  snapshots it right after the reset and restores it after the engine's next
  step, which undoes the step the action would have made. The envs therefore
  visit exactly the same episodes as in ``SAME_STEP`` for the same seed.
* ``DISABLED`` returns the last observation like ``NEXT_STEP``; stepping before
  `reset(options={"reset_mask": ...})` has restarted every ended env raises
  `gymnasium.error.ResetNeeded`. Restarting an ended env without a seed keeps
  the start state the engine already drew for it.

Ownership and lifetimes (``copy=False``, the default): every array that
`reset` and `step` return -- observations, rewards, flags, info arrays, the
rows inside ``final_obs`` -- is rewritten in place by the next `reset` or
`step`. In ``SAME_STEP`` they are views of engine memory; in the other two
modes observations, rewards and flags live in buffers this adapter owns,
because the returned observation differs from the engine's in rows that just
ended. Pass ``copy=True`` (as in `gymnasium.vector.SyncVectorEnv`) to get
fresh arrays on every call, for code that keeps references across steps, such
as a replay buffer fed ``obs`` and ``next_obs``.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from pyenvpool._pool import EnvPool, list_tasks, make

__all__ = ["GymnasiumVectorEnv", "register_envs"]

_NO_IDS = np.zeros(0, np.int64)


class GymnasiumVectorEnv(VectorEnv):
    """``num_envs`` copies of a pyenvpool task as a `gymnasium.vector.VectorEnv`.

    Args:
        task_id: one of `pyenvpool.list_tasks()`.
        num_envs: number of environment copies.
        autoreset_mode: a `gymnasium.vector.AutoresetMode` or its string value.
            The default, ``NEXT_STEP``, is Gymnasium's default, so code written
            for `gymnasium.make_vec` runs unchanged; ``SAME_STEP`` is the
            engine's native mode and the fastest.
        copy: return fresh arrays from `reset` and `step` instead of arrays
            that the next call rewrites (see the module docstring).
        seed: seed of the pool's random streams until `reset(seed=...)`.
        num_threads: worker threads; ``None`` picks one per core.
        render_mode: ``None`` or ``"ansi"`` (text pictures from `render`).
        **task_kwargs: task parameters, as for `pyenvpool.make`.

    Observations: a task with one observation field gives a plain array and a
    `Box` space; a task with several gives a dict of arrays and a `Dict` space.
    Actions: an integer array of shape ``[num_envs]`` (`MultiDiscrete`).
    Rewards are float32, as the engine computes them.
    """

    metadata: dict[str, Any] = {
        "autoreset_mode": AutoresetMode.NEXT_STEP,
        "render_modes": [None, "ansi"],
    }

    def __init__(
        self,
        task_id: str,
        num_envs: int,
        *,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        copy: bool = False,
        seed: int = 0,
        num_threads: int | None = None,
        render_mode: str | None = None,
        **task_kwargs: Any,
    ) -> None:
        pool = make(task_id, num_envs, num_threads=num_threads, seed=seed, **task_kwargs)
        self._attach(pool, autoreset_mode, copy, render_mode)

    @classmethod
    def from_pool(
        cls,
        pool: EnvPool,
        *,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        copy: bool = False,
        render_mode: str | None = None,
    ) -> GymnasiumVectorEnv:
        """Wrap an existing pool. The adapter takes it over: step it only
        through the adapter from now on, and `close` closes it."""
        self = cls.__new__(cls)
        self._attach(pool, autoreset_mode, copy, render_mode)
        return self

    def _attach(
        self, pool: EnvPool, autoreset_mode: AutoresetMode | str, copy: bool, render_mode: Any
    ) -> None:
        mode = AutoresetMode(autoreset_mode)
        if render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        self._pool = pool
        self.autoreset_mode = mode
        self.copy = bool(copy)
        self.render_mode = render_mode
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}
        self.num_envs = pool.num_envs

        fields = pool.spec.fields
        self._field = next(iter(fields)) if len(fields) == 1 else None
        if self._field is not None:
            self.single_observation_space = fields[self._field].to_space()
        else:
            self.single_observation_space = spaces.Dict(
                {name: f.to_space() for name, f in fields.items()}
            )
        self.single_action_space = spaces.Discrete(pool.spec.num_actions)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        n = self.num_envs
        self._engine_obs: dict[str, np.ndarray] | None = None  # set by the first full reset
        # NEXT_STEP / DISABLED: the returned batch, ended rows holding final obs.
        self._obs = {name: np.zeros((n, *f.shape), f.dtype) for name, f in fields.items()}
        self._reward = np.zeros(n, np.float32)
        self._terminated = np.zeros(n, np.bool_)
        self._truncated = np.zeros(n, np.bool_)
        # Envs that ended on the last step and that the engine has already reset
        # (NEXT_STEP: with a snapshot of that reset state in _pending_states).
        self._pending_ids = _NO_IDS
        self._pending_states = _NO_IDS
        # SAME_STEP: `final_obs` object array, reusing one row view per env.
        self._final_source: Any = None
        self._final_rows = np.empty(n, object)
        self._final_objects = np.full(n, None, object)
        self._final_ids = _NO_IDS

    # ---------------------------------------------------------------- facts
    @property
    def pool(self) -> EnvPool:
        """The underlying `EnvPool` (task spec, snapshots). Do not step it
        directly while the adapter is in use."""
        return self._pool

    # ---------------------------------------------------------------- reset
    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Reset all envs, or those in ``options["reset_mask"]``.

        Args:
            seed: ``None`` continues each env's random stream; an int ``s``
                seeds env ``i`` with ``s + i`` (as `SyncVectorEnv` does); a list
                gives one seed (or ``None``) per env. Env ``i`` seeded with
                ``s`` draws from the engine's stream ``(s, i)``.
            options: ``"reset_mask"``: bool array ``[num_envs]``, reset only
                where True (the other rows of the returned obs are unchanged);
                ``"instances"``: problem instances for `EnvPool.reset`, one row
                per reset env. Other keys raise ``ValueError``. The dict is not
                modified.

        Returns:
            ``(obs, {})``.
        """
        options = {} if options is None else options
        unknown = sorted(set(options) - {"reset_mask", "instances"})
        if unknown:
            raise ValueError(
                f"unknown reset option {unknown[0]!r}; expected 'reset_mask' or 'instances'"
            )
        seeds = self._seed_list(seed)
        instances = options.get("instances")
        if isinstance(seed, (int, np.integer)):
            super().reset(seed=int(seed))  # seeds self.np_random, as VectorEnv does

        if "reset_mask" in options:
            if self._engine_obs is None:
                raise ResetNeeded("call reset() without a reset_mask before resetting some envs")
            ids = np.flatnonzero(self._check_reset_mask(options["reset_mask"]))
            self._reset_some(ids, seeds, instances)
        else:
            self._reset_all(seeds, instances)

        obs = self._engine_obs
        assert obs is not None
        if self.autoreset_mode != AutoresetMode.SAME_STEP:
            ids = np.flatnonzero(options["reset_mask"]) if "reset_mask" in options else None
            for name, buf in self._obs.items():
                if ids is None:
                    np.copyto(buf, obs[name])
                else:
                    buf[ids] = obs[name][ids]
            obs = self._obs
        return (_copy(self._batch(obs)) if self.copy else self._batch(obs)), {}

    def _check_reset_mask(self, reset_mask: Any) -> np.ndarray:
        # Gymnasium's checks and messages (SyncVectorEnv.reset).
        if not isinstance(reset_mask, np.ndarray):
            raise TypeError(
                f"`options['reset_mask']` must be a numpy array, got {type(reset_mask)}"
            )
        if reset_mask.shape != (self.num_envs,):
            raise ValueError(
                f"`options['reset_mask']` must have shape `({self.num_envs},)`, "
                f"got {reset_mask.shape}"
            )
        if reset_mask.dtype != np.bool_:
            raise TypeError(
                f"`options['reset_mask']` must have `dtype=np.bool_`, got {reset_mask.dtype}"
            )
        if not np.any(reset_mask):
            raise ValueError(
                "`options['reset_mask']` must contain a boolean array with at least one True "
                f"value, got reset_mask={reset_mask}"
            )
        return reset_mask

    def _seed_list(self, seed: Any) -> list[int | None] | None:
        if seed is None:
            return None
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            return [int(seed) + i for i in range(self.num_envs)]
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(
                "If seeds are passed as a list the length must match "
                f"num_envs={self.num_envs} but got length={len(seeds)}."
            )
        return seeds

    def _reset_all(self, seeds: list[int | None] | None, instances: Any) -> None:
        self._clear_pending(None)
        pool = self._pool
        if seeds is not None and all(s is not None for s in seeds):
            self._engine_obs, _ = pool.reset(seed=seeds, instances=instances)
            return
        self._engine_obs, _ = pool.reset(instances=instances)
        if seeds is not None:  # some seeds are None: reseed the others
            ids = np.array([i for i, s in enumerate(seeds) if s is not None], np.int64)
            if ids.size:
                rows = (
                    None
                    if instances is None
                    else {k: np.asarray(v)[ids] for k, v in instances.items()}
                )
                pool.reset(seed=[seeds[i] for i in ids], env_ids=ids, instances=rows)

    def _reset_some(self, ids: np.ndarray, seeds: list[int | None] | None, instances: Any) -> None:
        """Reset envs `ids`; instance rows follow `ids`."""
        pool = self._pool
        pick = [None] * len(ids) if seeds is None else [seeds[i] for i in ids]
        seeded = np.array([s is not None for s in pick], np.bool_)
        if instances is None:
            # An env that ended and was not stepped since already holds a fresh
            # start state drawn by the engine: keep it unless a seed is given.
            fresh = np.isin(ids, self._pending_ids) & ~seeded
        else:
            fresh = np.zeros(len(ids), np.bool_)
        for group in (seeded, ~seeded & ~fresh):
            if group.any():
                rows = None
                if instances is not None:
                    rows = {k: np.asarray(v)[group] for k, v in instances.items()}
                group_seeds = [pick[j] for j in np.flatnonzero(group)] if group is seeded else None
                pool.reset(seed=group_seeds, env_ids=ids[group], instances=rows)
        self._clear_pending(ids)

    def _clear_pending(self, ids: np.ndarray | None) -> None:
        """Forget pending resets of `ids` (all when None), releasing snapshots."""
        if self._pending_ids.size == 0:
            return
        drop = (
            np.ones(self._pending_ids.size, np.bool_)
            if ids is None
            else np.isin(self._pending_ids, ids)
        )
        if self._pending_states.size:
            self._pool.release(self._pending_states[drop], missing_ok=True)
            self._pending_states = self._pending_states[~drop]
        self._pending_ids = self._pending_ids[~drop]

    # ----------------------------------------------------------------- step
    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env with ``actions`` (integers, shape ``[num_envs]``)."""
        if self._engine_obs is None:
            raise ResetNeeded("Cannot call step() before calling reset()")
        mode = self.autoreset_mode
        if mode == AutoresetMode.SAME_STEP:
            return self._step_same(actions)
        if mode == AutoresetMode.DISABLED and self._pending_ids.size:
            raise ResetNeeded(
                f"envs {self._pending_ids.tolist()[:10]} ended and were not reset; with "
                "AutoresetMode.DISABLED call reset(options={'reset_mask': ...}) first"
            )
        return self._step_next(actions)

    def _step_same(self, actions: Any):
        obs, reward, terminated, truncated, info = self._pool.step(actions)
        self._engine_obs = obs
        done = terminated | truncated
        infos: dict[str, Any] = {}
        if done.any():
            ids = np.flatnonzero(done)
            infos = {
                "final_obs": self._final_obs(info["final_obs"], ids),
                "_final_obs": done,
                "final_info": self._episode_info(info, done),
                "_final_info": done,
            }
        if self.copy:
            return _copy((self._batch(obs), reward, terminated, truncated, infos))
        return self._batch(obs), reward, terminated, truncated, infos

    def _step_next(self, actions: Any):
        pool = self._pool
        obs, reward, terminated, truncated, info = pool.step(actions)
        self._engine_obs = obs
        pending = self._pending_ids
        # A pending env's undone step may itself have ended an episode (not in
        # CartPole); its rows of the engine's episode totals are then nonzero.
        stale = pending.size > 0 and bool((terminated[pending] | truncated[pending]).any())
        if self._pending_states.size:
            # NEXT_STEP: undo the engine's step of envs that reset last step.
            pool.restore(self._pending_states, env_ids=pending)
            pool.release(self._pending_states)
            self._pending_states = _NO_IDS
        np.copyto(self._reward, reward)
        np.copyto(self._terminated, terminated)
        np.copyto(self._truncated, truncated)
        if pending.size:
            self._reward[pending] = 0.0
            self._terminated[pending] = False
            self._truncated[pending] = False
        done = self._terminated | self._truncated
        ids = np.flatnonzero(done)
        final = info["final_obs"]
        for name, buf in self._obs.items():
            np.copyto(buf, obs[name])
            if ids.size:
                buf[ids] = final[name][ids]
        infos: dict[str, Any] = {}
        if ids.size:
            infos = self._episode_info(info, done, zero_elsewhere=stale)
            if self.autoreset_mode == AutoresetMode.NEXT_STEP:
                self._pending_states = pool.snapshot(ids)
        self._pending_ids = ids
        result = (self._batch(self._obs), self._reward, self._terminated, self._truncated, infos)
        return _copy(result) if self.copy else result

    def _final_obs(self, final: dict[str, np.ndarray], ids: np.ndarray) -> np.ndarray:
        """Gymnasium's `final_obs`: object array, the last obs where `ids`, else None."""
        if self.copy:  # fresh rows in a fresh array
            out = np.full(self.num_envs, None, object)
            out[ids] = self._rows({name: arr[ids] for name, arr in final.items()})
            return out
        if final is not self._final_source:  # one view per row, made once
            self._final_rows = self._rows(final)
            self._final_source = final
        out = self._final_objects
        out[self._final_ids] = None
        out[ids] = self._final_rows[ids]
        self._final_ids = ids
        return out

    def _rows(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """An object array of per-row views of `batch` in the observation's form."""
        n = len(next(iter(batch.values())))
        rows = np.empty(n, object)
        if self._field is not None:
            for i, row in enumerate(batch[self._field]):
                rows[i] = row
        else:
            for i in range(n):
                rows[i] = {name: arr[i] for name, arr in batch.items()}
        return rows

    @staticmethod
    def _episode_info(info: dict[str, Any], done: np.ndarray, zero_elsewhere: bool = False):
        """The engine's episode totals, masked by `done` as Gymnasium masks info."""
        episode_return, episode_length = info["episode_return"], info["episode_length"]
        if zero_elsewhere:  # rows outside `done` may hold totals of undone steps
            episode_return = np.where(done, episode_return, 0.0)
            episode_length = np.where(done, episode_length, 0).astype(np.int32)
        return {
            "episode_return": episode_return,
            "_episode_return": done,
            "episode_length": episode_length,
            "_episode_length": done,
        }

    def _batch(self, obs: dict[str, np.ndarray]) -> Any:
        return obs[self._field] if self._field is not None else dict(obs)

    # ---------------------------------------------------------------- misc
    def render(self) -> tuple[str, ...] | None:
        """Text pictures of every env when ``render_mode="ansi"``, else None."""
        if self.render_mode is None:
            gymnasium.logger.warn("render() called with render_mode=None; pass render_mode='ansi'")
            return None
        return tuple(self._pool.render(i) for i in range(self.num_envs))

    def close_extras(self, **kwargs: Any) -> None:
        """Close the pool (joins its worker threads)."""
        self._pool.close()


def _copy(value: Any) -> Any:
    """Owned copies of arrays in nested results. Object arrays (`final_obs`)
    pass through: with ``copy=True`` they are built fresh on every call."""
    if isinstance(value, np.ndarray):
        return value if value.dtype == object else value.copy()
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_copy(v) for v in value)
    return value


def register_envs() -> None:
    """Register ``pyenvpool/<task_id>`` for every task with Gymnasium, so that
    ``gymnasium.make_vec("pyenvpool/CartPole-v1", num_envs=8,
    vectorization_mode="vector_entry_point")`` builds a `GymnasiumVectorEnv`.
    Keyword arguments of `make_vec` reach the constructor. Idempotent."""
    for task_id in list_tasks():
        env_id = f"pyenvpool/{task_id}"
        if env_id not in gymnasium.registry:
            gymnasium.register(
                id=env_id,
                vector_entry_point="pyenvpool.gymnasium_env:GymnasiumVectorEnv",
                kwargs={"task_id": task_id},
            )
