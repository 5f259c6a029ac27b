"""SPO's MPO losses (discrete, and the decoupled Gaussian form) against values
computed by hand and against torch.distributions."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.distributions import DiagGaussian
from trainer.mpo import (
    categorical_kl,
    clip_duals,
    dual_value,
    gaussian_kl,
    gaussian_mpo_losses,
    inverse_softplus,
    mpo_losses,
    particle_log_prob,
    policy_cross_entropy,
    temperature_loss,
    trust_region_losses,
    weighted_nll,
)


def test_policy_cross_entropy_by_hand():
    log_probs = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.9, 0.0]]))
    target = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    expected = (-math.log(0.5) + -(0.5 * math.log(0.1) + 0.5 * math.log(0.9))) / 2
    assert policy_cross_entropy(log_probs, target).item() == pytest.approx(expected)
    # -inf log-probabilities of masked actions with q = 0 do not poison the loss.
    assert math.isfinite(policy_cross_entropy(log_probs, target).item())


def test_temperature_dual_by_hand():
    eta = 0.7
    log_t = torch.tensor(inverse_softplus(eta), requires_grad=True)
    adv = torch.tensor([[1.0, 0.0, -1.0, 2.0], [0.5, 0.5, 0.5, 0.5]])
    eps = 0.5
    lse0 = math.log(sum(math.exp(a / eta) for a in [1.0, 0.0, -1.0, 2.0]))
    lse1 = math.log(4 * math.exp(0.5 / eta))
    expected = eta * (eps + (lse0 + lse1) / 2 - math.log(4))
    loss = temperature_loss(log_t, adv, eps)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert log_t.grad is not None and math.isfinite(log_t.grad.item())


def test_trust_region_by_hand():
    p = torch.tensor([[0.5, 0.5, 0.0]])
    q = torch.tensor([[0.25, 0.5, 0.25]], requires_grad=True)
    kl_expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.5)
    assert categorical_kl(p.log(), q.log()).item() == pytest.approx(kl_expected)
    alpha = 2.0
    log_alpha = torch.tensor(inverse_softplus(alpha), requires_grad=True)
    penalty, alpha_loss, kl = trust_region_losses(log_alpha, p.log(), q.log(), 0.01)
    assert penalty.item() == pytest.approx(alpha * kl_expected, rel=1e-5)
    assert alpha_loss.item() == pytest.approx(alpha * (0.01 - kl_expected), rel=1e-5)
    # Stop-gradients: the penalty does not move alpha, the alpha loss does not move the policy.
    penalty.backward(retain_graph=True)
    assert log_alpha.grad is None
    q.grad = None
    alpha_loss.backward()
    assert q.grad is None and log_alpha.grad is not None


def test_masked_losses_and_duals():
    logits = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    mask = torch.tensor([[True, True, False]])
    terms = mpo_losses(
        logits,
        logits.detach() + 0.1,
        mask,
        torch.tensor([[0.2, 0.8, 0.0]]),
        torch.zeros(1, 4),
        torch.tensor(0.0, requires_grad=True),
        torch.tensor(0.0, requires_grad=True),
        0.5,
        1e-3,
    )
    log_p = torch.log_softmax(torch.tensor([1.0, 2.0]), 0)
    assert terms.policy.item() == pytest.approx(-(0.2 * log_p[0] + 0.8 * log_p[1]).item())
    assert terms.kl.item() == pytest.approx(0.0, abs=1e-6)  # same distribution after the mask
    terms.total.backward()
    assert logits.grad[0, 2] == 0  # a masked action gets no gradient
    a, b = torch.tensor(-30.0), torch.tensor(5.0)
    clip_duals(a, b)
    assert a.item() == -18.0 and b.item() == 5.0
    assert dual_value(torch.tensor(inverse_softplus(0.5))).item() == pytest.approx(0.5)


# ------------------------------------------------------------------ Gaussian
def test_gaussian_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mp, mq = torch.randn(5, 3), torch.randn(5, 3)
    sp, sq = torch.randn(5, 3) * 0.5, torch.randn(5, 3) * 0.5
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(mp, sp.exp()), torch.distributions.Normal(mq, sq.exp())
    )
    torch.testing.assert_close(gaussian_kl(mp, sp, mq, sq), ref)


def test_weighted_log_likelihood_of_the_target_actions_by_hand():
    mean, log_std = torch.tensor([[0.5]]), torch.tensor([[math.log(2.0)]])
    actions = torch.tensor([[[1.5], [-0.5], [0.5]]])  # [B=1, N=3, 1]
    weights = torch.tensor([[0.5, 0.25, 0.25]])
    ref = torch.distributions.Normal(0.5, 2.0)
    expected = -sum(
        w * ref.log_prob(torch.tensor(a)) for w, a in [(0.5, 1.5), (0.25, -0.5), (0.25, 0.5)]
    )
    log_probs = particle_log_prob(mean, log_std, actions)
    assert weighted_nll(log_probs, weights).item() == pytest.approx(expected.item(), rel=1e-6)


def gaussian_case(shift=0.0, online_log_std=0.0):
    """Two states, 2-element actions; the online policy shifted / widened from the target."""
    target_mean = torch.tensor([[0.0, 1.0], [0.5, -0.5]])
    target_log_std = torch.full((2, 2), -0.5)
    mean = (target_mean + shift).requires_grad_()
    log_std = torch.full((2, 2), online_log_std).requires_grad_()
    online = DiagGaussian(mean, log_std, (2,))
    target = DiagGaussian(target_mean, target_log_std, (2,))
    torch.manual_seed(1)
    actions = target_mean[:, None] + torch.randn(2, 8, 2)
    weights = torch.softmax(torch.randn(2, 8), dim=-1)
    return online, target, mean, log_std, actions, weights


def test_gaussian_losses_decouple_mean_and_std():
    """The mean's half of the loss moves only the mean, the std's only the std;
    each half's KL is the target's KL to the online mean (std) with the other fixed."""
    online, target, mean, log_std, actions, weights = gaussian_case(0.3, 0.2)
    duals = [torch.tensor(v, requires_grad=True) for v in (0.0, 0.0)]
    log_alpha_mean = torch.full((2,), inverse_softplus(10.0), requires_grad=True)
    log_alpha_std = torch.full((2,), inverse_softplus(500.0), requires_grad=True)
    terms = gaussian_mpo_losses(
        online, target, actions, weights, torch.randn(2, 8), duals[0],
        log_alpha_mean, log_alpha_std, 0.2, 0.05, 5e-4,
    )  # fmt: skip
    # KL of the mean: 0.3^2 / (2 s_t^2) per element, summed over 2 elements.
    s_t2 = math.exp(-1.0)
    assert terms.kl.item() == pytest.approx(2 * 0.09 / (2 * s_t2), rel=1e-5)
    kl_std = 2 * (0.5 * (math.exp(2 * (-0.5 - 0.2)) - 1.0) - (-0.5 - 0.2))
    assert terms.kl_std.item() == pytest.approx(kl_std, rel=1e-5)
    assert terms.kl_penalty.item() == pytest.approx(10 * terms.kl.item() + 500 * kl_std, rel=1e-4)
    mean_half = weighted_nll(particle_log_prob(mean, target.log_std, actions), weights)
    std_half = weighted_nll(particle_log_prob(target.mean, log_std, actions), weights)
    assert terms.policy.item() == pytest.approx((mean_half + std_half).item(), rel=1e-6)
    mean_half.backward()
    assert mean.grad is not None and log_std.grad is None
    mean.grad = None
    std_half.backward()
    assert mean.grad is None and log_std.grad is not None
    # The duals: one per action element, each moved by its own constraint.
    (terms.alpha).backward()
    assert log_alpha_mean.grad.shape == (2,) and log_alpha_std.grad.shape == (2,)
    assert (log_alpha_mean.grad < 0).all()  # KL_mean per element 0.12 > 0.05: alpha grows


def test_gaussian_policy_loss_pulls_the_mean_to_the_weighted_actions():
    online, target, mean, log_std, actions, weights = gaussian_case(0.0, -0.5)
    zero = torch.tensor(0.0)
    terms = gaussian_mpo_losses(
        online, target, actions, weights, torch.zeros(2, 8), zero,
        torch.full((2,), -18.0), torch.full((2,), -18.0), 0.2, 0.05, 5e-4,
    )  # fmt: skip
    terms.policy.backward()
    # d/dmu of the weighted NLL is -(sum_n w_n a_n - mu) / s^2: descent moves mu toward the target.
    weighted_mean = (weights[..., None] * actions).sum(1)
    toward = weighted_mean - mean.detach()
    assert (mean.grad * toward < 0).all()
