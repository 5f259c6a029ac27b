"""The MPO-style losses SPO learns with (Macfarlane et al. 2024, App. D;
Abdolmaleki et al. 2018), for discrete actions with an action mask.

- policy:       cross-entropy from the search target q to the online policy;
- temperature:  the E-step dual  eta * (eps + mean_b logsumexp_n(A_bn / eta) - log N),
                on the per-particle advantages A stored before any resampling;
- trust region: alpha * KL(pi_target || pi_online) with the dual
                alpha * (eps_alpha - KL), each side with a stop-gradient on the other.

Dual parameters are stored as unconstrained "log" values; the dual variable
is softplus(log) + 1e-8, and `clip_duals` keeps the stored values >= -18.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

DUAL_FLOOR = -18.0


def dual_value(log_param: torch.Tensor) -> torch.Tensor:
    return F.softplus(log_param) + 1e-8


def inverse_softplus(value: float) -> float:
    """The stored log parameter whose dual value is `value` (up to the 1e-8)."""
    return value + math.log(-math.expm1(-value))


def masked_log_softmax(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    return torch.log_softmax(logits, dim=-1)


def policy_cross_entropy(log_probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean_b -sum_a q(a) log pi(a); actions with q = 0 contribute nothing
    (even where log pi is -inf, i.e. masked)."""
    terms = torch.where(target > 0, target * log_probs, torch.zeros_like(log_probs))
    return -terms.sum(dim=-1).mean()


def temperature_loss(log_temperature: torch.Tensor, advantages: torch.Tensor, epsilon: float):
    """The E-step dual; `advantages` is [B, N] and gets no gradient."""
    eta = dual_value(log_temperature)
    n = advantages.shape[-1]
    lse = torch.logsumexp(advantages.detach() / eta, dim=-1)
    return eta * (epsilon + lse.mean() - math.log(n))


def categorical_kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per row, over the actions where p > 0."""
    p = log_p.exp()
    terms = torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p))
    return terms.sum(dim=-1)


def trust_region_losses(
    log_alpha: torch.Tensor,
    target_log_probs: torch.Tensor,
    online_log_probs: torch.Tensor,
    epsilon_alpha: float,
):
    """Returns (penalty, alpha_loss, mean KL). The penalty moves the policy with
    alpha held fixed; the alpha loss moves alpha with the KL held fixed."""
    kl = categorical_kl(target_log_probs.detach(), online_log_probs).mean()
    alpha = dual_value(log_alpha)
    penalty = alpha.detach() * kl
    alpha_loss = alpha * (epsilon_alpha - kl.detach())
    return penalty, alpha_loss, kl


@torch.no_grad()
def clip_duals(*log_params: torch.Tensor) -> None:
    for p in log_params:
        p.clamp_(min=DUAL_FLOOR)


@dataclass
class MpoTerms:
    policy: torch.Tensor
    temperature: torch.Tensor
    kl_penalty: torch.Tensor
    alpha: torch.Tensor
    kl: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        return self.policy + self.temperature + self.kl_penalty + self.alpha


def mpo_losses(
    online_logits: torch.Tensor,
    target_logits: torch.Tensor,
    action_mask: torch.Tensor | None,
    search_target: torch.Tensor,
    advantages: torch.Tensor,
    log_temperature: torch.Tensor,
    log_alpha: torch.Tensor,
    epsilon: float,
    epsilon_alpha: float,
) -> MpoTerms:
    online = masked_log_softmax(online_logits, action_mask)
    target = masked_log_softmax(target_logits, action_mask)
    penalty, alpha_loss, kl = trust_region_losses(log_alpha, target, online, epsilon_alpha)
    return MpoTerms(
        policy=policy_cross_entropy(online, search_target),
        temperature=temperature_loss(log_temperature, advantages, epsilon),
        kl_penalty=penalty,
        alpha=alpha_loss,
        kl=kl,
    )
