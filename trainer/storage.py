"""Where transitions live between the envs and the learner: rollout storage for
on-policy updates (PPO) and a replay ring for off-policy ones (SPO), both
preallocated, and the one place engine output is copied in.

The pool returns NumPy *views* of engine memory that the next ``step`` or
``reset`` rewrites, so everything kept lives in tensors allocated once, here.
On the CPU the engine writes each step's observations, rewards and flags
straight into the rollout tensors (``step_out``, the pool's ``out=`` API); for
storage on another device ``step_out`` is None and ``copy_obs`` /
``copy_outcome`` copy the views instead. ``ReplayBuffer.add`` copies too.

``RolloutStorage`` layout (T = num_steps, N = num_envs): ``obs[t]`` is the
observation the policy acted on at step t, and ``obs[T]`` the one after the
last step (for bootstrapping). Row ``t`` of ``rewards``, ``terminated`` and
``truncated`` is the outcome of ``actions[t]``; ``final_values[t]`` holds
V(final_obs) on rows where that step truncated an episode. With a recurrent
policy (``state_size`` > 0) it also holds ``initial_state``, each env's hidden
state at the rollout's start (before ``obs[0]``: what truncated BPTT starts
from), and ``starts[t]``, whether ``obs[t]`` begins an episode (the hidden
state is reset before it). With ``final_obs`` it keeps the final observations
themselves on the truncated rows (for V-trace, which re-evaluates them).

``ReplayBuffer`` is a FIFO ring over time, ``[capacity, N]`` transitions, that
hands out sequences of consecutive steps of one env. With ``state_size`` > 0 each
transition also holds ``state``, the recurrent state its observation was consumed with.

Actions are stored in the form the algorithm learns from, shaped by the
task's ``ActionSpace`` (``trainer.distributions``): int64 ``[T, N]``
(Discrete), int64 ``[T, N, k]`` (MultiDiscrete) or float32 ``[T, N, *shape]``
(Box: the unclipped samples).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trainer.distributions import ActionSpace

Observation = dict[str, torch.Tensor]


def torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.zeros(0, dtype)).dtype


def copy_obs(dst: Observation, src: dict[str, np.ndarray]) -> None:
    """Copy engine observation views ``src`` into the preallocated tensors ``dst``."""
    for name, tensor in dst.items():
        tensor.copy_(torch.from_numpy(src[name]))


def copy_outcome(
    storage: RolloutStorage,
    t: int,
    reward: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
) -> None:
    """Copy one step's reward and flags (engine views) into row ``t`` of ``storage``."""
    storage.rewards[t].copy_(torch.from_numpy(reward))
    storage.terminated[t].copy_(torch.from_numpy(terminated))
    storage.truncated[t].copy_(torch.from_numpy(truncated))


def empty_obs(spec: Any, leading: tuple[int, ...], device: torch.device) -> Observation:
    """Zeroed observation tensors ``[*leading, *field_shape]`` in the fields' dtypes."""
    return {
        name: torch.zeros((*leading, *f.shape), dtype=torch_dtype(f.dtype), device=device)
        for name, f in spec.fields.items()
    }


class RolloutStorage:
    """One rollout of ``num_steps`` x ``num_envs`` transitions, reused every update."""

    def __init__(
        self,
        spec: Any,
        num_steps: int,
        num_envs: int,
        device: torch.device,
        *,
        state_size: int = 0,
        final_obs: bool = False,
    ) -> None:
        shape = (num_steps, num_envs)
        self.num_steps, self.num_envs = num_steps, num_envs
        self.obs = empty_obs(spec, (num_steps + 1, num_envs), device)
        space = ActionSpace.from_spec(spec)
        self.actions = torch.zeros((*shape, *space.shape), dtype=space.dtype, device=device)
        self.logprobs = torch.zeros(shape, device=device)
        self.values = torch.zeros((num_steps + 1, num_envs), device=device)
        self.rewards = torch.zeros(shape, device=device)
        self.terminated = torch.zeros(shape, dtype=torch.bool, device=device)
        self.truncated = torch.zeros(shape, dtype=torch.bool, device=device)
        self.final_values = torch.zeros(shape, device=device)
        self.advantages = torch.zeros(shape, device=device)
        self.returns = torch.zeros(shape, device=device)
        self.state_size = state_size
        if state_size:
            self.initial_state = torch.zeros((num_envs, state_size), device=device)
            self.starts = torch.zeros(shape, dtype=torch.bool, device=device)
        self.final_obs = empty_obs(spec, shape, device) if final_obs else None
        self._step_out = None
        if torch.device(device).type == "cpu":  # NumPy views of the tensors, for out=
            self._step_out = [
                {
                    **{name: obs[t + 1].numpy() for name, obs in self.obs.items()},
                    "reward": self.rewards[t].numpy(),
                    "terminated": self.terminated[t].numpy(),
                    "truncated": self.truncated[t].numpy(),
                }
                for t in range(num_steps)
            ]

    def step_out(self, t: int) -> dict[str, np.ndarray] | None:
        """``out=`` arrays for step ``t`` (obs[t + 1], rewards[t], flags[t]), or
        None when the storage is not on the CPU."""
        return None if self._step_out is None else self._step_out[t]

    def next_values(self) -> torch.Tensor:
        """V of the state each step led to: V(obs[t+1]), or V(final_obs) where truncated."""
        return torch.where(self.truncated, self.final_values, self.values[1:])

    def flat(self) -> dict[str, Any]:
        """The rollout as ``[T * N, ...]`` views, for minibatching."""
        n = self.num_steps * self.num_envs
        return {
            "obs": {name: t[:-1].reshape(n, *t.shape[2:]) for name, t in self.obs.items()},
            "actions": self.actions.reshape(n, *self.actions.shape[2:]),
            "logprobs": self.logprobs.reshape(n),
            "values": self.values[:-1].reshape(n),
            "advantages": self.advantages.reshape(n),
            "returns": self.returns.reshape(n),
        }


