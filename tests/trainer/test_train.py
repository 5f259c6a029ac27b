"""The training loop: run directory, exact resume, fork, interruption."""

from __future__ import annotations

import json
import os
import shutil
import signal

import pytest
import torch
import yaml

from trainer import checkpoint
from trainer.checkpoint import CheckpointError
from trainer.config import resolve
from trainer.train import RunError, RunFinished, Trainer

TIMING = {"wall_time", "train_time", "time", "duration", "steps_per_second", "env_steps_per_second"}


def events(run_dir):
    out = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        event = json.loads(line)
        out.append({k: v for k, v in event.items() if k not in TIMING and not k.endswith("_time")})
    return out


def train(config, run_dir, **kwargs):
    trainer = Trainer.new(config, run_dir, progress=False)
    try:
        return trainer.run(**kwargs)
    finally:
        trainer.close()


def final_state(run_dir):
    source = checkpoint.load(run_dir)
    return source["model"], source["optimizer"], source["state"]


def assert_same_state(a, b):
    (model_a, optim_a, state_a), (model_b, optim_b, state_b) = a, b
    for name in model_a:
        assert torch.equal(model_a[name], model_b[name]), name
    assert optim_a["step"] == optim_b["step"]
    for x, y in zip(
        optim_a["exp_avg"] + optim_a["exp_avg_sq"], optim_b["exp_avg"] + optim_b["exp_avg_sq"]
    ):
        assert torch.equal(x, y)
    assert torch.equal(state_a["algorithm"]["generator"], state_b["algorithm"]["generator"])
    assert torch.equal(state_a["envs"]["states"], state_b["envs"]["states"])
    ca, cb = dict(state_a["counters"]), dict(state_b["counters"])
    for key in ("wall_time", "train_time"):
        ca.pop(key), cb.pop(key)
    assert ca == cb


def test_run_directory_contents(tmp_path, tiny_config):
    config = tiny_config(plot=True)
    summary = train(config, tmp_path / "run")
    run = tmp_path / "run"
    assert summary["stop_reason"] == "budget" and summary["env_steps"] == config.total_steps
    assert yaml.safe_load((run / "config.yaml").read_text())["num_envs"] == 8
    categories = {e["category"] for e in events(run)}
    assert categories == {"TRAINER", "ACTOR", "EVALUATOR", "MISC"}
    assert (run / "learning_curve.png").is_file()
    folder = run / "checkpoints"
    assert checkpoint.pointer(folder, "latest").name == f"step_{config.total_steps}"
    assert checkpoint.pointer(folder, "best") is not None
    meta = json.loads((folder / "latest" / "metadata.json").read_text())
    assert meta["task"] == "CartPole-v1" and meta["algo"] == "ppo" and meta["update"] == 4
    assert meta["architecture"]["network"]["architecture"] == "mlp"
    assert meta["config"]["num_envs"] == 8


def test_a_seeded_cpu_run_is_reproducible(tmp_path, tiny_config):
    config = tiny_config()
    train(config, tmp_path / "a")
    train(config, tmp_path / "b")
    assert events(tmp_path / "a") == events(tmp_path / "b")
    assert_same_state(final_state(tmp_path / "a"), final_state(tmp_path / "b"))


def test_resume_continues_bit_for_bit(tmp_path, tiny_config):
    # N updates, stop, resume for M == N + M updates without stopping.
    config = tiny_config(total_steps=8 * 16 * 7, eval_interval=8 * 16 * 2, checkpoint_interval=0)
    train(config, tmp_path / "straight")
    summary = train(config, tmp_path / "stopped", max_updates=3)
    assert summary["stop_reason"] == "paused" and summary["updates"] == 3
    trainer = Trainer.resume(tmp_path / "stopped", progress=False)
    assert trainer.counters.update == 3
    resumed = trainer.run()
    trainer.close()
    assert resumed["updates"] == 7
    assert events(tmp_path / "straight") == events(
        tmp_path / "stopped"
    )  # no duplicates, same numbers
    assert_same_state(final_state(tmp_path / "straight"), final_state(tmp_path / "stopped"))


def test_resume_after_a_crash_drops_events_past_the_checkpoint(tmp_path, tiny_config):
    config = tiny_config(total_steps=8 * 16 * 6, checkpoint_interval=8 * 16 * 2, eval_interval=0)
    train(config, tmp_path / "straight")
    run = tmp_path / "crashed"
    train(config, run, max_updates=3)  # the pause checkpoint is at update 3 ...
    folder = run / "checkpoints"
    checkpoint.set_pointer(folder, "latest", folder / "step_256")  # ... pretend it never happened
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"category": "TRAINER", "env_steps": 9999')  # and the crash tore a line
    trainer = Trainer.resume(run, progress=False)
    assert trainer.counters.update == 2
    trainer.run()
    trainer.close()
    assert events(tmp_path / "straight") == events(run)
    assert_same_state(final_state(tmp_path / "straight"), final_state(run))


def test_resume_with_a_larger_budget_continues_the_schedule(tmp_path, tiny_config):
    config = tiny_config(total_steps=8 * 16 * 4)
    train(config, tmp_path / "run")
    frozen = (tmp_path / "run" / "config.yaml").read_bytes()
    trainer = Trainer.resume(tmp_path / "run", total_steps=8 * 16 * 8, progress=False)
    summary = trainer.run()
    trainer.close()
    assert summary["updates"] == 8
    lrs = [e["learning_rate"] for e in events(tmp_path / "run") if e["category"] == "TRAINER"]
    assert [e["update"] for e in events(tmp_path / "run") if e["category"] == "TRAINER"] == list(
        range(1, 9)
    )
    assert lrs[4] == pytest.approx(lrs[3] * (1 - 1 / 5))  # decays on from the last rate
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    # The frozen config stays as it was; the new budget is in the resume log
    # and in the checkpoints, where a later resume finds it.
    assert (tmp_path / "run" / "config.yaml").read_bytes() == frozen
    assert yaml.safe_load(frozen)["total_steps"] == 8 * 16 * 4
    (entry,) = [json.loads(line) for line in (tmp_path / "run" / "resumes.jsonl").open()]
    assert (entry["env_steps"], entry["previous_total_steps"], entry["total_steps"]) == (
        512,
        512,
        1024,
    )
    assert checkpoint.load(tmp_path / "run")["metadata"]["config"]["total_steps"] == 1024
    with pytest.raises(RunFinished, match="trained 1,024 env steps of its 1,024-step budget"):
        Trainer.resume(tmp_path / "run", progress=False)


