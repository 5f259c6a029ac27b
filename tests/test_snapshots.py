"""The snapshot store: snapshot, restore, simulate and release."""

from __future__ import annotations

import resource

import numpy as np
import pytest

import pyenvpool

TASKS = [
    "CartPole-v1",
    "Maze-v0",
    "BinPack-v0",
    "Squared-v0",
    "ConnectFour-v0",
    "Bandit-v0",
    "Memory-v0",
]


def _copy(result):
    obs, reward, terminated, truncated, ids = result
    return (
        {k: v.copy() for k, v in obs.items()},
        reward.copy(),
        terminated.copy(),
        truncated.copy(),
        ids,
    )


@pytest.mark.parametrize("task_id", TASKS)
def test_simulate_is_deterministic_and_leaves_inputs_valid(make_pool, rng, task_id):
    pool = make_pool(task_id, 64, seed=2)
    pool.reset()
    roots = pool.snapshot()
    actions = rng.integers(0, pool.spec.num_actions, 64)
    a = _copy(pool.simulate(roots, actions))
    b = _copy(pool.simulate(roots, actions))
    for name in a[0]:
        assert np.array_equal(a[0][name], b[0][name])
    assert np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
    assert not np.intersect1d(a[4], b[4]).size and not np.intersect1d(a[4], roots).size
    assert pool.snapshot_count == 3 * 64
    pool.release(np.concatenate([roots, a[4], b[4]]))
    assert pool.snapshot_count == 0


@pytest.mark.parametrize("task_id", TASKS)
def test_restore_then_step_equals_simulate(make_pool, rng, task_id):
    n = 32
    pool = make_pool(task_id, n, seed=5)
    pool.reset()
    for _ in range(7):
        pool.step(rng.integers(0, pool.spec.num_actions, n))
    ids = pool.snapshot()
    plan = [rng.integers(0, pool.spec.num_actions, n) for _ in range(30)]
    # Simulate a 30-step branch from the snapshot, stopping where an episode ends.
    cur = ids
    sim_trace = []
    for actions in plan:
        obs, reward, terminated, truncated, cur = _copy(pool.simulate(cur, actions))
        sim_trace.append((obs, reward, terminated, truncated))
    # Play the same actions on live envs after restoring.
    pool.restore(ids)
    live_done = np.zeros(n, bool)
    for (s_obs, s_rew, s_term, s_trunc), actions in zip(sim_trace, plan):
        obs, reward, terminated, truncated, info = pool.step(actions)
        alive = ~live_done
        # Until an env's first episode end, live and simulated agree exactly.
        done = terminated | truncated
        final = {
            k: np.where(done.reshape((-1,) + (1,) * (v.ndim - 1)), info["final_obs"][k], v)
            for k, v in obs.items()
        }
        for k in obs:
            assert np.array_equal(final[k][alive], s_obs[k][alive])
        assert np.array_equal(reward[alive], s_rew[alive])
        assert np.array_equal(terminated[alive], s_term[alive])
        assert np.array_equal(truncated[alive], s_trunc[alive])
        live_done |= terminated | truncated
    assert live_done.any()  # the test exercised the absorbing rows too


def test_terminal_states_are_absorbing(make_pool):
    pool = make_pool("CartPole-v1", 1, seed=0)
    pool.reset()
    cur = pool.snapshot()
    while True:
        obs, reward, terminated, truncated, nxt = pool.simulate(cur, [1])
        cur = nxt
        if terminated[0]:
            break
    last_obs = obs["obs"].copy()
    for _ in range(3):
        obs, reward, terminated, truncated, cur = pool.simulate(cur, [0])
        assert reward[0] == 0.0 and terminated[0] and not truncated[0]
        assert np.array_equal(obs["obs"], last_obs)
    with pytest.raises(ValueError, match="finished episode"):
        pool.restore(cur, env_ids=[0])


def test_fan_out_one_root_to_a_thousand_particles(make_pool, rng):
    pool = make_pool("CartPole-v1", 1, seed=1)
    pool.reset()
    root = pool.snapshot()
    particles = np.repeat(root, 1000)
    actions = rng.integers(0, 2, 1000)
    obs, reward, terminated, truncated, ids = pool.simulate(particles, actions)
    assert obs["obs"].shape == (1000, 4) and len(np.unique(ids)) == 1000
    # Particles with the same action reach the same state.
    left, right = obs["obs"][actions == 0], obs["obs"][actions == 1]
    assert (left == left[0]).all() and (right == right[0]).all()
    assert not np.array_equal(left[0], right[0])
    # Restore many envs from one id.
    pool2 = make_pool("CartPole-v1", 50, seed=1)
    restored = pool2.restore(np.repeat(pool2.snapshot([0]), 50))
    assert (restored["obs"] == restored["obs"][0]).all()


