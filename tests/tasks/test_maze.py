"""Maze-v0 against Jumanji 1.1.2 `Maze-v0`.

* Step parity, bit for bit: Jumanji's own reset states (and arbitrary wall
  grids) are loaded with ``reset(instances=...)``, both sides get the same
  action stream (mostly random legal moves, some uniformly random ones that
  bump into walls), and every observation field, reward and done flag is
  compared on every step. Jumanji's time-limit termination is our
  ``truncated``.
* The generator cannot be matched key for key (Jumanji draws from JAX's
  threefry), so it is checked by structure and by distribution against a
  Jumanji sample, with tolerances derived from the sample sizes.
* Then the pyenvpool-specific parts: one-strike variant, truncation and
  ``final_obs``, snapshots, bad input, render.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import jumanji
import numpy as np
import pytest
from jumanji.environments.routing.maze import Maze as JumanjiMaze
from jumanji.environments.routing.maze.generator import RandomGenerator
from jumanji.environments.routing.maze.types import Position, State

import pyenvpool

FIELDS = ("walls", "agent_position", "target_position", "step_count", "action_mask")
MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]])  # Up, Right, Down, Left


# ---------------------------------------------------------------- Jumanji side
@functools.cache
def jumanji_env(num_rows: int = 10, num_cols: int = 10, time_limit: int | None = None):
    if (num_rows, num_cols, time_limit) == (10, 10, None):
        return jumanji.make("Maze-v0")
    return JumanjiMaze(RandomGenerator(num_rows, num_cols), time_limit=time_limit)


@functools.cache
def _batched_reset(env):
    return jax.jit(jax.vmap(env.reset))


@functools.cache
def _batched_rollout(env, num_steps: int):
    """Steps a batch of states `num_steps` times. Per step each env draws a
    legal move uniformly with probability `p_legal`, else any of the 4 actions
    uniformly (often a wall bump, Jumanji's no-op)."""
    step = jax.vmap(env.step)

    def run(states, key, p_legal):
        def body(state, k):
            k_legal, k_any, k_mix = jax.random.split(k, 3)
            batch = state.step_count.shape[0]
            scores = jax.random.uniform(k_legal, (batch, 4)) * state.action_mask
            legal = jnp.argmax(scores, axis=-1).astype(jnp.int32)
            anything = jax.random.randint(k_any, (batch,), 0, 4, dtype=jnp.int32)
            action = jnp.where(jax.random.uniform(k_mix, (batch,)) < p_legal, legal, anything)
            state, ts = step(state, action)
            return state, (action, ts.observation, ts.reward, ts.step_type)

        return jax.lax.scan(body, states, jax.random.split(key, num_steps))[1]

    return jax.jit(run)


def observation_arrays(obs) -> dict[str, np.ndarray]:
    """Jumanji's Observation as our fields (positions as (row, col) pairs)."""
    return {
        "walls": np.asarray(obs.walls),
        "agent_position": np.stack([obs.agent_position.row, obs.agent_position.col], -1),
        "target_position": np.stack([obs.target_position.row, obs.target_position.col], -1),
        "step_count": np.asarray(obs.step_count),
        "action_mask": np.asarray(obs.action_mask),
    }


def jumanji_states(env, walls, agent, target) -> State:
    """A batch of Jumanji states from arbitrary instances (walls [B, R, C])."""
    walls = jnp.asarray(walls)
    agent_pos = Position(jnp.asarray(agent[:, 0], jnp.int32), jnp.asarray(agent[:, 1], jnp.int32))
    target_pos = Position(
        jnp.asarray(target[:, 0], jnp.int32), jnp.asarray(target[:, 1], jnp.int32)
    )
    return State(
        agent_position=agent_pos,
        target_position=target_pos,
        walls=walls,
        action_mask=jax.vmap(env._compute_action_mask)(walls, agent_pos),
        key=jax.random.split(jax.random.PRNGKey(0), len(agent)),
        step_count=jnp.zeros(len(agent), jnp.int32),
    )


def jumanji_reference(env, states, key, p_legal: float, num_steps: int) -> dict:
    """Jumanji's trajectory with the expected pyenvpool flags."""
    action, obs, reward, step_type = _batched_rollout(env, num_steps)(states, key, p_legal)
    obs = observation_arrays(obs)
    reward = np.asarray(reward)
    done = np.asarray(step_type) == 2  # StepType.LAST
    truncated = obs["step_count"] >= env.time_limit
    terminated = (reward == 1.0) | ~obs["action_mask"].any(-1)
    # Jumanji's single `done` splits exactly into our two flags.
    np.testing.assert_array_equal(done, terminated | truncated)
    return dict(
        action=np.asarray(action),
        obs=obs,
        reward=reward,
        terminated=terminated,
        truncated=truncated,
    )


# -------------------------------------------------------------- pyenvpool side
def pool_rollout(pool, instances, actions: np.ndarray) -> tuple[dict, dict]:
    """Loads `instances`, steps with actions [T, N]; the per-step observation
    of the episode (final_obs on the step that ends it), rewards and flags."""
    obs0, _ = pool.reset(instances=instances)
    first = {k: v.copy() for k, v in obs0.items()}
    num_steps, n = actions.shape
    out = {
        "obs": {k: np.empty((num_steps, *v.shape), v.dtype) for k, v in first.items()},
        "reward": np.empty((num_steps, n), np.float32),
        "terminated": np.empty((num_steps, n), bool),
        "truncated": np.empty((num_steps, n), bool),
    }
    for t in range(num_steps):
        obs, reward, terminated, truncated, info = pool.step(actions[t])
        done = terminated | truncated
        for k in obs:
            out["obs"][k][t] = np.where(
                done.reshape((n,) + (1,) * (obs[k].ndim - 1)), info["final_obs"][k], obs[k]
            )
        out["reward"][t], out["terminated"][t], out["truncated"][t] = reward, terminated, truncated
    return first, out


def assert_episodes_match(ours: dict, ref: dict, invalid_terminates: bool = False) -> tuple:
    """Compares every step of every env's first episode; returns (episodes, steps)."""
    ended = ref["terminated"] | ref["truncated"]
    if invalid_terminates:
        # One strike: the episode Jumanji would have played, cut at the first
        # illegal action, which ends it with reward 0 (Jumanji's no-op step).
        mask_before = np.concatenate([ref["first_mask"][None], ref["obs"]["action_mask"][:-1]])
        illegal = ~np.take_along_axis(mask_before, ref["action"][..., None], -1)[..., 0]
        ended = ended | illegal
    # alive[t]: step t belongs to the first episode (up to and including its end).
    alive = np.cumsum(ended, axis=0) - ended == 0
    if invalid_terminates:
        ref = dict(ref, terminated=ref["terminated"] | illegal)
        ref["reward"] = np.where(illegal, 0.0, ref["reward"])
    for t in range(alive.shape[0]):
        rows = alive[t]
        for k in FIELDS:
            np.testing.assert_array_equal(
                ours["obs"][k][t][rows], ref["obs"][k][t][rows], err_msg=f"{k} at step {t}"
            )
        np.testing.assert_array_equal(
            ours["reward"][t][rows], ref["reward"][t][rows], err_msg=f"reward at step {t}"
        )
        for flag in ("terminated", "truncated"):
            np.testing.assert_array_equal(
                ours[flag][t][rows], ref[flag][t][rows], err_msg=f"{flag} at step {t}"
            )
    assert ended.any(0).all(), "every episode must end inside the window"
    return alive.shape[1], int(alive.sum())


def check_parity(pool, env, states, key, p_legal, invalid_terminates=False) -> tuple:
    ref_obs = observation_arrays(jax.vmap(env._observation_from_state)(states))
    num_steps = env.time_limit
    ref = jumanji_reference(env, states, key, p_legal, num_steps)
    ref["first_mask"] = ref_obs["action_mask"]
    instances = {
        "walls": ref_obs["walls"],
        "agent_position": ref_obs["agent_position"].astype(np.int32),
        "target_position": ref_obs["target_position"].astype(np.int32),
    }
    first, ours = pool_rollout(pool, instances, ref["action"])
    for k in FIELDS:
        np.testing.assert_array_equal(first[k], ref_obs[k], err_msg=f"reset {k}")
    return assert_episodes_match(ours, ref, invalid_terminates)


def random_grids(rng, n, rows, cols, density):
    """Arbitrary (non-maze) instances: random walls, agent and target on free cells."""
    walls = rng.random((n, rows, cols)) < density
    agent = np.empty((n, 2), np.int32)
    target = np.empty((n, 2), np.int32)
    for i in range(n):
        free = np.argwhere(~walls[i])
        while len(free) < 2:
            walls[i] = rng.random((rows, cols)) < density
            free = np.argwhere(~walls[i])
        a, b = rng.choice(len(free), 2, replace=False)
        agent[i], target[i] = free[a], free[b]
    return walls, agent, target


# ------------------------------------------------------------------- parity
BATCH = 256


@pytest.mark.parametrize("p_legal", [0.8, 0.3])
def test_step_parity_on_jumanji_mazes(make_pool, p_legal):
    env = jumanji_env()
    states, _ = _batched_reset(env)(jax.random.split(jax.random.PRNGKey(int(p_legal * 10)), BATCH))
    pool = make_pool("Maze-v0", BATCH, seed=1)
    episodes, steps = check_parity(pool, env, states, jax.random.PRNGKey(7), p_legal)
    assert episodes == BATCH and steps > 40 * BATCH


def test_step_parity_on_arbitrary_grids(make_pool):
    """Loaded instances need not be perfect mazes: walled-in agents (Jumanji
    ends the episode when no move is legal), unreachable targets, dense walls."""
    env = jumanji_env()
    walls, agent, target = random_grids(np.random.default_rng(3), BATCH, 10, 10, 0.45)
    states = jumanji_states(env, walls, agent, target)
    pool = make_pool("Maze-v0", BATCH, seed=2)
    episodes, _ = check_parity(pool, env, states, jax.random.PRNGKey(8), 0.5)
    assert episodes == BATCH
    # The batch does hold walled-in agents.
    padded = np.pad(walls, ((0, 0), (1, 1), (1, 1)), constant_values=True)
    r, c = agent[:, 0] + 1, agent[:, 1] + 1
    idx = np.arange(BATCH)
    walled_in = np.ones(BATCH, bool)
    for dr, dc in MOVES:
        walled_in &= padded[idx, r + dr, c + dc]
    assert walled_in.sum() >= 5


def test_step_parity_other_size_and_limit(make_pool):
    env = jumanji_env(7, 9, 30)
    states, _ = _batched_reset(env)(jax.random.split(jax.random.PRNGKey(5), BATCH))
    pool = make_pool("Maze-v0", BATCH, seed=3, num_rows=7, num_cols=9, time_limit=30)
    check_parity(pool, env, states, jax.random.PRNGKey(9), 0.6)


def test_one_strike_matches_jumanji_cut_at_first_illegal_move(make_pool):
    env = jumanji_env()
    states, _ = _batched_reset(env)(jax.random.split(jax.random.PRNGKey(11), BATCH))
    pool = make_pool("Maze-v0", BATCH, seed=4, invalid_action="terminate")
    episodes, steps = check_parity(
        pool, env, states, jax.random.PRNGKey(12), 0.9, invalid_terminates=True
    )
    assert steps < 40 * episodes  # most episodes struck out early


# ---------------------------------------------------------------- generator
def flood(walls: np.ndarray, start: np.ndarray) -> np.ndarray:
    """BFS distances [N, R, C] from `start` over free cells (-1: unreachable)."""
    n, rows, cols = walls.shape
    dist = np.full(walls.shape, -1, np.int32)
    frontier = np.zeros(walls.shape, bool)
    frontier[np.arange(n), start[:, 0], start[:, 1]] = True
    d = 0
    while frontier.any():
        dist[frontier] = d
        grown = np.zeros_like(frontier)
        grown[:, 1:] |= frontier[:, :-1]
        grown[:, :-1] |= frontier[:, 1:]
        grown[:, :, 1:] |= frontier[:, :, :-1]
        grown[:, :, :-1] |= frontier[:, :, 1:]
        frontier = grown & ~walls & (dist < 0)
        d += 1
    return dist


def maze_stats(walls, agent, target) -> dict:
    n = len(walls)
    dist = flood(walls, agent)
    free = ~walls
    edges = (free[:, 1:] & free[:, :-1]).sum((1, 2)) + (free[:, :, 1:] & free[:, :, :-1]).sum(
        (1, 2)
    )
    return {
        "free": free.sum((1, 2)),
        "edges": edges,
        "connected": ((dist >= 0) == free).all((1, 2)),
        "path": dist[np.arange(n), target[:, 0], target[:, 1]],
        "row_wall": walls.mean(2),
        "col_wall": walls.mean(1),
    }


def sample_ours(n, rows=10, cols=10, seed=0):
    with pyenvpool.make("Maze-v0", n, seed=seed, num_rows=rows, num_cols=cols) as pool:
        obs, _ = pool.reset()
        return obs["walls"].copy(), obs["agent_position"].copy(), obs["target_position"].copy()


def sample_jumanji(n, rows=10, cols=10, seed=0):
    env = jumanji_env(rows, cols)
    _, ts = _batched_reset(env)(jax.random.split(jax.random.PRNGKey(seed), n))
    obs = observation_arrays(ts.observation)
    return obs["walls"], obs["agent_position"], obs["target_position"]


def assert_same_mean(a, b, name, z=4.5):
    """Two-sample z-test on means; z=4.5 keeps the family of checks below
    (a few dozen) at a negligible false-alarm rate."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    se = np.sqrt(a.var(0) / len(a) + b.var(0) / len(b)) + 1e-12
    diff = np.abs(a.mean(0) - b.mean(0))
    assert (diff <= z * se).all(), f"{name}: means {a.mean(0)} vs {b.mean(0)} (se {se})"


@pytest.mark.parametrize("rows,cols", [(10, 10), (7, 11)])
def test_generator_matches_jumanji_in_distribution(rows, cols):
    ours = maze_stats(*sample_ours(20000, rows, cols))
    theirs = maze_stats(*sample_jumanji(2000, rows, cols))
    for stats in (ours, theirs):
        # Perfect maze: connected, and a tree over the free cells.
        assert stats["connected"].all()
        np.testing.assert_array_equal(stats["edges"], stats["free"] - 1)
        assert (stats["path"] > 0).all()
    assert_same_mean(ours["free"], theirs["free"], "free cells")
    assert_same_mean(ours["path"], theirs["path"], "BFS agent->target distance")
    assert_same_mean(ours["row_wall"], theirs["row_wall"], "wall fraction per row")
    assert_same_mean(ours["col_wall"], theirs["col_wall"], "wall fraction per column")
    # Histograms, bin by bin (a binomial proportion per bin).
    for key in ("free", "path"):
        hi = int(max(ours[key].max(), theirs[key].max())) + 1
        for v in range(hi):
            assert_same_mean(ours[key] == v, theirs[key] == v, f"P({key} == {v})")
    if (rows, cols) == (10, 10):
        # The reference numbers (jumanji_spo.md §2.2, 4,000 mazes): 51-59 free
        # cells, mean 56.3; BFS distance mean 11.1.
        assert ours["free"].min() >= 50 and ours["free"].max() <= 60
        assert abs(ours["free"].mean() - 56.3) < 0.1
        assert abs(ours["path"].mean() - 11.1) < 0.3


def test_generator_structure_all_sizes():
    for rows, cols in [(10, 10), (9, 9), (1, 5), (6, 1), (2, 2), (3, 8), (31, 32), (32, 32)]:
        walls, agent, target = sample_ours(300, rows, cols, seed=rows * 100 + cols)
        assert walls.shape == (300, rows, cols)
        assert not walls[:, ::2, ::2].any(), "(even, even) cells are always free"
        assert walls[:, 1::2, 1::2].all(), "(odd, odd) cells are always walls"
        stats = maze_stats(walls, agent, target)
        assert stats["connected"].all()
        np.testing.assert_array_equal(stats["edges"], stats["free"] - 1)
        assert (agent != target).any(1).all()
        assert not walls[np.arange(300), agent[:, 0], agent[:, 1]].any()
        assert not walls[np.arange(300), target[:, 0], target[:, 1]].any()


def test_agent_and_target_uniform_over_free_cells():
    """Given its maze, each of agent and target is uniform over the F free
    cells (Jumanji's Gumbel top-2): cell counts match sum_i free_i / F_i."""
    n = 20000
    walls, agent, target = sample_ours(n)
    assert (agent != target).any(1).all()
    free = ~walls.reshape(n, -1)
    expected = (free / free.sum(1, keepdims=True)).sum(0)
    for pos in (agent, target):
        counts = np.bincount(pos[:, 0] * 10 + pos[:, 1], minlength=100)
        assert (counts[expected == 0] == 0).all()
        seen = expected > 0
        z = (counts[seen] - expected[seen]) / np.sqrt(expected[seen])
        assert np.abs(z).max() < 4.5, np.abs(z).max()


def test_random_policy_success_rate():
    """Uniformly random legal moves reach the target within 100 steps in
    27.5% of episodes (jumanji_spo.md §2.4, 2,048 Jumanji episodes)."""
    n = 8192
    rng = np.random.default_rng(0)
    with pyenvpool.make("Maze-v0", n, seed=21) as pool:
        obs, _ = pool.reset()
        success = np.zeros(n, bool)
        length = np.zeros(n, np.int32)
        finished = np.zeros(n, bool)
        for _ in range(100):
            action = np.argmax(rng.random((n, 4)) * obs["action_mask"], -1)
            obs, reward, terminated, truncated, info = pool.step(action)
            first_end = (terminated | truncated) & ~finished
            success |= first_end & (reward == 1)
            length[first_end] = info["episode_length"][first_end]
            finished |= first_end
    assert finished.all()
    p_ref, n_ref = 0.275, 2048
    se = np.sqrt(p_ref * (1 - p_ref) * (1 / n_ref + 1 / n))
    assert abs(success.mean() - p_ref) < 4 * se, success.mean()
    assert abs(length.mean() - 82.0) < 2.0, length.mean()


# ------------------------------------------------------------- pyenvpool side
CORRIDOR = np.ones((10, 10), bool)
CORRIDOR[0, :] = False  # one free row; agent at (0, 0), target at (0, 9)


def corridor(k=1):
    return {
        "walls": np.repeat(CORRIDOR[None], k, 0),
        "agent_position": np.repeat(np.array([[0, 0]], np.int32), k, 0),
        "target_position": np.repeat(np.array([[0, 9]], np.int32), k, 0),
    }


def test_spec(make_pool):
    pool = make_pool("Maze-v0", 2)
    f = pool.spec.fields
    assert list(f) == list(FIELDS)
    assert (f["walls"].shape, f["walls"].dtype) == ((10, 10), np.bool_)
    assert (f["agent_position"].shape, f["agent_position"].dtype) == ((2,), np.int32)
    assert f["agent_position"].high.tolist() == [9, 9] and f["agent_position"].low.tolist() == [
        0,
        0,
    ]
    assert (f["step_count"].shape, int(f["step_count"].high)) == ((), 100)
    assert (f["action_mask"].shape, f["action_mask"].dtype) == ((4,), np.bool_)
    assert pool.spec.num_actions == 4
    obs, _ = pool.reset()
    assert pool.single_observation_space.contains({k: np.asarray(v[0]) for k, v in obs.items()})
    assert obs["step_count"].shape == (2,)
    small = make_pool("Maze-v0", 1, num_rows=5, num_cols=7, time_limit=12)
    assert small.spec.fields["walls"].shape == (5, 7)
    assert small.spec.fields["target_position"].high.tolist() == [4, 6]
    assert int(small.spec.fields["step_count"].high) == 12


def test_one_strike_ends_on_first_illegal_move(make_pool):
    pool = make_pool("Maze-v0", 1, invalid_action="terminate")
    pool.reset(instances=corridor())
    obs, reward, terminated, truncated, _ = pool.step(np.array([1]))  # Right: legal
    assert not terminated[0] and obs["agent_position"][0].tolist() == [0, 1]
    obs, reward, terminated, truncated, info = pool.step(np.array([2]))  # Down: wall
    assert terminated[0] and not truncated[0] and reward[0] == 0.0
    assert info["final_obs"]["agent_position"][0].tolist() == [0, 1]
    assert info["final_obs"]["step_count"][0] == 2 and info["episode_length"][0] == 2
    assert obs["step_count"][0] == 0  # already the next episode
    # The default variant shrugs the same bump off.
    noop = make_pool("Maze-v0", 1)
    noop.reset(instances=corridor())
    noop.step(np.array([1]))
    obs, _, terminated, truncated, _ = noop.step(np.array([2]))
    assert not (terminated[0] or truncated[0]) and obs["step_count"][0] == 2


def test_truncated_at_time_limit_with_final_obs(make_pool):
    pool = make_pool("Maze-v0", 3)
    pool.reset(instances=corridor(3))
    for t in range(1, 101):
        obs, reward, terminated, truncated, info = pool.step(np.full(3, 3))  # Left: a wall bump
        if t < 100:
            assert not (terminated | truncated).any() and (obs["step_count"] == t).all()
    assert truncated.all() and not terminated.any() and (reward == 0).all()
    assert (info["final_obs"]["step_count"] == 100).all()
    assert (info["final_obs"]["agent_position"] == [0, 0]).all()
    assert (info["final_obs"]["walls"] == CORRIDOR).all()
    assert (info["episode_length"] == 100).all() and (info["episode_return"] == 0).all()
    assert (obs["step_count"] == 0).all()
    # A custom limit; reaching the target exactly at it is both flags.
    pool = make_pool("Maze-v0", 1, time_limit=9)
    pool.reset(instances=corridor())
    for _ in range(9):
        _, reward, terminated, truncated, _ = pool.step(np.array([1]))
    assert reward[0] == 1.0 and terminated[0] and truncated[0]


def test_reaching_target(make_pool):
    pool = make_pool("Maze-v0", 1)
    pool.reset(instances=corridor())
    for t in range(9):
        obs, reward, terminated, truncated, info = pool.step(np.array([1]))
        assert terminated[0] == (t == 8) and reward[0] == float(t == 8) and not truncated[0]
    assert info["final_obs"]["agent_position"][0].tolist() == [0, 9]
    assert info["episode_return"][0] == 1.0 and info["episode_length"][0] == 9


def test_snapshot_determinism(make_pool):
    n = 64
    pool = make_pool("Maze-v0", n, seed=5)
    rng = np.random.default_rng(1)
    for _ in range(30):
        pool.step(rng.integers(0, 4, n))
    ids = pool.snapshot()
    actions = [rng.integers(0, 4, n).astype(np.int32) for _ in range(150)]

    def simulate_all():
        cur, seen = ids, []
        for a in actions:
            obs, reward, terminated, truncated, new = pool.simulate(cur, a)
            seen.append(
                (
                    {k: v.copy() for k, v in obs.items()},
                    reward.copy(),
                    terminated.copy(),
                    truncated.copy(),
                )
            )
            if cur is not ids:
                pool.release(cur)
            cur = new
        pool.release(cur)
        return seen

    first, second = simulate_all(), simulate_all()
    for (o1, *r1), (o2, *r2) in zip(first, second):
        for k in FIELDS:
            np.testing.assert_array_equal(o1[k], o2[k])
        for x, y in zip(r1, r2):
            np.testing.assert_array_equal(x, y)
    assert any(s[2].any() for s in first) and any(s[3].any() for s in first)
    # Live envs restored from the snapshot follow the simulated path until an
    # episode ends (live envs then auto-reset; simulated states absorb).
    pool.restore(ids)
    ended = np.zeros(n, bool)
    for a, (o_sim, r_sim, te_sim, tr_sim) in zip(actions, first):
        obs, reward, terminated, truncated, info = pool.step(a)
        done = terminated | truncated
        live = ~ended
        view = {
            k: np.where(done.reshape((n,) + (1,) * (v.ndim - 1)), info["final_obs"][k], v)
            for k, v in obs.items()
        }
        for k in FIELDS:
            np.testing.assert_array_equal(view[k][live], o_sim[k][live])
        np.testing.assert_array_equal(reward[live], r_sim[live])
        np.testing.assert_array_equal(terminated[live], te_sim[live])
        np.testing.assert_array_equal(truncated[live], tr_sim[live])
        ended |= done
    pool.release(ids)
    assert pool.snapshot_count == 0


def test_results_do_not_depend_on_threads(make_pool):
    runs = []
    for threads in (1, 2):
        pool = make_pool("Maze-v0", 3000, seed=9, num_threads=threads)
        rng = np.random.default_rng(2)
        total = 0.0
        for _ in range(200):
            obs, reward, *_ = pool.step(rng.integers(0, 4, 3000))
            total += reward.sum()
        runs.append((total, {k: v.copy() for k, v in obs.items()}))
    assert runs[0][0] == runs[1][0] > 0
    for k in FIELDS:
        np.testing.assert_array_equal(runs[0][1][k], runs[1][1][k])


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda d: d["walls"].__setitem__((0, 0, 0), True), "agent_position is on a wall"),
        (lambda d: d["walls"].__setitem__((0, 0, 9), True), "target_position is on a wall"),
        (lambda d: d["agent_position"].__setitem__((0,), [0, 9]), "same cell"),
        (lambda d: d["agent_position"].__setitem__((0,), [10, 0]), "outside the 10 x 10 grid"),
        (lambda d: d["target_position"].__setitem__((0,), [0, -1]), "outside the 10 x 10 grid"),
    ],
)
def test_bad_instances_raise_and_change_nothing(make_pool, change, message):
    pool = make_pool("Maze-v0", 2, seed=6)
    live, _ = pool.reset()  # views of the live observation
    before = {k: v.copy() for k, v in live.items()}
    instances = corridor(2)
    change(instances)
    with pytest.raises(ValueError, match=message):
        pool.reset(instances=instances)
    for k in FIELDS:  # row 1 was fine, but a bad row loads nothing
        np.testing.assert_array_equal(live[k], before[k])
    pool.reset(instances=corridor(2))  # the pool still works
    obs, *_ = pool.step(np.array([1, 1]))
    assert obs["agent_position"].tolist() == [[0, 1], [0, 1]]


