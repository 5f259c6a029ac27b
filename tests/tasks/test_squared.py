"""Squared-v0 against a Python reference of PufferLib Ocean's Squared, step by step.

The reference is PufferLib's ``Squared.step`` (pufferlib/environments/ocean/ocean.py,
~1.0) with the one documented difference: a target that is hit is cleared from
the grid. Targets come from the engine's own RNG, so each reference episode
starts from the engine's first observation of that episode.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import pyenvpool
from trainer.tasks import squared_score

# PufferLib's MOVES, (row, col) deltas.
MOVES = [(0, -1), (0, 1), (-1, 0), (1, 0), (1, -1), (-1, -1), (1, 1), (-1, 1)]
ACTION_OF_DIRECTION = {move: action for action, move in enumerate(MOVES)}


class ReferenceSquared:
    """One Squared episode, started from the engine's first observation of it."""

    def __init__(self, d: int, first_grid: np.ndarray) -> None:
        self.d = d
        self.targets = {(int(r), int(c)) for r, c in np.argwhere(first_grid == 1)}
        self.num_targets = len(self.targets)
        self.max_ticks = self.num_targets * d
        self.agent = (d, d)
        self.tick = 0
        assert first_grid[d, d] == -1 and (first_grid == -1).sum() == 1

    def step(self, action: int) -> tuple[np.float32, bool]:
        x, y = self.agent
        dx, dy = MOVES[action]
        x, y = x + dx, y + dy
        min_dist = min(max(abs(x - tx), abs(y - ty)) for tx, ty in self.targets)
        reward = 1 - min_dist / self.d
        self.targets.discard((x, y))
        if max(abs(x - self.d), abs(y - self.d)) >= self.d:
            self.agent = (self.d, self.d)
        else:
            self.agent = (x, y)
        self.tick += 1
        return np.float32(reward), self.tick >= self.max_ticks

    def grid(self) -> np.ndarray:
        side = 2 * self.d + 1
        grid = np.zeros((side, side), np.float32)
        for cell in self.targets:
            grid[cell] = 1
        grid[self.agent] = -1
        return grid

    def oracle_action(self) -> int:
        """A straight run to the nearest target left: optimal."""
        r, c = self.agent
        tr, tc = min(self.targets, key=lambda t: max(abs(t[0] - r), abs(t[1] - c)))
        return ACTION_OF_DIRECTION[(int(np.sign(tr - r)), int(np.sign(tc - c)))]


def score_of(final_grid: np.ndarray, num_targets: int) -> float:
    return 1.0 - float((final_grid == 1).sum()) / num_targets


@pytest.mark.parametrize(
    "kwargs,d",
    [({}, 1), ({"distance_to_target": 2}, 2), ({"distance_to_target": 3, "num_targets": 5}, 3)],
)
def test_lockstep_parity_with_reference(make_pool, kwargs, d):
    """Random and oracle moves mixed (so episodes hit targets too): rewards, flags,
    observations, final observations and episode totals equal the reference's."""
    n, steps = 24, 600
    rng = np.random.default_rng(d)
    pool = make_pool("Squared-v0", n, num_threads=2, seed=7, **kwargs)
    obs, _ = pool.reset()
    refs = [ReferenceSquared(d, obs["grid"][i]) for i in range(n)]
    returns = np.zeros(n)
    episodes = full_scores = 0
    for _ in range(steps):
        greedy = rng.random(n) < 0.6
        actions = np.array(
            [ref.oracle_action() if g else rng.integers(0, 8) for ref, g in zip(refs, greedy)]
        )
        obs, reward, terminated, truncated, info = pool.step(actions)
        assert not truncated.any()
        for i, ref in enumerate(refs):
            ref_reward, ref_done = ref.step(int(actions[i]))
            returns[i] += ref_reward
            assert reward[i] == ref_reward
            assert terminated[i] == ref_done
            if ref_done:
                np.testing.assert_array_equal(info["final_obs"]["grid"][i], ref.grid())
                assert info["episode_length"][i] == ref.max_ticks
                assert info["episode_return"][i] == pytest.approx(returns[i], abs=1e-5)
                episodes += 1
                full_scores += not ref.targets
                refs[i] = ReferenceSquared(d, obs["grid"][i])
                returns[i] = 0.0
            else:
                np.testing.assert_array_equal(obs["grid"][i], ref.grid())
    assert episodes > 3 * n and full_scores > 0


