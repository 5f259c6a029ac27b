"""EnvPool's Python API over pyenvpool, for code written for EnvPool.

    import pyenvpool.envpool as envpool   # instead of: import envpool

    env = envpool.make("CartPole-v1", env_type="gymnasium", num_envs=8)
    obs, info = env.reset()
    obs, reward, terminated, truncated, info = env.step(actions)

What matches EnvPool (1.2.5, checked against it in tests/test_envpool.py):

* ``make(task_id, env_type, num_envs=1, batch_size=0, num_threads=0, seed=42,
  **kwargs)``, ``make_gymnasium``, ``make_gym``, ``make_spec``,
  ``list_all_envs``. Other keyword arguments are task parameters.
* ``reset(env_id=None)``, ``step(action, env_id=None)``, ``async_reset()``,
  ``send(action, env_id=None)``, ``recv()``. With ``batch_size < num_envs``
  the pool is asynchronous: ``recv`` returns the first ``batch_size`` envs to
  finish, named by ``info["env_id"]``. A synchronous pool steps exactly the
  envs it is sent, so ``step(action, env_id)`` may step a subset.
* Single-env ``observation_space`` and ``action_space`` (as EnvPool has them;
  ``single_*`` are the same objects). Observations are arrays for a task with
  one observation field, dicts of arrays otherwise. Every returned array is a
  fresh copy the caller owns.
* ``info``: ``env_id`` (int32), ``players`` (``{"env_id": ...}``) and
  ``elapsed_step`` (int32, steps since the episode began).
* ``env_type="gymnasium"`` (and ``make_gymnasium``): Gymnasium's
  ``(obs, info)`` and ``(obs, reward, terminated, truncated, info)``.
  ``env_type="gym"`` (``make_gym``): the old Gym API that EnvPool served
  before 1.0 with gym < 0.26, which scripts passing ``env_type="gym"`` (such as
  CleanRL's EnvPool scripts) were written for: ``reset()`` returns ``obs``
  (``(obs, info)`` with ``gym_reset_return_info=True``), ``step`` returns
  ``(obs, reward, done, info)`` with ``info["TimeLimit.truncated"]``
  (``truncated and not terminated``). EnvPool 1.x has dropped that API and
  treats ``"gym"`` as ``"gymnasium"``.

Auto-reset, the one deliberate choice. EnvPool resets an env on the step
*after* its episode ended: that step returns the new episode's first
observation with reward 0, both flags False and ``elapsed_step`` 0, and
ignores the env's action. pyenvpool's engine resets in the *same* step.
``autoreset="next_step"`` (the default here, since this module exists for
code written for EnvPool) gives EnvPool's behaviour with the engine's own
next-step mode (``pyenvpool.make(..., autoreset="next_step")``): an env that
ended restarts in its next step, in the same engine call as the other envs'
steps. Like EnvPool, the first step of an env that was never reset starts its
first episode. ``autoreset="same_step"`` returns the engine's
results as they are: where an episode ended, ``obs`` already holds the next
episode's first observation, ``info["final_obs"]`` the last one (rows where an
episode ended; other rows hold stale data), ``info["episode_return"]`` and
``info["episode_length"]`` its totals, and ``elapsed_step`` the finished
episode's length.

Other differences: ``seed`` gives env ``i`` its own stream of the engine's RNG
(EnvPool seeds env ``i`` with ``seed + i``), so the same seed draws other
start states than EnvPool; ``reset(seed=...)`` reseeds (EnvPool ignores it
with a warning). ``num_envs``, ``single_observation_space`` and
``single_action_space`` are plain attributes that scripts may assign.
"""

from __future__ import annotations

import collections
import operator
import warnings
from typing import Any

import numpy as np

try:
    import gymnasium
    from gymnasium import spaces
    from gymnasium.vector import AutoresetMode, VectorEnv
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "pyenvpool.envpool needs gymnasium: pip install 'pyenvpool[gymnasium]'"
    ) from error

from pyenvpool._pool import EnvPool, list_tasks
from pyenvpool._pool import make as _make_pool

__all__ = [
    "EnvPoolEnv",
    "EnvSpec",
    "list_all_envs",
    "make",
    "make_gym",
    "make_gymnasium",
    "make_spec",
]

_AUTORESET = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}


def list_all_envs() -> list[str]:
    """Every task id `make` accepts."""
    return list_tasks()