def test_simulate_buffers_grow_and_are_reused(make_pool):
    pool = make_pool("CartPole-v1", 4)
    pool.reset()
    roots = pool.snapshot()
    small = pool.simulate(roots, [0, 1, 0, 1])
    kept = small[0]["obs"].copy()
    big = pool.simulate(np.repeat(roots, 500), np.zeros(2000, np.int64))
    assert big[0]["obs"].shape == (2000, 4)
    # Views from before the growth still hold their rows (the old buffer lives on).
    assert np.array_equal(small[0]["obs"], kept)
    again = pool.simulate(roots, [0, 0, 0, 0])
    assert again[0]["obs"].base is not None


def test_capacity_error_then_pool_still_works(make_pool):
    pool = make_pool("CartPole-v1", 8, max_snapshots=20)
    pool.reset()
    ids = pool.snapshot()
    more = pool.snapshot()
    assert pool.max_snapshots == 20 and pool.snapshot_count == 16
    with pytest.raises(pyenvpool.SnapshotCapacityError, match="max_snapshots=20"):
        pool.snapshot()
    with pytest.raises(pyenvpool.SnapshotCapacityError):
        pool.simulate(np.concatenate([ids, more[:0]]), np.zeros(8, np.int32))
    assert pool.snapshot_count == 16  # nothing half-stored
    pool.release(more)
    obs, reward, *_, new = pool.simulate(ids, np.zeros(8, np.int32))
    assert len(new) == 8 and pool.snapshot_count == 16
    pool.step(np.zeros(8, np.int32))
    pool.release(np.concatenate([ids, new]))
    assert pool.snapshot_count == 0 and pool.snapshot_bytes == 0


def test_stale_unknown_and_double_released_ids(make_pool):
    pool = make_pool("CartPole-v1", 2)
    pool.reset()
    ids = pool.snapshot()
    pool.release(ids)
    stale = int(ids[0])
    with pytest.raises(KeyError, match=str(stale)):
        pool.release([stale])
    with pytest.raises(KeyError, match=str(stale)):
        pool.simulate([stale], [0])
    with pytest.raises(KeyError, match=str(stale)):
        pool.restore([stale, stale])
    # The slot is reused with a new generation: the stale id still fails.
    fresh = pool.snapshot()
    assert stale not in fresh
    with pytest.raises(KeyError, match=str(stale)):
        pool.release([stale])
    with pytest.raises(KeyError, match="123456789"):
        pool.release([123456789])
    with pytest.raises(KeyError, match="-4"):
        pool.release([-4])
    # A failing call releases nothing, even the valid ids in it.
    with pytest.raises(KeyError):
        pool.release([fresh[0], stale])
    assert pool.snapshot_count == 2
    pool.release([fresh[0], fresh[0], fresh[1]])  # duplicates in one call are fine
    assert pool.snapshot_count == 0
    pool.release([stale, fresh[0]], missing_ok=True)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda p, ids: p.simulate(ids, [0]), ValueError, "actions must have 2 entries"),
        (lambda p, ids: p.simulate(ids, [0, 5]), ValueError, r"actions\[1\] = 5"),
        (lambda p, ids: p.simulate(ids, [0.0, 1.0]), TypeError, "integer dtype"),
        (lambda p, ids: p.simulate(ids.astype(float), [0, 1]), TypeError, "state_ids"),
        (lambda p, ids: p.simulate(ids[None], [0, 1]), ValueError, "1-D"),
        (
            lambda p, ids: p.restore(ids),
            ValueError,
            "state_ids has 2 entries but the pool has 4 envs",
        ),
        (lambda p, ids: p.restore(ids, env_ids=[0]), ValueError, "env_ids has 1"),
        (lambda p, ids: p.restore(ids, env_ids=[0, 0]), ValueError, "more than once"),
        (lambda p, ids: p.restore(ids, env_ids=[0, 9]), ValueError, "out of range"),
        (lambda p, ids: p.snapshot([4]), ValueError, "out of range"),
        (lambda p, ids: p.release("abc"), TypeError, "integer dtype"),
        (lambda p, ids: p.release(np.zeros(4, np.int64)[::2]), ValueError, "C-contiguous"),
    ],
)
def test_bad_snapshot_arguments(make_pool, call, error, message):
    pool = make_pool("CartPole-v1", 4)
    pool.reset()
    ids = pool.snapshot([0, 1])
    with pytest.raises(error, match=message):
        call(pool, ids)
    assert pool.snapshot_count == 2
    obs, reward, terminated, truncated, new = pool.simulate(ids, [0, 1])
    pool.release(np.concatenate([ids, new]))
    assert pool.snapshot_count == 0