def test_fork_starts_a_new_run_from_the_weights_with_new_settings(tmp_path, tiny_config):
    config = tiny_config()
    train(config, tmp_path / "parent")
    source = checkpoint.load(tmp_path / "parent" / "checkpoints" / "latest")
    forked_config = resolve(
        base=source["metadata"]["config"], flags={"learning_rate": 1e-4, "seed": 9}
    )
    trainer = Trainer.fork(source, forked_config, tmp_path / "child", progress=False)
    for name, tensor in trainer.agent.state_dict().items():
        assert torch.equal(tensor, source["model"][name])
    assert trainer.counters.update == 0
    summary = trainer.run()
    trainer.close()
    assert summary["env_steps"] == config.total_steps
    meta = json.loads((tmp_path / "child" / "checkpoints" / "latest" / "metadata.json").read_text())
    assert meta["forked_from"].endswith(f"step_{config.total_steps}")
    assert meta["config"]["ppo"]["learning_rate"] == 1e-4
    lrs = [e["learning_rate"] for e in events(tmp_path / "child") if e["category"] == "TRAINER"]
    assert lrs[0] == pytest.approx(1e-4)


def test_fork_refuses_another_architecture(tmp_path, tiny_config):
    train(tiny_config(), tmp_path / "parent")
    source = checkpoint.load(tmp_path / "parent")
    other = resolve(base=source["metadata"]["config"], flags={"hidden_sizes": "32,32"})
    with pytest.raises(
        CheckpointError, match=r"network.hidden_sizes: checkpoint \[64, 64\], this run \[32, 32\]"
    ):
        Trainer.fork(source, other, tmp_path / "child", progress=False)


def test_new_run_refuses_an_existing_run_dir(tmp_path, tiny_config):
    train(tiny_config(), tmp_path / "run")
    with pytest.raises(RunError, match="already holds a run"):
        Trainer.new(tiny_config(), tmp_path / "run")
    with pytest.raises(RunError, match="not a run directory"):
        Trainer.resume(tmp_path / "nothing")


def test_sigint_stops_after_the_update_and_checkpoints(tmp_path, tiny_config):
    config = tiny_config(total_steps=8 * 16 * 10, checkpoint_interval=0)
    trainer = Trainer.new(config, tmp_path / "run", progress=False)
    original = trainer.algo.iteration

    def iteration(update):
        result = original(update)
        if update == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return result

    trainer.algo.iteration = iteration
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when started in the background
    summary = trainer.run()
    trainer.close()
    assert summary["stop_reason"] == "interrupted" and summary["updates"] == 2
    assert checkpoint.pointer(tmp_path / "run" / "checkpoints", "latest").name == "step_256"
    assert signal.getsignal(signal.SIGINT) is before  # the trainer's handler is gone again


def test_target_return_stops_early(tmp_path, tiny_config):
    config = tiny_config(total_steps=8 * 16 * 20, eval_interval=128, target_return=1.0)
    summary = train(config, tmp_path / "run")
    assert summary["stop_reason"] == "target_return" and summary["updates"] == 1


@pytest.mark.parametrize("architecture", ["maze_cnn", "maze_vin"])
def test_maze_trains_and_resumes_bit_for_bit(tmp_path, tiny_config, architecture):
    # A masked task with generated instances: the envs' replay must rebuild the
    # mazes and positions exactly (and maze_vin's remembered value maps must
    # not make a resumed run differ).
    config = tiny_config(
        task="Maze-v0",
        task_kwargs={},
        architecture=architecture,
        conv_channels="4,4",
        vin_iterations=10,
        hidden_sizes="16",
        total_steps=8 * 16 * 5,
        eval_interval=8 * 16 * 2,
        eval_episodes=8,
    )
    train(config, tmp_path / "straight")
    train(config, tmp_path / "stopped", max_updates=2)
    trainer = Trainer.resume(tmp_path / "stopped", progress=False)
    trainer.run()
    trainer.close()
    assert events(tmp_path / "straight") == events(tmp_path / "stopped")
    assert_same_state(final_state(tmp_path / "straight"), final_state(tmp_path / "stopped"))
    evaluations = [e for e in events(tmp_path / "straight") if e["category"] == "EVALUATOR"]
    assert all(0.0 <= e["success_rate"] <= 1.0 and e["episodes"] == 8 for e in evaluations)


def test_resume_refuses_a_latest_pointer_that_leaves_the_run(tmp_path, tiny_config):
    first = Trainer.new(tiny_config(), tmp_path / "a", progress=False)
    first.run()
    first.close()
    outside = tmp_path / "elsewhere"
    shutil.copytree(os.path.realpath(tmp_path / "a" / "checkpoints" / "latest"), outside)
    (tmp_path / "a" / "checkpoints" / "latest").unlink()
    os.symlink(outside, tmp_path / "a" / "checkpoints" / "latest")
    with pytest.raises(RunError, match="points outside the run"):
        Trainer.resume(tmp_path / "a", progress=False)
