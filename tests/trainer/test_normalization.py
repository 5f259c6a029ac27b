"""Running observation and reward normalisation: the statistics against SB3's,
the frozen statistics in evaluations, and exact resume with them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pyenvpool
from trainer import checkpoint
from trainer.config import resolve
from trainer.evaluate import evaluate_checkpoint
from trainer.networks import build_agent
from trainer.normalization import (
    ObservationNormalizer,
    RewardNormalizer,
    RunningMeanStd,
    update_observation_statistics,
)
from trainer.train import Trainer

sb3 = pytest.importorskip("stable_baselines3")


def test_running_statistics_match_sb3():
    from stable_baselines3.common.running_mean_std import RunningMeanStd as Reference

    rng = np.random.default_rng(0)
    ours, ref = RunningMeanStd((3,)), Reference(shape=(3,))
    for size in (1, 7, 64, 5):
        batch = rng.normal(2.0, 3.0, (size, 3))
        ref.update(batch)
        ours.update(torch.from_numpy(batch.mean(0)), torch.from_numpy(batch.var(0)), float(size))
    np.testing.assert_allclose(ours.mean.numpy(), ref.mean, rtol=1e-12)
    np.testing.assert_allclose(ours.var.numpy(), ref.var, rtol=1e-12)
    assert float(ours.count) == pytest.approx(ref.count)


def test_reward_scaling_matches_sb3_vec_normalize():
    """Our RewardNormalizer fed the env's rewards and episode ends scales them as
    SB3's VecNormalize does on the same pool (Pendulum truncates at 200 steps)."""
    from stable_baselines3.common.vec_env import VecNormalize

    import pyenvpool.sb3

    gamma, n = 0.9, 4
    venv = VecNormalize(
        pyenvpool.sb3.make_vec_env("Pendulum-v1", n, seed=3),
        norm_obs=False,
        norm_reward=True,
        gamma=gamma,
        clip_reward=10.0,
    )
    venv.reset()
    ours = RewardNormalizer(n, gamma, 10.0, torch.device("cpu"))
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(450):
        _, scaled, dones, _ = venv.step(rng.uniform(-2, 2, (n, 1)).astype(np.float32))
        raw = torch.from_numpy(venv.get_original_reward().astype(np.float32))
        mine = ours(raw, torch.from_numpy(dones))
        np.testing.assert_allclose(mine.numpy(), scaled, rtol=1e-6)
        ends += int(dones.sum())
    assert ends == 2 * n
    np.testing.assert_allclose(float(ours.statistics.var), venv.ret_rms.var, rtol=1e-9)
    venv.close()


def test_observation_normalizer_standardises_float_fields_only_and_clips():
    pool = pyenvpool.make("Maze-v0", 1)  # int and bool fields: untouched
    assert len(ObservationNormalizer(pool.spec, 5.0).statistics) == 0
    spec = pyenvpool.make("Pendulum-v1", 1).spec
    norm = ObservationNormalizer(spec, 5.0)
    data = torch.randn(1000, 3, dtype=torch.float64) * torch.tensor([1.0, 2.0, 8.0]) + 3.0
    norm.update({"obs": data.float()})
    z = norm({"obs": data.float()})["obs"]
    assert z.dtype == torch.float32
    torch.testing.assert_close(z.mean(0), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(3), atol=1e-3, rtol=0)
    far = norm({"obs": torch.full((1, 3), 1e6)})["obs"]
    assert torch.equal(far, torch.full((1, 3), 5.0))


def test_the_network_reads_frozen_statistics_and_the_algorithm_moves_them():
    config = resolve(flags={"task": "Pendulum-v1", "normalize_observation": True})
    pool = pyenvpool.make("Pendulum-v1", 8, seed=0)
    agent = build_agent(pool.spec, config.network)
    obs = {"obs": torch.from_numpy(pool.reset()[0]["obs"].copy()) * 10}
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    first = agent(obs)
    assert all(torch.equal(before[k], v) for k, v in agent.state_dict().items())
    update_observation_statistics(agent, obs)
    stats = agent.normalizer.statistics["obs"]
    assert float(stats.count) > 8 and not torch.equal(
        stats.mean, before["normalizer.statistics.obs.mean"]
    )
    assert not torch.equal(agent(obs)[0], first[0])


def pendulum_run(**flags):
    base = {
        "task": "Pendulum-v1",
        "num_envs": 4,
        "num_steps": 32,
        "total_steps": 4 * 32 * 6,
        "eval_interval": 4 * 32 * 2,
        "eval_episodes": 2,
        "eval_num_envs": 2,
        "checkpoint_interval": 0,
        "tensorboard": False,
        "plot": False,
        "console_interval": 1e9,
        "normalize_observation": True,
        "normalize_reward": True,
        "task_kwargs": {"max_episode_steps": 50},
    }
    return resolve(flags={**base, **flags})


SPO_FLAGS = {
    "algo": "spo",
    "num_particles": 4,
    "search_depth": 2,
    "resample_period": 2,
    "replay_size": 4 * 32 * 2,
    "sample_sequences": 4,
    "sample_sequence_length": 8,
    "gradient_steps": 2,
}


def run(config, run_dir, **kwargs):
    trainer = Trainer.new(config, run_dir, progress=False)
    try:
        return trainer.run(**kwargs)
    finally:
        trainer.close()


@pytest.mark.parametrize("algo_flags", [{}, SPO_FLAGS], ids=["ppo", "spo"])
def test_resume_is_bit_exact_with_normalisation_statistics(tmp_path, algo_flags):
    config = pendulum_run(**algo_flags)
    straight = run(config, tmp_path / "straight")
    run(config, tmp_path / "stopped", max_updates=3)
    trainer = Trainer.resume(tmp_path / "stopped", progress=False)
    resumed = trainer.run()
    trainer.close()
    assert resumed["updates"] == straight["updates"] == 6
    timeless = [
        {k: v for k, v in r["last_eval"].items() if "duration" not in k}
        for r in (resumed, straight)
    ]
    assert timeless[0] == timeless[1]
    a, b = checkpoint.load(tmp_path / "straight"), checkpoint.load(tmp_path / "stopped")
    stats = [k for k in a["model"] if k.startswith("normalizer.")]
    assert len(stats) == 3  # mean, var, count of the one float field
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    algorithm_a, algorithm_b = a["state"]["algorithm"], b["state"]["algorithm"]
    for key in ("reward_returns",):
        assert torch.equal(algorithm_a[key], algorithm_b[key])
    for key, tensor in algorithm_a["reward_statistics"].items():
        assert torch.equal(tensor, algorithm_b["reward_statistics"][key]), key
    # The return statistics saw every env's return at every step.
    assert float(algorithm_a["reward_statistics"]["count"]) == pytest.approx(6 * 32 * 4 + 1e-4)


def test_evaluation_uses_the_frozen_statistics(tmp_path):
    config = pendulum_run(total_steps=4 * 32 * 2, eval_interval=0)
    trainer = Trainer.new(config, tmp_path / "run", progress=False)
    summary = trainer.run()
    stats = {k: v.clone() for k, v in trainer.agent.state_dict().items()}
    again = trainer.evaluate()
    assert all(torch.equal(stats[k], v) for k, v in trainer.agent.state_dict().items())
    trainer.close()
    assert again["mean_return"] == summary["last_eval"]["mean_return"]
    # --evaluate rebuilds the network, statistics included, from the checkpoint.
    saved = evaluate_checkpoint(tmp_path / "run")
    assert saved.result["mean_return"] == summary["last_eval"]["mean_return"]
