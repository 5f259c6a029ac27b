"""Gymnasium's own vector-env tests, ported to GymnasiumVectorEnv.

Ported from Farama-Foundation/Gymnasium at commit 3f0476a8cc22 (tests/vector/):

- test_autoreset_mode.py: test_autoreset_next_step, test_autoreset_within_step,
  test_autoreset_disabled, test_autoreset_metadata, test_make_vec_autoreset;
- test_vector_env.py: test_random_seeding_basics, test_random_seeds_set_at_retrieval,
  test_partial_reset, test_partial_reset_failure, test_action_count_compatibility;
- test_sync_vector_env.py: test_metadata_sync_vector_env, test_reset_sync_vector_env,
  test_step_sync_vector_env, test_render_sync_vector, test_call_sync_vector_env,
  test_set_attr_sync_vector_env;
- test_vector_wrapper.py: test_vector_env_wrapper_inheritance,
  test_vector_env_wrapper_attributes, test_vector_env_metadata.

What changes is where the env is built. Upstream's counting test env
(GenericTestEnv: observation = steps since reset, reward = action, terminated
at a per-env max_count) becomes Delay-v0, whose observation counts the steps
since reset and which truncates at max_episode_steps with reward 1: the
expected observations are upstream's, the rewards are 1 (0 where NEXT_STEP
restarts), "terminated" reads "truncated", and upstream's max_count [2, 3, 3]
is made by resetting envs 1 and 2 one step after env 0. FrozenLake-v1 becomes
pyenvpool's CartPole-v1. Not ported: tests of AsyncVectorEnv, shared memory,
observation_mode, custom spaces and info merging, which are about Gymnasium's
own vectorisers. Two cases differ on purpose and say so: the seeds before any
seeded reset, and a first reset with a reset_mask.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")

from gymnasium.spaces import Box, Discrete, MultiDiscrete  # noqa: E402
from gymnasium.utils.env_checker import data_equivalence  # noqa: E402
from gymnasium.vector import AutoresetMode, VectorWrapper  # noqa: E402

import pyenvpool  # noqa: E402
from pyenvpool import GymnasiumVectorEnv  # noqa: E402


def counting_envs(mode: AutoresetMode) -> GymnasiumVectorEnv:
    """Three counters that end after 2, 3 and 3 steps, reset to 0 (upstream's
    GenericTestEnv with max_count [2, 3, 3]), after one step each."""
    envs = GymnasiumVectorEnv("Delay-v0", 3, autoreset_mode=mode, max_episode_steps=3)
    obs, info = envs.reset(seed=0)
    assert np.all(obs[:, 0] == [0, 0, 0]) and info == {}
    envs.step(np.ones(3, np.int64))
    obs, _ = envs.reset(options={"reset_mask": np.array([False, True, True])})
    assert np.all(obs[:, 0] == [1, 0, 0])
    return envs


def step(envs):
    obs, rewards, terminations, truncations, info = envs.step(np.ones(3, np.int64))
    assert not terminations.any()
    return obs[:, 0], rewards, truncations, info


# ------------------------------------------------------ test_autoreset_mode
def test_autoreset_next_step():
    envs = counting_envs(AutoresetMode.NEXT_STEP)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP

    obs, rewards, truncations, info = step(envs)
    assert np.all(obs == [2, 1, 1]) and np.all(rewards == [1, 1, 1])
    assert np.all(truncations == [False, False, False]) and info == {}

    obs, rewards, truncations, info = step(envs)
    assert np.all(obs == [3, 2, 2]) and np.all(rewards == [1, 1, 1])
    assert np.all(truncations == [True, False, False])

    obs, rewards, truncations, info = step(envs)
    assert np.all(obs == [0, 3, 3]) and np.all(rewards == [0, 1, 1])
    assert np.all(truncations == [False, True, True])

    obs, rewards, truncations, info = step(envs)
    assert np.all(obs == [1, 0, 0]) and np.all(rewards == [1, 0, 0])
    assert np.all(truncations == [False, False, False]) and info == {}
    envs.close()


def test_autoreset_within_step():
    envs = counting_envs(AutoresetMode.SAME_STEP)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP

    obs, rewards, truncations, info = step(envs)
    assert np.all(obs == [2, 1, 1]) and np.all(rewards == [1, 1, 1])
    assert np.all(truncations == [False, False, False]) and info == {}

    obs, rewards, truncations, info = step(envs)
    assert np.all(obs == [0, 2, 2]) and np.all(rewards == [1, 1, 1])
    assert np.all(truncations == [True, False, False])
    expected = np.array([np.array([3.0], np.float32), None, None], dtype=object)
    assert data_equivalence(info["final_obs"], expected)
    assert data_equivalence(info["_final_obs"], np.array([True, False, False]))
    assert data_equivalence(info["_final_info"], np.array([True, False, False]))

    obs, rewards, truncations, info = step(envs)
    assert np.all(obs == [1, 0, 0]) and np.all(rewards == [1, 1, 1])
    assert np.all(truncations == [False, True, True])
    expected = np.array([None, np.array([3.0], np.float32), np.array([3.0], np.float32)], object)
    assert data_equivalence(info["final_obs"], expected)
    assert data_equivalence(info["_final_info"], np.array([False, True, True]))
    envs.close()


def test_autoreset_disabled():
    envs = counting_envs(AutoresetMode.DISABLED)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.DISABLED

    obs, rewards, truncations, info = step(envs)
    assert np.all(obs == [2, 1, 1]) and np.all(rewards == [1, 1, 1])

    obs, rewards, truncations, info = step(envs)
    assert np.all(obs == [3, 2, 2]) and np.all(truncations == [True, False, False])

    obs, info = envs.reset(options={"reset_mask": truncations})
    assert np.all(obs[:, 0] == [0, 2, 2]) and info == {}

    obs, rewards, truncations, info = step(envs)
    assert np.all(obs == [1, 3, 3]) and np.all(truncations == [False, True, True])

    obs, info = envs.reset(options={"reset_mask": truncations})
    assert np.all(obs[:, 0] == [1, 0, 0]) and info == {}

    obs, rewards, truncations, info = step(envs)
    assert np.all(obs == [2, 1, 1]) and np.all(rewards == [1, 1, 1])
    assert np.all(truncations == [False, False, False]) and info == {}
    envs.close()


@pytest.mark.parametrize("autoreset_mode", list(AutoresetMode))
def test_autoreset_metadata(autoreset_mode):
    for mode in (autoreset_mode, autoreset_mode.value):
        envs = GymnasiumVectorEnv("CartPole-v1", 2, autoreset_mode=mode)
        assert envs.metadata["autoreset_mode"] == autoreset_mode
        envs.close()


@pytest.mark.parametrize("autoreset_mode", list(AutoresetMode))
def test_make_vec_autoreset(autoreset_mode):
    """Upstream passes vector_kwargs (sync/async); a vector_entry_point takes
    its arguments as keyword arguments."""
    for mode in (autoreset_mode, autoreset_mode.value):
        envs = gym.make_vec("pyenvpool/CartPole-v1", autoreset_mode=mode)
        assert envs.metadata["autoreset_mode"] == autoreset_mode
        envs.close()


# --------------------------------------------------------- test_vector_env
def test_random_seeding_basics():
    seed = 42
    envs = GymnasiumVectorEnv("CartPole-v1", 4)
    envs.reset(seed=seed)
    assert envs.np_random_seed == tuple(seed + i for i in range(envs.num_envs))
    envs.reset(seed=None)  # resetting with seed=None keeps the seeds
    assert envs.np_random_seed == tuple(seed + i for i in range(envs.num_envs))
    envs.close()


def test_random_seeds_set_at_retrieval():
    """Differs on purpose: upstream's sub-envs get seeds 0..n-1 from its
    make_env(i); a pool seeds every env with the constructor's seed (env i
    then draws from stream (seed, i))."""
    envs = GymnasiumVectorEnv("CartPole-v1", 4, seed=5)
    assert envs.np_random_seed == (5, 5, 5, 5)
    envs.close()


def test_partial_reset():
    envs = GymnasiumVectorEnv("CartPole-v1", 3, autoreset_mode=AutoresetMode.DISABLED)
    reset_obs, _ = envs.reset(seed=[0, 1, 2])

    envs.action_space.seed(123)
    envs.step(envs.action_space.sample())
    envs.step(envs.action_space.sample())
    step_obs, *_ = envs.step(envs.action_space.sample())

    reset_mask_obs, _ = envs.reset(
        seed=[0, 1, 0], options={"reset_mask": np.array([True, True, False])}
    )
    assert np.all(reset_mask_obs[:2] == reset_obs[:2])
    assert np.all(reset_mask_obs[2] == step_obs[2])
    envs.close()


def test_partial_reset_failure():
    envs = GymnasiumVectorEnv("CartPole-v1", 3, autoreset_mode=AutoresetMode.DISABLED)

    # A first reset with a mask: upstream has this check commented out; it is allowed.
    envs.reset(options={"reset_mask": np.array([True, True, False])})
    envs.reset(options={"reset_mask": np.array([True, True, True])})

    for mask, error, message in [
        (np.array([True]), ValueError, "must have shape `(3,)`, got (1,)"),
        (np.array([True, True, False, False]), ValueError, "must have shape `(3,)`, got (4,)"),
        (np.array([[True, True, True]]), ValueError, "must have shape `(3,)`, got (1, 3)"),
        (
            np.array([False, False, False]),
            ValueError,
            "must contain a boolean array with at least one True value, "
            "got reset_mask=[False False False]",
        ),
        (np.array([1, 1, 0]), TypeError, "must have `dtype=np.bool_`, got int64"),
        (np.array([1.0, 1.0, 0.0]), TypeError, "must have `dtype=np.bool_`, got float64"),
    ]:
        with pytest.raises(error, match=re.escape(f"`options['reset_mask']` {message}")):
            envs.reset(options={"reset_mask": mask})
    envs.close()


def test_action_count_compatibility():
    num_envs = 4
    envs = GymnasiumVectorEnv("CartPole-v1", num_envs, autoreset_mode=AutoresetMode.DISABLED)
    envs.reset()

    correct_actions = envs.action_space.sample()
    assert len(correct_actions) == num_envs
    obs, rewards, terminations, truncations, infos = envs.step(correct_actions)
    assert len(obs) == len(rewards) == len(terminations) == len(truncations) == num_envs

    with pytest.raises(ValueError):
        envs.step(correct_actions[: num_envs - 1])
    with pytest.raises(ValueError):
        envs.step(np.concatenate([correct_actions, correct_actions[:1]]))
    with pytest.raises(TypeError):
        envs.step(0)
    envs.close()


# ---------------------------------------------------- test_sync_vector_env
def test_metadata_sync_vector_env():
    """The env's metadata holds its mode; the class-level metadata is untouched."""
    envs_1 = GymnasiumVectorEnv("CartPole-v1", 1, autoreset_mode=AutoresetMode.NEXT_STEP)
    envs_2 = GymnasiumVectorEnv("CartPole-v1", 1, autoreset_mode=AutoresetMode.SAME_STEP)
    assert envs_1.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert envs_2.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert GymnasiumVectorEnv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    envs_1.close()
    envs_2.close()


