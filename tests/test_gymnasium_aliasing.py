"""Other people's code keeps what the Gymnasium adapters return: the defaults
must hand out arrays nobody rewrites (issue 15's silent-corruption cases).

Each case runs the third-party pattern on the defaults and checks the data it
kept; the same pattern on ``copy=False`` shows the corruption the defaults
prevent, so each test could fail."""

from __future__ import annotations

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")

import pyenvpool  # noqa: E402, F401  (registers pyenvpool/<task>)

MODES = ["NextStep", "SameStep", "Disabled"]


def make_vec(num_envs: int, **kwargs):
    return gym.make_vec(
        "pyenvpool/CartPole-v1",
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        **kwargs,
    )


class ReferenceReplayBuffer:
    """A replay buffer that keeps the arrays it is given, as a CleanRL-DQN-style
    loop feeds it: ``rb.add(obs, next_obs, ...); obs = next_obs``."""

    def __init__(self):
        self.obs, self.next_obs, self.done = [], [], []

    def add(self, obs, next_obs, done):
        self.obs.append(obs)
        self.next_obs.append(next_obs)
        self.done.append(done)


def fill(envs, steps: int) -> ReferenceReplayBuffer:
    rb = ReferenceReplayBuffer()
    obs, _ = envs.reset(seed=0)
    envs.action_space.seed(0)
    for _ in range(steps):
        next_obs, _, terminated, truncated, _ = envs.step(envs.action_space.sample())
        done = terminated | truncated
        rb.add(obs, next_obs, done)
        if envs.metadata["autoreset_mode"].value == "Disabled" and done.any():
            next_obs, _ = envs.reset(options={"reset_mask": done})
        obs = next_obs
    envs.close()
    return rb


@pytest.mark.parametrize("mode", MODES)
def test_replay_buffer_keeps_distinct_transitions(mode):
    """Every stored transition moves the cart, and consecutive transitions
    chain: next_obs[t] == obs[t + 1] where the episode went on."""
    rb = fill(make_vec(4, autoreset_mode=mode), steps=500)
    obs, next_obs = np.stack(rb.obs), np.stack(rb.next_obs)
    done = np.stack(rb.done)
    assert not (obs == next_obs).all(-1).any()  # CartPole's state moves every step
    chained = (next_obs[:-1] == obs[1:]).all(-1)
    assert chained[~done[:-1]].all()
    assert done.sum() > 50


def test_replay_buffer_on_views_is_corrupted():
    """copy=False, kept by reference: every stored obs is its next_obs."""
    rb = fill(make_vec(4, copy=False), steps=200)
    assert all(o is n or np.shares_memory(o, n) for o, n in zip(rb.obs[1:], rb.next_obs[1:]))
    assert (np.stack(rb.obs[1:]) == np.stack(rb.next_obs[1:])).all()


@pytest.mark.parametrize("mode", MODES)
def test_numpy_to_torch_tensors_stay(mode):
    """Gymnasium's NumpyToTorch wraps the arrays without copying; the tensors
    of one step must survive the next steps."""
    torch = pytest.importorskip("torch")
    from gymnasium.wrappers.vector import NumpyToTorch

    for copy, survives in ((True, True), (False, False)):
        envs = NumpyToTorch(make_vec(4, autoreset_mode=mode, copy=copy))
        envs.reset(seed=0)
        action = torch.ones(4, dtype=torch.int64)
        obs, reward, *_ = envs.step(action)
        kept_obs, kept_reward = obs.clone(), reward.clone()
        for _ in range(3):
            envs.step(action)
        assert torch.equal(obs, kept_obs) == survives
        if survives:
            assert torch.equal(reward, kept_reward)
        envs.close()


# ---------------------------------------------------------------- TorchRL
def rollout_chain_breaks(env, steps: int) -> tuple[int, int]:
    """Steps where a TorchRL rollout's obs[t + 1] != next obs[t] although the
    episode went on, and the number of episode ends."""
    td = env.rollout(steps, break_when_any_done=False)
    obs, next_obs = td["observation"], td["next", "observation"]
    done = td["next", "done"].squeeze(-1)
    breaks = (obs[..., 1:, :] != next_obs[..., :-1, :]).any(-1) & ~done[..., :-1]
    return int(breaks.sum()), int(done.sum())


@pytest.mark.parametrize("mode", ["SameStep", "Disabled"])  # TorchRL refuses NextStep
def test_torchrl_gym_wrapper_rollout_chains(mode):
    pytest.importorskip("torchrl")
    from torchrl.envs import GymWrapper

    env = GymWrapper(make_vec(4, autoreset_mode=mode))
    breaks, ends = rollout_chain_breaks(env, 400)
    env.close()
    assert breaks == 0 and ends > 20
    views = GymWrapper(make_vec(4, autoreset_mode=mode, copy=False))
    breaks, _ = rollout_chain_breaks(views, 400)
    views.close()
    assert breaks > 20  # what the default prevents


def test_torchrl_gym_env_rollout_chains():
    """TorchRL builds the single env through gymnasium.make."""
    pytest.importorskip("torchrl")
    from torchrl.envs import GymEnv

    env = GymEnv("pyenvpool/CartPole-v1")
    breaks, ends = rollout_chain_breaks(env, 300)
    env.close()
    assert breaks == 0 and ends > 5
