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
* ``opponents`` -- for two-player tasks, the fixed players that evaluations
  play matches against instead (``trainer.opponents``).

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
    opponents: Mapping[str, Callable[[int], Policy]] = field(default_factory=dict)


TASKS: dict[str, Task] = {
    # The return of an episode is its final volume utilisation.
    "BinPack-v0": Task(
        architecture="binpack_attention",
        metrics=lambda returns: {"volume_utilization": float(returns.mean())},
        report=(("volume_utilization", "volume utilisation"),),
    ),
    # The return is 1 exactly when the agent reached the target.
    "Maze-v0": Task(
        architecture="maze_vin",
        metrics=lambda returns: {"success_rate": float((returns > 0).mean())},
        report=(("success_rate", "success rate"),),
    ),
    "ConnectFour-v0": Task(
        architecture="connect_four_cnn",
        opponents={"random": random_player, "heuristic": heuristic_player},
    ),
    "Squared-v0": Task(episode_score=squared_score),
    # The return is 1 exactly when the agent recalled the cue (chance: 1 / num_cues).
    "Memory-v0": Task(
        metrics=lambda returns: {"success_rate": float((returns > 0).mean())},
        report=(("success_rate", "success rate"),),
    ),
}


def task_info(task: str) -> Task:
    """The table's entry for ``task``, or the defaults."""
    return TASKS.get(task, Task())
