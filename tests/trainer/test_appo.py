"""Asynchronous PPO: the lag bound, rollouts that are whole env sequences, envs of
uneven cost that never hold up the others, checkpoints that pause the actor,
and recurrent policies."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from trainer import checkpoint
from trainer.appo import AsyncPPO
from trainer.config import ConfigError
from trainer.envs import TrainingEnvs
from trainer.networks import build_agent
from trainer.train import Trainer


def appo_config(tiny_config, **flags):
    base = dict(algo="appo", num_envs=8, num_steps=16, total_steps=8 * 16 * 6, eval_interval=0)
    return tiny_config(**{**base, **flags})


def make_appo(config):
    envs = TrainingEnvs(config.task, config.num_envs, config.seed, config.task_kwargs, batch_size=1)
    torch.manual_seed(0)
    agent = build_agent(envs.spec, config.network)
    return AsyncPPO(config, envs, agent, torch.device("cpu")), envs


def trainer_events(run_dir, category):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["category"] == category]


@pytest.mark.parametrize("lag", [0, 0.5, 1, 2])
def test_no_step_is_collected_by_a_policy_older_than_the_lag_bound(tmp_path, tiny_config, lag):
    config = appo_config(tiny_config, max_policy_lag=lag, console_interval=0)
    trainer = Trainer.new(config, tmp_path / "run", progress=False)
    summary = trainer.run()
    trainer.close()
    assert summary["updates"] == 6
    lags = [e["policy_lag_max"] for e in trainer_events(tmp_path / "run", "TRAINER")]
    assert max(lags) <= np.ceil(lag)
    if lag == 0:
        weights = [e["importance_weight_max"] for e in trainer_events(tmp_path / "run", "TRAINER")]
        assert max(weights) == pytest.approx(1.0, abs=1e-4)  # on-policy data


def test_rollout_columns_are_consecutive_steps_of_one_env(tiny_config):
    # Memory-v0 with delay 2: a cue at t = 0, the query at t = 2, the answer
    # ends the episode. Each column of a rollout must show that rhythm, and
    # continue where the env's column of the previous rollout stopped.
    config = appo_config(tiny_config, task="Memory-v0", task_kwargs={"delay": 2}, num_steps=7)
    algo, envs = make_appo(config)
    last = None
    try:
        for update in range(3):
            algo.collect()
            s = algo.storage
            cue = s.obs["obs"][:, :, :4].sum(-1) > 0  # [T + 1, N]
            query = s.obs["obs"][:, :, 4] > 0
            assert torch.equal(s.terminated, query[:-1])  # the answer ends the episode
            assert torch.equal(cue[1:], s.terminated)  # and a new one starts with a cue
            assert int(s.terminated.sum()) >= config.num_envs * 2  # 7 steps: 2 or 3 episodes each
            if last is not None:
                assert torch.equal(s.obs["obs"][0], last)
            last = s.obs["obs"][-1].clone()
            algo.update(update)
    finally:
        algo.close()
        envs.close()


def make_slow_env_zero(tiny_config, lag):
    """Delay-v0 with 8 envs and 4-step rollouts: env 0 busy-waits 20 ms a
    step, the others not at all."""
    config = appo_config(
        tiny_config,
        task="Delay-v0",
        task_kwargs={"max_episode_steps": 10**6},
        num_steps=4,
        max_policy_lag=lag,
        num_minibatches=1,
    )
    algo, envs = make_appo(config)
    envs.pool.reset(env_ids=np.array([0]), instances={"delay_us": np.array([20_000], np.int32)})
    return algo, envs


def test_slow_envs_do_not_hold_up_the_others(tiny_config):
    # Stepped together, every env would move at env 0's pace; the actor keeps
    # the fast envs going up to the lag bound (one rollout ahead), so by the
    # time env 0 has finished the first rollout (4 steps, 80 ms) they are done
    # with two.
    algo, envs = make_slow_env_zero(tiny_config, lag=1)
    try:
        algo.collect()
        time.sleep(0.05)
        assert envs.env_steps >= 7 * 4 * 2 + 4
        assert int(algo.storage.rewards.sum()) == 8 * 4  # the first rollout: every env, 4 steps
    finally:
        algo.close()
        envs.close()


def test_a_fractional_lag_bounds_how_far_envs_run_into_the_next_rollout(tiny_config):
    # As above, with a lag of half a rollout: the fast envs stop 2 steps into
    # rollout 1 until the learner has learned rollout 0, and those 2 steps are
    # the only ones collected by the older policy.
    algo, envs = make_slow_env_zero(tiny_config, lag=0.5)
    try:
        assert len(algo.buffers) == 2
        algo.collect()
        time.sleep(0.05)  # env 0 takes 2 steps of rollout 1 at most
        assert 7 * 6 + 4 <= envs.env_steps <= 7 * 6 + 6
        algo.update(0)
        algo.collect()
        versions = algo.versions[1]
        assert (versions[:2, 1:] == 0).all()  # acted on before the update: one behind
        assert (versions[2:] == 1).all()  # the rest by the policy that learns from it
    finally:
        algo.close()
        envs.close()


def test_a_checkpoint_pauses_the_actor_and_the_run_resumes(tmp_path, tiny_config):
    config = appo_config(
        tiny_config, total_steps=8 * 16 * 6, recurrent="lstm", recurrent_size=8, num_minibatches=2
    )
    trainer = Trainer.new(config, tmp_path / "run", progress=False)
    assert trainer.run(max_updates=3)["stop_reason"] == "paused"
    trainer.close()
    saved = checkpoint.load(tmp_path / "run")
    assert "actor_generator" in saved["state"]["algorithm"]
    assert saved["state"]["algorithm"]["hidden"]["state"].abs().sum() > 0
    resumed = Trainer.resume(tmp_path / "run", progress=False)
    summary = resumed.run()
    resumed.close()
    assert summary["updates"] == 6 and summary["env_steps"] == config.total_steps


def test_appo_config_rules_and_sections(tiny_config):
    config = appo_config(tiny_config)
    assert config.ppo.advantage_estimator == "gae"  # appo uses V-trace whatever this says
    from trainer.config import to_dict

    record = to_dict(config)
    assert "ppo" in record and "appo" in record and "spo" not in record
    with pytest.raises(ConfigError, match="actor_batch_size"):
        appo_config(tiny_config, actor_batch_size=9)
