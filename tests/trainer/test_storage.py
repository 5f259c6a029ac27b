"""Rollout storage (preallocated tensors, copies out of engine views) and the replay ring."""

from __future__ import annotations

import numpy as np
import torch

import pyenvpool
from trainer.storage import ReplayBuffer, RolloutStorage, copy_obs


def test_copy_obs_copies_views_so_the_next_step_cannot_change_them():
    pool = pyenvpool.make("CartPole-v1", 4, seed=0)
    obs, _ = pool.reset()
    storage = RolloutStorage(pool.spec, 2, 4, torch.device("cpu"))
    row = {name: t[0] for name, t in storage.obs.items()}
    copy_obs(row, obs)
    before = storage.obs["obs"][0].clone()
    assert np.array_equal(before.numpy(), obs["obs"])
    pool.step(np.ones(4, np.int64))  # rewrites the views in place
    assert not np.array_equal(before.numpy(), obs["obs"])
    assert torch.equal(storage.obs["obs"][0], before)
    pool.close()


def test_storage_is_allocated_once_in_the_fields_dtypes(binpack_spec):
    storage = RolloutStorage(binpack_spec, 3, 5, torch.device("cpu"))
    assert storage.obs["ems"].shape == (4, 5, 40, 6) and storage.obs["ems"].dtype == torch.float32
    assert storage.obs["action_mask"].dtype == torch.bool
    flat = storage.flat()
    assert flat["obs"]["ems"].shape == (15, 40, 6)
    assert flat["obs"]["ems"].data_ptr() == storage.obs["ems"].data_ptr()  # views, no copy
    assert flat["actions"].shape == (15,)


# ----------------------------------------------------------------- replay
class TinySpec:
    num_actions = 3

    class _F:
        def __init__(self, shape, dtype):
            self.shape, self.dtype = shape, np.dtype(dtype)

    fields = {"x": _F((), np.float32), "action_mask": _F((3,), np.bool_)}


def replay_row(t, num_envs=2, particles=2):
    return {
        "obs.x": np.full(num_envs, t, np.float32),
        "obs.action_mask": np.ones((num_envs, 3), bool),
        "next_obs.x": np.full(num_envs, t + 1, np.float32),
        "next_obs.action_mask": np.ones((num_envs, 3), bool),
        "actions": np.arange(num_envs) % 3,
        "rewards": np.full(num_envs, 10.0 * t, np.float32) + np.arange(num_envs),
        "terminated": np.zeros(num_envs, bool),
        "truncated": np.zeros(num_envs, bool),
        "root_actions": torch.zeros(num_envs, particles, dtype=torch.long),
        "weights": torch.full((num_envs, particles), 1.0 / particles),
        "advantages": torch.full((num_envs, particles), float(t)),
    }


def test_replay_samples_consecutive_steps_of_one_env_oldest_first():
    buf = ReplayBuffer(TinySpec, capacity=5, num_envs=2, num_particles=2, device="cpu")
    assert not buf.can_sample(3)
    for t in range(8):  # wraps: holds t = 3..7, the next write goes to row 3
        buf.add(replay_row(t))
    assert len(buf) == 10 and buf.size == 5 and buf.pos == 3
    g = torch.Generator().manual_seed(0)
    batch = buf.sample(50, 3, g)
    x, rewards = batch["obs.x"], batch["rewards"]
    assert x.shape == (3, 50)
    assert torch.equal(x[1:] - x[:-1], torch.ones(2, 50))  # consecutive in time
    assert x.min() >= 3 and x.max() <= 7  # only what the ring still holds
    env = rewards - 10.0 * x  # the env index, constant along a sequence
    assert torch.equal(env, env[:1].expand_as(env)) and set(env[0].tolist()) == {0.0, 1.0}
    assert torch.equal(batch["next_obs.x"], x + 1)
    assert batch["advantages"].shape == (3, 50, 2)


def test_replay_state_round_trip():
    buf = ReplayBuffer(TinySpec, capacity=5, num_envs=2, num_particles=2, device="cpu")
    for t in range(7):
        buf.add(replay_row(t))
    other = ReplayBuffer(TinySpec, capacity=5, num_envs=2, num_particles=2, device="cpu")
    other.load_state_dict(buf.state_dict())
    a = buf.sample(8, 4, torch.Generator().manual_seed(1))
    b = other.sample(8, 4, torch.Generator().manual_seed(1))
    assert all(torch.equal(a[k], b[k]) for k in a)