def test_reset_sync_vector_env():
    envs = GymnasiumVectorEnv("CartPole-v1", 8)
    observations, infos = envs.reset()
    envs.close()

    assert isinstance(envs.observation_space, Box)
    assert isinstance(observations, np.ndarray)
    assert observations.dtype == envs.observation_space.dtype
    assert observations.shape == (8,) + envs.single_observation_space.shape
    assert observations.shape == envs.observation_space.shape


@pytest.mark.parametrize("use_single_action_space", [True, False])
def test_step_sync_vector_env(use_single_action_space):
    envs = GymnasiumVectorEnv("CartPole-v1", 8)
    envs.reset()

    assert isinstance(envs.single_action_space, Discrete)
    assert isinstance(envs.action_space, MultiDiscrete)

    if use_single_action_space:
        actions = [envs.single_action_space.sample() for _ in range(8)]
    else:
        actions = envs.action_space.sample()
    observations, rewards, terminations, truncations, _ = envs.step(actions)
    envs.close()

    assert isinstance(observations, np.ndarray)
    assert observations.dtype == envs.observation_space.dtype
    assert observations.shape == (8,) + envs.single_observation_space.shape
    assert observations.shape == envs.observation_space.shape
    assert isinstance(rewards, np.ndarray) and isinstance(rewards[0], (float, np.floating))
    assert rewards.ndim == 1 and rewards.size == 8
    for flags in (terminations, truncations):
        assert isinstance(flags, np.ndarray) and flags.dtype == np.bool_
        assert flags.ndim == 1 and flags.size == 8


