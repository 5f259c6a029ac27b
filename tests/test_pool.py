"""The pool: seeding and determinism, same-step auto-reset, zero-copy views,
input validation, and thread lifecycle."""

from __future__ import annotations

import gc
import threading
import tracemalloc

import numpy as np
import pytest

import pyenvpool


def _rollout(pool, actions_seq):
    obs, _ = pool.reset()
    trace = [v.copy() for v in obs.values()]
    for actions in actions_seq:
        obs, reward, terminated, truncated, info = pool.step(actions)
        done = terminated | truncated
        trace += [v.copy() for v in obs.values()]
        trace += [reward.copy(), terminated.copy(), truncated.copy()]
        trace += [v[done].copy() for v in info["final_obs"].values()]
    return trace


@pytest.mark.parametrize("task_id", ["CartPole-v1", "Maze-v0", "BinPack-v0"])
def test_results_do_not_depend_on_num_threads(make_pool, rng, task_id):
    n = 5000  # large enough that 2+ threads really split the batch
    num_actions = make_pool(task_id, 1).spec.num_actions
    actions_seq = [rng.integers(0, num_actions, n) for _ in range(120)]
    traces = [
        _rollout(make_pool(task_id, n, num_threads=t, seed=7), actions_seq) for t in (1, 2, 3)
    ]
    for other in traces[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(traces[0], other))


def test_seeds(make_pool):
    a = make_pool("CartPole-v1", 64, seed=1).reset()[0]["obs"].copy()
    b = make_pool("CartPole-v1", 64, seed=1).reset()[0]["obs"].copy()
    c = make_pool("CartPole-v1", 64, seed=2).reset()[0]["obs"].copy()
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # Env i's stream depends on (seed, i) only: a larger pool starts the same.
    d = make_pool("CartPole-v1", 128, seed=1).reset()[0]["obs"][:64]
    assert np.array_equal(a, d)
    # reset(seed=s) restarts the streams; env rows differ from each other.
    pool = make_pool("CartPole-v1", 64, seed=9)
    e = pool.reset(seed=1)[0]["obs"].copy()
    f = pool.reset(seed=1)[0]["obs"].copy()
    assert np.array_equal(e, f)
    assert len(np.unique(e[:, 0])) == 64
    # reset(seed=None) continues the streams.
    g = pool.reset()[0]["obs"]
    assert not np.array_equal(f, g)


def test_reset_env_ids_and_per_env_seeds(make_pool):
    pool = make_pool("CartPole-v1", 8, seed=0)
    full, _ = pool.reset(seed=5)
    before = full["obs"].copy()
    obs, info = pool.reset(env_ids=[2, 5], seed=[11, 12])
    assert list(info["env_id"]) == [2, 5]
    after = pool._obs["obs"]
    untouched = [0, 1, 3, 4, 6, 7]
    assert np.array_equal(before[untouched], after[untouched])
    assert np.array_equal(obs["obs"], after[[2, 5]])
    # The same per-env seed gives the same start.
    again, _ = pool.reset(env_ids=[2, 5], seed=[11, 12])
    assert np.array_equal(again["obs"], obs["obs"])


def test_same_step_autoreset_contract(make_pool):
    n = 32
    pool = make_pool("CartPole-v1", n, seed=3)
    obs, _ = pool.reset()
    returns = np.zeros(n)
    lengths = np.zeros(n, np.int64)
    prev = obs["obs"].copy()
    finished = 0
    for _ in range(300):
        obs, reward, terminated, truncated, info = pool.step(np.ones(n, np.int32))
        returns += reward
        lengths += 1
        done = terminated | truncated
        for i in np.flatnonzero(done):
            finished += 1
            assert info["episode_return"][i] == returns[i]
            assert info["episode_length"][i] == lengths[i]
            final = info["final_obs"]["obs"][i]
            # The final obs is the terminal state (pushed right: the pole fell).
            assert abs(final[2]) > 0.2094 or abs(final[0]) > 2.4
            # obs already holds a fresh start state of the next episode.
            assert np.all(np.abs(obs["obs"][i]) <= 0.05)
        assert (info["episode_return"][~done] == 0).all()
        assert (info["episode_length"][~done] == 0).all()
        returns[done] = 0
        lengths[done] = 0
        prev = obs["obs"].copy()
    assert finished > n
    del prev


def test_step_returns_views_of_engine_memory(make_pool):
    pool = make_pool("CartPole-v1", 16)
    obs, _ = pool.reset()
    result = pool.step(np.zeros(16, np.int32))
    obs2, reward, terminated, truncated, info = result
    for arr in (
        obs2["obs"],
        reward,
        terminated,
        truncated,
        info["final_obs"]["obs"],
        info["episode_return"],
        info["episode_length"],
    ):
        assert not arr.flags.owndata
    # The same objects every step: written in place, nothing new allocated.
    assert pool.step(np.zeros(16, np.int32))[1] is reward
    assert obs2["obs"] is obs["obs"]
    before = reward.copy()
    copied = pool.step(np.zeros(16, np.int32), copy=True)
    assert copied[1].flags.owndata and copied[0]["obs"].flags.owndata
    assert reward.shape == before.shape


