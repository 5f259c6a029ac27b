"""Fixed opponents for two-player tasks, to measure self-play agents against.

A self-play agent's training returns say nothing about its strength (it
plays itself), so two-player tasks are evaluated in matches against fixed
players (``evaluate.Evaluator``). For ``ConnectFour-v0``:

* ``random`` -- a uniformly random legal column;
* ``heuristic`` -- one-step lookahead: win at once if a column does, else
  block a column where the opponent would win at once, else random legal
  (ties uniformly at random).

A player is built from a seed (``random_player(seed)``) and maps a batch of
observations to actions, like a policy; ``tasks.TASKS`` names each task's
players. Players read only the player-relative ``board`` planes (plane 0: the
mover's pieces, plane 1 the opponent's; row 0 at the top) and
``action_mask``, batched in NumPy: a line table of the 69 four-cell lines
turns "does this column win" into two small matrix products.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Policy = Callable[[dict[str, np.ndarray]], np.ndarray]
ROWS, COLS = 6, 7


def _lines() -> np.ndarray:
    """The 69 four-in-a-row lines of a 6 x 7 board as flat cell indices [69, 4]."""
    lines = []
    for r in range(ROWS):
        for c in range(COLS):
            for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
                end_r, end_c = r + 3 * dr, c + 3 * dc
                if 0 <= end_r < ROWS and 0 <= end_c < COLS:
                    lines.append([(r + k * dr) * COLS + c + k * dc for k in range(4)])
    return np.array(lines)


LINES = _lines()
# CELL_LINES[cell, line] = 1 when the cell lies on the line.
CELL_LINES = np.zeros((ROWS * COLS, len(LINES)), np.float32)
CELL_LINES[LINES, np.arange(len(LINES))[:, None]] = 1.0


def landing_cells(board: np.ndarray) -> np.ndarray:
    """Flat index of the cell a piece dropped into each column lands on, [B, 7];
    -1 for a full column. ``board``: [B, 2, 6, 7] planes."""
    empty = ROWS - board.any(axis=1).sum(axis=1)  # [B, 7]: empty cells, all at the top
    return np.where(empty > 0, (empty - 1) * COLS + np.arange(COLS), -1)


def winning_columns(pieces: np.ndarray, landing: np.ndarray) -> np.ndarray:
    """[B, 7] bool: dropping one of ``pieces``' owner's pieces into the column
    completes four in a row. ``pieces``: [B, 6, 7] bool; ``landing``: from
    ``landing_cells``. A line through an empty landing cell that holds three of
    the owner's pieces is completed by it, and no other line is."""
    counts = pieces.reshape(len(pieces), -1).astype(np.float32) @ CELL_LINES  # [B, 69]
    completes = (counts == 3).astype(np.float32) @ CELL_LINES.T  # [B, 42]
    wins = np.take_along_axis(completes, np.maximum(landing, 0), axis=1) > 0
    return wins & (landing >= 0)


def _choose(allowed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One allowed column per row, uniformly at random."""
    return np.where(allowed, rng.random(allowed.shape), -1.0).argmax(axis=1)


def random_player(seed: int) -> Policy:
    """Uniformly random legal columns."""
    rng = np.random.default_rng(seed)

    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        return _choose(np.asarray(obs["action_mask"], bool), rng)

    return act


def heuristic_player(seed: int) -> Policy:
    """Win now if possible, else block the opponent's immediate win, else random legal."""
    rng = np.random.default_rng(seed)

    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        board = np.asarray(obs["board"], bool)
        legal = np.asarray(obs["action_mask"], bool)
        landing = landing_cells(board)
        win = winning_columns(board[:, 0], landing) & legal
        block = winning_columns(board[:, 1], landing) & legal
        allowed = np.where(
            win.any(1, keepdims=True), win, np.where(block.any(1, keepdims=True), block, legal)
        )
        return _choose(allowed, rng)

    return act
