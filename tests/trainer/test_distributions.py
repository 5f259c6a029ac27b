"""Policy distributions: the masked categorical (illegal actions have zero
probability), independent categoricals for MultiDiscrete, the diagonal
Gaussian for Box (against torch.distributions), and the action space's
clipping rule."""

from __future__ import annotations

import math

import numpy as np
import torch

import pyenvpool
from trainer.distributions import ActionSpace, DiagGaussian, MaskedCategorical, MultiCategorical


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


# ------------------------------------------------------ every action space
def test_gaussian_log_prob_and_entropy_match_torch_distributions():
    torch.manual_seed(0)
    shape = (2, 3)
    mean = torch.randn(5, *shape)
    log_std = torch.randn(5, *shape) * 0.5
    params = torch.cat([mean.flatten(1), log_std.flatten(1)], dim=1)
    ours = DiagGaussian.from_params(params, shape)
    ref = torch.distributions.Independent(torch.distributions.Normal(mean, log_std.exp()), 2)
    actions = mean + 3 * torch.randn(5, *shape)  # far outside one std too
    torch.testing.assert_close(ours.log_prob(actions), ref.log_prob(actions))
    torch.testing.assert_close(ours.entropy(), ref.entropy())
    torch.testing.assert_close(ours.mode(), mean)


def test_gaussian_with_a_state_independent_log_std_broadcasts_it():
    mean = torch.randn(4, 6)
    log_std = torch.full((6,), -0.3)
    ours = DiagGaussian(mean, log_std, (6,))
    ref = torch.distributions.Independent(torch.distributions.Normal(mean, log_std.exp()), 1)
    actions = torch.randn(4, 6)
    torch.testing.assert_close(ours.log_prob(actions), ref.log_prob(actions))
    torch.testing.assert_close(ours.entropy(), ref.entropy())


def test_gaussian_samples_are_reproducible_and_have_the_policy_moments():
    mean, log_std = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.0, math.log(0.5)]])
    dist = DiagGaussian(mean, log_std, (2,))
    a = dist.sample(torch.Generator().manual_seed(1), num=20000)
    b = dist.sample(torch.Generator().manual_seed(1), num=20000)
    assert a.shape == (1, 20000, 2) and torch.equal(a, b)
    torch.testing.assert_close(a.mean(1), mean, atol=0.03, rtol=0)
    torch.testing.assert_close(a.std(1), log_std.exp(), atol=0.03, rtol=0)
    assert dist.sample(torch.Generator().manual_seed(1)).shape == (1, 2)


def test_multi_categorical_is_a_product_of_masked_categoricals():
    torch.manual_seed(0)
    nvec = (3, 2, 4)
    logits = torch.randn(6, sum(nvec))
    mask = torch.rand(6, sum(nvec)) < 0.7
    mask[:, [0, 3, 5]] = True  # a legal action in every component
    dist = MultiCategorical(logits, nvec, mask)
    parts = [
        torch.distributions.Categorical(logits=chunk.masked_fill(~legal, float("-inf")))
        for chunk, legal in zip(logits.split(nvec, -1), mask.split(nvec, -1))
    ]
    actions = dist.sample(torch.Generator().manual_seed(0))
    assert actions.shape == (6, 3)
    for c, legal in enumerate(mask.split(nvec, -1)):  # only legal actions are drawn
        assert legal.gather(1, actions[:, c : c + 1]).all()
    expected = sum(p.log_prob(actions[:, c]) for c, p in enumerate(parts))
    torch.testing.assert_close(dist.log_prob(actions), expected)
    entropy = torch.stack(
        [torch.where(p.probs > 0, -p.probs * p.logits, torch.zeros(())).sum(-1) for p in parts]
    ).sum(0)
    torch.testing.assert_close(dist.entropy(), entropy)
    mode = torch.stack([p.probs.argmax(-1) for p in parts], dim=-1)
    assert torch.equal(dist.mode(), mode)


def test_action_space_of_each_kind_reads_the_pool_spec():
    pendulum = pyenvpool.make("Pendulum-v1", 1)
    squared = pyenvpool.make("Squared-v0", 1, multi_discrete=True)
    maze = pyenvpool.make("Maze-v0", 1)
    box = ActionSpace.from_spec(pendulum.spec)
    assert (box.kind, box.num_params, box.shape, box.dtype) == ("box", 2, (1,), torch.float32)
    multi = ActionSpace.from_spec(squared.spec)
    assert (multi.num_params, multi.shape, multi.dtype) == (6, (2,), torch.long)
    assert isinstance(multi.distribution(torch.zeros(3, 6)), MultiCategorical)
    discrete = ActionSpace.from_spec(maze.spec)
    assert (discrete.num_params, discrete.shape) == (4, ())
    assert isinstance(discrete.distribution(torch.zeros(3, 4)), MaskedCategorical)


def test_box_actions_reach_the_env_clipped_to_the_bounds():
    space = ActionSpace.from_spec(pyenvpool.make("Pendulum-v1", 1).spec)
    samples = torch.tensor([[-3.5], [0.25], [2.0], [7.0]])
    env = space.to_env(samples)
    assert env.dtype == np.float32
    np.testing.assert_array_equal(env[:, 0], [-2.0, 0.25, 2.0, 2.0])
    assert samples[0, 0] == -3.5  # the stored sample is untouched