def test_bad_instance_shapes_and_dtypes(make_pool):
    pool = make_pool("Maze-v0", 2)
    good = corridor(2)
    with pytest.raises(ValueError, match="shape"):
        pool.reset(instances=dict(good, walls=np.zeros((2, 9, 10), bool)))
    with pytest.raises(TypeError, match="bool"):
        pool.reset(instances=dict(good, walls=good["walls"].astype(np.float32)))
    with pytest.raises(ValueError, match="missing"):
        pool.reset(instances={"walls": good["walls"], "agent_position": good["agent_position"]})
    pool.step(np.zeros(2, np.int32))


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"invalid_action": "explode"}, ValueError, "invalid_action"),
        ({"num_rows": 0}, ValueError, "num_rows"),
        ({"num_cols": 33}, ValueError, "num_cols"),
        ({"num_rows": 1, "num_cols": 1}, ValueError, "num_rows \\* num_cols >= 2"),
        ({"time_limit": 0}, ValueError, "time_limit"),
        ({"num_rows": 2.5}, TypeError, "num_rows"),
        ({"max_steps": 5}, TypeError, "max_steps"),
    ],
)
def test_bad_kwargs(kwargs, error, message):
    with pytest.raises(error, match=message):
        pyenvpool.make("Maze-v0", 1, **kwargs)