def test_views_stay_readable_after_close_and_collection():
    pool = pyenvpool.make("CartPole-v1", 8)
    obs, *_ = pool.step(np.zeros(8, np.int32))
    expected = obs["obs"].copy()
    pool.close()
    del pool
    gc.collect()
    assert np.array_equal(obs["obs"], expected)


@pytest.mark.parametrize("num_envs", [16, 4096])
def test_per_step_python_allocation_is_constant(make_pool, num_envs):
    pool = make_pool("CartPole-v1", num_envs)
    pool.reset()
    actions = np.zeros(num_envs, np.int32)
    for _ in range(10):
        pool.step(actions)
    tracemalloc.start()
    start = tracemalloc.take_snapshot()
    for _ in range(1000):
        pool.step(actions)
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(start, "filename"))
    tracemalloc.stop()
    assert grown < 4096, f"{grown} bytes allocated over 1000 steps of {num_envs} envs"


# ------------------------------------------------------------------ bad input
BAD_ACTIONS = [
    (np.zeros(7, np.int32), ValueError, "8 entries"),
    (np.zeros((8, 1), np.int32), ValueError, "1-D"),
    (np.zeros(8, np.float32), TypeError, "integer dtype"),
    (np.full(8, np.nan), TypeError, "integer dtype"),
    (np.zeros(8, bool), TypeError, "integer dtype"),
    (np.array([0, 1, 2, 0, 0, 0, 0, 0]), ValueError, r"actions\[2\] = 2"),
    (np.array([0, -1, 0, 0, 0, 0, 0, 0], np.int8), ValueError, r"actions\[1\] = -1"),
    (np.full(8, 2**40), ValueError, "out of range"),
    (np.full(8, 2**63 + 5, np.uint64), ValueError, "out of range"),
    (np.zeros(16, np.int32)[::2], ValueError, "C-contiguous"),
    ("01010101", TypeError, "integer dtype"),
    (None, TypeError, "None"),
    ([0.5] * 8, TypeError, "integer dtype"),
]


@pytest.mark.parametrize("actions, error, message", BAD_ACTIONS)
def test_bad_actions_raise_and_leave_pool_usable(make_pool, actions, error, message):
    pool = make_pool("CartPole-v1", 8, seed=4)
    pool.reset()
    reference = make_pool("CartPole-v1", 8, seed=4)
    reference.reset()
    with pytest.raises(error, match=message):
        pool.step(actions)
    # Nothing changed: the pool steps exactly like one that never saw the bad call.
    good = np.array([0, 1] * 4)
    for _ in range(20):
        a = pool.step(good, copy=True)
        b = reference.step(good, copy=True)
        assert np.array_equal(a[0]["obs"], b[0]["obs"]) and np.array_equal(a[1], b[1])


def _nan_at(row: int, value: float) -> np.ndarray:
    a = np.zeros((8, 1), np.float32)
    a[row, 0] = value
    return a


# Box: Pendulum-v1, Box(-2, 2, (1,)).
BAD_BOX_ACTIONS = [
    (_nan_at(2, np.nan), ValueError, r"actions\[2\] \(env 2\) is NaN or infinite"),
    (_nan_at(5, np.inf), ValueError, r"actions\[5\] \(env 5\) is NaN or infinite"),
    (_nan_at(0, -np.inf), ValueError, r"actions\[0\] \(env 0\) is NaN or infinite"),
    (np.full((8, 1), 1e300), ValueError, "beyond the float32 range"),
    (np.zeros(8, np.float32), ValueError, r"shape \(8, 1\), got \(8,\)"),
    (np.zeros((8, 2), np.float32), ValueError, r"shape \(8, 1\), got \(8, 2\)"),
    (np.zeros((8, 1, 1), np.float32), ValueError, "shape"),
    (np.zeros((9, 1), np.float32), ValueError, r"got \(9, 1\)"),
    (np.zeros((8, 1), bool), TypeError, "real .*dtype, got bool"),
    (np.zeros((8, 1), complex), TypeError, "real"),
    (np.zeros((8, 1), object), TypeError, "real"),
    ("abcdefgh", TypeError, "real"),
    (None, TypeError, "None"),
    ([[0.5]] * 7, ValueError, "shape"),
]

