"""The evaluation protocol: fixed episodes, per-env quotas, task metrics, rendering."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.evaluate import Evaluator, summarize
from trainer.recording import Showcase


def test_quotas_count_exactly_the_requested_episodes_without_short_episode_bias():
    # Env 0 always pushes left (short episodes); the others alternate (longer).
    evaluator = Evaluator("CartPole-v1", 4, seed=3)
    seen = []

    def policy(obs):
        actions = np.zeros(4, np.int64)
        actions[1:] = len(seen) % 2
        seen.append(1)
        return actions

    result = evaluator.run(policy, 10)  # quotas 3, 3, 2, 2
    assert result["episodes"] == 10
    # Without quotas env 0 would finish far more than 3 of the first 10 episodes.
    assert result["episode_length_min"] >= 8
    evaluator.close()


def test_evaluation_is_deterministic_and_replays_the_same_episodes():
    evaluator = Evaluator("CartPole-v1", 5, seed=11)

    def policy(obs):
        return (obs["obs"][:, 2] > 0).astype(np.int64)

    first = evaluator.run(policy, 20)
    second = evaluator.run(policy, 20)
    first.pop("duration"), second.pop("duration")
    assert first == second
    evaluator.close()


def test_summary_and_task_metrics():
    returns, lengths = np.array([0.5, 0.75, 1.0]), np.array([10, 12, 14])
    out = summarize("BinPack-v0", returns, lengths)
    assert out["volume_utilization"] == pytest.approx(0.75)
    assert (out["min_return"], out["max_return"], out["episode_length_max"]) == (0.5, 1.0, 14)
    maze = summarize("Maze-v0", np.array([1.0, 0.0, 1.0, 1.0]), np.array([5, 100, 7, 9]))
    assert maze["success_rate"] == 0.75
    assert summarize("CartPole-v1", np.zeros(0), np.zeros(0))["episodes"] == 0


def test_final_pictures_show_where_episodes_ended():
    showcase = Showcase("CartPole-v1", 2, seed=0, task_kwargs={"max_episode_steps": 15})
    pictures = showcase.final_pictures(lambda obs: np.zeros(len(obs["obs"]), np.int64))
    showcase.close()
    assert len(pictures) == 2
    for picture in pictures:
        state, result = picture.splitlines()
        steps = int(result.split("after ")[1].split(" steps")[0])
        assert f"step={steps}" in state  # the final state itself, drawn after the last step
        assert result.endswith(f"with return {steps:.4f}")


def test_two_player_pictures_say_which_side_the_agent_plays():
    """The agent always plays column 0 against the heuristic: moving first it
    plays X, moving second O; the result is the agent's."""
    showcase = Showcase("ConnectFour-v0", 2, seed=0)
    pictures = showcase.final_pictures(lambda obs: np.zeros(len(obs["to_play"]), np.int64))
    showcase.close()
    assert pictures[0].startswith("the agent plays X (moving first) against heuristic\n")
    assert pictures[1].startswith("the agent plays O (moving second) against heuristic\n")
    for picture in pictures:
        assert picture.splitlines()[-1].endswith("with return -1.0000")  # the heuristic wins


def test_squared_reports_pufferlibs_score():
    """Squared-v0's score (fraction of targets hit) is read from the final grid."""
    evaluator = Evaluator("Squared-v0", 4, seed=2, task_kwargs={"distance_to_target": 1})

    def oracle(obs):  # d = 1: step onto any target left around the centre
        grid = obs["grid"]
        moves = [(0, -1), (0, 1), (-1, 0), (1, 0), (1, -1), (-1, -1), (1, 1), (-1, 1)]
        hits = np.stack([grid[:, 1 + dr, 1 + dc] == 1 for dr, dc in moves], axis=1)
        return hits.argmax(axis=1)

    best = evaluator.run(oracle, 8)
    assert best["score"] == 1.0 and best["mean_return"] == 4.0
    stay_west = evaluator.run(lambda obs: np.zeros(4, np.int64), 8)  # hits at most one
    assert stay_west["score"] <= 0.25 and stay_west["episodes"] == 8
    evaluator.close()


def test_two_player_matches_attribute_results_to_the_policy(monkeypatch):
    """The policy always plays column 0, a scripted opponent column 6: moving
    first the policy connects four on its 4th move, moving second it loses."""
    import dataclasses

    from trainer.tasks import TASKS

    def column_six(seed):
        return lambda obs: np.full(len(obs["to_play"]), 6)

    scripted = dataclasses.replace(TASKS["ConnectFour-v0"], opponents={"scripted": column_six})
    monkeypatch.setitem(TASKS, "ConnectFour-v0", scripted)
    evaluator = Evaluator("ConnectFour-v0", 4, seed=0)
    seen_sides = []

    def policy(obs):
        seen_sides.append(obs["to_play"].copy())
        return np.zeros(len(obs["to_play"]), np.int64)

    result = evaluator.run(policy, 10)  # quotas 3, 3, 2, 2; each env alternates sides
    evaluator.close()
    assert result["episodes"] == 10
    assert result["scripted_first_win"] == 1.0 and result["scripted_second_loss"] == 1.0
    assert result["scripted_win"] == 0.5 and result["mean_return"] == 0.0
    assert result["episode_length_min"] == result["episode_length_max"] == 7
    assert {int(s) for sides in seen_sides for s in sides} == {0, 1}


def test_two_player_matches_are_deterministic_and_balanced():
    from trainer.opponents import random_player

    evaluator = Evaluator("ConnectFour-v0", 10, seed=4)
    first = evaluator.run(random_player(1), 200)
    second = evaluator.run(random_player(1), 200)
    evaluator.close()
    first.pop("duration"), second.pop("duration")
    assert first == second
    assert first["episodes"] == 200  # games in all: 100 against each opponent
    for name in ("random", "heuristic"):
        for side in ("first", "second"):
            total = sum(first[f"{name}_{side}_{o}"] for o in ("win", "draw", "loss"))
            assert total == pytest.approx(1.0)
            assert first[f"{name}_{side}_games"] == 50


def test_an_odd_number_of_games_is_split_over_opponents_and_sides():
    from trainer.opponents import random_player

    evaluator = Evaluator("ConnectFour-v0", 10, seed=4)
    result = evaluator.run(random_player(1), 101)
    evaluator.close()
    games = {k: v for k, v in result.items() if k.endswith("_games")}
    assert result["episodes"] == 101 and sum(games.values()) == 101
    assert games["random_first_games"] + games["random_second_games"] == 51
