"""Property-based fuzzing of the public API with hypothesis.

A state machine drives one pool through random sequences of reset, step,
snapshot, restore, simulate, release and close, with valid and invalid
arguments (wrong dtypes, shapes and ranges, NaN, huge values, non-contiguous
and read-only arrays, stale ids, calls after close). It runs once per action
space: Discrete (CartPole-v1), Box (Pendulum-v1, valid actions any finite
float32, huge ones included) and MultiDiscrete (Squared-v0 with
multi_discrete=True). After every call:

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

junk_discrete = st.one_of(
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
junk_box = st.one_of(
    st.just(np.full((N, 1), np.nan, np.float32)),
    st.just(np.full((N, 1), -np.inf)),
    st.just(np.full((N, 1), 1e300)),
    st.just(np.zeros(N, np.float32)),
    st.just(np.zeros((N, 2), np.float32)),
    st.just(np.zeros((N + 1, 1), np.float32)),
    st.just(np.zeros((0, 1), np.float32)),
    st.just(np.zeros((N, 1), bool)),
    st.just(np.zeros((N, 1), complex)),
    st.just("not an array"),
    st.just(None),
    st.just([[np.nan]] * N),
)
junk_multi_discrete = st.one_of(
    st.just(np.full((N, 2), 3, np.int32)),
    st.just(np.full((N, 2), -1, np.int8)),
    st.just(np.full((N, 2), 2**63 + 1, np.uint64)),
    st.just(np.zeros(N, np.int32)),
    st.just(np.zeros((N, 3), np.int32)),
    st.just(np.zeros((N, 4), np.int32)[:, ::2]),
    st.just(np.zeros((N, 2), np.float32)),
    st.just(np.zeros((N, 2), bool)),
    st.just("not an array"),
    st.just(None),
    st.just([[1.5, 0]] * N),
)
finite_float32 = st.floats(allow_nan=False, allow_infinity=False, width=32)


def _read_only(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.setflags(write=False)
    return a


class PoolMachine(RuleBasedStateMachine):
    TASK, KWARGS = "CartPole-v1", {}
    STATE_WIDTH = 4  # of the task's 'state' instance field; None: no instances
    JUNK = junk_discrete

    def __init__(self):
        super().__init__()
        self.pool = pyenvpool.make(
            self.TASK, N, seed=0, max_snapshots=CAP, num_threads=2, **self.KWARGS
        )
        self.space = self.pool.spec.action
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

    def actions(self, data, k: int) -> np.ndarray:
        """k valid actions of the pool's space."""
        space = self.space
        if space.kind == "box":
            size = k * int(np.prod(space.shape))
            values = data.draw(st.lists(finite_float32, min_size=size, max_size=size))
            return np.array(values, np.float32).reshape((k, *space.shape))
        rows = [[data.draw(st.integers(0, n - 1)) for n in space.nvec] for _ in range(k)]
        a = np.array(rows, np.int32)
        return a[:, 0] if space.kind == "discrete" else a

    def zeros(self) -> np.ndarray:
        """Valid actions for every env (0 is in every space here)."""
        return np.zeros((N, *self.space.shape), self.space.dtype)

    # -------------------------------------------------------------- valid
    @rule(data=st.data(), ro=st.booleans())
    def step(self, data, ro):
        a = self.actions(data, N)
        result = self.call(self.pool.step, _read_only(a) if ro else a)
        if not self.closed:
            assert result is not None
            assert all(np.all(np.isfinite(v)) for v in result[0].values())

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
        actions = self.actions(data, len(chosen))
        result = self.call(self.pool.simulate, np.array(chosen), actions)
        if result is not None:
            self.ids.update(int(i) for i in result[4])

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def restore_then_step_matches_simulate(self, data):
        state = data.draw(st.sampled_from(sorted(self.ids)))
        env = data.draw(st.integers(0, N - 1))
        action = self.actions(data, 1)
        sim = self.call(self.pool.simulate, [state], action)
        if sim is None:
            return
        sim_obs = {k: v.copy() for k, v in sim[0].items()}
        sim_reward, sim_term, sim_trunc = sim[1].copy(), sim[2].copy(), sim[3].copy()
        self.ids.add(int(sim[4][0]))
        if sim_term[0] or sim_trunc[0]:
            restored = self.call(self.pool.restore, [state], env_ids=[env])
            if restored is None:  # a finished state cannot be restored
                return
        else:
            assert self.call(self.pool.restore, [state], env_ids=[env]) is not None
        actions = self.zeros()
        actions[env] = action[0]
        obs, reward, term, trunc, info = self.pool.step(actions)
        done = term[env] or trunc[env]
        for k in obs:
            got = info["final_obs"][k][env] if done else obs[k][env]
            assert np.array_equal(got, sim_obs[k][0])
        assert reward[env] == sim_reward[0] and term[env] == sim_term[0]
        assert trunc[env] == sim_trunc[0]

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def release(self, data):
        chosen = data.draw(st.lists(st.sampled_from(sorted(self.ids)), min_size=1, max_size=10))
        self.call(self.pool.release, np.array(chosen))
        if not self.closed:
            self.ids -= set(chosen)
            self.released += chosen

    # ------------------------------------------------------------ invalid
    @rule(data=st.data())
    def step_with_junk(self, data):
        assert self.call(self.pool.step, data.draw(self.JUNK)) is None

    @rule(data=st.data())
    def simulate_with_junk(self, data):
        bad = data.draw(self.JUNK)
        ids = np.array(sorted(self.ids)[:1] or [0])
        assert self.call(self.pool.simulate, ids, bad) is None
        assert self.call(self.pool.simulate, bad, self.zeros()) is None

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

    @rule(bad=st.sampled_from(["nan", "inf", "narrow", "bool"]))
    def bad_instances(self, bad):
        d = self.STATE_WIDTH or 4  # a task without instances refuses any
        state = {
            "nan": np.full((N, d), np.nan),
            "inf": np.full((N, d), np.inf),
            "narrow": np.zeros((N, d - 1)),
            "bool": np.zeros((N, d), bool),
        }[bad]
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
                self.pool.step(self.zeros())
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


class BoxPoolMachine(PoolMachine):
    TASK, KWARGS = "Pendulum-v1", {}
    STATE_WIDTH = 2
    JUNK = junk_box


class MultiDiscretePoolMachine(PoolMachine):
    TASK, KWARGS = "Squared-v0", {"multi_discrete": True}
    STATE_WIDTH = None
    JUNK = junk_multi_discrete


for machine in (BoxPoolMachine, MultiDiscretePoolMachine):
    machine.TestCase.settings = settings(
        max_examples=80,
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
TestBoxPoolMachine = BoxPoolMachine.TestCase
TestMultiDiscretePoolMachine = MultiDiscretePoolMachine.TestCase