def make(task_id: str, env_type: str = "gymnasium", **kwargs: Any) -> EnvPoolEnv:
    """EnvPool's ``envpool.make``: ``env_type`` is ``"gymnasium"`` or ``"gym"``
    (see the module docstring); keyword arguments as for `EnvPoolEnv`."""
    if env_type == "dm":
        raise ValueError("env_type='dm' (dm_env) is not provided; use 'gymnasium' or 'gym'")
    if env_type not in ("gymnasium", "gym"):
        raise ValueError(f"env_type must be 'gymnasium' or 'gym', got {env_type!r}")
    return EnvPoolEnv(task_id, env_type, **kwargs)


def make_gymnasium(task_id: str, **kwargs: Any) -> EnvPoolEnv:
    return make(task_id, "gymnasium", **kwargs)


def make_gym(task_id: str, **kwargs: Any) -> EnvPoolEnv:
    return make(task_id, "gym", **kwargs)


def make_spec(task_id: str, **kwargs: Any) -> EnvSpec:
    """The spec (config, spaces) that `make` with these arguments would have."""
    env = make(task_id, "gymnasium", **{**kwargs, "num_threads": 1})
    spec = env.spec
    env.close()
    return spec


class EnvSpec:
    """What EnvPool's ``env.spec`` offers: ``config`` (a named tuple of the
    pool's settings and task parameters), ``observation_space`` and
    ``action_space`` (one env's, also as ``gymnasium_*``); ``id`` is the task id."""

    def __init__(
        self, task_id: str, config: dict[str, Any], observation_space: Any, action_space: Any
    ):
        self.id = task_id
        self.config = collections.namedtuple("Config", list(config))(**config)
        self.observation_space = self.gymnasium_observation_space = observation_space
        self.action_space = self.gymnasium_action_space = action_space

    def __repr__(self) -> str:
        return f"EnvSpec({self.config})"


