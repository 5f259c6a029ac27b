"""The per-task table: every entry names an architecture the networks and the
config know, tasks without an entry get the defaults, and the table's
metrics and opponents are what evaluations use."""

from __future__ import annotations

import typing

import numpy as np

from trainer.config import NetworkConfig, embedded_tasks, resolve
from trainer.evaluate import summarize
from trainer.networks import ARCHITECTURES
from trainer.tasks import TASKS, Task, task_info


def test_every_default_architecture_exists():
    choices = set(typing.get_args(NetworkConfig.model_fields["architecture"].annotation))
    assert set(ARCHITECTURES) == choices - {"auto"}
    for task, entry in TASKS.items():
        assert entry.architecture in ARCHITECTURES, task


def test_auto_picks_the_tables_architecture():
    for task in embedded_tasks():
        config = resolve(flags={"task": task, "architecture": "auto"})
        assert config.network.architecture == task_info(task).architecture


def test_a_task_without_an_entry_gets_the_defaults():
    assert task_info("NoSuchTask-v0") == Task() and Task().architecture == "mlp"


def test_metrics_and_reports():
    returns, lengths = np.array([1.0, 0.0, 1.0, 1.0]), np.array([5, 9, 7, 3])
    assert summarize("Maze-v0", returns, lengths)["success_rate"] == 0.75
    assert task_info("BinPack-v0").metrics(returns) == {"volume_utilization": 0.75}
    for task, entry in TASKS.items():
        reported = {key for key, _ in entry.report}
        assert reported <= set(summarize(task, returns, lengths)), task
    assert set(task_info("ConnectFour-v0").opponents) == {"random", "heuristic"}
    assert (
        summarize("ConnectFour-v0", np.array([1.0, 0.0, -1.0, 1.0]), lengths)["success_rate"] == 0.5
    )  # a game is a success when it is won


def test_only_the_test_task_is_marked_as_one():
    import pyenvpool

    marked = {task for task in pyenvpool.list_tasks() if task_info(task).test_task}
    assert marked == {"Delay-v0"}
