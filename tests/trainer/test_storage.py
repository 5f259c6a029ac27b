"""Rollout storage: preallocated tensors, copies out of engine views."""

from __future__ import annotations

import numpy as np
import torch

import pyenvpool
from trainer.storage import RolloutStorage, copy_obs


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
