"""Box and MultiDiscrete actions through every surface of the pool.

Box: Pendulum-v1 (Box(-2, 2, (1,))) and MountainCarContinuous-v0 (Box(-1, 1,
(1,))). MultiDiscrete: Squared-v0 with multi_discrete=True (MultiDiscrete([3,
3])). step, send/recv, simulate, snapshot/restore, export/import, out=,
autoreset=False and thread counts are each checked against plain synchronous
stepping; bad actions in send and simulate raise a clear error naming the env
or state id and queue or store nothing (bad actions in step: test_pool.py).
"""

from __future__ import annotations

import numpy as np
import pytest

import pyenvpool

BOX = ("Pendulum-v1", {})
BOX2 = ("MountainCarContinuous-v0", {})
MULTI = ("Squared-v0", {"multi_discrete": True})
SPACES = [BOX, BOX2, MULTI]
IDS = ["box-pendulum", "box-mountain-car", "multi-discrete-squared"]


def sample(pool, rng, k: int) -> np.ndarray:
    """k valid actions for the pool's space; Box ones up to 2.5x beyond the
    bounds (still valid: the task treats them as its original does)."""
    a = pool.spec.action
    if a.kind == "box":
        return rng.uniform(2.5 * a.low, 2.5 * a.high, (k, *a.shape)).astype(np.float32)
    if a.kind == "multi_discrete":
        return np.stack([rng.integers(0, n, k) for n in a.nvec], 1).astype(np.int32)
    return rng.integers(0, a.nvec[0], k)


def _copy(result):
    return tuple(
        {k: v.copy() for k, v in r.items()} if isinstance(r, dict) else r.copy() for r in result[:4]
    )


def _same(a, b) -> bool:
    for x, y in zip(a, b):
        if isinstance(x, dict):
            if not all(np.array_equal(x[k], y[k]) for k in x):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def test_spaces():
    pend = pyenvpool.make("Pendulum-v1", 2)
    a = pend.spec.action
    assert a.kind == "box" and a.shape == (1,) and a.low.tolist() == [-2.0]
    assert a.high.tolist() == [2.0] and pend.spec.num_actions == 0
    space = pend.single_action_space
    assert space.dtype == np.float32 and space.shape == (1,) and space.low[0] == -2.0
    sq = pyenvpool.make("Squared-v0", 2, multi_discrete=True)
    a = sq.spec.action
    assert a.kind == "multi_discrete" and a.nvec == (3, 3) and a.shape == (2,)
    assert sq.spec.num_actions == 6 and sq.single_action_space.nvec.tolist() == [3, 3]
    default = pyenvpool.make("Squared-v0", 2)
    assert default.spec.action.kind == "discrete" and default.spec.num_actions == 8
    for pool in (pend, sq, default):
        pool.close()


@pytest.mark.parametrize("task_id, kwargs", SPACES, ids=IDS)
def test_results_do_not_depend_on_num_threads(make_pool, rng, task_id, kwargs):
    n = 5000
    plan = None
    traces = []
    for threads in (1, 2, 3):
        pool = make_pool(task_id, n, num_threads=threads, seed=7, **kwargs)
        obs, _ = pool.reset()
        if plan is None:
            plan = [sample(pool, rng, n) for _ in range(60)]
        trace = [v.copy() for v in obs.values()]
        for actions in plan:
            trace += [np.copy(x) for x in _flat(pool.step(actions))]
        traces.append(trace)
    for other in traces[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(traces[0], other))


def _flat(result):
    obs, reward, terminated, truncated, info = result
    return [*obs.values(), reward, terminated, truncated, *info["final_obs"].values()]


@pytest.mark.parametrize("task_id, kwargs", [BOX, BOX2], ids=IDS[:2])
def test_box_actions_of_other_dtypes_and_layouts_become_float32(make_pool, rng, task_id, kwargs):
    """float64 (rounded to float32), integer, strided and list actions step
    exactly like the float32 arrays they convert to."""
    n, steps = 16, 40
    f64 = rng.uniform(-30, 30, (steps, n, 1))
    f64[:, 0] = 1e30 + 12345.0  # within float32's range, beyond its precision
    ints = rng.integers(-5, 6, (steps, n, 1))
    wide = np.zeros((steps, n, 3), np.float32)
    wide[..., 1] = f64[..., 0]
    cases = {
        "float64": (f64, f64.astype(np.float32)),
        "int64": (ints, ints.astype(np.float32)),
        "int8": (ints.astype(np.int8), ints.astype(np.float32)),
        "strided float32": (wide[..., 1:2], f64.astype(np.float32)),
        "list": (f64.tolist(), f64.astype(np.float32)),
    }
    for name, (given, as_float32) in cases.items():
        p = make_pool(task_id, n, seed=2, **kwargs)
        q = make_pool(task_id, n, seed=2, **kwargs)
        p.reset()
        q.reset()
        for t in range(steps):
            assert _same(_copy(p.step(given[t])), _copy(q.step(as_float32[t]))), name


