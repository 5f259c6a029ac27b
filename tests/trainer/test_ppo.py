"""GAE against a hand-computed example, truncation bootstrapping from
final_obs, and the PPO update's bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.envs import TrainingEnvs
from trainer.networks import build_agent
from trainer.ppo import PPO, compute_gae, compute_negamax_gae
from trainer.storage import RolloutStorage


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


def test_next_values_use_final_values_on_truncated_rows():
    envs = TrainingEnvs("CartPole-v1", 2, 0)
    storage = RolloutStorage(envs.spec, 2, 2, torch.device("cpu"))
    storage.values[:] = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    storage.final_values[:] = -1.0
    storage.truncated[0, 1] = True
    torch.testing.assert_close(storage.next_values(), torch.tensor([[3.0, -1.0], [5.0, 6.0]]))
    envs.close()


def test_rollout_bootstraps_truncated_rows_from_final_obs(tiny_config):
    config = tiny_config(num_envs=4, num_steps=30, task_kwargs={"max_episode_steps": 10})
    envs = TrainingEnvs(config.task, config.num_envs, config.seed, config.task_kwargs)
    torch.manual_seed(0)
    agent = build_agent(envs.spec, config.network)
    ppo = PPO(config, envs, agent, torch.device("cpu"))
    finals = []
    original_step = envs.step

    def spy(actions, out=None):
        result = original_step(actions, out)
        finals.append({k: v.copy() for k, v in result[4]["final_obs"].items()})
        return result

    envs.step = spy
    ppo.collect()
    s = ppo.storage
    assert s.truncated.any(), "a 10-step limit must truncate within 30 steps"
    for t, n in s.truncated.nonzero().tolist():
        final = {"obs": torch.from_numpy(finals[t]["obs"][n : n + 1])}
        expected = agent.get_value(final)[0]
        assert s.final_values[t, n].item() == pytest.approx(expected.item(), abs=1e-6)
        # The next row already belongs to the new episode: its obs is not final_obs.
        assert not torch.equal(s.obs["obs"][t + 1, n], final["obs"][0])
    envs.close()


def test_update_reports_trainer_metrics_and_moves_parameters(tiny_config):
    config = tiny_config(update_epochs=2, num_minibatches=2, target_kl=None)
    envs = TrainingEnvs(config.task, config.num_envs, config.seed, config.task_kwargs)
    agent = build_agent(envs.spec, config.network)
    ppo = PPO(config, envs, agent, torch.device("cpu"))
    before = [p.detach().clone() for p in agent.parameters()]
    result = ppo.iteration(0)
    metrics = result["trainer"]
    expected = {
        "policy_loss",
        "value_loss",
        "entropy",
        "approx_kl",
        "clip_fraction",
        "grad_norm",
        "explained_variance",
        "learning_rate",
        "epochs",
    }
    assert expected <= set(metrics)
    assert metrics["epochs"] == 2
    assert metrics["learning_rate"] == pytest.approx(config.ppo.learning_rate)
    assert all(np.isfinite(v) for v in metrics.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.parameters()))
    envs.close()


def test_learning_rate_decays_linearly_and_re_anchors_on_a_new_budget(tiny_config):
    config = tiny_config(total_steps=8 * 16 * 10, learning_rate=1.0)
    envs = TrainingEnvs(config.task, config.num_envs, config.seed, config.task_kwargs)
    ppo = PPO(config, envs, build_agent(envs.spec, config.network), torch.device("cpu"))
    assert [ppo.learning_rate(u) for u in (0, 5, 9)] == pytest.approx([1.0, 0.5, 0.1])
    ppo.set_total_steps(8 * 16 * 20, update=5)  # double the budget before update 5
    assert ppo.learning_rate(4) == pytest.approx(0.6)  # the last rate used stays put
    assert ppo.learning_rate(5) == pytest.approx(0.6 * (1 - 1 / 16))
    assert ppo.learning_rate(12) == pytest.approx(0.6 * (1 - 8 / 16))
    envs.close()


def test_target_kl_stops_epochs_early(tiny_config):
    config = tiny_config(update_epochs=10, target_kl=1e-12, learning_rate=0.01)
    envs = TrainingEnvs(config.task, config.num_envs, config.seed, config.task_kwargs)
    ppo = PPO(config, envs, build_agent(envs.spec, config.network), torch.device("cpu"))
    assert ppo.iteration(0)["trainer"]["epochs"] == 1
    envs.close()


def test_out_buffers_and_copies_fill_storage_identically(tiny_config):
    # On the CPU the engine writes into storage (out=); elsewhere views are copied.
    config = tiny_config(num_envs=6, num_steps=40, task_kwargs={"max_episode_steps": 15})
    storages = []
    for use_out in (True, False):
        torch.manual_seed(0)
        envs = TrainingEnvs(config.task, config.num_envs, config.seed, config.task_kwargs)
        ppo = PPO(config, envs, build_agent(envs.spec, config.network), torch.device("cpu"))
        if not use_out:
            ppo.storage._step_out = None
        ppo.collect()
        ppo.collect()
        storages.append(ppo.storage)
        envs.close()
    a, b = storages
    assert a.truncated.any() and a.terminated.any()
    for name in ("actions", "logprobs", "values", "rewards", "terminated", "truncated"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert torch.equal(a.obs["obs"], b.obs["obs"])
    torch.testing.assert_close(a.final_values[a.truncated], b.final_values[b.truncated])


# ------------------------------------------------------------------ self-play
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
    advantages, returns = compute_negamax_gae(
        rewards, values, next_values, terminated, truncated, 0.9, 0.8
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
    _, returns = compute_negamax_gae(rewards, values, next_values, terminated, false, 1.0, 1.0)
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
    advantages, _ = compute_negamax_gae(rewards, values, next_values, false, truncated, 0.9, 0.8)
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
    mixed, _ = compute_negamax_gae(*args, alternating)
    torch.testing.assert_close(mixed[:, 1:], compute_gae(*args)[0][:, 1:])
    torch.testing.assert_close(mixed[:, :1], compute_negamax_gae(*args)[0][:, :1])


def test_self_play_ppo_uses_negamax_gae(tiny_config):
    config = tiny_config(task="ConnectFour-v0", self_play=True, task_kwargs={})
    envs = TrainingEnvs(config.task, config.num_envs, config.seed)
    ppo = PPO(config, envs, build_agent(envs.spec, config.network), torch.device("cpu"))
    ppo.collect()
    s = ppo.storage
    args = (s.rewards, s.values[:-1], s.next_values(), s.terminated, s.truncated)
    gamma, gae_lambda = config.gamma, config.ppo.gae_lambda
    ppo.update(0)
    expected, _ = compute_negamax_gae(*args, gamma, gae_lambda)
    torch.testing.assert_close(s.advantages, expected)
    assert not torch.allclose(s.advantages, compute_gae(*args, gamma, gae_lambda)[0])
    envs.close()