# MultiDiscrete: Squared-v0 with multi_discrete=True, MultiDiscrete([3, 3]).
BAD_MULTI_DISCRETE_ACTIONS = [
    (
        np.array([[1, 1]] * 3 + [[1, 3]] + [[1, 1]] * 4),
        ValueError,
        r"actions\[3, 1\] = 3 is out of range \[0, 3\)",
    ),
    (np.array([[1, 1]] * 6 + [[-1, 1]] + [[1, 1]]), ValueError, r"actions\[6, 0\] = -1"),
    (
        np.full((8, 2), 2**63 + 1, np.uint64),
        ValueError,
        r"actions\[0, 0\] = 9223372036854775809 is out of range",
    ),
    (np.full((8, 2), 2**40), ValueError, "out of range"),
    (np.ones(8, np.int32), ValueError, r"shape \(8, 2\), got \(8,\)"),
    (np.ones((8, 3), np.int32), ValueError, r"shape \(8, 2\), got \(8, 3\)"),
    (np.ones((8, 2, 1), np.int32), ValueError, "shape"),
    (np.ones((8, 2), np.float32), TypeError, "integer dtype"),
    (np.ones((8, 2), bool), TypeError, "integer dtype"),
    (np.ones((8, 4), np.int32)[:, ::2], ValueError, "C-contiguous"),
    ([[1.5, 1]] * 8, TypeError, "integer dtype"),
    (None, TypeError, "None"),
]


@pytest.mark.parametrize(
    "task_id, kwargs, good, actions, error, message",
    [
        ("Pendulum-v1", {}, np.linspace(-3, 3, 8, dtype=np.float32)[:, None], *case)
        for case in BAD_BOX_ACTIONS
    ]
    + [
        (
            "Squared-v0",
            {"multi_discrete": True},
            np.array([[k % 3, k // 3] for k in range(8)]),
            *case,
        )
        for case in BAD_MULTI_DISCRETE_ACTIONS
    ],
)
def test_bad_box_and_multi_discrete_actions_leave_pool_usable(
    make_pool, task_id, kwargs, good, actions, error, message
):
    pool = make_pool(task_id, 8, seed=4, **kwargs)
    reference = make_pool(task_id, 8, seed=4, **kwargs)
    for p in (pool, reference):
        p.reset()
        p.step(good)
    with pytest.raises(error, match=message):
        pool.step(actions)
    # Nothing changed: the pool steps exactly like one that never saw the bad call.
    for _ in range(20):
        a = pool.step(good, copy=True)
        b = reference.step(good, copy=True)
        assert all(np.array_equal(a[0][k], b[0][k]) for k in a[0])
        assert np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])


def test_python_list_actions_work(make_pool):
    pool = make_pool("CartPole-v1", 4)
    pool.reset()
    pool.step([0, 1, 0, 1])


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"env_ids": [0, 8]}, ValueError, r"env_ids\[1\] = 8"),
        ({"env_ids": [-1]}, ValueError, "out of range"),
        ({"env_ids": [1, 1]}, ValueError, "more than once"),
        ({"env_ids": [0.0]}, TypeError, "integer dtype"),
        ({"env_ids": 3}, ValueError, "scalar"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"seed": [1, 2]}, ValueError, "2 seeds for 8 envs"),
        ({"instances": {"state": np.zeros((7, 4))}}, ValueError, "shape"),
        ({"instances": {"state": np.full((8, 4), np.nan)}}, ValueError, "NaN"),
        ({"instances": {"state": np.zeros((8, 4), bool)}}, TypeError, "numeric"),
        ({"instances": {"stat": np.zeros((8, 4))}}, KeyError, "stat"),
        ({"instances": {}}, ValueError, "missing field 'state'"),
        ({"instances": [1, 2]}, TypeError, "dict"),
    ],
)
def test_bad_reset_arguments(make_pool, kwargs, error, message):
    pool = make_pool("CartPole-v1", 8)
    obs, _ = pool.reset(seed=1)
    before = obs["obs"].copy()
    with pytest.raises(error, match=message):
        pool.reset(**kwargs)
    assert np.array_equal(pool._obs["obs"], before)
    pool.step(np.zeros(8, np.int32))


