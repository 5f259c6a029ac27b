"""SelfPlayEnvs: self-play envs next to envs where the learner meets a past
copy of itself inside ``step``; rewards from the learner's view, the
opponent pool, exact save and restore, and a self-play run that resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.config import resolve
from trainer.networks import build_agent
from trainer.selfplay import SelfPlayEnvs
from trainer.train import Trainer


def make_envs(num_envs=4, fraction=0.5, **kwargs):
    return SelfPlayEnvs("ConnectFour-v0", num_envs, 3, {}, 1, opponent_fraction=fraction, **kwargs)


def test_split_and_alternating_mask():
    envs = make_envs(8, 0.25)
    assert (envs.num_self_play_envs, envs.num_opponent_envs) == (6, 2)
    assert envs.alternating.tolist() == [True] * 6 + [False] * 2
    assert envs.obs["board"].shape == (8, 2, 6, 7) and not envs.obs["board"].any()
    envs.close()
    only = make_envs(4, 0.0)
    assert only.opponents is None and only.alternating.all()
    only.close()


@pytest.mark.parametrize("use_out", [False, True])
def test_rows_are_learner_moves_with_the_learners_reward(use_out):
    """The learner always plays column 0 and the opponent column 6: the learner
    wins the game it opens on its 4th move; the reply to that move opens the
    next game, which the opponent wins on its 4th move; and so on."""
    envs = make_envs(2, 0.5)
    envs._opponent_actions = lambda obs: np.full(len(obs["to_play"]), 6)
    out = None
    if use_out:
        spec = envs.spec
        out = {n: np.zeros((2, *f.shape), f.dtype) for n, f in spec.fields.items()}
        out.update(
            reward=np.zeros(2, np.float32),
            terminated=np.zeros(2, bool),
            truncated=np.zeros(2, bool),
        )
    rewards, lengths = [], []
    for _ in range(14):
        obs, reward, terminated, truncated, info = envs.step(np.zeros(2, np.int64), out)
        rewards.append(reward[1])
        assert terminated[1] == (reward[1] != 0) and not truncated.any()
        if terminated[1]:
            lengths.append((info["episode_return"][1], info["episode_length"][1]))
        assert obs["to_play"][1] in (0, 1) and obs is envs.obs
    assert rewards == [0, 0, 0, 1, 0, 0, -1] * 2
    assert lengths == [(1.0, 7), (-1.0, 7)] * 2
    envs.close()


def test_opponent_pool_adds_copies_and_draws_one_per_rollout():
    envs = make_envs(4, 0.5, opponent_pool_size=3, opponent_interval=2)
    config = resolve(flags={"task": "ConnectFour-v0"})
    agent = build_agent(envs.spec, config.network)
    bias = [k for k in agent.state_dict() if k.startswith("actor.")][-1]  # the policy output's
    sizes = []
    for update in range(10):
        with torch.no_grad():
            agent.actor[-1].bias.fill_(float(update))  # tell the copies apart
        envs.prepare_rollout(agent, update)
        sizes.append(len(envs.snapshots))
        current = envs.snapshots[envs.current][bias][0]
        assert envs.opponent_net.actor[-1].bias[0] == current
    assert sizes == [1, 1, 2, 2, 3, 3, 3, 3, 3, 3]
    assert [float(w[bias][0]) for w in envs.snapshots] == [4.0, 6.0, 8.0]
    actions = envs._opponent_actions({k: v[2:].copy() for k, v in envs.obs.items()})
    assert actions.shape == (2,) and ((0 <= actions) & (actions < 7)).all()
    envs.close()


def test_state_dict_restores_exactly():
    config = resolve(flags={"task": "ConnectFour-v0"})
    rng = np.random.default_rng(0)

    def run(envs, agent, updates, actions):
        seen = []
        for update in updates:
            envs.prepare_rollout(agent, update)
            for a in actions:
                obs, reward, *_ = envs.step(a)
                seen.append((obs["board"].copy(), reward.copy()))
        return seen

    envs = make_envs(6, 0.5, opponent_interval=1)
    agent = build_agent(envs.spec, config.network)
    actions = [rng.integers(0, 7, 6) for _ in range(15)]
    run(envs, agent, range(2), actions)
    state = envs.state_dict()
    expected = run(envs, agent, range(2, 4), actions)
    other = make_envs(6, 0.5, opponent_interval=1)
    other.load_state_dict(state)
    got = run(other, agent, range(2, 4), actions)
    for (b1, r1), (b2, r2) in zip(expected, got):
        np.testing.assert_array_equal(b1, b2)
        np.testing.assert_array_equal(r1, r2)
    envs.close(), other.close()


@pytest.mark.parametrize("fraction", [0.0, 0.25])
def test_self_play_run_resumes_exactly(tmp_path, fraction):
    flags = {
        "task": "ConnectFour-v0",
        "num_envs": 16,
        "num_steps": 8,
        "total_steps": 16 * 8 * 4,
        "opponent_fraction": fraction,
        "opponent_interval": 1,
        "eval_interval": 0,
        "eval_episodes": 4,
        "eval_num_envs": 4,
        "checkpoint_interval": 16 * 8 * 2,
        "tensorboard": False,
        "plot": False,
    }
    config = resolve(flags=flags)
    straight = Trainer.new(config, tmp_path / "a", progress=False)
    straight.run()
    straight.close()
    paused = Trainer.new(config, tmp_path / "b", progress=False)
    paused.run(max_updates=2)
    paused.close()
    resumed = Trainer.resume(tmp_path / "b", progress=False)
    summary = resumed.run()
    resumed.close()
    assert summary["updates"] == 4
    for a, b in zip(straight.agent.parameters(), resumed.agent.parameters()):
        assert torch.equal(a, b)


def test_self_play_envs_count_env_steps_like_training_envs():
    from trainer.train import training_envs

    config = resolve(flags={"task": "ConnectFour-v0", "num_envs": 4})
    envs = training_envs(config, 1, 1)
    assert isinstance(envs, SelfPlayEnvs)
    try:
        assert envs.env_steps == 0
        envs.step(np.flatnonzero(envs.obs["action_mask"][0])[:1].repeat(4))
        assert envs.env_steps == 4
    finally:
        envs.close()


def test_game_outcomes_are_counted_by_side():
    """Self-play env 0: the first mover plays column 0, the second column 1, so
    the first mover wins every 7-ply game. Opponent env 1: as above, the
    learner wins the games it opens and loses the ones the opponent opens."""
    envs = make_envs(2, 0.5)
    envs._opponent_actions = lambda obs: np.full(len(obs["to_play"]), 6)
    for _ in range(14):
        actions = np.array([int(envs.obs["to_play"][0]), 0])
        envs.step(actions)
    assert envs.episode_outcomes() == {
        "self_play": {"first_win": 2},
        "vs_past_first": {"win": 2},
        "vs_past_second": {"loss": 2},
    }
    assert envs.episode_outcomes() == {}  # counted since the last call
    envs.close()
    from trainer.train import outcome_rates

    rates = outcome_rates(
        [{"self_play": {"first_win": 3, "draw": 1}}, {"self_play": {"second_win": 4}}]
    )
    assert rates == {
        "self_play_first_win": 3 / 8,
        "self_play_draw": 1 / 8,
        "self_play_second_win": 4 / 8,
        "self_play_games": 8,
    }


def test_self_play_telemetry_reports_outcome_rates_not_returns(tmp_path):
    from trainer.telemetry import read_metrics

    flags = {
        "task": "ConnectFour-v0",
        "num_envs": 16,
        "num_steps": 32,
        "total_steps": 16 * 32 * 2,
        "opponent_fraction": 0.5,
        "eval_interval": 0,
        "eval_episodes": 8,
        "eval_num_envs": 4,
        "tensorboard": False,
        "plot": False,
    }
    trainer = Trainer.new(resolve(flags=flags), tmp_path / "run", progress=False)
    trainer.run()
    trainer.close()
    actors = [
        e for e in read_metrics(tmp_path / "run" / "metrics.jsonl") if e["category"] == "ACTOR"
    ]
    for actor in actors:
        assert "mean_return" not in actor and actor["self_play_games"] > 0
        rates = [actor[f"self_play_{o}"] for o in ("first_win", "draw", "second_win")]
        assert sum(rates) == pytest.approx(1.0)
        for side in ("first", "second"):
            if actor.get(f"vs_past_{side}_games"):
                outcomes = [actor[f"vs_past_{side}_{o}"] for o in ("win", "draw", "loss")]
                assert sum(outcomes) == pytest.approx(1.0)
    assert any(actor.get("vs_past_first_games") for actor in actors)
