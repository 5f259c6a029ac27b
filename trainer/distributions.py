"""Policy distributions for every action space a task can declare, behind one interface.

``ActionSpace.from_spec(spec)`` reads the pool's ``spec.action`` and is all the
algorithms need to know about actions:

* ``num_params`` -- the width of the policy-parameter row the network emits
  (``agent.logits``): the logits of ``Discrete(n)`` (n) and of
  ``MultiDiscrete(nvec)`` (``sum(nvec)``, the components' logits
  concatenated); for a ``Box`` of D elements, the mean and the log standard
  deviation (2D);
* ``shape`` / ``dtype`` -- one stored action: int64 ``()``, int64 ``(k,)`` or
  float32 ``Box.shape``;
* ``distribution(params, mask)`` -- the distribution of those parameters;
* ``to_env(actions)`` -- what the env receives for stored actions: the same
  integers, or a Box sample clipped to the bounds. The stored action (and its
  log-probability) is the *unclipped* sample, as in CleanRL's
  ``ppo_continuous_action``.

Every distribution offers ``sample(generator)`` (reproducible: it draws from
the given generator), ``log_prob``, ``entropy`` and ``mode`` (the greedy
action), each per row:

* ``MaskedCategorical`` -- illegal actions (``mask == False``) get exactly zero
  probability: their logits are replaced by the most negative float before
  the log-softmax, so they are never sampled, and the entropy sums over legal
  actions only. A row with no legal action at all (which no built-in task
  produces) is treated as all-legal rather than producing NaNs.
* ``MultiCategorical`` -- independent masked categoricals, one per component;
  the log-probability and the entropy are the components' sums. A task's
  ``action_mask`` is then bool ``[sum(nvec)]``, the components' masks
  concatenated.
* ``DiagGaussian`` -- independent normals over the Box elements (the log-std
  is whatever the network emits; the MLP's is a state-independent parameter);
  log-probability and entropy sum over the elements; the mode is the mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _draw_normal(shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None):
    """Standard normal draws from ``generator`` (made on its device), on ``like``'s device."""
    device = like.device if generator is None else generator.device
    noise = torch.randn(shape, generator=generator, device=device, dtype=like.dtype)
    return noise.to(like.device)