def test_multi_discrete_moves_are_the_discrete_moves(make_pool, rng):
    """The 8 non-zero (horizontal, vertical) pairs are Squared's 8 moves: a
    MultiDiscrete pool and a Discrete pool with the same seed play the same
    episodes; (1, 1) keeps the agent where it is."""
    moves = [(0, -1), (0, 1), (-1, 0), (1, 0), (1, -1), (-1, -1), (1, 1), (-1, 1)]  # (row, col)
    n = 64
    multi = make_pool("Squared-v0", n, seed=5, multi_discrete=True, distance_to_target=3)
    plain = make_pool("Squared-v0", n, seed=5, distance_to_target=3)
    a, b = multi.reset()[0]["grid"].copy(), plain.reset()[0]["grid"].copy()
    assert np.array_equal(a, b)
    episodes = 0
    for _ in range(200):
        k = rng.integers(0, 8, n)
        pairs = np.array([[moves[i][1] + 1, moves[i][0] + 1] for i in k], np.int32)
        ra, rb = _copy(multi.step(pairs)), _copy(plain.step(k))
        assert _same(ra, rb)
        episodes += int(ra[2].sum())
    assert episodes > 50
    # Staying put: the agent stays, the tick advances, the reward is the current cell's.
    pool = make_pool("Squared-v0", 1, seed=0, multi_discrete=True, distance_to_target=2)
    grid = pool.reset()[0]["grid"].copy()
    obs, reward, *_ = pool.step(np.array([[1, 1]]))
    assert np.array_equal(obs["grid"][0], grid[0]) and np.argmin(grid[0]) == 12  # the centre
    targets = np.argwhere(grid[0] == 1)
    nearest = np.abs(targets - 2).max(1).min()
    assert reward[0] == np.float32(1 - nearest / 2)
    assert "tick 1/" in pool.render(0)


@pytest.mark.parametrize("task_id, kwargs", SPACES, ids=IDS)
def test_async_send_recv_equals_sync_stepping(make_pool, keep_every_env_in_flight, task_id, kwargs):
    n, b, steps = 32, 8, 40
    sync = make_pool(task_id, n, seed=9, **kwargs)
    sync.reset()
    async_pool = make_pool(task_id, n, batch_size=b, num_threads=2, seed=9, **kwargs)
    async_pool.reset()
    rng = np.random.default_rng(0)
    # Twice the steps checked: see keep_every_env_in_flight in conftest.py.
    plan = np.stack([sample(sync, rng, n) for _ in range(2 * steps)])
    expected = [_copy(sync.step(plan[t])) for t in range(len(plan))]
    # A bad send (a NaN, or a component out of range, in one row) queues nothing.
    bad = plan[0].copy()
    if bad.dtype == np.float32:
        bad[3] = np.nan
        message = r"actions\[3\] \(env 3\) is NaN"
    else:
        bad[3, 1] = 7
        message = r"actions\[3, 1\] = 7 is out of range \[0, 3\) \(env 3\)"
    with pytest.raises(ValueError, match=message):
        async_pool.send(bad, np.arange(n))
    t_of = np.zeros(n, int)
    async_pool.send(plan[0], np.arange(n))
    while t_of.min() < steps:
        obs, reward, terminated, truncated, info = async_pool.recv()
        ids = info["env_id"].copy()
        for row, env in enumerate(ids):
            e_obs, e_rew, e_term, e_trunc = expected[t_of[env]]
            for k in obs:
                assert np.array_equal(obs[k][row], e_obs[k][env])
            assert reward[row] == e_rew[env] and terminated[row] == e_term[env]
            assert truncated[row] == e_trunc[env]
            t_of[env] += 1
        keep_every_env_in_flight(async_pool, plan, t_of, ids)


