"""pyenvpool.pettingzoo against PettingZoo's own tests and its connect_four_v3."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("pettingzoo")

from pettingzoo import AECEnv, ParallelEnv  # noqa: E402

with warnings.catch_warnings():  # PettingZoo's test module imports its envs the old way
    warnings.simplefilter("ignore", DeprecationWarning)
    from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test

import pyenvpool  # noqa: E402
import pyenvpool.pettingzoo as pz  # noqa: E402

RANDOM = {"random_opening_moves": 8, "random_move_probability": 0.2}


@pytest.fixture(autouse=True)
def quiet_api_tests():
    """PettingZoo's tests warn about dict observations of classic games
    (PettingZoo's own connect_four_v3 is on their exception list)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Observation", UserWarning)
        warnings.filterwarnings("ignore", "The old environment creation API", DeprecationWarning)
        yield


def test_aec_api():
    env = pz.env("ConnectFour-v0")
    assert isinstance(env.unwrapped, AECEnv)
    api_test(env, num_cycles=1000)
    api_test(pz.env("ConnectFour-v0", **RANDOM), num_cycles=200)


def test_parallel_api():
    env = pz.parallel_env("ConnectFour-v0")
    assert isinstance(env, ParallelEnv)
    parallel_api_test(env, num_cycles=1000)


def test_seeding():
    seed_test(pz.env)
    parallel_seed_test(pz.parallel_env)
    seed_test(lambda: pz.env(**RANDOM))
    parallel_seed_test(lambda: pz.parallel_env(**RANDOM))


def test_seed_draws_the_random_opening():
    env = pz.raw_env(random_opening_moves=20)
    openings = []
    for seed in (1, 1, 2):
        env.reset(seed=seed)
        openings.append(env.observe("player_0")["observation"].copy())
    assert np.array_equal(openings[0], openings[1])
    assert not np.array_equal(openings[0], openings[2])


def play_both(moves_of, games: int, seed: int):
    """Plays the same games on PettingZoo's connect_four_v3 and on ours, move
    by move, and checks that both see the same thing all along."""
    from pettingzoo.classic import connect_four_v3

    theirs, ours = connect_four_v3.env(), pz.env()
    rng = np.random.default_rng(seed)
    outcomes = {"win": 0, "draw": 0, "illegal": 0}
    for _ in range(games):
        theirs.reset()
        ours.reset()
        for agent in theirs.agent_iter():
            assert ours.agent_selection == agent
            last_theirs, last_ours = theirs.last(), ours.last()
            over = last_theirs[2] or last_theirs[3]
            for who in theirs.agents:
                a, b = theirs.observe(who), ours.observe(who)
                assert a["observation"].dtype == b["observation"].dtype == np.int8
                assert np.array_equal(a["observation"], b["observation"]), who
                if over:  # PettingZoo still shows the open columns of a finished game
                    assert not b["action_mask"].any()
                else:
                    assert np.array_equal(a["action_mask"], b["action_mask"]), who
            assert last_theirs[1:3] == last_ours[1:3]  # reward, termination
            assert theirs.rewards == ours.rewards
            assert theirs._cumulative_rewards == ours._cumulative_rewards
            assert theirs.terminations == ours.terminations
            action = None if over else moves_of(last_theirs[0]["action_mask"], rng)
            if over and agent == theirs.agents[0]:
                rewards = sorted(theirs._cumulative_rewards.values())
                outcomes[
                    "illegal" if rewards == [-1, 0] else "draw" if rewards == [0, 0] else "win"
                ] += 1
            theirs.step(action)
            ours.step(action)
        assert not ours.agents
    return outcomes


def test_games_match_pettingzoo_connect_four():
    pytest.importorskip("pygame")  # PettingZoo's connect_four_v3 imports it

    def legal(mask, rng):
        return int(rng.choice(np.flatnonzero(mask)))

    outcomes = play_both(legal, games=60, seed=0)
    assert outcomes["win"] > 40 and outcomes["illegal"] == 0

    def sometimes_illegal(mask, rng):
        full = np.flatnonzero(mask == 0)
        if len(full) and rng.random() < 0.3:
            return int(rng.choice(full))
        return legal(mask, rng)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PettingZoo's illegal-move warning
        outcomes = play_both(sometimes_illegal, games=60, seed=1)
    assert outcomes["illegal"] > 5 and outcomes["win"] > 5


def test_rewards_and_final_observation():
    env = pz.raw_env()
    env.reset()
    for column in (3, 4, 3, 4, 3, 4):
        env.step(column)
    assert env.agent_selection == "player_0"
    env.step(3)  # four in column 3
    assert env.terminations == {"player_0": True, "player_1": True}
    assert env.rewards == {"player_0": 1.0, "player_1": -1.0}
    final = env.observe("player_0")
    assert final["observation"][:, 3, 0].tolist() == [0, 0, 1, 1, 1, 1]  # our column 3
    assert final["observation"][5, 4, 1] == 1 and not final["action_mask"].any()
    assert not env.observe("player_1")["action_mask"].any()
    assert env.observe("player_1")["observation"][5, 3, 1] == 1  # the winner's piece
    env.step(None)
    env.step(None)
    assert env.agents == []


def test_parallel_applies_the_mover_s_action_only():
    env = pz.parallel_env()
    obs, infos = env.reset()
    assert infos["player_0"]["active_agent"] == "player_0"
    assert obs["player_1"]["action_mask"].sum() == 0
    obs, rewards, terms, truncs, infos = env.step({"player_0": 2, "player_1": 5})
    assert obs["player_0"]["observation"][5, 2, 0] == 1
    assert obs["player_0"]["observation"][:, :, 1].sum() == 0  # player_1's 5 was ignored
    assert infos["player_1"]["active_agent"] == "player_1"
    obs, *_ = env.step({"player_1": 6})  # the idle agent's action may be left out
    assert obs["player_1"]["observation"][5, 6, 0] == 1
    with pytest.raises(KeyError, match="player_0"):
        env.step({"player_1": 0})
    env.close()


def test_parallel_matches_aec():
    aec, par = pz.raw_env(**RANDOM), pz.parallel_env(**RANDOM)
    rng = np.random.default_rng(3)
    for seed in range(10):
        aec.reset(seed=seed)
        observations, _ = par.reset(seed=seed)
        while par.agents:
            mover = aec.agent_selection
            for agent in par.agents:
                assert np.array_equal(
                    aec.observe(agent)["observation"], observations[agent]["observation"]
                )
            move = int(rng.choice(np.flatnonzero(observations[mover]["action_mask"])))
            aec.step(move)
            observations, rewards, terms, *_ = par.step({mover: move})
            assert rewards == aec.rewards and terms == aec.terminations


def test_render_and_bad_input():
    env = pz.raw_env(render_mode="ansi")
    env.reset()
    env.step(0)
    assert env.render().splitlines()[-3].startswith("X")  # the bottom row, first player
    pool = pyenvpool.make("ConnectFour-v0", 1)
    draws = "rgb_array" in pool.render_modes
    pool.close()
    if draws:
        frames = pz.raw_env(render_mode="rgb_array")
        frames.reset()
        frame = frames.render()
        assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.std() > 0
    else:
        with pytest.raises(ValueError, match="render"):
            pz.raw_env(render_mode="rgb_array")
    with pytest.raises(ValueError):
        env.step(7)
    env.step(1)  # still works
    assert env.observe("player_0")["observation"][5, 1, 1] == 1
    with pytest.raises(ValueError, match="ConnectFour"):
        pz.env("CartPole-v1")
    wrapped = pz.env()
    with pytest.raises(Exception, match="reset"):  # PettingZoo's OrderEnforcingWrapper
        wrapped.step(0)
