"""The MPO-style losses SPO learns with (Macfarlane et al. 2024, App. D;
Abdolmaleki et al. 2018), for discrete actions with an action mask
(``mpo_losses``) and for Box actions with a diagonal Gaussian policy
(``gaussian_mpo_losses``).

- policy:       cross-entropy from the search target q to the online policy;
- temperature:  the E-step dual  eta * (eps + mean_b logsumexp_n(A_bn / eta) - log N),
                on the per-particle advantages A stored before any resampling;
- trust region: alpha * KL(pi_target || pi_online) with the dual
                alpha * (eps_alpha - KL), each side with a stop-gradient on the other.

The Gaussian form is MPO's decoupled M-step. The target is the particles'
weighted root actions, so the policy loss is their weighted negative
log-likelihood, ``-mean_b sum_n w_bn log pi(a_bn | s_b)``, taken twice: once
with the online mean and the target actor's std (it trains the mean), once
with the target's mean and the online std (it trains the std). Each half has
its own trust region and dual, KL(N(mu_t, s_t) || N(mu_online, s_t)) with
``alpha_mean`` and KL(N(mu_t, s_t) || N(mu_t, s_online)) with ``alpha_std``,
constrained per action element (MPO's per-dimension constraint: the duals
are vectors over the action elements).

Dual parameters are stored as unconstrained "log" values; the dual variable
is softplus(log) + 1e-8, and `clip_duals` keeps the stored values >= -18.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from trainer.distributions import LOG_SQRT_2PI, DiagGaussian

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
    kl: torch.Tensor  # Gaussian: the mean's KL (summed over the action elements)
    kl_std: torch.Tensor | None = None  # Gaussian: the std's KL

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


# ------------------------------------------------------------------ Gaussian
def particle_log_prob(mean: torch.Tensor, log_std: torch.Tensor, actions: torch.Tensor):
    """log N(a_bn | mean_b, exp(log_std_b)^2) summed over the action elements:
    ``mean``/``log_std`` ``[B, *shape]``, ``actions`` ``[B, N, *shape]`` -> ``[B, N]``."""
    mean, log_std = mean.unsqueeze(1), log_std.unsqueeze(1)
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z * z - log_std - LOG_SQRT_2PI).flatten(2).sum(-1)


def weighted_nll(log_probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``-mean_b sum_n w_bn log pi(a_bn)`` for ``[B, N]`` log-probabilities and weights."""
    return -(weights * log_probs).sum(-1).mean()


def gaussian_kl(mean_p, log_std_p, mean_q, log_std_q) -> torch.Tensor:
    """KL(N(mean_p, std_p^2) || N(mean_q, std_q^2)) per element."""
    var_ratio = torch.exp(2 * (log_std_p - log_std_q))
    gap = (mean_p - mean_q) * torch.exp(-log_std_q)
    return 0.5 * (var_ratio + gap * gap - 1.0) - (log_std_p - log_std_q)


def elementwise_trust_region(log_alpha: torch.Tensor, kl: torch.Tensor, epsilon: float):
    """Per-element duals: ``kl`` is ``[B, *shape]``, ``log_alpha`` ``[D]``. Returns
    (penalty, alpha_loss, the KL's batch mean summed over the elements)."""
    mean_kl = kl.flatten(1).mean(0)  # [D]
    alpha = dual_value(log_alpha)
    penalty = (alpha.detach() * mean_kl).sum()
    alpha_loss = (alpha * (epsilon - mean_kl.detach())).sum()
    return penalty, alpha_loss, mean_kl.sum()


def gaussian_mpo_losses(
    online: DiagGaussian,
    target: DiagGaussian,
    root_actions: torch.Tensor,
    weights: torch.Tensor,
    advantages: torch.Tensor,
    log_temperature: torch.Tensor,
    log_alpha_mean: torch.Tensor,
    log_alpha_std: torch.Tensor,
    epsilon: float,
    epsilon_mean: float,
    epsilon_std: float,
) -> MpoTerms:
    """The decoupled Gaussian losses (module docstring) for ``[B]`` states:
    ``root_actions`` ``[B, N, *shape]`` with normalised ``weights`` ``[B, N]``."""
    t_mean, t_log_std = target.mean.detach(), target.log_std.detach()
    policy_mean = weighted_nll(particle_log_prob(online.mean, t_log_std, root_actions), weights)
    policy_std = weighted_nll(particle_log_prob(t_mean, online.log_std, root_actions), weights)
    kl_mean = gaussian_kl(t_mean, t_log_std, online.mean, t_log_std)
    kl_std = gaussian_kl(t_mean, t_log_std, t_mean, online.log_std)
    penalty_mean, alpha_mean, kl_mean = elementwise_trust_region(
        log_alpha_mean, kl_mean, epsilon_mean
    )
    penalty_std, alpha_std, kl_std = elementwise_trust_region(log_alpha_std, kl_std, epsilon_std)
    return MpoTerms(
        policy=policy_mean + policy_std,
        temperature=temperature_loss(log_temperature, advantages, epsilon),
        kl_penalty=penalty_mean + penalty_std,
        alpha=alpha_mean + alpha_std,
        kl=kl_mean,
        kl_std=kl_std,
    )