def test_render_sync_vector():
    """Upstream renders rgb_array; every render mode a task has works the same
    way (tests/test_gymnasium_render.py covers the frames)."""
    envs = GymnasiumVectorEnv("CartPole-v1", 3, render_mode="ansi")
    assert envs.render_mode == "ansi"
    envs.reset()
    rendered = envs.render()
    assert isinstance(rendered, tuple) and len(rendered) == envs.num_envs
    assert all(isinstance(frame, str) for frame in rendered)
    envs.close()

    envs = GymnasiumVectorEnv("CartPole-v1", 3)
    assert envs.render_mode is None
    envs.close()


def test_call_sync_vector_env():
    """Upstream calls render and reads CartPole's `gravity`; a pyenvpool env
    exposes render and what describes it."""
    envs = GymnasiumVectorEnv("CartPole-v1", 4, render_mode="ansi")
    envs.reset()
    images = envs.call("render")
    spaces = envs.call("observation_space")
    envs.close()

    assert isinstance(images, tuple) and len(images) == 4
    assert all(isinstance(image, str) for image in images)
    assert spaces == (envs.single_observation_space,) * 4
    with pytest.raises(AttributeError, match="gravity"):
        envs.call("gravity")


def test_set_attr_sync_vector_env():
    envs = GymnasiumVectorEnv("CartPole-v1", 4)
    envs.set_attr("gravity", [9.81, 3.72, 8.87, 1.62])
    assert envs.get_attr("gravity") == (9.81, 3.72, 8.87, 1.62)
    envs.set_attr("gravity", 1.0)
    assert envs.get_attr("gravity") == (1.0,) * 4
    with pytest.raises(ValueError, match="length equal to the number of environments"):
        envs.set_attr("gravity", [1.0, 2.0])
    with pytest.raises(AttributeError, match="read-only"):
        envs.set_attr("observation_space", None)  # describes the C++ task
    envs.close()


