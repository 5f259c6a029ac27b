"""Advantage and return estimation, shared by the algorithms.

``compute_gae`` is generalised advantage estimation (Schulman et al. 2016) over
``[T, N]`` tensors, time first. Truncation is not termination: it takes
``terminated`` and ``truncated`` separately; a terminated step bootstraps
nothing, a truncated step bootstraps from the value of the state the episode
was cut off in (``next_values`` holds V(final_obs) on those rows), and both stop
the recursion, since the next row belongs to a new episode.

With ``negamax`` (two-player zero-sum games played by one network, self-play)
the envs it marks alternate players from row to row, so the next state's value
is the opponent's and enters with a minus sign.

``compute_vtrace`` is V-trace (Espeholt et al. 2018, IMPALA): value targets
and policy-gradient advantages for data that a behaviour policy mu collected
while the policy pi is being learned, with per-step importance weights
clipped at rho bar and c bar. It treats truncation exactly as GAE does, and
with weights of 1 (on-policy data) it is GAE's lambda-return.

``explained_variance`` says how much of the variance of the returns the
value estimates explain, the usual diagnostic of a critic.
"""

from __future__ import annotations

import numpy as np
import torch


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    gae_lambda: float,
    negamax: torch.Tensor | np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns (``advantages + values``) for ``[T, N]`` tensors.

    ``values[t]`` is V(s_t) and ``next_values[t]`` the value of the state step
    t led to: V(s_{t+1}) normally, V(final_obs) where the step truncated. A
    terminated step has no successor value::

        delta_t = r_t + gamma * V(s_{t+1}) * (1 - terminated_t) - V(s_t)
        A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}

    ``negamax`` (bool ``[N]``) marks the envs whose consecutive rows belong to
    alternating players, each row's reward and values from its *mover's* view.
    There the successor's value and advantage are the opponent's and enter
    with a minus sign (negamax); returns stay from the mover's view. In the
    other envs (and everywhere when ``negamax`` is None) the sign is +1.
    """
    not_terminated = 1.0 - terminated.float()
    continues = 1.0 - (terminated | truncated).float()
    if negamax is None:
        discount, trace = gamma, gamma * gae_lambda
    else:
        alternating = torch.as_tensor(negamax, device=rewards.device)
        sign = torch.where(alternating, -1.0, 1.0).to(rewards.dtype)
        discount, trace = sign * gamma, sign * gamma * gae_lambda
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + discount * next_values[t] * not_terminated[t] - values[t]
        last = delta + trace * continues[t] * last
        advantages[t] = last
    return advantages, advantages + values


def compute_vtrace(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    log_rhos: torch.Tensor,
    gamma: float,
    rho_bar: float = 1.0,
    c_bar: float = 1.0,
    trace_lambda: float = 1.0,
    negamax: torch.Tensor | np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Policy-gradient advantages and V-trace targets ``v`` for ``[T, N]`` tensors.

    ``values``, ``next_values``, ``terminated``, ``truncated`` and ``negamax``
    are as in ``compute_gae``; ``log_rhos[t]`` is log pi(a_t|s_t) - log mu(a_t|s_t).
    With rho_t = min(rho_bar, pi/mu) and c_t = lambda * min(c_bar, pi/mu)::

        delta_t = rho_t * (r_t + gamma * V(s_{t+1}) * (1 - terminated_t) - V(s_t))
        v_t     = V(s_t) + delta_t + gamma * c_t * (1 - done_t) * (v_{t+1} - V(s_{t+1}))
        A_t     = rho_t * (r_t + gamma * v'_{t+1} - V(s_t))

    where v'_{t+1} is v_{t+1} while the episode goes on, V(final_obs) after a
    truncation, 0 after a termination, and V(s_T) after the last row. So a
    terminated step bootstraps nothing, a truncated one bootstraps from the
    state it was cut off in, and neither carries the trace across the episode
    boundary. Returns ``(A, v)``.
    """
    not_terminated = 1.0 - terminated.float()
    continues = 1.0 - (terminated | truncated).float()
    if negamax is None:
        discount = gamma
    else:
        alternating = torch.as_tensor(negamax, device=rewards.device)
        discount = torch.where(alternating, -1.0, 1.0).to(rewards.dtype) * gamma
    ratios = log_rhos.exp()
    rhos = ratios.clamp(max=rho_bar)
    cs = trace_lambda * ratios.clamp(max=c_bar)
    advantages = torch.zeros_like(rewards)
    corrections = torch.zeros_like(rewards)  # v_t - V(s_t)
    later = torch.zeros_like(rewards[0])  # v_{t+1} - V(s_{t+1}) where the episode goes on
    for t in reversed(range(rewards.shape[0])):
        bootstrap = discount * next_values[t] * not_terminated[t]
        later = continues[t] * later
        delta = rhos[t] * (rewards[t] + bootstrap - values[t])
        advantages[t] = delta + rhos[t] * discount * later
        corrections[t] = later = delta + discount * cs[t] * later
    return advantages, values + corrections


def explained_variance(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """1 - Var(target - predicted) / Var(target); NaN when the target is constant."""
    variance = target.var().item()
    return float("nan") if variance == 0 else 1.0 - (target - predicted).var().item() / variance
