"""The interface between the training loop and a learning algorithm.

The loop (``trainer.train``) owns the envs, the agent, evaluation, checkpoints
and telemetry; an ``Algorithm`` owns how the agent learns from the envs: its
storage, optimisers, sampler and schedule. Each update the loop calls
``iteration(update)``, which ``collect``s a rollout and then ``update``s.

Adding an algorithm: one module with a subclass of ``Algorithm`` that
implements the abstract methods, its settings section in ``trainer.config``
and one entry in ``config.ALGORITHMS``. A capability that only some
algorithms have is a method here whose default does without it
(``comparison_policies``, ``diagnostics``, ``load_weights``, ``saved_policy``),
never a ``hasattr`` probe; a new one (a recurrent policy's hidden state, an
asynchronous learner) joins the same way.

Invariants an algorithm keeps:

* **Randomness.** Its sampling draws from ``self.generator``, seeded with the
  run's seed (the loop reseeds it per rank) and saved by ``state_dict``, so a
  seeded CPU run is bit-reproducible and a resumed run continues the same
  stream. Evaluation policies draw from generators of their own: evaluating
  touches no training state.
* **Ranks.** It calls ``world.average_gradients`` after each backward pass and
  runs the ``world`` collectives in the same order on every rank; the
  ``state_dict`` entries that belong to one rank's data stream are named in
  ``PER_RANK_STATE``.
* **Accounting.** ``batching`` (``trainer.batching``) sizes rollouts and
  minibatches; ``num_updates``, the update count that ends the run, changes
  only through ``set_num_updates``.
* **Checkpoints.** ``optimizer_state_dict`` is what a fork carries besides the
  weights, ``state_dict`` the rest (sampler, schedule, replay, reward
  normalisation); loading both continues a run bit for bit.
* **Actions and normalisation.** ``space`` (``trainer.distributions.
  ActionSpace``) turns the network's policy parameters into a distribution and
  samples into the env's actions, for every action space; the algorithm keeps
  the unclipped samples. With ``normalize_reward`` the algorithm scales the
  rewards it stores (``reward_normalizer``); with the network's
  ``normalize_observation`` it folds each rollout's observations into the
  network's statistics after learning from them (``trainer.normalization``).
"""

from __future__ import annotations

import abc
import importlib
import time
from typing import Any, Callable, ClassVar, TypedDict

import numpy as np
import torch
from torch import nn

from trainer.batching import Batching
from trainer.config import ALGORITHMS, Config
from trainer.distributed import World
from trainer.distributions import ActionSpace
from trainer.normalization import RewardNormalizer
from trainer.recurrent import RecurrentAgent, RecurrentGreedyPolicy

# observations -> actions; one with memory is a recurrent.StatefulPolicy
Policy = Callable[[dict[str, np.ndarray]], np.ndarray]


class Rollout(TypedDict, total=False):
    """What ``collect`` returns, and ``iteration`` with ``update_time`` and ``trainer``."""

    episode_returns: np.ndarray  # returns of the episodes that ended during the rollout
    episode_lengths: np.ndarray  # and their lengths
    rollout_time: float  # seconds: the whole rollout,
    env_time: float  # of that, in the engine,
    inference_time: float  # in the network,
    storage_time: float  # and the rest (storage, bookkeeping)
    update_time: float  # seconds of the update
    trainer: dict[str, float]  # TRAINER metrics (from collect: rollout diagnostics)


def greedy_policy(
    agent: nn.Module, device: torch.device, space: ActionSpace | None = None
) -> Policy:
    """Act with the most likely legal action of ``agent``'s policy (a Box
    policy: its mean, clipped to the bounds; a recurrent agent's: with a hidden
    state per env); ``space`` None is a discrete task."""
    space = space or ActionSpace("discrete")
    if isinstance(agent, RecurrentAgent):
        return RecurrentGreedyPolicy(agent, device, space)

    @torch.no_grad()
    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        tensors = {name: torch.from_numpy(view).to(device) for name, view in obs.items()}
        params = agent.logits(tensors)
        return space.to_env(space.distribution(params, tensors.get("action_mask")).mode())

    return act


