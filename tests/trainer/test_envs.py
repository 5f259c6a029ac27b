"""Training envs: exact save/restore through the engine's state export."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.envs import TrainingEnvs


def run(envs, actions):
    out = []
    for a in actions:
        obs, reward, terminated, truncated, info = envs.step(a)
        out.append(
            (
                obs["obs"].copy(),
                reward.copy(),
                terminated.copy(),
                truncated.copy(),
                info["episode_return"].copy(),
            )
        )
    return out


def test_restored_envs_continue_bit_for_bit():
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 2, size=(120, 16))
    kwargs = {"max_episode_steps": 30}
    reference = TrainingEnvs("CartPole-v1", 16, 7, kwargs)
    expected = run(reference, actions)
    first = TrainingEnvs("CartPole-v1", 16, 7, kwargs)
    run(first, actions[:70])
    state = first.state_dict()
    assert first.pool.snapshot_count == 0
    restored = TrainingEnvs("CartPole-v1", 16, 99, kwargs, num_threads=1)
    restored.load_state_dict(state)
    assert restored.pool.snapshot_count == 0
    assert np.array_equal(restored.obs["obs"], first.obs["obs"])
    got = run(restored, actions[70:])
    for a, b in zip(expected[70:], got):
        for x, y in zip(a, b):
            assert np.array_equal(x, y)
    for envs in (reference, first, restored):
        envs.close()


def test_states_of_another_configuration_are_refused():
    saved = TrainingEnvs("CartPole-v1", 4, 3).state_dict()
    with pytest.raises(ValueError, match="max_episode_steps=30"):
        TrainingEnvs("CartPole-v1", 4, 3, {"max_episode_steps": 30}).load_state_dict(saved)
    with pytest.raises(ValueError, match="4 envs"):
        TrainingEnvs("CartPole-v1", 8, 3).load_state_dict(saved)


def test_seed_decides_the_first_episodes():
    envs = TrainingEnvs("CartPole-v1", 4, 3)
    first = envs.obs["obs"].copy()
    again = TrainingEnvs("CartPole-v1", 4, 3)
    assert np.array_equal(first, again.obs["obs"])
    other = TrainingEnvs("CartPole-v1", 4, 4)
    assert not np.array_equal(first, other.obs["obs"])
    for e in (envs, again, other):
        e.close()