@pytest.mark.parametrize("d,num_targets", [(1, 4), (2, 8), (3, 12), (4, 3)])
def test_oracle_hits_every_target_with_the_best_return(make_pool, d, num_targets):
    """A straight run to the nearest target each time: score 1 and return
    num_targets * (d + 1) / 2, the maximum; the episode lasts num_targets * d steps."""
    n = 8
    pool = make_pool("Squared-v0", n, seed=3, distance_to_target=d, num_targets=num_targets)
    obs, _ = pool.reset()
    refs = [ReferenceSquared(d, obs["grid"][i]) for i in range(n)]
    for t in range(1, num_targets * d + 1):
        actions = np.array([ref.oracle_action() for ref in refs])
        for ref, a in zip(refs, actions):
            ref.step(int(a))
        obs, reward, terminated, _, info = pool.step(actions)
        assert terminated.all() == (t == num_targets * d) and terminated.any() == terminated.all()
        j = (t - 1) % d + 1  # move j of a run pays j / d
        assert (reward == np.float32(1 - (d - j) / d)).all()
    np.testing.assert_allclose(info["episode_return"], num_targets * (d + 1) / 2, rtol=1e-6)
    assert (info["episode_length"] == num_targets * d).all()
    assert (info["final_obs"]["grid"] == 1).sum() == 0
    np.testing.assert_array_equal(squared_score(pool, info["final_obs"]), np.ones(n))


def test_teleport_target_removal_and_reward(make_pool):
    """d = 2: two moves north reach the perimeter; the agent is back at the
    centre, a hit target is gone from the grid and paid 1, a miss paid 1 - m/d."""
    n, d = 64, 2
    pool = make_pool("Squared-v0", n, seed=11, distance_to_target=d)
    obs, _ = pool.reset()
    first = obs["grid"].copy()
    targets = [np.argwhere(grid == 1) for grid in first]

    def expected_reward(cell):
        return np.array([1 - np.abs(t - cell).max(axis=1).min() / d for t in targets], np.float32)

    obs, reward, terminated, _, _ = pool.step(np.full(n, 2))
    np.testing.assert_array_equal(reward, expected_reward((1, 2)))
    assert (obs["grid"][:, 1, 2] == -1).all()
    obs, reward, terminated, _, _ = pool.step(np.full(n, 2))
    np.testing.assert_array_equal(reward, expected_reward((0, 2)))
    assert not terminated.any()
    hit = first[:, 0, 2] == 1
    assert hit.any() and (~hit).any()
    assert (reward[hit] == 1.0).all() and (reward[~hit] < 1.0).all()
    assert (obs["grid"][:, d, d] == -1).all()  # teleported to the centre
    assert (obs["grid"][:, 0, 2] == 0).all()  # the hit target is cleared
    assert ((obs["grid"] == 1).sum(axis=(1, 2)) == 8 - hit).all()


def test_reset_draws_num_targets_uniformly_on_the_perimeter(make_pool):
    d, num_targets, n = 2, 6, 4000
    pool = make_pool("Squared-v0", n, seed=1, distance_to_target=d, num_targets=num_targets)
    grids = pool.reset()[0]["grid"]
    assert ((grids == 1).sum(axis=(1, 2)) == num_targets).all()
    assert (grids[:, 1:-1, 1:-1] != 1).all()  # nothing inside the perimeter
    assert (grids[:, d, d] == -1).all() and ((grids == -1).sum(axis=(1, 2)) == 1).all()
    freq = (grids == 1).mean(axis=0)
    perimeter = np.ones((5, 5), bool)
    perimeter[1:-1, 1:-1] = False
    expected = num_targets / (8 * d)  # 0.375; binomial std over 4000 draws ~0.008
    assert np.abs(freq[perimeter] - expected).max() < 0.04


