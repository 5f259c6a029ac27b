"""SPO's MPO losses against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.mpo import (
    categorical_kl,
    clip_duals,
    dual_value,
    inverse_softplus,
    mpo_losses,
    policy_cross_entropy,
    temperature_loss,
    trust_region_losses,
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
