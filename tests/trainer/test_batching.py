"""The batch arithmetic: sizes per rank and per update, updates a budget buys."""

from __future__ import annotations

import pytest

from trainer.batching import Batching


def test_sizes_of_one_update():
    batching = Batching(num_envs=8, num_steps=16, world_size=3)
    assert batching.rank_batch_size == 128 and batching.batch_size == 384
    assert batching.minibatch_size(4) == 32


def test_a_budget_buys_whole_updates_rounded_up():
    batching = Batching(8, 16)
    assert [batching.num_updates(steps) for steps in (1, 128, 129, 1280)] == [1, 1, 2, 10]
    # A resumed run: 3 updates done, the steps left (new budget 1000) round up.
    assert batching.updates_after(3, 384, 1000) == 3 + 5
    assert batching.updates_after(3, 384, 100) == 3  # the budget is already spent


def test_uneven_minibatches_are_refused():
    with pytest.raises(ValueError, match="num_envs \\* num_steps = 128 is not divisible by 3"):
        Batching(8, 16).minibatch_size(3)
