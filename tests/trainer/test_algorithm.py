"""The Algorithm interface: every table entry implements it, PPO and SPO are
siblings, the base class composes an update, and the loop trains, evaluates,
checkpoints and resumes an algorithm it knows only through the interface."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer import checkpoint
from trainer.algorithm import Algorithm, Rollout, algorithm_class
from trainer.config import ALGORITHMS
from trainer.envs import TrainingEnvs
from trainer.networks import build_agent
from trainer.train import Trainer

TRAINER = Path(__file__).resolve().parents[2] / "trainer"


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_every_algorithm_in_the_table_implements_the_interface(name):
    cls = algorithm_class(name)
    assert issubclass(cls, Algorithm) and not inspect.isabstract(cls)
    assert set(cls.PER_RANK_STATE) >= {"generator"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_ppo_and_spo_import_nothing_from_each_other():
    assert "trainer.spo" not in imported_modules(TRAINER / "ppo.py")
    assert "trainer.ppo" not in imported_modules(TRAINER / "spo.py")


def test_the_loop_and_the_algorithms_probe_for_nothing():
    for name in ("train.py", "ppo.py", "spo.py", "algorithm.py", "evaluate.py"):
        source = (TRAINER / name).read_text()
        assert "hasattr(" not in source and "getattr(self.algo" not in source, name


class Scripted(Algorithm):
    """A new algorithm in a few lines: it plays the first legal action and
    learns nothing, but draws one number per update from its generator."""

    def __init__(self, config, envs, agent, device, world=None):
        super().__init__(config, envs, agent, device, world)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.draws: list[float] = []

    def collect(self) -> Rollout:
        returns = []
        for _ in range(self.config.num_steps):
            actions = np.zeros(self.envs.num_envs, np.int64)
            _, _, terminated, truncated, info = self.envs.step(actions)
            returns.append(info["episode_return"][terminated | truncated])
        return {
            "episode_returns": np.concatenate(returns).astype(np.float64),
            "episode_lengths": np.zeros(sum(len(r) for r in returns), np.int64),
            "rollout_time": 0.0,
            "env_time": 0.0,
            "inference_time": 0.0,
            "storage_time": 0.0,
            "trainer": {"collected": 1.0},
        }

    def update(self, update: int) -> dict[str, float]:
        self.draws.append(float(torch.rand(1, generator=self.generator)))
        return {"draw": self.draws[-1]}

    def diagnostics(self) -> dict[str, float]:
        return {"updates_done": float(len(self.draws))}

    def optimizer_state_dict(self):
        return {}

    def load_optimizer_state_dict(self, state):
        pass

    def state_dict(self):
        return {"generator": self.generator.get_state(), "num_updates": self.num_updates}

    def load_state_dict(self, state):
        self.generator.set_state(state["generator"])
        self.num_updates = int(state["num_updates"])


def test_iteration_times_the_update_and_merges_the_metrics_in_order(tiny_config):
    config = tiny_config()
    envs = TrainingEnvs(config.task, config.num_envs, config.seed, config.task_kwargs)
    algo = Scripted(config, envs, build_agent(envs.spec, config.network), torch.device("cpu"))
    out = algo.iteration(0)
    envs.close()
    assert list(out["trainer"]) == ["draw", "collected", "updates_done"]
    assert out["update_time"] >= 0.0 and out["episode_returns"].size > 0
    assert algo.num_updates == 4  # tiny_config: 512 steps of 8 envs x 16 steps


def test_the_loop_runs_a_new_algorithm_through_the_interface(tmp_path, tiny_config, monkeypatch):
    monkeypatch.setattr("trainer.train.algorithm_class", lambda name: Scripted)
    config = tiny_config(total_steps=8 * 16 * 6, eval_interval=0, checkpoint_interval=0)
    straight = Trainer.new(config, tmp_path / "straight", progress=False)
    assert straight.run()["updates"] == 6
    straight.close()
    paused = Trainer.new(config, tmp_path / "paused", progress=False)
    paused.run(max_updates=2)
    paused.close()
    resumed = Trainer.resume(tmp_path / "paused", progress=False)
    summary = resumed.run()
    resumed.close()
    assert summary["updates"] == 6 and summary["last_eval"]["episodes"] == 4
    assert resumed.algo.draws == straight.algo.draws[2:]  # the generator resumed
    saved = checkpoint.load(tmp_path / "paused")
    assert saved["state"]["algorithm"]["num_updates"] == 6
