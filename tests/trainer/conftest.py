"""Fixtures for trainer tests: synthetic specs shaped like the contract's tasks,
and tiny configs that train in well under a second."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pyenvpool import FieldSpec, Spec
from trainer.config import resolve


def field(name: str, shape: tuple, dtype, low=0, high=1) -> FieldSpec:
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        lo, hi = np.zeros(shape, bool), np.ones(shape, bool)
    else:
        lo, hi = np.full(shape, low, dtype), np.full(shape, high, dtype)
    return FieldSpec(name, shape, dtype, lo, hi)


@pytest.fixture
def maze_spec() -> Spec:
    """Maze-v0's observation layout (contract section 3)."""
    fields = [
        field("walls", (10, 10), np.bool_),
        field("agent_position", (2,), np.int32, 0, 9),
        field("target_position", (2,), np.int32, 0, 9),
        field("step_count", (), np.int32, 0, 100),
        field("action_mask", (4,), np.bool_),
    ]
    return Spec("Maze-v0", {f.name: f for f in fields}, 4, {})


@pytest.fixture
def binpack_spec() -> Spec:
    """BinPack-v0's observation layout (contract section 3)."""
    fields = [
        field("ems", (40, 6), np.float32),
        field("ems_mask", (40,), np.bool_),
        field("items", (20, 3), np.float32),
        field("items_mask", (20,), np.bool_),
        field("items_placed", (20,), np.bool_),
        field("action_mask", (800,), np.bool_),
    ]
    return Spec("BinPack-v0", {f.name: f for f in fields}, 800, {})


def _random_obs(spec: Spec, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Observations of the spec's shapes and dtypes, with plausible values."""
    g = np.random.default_rng(seed)
    out = {}
    for name, f in spec.fields.items():
        shape = (batch, *f.shape)
        if f.dtype == np.bool_:
            value = g.random(shape) < 0.5
        elif f.dtype.kind == "i":
            value = g.integers(f.low.min(), f.high.max() + 1, size=shape).astype(f.dtype)
        else:
            value = g.random(shape).astype(f.dtype)
        out[name] = torch.from_numpy(np.ascontiguousarray(value))
    if "action_mask" in out:
        out["action_mask"][:, 0] = True  # at least one legal action per row
    return out


@pytest.fixture
def random_obs():
    """random_obs(spec, batch, seed=0): observations of the spec's shapes and dtypes."""
    return _random_obs


@pytest.fixture
def tiny_config():
    """A CartPole config that runs a few updates in a fraction of a second."""

    def make(**flags):
        base = {
            "task": "CartPole-v1",
            "num_envs": 8,
            "num_steps": 16,
            "total_steps": 8 * 16 * 4,
            "eval_interval": 256,
            "eval_episodes": 4,
            "eval_num_envs": 4,
            "checkpoint_interval": 256,
            "tensorboard": False,
            "plot": False,
            "console_interval": 1e9,
            "task_kwargs": {"max_episode_steps": 40},
        }
        base.update(flags)
        return resolve(flags=base)

    return make


def pytest_collection_modifyitems(config, items):
    """Long learning runs (``@pytest.mark.slow``) run only when asked for: ``pytest -m slow``."""
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="a long learning run: pytest -m slow runs it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