class MaskedCategorical:
    """Categorical over the last dimension of ``logits``, restricted to ``mask``."""

    def __init__(self, logits: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        if mask is not None:
            mask = mask.bool()
            mask = mask | ~mask.any(dim=-1, keepdim=True)
            logits = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
        self.mask = mask
        self.log_probs = torch.log_softmax(logits, dim=-1)

    @property
    def probs(self) -> torch.Tensor:
        return self.log_probs.exp()

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """One action per row, drawn with ``generator`` (reproducible)."""
        flat = self.probs.reshape(-1, self.probs.shape[-1])
        actions = torch.multinomial(flat, 1, generator=generator)
        return actions.reshape(self.probs.shape[:-1])

    def mode(self) -> torch.Tensor:
        """The most likely legal action per row (the greedy policy)."""
        return self.log_probs.argmax(dim=-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        """Entropy over legal actions (illegal ones contribute exactly 0)."""
        p_log_p = self.probs * self.log_probs
        if self.mask is not None:
            p_log_p = torch.where(self.mask, p_log_p, torch.zeros_like(p_log_p))
        return -p_log_p.sum(dim=-1)


class MultiCategorical:
    """Independent masked categoricals over ``nvec`` components; actions ``[..., k]``."""

    def __init__(
        self, logits: torch.Tensor, nvec: tuple[int, ...], mask: torch.Tensor | None = None
    ) -> None:
        logits = logits.split(list(nvec), dim=-1)
        masks = [None] * len(nvec) if mask is None else mask.split(list(nvec), dim=-1)
        self.components = [MaskedCategorical(c, m) for c, m in zip(logits, masks)]

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.stack([c.sample(generator) for c in self.components], dim=-1)

    def mode(self) -> torch.Tensor:
        return torch.stack([c.mode() for c in self.components], dim=-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        parts = [c.log_prob(actions[..., i]) for i, c in enumerate(self.components)]
        return torch.stack(parts, dim=-1).sum(dim=-1)

    def entropy(self) -> torch.Tensor:
        return torch.stack([c.entropy() for c in self.components], dim=-1).sum(dim=-1)


class DiagGaussian:
    """Independent normals ``N(mean, exp(log_std)^2)`` over the trailing ``shape`` of a row."""

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor, shape: tuple[int, ...]) -> None:
        self.shape = tuple(shape)
        self.mean = mean
        self.log_std = log_std.expand_as(mean)
        self.std = self.log_std.exp()

    @classmethod
    def from_params(cls, params: torch.Tensor, shape: tuple[int, ...]) -> DiagGaussian:
        """From a network's ``[..., 2D]`` row: the D means, then the D log-stds."""
        size = math.prod(shape)
        lead = params.shape[:-1]
        mean, log_std = params[..., :size], params[..., size:]
        return cls(mean.reshape(*lead, *shape), log_std.reshape(*lead, *shape), shape)

    def _sum(self, x: torch.Tensor) -> torch.Tensor:
        """Sum over the action elements (the trailing ``shape`` dimensions)."""
        return x.flatten(x.dim() - len(self.shape)).sum(-1) if self.shape else x

    def sample(self, generator: torch.Generator | None = None, num: int | None = None):
        """One action per row (``[..., *shape]``), or ``num`` (``[..., num, *shape]``)."""
        mean, std = self.mean, self.std
        if num is not None:
            lead = mean.dim() - len(self.shape)
            mean, std = mean.unsqueeze(lead), std.unsqueeze(lead)
            mean = mean.expand(*mean.shape[:lead], num, *self.shape)
        return mean + std * _draw_normal(tuple(mean.shape), mean, generator)

    def mode(self) -> torch.Tensor:
        return self.mean

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        z = (actions - self.mean) / self.std
        return self._sum(-0.5 * z * z - self.log_std - LOG_SQRT_2PI)

    def entropy(self) -> torch.Tensor:
        return self._sum(0.5 + LOG_SQRT_2PI + self.log_std)


Distribution = Union[MaskedCategorical, MultiCategorical, DiagGaussian]


@dataclass(frozen=True)
class ActionSpace:
    """What the trainer needs to know about a task's actions (see the module docstring)."""

    kind: str  # "discrete", "multi_discrete" or "box"
    nvec: tuple[int, ...] = ()
    box_shape: tuple[int, ...] = ()
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    @classmethod
    def from_spec(cls, spec: Any) -> ActionSpace:
        """From a pool's ``spec`` (a spec without ``action`` is ``Discrete(num_actions)``)."""
        action = getattr(spec, "action", None)
        if action is None:
            return cls("discrete", (int(spec.num_actions),))
        if action.kind == "box":
            return cls("box", (), tuple(action.shape), action.low, action.high)
        return cls(action.kind, tuple(int(n) for n in action.nvec))

    @property
    def continuous(self) -> bool:
        return self.kind == "box"

    @property
    def num_params(self) -> int:
        """Width of the policy-parameter row: logits, or Box means and log-stds."""
        return 2 * math.prod(self.box_shape) if self.continuous else int(sum(self.nvec))

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one stored action."""
        if self.kind == "discrete":
            return ()
        return (len(self.nvec),) if self.kind == "multi_discrete" else self.box_shape

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32 if self.continuous else torch.long

    def distribution(self, params: torch.Tensor, mask: torch.Tensor | None = None) -> Distribution:
        """The policy for ``params`` (``[..., num_params]``); ``mask`` is the
        ``action_mask`` observation, where the task has one (discrete kinds)."""
        if self.kind == "discrete":
            return MaskedCategorical(params, mask)
        if self.kind == "multi_discrete":
            return MultiCategorical(params, self.nvec, mask)
        return DiagGaussian.from_params(params, self.box_shape)

    def to_env(self, actions: torch.Tensor) -> np.ndarray:
        """The env's actions for stored ``actions``: Box samples clipped to the bounds."""
        out = actions.detach().cpu().numpy()
        if self.continuous:
            out = np.clip(out, self.low, self.high).astype(np.float32, copy=False)
        return out
