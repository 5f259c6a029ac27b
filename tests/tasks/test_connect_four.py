"""ConnectFour-v0 (csrc/tasks/connect_four.h).

* The rules, move by move: wins in all four directions, a draw on a full
  board, masks, the forfeit on an illegal move, same-step auto-reset and the
  player-relative observation.
* Parity: a plain-Python reference of the documented rules (its own board
  array and a check of all 69 lines, nothing shared with the engine's
  bitboards) is stepped in lockstep with the pool over thousands of random
  games, illegal moves included, comparing every field, reward and flag.
* Loaded positions, snapshots (restore + step == simulate, export/import),
  thread independence, bad input, render, and the Gymnasium adapter.
"""

from __future__ import annotations

import numpy as np
import pytest

import pyenvpool

ROWS, COLS = 6, 7
FIELDS = ("board", "to_play", "action_mask")


# ------------------------------------------------------------- the reference
def _lines() -> np.ndarray:
    """The 69 four-cell lines of the board, as flat cell indices [69, 4]."""
    lines = []
    for r in range(ROWS):
        for c in range(COLS):
            for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
                cells = [(r + k * dr, c + k * dc) for k in range(4)]
                if all(0 <= rr < ROWS and 0 <= cc < COLS for rr, cc in cells):
                    lines.append([rr * COLS + cc for rr, cc in cells])
    return np.array(lines)


LINES = _lines()
assert len(LINES) == 69


def has_four(pieces: np.ndarray) -> bool:
    """Whether a bool [6, 7] board of one player's pieces holds four in a row."""
    return bool(pieces.reshape(-1)[LINES].all(axis=1).any())


class Reference:
    """Connect Four as connect_four.h documents it. ``board``: 0 empty, 1 the
    first player, 2 the second; row 0 at the top."""

    def __init__(self, board: np.ndarray | None = None) -> None:
        self.reset(board)

    def reset(self, board: np.ndarray | None = None) -> None:
        self.board = np.zeros((ROWS, COLS), np.int32) if board is None else board.copy()
        self.to_play = int((self.board == 1).sum() != (self.board == 2).sum())
        self.over = False

    def obs(self) -> dict[str, np.ndarray]:
        me, other = self.to_play + 1, 2 - self.to_play
        return {
            "board": np.stack([self.board == me, self.board == other]),
            "to_play": np.int32(self.to_play),
            "action_mask": (self.board[0] == 0) & (not self.over),
        }

    def step(self, column: int) -> tuple[float, bool]:
        me = self.to_play + 1
        self.to_play ^= 1
        self.over = True
        if self.board[0, column] != 0:
            return -1.0, True  # forfeit
        row = max(r for r in range(ROWS) if self.board[r, column] == 0)
        self.board[row, column] = me
        if has_four(self.board == me):
            return 1.0, True
        if (self.board != 0).all():
            return 0.0, True
        self.over = False
        return 0.0, False


def play(pool, env_columns: list[list[int]]):
    """Step the pool with one column list per env (equal lengths); returns the
    (obs, reward, terminated, truncated, info) of every step, copied."""
    return [pool.step(np.array(columns), copy=True) for columns in zip(*env_columns)]


def random_positions(rng: np.random.Generator, count: int) -> np.ndarray:
    """Boards of unfinished games reached by random legal play, [count, 6, 7]."""
    boards = []
    while len(boards) < count:
        ref = Reference()
        for _ in range(rng.integers(0, 30)):
            legal = np.flatnonzero(ref.obs()["action_mask"])
            snapshot = ref.board.copy()
            _, done = ref.step(int(rng.choice(legal)))
            if done:
                ref.board = snapshot
                break
        boards.append(ref.board)
    return np.array(boards, np.int32)