class EnvPoolEnv(VectorEnv, gymnasium.Env):
    """A pyenvpool pool behind EnvPool's Gym/Gymnasium interface (see the
    module docstring). Build it with `make`.

    Args:
        task_id: one of `list_all_envs()`.
        env_type: ``"gymnasium"`` or ``"gym"``.
        num_envs: number of envs.
        batch_size: envs per ``recv``; 0 or ``num_envs`` is synchronous.
        num_threads: worker threads; 0 picks one per core.
        seed: an int (env ``i`` uses the engine's stream ``(seed, i)``) or one
            seed per env.
        autoreset: ``"next_step"`` (EnvPool's) or ``"same_step"`` (the engine's).
        gym_reset_return_info: ``env_type="gym"`` only: ``reset`` returns
            ``(obs, info)`` instead of ``obs``.
        render_mode: ``None``, ``"rgb_array"`` or ``"ansi"``; ``render``
            draws ``render_env_id`` unless told which envs.
        max_num_players, thread_affinity_offset: EnvPool settings, accepted
            with their single-player, no-affinity values.
        **task_kwargs: task parameters, as for `pyenvpool.make`.
    """

    def __init__(
        self,
        task_id: str,
        env_type: str = "gymnasium",
        *,
        num_envs: int = 1,
        batch_size: int = 0,
        num_threads: int = 0,
        seed: int | list[int] | np.ndarray = 42,
        autoreset: str = "next_step",
        gym_reset_return_info: bool = False,
        render_mode: str | None = None,
        render_env_id: int = 0,
        max_num_players: int = 1,
        thread_affinity_offset: int = -1,
        **task_kwargs: Any,
    ) -> None:
        if autoreset not in _AUTORESET:
            raise ValueError(f"autoreset must be 'next_step' or 'same_step', got {autoreset!r}")
        if max_num_players != 1:
            raise ValueError("max_num_players must be 1: pyenvpool tasks have one player per env")
        seeds = None
        if np.ndim(seed) > 0:
            seeds = np.asarray(seed, np.int64).reshape(-1)
            if len(seeds) != num_envs:
                raise ValueError(f"seed has {len(seeds)} entries for num_envs={num_envs}")
        pool = _make_pool(
            task_id,
            num_envs,
            num_threads=num_threads or None,
            seed=0 if seeds is not None else int(seed),
            batch_size=batch_size if 0 < batch_size < num_envs else None,
            autoreset=autoreset,
            **task_kwargs,
        )
        if seeds is not None:
            pool.reset(seed=seeds)
        if render_mode is not None and render_mode not in pool.render_modes:
            pool.close()
            raise ValueError(f"{task_id} renders {list(pool.render_modes)}; got {render_mode!r}")
        self.pool: EnvPool = pool
        self._gym_api = env_type == "gym"
        self._reset_info = gym_reset_return_info or not self._gym_api
        self._same_step = autoreset == "same_step"
        self.render_mode = render_mode
        self._render_env_id = int(render_env_id)
        self.metadata = {
            "render_modes": list(pool.render_modes),
            "autoreset_mode": _AUTORESET[autoreset],
        }
        self.num_envs = num_envs
        self.all_env_ids = np.arange(num_envs, dtype=np.int32)

        fields = pool.spec.fields
        self._field = next(iter(fields)) if len(fields) == 1 else None
        if self._field is not None:
            self.observation_space = fields[self._field].to_space()
        else:
            self.observation_space = spaces.Dict({n: f.to_space() for n, f in fields.items()})
        self.action_space = pool.single_action_space
        self.single_observation_space = self.observation_space
        self.single_action_space = self.action_space
        self.config = {
            "num_envs": num_envs,
            "batch_size": pool.batch_size,
            "num_threads": num_threads,
            "max_num_players": 1,
            "thread_affinity_offset": thread_affinity_offset,
            "seed": 0 if seeds is not None else int(seed),
            "env_seed": [] if seeds is None else seeds.tolist(),
            "gym_reset_return_info": self._reset_info,
            **_parse_config(pool.config),
        }
        self.spec = EnvSpec(task_id, self.config, self.observation_space, self.action_space)

        action = pool.spec.action
        self._action_shape = {
            "discrete": (),
            "multi_discrete": (len(action.nvec),),
            "box": action.shape,
        }[action.kind]
        self._action_dtype = action.dtype
        # A legal action for envs a synchronous partial step leaves alone.
        self._idle_action = (
            np.clip(0, action.low, action.high).astype(np.float32)
            if action.kind == "box"
            else np.zeros(self._action_shape, np.int64)
        )
        self._elapsed = np.zeros(num_envs, np.int32)
        # next_step: envs whose episode ended, which the engine restarts in their
        # next step (that step's elapsed_step is 0), and envs never reset, whose
        # first step this module starts with a reset, as EnvPool does.
        self._pending = np.zeros(num_envs, bool)
        self._unstarted = np.full(num_envs, not self._same_step)
        self._ready: list[dict[str, Any]] = []  # finished rows not yet returned by recv
        self._ready_rows = 0

    # --------------------------------------------------------------- facts
    @property
    def is_async(self) -> bool:
        return self.pool.batch_size < self.num_envs

    def __len__(self) -> int:
        return self.num_envs

    # ---------------------------------------------------------------- reset
    def reset(
        self,
        env_id: Any = None,
        *,
        seed: int | list[int] | None = None,
        options: dict[str, Any] | None = None,
    ) -> Any:
        """Start new episodes for ``env_id`` (default: all) and return the
        first observations. ``seed`` reseeds those envs; ``options`` may hold
        Gymnasium's ``reset_mask`` instead of ``env_id``. On an asynchronous
        pool the result, as in EnvPool, is the next ``recv()`` batch."""
        if options:
            unknown = set(options) - {"reset_mask"}
            if unknown:
                raise ValueError(f"unknown reset options {sorted(unknown)}; only reset_mask")
            if env_id is not None:
                raise ValueError("pass env_id or options['reset_mask'], not both")
            mask = np.asarray(options["reset_mask"], np.bool_)
            if mask.shape != (self.num_envs,):
                raise ValueError(f"reset_mask must have shape ({self.num_envs},), got {mask.shape}")
            env_id = np.flatnonzero(mask)
        self._reset_rows(env_id, seed)
        return self.recv(reset=True, return_info=self._reset_info)

    def async_reset(self) -> None:
        """Reset every env; the first observations come back through `recv`."""
        self._reset_rows(None, None)

    def _reset_rows(self, env_id: Any, seed: Any) -> None:
        ids = self._ids(env_id)
        obs, _ = self.pool.reset(seed=seed, env_ids=ids)
        n = len(ids)
        self._elapsed[ids] = 0
        self._pending[ids] = False
        self._unstarted[ids] = False
        rows = {
            "obs": {name: np.array(value) for name, value in obs.items()},
            "reward": np.zeros(n, np.float32),
            "terminated": np.zeros(n, np.bool_),
            "truncated": np.zeros(n, np.bool_),
            "env_id": ids.astype(np.int32),
            "elapsed_step": np.zeros(n, np.int32),
        }
        if self._same_step:
            rows["final_obs"] = {name: np.zeros_like(value) for name, value in rows["obs"].items()}
            rows["episode_return"] = np.zeros(n, np.float64)
            rows["episode_length"] = np.zeros(n, np.int32)
        self._put(rows)

    # ---------------------------------------------------------------- steps
    def step(self, action: Any, env_id: Any = None) -> tuple:
        """``send`` then ``recv``."""
        self.send(action, env_id)
        return self.recv()

    def send(self, action: Any, env_id: Any = None) -> None:
        """Step the envs ``env_id`` (default: all) with ``action``, one row each.
        A synchronous pool steps them now; an asynchronous one queues them."""
        ids = self._ids(env_id)
        actions = np.asarray(action)
        if actions.shape[:1] != (len(ids),):
            raise ValueError(f"action has {actions.shape[:1]} rows for {len(ids)} env ids")
        if self.is_async:
            self.pool.send(actions, ids)
            return
        if len(ids) == self.num_envs:
            full = np.empty((self.num_envs, *self._action_shape), self._action_dtype)
            full[ids] = actions.reshape(full[ids].shape)
            result = self.pool.step(full)
            self._put(self._finish(result, ids))
            return
        # A subset: step every env, then restore the others from snapshots.
        others = np.setdiff1d(np.arange(self.num_envs), ids)
        full = np.broadcast_to(self._idle_action, (self.num_envs, *self._action_shape)).copy()
        full[ids] = actions.reshape(full[ids].shape)
        states = self.pool.snapshot(others)
        try:
            result = self.pool.step(full)
            self._put(self._finish(result, ids))
        finally:
            self.pool.restore(states, others)
            self.pool.release(states)

    def recv(self, reset: bool = False, return_info: bool = True) -> tuple:
        """The results of sent steps (and resets): on a synchronous pool every
        row not yet returned, on an asynchronous one the next ``batch_size``
        rows to finish."""
        if self.is_async:
            while self._ready_rows < self.pool.batch_size:
                obs, reward, terminated, truncated, info = self.pool.recv()
                result = (obs, reward, terminated, truncated, info)
                self._put(self._finish(result, info["env_id"].astype(np.int64)))
            rows = self._take(self.pool.batch_size)
        else:
            if not self._ready_rows:
                raise RuntimeError("recv() with nothing sent: call send() or reset() first")
            rows = self._take(self._ready_rows)
        return self._to_api(rows, reset, return_info)

    def _finish(self, result: tuple, ids: np.ndarray) -> dict[str, Any]:
        """Owned rows ``ids`` of an engine step result, with EnvPool's
        next-step auto-reset applied (module docstring)."""
        obs, reward, terminated, truncated, info = result
        # A synchronous step returns every env in order: keep the sent ones.
        # Either way `take` returns owned copies.
        if self.is_async or np.array_equal(ids, np.arange(self.num_envs)):
            take = np.array
        else:
            take = operator.itemgetter(ids)
        rows = {
            "obs": {name: take(value) for name, value in obs.items()},
            "reward": take(reward),
            "terminated": take(terminated),
            "truncated": take(truncated),
            "env_id": ids.astype(np.int32),
        }
        self._elapsed[ids] += 1
        if self._same_step:
            done = rows["terminated"] | rows["truncated"]
            rows["elapsed_step"] = self._elapsed[ids]
            self._elapsed[ids[done]] = 0
            rows["final_obs"] = {k: take(v) for k, v in info["final_obs"].items()}
            rows["episode_return"] = take(info["episode_return"])
            rows["episode_length"] = take(info["episode_length"])
            return rows
        unstarted = np.flatnonzero(self._unstarted[ids])
        if len(unstarted):  # only before the first reset: start them instead
            first_obs, _ = self.pool.reset(env_ids=ids[unstarted])
            for name, value in first_obs.items():
                rows["obs"][name][unstarted] = value
            rows["reward"][unstarted] = 0
            rows["terminated"][unstarted] = False
            rows["truncated"][unstarted] = False
            self._unstarted[ids] = False
            self._elapsed[ids[unstarted]] = 0
        self._elapsed[ids[self._pending[ids]]] = 0  # the engine restarted these
        rows["elapsed_step"] = self._elapsed[ids]
        self._pending[ids] = rows["terminated"] | rows["truncated"]
        return rows

    def _to_api(self, rows: dict[str, Any], reset: bool, return_info: bool) -> Any:
        obs = rows["obs"][self._field] if self._field is not None else rows["obs"]
        info: dict[str, Any] = {
            "env_id": rows["env_id"],
            "players": {"env_id": rows["env_id"].copy()},
            "elapsed_step": rows["elapsed_step"],
        }
        if self._same_step and not reset:
            final = rows["final_obs"]
            info["final_obs"] = final[self._field] if self._field is not None else final
            info["episode_return"] = rows["episode_return"]
            info["episode_length"] = rows["episode_length"]
        if self._gym_api:
            info["TimeLimit.truncated"] = rows["truncated"] & ~rows["terminated"]
        if reset:
            return (obs, info) if return_info else obs
        if self._gym_api:
            return obs, rows["reward"], rows["terminated"] | rows["truncated"], info
        return obs, rows["reward"], rows["terminated"], rows["truncated"], info

    # ------------------------------------------------------------- the queue
    def _put(self, rows: dict[str, Any]) -> None:
        self._ready.append(rows)
        self._ready_rows += len(rows["env_id"])

    def _take(self, k: int) -> dict[str, Any]:
        """The first ``k`` queued rows, in the order they finished."""
        if len(self._ready) == 1 and len(self._ready[0]["env_id"]) == k:
            rows = self._ready.pop()
        else:
            rows = _tree(lambda *parts: np.concatenate(parts), *self._ready)
            self._ready = [_tree(lambda a, k=k: a[k:], rows)] if self._ready_rows > k else []
            rows = _tree(lambda a, k=k: a[:k], rows)
        self._ready_rows -= k
        return rows

    def _ids(self, env_id: Any) -> np.ndarray:
        if env_id is None:
            return np.arange(self.num_envs, dtype=np.int64)
        ids = np.asarray(env_id).reshape(-1)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"env_id must hold integers, got dtype {ids.dtype}")
        ids = ids.astype(np.int64)
        if len(ids) and (ids.min() < 0 or ids.max() >= self.num_envs):
            raise ValueError(f"env_id out of range [0, {self.num_envs}): {ids.tolist()}")
        if len(np.unique(ids)) != len(ids):
            raise ValueError(f"env_id repeats an env: {ids.tolist()}")
        return ids

    # ---------------------------------------------------------------- misc
    def render(self, env_ids: Any = None, camera_id: int | None = None) -> Any:
        """Pictures of ``env_ids`` (default: ``render_env_id``) in ``render_mode``:
        uint8 frames ``[k, H, W, 3]`` for ``"rgb_array"``, a list of str for ``"ansi"``."""
        if self.render_mode is None:
            raise RuntimeError("render() needs make(..., render_mode='rgb_array' or 'ansi')")
        ids = np.array([self._render_env_id]) if env_ids is None else self._ids(env_ids)
        return self.pool.render(ids, mode=self.render_mode)

    def seed(self, seed: Any = None) -> None:
        warnings.warn(
            "seed() does nothing, as in EnvPool: pass seed to make(), or reset(seed=...)",
            stacklevel=2,
        )

    def close(self, **kwargs: Any) -> None:
        self.pool.close()
        self.closed = True

    def __repr__(self) -> str:
        return f"EnvPoolEnv({self.pool.task_id!r}, num_envs={self.num_envs})"

    __str__ = __repr__


def _tree(fn: Any, *trees: Any) -> Any:
    """``fn`` applied leaf by leaf to dicts of the same structure."""
    if isinstance(trees[0], dict):
        return {k: _tree(fn, *(t[k] for t in trees)) for k in trees[0]}
    return fn(*trees)


def _parse_config(config: str) -> dict[str, Any]:
    """``"key=value;..."`` (`EnvPool.config`) as a dict of ints, floats or strings."""
    out: dict[str, Any] = {}
    for item in filter(None, config.split(";")):
        key, value = item.split("=", 1)
        for convert in (int, float):
            try:
                out[key] = convert(value)
                break
            except ValueError:
                continue
        else:
            out[key] = value
    return out
