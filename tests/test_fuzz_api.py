"""Property-based fuzzing of the public API with hypothesis.

A state machine drives one pool through random sequences of reset, step,
snapshot, restore, simulate, release and close, with valid and invalid
arguments (wrong dtypes, shapes and ranges, NaN, huge values, non-contiguous
and read-only arrays, stale ids, calls after close). After every call:

- nothing crashed, and every failure was one of the documented exception
  types with a non-empty message;
- the pool is consistent: its snapshot count equals the ids we hold, and a
  restored state steps exactly as `simulate` predicted from it.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import pyenvpool

DOCUMENTED = (TypeError, ValueError, KeyError, RuntimeError, pyenvpool.SnapshotCapacityError)
N = 6
CAP = 40

junk_arrays = st.one_of(
    st.just(np.zeros(N, np.float32)),
    st.just(np.full(N, np.nan)),
    st.just(np.full(N, 2**62, np.int64)),
    st.just(np.full(N, -1, np.int8)),
    st.just(np.zeros((N, 2), np.int32)),
    st.just(np.zeros(2 * N, np.int32)[::2]),
    st.just(np.zeros(N + 1, np.int32)),
    st.just(np.zeros(0, np.int32)),
    st.just("not an array"),
    st.just(None),
    st.just([1.5] * N),
    st.just(np.array([True] * N)),
)


def _read_only(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.setflags(write=False)
    return a


class PoolMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.pool = pyenvpool.make("CartPole-v1", N, seed=0, max_snapshots=CAP, num_threads=2)
        self.pool.reset()
        self.ids: set[int] = set()
        self.released: list[int] = []
        self.closed = False

    def call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DOCUMENTED as e:
            assert str(e), f"{type(e).__name__} without a message"
            return None

    # -------------------------------------------------------------- valid
    @rule(actions=st.lists(st.integers(0, 1), min_size=N, max_size=N), ro=st.booleans())
    def step(self, actions, ro):
        a = np.array(actions, np.int32)
        result = self.call(self.pool.step, _read_only(a) if ro else a)
        if not self.closed:
            assert result is not None
            assert np.all(np.isfinite(result[0]["obs"]))

    @rule(seed=st.one_of(st.none(), st.integers(0, 2**64 - 1)))
    def reset(self, seed):
        self.call(self.pool.reset, seed=seed)

    @rule(env_ids=st.lists(st.integers(0, N - 1), min_size=1, max_size=N, unique=True))
    def snapshot(self, env_ids):
        ids = self.call(self.pool.snapshot, np.array(env_ids))
        if ids is not None:
            self.ids.update(int(i) for i in ids)

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def simulate(self, data):
        chosen = data.draw(st.lists(st.sampled_from(sorted(self.ids)), min_size=1, max_size=8))
        actions = data.draw(st.lists(st.integers(0, 1), min_size=len(chosen), max_size=len(chosen)))
        result = self.call(self.pool.simulate, np.array(chosen), np.array(actions))
        if result is not None:
            self.ids.update(int(i) for i in result[4])

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def restore_then_step_matches_simulate(self, data):
        state = data.draw(st.sampled_from(sorted(self.ids)))
        env = data.draw(st.integers(0, N - 1))
        action = data.draw(st.integers(0, 1))
        sim = self.call(self.pool.simulate, [state], [action])
        if sim is None:
            return
        sim_obs, sim_reward, sim_term, sim_trunc = (
            sim[0]["obs"].copy(),
            sim[1].copy(),
            sim[2].copy(),
            sim[3].copy(),
        )
        self.ids.add(int(sim[4][0]))
        if sim_term[0] or sim_trunc[0]:
            restored = self.call(self.pool.restore, [state], env_ids=[env])
            if restored is None:  # a finished state cannot be restored
                return
        else:
            assert self.call(self.pool.restore, [state], env_ids=[env]) is not None
        actions = np.zeros(N, np.int32)
        actions[env] = action
        obs, reward, term, trunc, info = self.pool.step(actions)
        got = info["final_obs"]["obs"][env] if (term[env] or trunc[env]) else obs["obs"][env]
        assert np.array_equal(got, sim_obs[0])
        assert reward[env] == sim_reward[0] and term[env] == sim_term[0]

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def release(self, data):
        chosen = data.draw(st.lists(st.sampled_from(sorted(self.ids)), min_size=1, max_size=10))
        self.call(self.pool.release, np.array(chosen))
        if not self.closed:
            self.ids -= set(chosen)
            self.released += chosen

    # ------------------------------------------------------------ invalid
    @rule(bad=junk_arrays)
    def step_with_junk(self, bad):
        assert self.call(self.pool.step, bad) is None

    @rule(bad=junk_arrays)
    def simulate_with_junk(self, bad):
        ids = np.array(sorted(self.ids)[:1] or [0])
        assert self.call(self.pool.simulate, ids, bad) is None
        assert self.call(self.pool.simulate, bad, [0] * N) is None

    @precondition(lambda self: self.released)
    @rule(data=st.data())
    def stale_ids_are_rejected(self, data):
        stale = data.draw(st.sampled_from(self.released))
        if stale in self.ids:
            return
        assert self.call(self.pool.release, [stale]) is None
        assert self.call(self.pool.simulate, [stale], [0]) is None
        assert self.call(self.pool.restore, [stale], env_ids=[0]) is None

    @rule(env_ids=st.sampled_from([[N], [-1], [[0]], [0.5], [2**70]]))
    def bad_env_ids(self, env_ids):
        assert self.call(self.pool.snapshot, env_ids) is None
        assert self.call(self.pool.reset, env_ids=env_ids) is None
        assert self.call(self.pool.reset, env_ids=[0, 0]) is None  # duplicates

    @rule(
        state=st.sampled_from(
            [
                np.full((N, 4), np.nan),
                np.full((N, 4), np.inf),
                np.zeros((N, 3)),
                np.zeros((N, 4), bool),
            ]
        )
    )
    def bad_instances(self, state):
        assert self.call(self.pool.reset, instances={"state": state}) is None

    @precondition(lambda self: not self.closed)
    @rule()
    def fill_to_capacity(self):
        free = CAP - len(self.ids)
        if free >= N:
            self.snapshot(list(range(N)))
        ids = self.call(self.pool.snapshot, np.arange(N))
        if ids is not None:
            self.ids.update(int(i) for i in ids)
        else:
            assert len(self.ids) + N > CAP

    @rule()
    def close(self):
        self.pool.close()
        self.closed = True

    # ---------------------------------------------------------- invariants
    @invariant()
    def counts_add_up(self):
        if not self.closed:
            assert self.pool.snapshot_count == len(self.ids)
            assert self.pool.snapshot_bytes == len(self.ids) * self.pool.state_bytes

    @invariant()
    def closed_pools_refuse_work(self):
        if self.closed:
            try:
                self.pool.step(np.zeros(N, np.int32))
            except RuntimeError as e:
                assert "closed" in str(e)
            else:
                raise AssertionError("a closed pool stepped")

    def teardown(self):
        self.pool.close()


PoolMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestPoolMachine = PoolMachine.TestCase
