"""Truncation bootstrapping from final_obs, the PPO update's bookkeeping, and
negamax GAE in self-play envs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainer.advantages import compute_gae
from trainer.envs import TrainingEnvs
from trainer.networks import build_agent
from trainer.ppo import PPO
from trainer.selfplay import SelfPlayEnvs
from trainer.storage import RolloutStorage


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
    ppo.set_num_updates(20, update=5)  # double the budget before update 5
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
def test_self_play_ppo_uses_negamax_gae(tiny_config):
    config = tiny_config(task="ConnectFour-v0", self_play=True, task_kwargs={})
    envs = SelfPlayEnvs(config.task, config.num_envs, config.seed)
    ppo = PPO(config, envs, build_agent(envs.spec, config.network), torch.device("cpu"))
    envs.prepare_rollout(ppo.agent, 0)
    ppo.collect()
    s = ppo.storage
    args = (s.rewards, s.values[:-1], s.next_values(), s.terminated, s.truncated)
    gamma, gae_lambda = config.gamma, config.ppo.gae_lambda
    ppo.update(0)
    every_env = torch.ones(config.num_envs, dtype=torch.bool)
    expected, _ = compute_gae(*args, gamma, gae_lambda, negamax=every_env)
    torch.testing.assert_close(s.advantages, expected)
    assert not torch.allclose(s.advantages, compute_gae(*args, gamma, gae_lambda)[0])
    envs.close()


@pytest.mark.parametrize("recurrent", ["none", "lstm"])
def test_vtrace_on_the_policys_own_rollout_is_gaes_lambda_return(tiny_config, recurrent):
    """advantage_estimator: vtrace re-evaluates the rollout with the current
    network, which collected it: the log-probs, the values and V(final_obs) of
    the truncated rows come out as collected, every importance weight is 1, and
    the targets are GAE's lambda-returns."""
    config = tiny_config(
        advantage_estimator="vtrace",
        recurrent=recurrent,
        recurrent_size=8,
        num_minibatches=2,
        gae_lambda=0.9,
        num_steps=32,
        task_kwargs={"max_episode_steps": 16},
    )
    envs = TrainingEnvs(config.task, config.num_envs, config.seed, config.task_kwargs)
    ppo = PPO(config, envs, build_agent(envs.spec, config.network), torch.device("cpu"))
    ppo.collect()
    s = ppo.storage
    assert s.truncated.any() and s.terminated.any()
    with torch.no_grad():
        logprobs, values, metrics = ppo._vtrace()
    close = {"atol": 1e-5, "rtol": 1e-5}
    torch.testing.assert_close(logprobs, s.logprobs, **close)
    torch.testing.assert_close(values, s.values[:-1], **close)
    _, returns = compute_gae(
        s.rewards, s.values[:-1], s.next_values(), s.terminated, s.truncated, config.gamma, 0.9
    )
    torch.testing.assert_close(s.returns, returns, atol=1e-4, rtol=1e-5)
    assert metrics["importance_weight_max"] == pytest.approx(1.0, abs=1e-4)
    ppo.update(0)  # and the update runs on them
    envs.close()


# ----------------------------------------------------------- action spaces
def pendulum_ppo(tiny_config, **flags):
    config = tiny_config(task="Pendulum-v1", task_kwargs={}, **flags)
    envs = TrainingEnvs(config.task, config.num_envs, config.seed, config.task_kwargs)
    torch.manual_seed(0)
    agent = build_agent(envs.spec, config.network)
    return PPO(config, envs, agent, torch.device("cpu")), envs, agent


def test_box_rollout_clips_env_actions_and_keeps_the_unclipped_log_prob(tiny_config):
    """The env receives the sample clipped to [-2, 2]; the storage keeps the
    unclipped sample and its log-probability under the Gaussian policy."""
    ppo, envs, agent = pendulum_ppo(tiny_config)
    with torch.no_grad():
        agent.log_std.fill_(math.log(3.0))  # wide: many samples leave the bounds
    sent = []
    original_step = envs.step

    def spy(actions, out=None):
        sent.append(actions.copy())
        return original_step(actions, out)

    envs.step = spy
    ppo.collect()
    s = ppo.storage
    assert s.actions.shape == (16, 8, 1) and s.actions.dtype == torch.float32
    stored = s.actions.numpy()
    assert (np.abs(stored) > 2).mean() > 0.2
    received = np.stack(sent)
    assert received.dtype == np.float32
    np.testing.assert_array_equal(received, np.clip(stored, -2.0, 2.0))
    with torch.no_grad():
        params, _ = agent({"obs": s.obs["obs"][:-1].reshape(-1, 3)})
    mean = params[:, :1]
    expected = torch.distributions.Normal(mean, 3.0).log_prob(s.actions.reshape(-1, 1)).sum(-1)
    torch.testing.assert_close(s.logprobs.reshape(-1), expected)
    envs.close()


def test_box_update_learns_the_log_std_and_stays_finite(tiny_config):
    ppo, envs, agent = pendulum_ppo(tiny_config, ent_coef=0.1)
    before = agent.log_std.detach().clone()
    ppo.collect()
    metrics = ppo.update(0)
    assert all(np.isfinite(v) for v in metrics.values())
    assert not torch.equal(agent.log_std.detach(), before)
    envs.close()


def test_multi_discrete_rollout_stores_one_action_per_component(tiny_config):
    config = tiny_config(task="Squared-v0", task_kwargs={"multi_discrete": True})
    envs = TrainingEnvs(config.task, config.num_envs, config.seed, config.task_kwargs)
    agent = build_agent(envs.spec, config.network)
    ppo = PPO(config, envs, agent, torch.device("cpu"))
    ppo.collect()
    actions = ppo.storage.actions
    assert actions.shape == (16, 8, 2) and actions.dtype == torch.long
    assert set(actions.unique().tolist()) == {0, 1, 2}
    assert np.isfinite(ppo.update(0)["approx_kl"])
    envs.close()
