"""Recurrent policies: a recurrent core between a network's torso and its heads,
and the hidden state it carries from step to step.

``RecurrentAgent`` wraps any architecture of ``trainer.networks`` that comes
apart into ``encode`` (the torso), ``core_input`` (its output, flattened) and
``heads`` (``network.recurrent: lstm | gru``). One step::

    encoding = net.encode(obs)
    state    = 0 where starts, else state      # a new episode starts from zeros
    memory, state = core(net.core_input(encoding, obs), state)
    logits, value = net.heads(encoding, obs, memory)

The heads read the torso's output *and* the core's, so what the network sees
now reaches them directly and the core only has to remember the past. The
heads' outputs pass through unchanged, whatever distribution they
parameterise.

Invariants:

* **One tensor of state per env**, ``[B, state_size]`` (LSTM: h and c side by
  side; GRU: h), so rollout storage, replay, checkpoints and SPO's particles
  treat it as plain data.
* **Episode starts.** ``starts[b]`` says that row b's observation is the first
  of an episode; the state is zeroed before that observation is consumed.
  With same-step auto-reset the observation after a done already belongs to
  the next episode, so an env's start flag for step t + 1 is its done flag of
  step t, and True for the first observation after a reset.
* **Truncated backpropagation through time.** ``unroll`` runs T steps from a
  given state (the state stored at a rollout's start, which carries no
  gradient), resetting where ``starts`` says; gradients flow through the T
  steps and stop at the stored state. The torso and the heads run once over
  all T x B rows; only the core steps through time.

``HiddenState`` is the state of a batch of live envs during collection;
``RecurrentGreedyPolicy`` is the evaluation policy, a ``StatefulPolicy``
(whoever plays one tells it where episodes begin).
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np
import torch
from torch import nn

from trainer.distributions import ActionSpace

Observation = dict[str, torch.Tensor]


def reset_where(state: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    """``state`` with the rows where ``starts`` is True set to zeros."""
    return torch.where(starts.unsqueeze(-1), torch.zeros_like(state), state)


class RecurrentAgent(nn.Module):
    """``net`` (built with ``network.recurrent`` set, so that its heads read the
    core's output) with an LSTM or GRU cell of ``hidden_size`` units."""

    def __init__(self, net: nn.Module, kind: str, hidden_size: int) -> None:
        super().__init__()
        if kind not in ("lstm", "gru"):
            raise ValueError(f"recurrent: expected lstm or gru, got {kind!r}")
        self.net, self.kind, self.hidden_size = net, kind, hidden_size
        cell = nn.LSTMCell if kind == "lstm" else nn.GRUCell
        self.core = cell(net.core_input_size, hidden_size)
        for name, parameter in self.core.named_parameters():
            if name.startswith("weight"):
                nn.init.orthogonal_(parameter, 1.0)
            else:
                nn.init.zeros_(parameter)
        self.state_size = 2 * hidden_size if kind == "lstm" else hidden_size

    def initial_state(self, batch: int, device: Any = None) -> torch.Tensor:
        """The state before any observation: zeros ``[batch, state_size]``."""
        return torch.zeros(batch, self.state_size, device=device)

    def _core(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of the cell: (its output, the next state)."""
        if self.kind == "gru":
            h = self.core(x, state)
            return h, h
        h, c = self.core(x, tuple(state.split(self.hidden_size, dim=-1)))
        return h, torch.cat([h, c], dim=-1)

    def step(
        self, obs: Observation, state: torch.Tensor, starts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step for a batch: ``(logits [B, ...], value [B], next state [B, S])``."""
        encoding = self.net.encode(obs)
        memory, state = self._core(self.net.core_input(encoding, obs), reset_where(state, starts))
        logits, value = self.net.heads(encoding, obs, memory)
        return logits, value, state

    def unroll(
        self, obs: Observation, state: torch.Tensor, starts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """T steps of B envs from ``state`` [B, S]: ``obs`` fields are ``[T, B, ...]``
        and ``starts`` ``[T, B]``. Returns logits ``[T, B, ...]``, values ``[T, B]``
        and the state after each step, ``[T, B, S]``."""
        steps, batch = starts.shape
        flat = {name: v.reshape(steps * batch, *v.shape[2:]) for name, v in obs.items()}
        encoding = self.net.encode(flat)
        inputs = self.net.core_input(encoding, flat).reshape(steps, batch, -1)
        memories, states = [], []
        for t in range(steps):
            memory, state = self._core(inputs[t], reset_where(state, starts[t]))
            memories.append(memory)
            states.append(state)
        memory = torch.stack(memories).reshape(steps * batch, -1)
        logits, values = self.net.heads(encoding, flat, memory)
        return (
            logits.reshape(steps, batch, *logits.shape[1:]),
            values.reshape(steps, batch),
            torch.stack(states),
        )

    def forward(self, obs: Observation) -> tuple[torch.Tensor, torch.Tensor]:
        raise TypeError(
            "a recurrent agent needs its hidden state: call step(obs, state, starts) or unroll"
        )


class HiddenState:
    """The hidden state ``agent`` carries for ``num_envs`` live envs.

    ``state`` is what each env's next observation will be consumed with and
    ``starts`` whether that observation begins an episode (True for all at
    first). ``step`` consumes the observations and advances the state;
    ``episodes_ended(done)`` then marks the envs whose next observation starts
    a new episode (call it after every env step).
    """

    def __init__(self, agent: RecurrentAgent, num_envs: int, device: Any) -> None:
        self.agent = agent
        self.state = agent.initial_state(num_envs, device)
        self.starts = torch.ones(num_envs, dtype=torch.bool, device=device)

    def current(self) -> torch.Tensor:
        """The state each env's next observation is consumed with (zeros where
        it begins an episode)."""
        return reset_where(self.state, self.starts)

    def step(self, obs: Observation) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, values) of every env's observation; the state moves past it."""
        logits, values, self.state = self.agent.step(obs, self.state, self.starts)
        return logits, values

    def value(self, obs: Observation) -> torch.Tensor:
        """V of every env's next observation ``obs``, leaving the state as it is
        (the bootstrap value at the end of a rollout)."""
        return self.agent.step(obs, self.state, self.starts)[1]

    def final_value(self, obs: Observation, rows: torch.Tensor) -> torch.Tensor:
        """V of the last observations ``obs`` of the episodes that ``rows`` just
        ended (``info["final_obs"]``): they continue those episodes' states."""
        state = self.state[rows]
        return self.agent.step(obs, state, torch.zeros_like(rows, dtype=torch.bool))[1]

    def episodes_ended(self, done: torch.Tensor) -> None:
        """Envs where ``done``: their next observation begins a new episode."""
        self.starts = done.to(device=self.starts.device, dtype=torch.bool, copy=True)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"state": self.state.clone(), "starts": self.starts.clone()}

    def load_state_dict(self, saved: dict[str, torch.Tensor]) -> None:
        if saved["state"].shape != self.state.shape:
            raise ValueError(
                f"saved hidden state has shape {tuple(saved['state'].shape)}, "
                f"this run {tuple(self.state.shape)}"
            )
        self.state = saved["state"].to(self.state.device).clone()
        self.starts = saved["starts"].to(self.starts.device).clone()


class StatefulPolicy(abc.ABC):
    """A policy with memory (observations -> actions, like ``algorithm.Policy``),
    played on a batch of envs: ``reset(num_envs)`` before the first step of
    ``num_envs`` new episodes, ``episodes_ended(done)`` after every step."""

    @abc.abstractmethod
    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...

    @abc.abstractmethod
    def reset(self, num_envs: int) -> None: ...

    @abc.abstractmethod
    def episodes_ended(self, done: np.ndarray) -> None: ...


class RecurrentGreedyPolicy(StatefulPolicy):
    """The most likely legal action of a recurrent agent, with a hidden state per
    env (a Box policy's: its mean, clipped to the bounds)."""

    def __init__(
        self, agent: RecurrentAgent, device: torch.device, space: ActionSpace | None = None
    ) -> None:
        self.agent, self.device = agent, device
        self.space = space or ActionSpace("discrete")
        self.hidden: HiddenState | None = None

    def reset(self, num_envs: int) -> None:
        self.hidden = HiddenState(self.agent, num_envs, self.device)

    @torch.no_grad()
    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        tensors = {name: torch.from_numpy(view).to(self.device) for name, view in obs.items()}
        if self.hidden is None:
            self.reset(len(next(iter(obs.values()))))
        params, _ = self.hidden.step(tensors)
        return self.space.to_env(self.space.distribution(params, tensors.get("action_mask")).mode())

    def episodes_ended(self, done: np.ndarray) -> None:
        self.hidden.episodes_ended(torch.from_numpy(np.asarray(done)))