@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        (("Nope-v0", 4), {}, ValueError, "known tasks: .*CartPole-v1"),
        (("CartPole-v1", 0), {}, ValueError, "num_envs"),
        (("CartPole-v1", 2.0), {}, TypeError, "num_envs"),
        (("CartPole-v1", 4), {"num_threads": 0}, ValueError, "num_threads"),
        (("CartPole-v1", 4), {"seed": -3}, ValueError, "seed"),
        (("CartPole-v1", 4), {"max_snapshots": -1}, ValueError, "max_snapshots"),
        (("CartPole-v1", 4), {"colour": "red"}, TypeError, "'colour'"),
        (("CartPole-v1", 4), {"max_episode_steps": "x"}, TypeError, "'max_episode_steps'"),
        (("CartPole-v1", 4), {"max_episode_steps": [1]}, TypeError, "'max_episode_steps'"),
        ((3, 4), {}, TypeError, "task_id"),
    ],
)
def test_bad_make_arguments(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        pyenvpool.make(*args, **kwargs)


def test_list_tasks_and_attributes(make_pool):
    assert "CartPole-v1" in pyenvpool.list_tasks()
    pool = make_pool("CartPole-v1", 3, num_threads=2)
    assert (pool.task_id, pool.num_envs, pool.num_threads) == ("CartPole-v1", 3, 2)
    assert pool.spec.num_actions == 2
    field = pool.spec.fields["obs"]
    assert field.shape == (4,) and field.dtype == np.float32
    assert "CartPole-v1" in repr(pool)
    default = make_pool("CartPole-v1", 100)
    assert 1 <= default.num_threads


# ---------------------------------------------------------------- lifecycle
def test_closed_pool_raises_runtime_error():
    with pyenvpool.make("CartPole-v1", 4) as pool:
        pool.step(np.zeros(4, np.int32))
    assert pool.closed
    for call in (
        lambda: pool.step(np.zeros(4, np.int32)),
        pool.reset,
        pool.snapshot,
        lambda: pool.render(0),
    ):
        with pytest.raises(RuntimeError, match="closed"):
            call()
    pool.close()  # idempotent


def test_many_pools_created_and_closed():
    for i in range(200):
        pool = pyenvpool.make("CartPole-v1", 4096, num_threads=4)
        pool.step(np.zeros(4096, np.int32))
        if i % 2:
            pool.close()
        del pool  # the other half is joined by garbage collection
    gc.collect()
    assert threading.active_count() >= 1


def test_stepping_while_another_pool_closes():
    stepping = pyenvpool.make("CartPole-v1", 8192, num_threads=2)
    stop = threading.Event()
    errors = []

    def closer():
        try:
            while not stop.is_set():
                p = pyenvpool.make("CartPole-v1", 8192, num_threads=2)
                p.step(np.ones(8192, np.int32))
                p.close()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    thread = threading.Thread(target=closer)
    thread.start()
    actions = np.zeros(8192, np.int32)
    for _ in range(300):
        stepping.step(actions)
    stop.set()
    thread.join()
    stepping.close()
    assert not errors


def test_concurrent_python_threads_on_one_pool_are_serialised():
    """Several threads stepping and snapshotting one pool: calls serialise, the
    result equals some sequential order, and nothing is corrupted."""
    n = 4096
    pool = pyenvpool.make("CartPole-v1", n, num_threads=2, seed=1)
    pool.reset()
    errors = []

    def worker(k):
        try:
            for _ in range(100):
                pool.step(np.full(n, k % 2, np.int32))
                ids = pool.snapshot([0, 1, 2])
                pool.release(ids)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert pool.snapshot_count == 0
    obs = pool._obs["obs"]
    assert np.all(np.isfinite(obs))
    pool.close()


def test_interpreter_exit_with_open_pools_does_not_hang(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "leave_open.py"
    script.write_text(
        "import numpy as np, pyenvpool\n"
        "pools = [pyenvpool.make('CartPole-v1', 8192, num_threads=3) for _ in range(5)]\n"
        "for p in pools: p.step(np.zeros(8192, np.int32))\n"
        "a = pyenvpool.make('Delay-v0', 8, batch_size=2, num_threads=2, delay_us=100)\n"
        "a.reset(); a.send(np.zeros(8, np.int32), np.arange(8))\n"
        "print('done')\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"


def test_pool_keeps_working_in_a_forked_child(tmp_path):
    """After fork() the child has no worker threads: its pools run every batch
    on the calling thread, with the same results. Runs in a fresh interpreter
    so no other library's threads are alive at the fork."""
    import subprocess
    import sys

    script = tmp_path / "fork.py"
    script.write_text(
        "import os, numpy as np, pyenvpool\n"
        "pool = pyenvpool.make('CartPole-v1', 8192, num_threads=2, seed=3)\n"
        "pool.reset()\n"
        "actions = np.ones(8192, np.int32)\n"
        "read, write = os.pipe()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    obs, *_ = pool.step(actions)\n"
        "    os.write(write, obs['obs'].tobytes())\n"
        "    os._exit(0)\n"
        "os.close(write)\n"
        "data = b''\n"
        "while chunk := os.read(read, 1 << 20):\n"
        "    data += chunk\n"
        "os.waitpid(pid, 0)\n"
        "child = np.frombuffer(data, np.float32).reshape(8192, 4)\n"
        "obs, *_ = pool.step(actions)\n"
        "assert np.array_equal(child, obs['obs'])\n"
        "pool.close()\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