# A full board with no four in a row for either player (21 pieces each).
DRAWN = np.array(
    [[1 if (c // 2 + r) % 2 == 0 else 2 for c in range(COLS)] for r in range(ROWS)], np.int32
)


def move_order(board: np.ndarray) -> list[int]:
    """Columns that build ``board`` from empty with alternating players (DFS)."""
    target = [list(board[::-1, c]) for c in range(COLS)]  # bottom up

    def search(heights: list[int], player: int, moves: list[int]) -> list[int] | None:
        if sum(heights) == board.size:
            return moves
        for c in range(COLS):
            if heights[c] < ROWS and target[c][heights[c]] == player:
                heights[c] += 1
                found = search(heights, 3 - player, moves + [c])
                heights[c] -= 1
                if found:
                    return found
        return None

    order = search([0] * COLS, 1, [])
    assert order is not None
    return order


# ------------------------------------------------------------------ rules
def test_spec(make_pool):
    pool = make_pool("ConnectFour-v0", 2)
    f = pool.spec.fields
    assert list(f) == list(FIELDS)
    assert (f["board"].shape, f["board"].dtype) == ((2, 6, 7), np.bool_)
    assert (f["to_play"].shape, f["to_play"].dtype) == ((), np.int32)
    assert (int(f["to_play"].low), int(f["to_play"].high)) == (0, 1)
    assert (f["action_mask"].shape, f["action_mask"].dtype) == ((7,), np.bool_)
    assert pool.spec.num_actions == 7
    assert list(pool.spec.instance_fields) == ["board"]
    obs, _ = pool.reset()
    assert not obs["board"].any() and (obs["to_play"] == 0).all() and obs["action_mask"].all()
    assert pool.single_observation_space.contains({k: np.asarray(v[0]) for k, v in obs.items()})


WINS = {
    # name: columns played from the empty board; the first player wins with the last.
    "horizontal": [0, 0, 1, 1, 2, 2, 3],
    "vertical": [4, 5, 4, 5, 4, 5, 4],
    "diagonal_up": [0, 1, 1, 2, 2, 3, 2, 3, 3, 6, 3],  # (5,0) (4,1) (3,2) (2,3)
    "diagonal_down": [6, 5, 5, 4, 4, 3, 4, 3, 3, 0, 3],  # (5,6) (4,5) (3,4) (2,3)
}
SPARE = {"horizontal": 6, "vertical": 3, "diagonal_up": 6, "diagonal_down": 0}


@pytest.mark.parametrize("name", list(WINS))
@pytest.mark.parametrize("second_player_wins", [False, True])
def test_wins_in_all_directions(make_pool, name, second_player_wins):
    columns = WINS[name]
    if second_player_wins:  # an extra first move away from the line hands the win to O
        columns = [SPARE[name]] + columns
    pool = make_pool("ConnectFour-v0", 1)
    pool.reset()
    steps = play(pool, [columns])
    for t, (_, reward, terminated, truncated, _) in enumerate(steps):
        last = t == len(columns) - 1
        assert terminated[0] == last and not truncated[0]
        assert reward[0] == (1.0 if last else 0.0)
    obs, *_, info = steps[-1]
    winner = len(columns) % 2 == 0  # 0: X won, 1: O won
    assert winner == second_player_wins
    final = info["final_obs"]
    # The final observation is seen by the loser, who would move next: the
    # winner's four are on plane 1, and nothing is legal any more.
    assert final["to_play"][0] == 1 - winner
    assert has_four(final["board"][0, 1]) and not has_four(final["board"][0, 0])
    assert not final["action_mask"][0].any()
    assert info["episode_return"][0] == 1.0 and info["episode_length"][0] == len(columns)
    # Same-step auto-reset: obs is already the next game's empty board.
    assert not obs["board"].any() and obs["to_play"][0] == 0 and obs["action_mask"].all()


def test_draw_on_a_full_board(make_pool):
    assert not has_four(DRAWN == 1) and not has_four(DRAWN == 2)
    order = move_order(DRAWN)
    pool = make_pool("ConnectFour-v0", 1)
    pool.reset()
    steps = play(pool, [order])
    for _, reward, terminated, _, _ in steps[:-1]:
        assert not terminated[0] and reward[0] == 0.0
    obs, reward, terminated, truncated, info = steps[-1]
    assert terminated[0] and not truncated[0] and reward[0] == 0.0
    assert info["episode_length"][0] == 42 and info["episode_return"][0] == 0.0
    final = info["final_obs"]
    assert final["board"][0].sum() == 42 and not final["action_mask"][0].any()
    assert final["to_play"][0] == 0  # 42 moves: the first player would be next
    np.testing.assert_array_equal(final["board"][0, 0], DRAWN == 1)
    # A draw from a loaded position: 41 pieces, the second player fills the last cell.
    almost = DRAWN.copy()
    almost[0, 2] = 0
    obs, _ = pool.reset(instances={"board": almost[None]})
    assert obs["to_play"][0] == 1 and obs["action_mask"][0].tolist() == [0, 0, 1, 0, 0, 0, 0]
    _, reward, terminated, _, info = pool.step(np.array([2]))
    assert terminated[0] and reward[0] == 0.0 and info["episode_length"][0] == 1


def test_masks_follow_full_columns(make_pool):
    pool = make_pool("ConnectFour-v0", 1)
    pool.reset()
    for t, (obs, *_rest) in enumerate(play(pool, [[3] * 6 + [2] * 5])):
        expected = np.ones(7, bool)
        expected[3] = t < 5
        np.testing.assert_array_equal(obs["action_mask"][0], expected)
        column = obs["board"][0, :, :, 3].any(0)  # column 3, either player
        assert column.sum() == min(t + 1, 6) and column[ROWS - 1 - min(t, 5) :].all()


def test_illegal_move_forfeits(make_pool):
    pool = make_pool("ConnectFour-v0", 2)
    pool.reset()
    play(pool, [[0] * 6, [1] * 6])
    before, *_ = pool.step(np.array([5, 6]), copy=True)  # X moves; O to move
    obs, reward, terminated, truncated, info = pool.step(np.array([0, 1]))  # full columns
    assert terminated.all() and not truncated.any() and (reward == -1.0).all()
    final = info["final_obs"]
    # Board unchanged, the turn passed, nothing legal.
    np.testing.assert_array_equal(final["board"], before["board"][:, ::-1])
    assert (final["to_play"] == 0).all() and not final["action_mask"].any()
    assert (info["episode_return"] == -1.0).all() and (info["episode_length"] == 8).all()
    assert not obs["board"].any() and obs["action_mask"].all()
    assert "forfeited" not in pool.render(0)  # already the next game


def test_player_relative_observation(make_pool):
    pool = make_pool("ConnectFour-v0", 1)
    pool.reset()
    (obs1, *_), (obs2, *_), (obs3, *_) = play(pool, [[3, 4, 3]])
    # After X's first move O is to move: X's piece is the opponent's (plane 1).
    assert obs1["to_play"][0] == 1
    assert not obs1["board"][0, 0].any() and obs1["board"][0, 1, 5, 3]
    # After O's reply X is to move: X's piece is now on plane 0, O's on plane 1.
    assert obs2["to_play"][0] == 0
    assert obs2["board"][0, 0, 5, 3] and obs2["board"][0, 1, 5, 4]
    assert obs2["board"][0].sum() == 2
    # The planes swap every move.
    np.testing.assert_array_equal(obs3["board"][0, 0, :, 4], obs2["board"][0, 1, :, 4])
    assert obs3["board"][0, 1, 4:, 3].all()


def test_reward_is_the_movers_and_the_game_is_zero_sum(make_pool, rng):
    """Over many random games: reward +1 only on a winning move (by either
    player), -1 only on an illegal one, and a winning move always leaves the
    four on the *opponent* plane of the next observer."""
    n = 64
    pool = make_pool("ConnectFour-v0", n, seed=2)
    obs, _ = pool.reset()
    seen = {1.0: 0, -1.0: 0}
    for _ in range(400):
        legal = obs["action_mask"]
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in legal])
        illegal = rng.random(n) < 0.02
        actions[illegal] = rng.integers(0, 7, illegal.sum())
        was_legal = legal[np.arange(n), actions]
        obs, reward, terminated, _, info = pool.step(actions)
        assert set(np.unique(reward)) <= {-1.0, 0.0, 1.0}
        np.testing.assert_array_equal(reward == -1.0, ~was_legal)
        for i in np.flatnonzero(reward == 1.0):
            assert has_four(info["final_obs"]["board"][i, 1])
            seen[1.0] += 1
        seen[-1.0] += int((reward == -1.0).sum())
        assert (terminated[reward != 0]).all()
    assert seen[1.0] > 100 and seen[-1.0] > 10


def test_random_openings(make_pool):
    """random_opening_moves=M: games start after 0..M random legal moves, none of
    which ends the game; the openings are reproducible from the seed, and the
    plain game (M = 0) starts empty."""
    pool = make_pool("ConnectFour-v0", 4000, seed=1, random_opening_moves=8)
    obs, _ = pool.reset()
    pieces = obs["board"].sum((1, 2, 3))
    counts = np.bincount(pieces, minlength=9)
    assert counts.size == 9 and (np.abs(counts - 4000 / 9) < 5 * np.sqrt(4000 / 9)).all(), counts
    np.testing.assert_array_equal(obs["to_play"], pieces % 2)
    assert obs["action_mask"].any(1).all()
    for i in range(0, 4000, 97):  # every opening is a legal, unfinished position
        board = np.where(obs["board"][i, 0], 1, 0) + np.where(obs["board"][i, 1], 2, 0)
        if obs["to_play"][i] == 1:
            board = np.where(board == 0, 0, 3 - board)  # planes are the mover's: swap back
        assert not has_four(board == 1) and not has_four(board == 2)
        assert (np.diff((board != 0).astype(int), axis=0) >= 0).all()  # no floating pieces
    again = make_pool("ConnectFour-v0", 4000, seed=1, random_opening_moves=8)
    np.testing.assert_array_equal(again.reset()[0]["board"], obs["board"])
    # Auto-reset draws new openings from each env's stream; a snapshot carries it.
    ids = pool.snapshot()
    first = pool.step(np.argmax(obs["action_mask"], 1), copy=True)
    pool.restore(ids)
    second = pool.step(np.argmax(obs["action_mask"], 1), copy=True)
    np.testing.assert_array_equal(first[0]["board"], second[0]["board"])
    pool.release(ids)
    plain = make_pool("ConnectFour-v0", 8, random_opening_moves=0)
    assert not plain.reset()[0]["board"].any()
    with pytest.raises(ValueError, match="random_opening_moves"):
        pyenvpool.make("ConnectFour-v0", 1, random_opening_moves=42)


def test_random_move_noise(make_pool):
    """random_move_probability=p replaces a move by a uniformly random legal one
    with probability p, so with p = 1 even a full column is no forfeit; with
    p = 0.25 about a quarter of the moves land elsewhere."""
    board = np.zeros((ROWS, COLS), np.int32)
    board[:, 0] = [2, 1, 2, 1, 2, 1]
    pool = make_pool("ConnectFour-v0", 7000, seed=3, random_move_probability=1.0)
    pool.reset(instances={"board": np.repeat(board[None], 7000, 0)})
    obs, reward, terminated, *_ = pool.step(np.zeros(7000, np.int32))  # column 0 is full
    assert not terminated.any() and not reward.any()
    # X's new piece is on the bottom row (plane 1 now: O is to move), beside column 0.
    assert (obs["board"][:, 1, 5, 1:].sum(1) == 1).all()
    counts = np.bincount(obs["board"][:, 1, 5, 1:].argmax(1), minlength=6)
    assert (np.abs(counts - 7000 / 6) < 5 * np.sqrt(7000 / 6)).all(), counts
    noisy = make_pool("ConnectFour-v0", 8000, seed=4, random_move_probability=0.25)
    obs, _ = noisy.reset()
    obs, *_ = noisy.step(np.full(8000, 3))
    elsewhere = ~obs["board"][:, 1, 5, 3]
    # A replaced move lands in column 3 with probability 1/7 too: 0.25 * 6/7 move away.
    assert abs(elsewhere.mean() - 0.25 * 6 / 7) < 0.02
    again = make_pool("ConnectFour-v0", 8000, seed=4, random_move_probability=0.25)
    again.reset()
    np.testing.assert_array_equal(again.step(np.full(8000, 3))[0]["board"], obs["board"])


# ----------------------------------------------------------------- parity
def test_lockstep_parity_with_python_reference(make_pool):
    """Every field, reward and flag, every step, over ~2,400 random games."""
    n, steps = 48, 1100
    rng = np.random.default_rng(7)
    pool = make_pool("ConnectFour-v0", n, seed=11)
    obs, _ = pool.reset()
    refs = [Reference() for _ in range(n)]
    outcomes = {"win": 0, "draw": 0, "forfeit": 0}
    for _ in range(steps):
        for i, ref in enumerate(refs):
            expected = ref.obs()
            for k in FIELDS:
                np.testing.assert_array_equal(obs[k][i], expected[k], err_msg=k)
        legal = obs["action_mask"]
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in legal], np.int32)
        wild = rng.random(n) < 0.03
        actions[wild] = rng.integers(0, 7, wild.sum())
        obs, reward, terminated, truncated, info = pool.step(actions)
        assert not truncated.any()
        for i, ref in enumerate(refs):
            r, done = ref.step(int(actions[i]))
            assert (reward[i], terminated[i]) == (r, done)
            if done:
                for k in FIELDS:
                    np.testing.assert_array_equal(info["final_obs"][k][i], ref.obs()[k])
                outcomes["win" if r > 0 else "forfeit" if r < 0 else "draw"] += 1
                ref.reset()
    assert outcomes["win"] > 1500 and outcomes["forfeit"] > 20, outcomes
    assert sum(outcomes.values()) > 2000, outcomes


