"""Advantages: GAE against hand-computed examples (truncation bootstraps,
termination does not), negamax GAE for self-play, V-trace against a
hand-computed example and its on-policy limits (the n-step return, GAE), and
explained variance."""

from __future__ import annotations

import math

import torch

from trainer.advantages import compute_gae, compute_vtrace, explained_variance

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


# ------------------------------------------------------------------ V-trace
def test_vtrace_matches_hand_computation():
    # Two envs over three steps, gamma 0.9, rho bar 1, c bar 0.8, lambda 1,
    # reward 1 everywhere, V(s0..s2) = 0.5, 0.6, 0.7, bootstrap V(s3) = 0.4.
    # Env 0: step 1 truncates (V(final_obs) = 2.0); env 1: step 0 terminates
    # (its next value 5.0 must not be read). Importance weights pi/mu:
    # env 0: 2, 0.5, 1.5 -> rho 1, 0.5, 1 and c 0.8, 0.5, 0.8;
    # env 1: 0.25, 3, 1  -> rho 0.25, 1, 1 and c 0.25, 0.8, 0.8.
    rewards = torch.ones(3, 2)
    values = torch.tensor([[0.5, 0.5], [0.6, 0.6], [0.7, 0.7]])
    next_values = torch.tensor([[0.6, 5.0], [2.0, 0.7], [0.4, 0.4]])
    terminated = torch.tensor([[False, True], [False, False], [False, False]])
    truncated = torch.tensor([[False, False], [True, False], [False, False]])
    log_rhos = torch.tensor([[2.0, 0.25], [0.5, 3.0], [1.5, 1.0]]).log()
    advantages, targets = compute_vtrace(
        rewards, values, next_values, terminated, truncated, log_rhos, 0.9, 1.0, 0.8
    )
    # Env 0, backwards. t=2: delta = 1 + 0.9 * 0.4 - 0.7 = 0.66 = v - V = A.
    # t=1 (truncated; the trace stops): delta = 0.5 (1 + 0.9 * 2.0 - 0.6) = 1.1 = v - V = A.
    # t=0: delta = 1 + 0.9 * 0.6 - 0.5 = 1.04; v - V = 1.04 + 0.9 * 0.8 * 1.1 = 1.832;
    #      A = rho (r + gamma v_1 - V) = 1 + 0.9 * 1.7 - 0.5 = 2.03.
    # Env 1. t=2: 0.66 as above. t=1: delta = 1 + 0.9 * 0.7 - 0.6 = 1.03;
    #      v - V = 1.03 + 0.9 * 0.8 * 0.66 = 1.5052; A = 1 + 0.9 * 1.36 - 0.6 = 1.624.
    # t=0 (terminated: no bootstrap, no trace): delta = 0.25 (1 - 0.5) = 0.125 = v - V = A.
    expected_targets = torch.tensor(
        [[0.5 + 1.832, 0.5 + 0.125], [0.6 + 1.1, 0.6 + 1.5052], [1.36, 1.36]]
    )
    expected_advantages = torch.tensor([[2.03, 0.125], [1.1, 1.624], [0.66, 0.66]])
    torch.testing.assert_close(targets, expected_targets)
    torch.testing.assert_close(advantages, expected_advantages)


def random_rollout(steps: int = 7, envs: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    rewards, values, next_values = (
        torch.randn(steps, envs, generator=g).double() for _ in range(3)
    )
    ends = torch.rand(steps, envs, generator=g)
    terminated, truncated = ends < 0.15, (ends >= 0.15) & (ends < 0.3)
    return rewards, values, next_values, terminated, truncated


def test_on_policy_vtrace_without_clipping_is_the_n_step_return():
    # No episode ends: v_t = sum_k gamma^(k-t) r_k + gamma^(T-t) V(s_T).
    rewards, values, _, _, _ = random_rollout()
    steps = rewards.shape[0]
    next_values = torch.cat([values[1:], torch.randn(1, 4).double()])
    false = torch.zeros_like(rewards, dtype=torch.bool)
    on_policy = torch.zeros_like(rewards)
    advantages, targets = compute_vtrace(
        rewards, values, next_values, false, false, on_policy, 0.9, math.inf, math.inf
    )
    for t in range(steps):
        n_step = sum(0.9 ** (k - t) * rewards[k] for k in range(t, steps))
        n_step = n_step + 0.9 ** (steps - t) * next_values[-1]
        torch.testing.assert_close(targets[t], n_step)
        torch.testing.assert_close(advantages[t], n_step - values[t])


def test_on_policy_vtrace_is_gae_with_lambda_one_and_its_lambda_return():
    # With episode ends (terminated and truncated) too.
    rewards, values, next_values, terminated, truncated = random_rollout(seed=1)
    on_policy = torch.zeros_like(rewards)
    args = (rewards, values, next_values, terminated, truncated)
    advantages, targets = compute_vtrace(*args, on_policy, 0.95, math.inf, math.inf)
    gae_advantages, gae_returns = compute_gae(*args, 0.95, 1.0)
    torch.testing.assert_close(advantages, gae_advantages)
    torch.testing.assert_close(targets, gae_returns)
    # lambda < 1: the targets are GAE(lambda)'s returns (c_t = lambda).
    _, targets = compute_vtrace(*args, on_policy, 0.95, math.inf, math.inf, trace_lambda=0.8)
    torch.testing.assert_close(targets, compute_gae(*args, 0.95, 0.8)[1])
    # Clipping at 1 changes nothing on-policy (every weight is exactly 1).
    clipped = compute_vtrace(*args, on_policy, 0.95, 1.0, 1.0)
    torch.testing.assert_close(clipped[0], gae_advantages)


def test_negamax_vtrace_on_policy_is_negamax_gae():
    rewards, values, next_values, terminated, truncated = random_rollout(seed=2)
    args = (rewards, values, next_values, terminated, truncated)
    alternating = torch.tensor([True, False, True, False])
    advantages, targets = compute_vtrace(
        *args, torch.zeros_like(rewards), 0.9, math.inf, math.inf, negamax=alternating
    )
    gae = compute_gae(*args, 0.9, 1.0, negamax=alternating)
    torch.testing.assert_close(advantages, gae[0])
    torch.testing.assert_close(targets, gae[1])


def test_vtrace_clipping_bounds_off_policy_weights():
    # A behaviour policy far from pi (weights 5): with rho bar = c bar = 1 the
    # result equals that of on-policy data; with rho unclipped and c bar 0 (no
    # trace) the target is V + 5 times the TD error.
    rewards, values, next_values, terminated, truncated = random_rollout(seed=3)
    args = (rewards, values, next_values, terminated, truncated)
    far = torch.full_like(rewards, math.log(5.0))
    on = torch.zeros_like(rewards)
    torch.testing.assert_close(
        compute_vtrace(*args, far, 0.9, 1.0, 1.0)[1], compute_vtrace(*args, on, 0.9, 1.0, 1.0)[1]
    )
    _, targets = compute_vtrace(*args, far, 0.9, math.inf, 1e-30)
    delta = rewards + 0.9 * next_values * (~terminated) - values
    torch.testing.assert_close(targets, values + 5.0 * delta)


def test_explained_variance_of_perfect_mean_and_constant_targets():
    target = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(target, target) == 1.0
    assert explained_variance(torch.full((4,), 2.5), target) == 0.0  # the mean explains nothing
    assert math.isnan(explained_variance(target, torch.ones(4)))