def test_spec_defaults_and_config(make_pool):
    pool = make_pool("Squared-v0", 2)
    assert pool.spec.num_actions == 8
    field = pool.spec.fields["grid"]
    assert field.shape == (3, 3) and field.dtype == np.float32
    assert field.low.min() == -1 and field.high.max() == 1
    assert pool.config == "distance_to_target=1;multi_discrete=0;num_targets=4;"


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"distance_to_target": 0}, ValueError, "distance_to_target"),
        ({"distance_to_target": 32}, ValueError, "distance_to_target"),
        ({"distance_to_target": 1.5}, TypeError, "distance_to_target"),
        ({"num_targets": 0}, ValueError, "num_targets"),
        ({"distance_to_target": 2, "num_targets": 17}, ValueError, r"num_targets.*\[1, 16\]"),
        ({"num_targets": -1}, ValueError, "num_targets"),
        ({"grid_size": 5}, TypeError, "grid_size"),
    ],
)
def test_bad_kwargs(kwargs, error, message):
    with pytest.raises(error, match=message):
        pyenvpool.make("Squared-v0", 1, **kwargs)


def test_instances_are_refused(make_pool):
    pool = make_pool("Squared-v0", 2)
    with pytest.raises(ValueError, match="does not accept instances"):
        pool.reset(instances={"grid": np.zeros((2, 3, 3), np.float32)})
    pool.step(np.zeros(2, np.int32))  # still works


def test_determinism_by_seed_and_threads(make_pool, rng):
    actions = [rng.integers(0, 8, 3000) for _ in range(60)]

    def run(seed, threads):
        pool = make_pool("Squared-v0", 3000, seed=seed, num_threads=threads, distance_to_target=2)
        total = 0.0
        for a in actions:
            obs, reward, *_ = pool.step(a)
            total += float(reward.sum())
        return total, obs["grid"].copy()

    a, b, c = run(5, 1), run(5, 2), run(6, 2)
    assert a[0] == b[0] and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def _copy(result):
    obs, reward, terminated, truncated, ids = result
    return {k: v.copy() for k, v in obs.items()}, reward.copy(), terminated.copy(), ids


def test_restore_then_step_equals_simulate(make_pool, rng):
    n = 32
    pool = make_pool("Squared-v0", n, seed=5, distance_to_target=2)
    for _ in range(5):
        pool.step(rng.integers(0, 8, n))
    roots = pool.snapshot()
    plan = [rng.integers(0, 8, n) for _ in range(20)]
    trace, cur = [], roots
    for actions in plan:
        obs, reward, terminated, cur = _copy(pool.simulate(cur, actions))
        trace.append((obs, reward, terminated))
    again, cur = [], roots
    for actions in plan:  # the same branch again: identical
        obs, reward, terminated, cur = _copy(pool.simulate(cur, actions))
        again.append((obs, reward, terminated))
    for (o1, r1, t1), (o2, r2, t2) in zip(trace, again):
        assert np.array_equal(o1["grid"], o2["grid"]) and np.array_equal(r1, r2)
        assert np.array_equal(t1, t2)
    pool.restore(roots)
    ended = np.zeros(n, bool)
    for (s_obs, s_reward, s_term), actions in zip(trace, plan):
        obs, reward, terminated, _, info = pool.step(actions)
        live = ~ended
        grid = np.where(terminated[:, None, None], info["final_obs"]["grid"], obs["grid"])
        assert np.array_equal(grid[live], s_obs["grid"][live])
        assert np.array_equal(reward[live], s_reward[live])
        assert np.array_equal(terminated[live], s_term[live])
        # Finished simulated states are absorbing: reward 0, still terminated.
        assert (s_reward[ended] == 0).all() and s_term[ended].all()
        ended |= terminated
    assert ended.all()  # every episode (16 steps) ended within the 20-step branch


