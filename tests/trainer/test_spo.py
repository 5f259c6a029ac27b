"""SPO: search targets, critic targets, the update, snapshot accounting,
checkpoints (exact resume, fork), config overlays and a CLI smoke run."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from trainer import checkpoint
from trainer.config import ConfigError, resolve
from trainer.envs import TrainingEnvs
from trainer.mpo import dual_value
from trainer.networks import build_agent
from trainer.spo import SPO, critic_targets, dense_target, search_config
from trainer.train import Trainer

ROOT = Path(__file__).resolve().parents[2]
# The checkout goes on the child's path only when it holds a development
# build (pyenvpool/_core*.so); otherwise the child imports the installed package.
IN_PLACE = [str(ROOT)] if any((ROOT / "pyenvpool").glob("_core*.so")) else []


# A tiny Maze run: updates take a fraction of a second.
TINY_RUN = {
    "task": "Maze-v0",
    "num_envs": 4,
    "num_steps": 8,
    "total_steps": 4 * 8 * 4,
    "eval_interval": 64,
    "eval_episodes": 4,
    "eval_num_envs": 4,
    "checkpoint_interval": 0,
    "tensorboard": False,
    "plot": False,
    "console_interval": 1e9,
    "env_threads": 1,
    "conv_channels": "4,4",
    "hidden_sizes": "16",
    "task_kwargs": {"time_limit": 12},  # truncations happen in a short run
}


def spo_config(**flags):
    """A Maze SPO config whose updates take a fraction of a second."""
    search = {"num_particles": 4, "search_depth": 2, "resample_period": 2}
    replay = {"replay_size": 4 * 16, "sample_sequences": 4, "sample_sequence_length": 4}
    return resolve(
        flags={**TINY_RUN, "algo": "spo", **search, **replay, "gradient_steps": 2, **flags}
    )


def make_algo(config):
    torch.manual_seed(config.seed)
    envs = TrainingEnvs(config.task, config.num_envs, config.seed, config.task_kwargs, 1)
    agent = build_agent(envs.spec, config.network)
    return SPO(config, envs, agent, torch.device("cpu"))


def test_dense_target_sums_particle_weights_per_action():
    actions = torch.tensor([[2, 0, 2, 2]])
    weights = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    assert torch.allclose(dense_target(actions, weights, 4), torch.tensor([[0.2, 0.0, 0.8, 0.0]]))


# --------------------------------------------------------- critic targets
def test_critic_targets_bootstrap_truncation_but_not_termination():
    # One sequence of 4 steps: step 1 terminates, step 2 is truncated (its
    # bootstrap value is V(final_obs) = 5), step 3 is the sequence end.
    gamma, lam = 0.9, 0.5
    v = torch.tensor([1.0, 2.0, 3.0, 4.0])[:, None]
    boot = torch.tensor([2.0, 7.0, 5.0, 6.0])[:, None]  # V(bootstrap obs of each step)
    r = torch.tensor([1.0, 1.0, 0.0, 2.0])[:, None]
    term = torch.tensor([False, True, False, False])[:, None]
    trunc = torch.tensor([False, False, True, False])[:, None]
    got = critic_targets(v, boot, r, term, trunc, gamma, lam)[:, 0]
    d3 = 2.0 + gamma * 6.0 - 4.0  # sequence end: one-step TD
    d2 = 0.0 + gamma * 5.0 - 3.0  # truncated: bootstraps V(final_obs), cuts the recursion
    d1 = 1.0 + 0.0 - 2.0  # terminated: no bootstrap
    d0 = 1.0 + gamma * 2.0 - 1.0
    gae = [d0 + gamma * lam * d1, d1, d2, d3]
    expected = torch.tensor(gae) + v[:, 0]
    assert torch.allclose(got, expected)


# ------------------------------------------------------------- the update
def test_one_update_changes_network_duals_and_moves_target_by_tau():
    algo = make_algo(spo_config())
    before = {k: v.clone() for k, v in algo.agent.state_dict().items()}
    target_before = {k: v.clone() for k, v in algo.target_agent.state_dict().items()}
    duals_before = (algo.log_temperature.item(), algo.log_alpha.item())
    out = algo.iteration(0)
    metrics = out["trainer"]
    assert metrics["gradient_steps"] == 2
    for name in ["policy_loss", "critic_loss", "kl", "temperature", "alpha", "ess_depth_1"]:
        assert np.isfinite(metrics[name]), name
    after = algo.agent.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert (algo.log_temperature.item(), algo.log_alpha.item()) != duals_before
    # Target network: tau-averaged, so it moved, but much less than the online one.
    tau = algo.spo.tau
    moved_target = sum(
        (algo.target_agent.state_dict()[k] - target_before[k]).abs().sum() for k in before
    )
    moved_online = sum((after[k] - before[k]).abs().sum() for k in before)
    assert 0 < moved_target < 4 * tau * moved_online
    assert algo.replay.size == algo.config.num_steps


def test_polyak_update_is_exact():
    algo = make_algo(spo_config(gradient_steps=1))
    algo.collect()
    target_before = {k: v.clone() for k, v in algo.target_agent.state_dict().items()}
    algo.update(0)
    tau = algo.spo.tau
    for k, v in algo.agent.state_dict().items():
        expected = target_before[k] + tau * (v - target_before[k])
        assert torch.allclose(algo.target_agent.state_dict()[k], expected, atol=1e-7), k


def test_duals_stay_above_the_floor():
    algo = make_algo(spo_config(dual_learning_rate=1e3, gradient_steps=4))
    with torch.no_grad():
        algo.log_temperature.fill_(-17.999)
        algo.log_alpha.fill_(-17.999)
    algo.iteration(0)
    assert algo.log_temperature.item() >= -18 and algo.log_alpha.item() >= -18


def test_iterations_leak_no_snapshots_and_take_only_legal_actions():
    algo = make_algo(spo_config())
    pool = algo.envs.pool
    before = pool.snapshot_count
    for update in range(3):
        algo.iteration(update)
        assert pool.snapshot_count == before
    rows = algo.replay.size
    actions = algo.replay.tensors["actions"][:rows]
    mask = algo.replay.tensors["obs.action_mask"][:rows]
    assert bool(torch.gather(mask, 2, actions[..., None]).all())
    # The stored targets put no mass on illegal actions either.
    target = dense_target(
        algo.replay.tensors["root_actions"][:rows], algo.replay.tensors["weights"][:rows], 4
    )
    assert float(target[~mask].sum()) == 0.0
    assert torch.allclose(target.sum(-1), torch.ones(rows, algo.config.num_envs))


def test_truncated_transitions_store_the_final_observation():
    algo = make_algo(spo_config(total_steps=4 * 8 * 2))
    algo.collect()
    algo.collect()
    t = algo.replay.tensors
    rows = algo.replay.size
    trunc = t["truncated"][:rows]
    assert trunc.any(), "the 12-step limit should truncate within 16 steps"
    # The bootstrap obs of a truncated step is its final state (step count 12),
    # not the next episode's first observation (step count 0).
    assert bool((t["next_obs.step_count"][:rows][trunc] == 12).all())
    assert bool((t["obs.step_count"][:rows][trunc] == 11).all())


# ------------------------------------------------------------ checkpoints
def run_trainer(config, run_dir, **kwargs):
    trainer = Trainer.new(config, run_dir, progress=False)
    try:
        return trainer.run(**kwargs)
    finally:
        trainer.close()


def events(run_dir):
    skip = {"wall_time", "train_time", "time", "duration", "steps_per_second"}
    out = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        e = json.loads(line)
        out.append(
            {
                k: v
                for k, v in e.items()
                if k not in skip
                and not k.endswith("_time")
                and not k.endswith("_duration")
                and not k.startswith("search_")
                and not k.endswith("per_second")
            }
        )
    return out


def test_resume_is_bit_for_bit(tmp_path):
    config = spo_config(total_steps=4 * 8 * 5, eval_interval=64)
    run_trainer(config, tmp_path / "straight")
    summary = run_trainer(config, tmp_path / "stopped", max_updates=2)
    assert summary["stop_reason"] == "paused"
    saved = checkpoint.load(tmp_path / "stopped")
    assert saved["state"]["algorithm"]["replay"]["size"] == 16  # the replay is in the checkpoint
    assert "target_network" in saved["optimizer"] and "log_temperature" in saved["optimizer"]
    trainer = Trainer.resume(tmp_path / "stopped", progress=False)
    trainer.run()
    trainer.close()
    assert events(tmp_path / "straight") == events(tmp_path / "stopped")
    a, b = checkpoint.load(tmp_path / "straight"), checkpoint.load(tmp_path / "stopped")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k in a["optimizer"]["target_network"]:
        assert torch.equal(a["optimizer"]["target_network"][k], b["optimizer"]["target_network"][k])
    assert torch.equal(a["optimizer"]["log_temperature"], b["optimizer"]["log_temperature"])
    assert torch.equal(a["optimizer"]["log_alpha"], b["optimizer"]["log_alpha"])
    ra, rb = (
        a["state"]["algorithm"]["replay"]["tensors"],
        b["state"]["algorithm"]["replay"]["tensors"],
    )
    assert all(torch.equal(ra[k], rb[k]) for k in ra)


def test_fork_carries_duals_and_target_but_not_the_replay(tmp_path):
    run_trainer(spo_config(), tmp_path / "first")
    source = checkpoint.load(tmp_path / "first")
    config = spo_config(gradient_steps=1)
    trainer = Trainer.fork(source, config, tmp_path / "fork", progress=False)
    try:
        algo = trainer.algo
        assert torch.equal(algo.log_temperature.detach(), source["optimizer"]["log_temperature"])
        for k, v in algo.target_agent.state_dict().items():
            assert torch.equal(v, source["optimizer"]["target_network"][k])
        assert algo.replay.size == 0
    finally:
        trainer.close()


def test_evaluation_searches_and_compares_with_greedy(tmp_path):
    run_trainer(spo_config(), tmp_path / "run")
    evals = [e for e in events(tmp_path / "run") if e["category"] == "EVALUATOR"]
    assert evals and all("greedy_mean_return" in e and "success_rate" in e for e in evals)
    trainer_events = [e for e in events(tmp_path / "run") if e["category"] == "TRAINER"]
    assert {"temperature", "alpha", "kl", "ess_depth_0", "ess_depth_1"} <= set(trainer_events[0])
    raw = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert 0.0 <= raw["search_simulate_share"] <= 1.0 and raw["search_time"] > 0


# ----------------------------------------------------------------- config
def test_spo_overlay_applies_only_with_algo_spo():
    ppo = resolve(flags={"task": "Maze-v0"})
    spo = resolve(flags={"task": "Maze-v0", "algo": "spo"})
    assert ppo.algo == "ppo" and ppo.num_envs == 128
    assert spo.algo == "spo" and spo.num_envs == 32 and spo.spo.replay_size == 16384
    assert spo.spo.num_particles == 16 and spo.spo.search_depth == 4
    # Flags still win over the overlay.
    assert resolve(flags={"task": "Maze-v0", "algo": "spo", "num_envs": 8}).num_envs == 8
    binpack = resolve(flags={"task": "BinPack-v0", "algo": "spo"})
    assert binpack.gamma == 1.0 and binpack.network.architecture == "binpack_attention"


def test_spo_config_validation():
    with pytest.raises(ConfigError, match="sample_sequence_length"):
        spo_config(replay_size=8)
    with pytest.raises(ConfigError, match="num_particles"):
        spo_config(num_particles=0)
    with pytest.raises(ConfigError, match="search_gamma"):
        spo_config(search_gamma=1.5)


def test_search_discount_follows_the_critics_unless_set():
    """The search's advantages are the critic's TD errors: r + gamma V(s') - V(s)."""
    squared = resolve(flags={"task": "Squared-v0", "algo": "spo"})  # no overlay
    assert squared.gamma == 0.9 and search_config(squared, training=True).gamma == 0.9
    # The Maze overlay sets Stoix's 1.0 (measured better there); flags win too.
    assert search_config(spo_config(gamma=0.9), training=True).gamma == 1.0
    assert search_config(spo_config(search_gamma=0.5), training=True).gamma == 0.5


# -------------------------------------------------------------- CLI smoke
def test_cli_smoke_run_on_maze(tmp_path):
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(IN_PLACE + [os.environ.get("PYTHONPATH", "")])
    )
    args = [
        "--task", "Maze-v0", "--algo", "spo", "--num-envs", "8", "--num-steps", "8",
        "--total-steps", "256", "--eval-interval", "128", "--eval-episodes", "4",
        "--eval-num-envs", "4", "--checkpoint-interval", "128", "--num-particles", "8",
        "--replay-size", "256", "--sample-sequences", "4", "--sample-sequence-length", "8",
        "--gradient-steps", "2", "--env-threads", "1", "--no-progress", "--no-tensorboard",
        "--run-dir", "runs/spo",
    ]  # fmt: skip
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "trainer.cli", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - start < 60
    run = tmp_path / "runs" / "spo"
    assert "budget: 256 env steps" in result.stdout
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["algo"] == "spo" and "spo" in config and "ppo" not in config
    categories = [json.loads(line)["category"] for line in (run / "metrics.jsonl").open()]
    assert {"TRAINER", "ACTOR", "MISC", "EVALUATOR"} <= set(categories)
    assert (run / "checkpoints" / "latest" / "model.pt").is_file()
    meta = json.loads((run / "checkpoints" / "latest" / "metadata.json").read_text())
    assert meta["algo"] == "spo"
    out = subprocess.run(
        [sys.executable, "-m", "trainer.cli", "--evaluate", "runs/spo/checkpoints/latest",
         "--eval-episodes", "4", "--eval-num-envs", "4"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0 and "SMC search" in out.stdout, out.stdout + out.stderr


def test_deduplicated_network_calls_match_the_full_batch():
    from trainer.spo import distinct_rows, policy_value_fn

    config = spo_config()
    algo = make_algo(config)
    obs = {k: np.repeat(np.array(v), 3, axis=0) for k, v in algo.envs.obs.items()}
    first, inverse = distinct_rows(obs)
    assert len(first) <= config.num_envs and len(inverse) == 3 * config.num_envs
    with torch.no_grad():
        full = policy_value_fn(algo.agent, torch.device("cpu"), dedupe=False)(obs)
        deduped = policy_value_fn(algo.agent, torch.device("cpu"), dedupe=True)(obs)
    for a, b in zip(full, deduped):
        assert torch.allclose(a, b, atol=1e-6)


def ppo_twin(**flags):
    """A PPO config with spo_config's task, network and sizes."""
    run = {**TINY_RUN, "total_steps": 4 * 8 * 2, "num_minibatches": 2, "eval_interval": 0}
    return resolve(flags={**run, **flags})


def test_fork_from_a_ppo_checkpoint_warm_starts_spo_with_the_weights_only(tmp_path):
    run_trainer(ppo_twin(), tmp_path / "ppo")
    source = checkpoint.load(tmp_path / "ppo")
    assert source["metadata"]["algo"] == "ppo"
    config = spo_config()
    trainer = Trainer.fork(source, config, tmp_path / "spo", progress=False)
    try:
        algo = trainer.algo
        for k, v in trainer.agent.state_dict().items():
            assert torch.equal(v, source["model"][k]), k
            assert torch.equal(algo.target_agent.state_dict()[k], v), k  # target = the weights
        assert float(algo.temperature) == pytest.approx(config.spo.init_temperature)
        assert algo.replay.size == 0
        trainer.run()
    finally:
        trainer.close()
    assert checkpoint.load(tmp_path / "spo")["metadata"]["algo"] == "spo"


def test_a_fork_into_spo_applies_the_spo_defaults_of_the_task():
    base = resolve(flags={"task": "BinPack-v0"}).model_dump()
    config = resolve(flags={"algo": "spo", "init_temperature": 0.01}, base=base)
    overlay = yaml.safe_load((ROOT / "trainer" / "configs" / "BinPack-v0.spo.yaml").read_text())
    assert config.algo == "spo" and config.num_envs == overlay["num_envs"]
    assert config.spo.num_particles == overlay["spo"]["num_particles"]
    assert config.spo.init_temperature == 0.01  # flags still win
    same = resolve(flags={"learning_rate": 1e-4}, base=base)  # same algorithm: no overlay
    assert same.num_envs == base["num_envs"]


def test_the_binpack_fine_tune_config_forks_a_ppo_run_into_spo():
    base = resolve(flags={"task": "BinPack-v0"}).model_dump()
    path = ROOT / "trainer" / "configs" / "examples" / "BinPack-v0-spo-finetune.yaml"
    config = resolve(config_file=path, base=base)  # --fork CKPT --config FILE
    overlay = yaml.safe_load((ROOT / "trainer" / "configs" / "BinPack-v0.spo.yaml").read_text())
    assert config.algo == "spo" and config.num_envs == overlay["num_envs"]
    assert config.spo.init_temperature == 0.01 and config.spo.dirichlet_fraction == 0.0
    assert config.spo.spo_learning_rate == 1e-4 and config.spo.sample_sequences == 64
    assert config.network == resolve(flags={"task": "BinPack-v0"}).network


def test_evaluating_a_ppo_checkpoint_with_the_search(tmp_path, capsys):
    from click.testing import CliRunner

    from trainer.cli import main
    from trainer.evaluate import evaluate_checkpoint

    run_trainer(ppo_twin(), tmp_path / "ppo")
    args = ["--evaluate", str(tmp_path / "ppo"), "--algo", "spo", "--num-particles", "4"]
    args += ["--eval-episodes", "4", "--eval-num-envs", "4", "--init-temperature", "0.25"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "SMC search, 4 particles x depth 4, eta 0.25" in result.output
    assert "4 episodes" in result.output
    flags = {"algo": "spo", "eval_episodes": 4, "eval_num_envs": 4, "num_particles": 4}
    with pytest.raises(checkpoint.CheckpointError, match="architecture"):
        evaluate_checkpoint(tmp_path / "ppo", {**flags, "hidden_sizes": [32]})


# ------------------------------------------------------------ Box actions
PENDULUM_RUN = {
    "task": "Pendulum-v1",
    "algo": "spo",
    "num_envs": 4,
    "num_steps": 8,
    "total_steps": 4 * 8 * 4,
    "eval_interval": 0,
    "eval_episodes": 2,
    "eval_num_envs": 2,
    "checkpoint_interval": 0,
    "tensorboard": False,
    "plot": False,
    "console_interval": 1e9,
    "env_threads": 1,
    "hidden_sizes": "16",
    "num_particles": 4,
    "search_depth": 2,
    "resample_period": 2,
    "replay_size": 4 * 16,
    "sample_sequences": 4,
    "sample_sequence_length": 4,
    "gradient_steps": 2,
    "task_kwargs": {"max_episode_steps": 12},
}


def pendulum_spo(**flags):
    return make_algo(resolve(flags={**PENDULUM_RUN, **flags}))


def test_box_update_learns_mean_and_std_with_their_own_duals():
    algo = pendulum_spo()
    assert algo.log_alpha.shape == (1,) and algo.log_alpha_std.shape == (1,)
    assert float(dual_value(algo.log_alpha_std.detach())) == pytest.approx(500.0)
    before = {k: v.clone() for k, v in algo.agent.state_dict().items()}
    duals = [d.detach().clone() for d in algo.duals]
    metrics = algo.iteration(0)["trainer"]
    assert metrics["gradient_steps"] == 2
    for name in ("policy_loss", "kl", "kl_std", "alpha", "alpha_std", "temperature"):
        assert np.isfinite(metrics[name]), name
    after = algo.agent.state_dict()
    assert not torch.equal(after["log_std"], before["log_std"])
    assert not torch.equal(after["actor.0.weight"], before["actor.0.weight"])
    assert all(not torch.equal(d, b) for d, b in zip(algo.duals, duals))
    t = algo.replay.tensors
    assert t["actions"].dtype == torch.float32 and t["actions"].shape[1:] == (4, 1)
    assert t["root_actions"].shape[1:] == (4, 4, 1)


def test_box_collect_stores_a_particle_root_action_and_sends_it_clipped():
    algo = pendulum_spo()
    with torch.no_grad():
        algo.agent.log_std.fill_(math.log(3.0))
    sent = []
    original_step = algo.envs.step

    def spy(actions, out=None):
        sent.append(actions.copy())
        return original_step(actions, out)

    algo.envs.step = spy
    pool = algo.envs.pool
    before = pool.snapshot_count
    algo.collect()
    assert pool.snapshot_count == before
    t = algo.replay.tensors
    stored = t["actions"][: algo.replay.size].numpy()
    assert (np.abs(stored) > 2).any()
    np.testing.assert_array_equal(np.stack(sent), np.clip(stored, -2.0, 2.0))
    roots = t["root_actions"][: algo.replay.size]  # [T, N, particles, 1]
    assert bool((roots == t["actions"][: algo.replay.size, :, None]).any(2).all())


def test_box_resume_is_bit_for_bit(tmp_path):
    config = resolve(flags={**PENDULUM_RUN, "total_steps": 4 * 8 * 5, "eval_interval": 64})
    run_trainer(config, tmp_path / "straight")
    run_trainer(config, tmp_path / "stopped", max_updates=2)
    trainer = Trainer.resume(tmp_path / "stopped", progress=False)
    trainer.run()
    trainer.close()
    assert events(tmp_path / "straight") == events(tmp_path / "stopped")
    a, b = checkpoint.load(tmp_path / "straight"), checkpoint.load(tmp_path / "stopped")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for name in ("log_temperature", "log_alpha", "log_alpha_std"):
        assert torch.equal(a["optimizer"][name], b["optimizer"][name]), name


def test_box_evaluation_searches_and_compares_with_greedy(tmp_path):
    run_trainer(resolve(flags=PENDULUM_RUN), tmp_path / "run")
    evals = [e for e in events(tmp_path / "run") if e["category"] == "EVALUATOR"]
    assert evals and {"mean_return", "greedy_mean_return"} <= set(evals[-1])
    trainer_events = [e for e in events(tmp_path / "run") if e["category"] == "TRAINER"]
    assert {"kl_std", "alpha_std"} <= set(trainer_events[-1])


def test_spo_refuses_multi_discrete_actions():
    with pytest.raises(ValueError, match="MultiDiscrete"):
        make_algo(spo_config(task="Squared-v0", task_kwargs={"multi_discrete": True},
                             conv_channels="", hidden_sizes="8"))  # fmt: skip
