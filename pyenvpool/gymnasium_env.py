"""GymnasiumVectorEnv: an EnvPool seen through the `gymnasium.vector.VectorEnv` API.

The engine always auto-resets in the same step: where an episode ends, its row
of `obs` already holds the next episode's first observation and the pool's
`info["final_obs"]` the finished episode's last one. The three Gymnasium
autoreset modes are built on that:

* ``SAME_STEP`` is the engine's own behaviour. `step` returns the engine's
  arrays as they are and adds Gymnasium's ``final_obs`` (an object array of
  rows, ``None`` where no episode ended) and ``final_info``.
* ``NEXT_STEP`` (Gymnasium's default) returns the finished episode's last
  observation on the step it ends; the next `step` returns the new episode's
  first observation with reward 0 and both flags False, and ignores that env's
  action. The engine has already reset such an env, so the adapter snapshots
  it right after the reset and restores it after the engine's next step, which
  undoes the step the action made. The envs thus play exactly the episodes
  they play in ``SAME_STEP`` with the same seed.
* ``DISABLED`` returns the last observation like ``NEXT_STEP``; stepping again
  before `reset(options={"reset_mask": ...})` has restarted every ended env
  raises `gymnasium.error.ResetNeeded`. Restarting an ended env without a seed
  keeps the start state the engine already drew for it.

Besides Gymnasium's keys, `info` reports the engine's totals of each finished
episode, ``episode_return`` and ``episode_length`` with their ``_`` masks: in
``info["final_info"]`` under ``SAME_STEP`` (they describe the step that ended
the episode), at the top level otherwise.

Ownership and lifetimes (``copy=False``, the default): every array that
`reset` and `step` return -- observations, rewards, flags, info arrays and
masks, the rows inside ``final_obs`` -- may be rewritten by the next `reset` or
`step`. In ``SAME_STEP`` they are views of engine memory. In the other modes
the engine writes observations, rewards and flags straight into buffers this
adapter owns (`EnvPool.step(out=...)`), which it then edits in the rows that
ended or restarted. ``copy=True`` (as in `gymnasium.vector.SyncVectorEnv`)
returns fresh arrays on every call, for code that keeps references across
steps, such as a replay buffer fed both ``obs`` and ``next_obs``.
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
        autoreset_mode: a `gymnasium.vector.AutoresetMode` or its value. The
            default, ``NEXT_STEP``, is Gymnasium's, so code written for
            `gymnasium.make_vec` runs unchanged; ``SAME_STEP`` is the engine's
            native mode and the fastest.
        copy: return fresh arrays from `reset` and `step` instead of arrays
            that the next call may rewrite (see the module docstring).
        dense_final_obs: ``SAME_STEP`` only: ``info["final_obs"]`` is the
            engine's batch of last observations (shaped like ``obs``, valid
            where ``info["_final_obs"]``) instead of Gymnasium's object array
            of rows, which costs about 50 ns per ended episode to build.
        seed: seed of the pool's random streams until `reset(seed=...)`.
        num_threads: worker threads; ``None`` picks one per core.
        render_mode: ``None`` or ``"ansi"`` (text pictures from `render`).
        **task_kwargs: task parameters, as for `pyenvpool.make`.

    Observations: a task with one observation field gives a plain array and a
    `Box` space; a task with several gives a dict of arrays and a `Dict` space.
    Actions: integers of shape ``[num_envs]`` (`MultiDiscrete`). Rewards are
    float32, as the engine computes them.
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
        dense_final_obs: bool = False,
        seed: int = 0,
        num_threads: int | None = None,
        render_mode: str | None = None,
        **task_kwargs: Any,
    ) -> None:
        pool = make(task_id, num_envs, num_threads=num_threads, seed=seed, **task_kwargs)
        try:
            self._attach(pool, autoreset_mode, copy, dense_final_obs, render_mode)
        except Exception:
            pool.close()
            raise

    @classmethod
    def from_pool(
        cls,
        pool: EnvPool,
        *,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        copy: bool = False,
        dense_final_obs: bool = False,
        render_mode: str | None = None,
    ) -> GymnasiumVectorEnv:
        """Wrap an existing (synchronous) pool. The adapter takes it over:
        step it only through the adapter from now on; `close` closes it."""
        self = cls.__new__(cls)
        self._attach(pool, autoreset_mode, copy, dense_final_obs, render_mode)
        return self

    def _attach(
        self,
        pool: EnvPool,
        autoreset_mode: Any,
        copy: bool,
        dense_final_obs: bool,
        render_mode: Any,
    ) -> None:
        mode = AutoresetMode(autoreset_mode)
        if render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        if getattr(pool, "batch_size", pool.num_envs) != pool.num_envs:
            raise ValueError("GymnasiumVectorEnv needs a synchronous pool (batch_size=None)")
        if dense_final_obs and mode != AutoresetMode.SAME_STEP:
            raise ValueError("dense_final_obs=True needs autoreset_mode=AutoresetMode.SAME_STEP")
        self._pool = pool
        self.autoreset_mode = mode
        self.copy = bool(copy)
        self.render_mode = render_mode
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}
        self.num_envs = n = pool.num_envs
        self._same_step = mode == AutoresetMode.SAME_STEP
        self._next_step = mode == AutoresetMode.NEXT_STEP
        self._dense_final_obs = bool(dense_final_obs)

        fields = pool.spec.fields
        self._field = next(iter(fields)) if len(fields) == 1 else None
        if self._field is not None:
            self.single_observation_space = fields[self._field].to_space()
        else:
            self.single_observation_space = spaces.Dict(
                {name: f.to_space() for name, f in fields.items()}
            )
        self.single_action_space = spaces.Discrete(pool.spec.num_actions)
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)

        self._started = False  # reset() has run
        self._engine_obs: dict[str, np.ndarray] = {}  # SAME_STEP: the engine's views
        # NEXT_STEP / DISABLED: the returned batch, which the engine writes into.
        self._obs = {name: np.zeros((n, *f.shape), f.dtype) for name, f in fields.items()}
        self._reward = np.zeros(n, np.float32)
        self._terminated = np.zeros(n, np.bool_)
        self._truncated = np.zeros(n, np.bool_)
        self._out = {
            **self._obs,
            "reward": self._reward,
            "terminated": self._terminated,
            "truncated": self._truncated,
        }
        # Envs that ended on the last step, which the engine has already reset:
        # their first observations and (NEXT_STEP) snapshots of that state.
        self._pending_ids = _NO_IDS
        self._pending_obs: dict[str, np.ndarray] = {}
        self._pending_states = _NO_IDS
        # SAME_STEP: Gymnasium's `final_obs`, one reused object array holding
        # one reused view per row. Allocating them per step would cost as much
        # as a fifth of a 4096-env CartPole step.
        self._final_source: Any = None
        self._final_rows = np.empty(n, object)
        self._final_objects = np.full(n, None, object)
        self._final_done = np.zeros(n, np.bool_)

    @property
    def pool(self) -> EnvPool:
        """The underlying `EnvPool` (its spec, snapshots). Step it only through
        the adapter; outside ``SAME_STEP`` its own observation buffers are not
        kept current."""
        return self._pool

    # ---------------------------------------------------------------- reset
    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Reset all envs, or those where ``options["reset_mask"]`` is True.

        Args:
            seed: ``None`` continues each env's random stream; an int ``s``
                seeds env ``i`` with ``s + i`` (as `SyncVectorEnv` does); a list
                gives one seed (or ``None``) per env. Env ``i`` seeded with
                ``s`` draws from the engine's stream ``(s, i)``.
            options: ``"reset_mask"``: bool array ``[num_envs]``; the other
                rows of the returned obs are left as they were.
                ``"instances"``: problem instances, as for `EnvPool.reset`,
                with one row per reset env. Other keys raise ``ValueError``.
                The dict is not modified.

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
        if "reset_mask" in options:
            mask = self._check_reset_mask(options["reset_mask"])
            if not self._started:
                raise ResetNeeded("call reset() without a reset_mask before resetting some envs")
            self._reset_some(mask.nonzero()[0], seeds, instances)
        else:
            self._reset_all(seeds, instances)
            self._started = True
        if isinstance(seed, (int, np.integer)):
            super().reset(seed=int(seed))  # seeds self.np_random, as VectorEnv does
        obs = self._batch(self._engine_obs if self._same_step else self._obs)
        return (_copy(obs) if self.copy else obs), {}

    def _check_reset_mask(self, reset_mask: Any) -> np.ndarray:
        # SyncVectorEnv.reset's checks and messages.
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
        if seeds is not None and None not in seeds:
            obs, _ = pool.reset(seed=seeds, instances=instances)
        else:
            obs, _ = pool.reset(instances=instances)
            ids = np.array([i for i, s in enumerate(seeds or []) if s is not None], np.int64)
            if ids.size:  # reseed the envs that have a seed
                pool.reset(
                    seed=[seeds[i] for i in ids],  # type: ignore[index]
                    env_ids=ids,
                    instances=_rows_of(instances, ids),
                )
        self._engine_obs = obs  # views: the reseeding above shows in them
        if not self._same_step:
            for name, buf in self._obs.items():
                np.copyto(buf, obs[name])

    def _reset_some(self, ids: np.ndarray, seeds: list[int | None] | None, instances: Any) -> None:
        """Reset envs `ids` (sorted); instance rows follow `ids`."""
        pick = [None] * len(ids) if seeds is None else [seeds[i] for i in ids]
        seeded = np.array([s is not None for s in pick], np.bool_)
        # An ended env that was not stepped since already holds a fresh start
        # state drawn by the engine: keep it unless a seed or instance is given.
        fresh = np.isin(ids, self._pending_ids) & ~seeded
        if instances is not None:
            fresh[:] = False
        for group in (seeded, ~seeded & ~fresh):
            if group.any():
                group_seeds = [pick[j] for j in group.nonzero()[0]] if group is seeded else None
                obs, _ = self._pool.reset(
                    seed=group_seeds, env_ids=ids[group], instances=_rows_of(instances, group)
                )
                self._store_rows(ids[group], obs)
        if fresh.any():
            rows = np.searchsorted(self._pending_ids, ids[fresh])
            self._store_rows(ids[fresh], {k: v[rows] for k, v in self._pending_obs.items()})
        self._clear_pending(ids)

    def _store_rows(self, ids: np.ndarray, rows: dict[str, np.ndarray]) -> None:
        if not self._same_step:  # SAME_STEP returns the engine's views, already current
            for name, buf in self._obs.items():
                buf[ids] = rows[name]

    def _clear_pending(self, ids: np.ndarray | None) -> None:
        """Forget the pending restarts of `ids` (all if None); release their snapshots."""
        if self._pending_ids.size == 0:
            return
        if ids is None:
            drop = np.ones(self._pending_ids.size, np.bool_)
        else:
            drop = np.isin(self._pending_ids, ids)
        if self._pending_states.size:
            self._pool.release(self._pending_states[drop])
            self._pending_states = self._pending_states[~drop]
        self._pending_obs = {k: v[~drop] for k, v in self._pending_obs.items()}
        self._pending_ids = self._pending_ids[~drop]

    # ----------------------------------------------------------------- step
    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env with ``actions`` (integers, shape ``[num_envs]``)."""
        if not self._started:
            raise ResetNeeded("Cannot call step() before calling reset()")
        if self._same_step:
            return self._step_same(actions)
        if self.autoreset_mode == AutoresetMode.DISABLED and self._pending_ids.size:
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
            final = info["final_obs"]
            infos = {
                "final_obs": self._batch(final)
                if self._dense_final_obs
                else self._final_obs(final, done),
                "_final_obs": done,
                "final_info": _episode_info(info, done),
                "_final_info": done,
            }
        if self.copy:
            return _copy((self._batch(obs), reward, terminated, truncated, infos))
        return self._batch(obs), reward, terminated, truncated, infos

    def _step_next(self, actions: Any):
        pool = self._pool
        _, reward, terminated, truncated, info = pool.step(actions, out=self._out)
        pending = self._pending_ids
        stale = False
        if pending.size:  # NEXT_STEP: these envs restart now; undo their step
            # (whose ending, possible in some tasks, left totals in `info`).
            stale = bool((terminated[pending] | truncated[pending]).any())
            pool.restore(self._pending_states, env_ids=pending)
            pool.release(self._pending_states)
            self._pending_states = _NO_IDS
            for name, buf in self._obs.items():
                buf[pending] = self._pending_obs[name]
            reward[pending] = 0.0
            terminated[pending] = False
            truncated[pending] = False
        done = terminated | truncated
        ids = done.nonzero()[0]
        infos: dict[str, Any] = {}
        if ids.size:  # keep the next episodes' first obs; show the last ones
            final = info["final_obs"]
            self._pending_obs = {name: buf[ids] for name, buf in self._obs.items()}
            for name, buf in self._obs.items():
                buf[ids] = final[name][ids]
            if self._next_step:
                self._pending_states = pool.snapshot(ids)
            infos = _episode_info(info, done, zero_elsewhere=stale)
        else:
            self._pending_obs = {}
        self._pending_ids = ids
        result = (self._batch(self._obs), reward, terminated, truncated, infos)
        return _copy(result) if self.copy else result

    def _final_obs(self, final: dict[str, np.ndarray], done: np.ndarray) -> np.ndarray:
        """Gymnasium's `final_obs`: an object array holding the last obs of
        each env that ended (where `done`) and None elsewhere."""
        if self.copy:
            out = np.full(self.num_envs, None, object)
            out[done] = self._rows({name: arr[done] for name, arr in final.items()})
            return out
        if final is not self._final_source:
            self._final_rows = self._rows(final)
            self._final_source = final
        out = self._final_objects
        np.copyto(out, None, where=self._final_done)
        np.copyto(out, self._final_rows, where=done)
        np.copyto(self._final_done, done)  # our copy: `done` is handed out as the mask
        return out

    def _rows(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """An object array of per-row views of `batch`, each shaped like one
        env's observation."""
        n = len(next(iter(batch.values())))
        rows = np.empty(n, object)
        if self._field is not None:
            for i, row in enumerate(batch[self._field]):
                rows[i] = row
        else:
            for i in range(n):
                rows[i] = {name: arr[i] for name, arr in batch.items()}
        return rows

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


def _episode_info(info: dict[str, Any], done: np.ndarray, zero_elsewhere: bool = False):
    """The engine's episode totals, masked by `done` as Gymnasium masks info."""
    episode_return, episode_length = info["episode_return"], info["episode_length"]
    if zero_elsewhere:
        episode_return = np.where(done, episode_return, 0.0)
        episode_length = np.where(done, episode_length, 0).astype(np.int32)
    return {
        "episode_return": episode_return,
        "_episode_return": done,
        "episode_length": episode_length,
        "_episode_length": done,
    }


def _rows_of(instances: Any, index: np.ndarray) -> dict[str, np.ndarray] | None:
    """Rows `index` (ints or a mask) of each instance array."""
    if instances is None:
        return None
    if not isinstance(instances, dict):
        raise TypeError("options['instances'] must be a dict of arrays")
    return {k: np.asarray(v)[index] for k, v in instances.items()}


def _copy(value: Any) -> Any:
    """Owned copies of the arrays in a nested result. Object arrays
    (`final_obs`) pass through: with ``copy=True`` they are built fresh."""
    if isinstance(value, np.ndarray):
        return value if value.dtype == object else value.copy()
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_copy(v) for v in value)
    return value


def register_envs() -> None:
    """Register ``pyenvpool/<task_id>`` for every task, so that
    ``gymnasium.make_vec("pyenvpool/CartPole-v1", num_envs=8,
    vectorization_mode="vector_entry_point")`` builds a `GymnasiumVectorEnv`;
    `make_vec`'s keyword arguments reach its constructor. Idempotent."""
    for task_id in list_tasks():
        env_id = f"pyenvpool/{task_id}"
        if env_id not in gymnasium.registry:
            gymnasium.register(
                id=env_id,
                vector_entry_point="pyenvpool.gymnasium_env:GymnasiumVectorEnv",
                kwargs={"task_id": task_id},
            )
