"""The embedded CartPole-v1 default learns: greedy 100-episode mean >= 475 in
well under a minute (a few seconds on a 2-core machine)."""

from __future__ import annotations

import time

import pytest
import torch

from trainer.config import resolve
from trainer.train import Trainer


def test_cartpole_default_reaches_475(tmp_path):
    config = resolve(flags={"task": "CartPole-v1", "target_return": 475.0, "tensorboard": False})
    start = time.perf_counter()
    trainer = Trainer.new(config, tmp_path / "run", progress=False)
    summary = trainer.run()
    trainer.close()
    elapsed = time.perf_counter() - start
    assert summary["best_return"] >= 475.0, summary
    assert summary["stop_reason"] == "target_return"
    assert elapsed < 60.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_path_trains_resumes_and_evaluates(tmp_path, tiny_config):
    config = tiny_config(device="cuda", total_steps=8 * 16 * 4)
    trainer = Trainer.new(config, tmp_path / "run", progress=False)
    assert trainer.algo.storage.step_out(0) is None  # device storage: copies, not out=
    trainer.run(max_updates=2)
    trainer.close()
    resumed = Trainer.resume(tmp_path / "run", progress=False)
    summary = resumed.run()
    resumed.close()
    assert summary["updates"] == 4 and summary["last_eval"]["episodes"] == 4


def test_connect_four_self_play_beats_random_quickly(tmp_path):
    """The embedded ConnectFour-v0 default, trained by self-play for about
    half a million moves, beats the uniformly random player at least 90 % of
    the time as first and as second mover (greedy, 200 games per side)."""
    flags = {
        "task": "ConnectFour-v0",
        "total_steps": 524_288,
        "eval_interval": 0,
        "eval_episodes": 400,
        "checkpoint_interval": 0,
        "tensorboard": False,
        "plot": False,
    }
    config = resolve(flags=flags)
    start = time.perf_counter()
    trainer = Trainer.new(config, tmp_path / "run", progress=False)
    summary = trainer.run()
    trainer.close()
    elapsed = time.perf_counter() - start
    last = summary["last_eval"]
    assert last["random_first_win"] >= 0.9 and last["random_second_win"] >= 0.9, last
    assert elapsed < 180.0