def test_loaded_positions_match_the_reference(make_pool, rng):
    boards = random_positions(rng, 64)
    pool = make_pool("ConnectFour-v0", 64)
    obs, _ = pool.reset(instances={"board": boards})
    for i, board in enumerate(boards):
        ref = Reference(board)
        for k in FIELDS:
            np.testing.assert_array_equal(obs[k][i], ref.obs()[k])
    # Play each on with random legal moves, in lockstep.
    refs = [Reference(b) for b in boards]
    live = np.ones(64, bool)
    for _ in range(42):
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in obs["action_mask"]])
        obs, reward, terminated, *_ = pool.step(actions)
        for i in np.flatnonzero(live):
            r, done = refs[i].step(int(actions[i]))
            assert (reward[i], terminated[i]) == (r, done)
            live[i] &= not done
    assert not live.any()


# -------------------------------------------------------------- snapshots
def test_restore_and_step_equals_simulate(make_pool, rng):
    n = 32
    pool = make_pool("ConnectFour-v0", n, seed=3, max_snapshots=10_000)
    pool.reset(instances={"board": random_positions(rng, n)})
    roots = pool.snapshot()
    actions = [rng.integers(0, 7, n).astype(np.int32) for _ in range(12)]

    def simulate_all():
        cur, seen = roots, []
        for a in actions:
            obs, reward, terminated, truncated, new = pool.simulate(cur, a)
            seen.append(({k: v.copy() for k, v in obs.items()}, reward.copy(), terminated.copy()))
            if cur is not roots:
                pool.release(cur)
            cur = new
        pool.release(cur)
        return seen

    first, second = simulate_all(), simulate_all()
    for (o1, r1, t1), (o2, r2, t2) in zip(first, second):
        for k in FIELDS:
            np.testing.assert_array_equal(o1[k], o2[k])
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(t1, t2)
    # Terminal simulated states absorb: reward 0, still terminated, obs unchanged.
    ended = first[-2][2]
    assert ended.any()
    np.testing.assert_array_equal(first[-1][1][ended], 0.0)
    assert first[-1][2][ended].all()
    for k in FIELDS:
        np.testing.assert_array_equal(first[-1][0][k][ended], first[-2][0][k][ended])
    # Live envs restored to the roots follow the simulated path until their game ends.
    pool.restore(roots)
    done_before = np.zeros(n, bool)
    for a, (o_sim, r_sim, t_sim) in zip(actions, first):
        obs, reward, terminated, _, info = pool.step(a)
        live = ~done_before
        view = {
            k: np.where(terminated.reshape((n,) + (1,) * (v.ndim - 1)), info["final_obs"][k], v)
            for k, v in obs.items()
        }
        for k in FIELDS:
            np.testing.assert_array_equal(view[k][live], o_sim[k][live])
        np.testing.assert_array_equal(reward[live], r_sim[live])
        np.testing.assert_array_equal(terminated[live], t_sim[live])
        done_before |= terminated
    pool.release(roots)
    assert pool.snapshot_count == 0