def test_render(make_pool):
    pool = make_pool("Maze-v0", 2, seed=3)
    obs, _ = pool.reset()
    text = pool.render(1)
    grid = text.splitlines()[:10]
    assert all(len(line) == 10 for line in grid)
    chars = np.array([list(line) for line in grid])
    np.testing.assert_array_equal(chars == "#", obs["walls"][1])
    assert tuple(np.argwhere(chars == "A")[0]) == tuple(obs["agent_position"][1])
    assert tuple(np.argwhere(chars == "T")[0]) == tuple(obs["target_position"][1])
    assert "step 0/100" in text


@pytest.mark.parametrize("rows,cols", [(10, 10), (5, 13), (7, 9), (1, 5), (3, 3), (8, 8), (32, 32)])
def test_instances_round_trip_all_sizes(make_pool, rows, cols):
    """Walls go through the bit-packed state and back out unchanged, for grids
    whose cell count is or is not a multiple of 8 or 64 (5 x 13 = 65 cells)."""
    walls, agent, target = random_grids(np.random.default_rng(rows * cols), 64, rows, cols, 0.4)
    pool = make_pool("Maze-v0", 64, num_rows=rows, num_cols=cols)
    obs, _ = pool.reset(
        instances={"walls": walls, "agent_position": agent, "target_position": target}
    )
    np.testing.assert_array_equal(obs["walls"], walls)
    np.testing.assert_array_equal(obs["agent_position"], agent)
    np.testing.assert_array_equal(obs["target_position"], target)
    for i in (0, 63):
        chars = np.array([list(line) for line in pool.render(i).splitlines()[:rows]])
        np.testing.assert_array_equal(chars == "#", walls[i])


