"""Training envs: per-episode seeding and exact save/restore by replay."""

from __future__ import annotations

import numpy as np

from trainer.envs import TrainingEnvs, episode_seeds


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
        envs.start_new_episodes(terminated | truncated)
    return out


def test_episode_seeds_are_distinct_and_depend_on_the_run_seed():
    seeds = episode_seeds(1, np.arange(1000))
    assert len(set(seeds.tolist())) == 1000
    assert not np.array_equal(seeds, episode_seeds(2, np.arange(1000)))


def test_restored_envs_continue_bit_for_bit():
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 2, size=(120, 16))
    kwargs = {"max_episode_steps": 30}
    reference = TrainingEnvs("CartPole-v1", 16, 7, kwargs)
    expected = run(reference, actions)
    first = TrainingEnvs("CartPole-v1", 16, 7, kwargs)
    run(first, actions[:70])
    state = first.state_dict()
    assert state["history"].shape[1] <= 30  # only the current episodes are kept
    restored = TrainingEnvs("CartPole-v1", 16, 7, kwargs, num_threads=1)
    restored.load_state_dict(state)
    assert np.array_equal(restored.obs["obs"], first.obs["obs"])
    got = run(restored, actions[70:])
    for a, b in zip(expected[70:], got):
        for x, y in zip(a, b):
            assert np.array_equal(x, y)
    for envs in (reference, first, restored):
        envs.close()


def test_episodes_start_from_their_own_seed():
    envs = TrainingEnvs("CartPole-v1", 4, 3)
    first = envs.obs["obs"].copy()
    again = TrainingEnvs("CartPole-v1", 4, 3)
    assert np.array_equal(first, again.obs["obs"])
    other = TrainingEnvs("CartPole-v1", 4, 4)
    assert not np.array_equal(first, other.obs["obs"])
    for e in (envs, again, other):
        e.close()