def _rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_a_million_operations_leak_nothing(make_pool):
    """10^6 snapshot/simulate/release operations (in batches) leave the live
    count where it started and the resident set flat."""
    n = 1000
    pool = make_pool("CartPole-v1", n, seed=3)
    pool.reset()
    actions = np.zeros(n, np.int32)
    ops = 0

    def cycle():
        nonlocal ops
        ids = pool.snapshot()
        *_, new = pool.simulate(ids, actions)
        pool.release(ids)
        pool.release(new)
        pool.step(actions)
        ops += 4 * n

    for _ in range(20):
        cycle()
    rss_before = _rss_kib()
    while ops < 1_000_000:
        cycle()
    assert pool.snapshot_count == 0
    assert _rss_kib() - rss_before < 2048  # KiB


@pytest.mark.parametrize("task_id", TASKS)
def test_export_import_round_trip_continues_exactly(make_pool, rng, task_id):
    n = 16
    a = make_pool(task_id, n, seed=3)
    a.reset()
    num_actions = a.spec.num_actions
    for _ in range(5):
        a.step(rng.integers(0, num_actions, n))
    ids = a.snapshot()
    blob = a.export_states(ids)
    assert isinstance(blob, bytes) and a.snapshot_count == n  # exporting keeps the ids
    b = make_pool(task_id, n, seed=99)  # another seed: every bit must come from the blob
    restored = b.restore(b.import_states(blob))
    for k, v in a._obs.items():
        assert np.array_equal(restored[k], v)
    for _ in range(30):
        actions = rng.integers(0, num_actions, n)
        ra, rb = a.step(actions, copy=True), b.step(actions, copy=True)
        for k in ra[0]:
            assert np.array_equal(ra[0][k], rb[0][k])
        assert np.array_equal(ra[1], rb[1]) and np.array_equal(ra[2], rb[2])
        assert np.array_equal(ra[4]["episode_return"], rb[4]["episode_return"])


def test_import_refuses_foreign_or_damaged_bytes(make_pool):
    maze = make_pool("Maze-v0", 2)
    maze.reset()
    blob = maze.export_states(maze.snapshot())
    other_config = make_pool("Maze-v0", 2, time_limit=50)
    cartpole = make_pool("CartPole-v1", 2)
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0xFF
    cases = [
        (other_config, blob, "time_limit=50"),
        (cartpole, blob, "for task Maze-v0"),
        (maze, blob[:-1], "checksum"),
        (maze, blob[:30], "checksum|truncated"),
        (maze, bytes(flipped), "checksum"),
        (maze, b"\x00" * 64, "magic"),
    ]
    for pool, data, message in cases:
        before = pool.snapshot_count
        with pytest.raises(ValueError, match=message):
            pool.import_states(data)
        assert pool.snapshot_count == before
    with pytest.raises(TypeError, match="bytes"):
        maze.import_states("not bytes")
    capped = make_pool("Maze-v0", 2, max_snapshots=1)
    with pytest.raises(pyenvpool.SnapshotCapacityError):
        capped.import_states(blob)
    assert capped.snapshot_count == 0


def test_config_lists_every_parameter(make_pool):
    assert make_pool("Maze-v0", 1).config == make_pool("Maze-v0", 1, time_limit=100).config
    assert "time_limit=100" in make_pool("Maze-v0", 1).config


def _fnv1a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def test_import_checks_states_even_with_a_valid_checksum(make_pool):
    """A blob edited on purpose (checksum recomputed) still cannot smuggle in a
    state the task's Step would index out of bounds with."""
    pool = make_pool("Maze-v0", 1)
    pool.reset()
    blob = bytearray(pool.export_states(pool.snapshot()))
    header = 16 + 4 + 4 + 8 + 4 + len("Maze-v0") + 4 + len(pool.config)
    blob[header + 4] = 200  # State.agent_row, just after the int32 step count
    body = bytes(blob[:-8])
    forged = body + _fnv1a(body).to_bytes(8, "little")
    with pytest.raises(ValueError, match="agent position outside the maze"):
        pool.import_states(forged)
    assert pool.snapshot_count == 1


@pytest.mark.parametrize("task_id", TASKS)
def test_exports_are_deterministic_bytes(make_pool, task_id):
    blobs = []
    for _ in range(2):
        pool = make_pool(task_id, 8, seed=4)
        pool.reset()
        pool.step(np.zeros(8, np.int32))
        *_, ids = pool.simulate(pool.snapshot(), np.zeros(8, np.int32))
        blobs.append(pool.export_states(ids))
    assert blobs[0] == blobs[1]