class ReplayBuffer:
    """A FIFO ring over time of ``[capacity, num_envs]`` transitions.

    ``add`` writes one step of every env; ``sample`` draws sequences of
    ``length`` consecutive steps of one env, uniformly over the valid start
    times (oldest-first after the ring wrapped) and envs. Sequences may cross
    episode boundaries; the terminated/truncated flags cut them.
    """

    def __init__(
        self,
        spec: Any,
        capacity: int,
        num_envs: int,
        num_particles: int,
        device: torch.device,
        state_size: int = 0,
    ) -> None:
        self.capacity, self.num_envs, self.num_particles = capacity, num_envs, num_particles
        self.num_actions = int(spec.num_actions)
        self.device = device
        shape = (capacity, num_envs)
        space = ActionSpace.from_spec(spec)
        action, particles = (*shape, *space.shape), (*shape, num_particles, *space.shape)
        self.tensors: dict[str, torch.Tensor] = {
            **{f"obs.{k}": v for k, v in empty_obs(spec, shape, device).items()},
            **{f"next_obs.{k}": v for k, v in empty_obs(spec, shape, device).items()},
            "actions": torch.zeros(action, dtype=space.dtype, device=device),
            "rewards": torch.zeros(shape, device=device),
            "terminated": torch.zeros(shape, dtype=torch.bool, device=device),
            "truncated": torch.zeros(shape, dtype=torch.bool, device=device),
            "root_actions": torch.zeros(particles, dtype=space.dtype, device=device),
            "weights": torch.zeros((*shape, num_particles), device=device),
            "advantages": torch.zeros((*shape, num_particles), device=device),
        }
        if state_size:
            self.tensors["state"] = torch.zeros((*shape, state_size), device=device)
        self.pos = 0  # next row written
        self.size = 0  # rows filled

    def __len__(self) -> int:
        """Stored transitions (steps x envs)."""
        return self.size * self.num_envs

    def add(self, row: dict[str, Any]) -> None:
        """Write one step of every env; ``row`` maps the tensor names (obs fields
        as ``obs.<field>`` / ``next_obs.<field>``) to ``[num_envs, ...]`` data."""
        for name, tensor in self.tensors.items():
            value = row[name]
            if isinstance(value, np.ndarray):
                value = torch.from_numpy(value)
            tensor[self.pos].copy_(value)
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def can_sample(self, length: int) -> bool:
        return self.size >= length

    def sample(
        self, num_sequences: int, length: int, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """``[length, num_sequences, ...]`` tensors (time first, like a rollout)."""
        if not self.can_sample(length):
            raise ValueError(f"replay holds {self.size} steps, fewer than {length}")
        # Drawn on the CPU (the generator's device, as in the search), then moved.
        starts = torch.randint(0, self.size - length + 1, (num_sequences,), generator=generator)
        envs = torch.randint(0, self.num_envs, (num_sequences,), generator=generator)
        starts, envs = starts.to(self.device), envs.to(self.device)
        oldest = self.pos if self.size == self.capacity else 0
        steps = torch.arange(length, device=self.device)
        times = (oldest + starts[None, :] + steps[:, None]) % self.capacity  # [L, S]
        return {name: t[times, envs[None, :]] for name, t in self.tensors.items()}

    def state_dict(self) -> dict[str, Any]:
        # Only the filled rows are saved (all of them once the ring wrapped).
        return {
            "pos": self.pos,
            "size": self.size,
            "capacity": self.capacity,
            "tensors": {k: v[: self.size].clone() for k, v in self.tensors.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["capacity"]) != self.capacity:
            raise ValueError(f"replay capacity {state['capacity']} != {self.capacity}")
        self.pos, self.size = int(state["pos"]), int(state["size"])
        for name, tensor in self.tensors.items():
            tensor[: self.size].copy_(state["tensors"][name])