def test_search_over_all_columns_finds_the_winning_move(make_pool):
    """What a search does: fan one state out over the 7 columns with simulate."""
    board = np.zeros((ROWS, COLS), np.int32)
    board[5, 1:4] = 1  # X threatens on both sides of the bottom row
    board[4, 1:4] = 2  # X to move
    pool = make_pool("ConnectFour-v0", 1, max_snapshots=100)
    pool.reset(instances={"board": board[None]})
    root = pool.snapshot()
    _, reward, terminated, _, ids = pool.simulate(np.repeat(root, 7), np.arange(7, dtype=np.int32))
    assert reward.tolist() == [1, 0, 0, 0, 1, 0, 0]
    np.testing.assert_array_equal(terminated, reward == 1)
    pool.release(np.concatenate([root, ids]))


def test_export_import_continues_exactly(make_pool, rng):
    n = 16
    a = make_pool("ConnectFour-v0", n, seed=3)
    a.reset(instances={"board": random_positions(rng, n)})
    blob = a.export_states(a.snapshot())
    b = make_pool("ConnectFour-v0", n, seed=99)
    restored = b.restore(b.import_states(blob))
    for k in FIELDS:
        np.testing.assert_array_equal(restored[k], a._obs[k])
    for _ in range(60):
        actions = rng.integers(0, 7, n)
        ra, rb = a.step(actions, copy=True), b.step(actions, copy=True)
        for k in FIELDS:
            np.testing.assert_array_equal(ra[0][k], rb[0][k])
        np.testing.assert_array_equal(ra[1], rb[1])
        np.testing.assert_array_equal(ra[2], rb[2])


