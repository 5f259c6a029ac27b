"""Advantages: GAE against hand-computed examples (truncation bootstraps,
termination does not), negamax GAE for self-play, and explained variance."""

from __future__ import annotations

import math

import torch

from trainer.advantages import compute_gae, explained_variance

ALTERNATING = torch.tensor([True])  # one env whose rows alternate between two players


def test_gae_matches_hand_computation():
    # Three envs over three steps, gamma 0.9, lambda 0.8, reward 1 everywhere.
    # Column 0: step 1 truncates (V(final_obs) = 2.0); column 1: step 1
    # terminates; column 2: no episode end. V(s0..s2) = 0.5, 0.6, 0.7 and the
    # bootstrap V(s3) = 0.4 in every column.
    rewards = torch.ones(3, 3)
    values = torch.tensor([[0.5] * 3, [0.6] * 3, [0.7] * 3])
    next_values = torch.tensor([[0.6] * 3, [2.0, 5.0, 0.7], [0.4] * 3])
    terminated = torch.tensor([[False] * 3, [False, True, False], [False] * 3])
    truncated = torch.tensor([[False] * 3, [True, False, False], [False] * 3])
    advantages, returns = compute_gae(rewards, values, next_values, terminated, truncated, 0.9, 0.8)
    expected = torch.tensor(
        [
            # delta0 + gamma*lambda*A1; A1 = delta1 (the recursion stops at an episode end)
            [1.04 + 0.72 * 2.2, 1.04 + 0.72 * 0.4, 1.04 + 0.72 * (1.03 + 0.72 * 0.66)],
            # truncated: 1 + 0.9 * V(final_obs) - V; terminated: 1 - V; else 1 + 0.9 * V(s2) - V
            [1.0 + 0.9 * 2.0 - 0.6, 1.0 - 0.6, 1.03 + 0.72 * 0.66],
            [1.0 + 0.9 * 0.4 - 0.7] * 3,
        ]
    )
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, expected + values)


def test_gae_lambda_one_is_discounted_return_with_bootstrap():
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.zeros(3, 1)
    next_values = torch.tensor([[0.0], [0.0], [10.0]])
    false = torch.zeros(3, 1, dtype=torch.bool)
    advantages, _ = compute_gae(rewards, values, next_values, false, false, 0.5, 1.0)
    torch.testing.assert_close(advantages[0, 0], torch.tensor(1 + 0.5 * 2 + 0.25 * 3 + 0.125 * 10))


# ------------------------------------------------------------------ negamax
def test_negamax_gae_matches_hand_computation():
    # One env, gamma 0.9, lambda 0.8. Steps 0-2 are one game: the first player
    # moves, then the second, then the first wins (reward 1, terminated).
    # Step 3 opens the next game; V(s4) = 0.3 bootstraps it. Values are each
    # from their mover's view: V(s0..s3) = 0.1, -0.2, 0.4, 0.05.
    rewards = torch.tensor([[0.0], [0.0], [1.0], [0.0]])
    values = torch.tensor([[0.1], [-0.2], [0.4], [0.05]])
    next_values = torch.tensor([[-0.2], [0.4], [9.0], [0.3]])  # 9.0: never read
    terminated = torch.tensor([[False], [False], [True], [False]])
    truncated = torch.zeros(4, 1, dtype=torch.bool)
    advantages, returns = compute_gae(
        rewards, values, next_values, terminated, truncated, 0.9, 0.8, negamax=ALTERNATING
    )
    # delta_t = r_t - 0.9 V(s_{t+1}) (1 - terminated_t) - V(s_t)
    # A_t = delta_t - 0.72 A_{t+1} (1 - done_t)
    a3 = 0.0 - 0.9 * 0.3 - 0.05  # -0.32
    a2 = 1.0 - 0.4  # 0.6: the winning move; the game ends here
    a1 = (0.0 - 0.9 * 0.4 + 0.2) - 0.72 * a2  # -0.16 - 0.432 = -0.592
    a0 = (0.0 + 0.9 * 0.2 - 0.1) - 0.72 * a1  # 0.08 + 0.42624 = 0.50624
    expected = torch.tensor([[a0], [a1], [a2], [a3]])
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, expected + values)
    torch.testing.assert_close(returns[:3, 0], torch.tensor([0.60624, -0.792, 1.0]))


def test_negamax_gae_with_lambda_one_gives_each_mover_its_result():
    # Undiscounted, lambda 1: every move's return is the game's result from its
    # mover's view, whatever the values. A 5-move game the first player wins,
    # then a 4-move game the second player wins.
    rewards = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]).unsqueeze(1)
    terminated = torch.tensor([0, 0, 0, 0, 1, 0, 0, 0, 1], dtype=torch.bool).unsqueeze(1)
    values = torch.randn(9, 1, generator=torch.Generator().manual_seed(0))
    next_values = torch.cat([values[1:], torch.zeros(1, 1)])
    false = torch.zeros(9, 1, dtype=torch.bool)
    args = (rewards, values, next_values, terminated, false, 1.0, 1.0)
    _, returns = compute_gae(*args, negamax=ALTERNATING)
    torch.testing.assert_close(
        returns[:, 0], torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0])
    )


def test_negamax_gae_bootstraps_truncation_from_the_opponents_view():
    # A truncated move: the final observation belongs to the opponent, whose
    # value 0.5 is worth -0.5 to the mover; the recursion stops there.
    rewards, values = torch.zeros(2, 1), torch.tensor([[0.2], [0.1]])
    next_values = torch.tensor([[0.5], [0.7]])
    truncated = torch.tensor([[True], [False]])
    false = torch.zeros(2, 1, dtype=torch.bool)
    args = (rewards, values, next_values, false, truncated, 0.9, 0.8)
    advantages, _ = compute_gae(*args, negamax=ALTERNATING)
    torch.testing.assert_close(advantages[0, 0], torch.tensor(-0.9 * 0.5 - 0.2))


def test_negamax_gae_without_alternation_is_ordinary_gae():
    # Envs where a learner meets an opponent inside the env: every row is the
    # learner's, so those columns get exactly compute_gae's result.
    g = torch.Generator().manual_seed(1)
    rewards, values, next_values = (torch.randn(6, 3, generator=g) for _ in range(3))
    terminated = torch.rand(6, 3, generator=g) < 0.3
    truncated = torch.zeros(6, 3, dtype=torch.bool)
    args = (rewards, values, next_values, terminated, truncated, 0.9, 0.8)
    alternating = torch.tensor([True, False, False])
    mixed, _ = compute_gae(*args, negamax=alternating)
    torch.testing.assert_close(mixed[:, 1:], compute_gae(*args)[0][:, 1:])
    every_env = torch.ones(3, dtype=torch.bool)
    torch.testing.assert_close(mixed[:, :1], compute_gae(*args, negamax=every_env)[0][:, :1])


def test_explained_variance_of_perfect_mean_and_constant_targets():
    target = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(target, target) == 1.0
    assert explained_variance(torch.full((4,), 2.5), target) == 0.0  # the mean explains nothing
    assert math.isnan(explained_variance(target, torch.ones(4)))
