"""Training environments whose state a checkpoint can save and restore exactly.

The engine keeps snapshots in its own memory, not on disk, so a checkpoint
cannot hold the live environment states themselves. Instead every episode is
made a pure function of its seed and its actions:

* env ``i`` starts its ``k``-th episode with ``reset(seed=episode_seed(seed, k))``
  (the engine's stream is ``(that seed, i)``), replacing the engine's own
  auto-reset, which would continue the env's stream;
* the actions since the episode started are kept per env.

A checkpoint stores the episode counters and those action histories (at most
one episode per env), and ``load_state_dict`` rebuilds every live state by
re-seeding and replaying them: after it, the pool produces the same numbers,
bit for bit, as the one that was saved.

``step`` returns the engine's views (or, with ``out=``, the caller's arrays),
including ``info["final_obs"]`` and the episode totals; the caller must read
them before ``start_new_episodes``, whose ``reset`` rewrites the pool's
buffers. ``obs`` always holds every env's current observation: after
``start_new_episodes`` its rows for the new episodes hold their first
observation, whether those arrays are the pool's views or the ``out`` arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

import pyenvpool

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def episode_seeds(seed: int, episodes: np.ndarray) -> np.ndarray:
    """The reset seed of episode ``episodes[j]`` of a run seeded with ``seed``."""
    base = _splitmix64(np.array([seed], np.uint64))
    with np.errstate(over="ignore"):
        return _splitmix64(base + episodes.astype(np.uint64))


class TrainingEnvs:
    """A pool of ``num_envs`` training envs with per-episode seeding and exact save/restore."""

    def __init__(
        self,
        task: str,
        num_envs: int,
        seed: int,
        task_kwargs: dict[str, Any] | None = None,
        num_threads: int | None = None,
    ) -> None:
        self.pool = pyenvpool.make(
            task, num_envs, num_threads=num_threads or None, seed=seed, **(task_kwargs or {})
        )
        self.spec = self.pool.spec
        self.num_envs = num_envs
        self.seed = seed
        self.episodes = np.zeros(num_envs, np.int64)
        self.history = np.zeros((num_envs, 64), np.int32)
        self.history_len = np.zeros(num_envs, np.int64)
        self._rows = np.arange(num_envs)
        self.obs, _ = self.pool.reset(seed=episode_seeds(seed, self.episodes))

    def step(self, actions: np.ndarray, out: dict[str, np.ndarray] | None = None):
        """Step every env: ``(obs, reward, terminated, truncated, info)``. ``out``
        (see ``EnvPool.step``) has the engine write into the caller's arrays."""
        if self.history_len.max() >= self.history.shape[1]:
            grown = np.zeros((self.num_envs, 2 * self.history.shape[1]), np.int32)
            grown[:, : self.history.shape[1]] = self.history
            self.history = grown
        self.history[self._rows, self.history_len] = actions
        self.history_len += 1
        result = self.pool.step(actions) if out is None else self.pool.step(actions, out=out)
        self.obs = result[0]
        return result

    def start_new_episodes(self, done: np.ndarray) -> None:
        """Seed the next episode of every env where ``done``; rewrites the pool's views."""
        env_ids = np.flatnonzero(done)
        if env_ids.size == 0:
            return
        self.episodes[env_ids] += 1
        self.history_len[env_ids] = 0
        seeds = episode_seeds(self.seed, self.episodes[env_ids])
        first, _ = self.pool.reset(seed=seeds, env_ids=env_ids)
        for name, current in self.obs.items():  # also when ``current`` is an out= array
            current[env_ids] = first[name]

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        longest = int(self.history_len.max())
        return {
            "seed": self.seed,
            "episodes": torch.from_numpy(self.episodes.copy()),
            "history": torch.from_numpy(self.history[:, :longest].copy()),
            "history_len": torch.from_numpy(self.history_len.copy()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Rebuild the saved live states: re-seed each env's episode and replay its actions."""
        episodes = state["episodes"].numpy().astype(np.int64)
        if episodes.shape != (self.num_envs,):
            raise ValueError(f"saved state has {episodes.shape[0]} envs, this pool {self.num_envs}")
        self.seed = int(state["seed"])
        self.episodes = episodes.copy()
        lengths = state["history_len"].numpy().astype(np.int64)
        saved = state["history"].numpy().astype(np.int32)
        longest = int(lengths.max(initial=0))
        self.history = np.zeros((self.num_envs, max(64, 2 * longest)), np.int32)
        self.history[:, : saved.shape[1]] = saved
        self.history_len = lengths.copy()
        # Env i replays its lengths[i] actions over the last lengths[i] of
        # `longest` steps; before that it is stepped with throwaway actions.
        start = longest - lengths
        for t in range(longest + 1):
            starting = np.flatnonzero(start == t)
            if starting.size:
                seeds = episode_seeds(self.seed, self.episodes[starting])
                self.pool.reset(seed=seeds, env_ids=starting)
            if t == longest:
                break
            actions = self.history[self._rows, np.clip(t - start, 0, None)]
            self.obs = self.pool.step(actions)[0]

    def close(self) -> None:
        self.pool.close()
