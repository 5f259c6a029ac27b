"""The fixed Connect Four players: win detection against the engine, the
heuristic's priorities (win, else block, else random), and their strength."""

from __future__ import annotations

import numpy as np

import pyenvpool
from trainer.evaluate import Evaluator
from trainer.opponents import (
    LINES,
    heuristic_player,
    landing_cells,
    random_player,
    winning_columns,
)


def observation(board: np.ndarray, copies: int = 1) -> dict[str, np.ndarray]:
    """The engine's observation of a loaded position (0 empty, 1 first, 2 second)."""
    with pyenvpool.make("ConnectFour-v0", copies) as pool:
        boards = np.repeat(board[None].astype(np.int32), copies, 0)
        obs, _ = pool.reset(instances={"board": boards})
        return {k: v.copy() for k, v in obs.items()}


def brute_force_wins(pieces: np.ndarray, landing: np.ndarray) -> np.ndarray:
    """winning_columns the slow way: place the piece, look at every line."""
    wins = np.zeros(landing.shape, bool)
    for b in range(len(pieces)):
        for c in range(7):
            if landing[b, c] >= 0:
                flat = pieces[b].reshape(-1).copy()
                flat[landing[b, c]] = True
                wins[b, c] = flat[LINES].all(axis=1).any()
    return wins


def test_line_table():
    assert LINES.shape == (69, 4) and len({tuple(sorted(line)) for line in LINES}) == 69


def test_landing_cells():
    board = np.zeros((6, 7), np.int32)
    board[4:, 0] = [1, 1]
    board[5, 1:5] = [2, 2, 1, 2]
    board[:, 6] = [2, 1, 2, 1, 2, 1]
    landing = landing_cells(observation(board)["board"])[0]
    rows = [3, 4, 4, 4, 4, 5]  # the lowest empty row of columns 0-5; column 6 is full
    assert landing.tolist() == [r * 7 + c for c, r in enumerate(rows)] + [-1]


def test_winning_columns_match_the_engine_and_brute_force():
    """Over positions of random games: the mover's winning columns are exactly
    the columns whose simulated move the engine rewards with +1, and both
    players' winning columns match a brute-force check."""
    n = 64
    rng = np.random.default_rng(3)
    pool = pyenvpool.make("ConnectFour-v0", n, seed=1, max_snapshots=1000)
    obs, _ = pool.reset()
    found = 0
    for _ in range(120):
        landing = landing_cells(obs["board"])
        mine = winning_columns(obs["board"][:, 0], landing)
        theirs = winning_columns(obs["board"][:, 1], landing)
        np.testing.assert_array_equal(mine, brute_force_wins(obs["board"][:, 0], landing))
        np.testing.assert_array_equal(theirs, brute_force_wins(obs["board"][:, 1], landing))
        roots = pool.snapshot()
        columns = np.tile(np.arange(7, dtype=np.int32), n)
        _, reward, *_, ids = pool.simulate(np.repeat(roots, 7), columns)
        np.testing.assert_array_equal(mine, reward.reshape(n, 7) == 1.0)
        pool.release(np.concatenate([roots, ids]))
        found += int(mine.sum())
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in obs["action_mask"]])
        obs, *_ = pool.step(actions)
    pool.close()
    assert found > 200


def test_heuristic_wins_before_it_blocks():
    # X: bottom row 0-2 (wins in column 3); O: column 6 three high (wins there).
    board = np.zeros((6, 7), np.int32)
    board[5, :3] = 1
    board[3:, 6] = 2
    obs = observation(board, copies=50)
    assert (obs["to_play"] == 0).all()
    assert (heuristic_player(0)(obs) == 3).all()


def test_heuristic_blocks_an_immediate_win():
    # X to move; O threatens both ends of the bottom row (columns 0 and 4).
    board = np.zeros((6, 7), np.int32)
    board[5, 1:4] = 2
    board[4, 1:3] = 1
    board[5, 6] = 1
    obs = observation(board, copies=200)
    actions = heuristic_player(1)(obs)
    assert set(actions.tolist()) == {0, 4}


def test_without_tactics_both_players_choose_uniformly_among_legal_columns():
    board = np.zeros((6, 7), np.int32)
    board[:, 2] = [2, 1, 2, 1, 2, 1]  # column 2 full
    obs = observation(board, copies=7000)
    for player in (random_player(0), heuristic_player(0)):
        counts = np.bincount(player(obs), minlength=7)
        assert counts[2] == 0
        legal = np.delete(counts, 2)
        assert (np.abs(legal - 7000 / 6) < 5 * np.sqrt(7000 / 6)).all(), counts


def test_player_strength_in_matches():
    """Random vs random: the first mover wins about 55.6 %; the heuristic beats
    random more than 90 % of the time and itself about half of the time."""
    evaluator = Evaluator("ConnectFour-v0", 100, seed=5)
    random_vs = evaluator.run(random_player(9), 4000)  # games in all: 2000 per opponent
    heuristic_vs = evaluator.run(heuristic_player(8), 2000)
    evaluator.close()
    assert abs(random_vs["random_first_win"] - 0.556) < 0.06
    assert abs(random_vs["random_win"] - 0.5) < 0.04
    assert heuristic_vs["random_first_win"] > 0.9 and heuristic_vs["random_second_win"] > 0.9
    assert 0.35 < heuristic_vs["heuristic_win"] < 0.65
    assert random_vs["heuristic_win"] < 0.1
