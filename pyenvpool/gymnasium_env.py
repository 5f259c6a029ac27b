"""GymnasiumVectorEnv: an EnvPool seen through the `gymnasium.vector.VectorEnv` API.

The three Gymnasium autoreset modes map onto the engine's two kinds of pool:

* ``SAME_STEP`` runs on an auto-resetting pool, the engine's native mode:
  where an episode ends, ``obs`` already holds the next episode's first
  observation, and `step` adds Gymnasium's ``final_obs`` (an object array of
  rows, ``None`` where no episode ended) and ``final_info``.
* ``NEXT_STEP`` (Gymnasium's default) and ``DISABLED`` run on a pool made with
  ``autoreset=False``: an env that ends keeps its final state, so the step that
  ends an episode returns its last observation. In ``NEXT_STEP`` the next step
  lets the pool absorb the env's action (reward 0, nothing moves) and then
  resets the env with ``pool.reset(env_ids=...)``, returning the new episode's
  first observation with reward 0 and both flags False. In ``DISABLED``
  stepping again before ``reset(options={"reset_mask": ...})`` has restarted
  every ended env raises `gymnasium.error.ResetNeeded`.

An env draws its next start state from its own random stream whichever the
mode, so for one seed and the same actions the three modes play the same
episodes.

Besides Gymnasium's keys, `info` reports the engine's totals of each finished
episode, ``episode_return`` and ``episode_length`` with their ``_`` masks: in
``info["final_info"]`` under ``SAME_STEP`` (they describe the step that ended
the episode), at the top level otherwise.

Ownership (``copy=True``, the default, as in Gymnasium's vector envs): every
array that `reset` and `step` return, the rows of ``final_obs`` included, is
fresh, and the adapter never writes it again. With ``copy=False`` they are the
engine's buffers (``final_obs``: one reused object array of views into them),
rewritten in place by the next `reset` or `step`.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from pyenvpool._gymnasium_tasks import (
    check_task_kwargs,
    register_envs,
    render_fps,
    step_limit_kwarg,
)
from pyenvpool._pool import EnvPool, make

__all__ = ["GymnasiumVectorEnv", "register_envs"]

_NO_IDS = np.zeros(0, np.int64)
# The pool's auto-reset for each of Gymnasium's modes (see `pyenvpool.make`).
_POOL_AUTORESET = {
    AutoresetMode.NEXT_STEP: "next_step",
    AutoresetMode.SAME_STEP: "same_step",
    AutoresetMode.DISABLED: "disabled",
}
# Attributes that `get_attr`/`call` report for every env and `set_attr` may not set.
_ENV_ATTRS = ("observation_space", "action_space", "render_mode", "metadata", "spec")


class GymnasiumVectorEnv(VectorEnv):
    """``num_envs`` copies of a pyenvpool task as a `gymnasium.vector.VectorEnv`.

    Args:
        task_id: one of `pyenvpool.list_tasks()`.
        num_envs: number of environment copies.
        autoreset_mode: a `gymnasium.vector.AutoresetMode` or its value. The
            default, ``NEXT_STEP``, is Gymnasium's, so code written for
            `gymnasium.make_vec` runs unchanged; ``SAME_STEP`` is the engine's
            native mode and the fastest.
        copy: ``True`` returns fresh arrays the caller owns; ``False`` the
            engine's buffers, which the next call rewrites (see the module
            docstring).
        dense_final_obs: ``SAME_STEP`` only: ``info["final_obs"]`` is the
            engine's batch of last observations (shaped like ``obs``, valid
            where ``info["_final_obs"]``) instead of Gymnasium's object array
            of rows, which costs an array object per ended episode.
        seed: seed of every env's random stream until `reset(seed=...)`.
        num_threads: worker threads; ``None`` picks one per core.
        render_mode: ``None``, ``"ansi"`` or ``"rgb_array"`` (tasks that draw).
        max_episode_steps: the task's own step limit (CartPole's
            ``max_episode_steps``, Maze's ``time_limit``); ``None`` keeps its
            default. ``gymnasium.make_vec`` passes the registered limit.
        **task_kwargs: task parameters, as for `pyenvpool.make`.

    Observations: a task with one observation field gives a plain array and a
    `Box` space; a task with several gives a dict of arrays and a `Dict` space.
    Actions: a batch of the task's action space (``single_action_space``,
    batched with `gymnasium.vector.utils.batch_space`). Rewards are float32,
    as the engine computes them.
    """

    metadata: dict[str, Any] = {
        "autoreset_mode": AutoresetMode.NEXT_STEP,
        "render_modes": ["ansi", "rgb_array"],
        "render_fps": 30,
    }

    def __init__(
        self,
        task_id: str,
        num_envs: int,
        *,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        copy: bool = True,
        dense_final_obs: bool = False,
        seed: int = 0,
        num_threads: int | None = None,
        render_mode: str | None = None,
        max_episode_steps: int | None = None,
        **task_kwargs: Any,
    ) -> None:
        mode = AutoresetMode(autoreset_mode)
        check_task_kwargs("GymnasiumVectorEnv", task_id, task_kwargs)
        if max_episode_steps is not None:
            limit_kwarg = step_limit_kwarg(task_id)
            if limit_kwarg is None:
                raise TypeError(
                    f"{task_id} has no step limit; max_episode_steps={max_episode_steps} "
                    "cannot apply (gymnasium.make_vec(..., vectorization_mode='sync') "
                    "wraps each env in TimeLimit)"
                )
            task_kwargs[limit_kwarg] = max_episode_steps
        pool = make(
            task_id,
            num_envs,
            num_threads=num_threads,
            seed=seed,
            autoreset=_POOL_AUTORESET[mode],
            **task_kwargs,
        )
        try:
            self._attach(pool, mode, copy, dense_final_obs, render_mode, seed)
        except Exception:
            pool.close()
            raise

    @classmethod
    def from_pool(
        cls,
        pool: EnvPool,
        *,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        copy: bool = True,
        dense_final_obs: bool = False,
        render_mode: str | None = None,
    ) -> GymnasiumVectorEnv:
        """Wrap an existing synchronous pool: made with ``autoreset=True`` for
        ``SAME_STEP``, ``autoreset=False`` for the other modes. The adapter
        takes it over: step it only through the adapter from now on; `close`
        closes it. ``np_random_seed`` reports -1 (unknown) until a seeded reset."""
        self = cls.__new__(cls)
        self._attach(pool, AutoresetMode(autoreset_mode), copy, dense_final_obs, render_mode, -1)
        return self

    def _attach(
        self,
        pool: EnvPool,
        mode: AutoresetMode,
        copy: bool,
        dense_final_obs: bool,
        render_mode: Any,
        seed: int,
    ) -> None:
        modes = list(pool.render_modes)
        if render_mode is not None and render_mode not in modes:
            raise ValueError(
                f"{pool.spec.task_id} renders {modes}, not render_mode={render_mode!r}"
                + (" (the task does not draw frames)" if render_mode == "rgb_array" else "")
            )
        if getattr(pool, "batch_size", pool.num_envs) != pool.num_envs:
            raise ValueError("GymnasiumVectorEnv needs a synchronous pool (batch_size=None)")
        if pool.autoreset_mode != _POOL_AUTORESET[mode]:
            raise ValueError(
                f"autoreset_mode={mode} needs a pool made with autoreset={_POOL_AUTORESET[mode]!r}"
            )
        if dense_final_obs and mode != AutoresetMode.SAME_STEP:
            raise ValueError("dense_final_obs=True needs autoreset_mode=AutoresetMode.SAME_STEP")
        self._pool = pool
        self.autoreset_mode = mode
        self.copy = bool(copy)
        self.render_mode = render_mode
        self.metadata = {
            "autoreset_mode": mode,
            "render_modes": modes,
            "render_fps": render_fps(pool.spec.task_id),
        }
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
        self.single_action_space = pool.single_action_space
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)

        self._views: dict[str, np.ndarray] | None = None  # the engine's obs batch
        self._pending_ids = _NO_IDS  # DISABLED: envs that ended and were not reset
        self._seeds = [int(seed)] * n  # each env's last seed, for np_random_seed
        self._env_attrs: dict[str, tuple] = {}  # set_attr's values
        # SAME_STEP, copy=False: Gymnasium's `final_obs`, one reused object
        # array holding one reused view per row of the engine's buffer.
        self._final_source: Any = None
        self._final_rows = np.empty(n, object)
        self._final_objects = np.full(n, None, object)
        self._final_done = np.zeros(n, np.bool_)

    @property
    def pool(self) -> EnvPool:
        """The underlying `EnvPool` (its spec, snapshots). Step it only through
        the adapter."""
        return self._pool

    @property
    def np_random_seed(self) -> tuple[int, ...]:
        """Each env's seed, as `SyncVectorEnv` reports its envs' seeds: the
        constructor's ``seed`` until a `reset` seeds the env."""
        return tuple(self._seeds)

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
                rows of the returned obs are left as they were. A first reset
                may have a mask too: the envs outside it then start an episode
                from their random streams. ``"instances"``: problem instances,
                as for `EnvPool.reset`, with one row per reset env. Other keys
                raise ``ValueError``. The dict is not modified.

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
        mask = None
        if "reset_mask" in options:
            mask = self._check_reset_mask(options["reset_mask"])
            if self._views is None:  # a first reset: start every env
                self._views = self._pool.reset()[0]
        self._reset_envs(mask, seeds, instances)
        if isinstance(seed, (int, np.integer)):
            super().reset(seed=int(seed))  # seeds self.np_random, as VectorEnv does
        obs = self._batch(self._views)
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

    def _reset_envs(
        self, mask: np.ndarray | None, seeds: list[int | None] | None, instances: Any
    ) -> None:
        """Reset the envs where `mask` (all if None); instance rows follow the
        env order. Envs with a seed are reseeded, the others continue their
        streams."""
        pool = self._pool
        ids = None if mask is None else mask.nonzero()[0]
        if seeds is None:
            obs, _ = pool.reset(env_ids=ids, instances=instances)
        else:
            pick = seeds if ids is None else [seeds[i] for i in ids]
            seeded = np.array([s is not None for s in pick], np.bool_)
            if seeded.all():
                obs, _ = pool.reset(seed=pick, env_ids=ids, instances=instances)
            else:
                obs, _ = pool.reset(env_ids=ids, instances=instances)
                if seeded.any():  # reseed the envs that have a seed
                    pool.reset(
                        seed=[s for s in pick if s is not None],
                        env_ids=np.flatnonzero(seeded) if ids is None else ids[seeded],
                        instances=_rows_of(instances, seeded),
                    )
            for i, s in zip(range(self.num_envs) if ids is None else ids, pick):
                if s is not None:
                    self._seeds[i] = int(s)
        if ids is None:
            self._views = obs  # the engine's batch (a partial reset writes into it)
            self._pending_ids = _NO_IDS
        elif self._pending_ids.size:
            self._pending_ids = self._pending_ids[~mask[self._pending_ids]]

    # ----------------------------------------------------------------- step
    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env with ``actions``, a batch of ``single_action_space``."""
        if self._views is None:
            raise ResetNeeded("Cannot call step() before calling reset()")
        if np.ndim(actions) == 0:  # as SyncVectorEnv, which cannot iterate it
            raise TypeError(f"actions must be a batch of {self.num_envs}, got a scalar")
        if self._same_step:
            return self._step_same(actions)
        if self._next_step:  # the engine restarts envs that ended last step
            obs, reward, terminated, truncated, info = self._pool.step(actions)
            done = terminated | truncated
            infos = _episode_info(info, done, self.copy) if done.any() else {}
            return self._result(obs, reward, terminated, truncated, infos)
        pending = self._pending_ids  # DISABLED: envs that ended and were not reset
        if pending.size:
            raise ResetNeeded(
                f"envs {pending.tolist()[:10]} ended and were not reset; with "
                "AutoresetMode.DISABLED call reset(options={'reset_mask': ...}) first"
            )
        obs, reward, terminated, truncated, info = self._pool.step(actions)
        done = terminated | truncated
        ids = done.nonzero()[0]
        self._pending_ids = ids
        infos = _episode_info(info, done, self.copy) if ids.size else {}
        return self._result(obs, reward, terminated, truncated, infos)

    def _step_same(self, actions: Any):
        obs, reward, terminated, truncated, info = self._pool.step(actions)
        done = terminated | truncated
        infos: dict[str, Any] = {}
        if done.any():
            final = info["final_obs"]
            if self._dense_final_obs:
                final_obs = self._batch(_copy(final) if self.copy else final)
            elif self.copy:
                final_obs = self._owned_final_obs(final, done)
            else:
                final_obs = self._final_views(final, done)
            infos = {
                "final_obs": final_obs,
                "_final_obs": done,
                "final_info": _episode_info(info, done, self.copy),
                "_final_info": done,
            }
        return self._result(obs, reward, terminated, truncated, infos)

    def _result(self, obs, reward, terminated, truncated, infos):
        """`step`'s tuple; with ``copy=True`` the engine's arrays are copied
        (`infos` is already owned: fresh masks, copied totals)."""
        if self.copy:
            obs, reward = _copy(obs), reward.copy()
            terminated, truncated = terminated.copy(), truncated.copy()
        return self._batch(obs), reward, terminated, truncated, infos

    def _owned_final_obs(self, final: dict[str, np.ndarray], done: np.ndarray) -> np.ndarray:
        """Gymnasium's `final_obs` with rows the caller owns: views of a fresh
        copy of the ended envs' last observations."""
        ids = done.nonzero()[0]
        out = np.empty(self.num_envs, object)  # None-filled
        out[ids] = self._rows({name: arr[ids] for name, arr in final.items()})
        return out

    def _final_views(self, final: dict[str, np.ndarray], done: np.ndarray) -> np.ndarray:
        """``copy=False``: one reused object array of reused row views of the
        engine's `final_obs` buffer; building them per step would cost as much
        as a fifth of a 4096-env CartPole step."""
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
        env's observation (a 0-d array for a scalar field)."""
        n = len(next(iter(batch.values())))
        if self._field is not None and batch[self._field].ndim > 1:
            return np.fromiter(batch[self._field], object, count=n)  # fast path
        if self._field is not None:
            return np.fromiter((batch[self._field][i, ...] for i in range(n)), object, count=n)
        return np.fromiter(
            ({name: arr[i, ...] for name, arr in batch.items()} for i in range(n)),
            object,
            count=n,
        )

    def _batch(self, obs: dict[str, np.ndarray]) -> Any:
        return obs[self._field] if self._field is not None else dict(obs)

    # ---------------------------------------------------------------- misc
    def render(self) -> tuple[Any, ...] | None:
        """One picture per env, as `SyncVectorEnv.render` gives them: a tuple of
        str (``"ansi"``) or of uint8 ``[height, width, 3]`` frames
        (``"rgb_array"``, drawn in parallel on the pool's threads). Envs whose
        episode has ended and not restarted show their last state."""
        if self.render_mode is None:
            gymnasium.logger.warn(
                "render() called with render_mode=None; make the env with "
                f"render_mode in {self.metadata['render_modes']}"
            )
            return None
        return tuple(self._pool.render(None, mode=self.render_mode))

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """What each env's attribute or method ``name`` gives, as a tuple of
        ``num_envs`` values (`SyncVectorEnv.call`). The envs share one engine,
        so the attributes are those of one pyenvpool env: ``render`` (with no
        arguments), ``np_random_seed``, the single ``observation_space`` and
        ``action_space``, ``render_mode``, ``metadata``, ``spec``, and any
        attribute given with `set_attr`."""
        n = self.num_envs
        if name in self._env_attrs:
            values = self._env_attrs[name]
        elif name == "np_random_seed":
            values = self.np_random_seed
        elif name == "render":
            if args or kwargs:
                raise TypeError("render() takes no arguments")
            values = self.render() or (None,) * n
        elif name in _ENV_ATTRS:
            single = {"observation_space": "single_observation_space"}
            single["action_space"] = "single_action_space"
            values = (getattr(self, single.get(name, name)),) * n
        else:
            raise AttributeError(
                f"pyenvpool envs have no attribute {name!r}; available: "
                f"{sorted({*_ENV_ATTRS, 'np_random_seed', 'render', *self._env_attrs})}"
            )
        return tuple(v(*args, **kwargs) if callable(v) else v for v in values)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Each env's attribute ``name`` (see `call`)."""
        return self.call(name)

    def set_attr(self, name: str, values: list[Any] | tuple[Any, ...] | Any) -> None:
        """Give each env a Python attribute that `get_attr` and `call` return:
        one value for all, or a list or tuple of one per env. The task itself
        runs in C++ and reads nothing set here; the attributes of `call` that
        describe it are read-only."""
        if name in _ENV_ATTRS or name in ("np_random_seed", "render"):
            raise AttributeError(f"{name!r} is read-only on pyenvpool envs")
        if not isinstance(values, (list, tuple)):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(
                "Values must be a list or tuple with length equal to the number of environments. "
                f"Got `{len(values)}` values for {self.num_envs} environments."
            )
        self._env_attrs[name] = tuple(values)

    def close_extras(self, **kwargs: Any) -> None:
        """Close the pool (joins its worker threads)."""
        self._pool.close()


def _episode_info(info: dict[str, Any], done: np.ndarray, copy: bool) -> dict[str, np.ndarray]:
    """The engine's episode totals (copied if `copy`), masked by `done` (a
    fresh array) as Gymnasium masks info."""
    episode_return, episode_length = info["episode_return"], info["episode_length"]
    if copy:
        episode_return, episode_length = episode_return.copy(), episode_length.copy()
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
