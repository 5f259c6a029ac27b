"""step(actions, out=...): the engine writes into arrays the caller owns."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def test_out_matches_default_path_and_fills_a_rollout_tensor(make_pool, rng):
    n, horizon = 64, 50
    a = make_pool("CartPole-v1", n, seed=4)
    b = make_pool("CartPole-v1", n, seed=4)
    a.reset()
    b.reset()
    rollout_obs = torch.zeros((horizon, n, 4))
    rollout_rew = torch.zeros((horizon, n))
    for t in range(horizon):
        actions = rng.integers(0, 2, n)
        out = {"obs": rollout_obs[t].numpy(), "reward": rollout_rew[t].numpy()}
        obs, reward, terminated, truncated, info = a.step(actions, out=out)
        assert np.shares_memory(obs["obs"], rollout_obs[t].numpy())
        assert np.shares_memory(reward, rollout_rew[t].numpy())
        ref = b.step(actions, copy=True)
        assert np.array_equal(rollout_obs[t].numpy(), ref[0]["obs"])
        assert np.array_equal(rollout_rew[t].numpy(), ref[1])
        assert np.array_equal(terminated, ref[2]) and np.array_equal(truncated, ref[3])
        done = terminated | truncated
        assert np.array_equal(info["final_obs"]["obs"][done], ref[4]["final_obs"]["obs"][done])
    # Earlier slots were not overwritten by later steps.
    assert len(torch.unique(rollout_obs[:, 0, 0])) > horizon // 2


@pytest.mark.parametrize(
    "out, error, message",
    [
        ({"obs": np.zeros((8, 4), np.float64)}, TypeError, "dtype float32"),
        ({"obs": np.zeros((7, 4), np.float32)}, ValueError, r"shape \(8, 4\)"),
        ({"obs": np.zeros((8, 5), np.float32)}, ValueError, "shape"),
        ({"obs": np.zeros((8, 8), np.float32)[:, ::2]}, ValueError, "C-contiguous"),
        ({"reward": np.zeros(8, np.float64)}, TypeError, "float32"),
        ({"terminated": np.zeros(8, np.int8)}, TypeError, "bool"),
        ({"obz": np.zeros((8, 4), np.float32)}, ValueError, "unknown key 'obz'"),
        ({"obs": [[0.0] * 4] * 8}, TypeError, "numpy array"),
        ([np.zeros((8, 4), np.float32)], TypeError, "dict"),
    ],
)
def test_bad_out_buffers(make_pool, out, error, message):
    pool = make_pool("CartPole-v1", 8)
    pool.reset()
    with pytest.raises(error, match=message):
        pool.step(np.zeros(8, np.int32), out=out)
    pool.step(np.zeros(8, np.int32))


def test_read_only_out_is_rejected(make_pool):
    pool = make_pool("CartPole-v1", 8)
    pool.reset()
    buf = np.zeros((8, 4), np.float32)
    buf.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        pool.step(np.zeros(8, np.int32), out={"obs": buf})
