"""Running observation and reward normalisation (the SB3 ``VecNormalize`` / CleanRL
``NormalizeObservation`` + ``NormalizeReward`` statistics, in torch).

* ``RunningMeanStd`` -- a running mean and (population) variance in float64,
  combined batch by batch with the parallel algorithm (Chan et al.), starting
  from a count of 1e-4 as SB3 and Gymnasium do.
* ``ObservationNormalizer`` -- an ``nn.Module`` inside the network (the
  ``mlp`` architecture's ``normalize_observation``): it standardises every
  float observation field, ``clip((x - mean) / sqrt(var + 1e-8))``, and keeps
  its statistics as buffers, so they are saved, forked, copied into SPO's
  target network and loaded by ``--evaluate`` with the weights. Its forward
  never changes them: ``update_observation_statistics`` does, once per update,
  with the observations of the rollout just learned from. The policy is
  therefore one fixed function during a rollout and its update (the stored
  log-probabilities stay exact), and evaluations see frozen statistics.
* ``RewardNormalizer`` -- owned by the algorithm (``normalize_reward``):
  per env, the discounted return ``G = gamma * G + r`` feeds the statistics at
  every step; the stored reward is ``clip(r / sqrt(var(G) + 1e-8))``; ``G``
  restarts at every episode end (terminated or truncated), as in SB3.
  Episode returns in the telemetry stay the env's own.

Under torchrun every rank feeds the statistics the moments of the whole
world's batch (each rank has the same number of envs, so the mean of the
ranks' moments is the world's), so they stay identical on every rank; the
discounted returns are per rank.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

EPSILON = 1e-8  # added to the variance before the square root
INITIAL_COUNT = 1e-4  # the statistics' count before any data (SB3, Gymnasium)


def batch_moments(x: torch.Tensor, world: Any = None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mean, population variance and count over the leading dimension of ``x``
    (float64), over every rank of ``world``."""
    x = x.double()
    mean, var, count = x.mean(0), x.var(0, unbiased=False), float(x.shape[0])
    if world is not None and world.size > 1:
        both = world.mean(torch.stack([mean, var + mean * mean]))
        mean, var, count = both[0], both[1] - both[0] * both[0], count * world.size
    return mean, var, count


class RunningMeanStd(nn.Module):
    """Running mean and variance of values of ``shape`` (buffers, float64)."""

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(INITIAL_COUNT, dtype=torch.float64))

    @torch.no_grad()
    def update(self, mean: torch.Tensor, var: torch.Tensor, count: float) -> None:
        """Fold in a batch's moments."""
        delta = mean - self.mean
        total = self.count + count
        m2 = self.var * self.count + var * count + delta * delta * self.count * count / total
        self.mean.add_(delta * count / total)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def std(self) -> torch.Tensor:
        return torch.sqrt(self.var + EPSILON)


class ObservationNormalizer(nn.Module):
    """Standardises the float observation fields of ``spec`` (others pass through)."""

    def __init__(self, spec: Any, clip: float) -> None:
        super().__init__()
        self.clip = float(clip)
        self.statistics = nn.ModuleDict(
            {
                name: RunningMeanStd(tuple(f.shape))
                for name, f in spec.fields.items()
                if f.dtype.kind == "f"
            }
        )

    def forward(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = dict(obs)
        for name, stats in self.statistics.items():
            x = obs[name]
            z = (x.double() - stats.mean) / stats.std()
            out[name] = z.clamp(-self.clip, self.clip).to(x.dtype)
        return out

    @torch.no_grad()
    def update(self, obs: dict[str, torch.Tensor], world: Any = None) -> None:
        """Fold in a batch ``[..., *field_shape]`` of every float field."""
        for name, stats in self.statistics.items():
            x = obs[name]
            stats.update(*batch_moments(x.reshape(-1, *stats.mean.shape), world))


def update_observation_statistics(
    agent: nn.Module, obs: dict[str, torch.Tensor], world: Any = None
) -> None:
    """Fold ``obs`` (raw observations, any leading dimensions) into every
    ``ObservationNormalizer`` of ``agent`` (none: nothing happens)."""
    for module in agent.modules():
        if isinstance(module, ObservationNormalizer):
            module.update(obs, world)


class RewardNormalizer:
    """Scales rewards by the running std of the discounted return (see the module docstring)."""

    def __init__(self, num_envs: int, gamma: float, clip: float, device: torch.device) -> None:
        self.gamma, self.clip = gamma, float(clip)
        self.statistics = RunningMeanStd(()).to(device)
        self.returns = torch.zeros(num_envs, dtype=torch.float64, device=device)

    @torch.no_grad()
    def __call__(self, reward: torch.Tensor, done: torch.Tensor, world: Any = None) -> torch.Tensor:
        """The scaled rewards of one step of every env (on ``reward``'s device);
        updates the statistics."""
        self.returns.mul_(self.gamma).add_(reward.to(self.returns.device, torch.float64))
        self.statistics.update(*batch_moments(self.returns, world))
        scaled = self.scale(reward)
        self.returns[done.to(self.returns.device)] = 0.0
        return scaled

    @torch.no_grad()
    def scale(self, reward: torch.Tensor) -> torch.Tensor:
        """``reward`` scaled with the current statistics, which it leaves unchanged."""
        std = self.statistics.std().to(reward.device)
        return (reward.double() / std).clamp(-self.clip, self.clip).to(reward.dtype)

    def state_dict(self) -> dict[str, Any]:
        """The statistics (shared by the ranks) and this rank's discounted returns."""
        return {
            "reward_statistics": {k: v.clone() for k, v in self.statistics.state_dict().items()},
            "reward_returns": self.returns.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.statistics.load_state_dict(state["reward_statistics"])
        if "reward_returns" in state:  # absent for a rank the checkpoint has no state for
            self.returns.copy_(state["reward_returns"])