def _fnv1a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


@pytest.mark.parametrize(
    "offset,value,message",
    [
        (16, 7, "higher than the board"),  # heights[0]
        (16, 1, "does not match its height"),  # heights[0] without its piece
        (23, 9, "ply does not match"),
        (24, 2, "to_play"),
        (25, 9, "outcome"),
    ],
)
def test_import_checks_states(make_pool, offset, value, message):
    """Edited bytes with a recomputed checksum cannot smuggle in a state the
    engine's Step could not handle (State: pieces [2] u64, heights [7] u8,
    ply, to_play, outcome)."""
    pool = make_pool("ConnectFour-v0", 1)
    pool.reset()
    blob = bytearray(pool.export_states(pool.snapshot()))
    header = 16 + 4 + 4 + 8 + 4 + len("ConnectFour-v0") + 4 + len(pool.config)
    blob[header + offset] = value
    body = bytes(blob[:-8])
    with pytest.raises(ValueError, match=message):
        pool.import_states(body + _fnv1a(body).to_bytes(8, "little"))
    assert pool.snapshot_count == 1


def test_results_do_not_depend_on_threads(make_pool):
    runs = []
    for threads in (1, 2):
        pool = make_pool("ConnectFour-v0", 4096, seed=9, num_threads=threads)
        rng = np.random.default_rng(2)
        total = 0.0
        for _ in range(100):
            obs, reward, *_ = pool.step(rng.integers(0, 7, 4096))
            total += np.abs(reward).sum()
        runs.append((total, {k: v.copy() for k, v in obs.items()}))
    assert runs[0][0] == runs[1][0] > 0
    for k in FIELDS:
        np.testing.assert_array_equal(runs[0][1][k], runs[1][1][k])


