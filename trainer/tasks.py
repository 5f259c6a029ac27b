"""What the trainer knows about each task, in one table: edit ``TASKS`` to teach it a task.

A task the table does not name trains with the defaults of ``Task()``: an MLP
over all observation fields, evaluated on its returns and lengths. An entry
adds what differs:

* ``architecture`` -- the network that ``network.architecture: auto`` picks
  (``trainer.networks``);
* ``metrics`` -- evaluation numbers computed from the evaluated episodes'
  returns, logged with the EVALUATOR event;
* ``report`` -- which of those numbers ``--evaluate`` prints, with a label;
* ``episode_score`` -- a per-episode score read from the last observation of
  each finished episode (PufferLib's ``info["score"]``), logged as ``score``;
* ``success`` -- for binary-return tasks, which episodes succeeded (from
  their returns): evaluations report ``success_rate``, the console and the
  plot show it with a 95 % Wilson interval instead of a min-max band;
* ``opponents`` -- for two-player tasks, the fixed players that evaluations
  play matches against instead (``trainer.opponents``), weakest first; the
  pictures and videos of ``--evaluate`` play the last (the strongest);
* ``players`` -- for two-player tasks, what the first and the second player
  look like in the task's pictures;
* ``test_task`` -- for a task that exists only to test the engine, what
  training it does instead of learning: training it starts with a warning;
* ``video_fps`` -- frames per second of its evaluation videos (Gymnasium's
  rate where Gymnasium has the task, a slow pace for boards and grids).

Training hyperparameters live beside this table, in the task's embedded YAML:
``trainer/configs/<task>.yaml``, and ``<task>.<algo>.yaml`` for the settings
that change when another algorithm trains it (see ``trainer.config``).

The table imports nothing heavier than NumPy, so the config and the CLI can
read it without loading torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from trainer.opponents import Policy, heuristic_player, random_player


def pool_config(pool: Any) -> dict[str, str]:
    """The pool's resolved task parameters, ``pool.config`` ("key=value;...") as a dict."""
    return dict(item.split("=", 1) for item in pool.config.split(";") if item)


def squared_score(pool: Any, final_obs: dict[str, np.ndarray]) -> np.ndarray:
    """Squared-v0: the fraction of targets hit; targets left are the +1 cells at the end."""
    num_targets = int(pool_config(pool)["num_targets"])
    left = (final_obs["grid"] == 1).sum(axis=(1, 2))
    return 1.0 - left / num_targets


@dataclass(frozen=True)
class Task:
    """The trainer's knowledge of one task (see the module docstring)."""

    architecture: str = "mlp"
    metrics: Callable[[np.ndarray], dict[str, float]] | None = None
    report: tuple[tuple[str, str], ...] = ()
    episode_score: Callable[[Any, dict[str, np.ndarray]], np.ndarray] | None = None
    success: Callable[[np.ndarray], np.ndarray] | None = None
    opponents: Mapping[str, Callable[[int], Policy]] = field(default_factory=dict)
    players: tuple[str, str] = ("the first player", "the second player")
    test_task: str | None = None
    video_fps: int = 30


def won(returns: np.ndarray) -> np.ndarray:
    """Episodes with a positive return: Maze reached its target, a game was won."""
    return returns > 0


TASKS: dict[str, Task] = {
    "CartPole-v1": Task(video_fps=50),
    # The return of an episode is its final volume utilisation.
    "BinPack-v0": Task(
        architecture="binpack_attention",
        metrics=lambda returns: {"volume_utilization": float(returns.mean())},
        report=(("volume_utilization", "volume utilisation"),),
        video_fps=4,
    ),
    # The return is 1 exactly when the agent reached the target.
    "Maze-v0": Task(
        architecture="maze_vin",
        success=won,
        report=(("success_rate", "success rate"),),
        video_fps=8,
    ),
    # The return is the result of a game for the policy: +1, 0 or -1.
    "ConnectFour-v0": Task(
        architecture="connect_four_cnn",
        success=won,
        report=(("success_rate", "win rate over all games"),),
        opponents={"random": random_player, "heuristic": heuristic_player},
        players=("X (moving first)", "O (moving second)"),
        video_fps=2,
    ),
    "Squared-v0": Task(episode_score=squared_score, video_fps=8),
    "Bandit-v0": Task(video_fps=4),
    "Acrobot-v1": Task(video_fps=15),
    "Delay-v0": Task(test_task="every action earns 1, so a run only times the trainer itself"),
    # The return is 1 exactly when the agent recalled the cue (chance: 1 / num_cues).
    "Memory-v0": Task(
        success=won,
        report=(("success_rate", "success rate"),),
        video_fps=4,
    ),
}


def task_info(task: str) -> Task:
    """The table's entry for ``task``, or the defaults."""
    return TASKS.get(task, Task())