class Algorithm(abc.ABC):
    """One run's learning state for ``agent`` on ``envs`` (see the module docstring)."""

    # The state_dict entries that belong to one rank's data stream (trainer.distributed).
    PER_RANK_STATE: ClassVar[tuple[str, ...]] = ("generator",)
    # True: the algorithm steps its envs with send/recv of one env at a time (the
    # loop then makes the training pool with batch_size=1; trainer.appo).
    ASYNC_POOL: ClassVar[bool] = False
    generator: torch.Generator

    def __init__(
        self,
        config: Config,
        envs: Any,
        agent: nn.Module,
        device: torch.device,
        world: World | None = None,
    ) -> None:
        self.config = config
        self.envs, self.agent, self.device = envs, agent, device
        self.world = world or World()
        self.batching = Batching(config.num_envs, config.num_steps, self.world.size)
        self.num_updates = self.batching.num_updates(config.total_steps)
        self.space = ActionSpace.from_spec(envs.spec)
        self.reward_normalizer = (
            RewardNormalizer(config.num_envs, config.gamma, config.reward_clip, device)
            if config.normalize_reward
            else None
        )

    # ------------------------------------------------------------ one update
    def iteration(self, update: int) -> Rollout:
        """Update ``update`` (counted from 0): a rollout, then learning from it."""
        rollout = self.collect()
        tick = time.perf_counter()
        metrics = self.update(update)
        rollout["update_time"] = time.perf_counter() - tick
        rollout["trainer"] = {**metrics, **rollout.pop("trainer", {}), **self.diagnostics()}
        return rollout

    @abc.abstractmethod
    def collect(self) -> Rollout:
        """Step every env ``num_steps`` times with the current policy and store what it saw."""

    @abc.abstractmethod
    def update(self, update: int) -> dict[str, float]:
        """Learn from what was collected; returns TRAINER metrics."""

    def diagnostics(self) -> dict[str, float]:
        """State worth logging after an update, besides ``update``'s metrics (SPO: its duals)."""
        return {}

    def close(self) -> None:  # noqa: B027 (optional: the default has nothing to stop)
        """Stop whatever the algorithm runs in the background (appo's actor)."""

    def set_num_updates(self, num_updates: int, update: int) -> None:
        """The run now ends after ``num_updates`` updates (a resume changed the
        budget, or the world size); ``update`` is the next one."""
        self.num_updates = num_updates

    # ------------------------------------------------------------ evaluation
    def evaluation_policy(self, pool: Any) -> Policy:
        """The policy evaluations run on ``pool`` (the evaluation pool, for
        policies that search on it): greedy over legal actions."""
        return greedy_policy(self.agent, self.device, self.space)

    def comparison_policies(self, pool: Any) -> dict[str, Policy]:
        """More policies each evaluation also runs, logged as ``<name>_<metric>``."""
        return {}

    @classmethod
    def saved_policy(
        cls,
        agent: nn.Module,
        pool: Any,
        config: Config,
        device: torch.device,
        source: dict[str, Any],
    ) -> tuple[Policy, str]:
        """The policy ``--evaluate`` runs with a checkpoint's ``agent`` (its
        weights loaded; ``source`` is the loaded checkpoint, perhaps another
        algorithm's), and how to name it."""
        return greedy_policy(agent, device, ActionSpace.from_spec(pool.spec)), "greedy"

    # ----------------------------------------------------------- checkpoints
    @abc.abstractmethod
    def optimizer_state_dict(self) -> dict[str, Any]:
        """What a fork carries besides the weights: optimisers and the like."""

    @abc.abstractmethod
    def load_optimizer_state_dict(self, state: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """The rest of the state a resume needs: sampler, schedule, replay."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def normalization_state_dict(self) -> dict[str, Any]:
        """The reward normalisation's part of ``state_dict`` (nothing when it is off):
        ``reward_statistics``, shared by the ranks, and ``reward_returns``, per rank."""
        return {} if self.reward_normalizer is None else self.reward_normalizer.state_dict()

    def load_normalization_state_dict(self, state: dict[str, Any]) -> None:
        if self.reward_normalizer is not None:
            self.reward_normalizer.load_state_dict(state)

    def load_weights(self, model: dict[str, torch.Tensor]) -> None:
        """Start from weights trained by another algorithm (a fork across
        algorithms): the agent takes them and everything else starts fresh."""
        self.agent.load_state_dict(model)


def algorithm_class(name: str) -> type[Algorithm]:
    """The class of ``--algo name`` (``config.ALGORITHMS``), imported on first use."""
    module, _, attribute = ALGORITHMS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)
