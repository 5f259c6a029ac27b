"""How environment steps become updates: the one place for the batch arithmetic.

An update consumes one rollout of every env on every rank: ``num_envs *
num_steps`` transitions per rank (``rank_batch_size``, what one rank learns
from), ``world_size`` times that in env steps (``batch_size``, what the step
budget, the evaluation and checkpoint intervals and the telemetry count). A
budget of ``total_steps`` buys whole updates, rounded up.

Pure integer arithmetic with no imports, so the config can check it without
loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Batching:
    """The batch sizes of one update, for ``num_envs`` x ``num_steps`` per rank."""

    num_envs: int
    num_steps: int
    world_size: int = 1

    @property
    def rank_batch_size(self) -> int:
        """Transitions one rank collects per update."""
        return self.num_envs * self.num_steps

    @property
    def batch_size(self) -> int:
        """Environment steps one update consumes, over every rank."""
        return self.rank_batch_size * self.world_size

    def num_updates(self, total_steps: int) -> int:
        """Updates that cover ``total_steps`` environment steps (rounded up)."""
        return -(-total_steps // self.batch_size)

    def updates_after(self, update: int, env_steps: int, total_steps: int) -> int:
        """The update count that ends the run: the ``update`` updates done
        (``env_steps`` steps) plus whole updates covering the steps left."""
        return update + self.num_updates(max(total_steps - env_steps, 0))

    def minibatch_size(self, num_minibatches: int) -> int:
        """Transitions per minibatch when one rank's rollout is split evenly."""
        if num_minibatches < 1 or self.rank_batch_size % num_minibatches:
            raise ValueError(
                f"num_envs * num_steps = {self.rank_batch_size} "
                f"is not divisible by {num_minibatches}"
            )
        return self.rank_batch_size // num_minibatches
