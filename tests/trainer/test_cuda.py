"""The CUDA paths of the trainer. Skipped without a GPU; run on one with
``pytest tests/trainer/test_cuda.py``.

Every network gives the same outputs and gradients on the GPU as on the CPU
(to float tolerance), PPO and SPO train, checkpoint, resume and evaluate on
the GPU, and a checkpoint written on the GPU loads and evaluates on the CPU.
"""

from __future__ import annotations

import pytest
import torch

from trainer import checkpoint
from trainer.config import NetworkConfig, resolve
from trainer.evaluate import evaluate_checkpoint
from trainer.networks import build_agent
from trainer.train import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

NETWORKS = [
    ("maze_spec", NetworkConfig(architecture="maze_cnn", conv_channels=[4, 4], hidden_sizes=[16])),
    ("maze_spec", NetworkConfig(architecture="maze_cnn", egocentric=True, conv_channels=[])),
    ("maze_spec", NetworkConfig(architecture="maze_vin", vin_iterations=12, hidden_sizes=[16])),
    ("binpack_spec", NetworkConfig(architecture="binpack_attention", num_heads=2, key_size=4)),
    ("maze_spec", NetworkConfig(architecture="mlp", hidden_sizes=[32, 32])),
]


@pytest.mark.parametrize(
    ("spec_name", "cfg"), NETWORKS, ids=lambda x: getattr(x, "architecture", x)
)
def test_networks_match_between_cpu_and_gpu(request, random_obs, spec_name, cfg):
    spec = request.getfixturevalue(spec_name)
    torch.manual_seed(0)
    cpu = build_agent(spec, cfg)
    gpu = build_agent(spec, cfg).cuda()
    gpu.load_state_dict(cpu.state_dict())
    obs = random_obs(spec, 64)
    logits_c, value_c = cpu(obs)
    logits_g, value_g = gpu({k: v.cuda() for k, v in obs.items()})
    torch.testing.assert_close(logits_g.cpu(), logits_c, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(value_g.cpu(), value_c, rtol=1e-3, atol=1e-4)
    (logits_c.sum() + value_c.sum()).backward()
    (logits_g.sum() + value_g.sum()).backward()
    for (name, p_c), p_g in zip(cpu.named_parameters(), gpu.parameters()):
        # Relative to the gradient's scale: sums over the batch reorder on the GPU.
        error = (p_g.grad.cpu() - p_c.grad).abs().max().item()
        scale = p_c.grad.abs().max().item()
        assert error <= 1e-3 * scale + 1e-5, (name, error, scale)


def _train_resume_evaluate(tmp_path, capsys, config):
    trainer = Trainer.new(config, tmp_path / "run", progress=False)
    assert next(trainer.agent.parameters()).is_cuda
    trainer.run(max_updates=2)
    trainer.close()
    resumed = Trainer.resume(tmp_path / "run", progress=False)
    assert next(resumed.agent.parameters()).is_cuda
    summary = resumed.run()
    resumed.close()
    # A GPU checkpoint loads and evaluates on a CPU-only setup too.
    saved = checkpoint.load(tmp_path / "run")
    assert all(not t.is_cuda for t in saved["model"].values())
    flags = {"device": "cpu", "eval_episodes": 4, "eval_num_envs": 4}
    assert "4 episodes" in "\n".join(evaluate_checkpoint(tmp_path / "run", flags).report())
    return summary


def test_ppo_on_maze_trains_resumes_and_evaluates_on_gpu(tmp_path, capsys, tiny_config):
    config = tiny_config(
        task="Maze-v0", device="cuda", num_minibatches=2, task_kwargs={"time_limit": 20}
    )
    summary = _train_resume_evaluate(tmp_path, capsys, config)
    assert summary["updates"] == 4


def test_spo_on_maze_trains_resumes_and_evaluates_on_gpu(tmp_path, capsys):
    config = resolve(
        flags={
            "task": "Maze-v0",
            "algo": "spo",
            "device": "cuda",
            "num_envs": 4,
            "num_steps": 8,
            "total_steps": 4 * 8 * 4,
            "eval_interval": 64,
            "eval_episodes": 4,
            "eval_num_envs": 4,
            "checkpoint_interval": 64,
            "tensorboard": False,
            "plot": False,
            "console_interval": 1e9,
            "conv_channels": "4,4",
            "hidden_sizes": "16",
            "num_particles": 4,
            "search_depth": 2,
            "resample_period": 2,
            "replay_size": 64,
            "sample_sequences": 4,
            "sample_sequence_length": 4,
            "gradient_steps": 2,
            "task_kwargs": {"time_limit": 12},
        }
    )
    summary = _train_resume_evaluate(tmp_path, capsys, config)
    assert summary["updates"] == 4
