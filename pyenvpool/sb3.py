"""Stable-Baselines3: a pool seen through SB3's `VecEnv` API.

    from stable_baselines3 import PPO
    import pyenvpool.sb3

    model = PPO("MlpPolicy", pyenvpool.sb3.make_vec_env("CartPole-v1", n_envs=8, seed=0))

SB3's conventions and how the pool meets them:

* Auto-reset in the same step. SB3's vector envs return the next episode's
  first observation where an episode ended, with the last one in
  ``infos[i]["terminal_observation"]``; that is the engine's own auto-reset,
  and ``terminal_observation`` is its ``info["final_obs"]`` row.
  ``infos[i]["TimeLimit.truncated"]`` is ``truncated and not terminated``, as
  in `DummyVecEnv`, so SB3 bootstraps exactly the episodes a time limit cut.
  Where an episode ended, ``infos[i]["episode"]`` holds its return ``r``,
  length ``l`` and wall time ``t``, the keys SB3's `Monitor` writes, so
  training logs ``ep_rew_mean`` without a wrapper.
* Observations: a task with one observation field gives a plain `Box` array,
  one with several a `Dict` of arrays (SB3's ``MultiInputPolicy``). A scalar
  field (Maze's ``step_count``) has shape ``(1,)`` here, since SB3's feature
  extractors flatten every field from its second dimension.
* Ownership: every array `reset` and `step_wait` return is a fresh copy the
  caller owns (SB3 keeps observations in rollout and replay buffers); rewards
  are float32, dones bool.
* Sub-envs are not Python objects here. `get_attr`, `set_attr` and
  `env_method` reach one light view per env (`PoolEnvView`): it knows the
  pool's spaces and ``render_mode``, draws its env (``render()``) and, for a
  task with an ``action_mask`` field, returns its current mask
  (``action_masks()``), which is how sb3-contrib's ``MaskablePPO`` reads masks.
  `set_attr` stores plain values on the views; it cannot change the pool.
* Seeding: `seed(s)` (SB3's base method) arms seeds ``s + i`` for the next
  `reset`, which restarts env ``i`` on its own stream from seed ``s + i``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    from gymnasium import spaces
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "pyenvpool.sb3 needs stable-baselines3: pip install 'pyenvpool[sb3]'"
    ) from error

from pyenvpool._pool import EnvPool, make

__all__ = ["MaskedPoolEnvView", "PoolEnvView", "PoolVecEnv", "make_vec_env"]


def make_vec_env(
    env_id: str,
    n_envs: int = 1,
    seed: int | None = None,
    *,
    env_kwargs: dict[str, Any] | None = None,
    num_threads: int | None = None,
    render_mode: str | None = None,
    **task_kwargs: Any,
) -> PoolVecEnv:
    """``n_envs`` copies of the task ``env_id`` as an SB3 `VecEnv`.

    Like `stable_baselines3.common.env_util.make_vec_env`: ``seed`` (if given)
    seeds the first `reset`, env ``i`` with ``seed + i``; task parameters come
    as ``env_kwargs`` or as keyword arguments. ``num_threads`` are the pool's
    worker threads (``None``: one per core). ``render_mode`` is ``None``,
    ``"rgb_array"`` (tasks that draw) or ``"ansi"``.
    """
    kwargs = {**(env_kwargs or {}), **task_kwargs}
    pool_seed = int(np.random.randint(0, 2**31 - 1)) if seed is None else seed
    pool = make(env_id, n_envs, num_threads=num_threads, seed=pool_seed, **kwargs)
    try:
        venv = PoolVecEnv(pool, render_mode=render_mode)
    except Exception:
        pool.close()
        raise
    if seed is not None:
        venv.seed(seed)
    return venv


class PoolVecEnv(VecEnv):
    """An `EnvPool` as a Stable-Baselines3 `VecEnv` (see the module docstring).

    Args:
        pool: a synchronous pool with same-step auto-reset (`pyenvpool.make`
            defaults). The adapter takes it over: step it only through the
            adapter; `close` closes it.
        render_mode: ``None``, ``"rgb_array"`` (tasks that draw frames) or
            ``"ansi"`` (text).
    """

    def __init__(self, pool: EnvPool, render_mode: str | None = None) -> None:
        if pool.batch_size != pool.num_envs:
            raise ValueError("PoolVecEnv needs a synchronous pool (batch_size=None)")
        if not pool.autoreset:
            raise ValueError("PoolVecEnv needs a pool with same-step auto-reset (autoreset=True)")
        if render_mode is not None and render_mode not in pool.render_modes:
            raise ValueError(
                f"{pool.task_id} renders {list(pool.render_modes)}; got render_mode={render_mode!r}"
            )
        self.pool = pool
        self._render_mode = render_mode
        fields = pool.spec.fields
        # SB3's extractors flatten from dimension 1, so scalar fields become [1].
        self._shapes = {name: f.shape or (1,) for name, f in fields.items()}
        field_spaces = {
            name: spaces.Box(
                f.low.reshape(self._shapes[name]),
                f.high.reshape(self._shapes[name]),
                dtype=f.dtype,
            )
            for name, f in fields.items()
        }
        self._field = next(iter(fields)) if len(fields) == 1 else None
        if self._field is not None:
            observation_space = field_spaces[self._field]
        else:
            observation_space = spaces.Dict(field_spaces)
        self._has_masks = "action_mask" in fields
        action = pool.spec.action
        self._action_shape = {
            "discrete": (),
            "multi_discrete": (len(action.nvec),),
            "box": action.shape,
        }[action.kind]
        view = MaskedPoolEnvView if self._has_masks else PoolEnvView
        self.envs = [view(self, i) for i in range(pool.num_envs)]
        self._engine_obs = pool.reset()[0]  # views of the live observations
        self._actions: np.ndarray | None = None
        self._start_time = time.time()
        super().__init__(pool.num_envs, observation_space, pool.single_action_space)

    # ------------------------------------------------------------ stepping
    def reset(self) -> Any:
        """Start new episodes in every env; seeds armed by `seed` apply once."""
        if any(self._options):
            raise ValueError("pyenvpool envs take no reset options; got set_options(...)")
        seeds = None if all(s is None for s in self._seeds) else self._seeds
        if seeds is not None and any(s is None for s in seeds):
            raise ValueError("seed every env or none: got seeds with None among them")
        self._engine_obs = self.pool.reset(seed=seeds)[0]
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return self._owned(self._engine_obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.reshape(np.asarray(actions), (self.num_envs, *self._action_shape))

    def step_wait(self) -> tuple[Any, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        if self._actions is None:
            raise RuntimeError("step_wait() without a step_async() before it")
        actions, self._actions = self._actions, None
        obs, reward, terminated, truncated, info = self.pool.step(actions)
        self._engine_obs = obs
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{"TimeLimit.truncated": False} for _ in range(self.num_envs)]
        ended = np.flatnonzero(dones)
        if len(ended):
            final_obs = info["final_obs"]
            returns, lengths = info["episode_return"], info["episode_length"]
            elapsed = round(time.time() - self._start_time, 6)
            for i in ended.tolist():
                infos[i] = {
                    "terminal_observation": self._row(final_obs, i),
                    "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                    "episode": {"r": float(returns[i]), "l": int(lengths[i]), "t": elapsed},
                }
        return self._owned(obs), reward.copy(), dones, infos

    def close(self) -> None:
        self.pool.close()

    # ------------------------------------------------------------ sub-envs
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self.envs[i], attr_name) for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        for i in self._get_indices(indices):
            setattr(self.envs[i], attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        if method_name == "action_masks" and self._has_masks:  # every step under MaskablePPO
            masks = self._engine_obs["action_mask"][list(self._get_indices(indices))]
            return list(masks)
        return [
            getattr(self.envs[i], method_name)(*method_args, **method_kwargs)
            for i in self._get_indices(indices)
        ]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        """No gymnasium wrapper sits between the pool and this adapter."""
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        if self._render_mode != "rgb_array":
            raise ValueError(
                f"get_images() needs render_mode='rgb_array', not {self._render_mode!r}"
            )
        return list(self.pool.render(None, mode="rgb_array"))

    # -------------------------------------------------------------- helpers
    def _owned(self, obs: dict[str, np.ndarray]) -> Any:
        """Copies of a batch of observations, shaped as the observation space."""
        n = self.num_envs
        if self._field is not None:
            return obs[self._field].reshape(n, *self._shapes[self._field]).copy()
        return {name: value.reshape(n, *self._shapes[name]).copy() for name, value in obs.items()}

    def _row(self, obs: dict[str, np.ndarray], i: int) -> Any:
        """A copy of env ``i``'s observation, shaped as one env's observation space."""
        if self._field is not None:
            return obs[self._field][i].reshape(self._shapes[self._field]).copy()
        return {name: value[i].reshape(self._shapes[name]).copy() for name, value in obs.items()}

    def _get_indices(self, indices: VecEnvIndices) -> list[int]:
        ids = list(super()._get_indices(indices))
        for i in ids:
            if not 0 <= i < self.num_envs:
                raise IndexError(f"env index {i} out of range for {self.num_envs} envs")
        return ids


class PoolEnvView:
    """What SB3 reaches as sub-env ``index`` of a `PoolVecEnv` (`get_attr`,
    `set_attr`, `env_method`). Its properties read the pool; other attributes
    set through `set_attr` are stored here and change nothing in the pool."""

    def __init__(self, venv: PoolVecEnv, index: int) -> None:
        self._venv = venv
        self._index = index

    @property
    def render_mode(self) -> str | None:
        return self._venv._render_mode

    @property
    def observation_space(self) -> spaces.Space:
        return self._venv.observation_space

    @property
    def action_space(self) -> spaces.Space:
        return self._venv.action_space

    @property
    def task_id(self) -> str:
        return self._venv.pool.task_id

    def render(self) -> Any:
        """This env's picture in the adapter's ``render_mode`` (text for ``"ansi"``)."""
        mode = self._venv._render_mode
        if mode is None:
            return None
        return self._venv.pool.render(self._index, mode=mode)


class MaskedPoolEnvView(PoolEnvView):
    """The view of a task with an ``action_mask`` field: it also has
    ``action_masks()``, which sb3-contrib's ``MaskablePPO`` looks for."""

    def action_masks(self) -> np.ndarray:
        """This env's current legal-action mask (bool ``[num_actions]``)."""
        return self._venv._engine_obs["action_mask"][self._index].copy()