# -------------------------------------------------------------- bad input
def _edit(cell, value):
    def change(board):
        board[cell] = value

    return change


@pytest.mark.parametrize(
    "change,message",
    [
        (_edit((5, 0), 3), r"cell \(5, 0\) is 3"),
        (_edit((5, 0), -1), r"cell \(5, 0\) is -1"),
        (_edit((2, 6), 1), r"cell \(2, 6\) holds a piece above an empty cell"),
        (lambda b: b.__setitem__((5, slice(0, 3)), 1), "first-player and"),
        (lambda b: b.__setitem__((slice(2, 6), 0), [1, 2, 2, 2]), "first-player and"),
        (
            lambda b: (b.__setitem__((5, slice(0, 4)), 1), b.__setitem__((4, slice(0, 4)), 2)),
            "four in a row",
        ),
        (lambda b: b.__setitem__(slice(None), DRAWN), "full"),
    ],
)
def test_bad_instances_raise_and_change_nothing(make_pool, change, message):
    pool = make_pool("ConnectFour-v0", 2)
    live, _ = pool.reset()
    pool.step(np.array([3, 4]))
    before = {k: v.copy() for k, v in live.items()}
    boards = np.zeros((2, ROWS, COLS), np.int32)
    change(boards[1])
    with pytest.raises(ValueError, match=message):
        pool.reset(instances={"board": boards})
    for k in FIELDS:
        np.testing.assert_array_equal(live[k], before[k])
    with pytest.raises(TypeError, match="integer"):
        pool.reset(instances={"board": boards.astype(np.float32)})
    with pytest.raises(ValueError, match="shape"):
        pool.reset(instances={"board": np.zeros((2, 7, 6), np.int32)})
    with pytest.raises(ValueError):
        pool.step(np.array([7, 0]))  # out of the action range: rejected by the bindings
    with pytest.raises(TypeError, match="unknown task kwarg 'rows'"):
        pyenvpool.make("ConnectFour-v0", 1, rows=5)
    obs, *_ = pool.step(np.array([3, 3]))  # the pool still works
    assert (obs["to_play"] == 0).all() and (obs["board"].sum((1, 2, 3)) == 2).all()


