"""The training envs: one engine pool whose live state a checkpoint saves exactly.

``Envs`` is what the training loop and the algorithms use of their envs;
``TrainingEnvs`` is the plain kind, and ``selfplay.SelfPlayEnvs`` the kind for
two-player tasks, which the loop picks when ``self_play`` is set.

A checkpoint stores the engine's own export of every live env
(``pool.snapshot`` + ``pool.export_states``): task state, random stream, step
counter and episode totals. ``load_state_dict`` imports and restores them, so
a resumed run steps the same numbers, bit for bit, as the run that was saved.
The engine's same-step auto-reset starts new episodes; nothing here does.

``step`` returns the engine's views (or, with ``out=``, the caller's arrays);
``obs`` always holds every env's current observation, and ``env_steps`` counts
the env steps this pool has taken (saved too: under torchrun each rank's pool
counts its own).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

import pyenvpool


class Envs(Protocol):
    """The training envs as the loop and the algorithms see them."""

    spec: Any  # the pool's pyenvpool.Spec
    num_envs: int
    obs: dict[str, np.ndarray]  # every env's current observation
    env_steps: int  # env steps taken so far (learner moves, for self-play)
    # True for the envs whose consecutive rows belong to alternating players,
    # each from its mover's view (GAE is negamax there); None: no env alternates.
    alternating: np.ndarray | None

    def prepare_rollout(self, agent: nn.Module, update: int) -> None:
        """Called before the rollout of ``update`` (self-play: draws the opponent)."""

    def step(self, actions: np.ndarray, out: dict[str, np.ndarray] | None = None) -> tuple: ...

    def episode_outcomes(self) -> dict[str, dict[str, int]]:
        """Finished games by group and outcome since the last call (two-player
        tasks, for the ACTOR telemetry); {} where returns say it all."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class TrainingEnvs:
    """A pool of ``num_envs`` training envs with exact save/restore."""

    alternating = None  # one player: every row is the learner's

    def __init__(
        self,
        task: str,
        num_envs: int,
        seed: int,
        task_kwargs: dict[str, Any] | None = None,
        num_threads: int | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.pool = pyenvpool.make(
            task,
            num_envs,
            num_threads=num_threads or None,
            seed=seed,
            batch_size=batch_size,
            **(task_kwargs or {}),
        )
        self.spec = self.pool.spec
        self.num_envs = num_envs
        self.seed = seed
        self.env_steps = 0
        self.obs, _ = self.pool.reset()

    def prepare_rollout(self, agent: nn.Module, update: int) -> None:
        """Nothing to prepare: the learner plays every env."""

    def step(self, actions: np.ndarray, out: dict[str, np.ndarray] | None = None):
        """Step every env: ``(obs, reward, terminated, truncated, info)``. ``out``
        (see ``EnvPool.step``) has the engine write into the caller's arrays."""
        result = self.pool.step(actions) if out is None else self.pool.step(actions, out=out)
        self.obs = result[0]
        self.env_steps += self.num_envs
        return result

    def episode_outcomes(self) -> dict[str, dict[str, int]]:
        """One player: the returns say it all."""
        return {}

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        ids = self.pool.snapshot()
        try:
            blob = self.pool.export_states(ids)
        finally:
            self.pool.release(ids)
        return {
            "seed": self.seed,
            "env_steps": self.env_steps,
            "states": torch.frombuffer(bytearray(blob), dtype=torch.uint8),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Make every live env continue from the saved states. The engine refuses
        (ValueError) states of another task, configuration or env count."""
        ids = self.pool.import_states(state["states"].cpu().numpy().tobytes())
        try:
            if len(ids) != self.num_envs:
                raise ValueError(f"saved state has {len(ids)} envs, this pool {self.num_envs}")
            self.obs = self.pool.restore(ids)
        finally:
            self.pool.release(ids)
        self.seed = int(state["seed"])
        self.env_steps = int(state.get("env_steps", 0))

    def close(self) -> None:
        self.pool.close()
