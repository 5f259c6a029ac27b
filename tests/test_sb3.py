"""pyenvpool.sb3 against the real Stable-Baselines3 and sb3-contrib."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

import torch  # noqa: E402
from gymnasium import spaces  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.env_checker import _check_unsupported_spaces  # noqa: E402
from stable_baselines3.common.evaluation import evaluate_policy  # noqa: E402
from stable_baselines3.common.monitor import Monitor  # noqa: E402
from stable_baselines3.common.vec_env import (  # noqa: E402
    VecCheckNan,
    VecEnv,
    VecMonitor,
    VecNormalize,
)

import pyenvpool  # noqa: E402
import pyenvpool.sb3  # noqa: E402
from pyenvpool.sb3 import PoolVecEnv, make_vec_env  # noqa: E402


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small networks train fastest on one thread, above all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def venvs():
    """make_vec_env that closes every VecEnv it made at teardown."""
    made = []

    def _make(*args, **kwargs):
        venv = make_vec_env(*args, **kwargs)
        made.append(venv)
        return venv

    yield _make
    for venv in made:
        venv.close()


def rows(obs, n):
    """The n per-env observations of a batch (a Box array or a dict of them)."""
    if isinstance(obs, dict):
        return [{k: v[i] for k, v in obs.items()} for i in range(n)]
    return list(obs)


@pytest.mark.parametrize("task", pyenvpool.list_tasks())
def test_every_task_meets_sb3_conventions(task, venvs):
    n = 4
    venv = venvs(task, n_envs=n, seed=0)
    assert isinstance(venv, VecEnv) and venv.num_envs == n
    assert not _check_unsupported_spaces(None, venv.observation_space, venv.action_space)
    assert venv.action_space == venv.pool.single_action_space
    obs = venv.reset()
    venv.action_space.seed(0)
    ended = 0
    for t in range(1100):  # past the longest time limit (MountainCarContinuous: 999)
        if ended and t >= 60:
            break
        previous = obs
        kept = {k: v.copy() for k, v in obs.items()} if isinstance(obs, dict) else obs.copy()
        actions = np.stack([venv.action_space.sample() for _ in range(n)])
        obs, rewards, dones, infos = venv.step(actions)
        assert all(venv.observation_space.contains(row) for row in rows(obs, n))
        assert rewards.dtype == np.float32 and rewards.shape == (n,)
        assert dones.dtype == np.bool_ and dones.shape == (n,)
        assert isinstance(infos, list) and len(infos) == n
        # Owned: the next step did not rewrite what the last one returned.
        if isinstance(obs, dict):
            assert all(np.array_equal(previous[k], kept[k]) for k in obs)
        else:
            assert np.array_equal(previous, kept)
        for i in np.flatnonzero(dones):
            terminal = infos[i]["terminal_observation"]
            assert venv.observation_space.contains(terminal)
            assert isinstance(infos[i]["TimeLimit.truncated"], bool)
            assert infos[i]["episode"]["l"] >= 1
            ended += 1
        assert all("terminal_observation" not in infos[i] for i in np.flatnonzero(~dones))
    assert ended > 0


def test_terminal_observation_and_time_limit(venvs):
    """Same-step auto-reset as SB3 expects it, against the raw pool."""
    venv = venvs("CartPole-v1", n_envs=6, seed=0, max_episode_steps=20)
    pool = pyenvpool.make("CartPole-v1", 6, seed=0, max_episode_steps=20)
    venv.seed(3)
    obs = venv.reset()
    p_obs, _ = pool.reset(seed=[3, 4, 5, 6, 7, 8])
    assert np.array_equal(obs, p_obs["obs"])
    actions = np.array([0, 1] * 3)
    truncated = terminated = 0
    for t in range(60):
        step = actions if t % 2 else 1 - actions
        obs, rewards, dones, infos = venv.step(step)
        p_obs, p_reward, p_term, p_trunc, p_info = pool.step(step)
        assert np.array_equal(obs, p_obs["obs"]) and np.array_equal(rewards, p_reward)
        assert np.array_equal(dones, p_term | p_trunc)
        for i in np.flatnonzero(dones):
            assert np.array_equal(infos[i]["terminal_observation"], p_info["final_obs"]["obs"][i])
            assert infos[i]["TimeLimit.truncated"] == bool(p_trunc[i] and not p_term[i])
            assert infos[i]["episode"]["r"] == p_info["episode_return"][i]
            truncated += infos[i]["TimeLimit.truncated"]
            terminated += not infos[i]["TimeLimit.truncated"]
    assert truncated > 0 and terminated > 0
    pool.close()


def test_seeding(venvs):
    a, b, c = (venvs("CartPole-v1", n_envs=3) for _ in range(3))
    assert a.seed(7) == [7, 8, 9]
    b.seed(7)
    c.seed(8)
    first = [venv.reset() for venv in (a, b, c)]
    assert np.array_equal(first[0], first[1]) and not np.array_equal(first[0], first[2])
    assert not np.array_equal(a.reset(), first[0])  # seeds apply to one reset
    made = [venvs("CartPole-v1", n_envs=3, seed=7).reset() for _ in range(2)]
    assert np.array_equal(made[0], made[1]) and np.array_equal(made[0], first[0])


def test_sub_env_attributes_and_methods(venvs):
    venv = venvs("Maze-v0", n_envs=3, seed=0)
    obs = venv.reset()
    assert venv.get_attr("render_mode") == [None, None, None]
    assert venv.get_attr("task_id", indices=[1]) == ["Maze-v0"]
    venv.set_attr("difficulty", 2, indices=[0, 2])
    assert venv.get_attr("difficulty", indices=[0, 2]) == [2, 2]
    with pytest.raises(AttributeError):
        venv.get_attr("difficulty", indices=1)
    with pytest.raises(AttributeError):
        venv.set_attr("render_mode", "rgb_array")  # read from the pool
    assert venv.env_is_wrapped(Monitor) == [False, False, False]
    assert venv.has_attr("action_masks")
    assert np.array_equal(np.stack(venv.env_method("action_masks")), obs["action_mask"])
    obs, *_ = venv.step(np.array([0, 1, 2]))
    assert np.array_equal(np.stack(venv.env_method("action_masks")), obs["action_mask"])
    assert np.array_equal(venv.env_method("action_masks", indices=[2])[0], obs["action_mask"][2])
    assert obs["step_count"].shape == (3, 1)  # scalars become [1] for SB3's extractors
    text = venv.env_method("render", indices=0)
    assert text == [None]  # render_mode None draws nothing
    with pytest.raises(IndexError):
        venv.get_attr("render_mode", indices=[3])
    cartpole = venvs("CartPole-v1", n_envs=2, render_mode="ansi")
    assert not cartpole.has_attr("action_masks")
    assert isinstance(cartpole.env_method("render", indices=1)[0], str)


def drawing_task() -> str | None:
    """A task that draws rgb frames, if any does."""
    for task in pyenvpool.list_tasks():
        with pyenvpool.make(task, 1) as pool:
            if "rgb_array" in pool.render_modes:
                return task
    return None


def test_render_rgb_array(venvs):
    task = drawing_task()
    if task is None:
        with pytest.raises(ValueError, match="render"):
            make_vec_env("CartPole-v1", n_envs=2, render_mode="rgb_array")
        return
    venv = venvs(task, n_envs=4, seed=0, render_mode="rgb_array")
    venv.reset()
    frame = venv.render()  # SB3 tiles the envs' frames 2 x 2
    height, width, _ = venv.pool.frame_shape
    assert frame.dtype == np.uint8 and frame.shape == (2 * height, 2 * width, 3)
    assert frame.std() > 0
    assert venv.env_method("render", indices=1)[0].shape == (height, width, 3)


def test_bad_input(venvs):
    venv = venvs("CartPole-v1", n_envs=2)
    venv.reset()
    with pytest.raises(ValueError):
        venv.step(np.array([0, 7]))
    with pytest.raises(ValueError):
        venv.step(np.zeros(3, np.int64))
    venv.set_options({"difficulty": 1})
    with pytest.raises(ValueError, match="options"):
        venv.reset()
    venv.set_options(None)
    obs, rewards, *_ = venv.step(np.zeros(2, np.int64))
    assert obs.shape == (2, 4) and (rewards == 1).all()
    async_pool = pyenvpool.make("CartPole-v1", 4, batch_size=2)
    with pytest.raises(ValueError, match="synchronous"):
        PoolVecEnv(async_pool)
    async_pool.close()


def test_vec_monitor_vec_normalize_and_vec_check_nan(venvs):
    venv = VecCheckNan(VecMonitor(venvs("CartPole-v1", n_envs=4, seed=0)), raise_exception=True)
    venv = VecNormalize(venv, gamma=0.99)
    obs = venv.reset()
    episodes = []
    for _ in range(200):
        obs, rewards, dones, infos = venv.step(np.random.default_rng(0).integers(0, 2, 4))
        episodes += [info["episode"] for info in infos if "episode" in info]
        assert obs.dtype == np.float32 and np.abs(obs).max() <= 10
    assert len(episodes) > 10 and all(e["r"] == e["l"] for e in episodes)
    assert abs(venv.obs_rms.mean[2]) < 0.1 and venv.obs_rms.count > 800
    model = PPO("MlpPolicy", venv, n_steps=16, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(256)
    assert model.num_timesteps == 256 and len(model.ep_info_buffer) > 0


def test_maskable_ppo_reads_the_masks(venvs):
    """Maze with invalid_action="terminate": an illegal move ends the episode
    with reward 0. With masks MaskablePPO never makes one; without them it does."""
    sb3_contrib = pytest.importorskip("sb3_contrib")

    class Outcomes(BaseCallback):
        def __init__(self):
            super().__init__()
            self.illegal = self.episodes = 0

        def _on_step(self):
            for done, info in zip(self.locals["dones"], self.locals["infos"]):
                if done:
                    self.episodes += 1
                    truncated = info["TimeLimit.truncated"]
                    self.illegal += info["episode"]["r"] == 0 and not truncated
            return True

    results = {}
    for use_masking in (True, False):
        venv = venvs("Maze-v0", n_envs=8, seed=0, invalid_action="terminate")
        model = sb3_contrib.MaskablePPO(
            "MultiInputPolicy", venv, n_steps=64, batch_size=256, n_epochs=1, seed=0, device="cpu"
        )
        outcomes = Outcomes()
        model.learn(2048, callback=outcomes, use_masking=use_masking)
        results[use_masking] = outcomes
    assert results[True].episodes > 20 and results[True].illegal == 0
    assert results[False].illegal > 20


class StopWhenSolved(BaseCallback):
    """Stops training once a deterministic evaluation over 20 episodes reaches
    475, checked whenever the last 20 training episodes averaged 475."""

    def __init__(self, eval_env: VecEnv):
        super().__init__()
        self.eval_env = eval_env
        self.solved = False

    def _on_rollout_end(self) -> None:
        returns = [e["r"] for e in list(self.model.ep_info_buffer)[-20:]]
        if len(returns) == 20 and np.mean(returns) >= 475:
            mean, _ = evaluate_policy(
                self.model, self.eval_env, n_eval_episodes=20, deterministic=True, warn=False
            )
            self.solved = mean >= 475

    def _on_step(self) -> bool:
        return not self.solved


def test_ppo_solves_cartpole(venvs):
    """SB3 PPO with rl-zoo's CartPole-v1 hyperparameters reaches 475 well within
    rl-zoo's 100k steps: 23-37k steps on seeds 0-7 (`python bench/bench_sb3.py
    --solve`); the verdict is a fresh deterministic evaluation over 20 episodes."""
    venv = venvs("CartPole-v1", n_envs=8, seed=0)
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate=lambda progress: 1e-3 * progress,
        clip_range=lambda progress: 0.2 * progress,
        seed=0,
        device="cpu",
    )
    stop = StopWhenSolved(venvs("CartPole-v1", n_envs=4, seed=1000))
    model.learn(100_000, callback=stop)
    assert stop.solved, f"not solved in {model.num_timesteps} steps"
    mean, _ = evaluate_policy(
        model,
        venvs("CartPole-v1", n_envs=4, seed=5000),
        n_eval_episodes=20,
        deterministic=True,
        warn=False,
    )
    assert mean >= 475


def test_observation_spaces(venvs):
    """A Dict of the task's fields for several, the field's Box for one."""
    venv = venvs("BinPack-v0", n_envs=2, seed=0)
    assert isinstance(venv.observation_space, spaces.Dict)
    assert set(venv.observation_space.spaces) == set(venv.pool.spec.fields)
    assert venv.observation_space["action_mask"].shape == (800,)
    single = venvs("CartPole-v1", n_envs=2)
    assert single.observation_space == single.pool.spec.fields["obs"].to_space()