def test_frames_show_walls_agent_and_target(make_pool):
    """Jumanji's viewer colours, 32 pixels a cell: walls black, free cells white,
    the target's cell red, a green disc on the agent's cell."""
    walls = np.zeros((10, 10), bool)
    walls[4, 1:9] = True
    walls[:, 6] = True
    walls[7, 6] = False
    pool = make_pool("Maze-v0", 1, autoreset=False)
    instance = {
        "walls": walls[None],
        "agent_position": np.array([[0, 0]], np.int32),
        "target_position": np.array([[9, 9]], np.int32),
    }
    pool.reset(instances=instance)
    assert pool.frame_shape == (320, 320, 3)
    frame = pool.render(0, mode="rgb_array")
    centres = frame[16::32, 16::32]
    target = (9, 9)
    for r in range(10):
        for c in range(10):
            expected = (0, 0, 0) if walls[r, c] else (255, 255, 255)
            if (r, c) == target:
                expected = (255, 0, 0)
            if (r, c) == (0, 0):
                expected = (0, 200, 0)
            assert tuple(centres[r, c]) == expected, (r, c)
    assert tuple(frame[2, 2]) == (255, 255, 255)  # the disc leaves the agent's cell corners
    obs, *_ = pool.step(np.array([2], np.int32))  # down
    frame = pool.render(0, mode="rgb_array")
    assert tuple(frame[16, 16]) == (255, 255, 255) and tuple(frame[48, 16]) == (0, 200, 0)