# ------------------------------------------------------ test_vector_wrapper
class DummyVectorWrapper(VectorWrapper):
    """Counts the resets that pass through it."""

    def __init__(self, env):
        super().__init__(env)
        self.counter = 0

    def reset(self, *, seed=None, options=None):
        self.counter += 1
        return super().reset(seed=seed, options=options)


def test_vector_env_wrapper_inheritance():
    envs = gym.make_vec("pyenvpool/CartPole-v1")
    wrapped = DummyVectorWrapper(envs)
    wrapped.reset()
    assert wrapped.counter == 1
    envs.close()


def test_vector_env_wrapper_attributes():
    envs = gym.make_vec("pyenvpool/CartPole-v1", num_envs=3)
    wrapped = DummyVectorWrapper(gym.make_vec("pyenvpool/CartPole-v1", num_envs=3))
    assert wrapped.env.call("render_mode") == envs.call("render_mode")
    envs.set_attr("gravity", [20.0, 20.0, 20.0])
    wrapped.env.set_attr("gravity", [20.0, 20.0, 20.0])
    assert np.allclose(wrapped.env.get_attr("gravity"), envs.get_attr("gravity"))
    assert wrapped.np_random_seed == wrapped.env.np_random_seed
    envs.close()
    wrapped.close()


def test_vector_env_metadata():
    envs = gym.make_vec("pyenvpool/CartPole-v1", num_envs=3)
    wrapped = DummyVectorWrapper(gym.make_vec("pyenvpool/CartPole-v1", num_envs=3))
    assert envs.metadata == wrapped.metadata
    envs.metadata = {"render_modes": ["rgb_array"]}
    assert envs.metadata != wrapped.metadata
    envs.close()
    wrapped.close()


def test_registered_tasks_build():
    """Every registered task builds through the vector entry point."""
    for task_id in pyenvpool.list_tasks():
        envs = gym.make_vec(f"pyenvpool/{task_id}", num_envs=2)
        obs, _ = envs.reset(seed=0)
        assert envs.observation_space.contains(obs)
        envs.close()