def test_render(make_pool):
    pool = make_pool("ConnectFour-v0", 1)
    pool.reset()
    play(pool, [[3, 3, 4]])
    text = pool.render(0)
    lines = text.splitlines()
    assert lines[5] == ". . . X X . ." and lines[4] == ". . . O . . ."
    assert lines[6] == "0 1 2 3 4 5 6" and lines[7] == "ply 3, O to move"


# -------------------------------------------------------------- Gymnasium
def test_gymnasium_adapter():
    gym = pytest.importorskip("gymnasium")
    from gymnasium.vector import AutoresetMode

    env = gym.make_vec(
        "pyenvpool/ConnectFour-v0", num_envs=4, autoreset_mode=AutoresetMode.SAME_STEP, seed=1
    )
    try:
        assert isinstance(env.single_observation_space, gym.spaces.Dict)
        assert set(env.single_observation_space) == set(FIELDS)
        assert env.single_action_space == gym.spaces.Discrete(7)
        obs, _ = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        rng = np.random.default_rng(0)
        games = 0
        for _ in range(200):
            actions = np.array([rng.choice(np.flatnonzero(m)) for m in obs["action_mask"]])
            obs, reward, terminated, truncated, info = env.step(actions)
            assert env.observation_space.contains(obs)
            for i in np.flatnonzero(terminated):
                # Rows of a 0-d field come back as NumPy scalars (Box.contains warns on them).
                final = {k: np.asarray(v) for k, v in info["final_obs"][i].items()}
                assert env.single_observation_space.contains(final)
                assert reward[i] == 1.0 or final["board"].sum() == 42
                games += 1
        assert games > 10
    finally:
        env.close()


# Frame layout: a 48-pixel strip above a board of 64-pixel cells.
RED, YELLOW, WHITE = (220, 40, 40), (245, 200, 30), (255, 255, 255)


def _cell(frame, row, col, dx=0):
    return tuple(frame[48 + 64 * row + 32, 64 * col + 32 + dx])


def test_frames_show_the_board_and_whose_turn_it_is(make_pool):
    board = np.zeros((6, 7), np.int32)
    board[5, :3] = 1  # the first player threatens four on the bottom row
    board[5:3:-1, 5] = 2
    board[:5, 0] = [1, 2, 1, 2, 2]  # column 0 is full
    assert (board == 1).sum() == (board == 2).sum() == 5  # so the first player moves
    pool = make_pool("ConnectFour-v0", 1, autoreset=False)
    pool.reset(instances={"board": board[None]})
    assert pool.frame_shape == (432, 448, 3)
    frame = pool.render(0, mode="rgb_array")
    colours = {0: WHITE, 1: RED, 2: YELLOW}
    for r in range(6):
        for c in range(7):
            assert _cell(frame, r, c) == colours[board[r, c]], (r, c)
    assert tuple(frame[100, 64]) == (0, 84, 180)  # the blue board between holes
    # Red discs over the open columns: the first player's turn.
    assert tuple(frame[24, 32]) != RED and all(
        tuple(frame[24, 64 * c + 32]) == RED for c in range(1, 7)
    )
    pool.step(np.array([3], np.int32))  # four in a row
    frame = pool.render(0, mode="rgb_array")
    assert (frame[:48] == RED).all(axis=-1).all()  # the strip in the winner's colour
    for c in range(4):  # each connected disc has a white ring
        assert _cell(frame, 5, c) == RED and _cell(frame, 5, c, dx=14) == WHITE
    assert _cell(frame, 4, 5, dx=14) == YELLOW  # other discs do not