@pytest.mark.parametrize("task_id, kwargs", SPACES, ids=IDS)
def test_snapshot_simulate_restore(make_pool, rng, task_id, kwargs):
    """simulate is deterministic and leaves its inputs valid; restoring a
    snapshot and stepping live gives what simulate predicted; bad simulate
    actions raise and store nothing."""
    n = 24
    pool = make_pool(task_id, n, seed=5, **kwargs)
    pool.reset()
    for _ in range(5):
        pool.step(sample(pool, rng, n))
    roots = pool.snapshot()
    plan = [sample(pool, rng, n) for _ in range(12)]
    a = pool.simulate(roots, plan[0])
    a = (*_copy(a), a[4])
    b = pool.simulate(roots, plan[0])
    b = (*_copy(b), b[4])
    assert _same(a[:4], b[:4]) and not np.intersect1d(a[4], b[4]).size
    count = pool.snapshot_count
    bad = plan[0].copy()
    if bad.dtype == np.float32:
        bad[4] = np.inf
        message = rf"actions\[4\] \(state id {roots[4]}\) is NaN or infinite"
    else:
        bad[4, 0] = 3
        message = rf"actions\[4, 0\] = 3 is out of range \[0, 3\) \(state id {roots[4]}\)"
    with pytest.raises(ValueError, match=message):
        pool.simulate(roots, bad)
    with pytest.raises(ValueError, match="shape"):
        pool.simulate(roots, plan[0][:-1])
    assert pool.snapshot_count == count
    # A branch of 12 simulated steps, then the same actions live after restoring.
    cur, sim_trace = roots, []
    for actions in plan:
        *result, cur = pool.simulate(cur, actions)
        sim_trace.append(_copy(result))
    pool.restore(roots)
    live_done = np.zeros(n, bool)
    for (s_obs, s_rew, s_term, s_trunc), actions in zip(sim_trace, plan):
        obs, reward, terminated, truncated, info = pool.step(actions)
        alive = ~live_done
        done = terminated | truncated
        for k in obs:
            final = np.where(
                done.reshape((-1,) + (1,) * (obs[k].ndim - 1)), info["final_obs"][k], obs[k]
            )
            assert np.array_equal(final[alive], s_obs[k][alive])
        assert np.array_equal(reward[alive], s_rew[alive])
        assert np.array_equal(terminated[alive], s_term[alive])
        assert np.array_equal(truncated[alive], s_trunc[alive])
        live_done |= done


@pytest.mark.parametrize("task_id, kwargs", SPACES, ids=IDS)
def test_out_buffers(make_pool, rng, task_id, kwargs):
    n = 16
    a = make_pool(task_id, n, seed=4, **kwargs)
    b = make_pool(task_id, n, seed=4, **kwargs)
    a.reset()
    b.reset()
    name, field = next(iter(a.spec.fields.items()))
    buf = np.zeros((n, *field.shape), field.dtype)
    rew = np.zeros(n, np.float32)
    for _ in range(30):
        actions = sample(a, rng, n)
        obs, reward, *_ = a.step(actions, out={name: buf, "reward": rew})
        assert np.shares_memory(obs[name], buf) and np.shares_memory(reward, rew)
        ref = b.step(actions)
        assert np.array_equal(buf, ref[0][name]) and np.array_equal(rew, ref[1])


@pytest.mark.parametrize(
    "task_id, kwargs",
    [
        BOX,
        BOX2,
        MULTI,
        ("Acrobot-v1", {}),
        ("MountainCar-v0", {}),
        ("Memory-v0", {}),
        ("CartPole-v1", {"hide_velocity": True}),
    ],
)
def test_export_import_round_trip(make_pool, rng, task_id, kwargs):
    n = 12
    a = make_pool(task_id, n, seed=3, **kwargs)
    a.reset()
    for _ in range(5):
        a.step(sample(a, rng, n))
    blob = a.export_states(a.snapshot())
    b = make_pool(task_id, n, seed=99, **kwargs)
    restored = b.restore(b.import_states(blob))
    for k, v in a._obs.items():
        assert np.array_equal(restored[k], v)
    for _ in range(30):
        actions = sample(a, rng, n)
        assert _same(_copy(a.step(actions)), _copy(b.step(actions)))


def test_autoreset_false_with_box_actions(make_pool):
    pool = make_pool("Pendulum-v1", 3, seed=1, autoreset=False, max_episode_steps=4)
    pool.reset()
    for _ in range(4):
        obs, reward, terminated, truncated, info = pool.step(np.ones((3, 1), np.float32))
    assert truncated.all() and (info["episode_length"] == 4).all()
    frozen = obs["obs"].copy()
    obs, reward, terminated, truncated, _ = pool.step(np.full((3, 1), -2.0, np.float32))
    assert np.array_equal(obs["obs"], frozen) and (reward == 0).all() and truncated.all()
    pool.reset(env_ids=[1])
    obs, *_ = pool.step(np.ones((3, 1), np.float32))
    assert np.array_equal(obs["obs"][[0, 2]], frozen[[0, 2]])
    assert not np.array_equal(obs["obs"][1], frozen[1])
