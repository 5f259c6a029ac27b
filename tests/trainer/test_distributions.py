"""The masked categorical: illegal actions have zero probability."""

from __future__ import annotations

import math

import torch

from trainer.distributions import MaskedCategorical


def test_illegal_actions_get_zero_probability_and_are_never_sampled():
    logits = torch.tensor([[5.0, 0.0, 1.0, 2.0]]).repeat(1000, 1)
    mask = torch.tensor([[False, True, False, True]]).repeat(1000, 1)
    dist = MaskedCategorical(logits, mask)
    assert torch.all(dist.probs[:, [0, 2]] == 0)
    torch.testing.assert_close(dist.probs.sum(-1), torch.ones(1000))
    samples = dist.sample(torch.Generator().manual_seed(0))
    assert set(samples.tolist()) == {1, 3}
    assert torch.all(dist.mode() == 3)


def test_entropy_is_over_legal_actions_only():
    logits = torch.zeros(2, 5)
    mask = torch.tensor([[True, True, False, False, False], [True] * 5])
    entropy = MaskedCategorical(logits, mask).entropy()
    torch.testing.assert_close(entropy, torch.tensor([math.log(2), math.log(5)]))
    single = MaskedCategorical(torch.randn(1, 4), torch.tensor([[False, False, True, False]]))
    assert single.entropy().item() == 0.0
    assert single.log_prob(torch.tensor([2])).item() == 0.0


def test_unmasked_matches_torch_categorical():
    logits = torch.randn(6, 7)
    actions = torch.randint(0, 7, (6,))
    ours, ref = MaskedCategorical(logits), torch.distributions.Categorical(logits=logits)
    torch.testing.assert_close(ours.log_prob(actions), ref.log_prob(actions))
    torch.testing.assert_close(ours.entropy(), ref.entropy())


def test_gradients_are_finite_with_masks():
    logits = torch.randn(3, 4, requires_grad=True)
    mask = torch.tensor([[True, False, False, False], [True, True, False, False], [True] * 4])
    dist = MaskedCategorical(logits, mask)
    (dist.entropy().sum() + dist.log_prob(torch.tensor([0, 1, 2])).sum()).backward()
    assert torch.isfinite(logits.grad).all()
    assert torch.all(logits.grad[0] == 0)  # one legal action: nothing to learn


def test_a_row_without_legal_actions_is_treated_as_all_legal():
    dist = MaskedCategorical(torch.zeros(1, 3), torch.zeros(1, 3, dtype=torch.bool))
    torch.testing.assert_close(dist.probs, torch.full((1, 3), 1 / 3))


def test_sampling_is_reproducible_with_a_generator():
    dist = MaskedCategorical(torch.randn(100, 10))
    a = dist.sample(torch.Generator().manual_seed(3))
    b = dist.sample(torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