def test_export_import_round_trip_continues_exactly(make_pool, rng):
    n = 16
    a = make_pool("Squared-v0", n, seed=3, distance_to_target=3)
    for _ in range(4):
        a.step(rng.integers(0, 8, n))
    blob = a.export_states(a.snapshot())
    b = make_pool("Squared-v0", n, seed=99, distance_to_target=3)
    restored = b.restore(b.import_states(blob))
    assert np.array_equal(restored["grid"], a._obs["grid"])
    for _ in range(40):  # crosses episode ends: the RNG came along too
        actions = rng.integers(0, 8, n)
        ra, rb = a.step(actions, copy=True), b.step(actions, copy=True)
        assert np.array_equal(ra[0]["grid"], rb[0]["grid"]) and np.array_equal(ra[1], rb[1])
    with pytest.raises(ValueError, match="distance_to_target=2"):
        make_pool("Squared-v0", n, distance_to_target=2).import_states(blob)


def _fnv1a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


@pytest.mark.parametrize(
    "offset,value,message",
    [
        (36, 0, "agent not strictly inside the perimeter"),  # State.row, after Rng + tick
        (32, 255, "tick outside"),  # State.tick = 255 > max_ticks = 16
        (47, 0x80, "target bit beyond the perimeter"),  # bit 63 of targets[0]; 16 cells
    ],
)
def test_import_checks_the_state(make_pool, offset, value, message):
    """Bytes with a valid checksum still cannot smuggle in a state Step would
    index the grid out of bounds with."""
    pool = make_pool("Squared-v0", 1, distance_to_target=2)
    blob = bytearray(pool.export_states(pool.snapshot()))
    header = 16 + 4 + 4 + 8 + 4 + len("Squared-v0") + 4 + len(pool.config)
    blob[header + offset] = value
    body = bytes(blob[:-8])
    with pytest.raises(ValueError, match=message):
        pool.import_states(body + _fnv1a(body).to_bytes(8, "little"))
    assert pool.snapshot_count == 1


def test_gymnasium_make_vec():
    envs = gym.make_vec("pyenvpool/Squared-v0", num_envs=4, vectorization_mode="vector_entry_point")
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (4, 3, 3) and envs.single_action_space == gym.spaces.Discrete(8)
    assert envs.single_observation_space.shape == (3, 3)
    for _ in range(4):
        obs, reward, terminated, truncated, _ = envs.step(envs.action_space.sample())
    assert terminated.all() and obs.shape == (4, 3, 3)
    envs.close()


def test_render(make_pool):
    pool = make_pool("Squared-v0", 1, seed=2, distance_to_target=2)
    obs, _ = pool.reset()
    lines = pool.render(0).splitlines()
    chars = np.array([list(line) for line in lines[:5]])
    np.testing.assert_array_equal(chars == "T", obs["grid"][0] == 1)
    assert chars[2, 2] == "A" and lines[5] == "tick 0/16  targets hit 0/8"


def test_frames_show_the_grid_targets_and_agent(make_pool):
    pool = make_pool("Squared-v0", 4, seed=2, distance_to_target=2)
    obs, _ = pool.reset()
    cell = 64  # 5 x 5 cells of 64 pixels, and an 8-pixel progress bar
    assert pool.frame_shape == (5 * cell + 8, 5 * cell, 3)
    for _ in range(3):
        frames = pool.render(None, mode="rgb_array")
        for grid, frame in zip(obs["grid"], frames):
            centres = frame[cell // 2 : 5 * cell : cell, cell // 2 : 5 * cell : cell]
            assert ((centres == (220, 60, 40)).all(axis=-1) == (grid == 1)).all()
            assert ((centres == (40, 90, 220)).all(axis=-1) == (grid == -1)).all()
        obs, *_ = pool.step(np.zeros(4, np.int32), copy=True)
    bar = pool.render(0, mode="rgb_array")[5 * cell + 4]
    assert (bar == (90, 90, 90)).all(axis=-1).sum() == 3 * 5 * cell // 16  # 3 of 4d^2 = 16 ticks
