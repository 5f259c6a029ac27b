"""EnvPool: the Python face of one engine pool.

View lifetimes (the one rule to remember):

* ``step`` and ``reset`` return NumPy *views* of engine memory. The arrays are
  the same objects on every call; their contents stay as returned until the
  next ``step``, ``reset`` or ``restore`` on the same pool, which writes them
  in place. Keep data across steps by copying it (``pool.step(a, copy=True)``,
  or ``np.copy``) or by writing it where you want it yourself.
* ``simulate`` writes its own buffers; its views stay as returned until the
  next ``simulate`` on the same pool.
* Views never dangle: each holds a reference to its buffer, so they stay
  readable after ``close()`` or after the pool is garbage-collected.
"""

from __future__ import annotations

import atexit
import weakref
from typing import Any

import numpy as np

from pyenvpool import _core, _mujoco
from pyenvpool._spec import ActionSpec, FieldSpec, Spec

_OPEN_POOLS: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Join worker threads of pools still open at interpreter exit."""
    for pool in list(_OPEN_POOLS):
        pool.close()


def list_tasks() -> list[str]:
    """The ids of all built-in tasks."""
    return list(_core.list_tasks())


def make(
    task_id: str,
    num_envs: int,
    *,
    num_threads: int | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    max_snapshots: int | None = None,
    autoreset: bool | str = True,
    **task_kwargs: Any,
) -> EnvPool:
    """Create a pool of ``num_envs`` copies of ``task_id``.

    Args:
        task_id: one of :func:`list_tasks`.
        num_envs: number of environment copies.
        num_threads: threads that step the pool, the caller's included.
            ``None`` uses one per available core (at most ``num_envs``).
            Results never depend on it.
        seed: env ``i`` draws from the stream ``(seed, i)``.
        batch_size: for the asynchronous ``send``/``recv`` API; ``None`` means
            ``num_envs`` (synchronous stepping).
        max_snapshots: cap on live snapshots; ``None`` means no cap.
        autoreset: ``True`` or ``"same_step"`` (the default) starts an env's
            next episode in the step that ends one (same-step auto-reset).
            ``False`` or ``"disabled"`` keeps a finished env in its final
            state instead: its row of ``obs`` shows the last observation,
            later steps leave it unchanged (reward 0, the same flags), and
            ``reset(env_ids=...)`` starts its next episode. ``"next_step"``
            (Gymnasium's ``NEXT_STEP``, EnvPool's behaviour) shows the final
            state for one step like ``"disabled"``; the env's next step then
            ignores its action and starts the next episode: reward 0, both
            flags false, ``obs`` the new episode's first observation.
        **task_kwargs: task parameters (see the task's docs); an unknown key
            raises ``TypeError`` naming it.

    Every argument is checked by the engine (``pyenvpool._core.make``), which
    raises ``TypeError`` or ``ValueError`` naming the argument. The MuJoCo
    tasks need the ``mujoco`` extra; without it they raise ``ImportError``
    saying how to install it.
    """
    if isinstance(task_id, str):
        _mujoco.prepare(task_id)
    core = _core.make(
        task_id,
        num_envs,
        num_threads,
        seed,
        batch_size,
        max_snapshots,
        bool(autoreset) if isinstance(autoreset, (bool, np.bool_)) else autoreset,
        task_kwargs,
    )
    return EnvPool(core)


class EnvPool:
    """``num_envs`` copies of one task, stepped together. Build with :func:`make`.

    Observations are ``dict[str, np.ndarray]`` with a leading ``num_envs``
    dimension; see the module docstring for how long returned views stay
    valid.
    """

    def __init__(self, core: Any) -> None:
        self._core = core
        self._obs = core.obs
        self._step_result = core.step_result
        action = ActionSpec._from_core(*core.action)
        self._spec = Spec(
            task_id=core.task_id,
            fields={f[0]: FieldSpec._from_core(*f) for f in core.obs_fields},
            num_actions=action.num_logits,
            instance_fields={f[0]: FieldSpec._from_core(*f) for f in core.instance_fields},
            action=action,
            info_fields={f[0]: FieldSpec._from_core(*f) for f in core.info_fields},
        )
        self._info_terms = core.info_terms
        self._renderer: Any = None  # MuJoCo tasks: a _mujoco.Renderer, made on first use
        _OPEN_POOLS.add(self)

    # ----------------------------------------------------------------- facts
    @property
    def task_id(self) -> str:
        return self._spec.task_id

    @property
    def num_envs(self) -> int:
        return self._core.num_envs

    @property
    def num_threads(self) -> int:
        return self._core.num_threads

    @property
    def batch_size(self) -> int:
        """Envs per ``recv`` batch; equal to ``num_envs`` for a synchronous pool."""
        return self._core.batch_size

    @property
    def autoreset(self) -> bool:
        """Whether an env that ends starts its next episode in the same step."""
        return self._core.autoreset

    @property
    def autoreset_mode(self) -> str:
        """``"same_step"``, ``"next_step"`` or ``"disabled"`` (see `make`)."""
        return self._core.autoreset_mode

    @property
    def spec(self) -> Spec:
        return self._spec

    @property
    def closed(self) -> bool:
        return self._core.closed

    @property
    def single_observation_space(self):
        """A ``gymnasium.spaces.Dict`` of one env's observation fields."""
        from gymnasium import spaces

        return spaces.Dict({name: f.to_space() for name, f in self._spec.fields.items()})

    @property
    def single_action_space(self):
        """The Gymnasium space of one env's action (``spec.action``)."""
        return self._spec.action.to_space()

    # ---------------------------------------------------------- live envs
    def reset(
        self,
        *,
        seed: int | list[int] | np.ndarray | None = None,
        env_ids: Any = None,
        instances: dict[str, Any] | None = None,
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start new episodes.

        Args:
            seed: ``None`` continues each env's random stream; an int ``s``
                restarts env ``i`` on the stream ``(s, i)``; a sequence gives
                one seed per reset env.
            env_ids: which envs to reset (default: all).
            instances: problem instances to load instead of random ones, as
                arrays with one row per reset env (see ``spec.instance_fields``).

        Returns:
            ``(obs, info)``. With ``env_ids=None`` ``obs`` holds views of the
            full batch; otherwise owned arrays of the reset rows, and
            ``info["env_id"]`` lists them. ``info`` also holds the task's info
            fields (``spec.info_fields``), shaped like ``obs``.
        """
        self._core.reset(env_ids, seed, instances)
        if env_ids is None:
            return self._obs, dict(self._info_terms)
        ids = np.asarray(env_ids, np.int64).reshape(-1)
        info = {n: v[ids] for n, v in self._info_terms.items()}
        return {n: v[ids] for n, v in self._obs.items()}, {**info, "env_id": ids}

    def step(
        self, actions: np.ndarray, *, out: dict[str, np.ndarray] | None = None, copy: bool = False
    ):
        """Step every env once with ``actions``, one row per env, shaped by the
        task's action space (``spec.action``): int ``[num_envs]`` (Discrete),
        int ``[num_envs, k]`` (MultiDiscrete) or float ``[num_envs, *shape]``
        (Box; other float or integer dtypes are converted to float32, NaN and
        infinity are refused, and out-of-range values reach the task, which
        treats them as its original does).

        Returns ``(obs, reward, terminated, truncated, info)``. Where an episode
        ended (``terminated | truncated``), ``obs`` already holds the first
        observation of the next episode, ``info["final_obs"]`` the last
        observation of the finished one, and ``info["episode_return"]`` /
        ``info["episode_length"]`` its totals; in other rows those info arrays
        hold 0 (totals) or stale data (``final_obs``). A task with info fields
        (``spec.info_fields``, e.g. the MuJoCo tasks' reward terms) puts each
        in ``info`` under its name, and in ``info["final_info"]`` the values
        of the step that ended an episode (valid where it ended, like
        ``final_obs``); rows that ended hold the new episode's values at the
        top level, as in Gymnasium's same-step autoreset.

        The arrays are views of engine memory, rewritten in place by the next
        call; ``copy=True`` returns owned copies instead.

        ``out`` makes the engine write straight into arrays you own, e.g. slot
        ``t`` of a preallocated rollout buffer: a dict whose keys are any of
        the observation field names, ``"reward"``, ``"terminated"`` and
        ``"truncated"``, each a writable C-contiguous array of the field's
        dtype and shape ``[num_envs, ...]``. The returned tuple then holds
        your arrays for those keys (engine views for the rest), and the
        pool's own buffers for those keys are not written this step.
        """
        result = self._core.step(actions, out)
        if copy:
            return _deep_copy(result)
        return result

    # ---------------------------------------------------------------- async
    def send(self, actions: Any, env_ids: Any) -> None:
        """Asynchronous pools only: queue one step for each env in ``env_ids``.

        An env can be in flight once: send it again only after ``recv``
        returned its result. Nothing is queued if any argument is bad.
        """
        self._core.send(actions, env_ids)

    def recv(self):
        """Asynchronous pools only: wait for the next ``batch_size`` envs to
        finish (whichever finish first) and return ``(obs, reward,
        terminated, truncated, info)`` for them, with ``info["env_id"]``
        naming each row's env. Auto-reset works as in ``step``. The arrays are
        views that stay as returned until the next ``recv``."""
        return self._core.recv()

    # ----------------------------------------------------------- snapshots
    @property
    def max_snapshots(self) -> int | None:
        return self._core.max_snapshots

    @property
    def snapshot_count(self) -> int:
        """Number of live snapshot ids."""
        return self._core.snapshot_count

    @property
    def snapshot_bytes(self) -> int:
        """Bytes held by live snapshots."""
        return self._core.snapshot_bytes

    @property
    def state_bytes(self) -> int:
        """Bytes of one snapshot record (task state, RNG, counters, totals)."""
        return self._core.state_bytes

    def snapshot(self, env_ids: Any = None) -> np.ndarray:
        """Copy the live states of ``env_ids`` (default: all) into the store.

        Returns one int64 state id per env. Raises
        :class:`SnapshotCapacityError` (and stores nothing) when the copies
        would exceed ``max_snapshots``.
        """
        return self._core.snapshot(env_ids)

    def restore(self, state_ids: Any, env_ids: Any = None) -> dict[str, np.ndarray]:
        """Make live envs continue from stored states; the ids stay valid.

        ``env_ids=None`` restores env ``i`` from ``state_ids[i]`` for every env.
        Several envs may restore the same id. Returns the restored envs'
        observations (views of the full batch when ``env_ids`` is None).
        """
        self._core.restore(state_ids, env_ids)
        if env_ids is None:
            return self._obs
        ids = np.asarray(env_ids, np.int64).reshape(-1)
        return {n: v[ids] for n, v in self._obs.items()}

    def simulate(self, state_ids: Any, actions: Any):
        """Step *copies* of stored states, one action each, on the pool's threads.

        The input ids stay valid. There is no auto-reset: a state that has
        already ended is absorbing (reward 0, its flags repeated, obs
        unchanged). Returns ``(obs, reward, terminated, truncated,
        new_state_ids)``; the arrays are views rewritten by the next
        ``simulate``. Release the new ids when done with them.
        """
        return self._core.simulate(state_ids, actions)

    def release(self, state_ids: Any, *, missing_ok: bool = False) -> None:
        """Free stored states. Duplicates in one call are fine. An id that is
        not live raises ``KeyError`` naming it, unless ``missing_ok``."""
        self._core.release(state_ids, bool(missing_ok))

    def export_states(self, state_ids: Any) -> bytes:
        """Serialise stored states to bytes (the ids stay live).

        The bytes hold everything a snapshot holds (task state, RNG, counters,
        episode totals) plus the task id and its full configuration, and a
        checksum. They are meant for checkpoints and for moving states between
        processes running the same pyenvpool build on the same platform.
        """
        return self._core.export_states(state_ids)

    def import_states(self, data: bytes) -> np.ndarray:
        """Turn bytes from :meth:`export_states` into new state ids.

        Raises ``ValueError`` (and stores nothing) if the bytes come from
        another task or configuration, another pyenvpool format, or were
        truncated or altered; ``SnapshotCapacityError`` if they would exceed
        ``max_snapshots``. Restore the ids into live envs with :meth:`restore`.
        """
        return self._core.import_states(data)

    # -------------------------------------------------------------- misc
    @property
    def config(self) -> str:
        """Every task parameter of this pool, defaults included ("key=value;...")."""
        return self._core.config

    @property
    def render_modes(self) -> tuple[str, ...]:
        """``("ansi", "rgb_array")``, or ``("ansi",)`` for a task that does not draw."""
        return ("ansi",) if self.frame_shape is None else ("ansi", "rgb_array")

    @property
    def frame_shape(self) -> tuple[int, int, int] | None:
        """``(height, width, 3)`` of this task's rgb frames (None if it does not draw)."""
        if self.task_id in _mujoco.TASKS:
            return _mujoco.FRAME_SHAPE
        return self._core.frame_shape

    def render(self, env_ids: Any = 0, *, mode: str = "ansi"):
        """Pictures of envs' current states.

        ``env_ids``: one env id (the default, 0), an array of ids, or None
        for every env. ``mode="ansi"`` gives text (a str, or a list of them);
        ``mode="rgb_array"`` gives uint8 frames ``[height, width, 3]`` (or
        ``[k, height, width, 3]``), drawn in parallel on the pool's threads.
        The frames are new arrays the caller owns. Nothing is drawn unless
        asked for, so a pool that never renders pays nothing for it. The
        MuJoCo tasks draw with MuJoCo's OpenGL renderer instead, on the
        calling thread; they need an OpenGL context (``MUJOCO_GL=egl`` or
        ``osmesa`` on a headless machine), and raise ``RuntimeError`` saying
        so where there is none.
        """
        if mode != "rgb_array" or self.task_id not in _mujoco.TASKS:
            return self._core.render(env_ids, mode)
        self._core.render(env_ids, "ansi")  # the engine's checks of the ids, pool state
        ids = np.arange(self.num_envs) if env_ids is None else np.asarray(env_ids, np.int64)
        if self._renderer is None:
            self._renderer = _mujoco.Renderer(self.task_id)
        frames = self._renderer.render(self._info_terms["qpos"][ids.reshape(-1)])
        return frames[0] if ids.ndim == 0 else frames

    def close(self) -> None:
        """Stop and join the worker threads. Idempotent. Later calls that
        step or touch snapshots raise ``RuntimeError``; views stay readable."""
        self._core.close()
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        _OPEN_POOLS.discard(self)

    def __enter__(self) -> EnvPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"num_threads={self.num_threads}"
        return f"EnvPool({self.task_id!r}, num_envs={self.num_envs}, {state})"


def _deep_copy(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_deep_copy(v) for v in value)
    return value
