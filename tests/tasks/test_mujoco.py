"""The MuJoCo locomotion tasks (HalfCheetah, Hopper, Walker2d, Ant; Gymnasium
v5) against Gymnasium's own v5 envs on the same mujoco build, and their
snapshots.

Parity: both sides start from the same injected states (Gymnasium through
``set_state``, the pool through ``reset(instances=...)``) and take the same
float32 actions, a fifth of them out of range. Observations, rewards (the
pool's float32 is Gymnasium's float64 rounded), every info term, terminated
and truncated must be bit-identical.

The tests skip when mujoco is not installed (the ``mujoco`` extra); CI
installs it through the ``test`` extra.
"""

from __future__ import annotations

import filecmp
import os

import numpy as np
import pytest

import pyenvpool
from pyenvpool import _mujoco

pytest.importorskip("mujoco")
gym = pytest.importorskip("gymnasium")

TASKS = ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5"]


def _gym_env(task_id: str, **kwargs):
    return gym.make(task_id, **kwargs)


def _random_start(env, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A start state near the model's rest pose, drawn here, injected in both."""
    u = env.unwrapped
    qpos = u.init_qpos + rng.uniform(-0.1, 0.1, u.model.nq)
    qvel = u.init_qvel + 0.1 * rng.standard_normal(u.model.nv)
    return qpos, qvel


def _actions(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """Uniform in [-1, 1], with a fifth of the rows out of range (up to +-3)."""
    a = rng.uniform(-1.0, 1.0, (n, dim))
    wild = rng.random(n) < 0.2
    a[wild] *= 3.0
    return a.astype(np.float32)


class _Diff:
    """Worst absolute difference seen per quantity (0 is the target)."""

    def __init__(self) -> None:
        self.worst: dict[str, float] = {}

    def add(self, name: str, mine, theirs) -> None:
        mine, theirs = np.asarray(mine, np.float64), np.asarray(theirs, np.float64)
        assert mine.shape == theirs.shape, name
        diff = float(np.abs(mine - theirs).max()) if mine.size else 0.0
        if np.isnan(diff):
            diff = 0.0 if np.array_equal(mine, theirs, equal_nan=True) else float("inf")
        self.worst[name] = max(self.worst.get(name, 0.0), diff)


def _run_parity(task_id: str, n: int, steps: int, seed: int, **kwargs) -> tuple[_Diff, int, int]:
    """Lockstep run; returns (worst differences, episodes ended, truncations)."""
    rng = np.random.default_rng(seed)
    envs = [_gym_env(task_id, **kwargs) for _ in range(n)]
    pool = pyenvpool.make(task_id, n, num_threads=2, seed=seed, **kwargs)
    names = list(pool.spec.info_fields)
    gym_terms = [k for k in names if k not in ("qpos", "qvel")]
    diff = _Diff()
    ended = truncations = 0

    def inject(ids):
        qpos, qvel = zip(*(_random_start(envs[i], rng) for i in ids))
        for i, qp, qv in zip(ids, qpos, qvel):
            envs[i].reset(seed=int(rng.integers(1 << 31)))
            envs[i].unwrapped.set_state(qp, qv)
        obs, info = pool.reset(
            env_ids=np.asarray(ids), instances={"qpos": np.stack(qpos), "qvel": np.stack(qvel)}
        )
        for j, i in enumerate(ids):
            u = envs[i].unwrapped
            diff.add("obs", obs["obs"][j], u._get_obs())
            diff.add("qpos", info["qpos"][j], u.data.qpos)
            diff.add("qvel", info["qvel"][j], u.data.qvel)
            for k, v in u._get_reset_info().items():
                diff.add(k, info[k][j], v)

    inject(list(range(n)))
    dim = pool.single_action_space.shape[0]
    try:
        for _ in range(steps):
            actions = _actions(rng, n, dim)
            obs, reward, terminated, truncated, info = pool.step(actions)
            restart = []
            for i, env in enumerate(envs):
                g_obs, g_rew, g_term, g_trunc, g_info = env.step(actions[i])
                done = g_term or g_trunc
                assert (terminated[i], truncated[i]) == (g_term, g_trunc), (i, g_info)
                assert reward[i] == np.float32(g_rew), (reward[i], g_rew)
                mine_obs = info["final_obs"]["obs"][i] if done else obs["obs"][i]
                mine_info = info["final_info"] if done else info
                diff.add("obs", mine_obs, g_obs)
                diff.add("reward", reward[i], np.float32(g_rew))
                for k in gym_terms:
                    diff.add(k, mine_info[k][i], g_info[k])
                u = env.unwrapped
                diff.add("qpos", mine_info["qpos"][i], u.data.qpos)
                diff.add("qvel", mine_info["qvel"][i], u.data.qvel)
                if done:
                    ended += 1
                    truncations += int(g_trunc)
                    restart.append(i)
            if restart:
                inject(restart)
    finally:
        pool.close()
        for env in envs:
            env.close()
    return diff, ended, truncations


@pytest.mark.parametrize("task_id", TASKS)
def test_parity_with_gymnasium_v5(task_id):
    """Bit-identical observations, rewards, info terms and flags over random
    episodes, out-of-range actions included; every episode ends by
    termination or by a (shortened) time limit."""
    diff, ended, truncations = _run_parity(task_id, n=4, steps=300, seed=7, max_episode_steps=120)
    assert all(v == 0.0 for v in diff.worst.values()), diff.worst
    assert ended >= 8
    assert truncations >= 1 or task_id != "HalfCheetah-v5"


def test_half_cheetah_is_truncated_at_1000_steps_like_gymnasium():
    """The default time limit: Gymnasium's registration says 1000, and a
    lockstep episode of HalfCheetah (which never terminates) is truncated at
    step 1000 on both sides, bit-identical all the way."""
    assert gym.spec("HalfCheetah-v5").max_episode_steps == 1000
    diff, ended, truncations = _run_parity("HalfCheetah-v5", n=1, steps=1000, seed=3)
    assert all(v == 0.0 for v in diff.worst.values()), diff.worst
    assert (ended, truncations) == (1, 1)


@pytest.mark.parametrize("task_id", TASKS)
def test_defaults_match_gymnasium(make_pool, task_id):
    """Spaces, time limit and frame skip are Gymnasium's."""
    env = _gym_env(task_id)
    pool = make_pool(task_id, 2)
    assert pool.spec.fields["obs"].shape == env.observation_space.shape
    assert pool.spec.fields["obs"].dtype == np.float64 == env.observation_space.dtype
    space = pool.single_action_space
    assert space.dtype == np.float32 and space.shape == env.action_space.shape
    assert np.array_equal(space.low, env.action_space.low)
    assert np.array_equal(space.high, env.action_space.high)
    assert f"max_episode_steps={gym.spec(task_id).max_episode_steps};" in pool.config
    assert f"frame_skip={env.unwrapped.frame_skip};" in pool.config
    env.close()


@pytest.mark.parametrize(
    "task_id, kwargs",
    [
        ("HalfCheetah-v5", {"exclude_current_positions_from_observation": False}),
        ("Hopper-v5", {"terminate_when_unhealthy": False, "healthy_reward": 0.5}),
        ("Walker2d-v5", {"ctrl_cost_weight": 0.01, "frame_skip": 2}),
        ("Ant-v5", {"include_cfrc_ext_in_observation": False, "contact_cost_weight": 1e-3}),
    ],
)
def test_kwargs_parity(task_id, kwargs):
    """Gymnasium's keyword arguments mean the same here."""
    diff, ended, _ = _run_parity(task_id, n=2, steps=80, seed=11, max_episode_steps=50, **kwargs)
    assert all(v == 0.0 for v in diff.worst.values()), diff.worst
    assert ended >= 2


def test_models_are_gymnasiums():
    """The shipped XML models are byte-identical to the installed Gymnasium's."""
    assets = os.path.join(os.path.dirname(gym.__file__), "envs", "mujoco", "assets")
    for xml, _ in _mujoco.TASKS.values():
        assert filecmp.cmp(os.path.join(_mujoco.ASSETS_DIR, xml), os.path.join(assets, xml), False)


@pytest.mark.parametrize("task_id", TASKS)
def test_reset_noise_matches_gymnasium_in_distribution(make_pool, task_id):
    """Start states: qpos0 plus uniform noise, and Gymnasium's qvel noise
    (normal for HalfCheetah and Ant, uniform for Hopper and Walker2d), with
    matching means and spreads over a few thousand resets."""
    n = 4000
    pool = make_pool(task_id, n, seed=5)
    _, info = pool.reset(seed=5)
    mine_qpos, mine_qvel = info["qpos"].copy(), info["qvel"].copy()
    env = _gym_env(task_id)
    theirs = []
    for s in range(1000):
        env.reset(seed=s)
        theirs.append(np.concatenate([env.unwrapped.data.qpos, env.unwrapped.data.qvel]))
    theirs = np.array(theirs)
    mine = np.concatenate([mine_qpos, mine_qvel], axis=1)
    u = env.unwrapped
    rest = np.concatenate([u.init_qpos, u.init_qvel])
    scale = u._reset_noise_scale
    np.testing.assert_allclose(mine.mean(0), rest, atol=4 * scale / np.sqrt(n) * 1.5)
    np.testing.assert_allclose(mine.std(0), theirs.std(0), rtol=0.12)
    # Uniform noise is bounded by the scale; normal noise is not.
    bounded = np.abs(theirs - rest).max(0) <= scale
    assert np.array_equal(np.abs(mine - rest).max(0) <= scale, bounded)
    env.close()


# --------------------------------------------------------------- snapshots


def _policy(n: int, dim: int, t: int) -> np.ndarray:
    return _actions(np.random.default_rng(1000 + t), n, dim)


def _rollout(pool, steps: int, t0: int = 0):
    dim = pool.single_action_space.shape[0]
    out = []
    for t in range(t0, t0 + steps):
        obs, reward, terminated, truncated, info = pool.step(
            _policy(pool.num_envs, dim, t), copy=True
        )
        done = (terminated | truncated)[:, None]
        final = np.where(done, info["final_obs"]["obs"], 0.0)  # stale where not done
        out.append((obs["obs"], reward, terminated, truncated, final))
    return out


def _assert_same(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            assert np.array_equal(u, v)


@pytest.mark.parametrize("task_id", TASKS)
def test_restored_env_continues_bit_identically(make_pool, task_id):
    """Snapshot mid-episode, keep stepping, restore, step again: the same
    bits as the first time (the warmstart is in the state)."""
    pool = make_pool(task_id, 6, seed=2, num_threads=2)
    _rollout(pool, 7)
    ids = pool.snapshot()
    first = _rollout(pool, 40, t0=7)
    pool.restore(ids)
    again = _rollout(pool, 40, t0=7)
    _assert_same(first, again)
    assert pool.state_bytes < 2048


@pytest.mark.parametrize("task_id", TASKS)
def test_results_do_not_depend_on_the_thread_count(make_pool, task_id):
    runs = []
    for threads in (1, 2, 3):
        pool = make_pool(task_id, 9, seed=4, num_threads=threads)
        runs.append(_rollout(pool, 60))
    _assert_same(runs[0], runs[1])
    _assert_same(runs[0], runs[2])


@pytest.mark.parametrize("task_id", TASKS)
def test_simulate_is_exact_and_matches_live_steps(make_pool, task_id):
    """simulate from a snapshot with the live actions gives the live results,
    twice over, and leaves its input states valid."""
    pool = make_pool(task_id, 5, seed=6, num_threads=2, autoreset=False)
    dim = pool.single_action_space.shape[0]
    _rollout(pool, 3)
    ids = pool.snapshot()
    sims = []
    for _ in range(2):
        state = ids
        trace = []
        for t in range(3, 23):
            obs, reward, terminated, truncated, new = pool.simulate(state, _policy(5, dim, t))
            trace.append((obs["obs"].copy(), reward.copy(), terminated.copy(), truncated.copy()))
            if state is not ids:
                pool.release(state)
            state = new
        pool.release(state)
        sims.append(trace)
    live = []
    for t in range(3, 23):
        obs, reward, terminated, truncated, _ = pool.step(_policy(5, dim, t), copy=True)
        live.append((obs["obs"], reward, terminated, truncated))
    _assert_same(sims[0], sims[1])
    _assert_same(sims[0], live)
    assert pool.snapshot_count == 5


def test_snapshot_of_a_restored_state_matches_gymnasium(make_pool):
    """Export, import and restore a state, and the restored env still tracks
    Gymnasium's env from the same qpos/qvel step for step."""
    task_id = "Ant-v5"
    rng = np.random.default_rng(21)
    env = _gym_env(task_id)
    env.reset(seed=0)
    qpos, qvel = _random_start(env, rng)
    env.unwrapped.set_state(qpos, qvel)
    pool = make_pool(task_id, 1)
    pool.reset(instances={"qpos": qpos[None], "qvel": qvel[None]})
    blob = pool.export_states(pool.snapshot())
    other = make_pool(task_id, 1, seed=99)
    other.restore(other.import_states(blob))
    for t in range(30):
        a = 0.3 * _actions(rng, 1, 8)  # gentle: the Ant stays up (z <= 1) for 30 steps
        obs, reward, terminated, truncated, _ = other.step(a)
        g_obs, g_rew, g_term, g_trunc, _ = env.step(a[0])
        assert (terminated[0], truncated[0]) == (g_term, g_trunc) == (False, False), t
        assert np.array_equal(obs["obs"][0], g_obs) and reward[0] == np.float32(g_rew)
    env.close()


# ---------------------------------------------------------------- bad input


def test_nan_action_is_refused_naming_the_env_and_leaves_the_pool(make_pool):
    pool = make_pool("Hopper-v5", 4, seed=1)
    before = pool.export_states(pool.snapshot())
    actions = np.zeros((4, 3), np.float32)
    actions[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"actions\[2\] \(env 2\) is NaN"):
        pool.step(actions)
    assert pool.export_states(pool.snapshot()) == before
    pool.step(np.zeros((4, 3), np.float32))


@pytest.mark.parametrize(
    "instances, match",
    [
        ({"qpos": np.full((1, 6), np.nan), "qvel": np.zeros((1, 6))}, "'qpos' contains NaN"),
        ({"qpos": np.zeros((1, 6)), "qvel": np.full((1, 6), np.inf)}, "'qvel' contains NaN"),
        ({"qpos": np.zeros((1, 5)), "qvel": np.zeros((1, 6))}, "qpos"),
        ({"qpos": np.zeros((1, 6))}, "qvel"),
    ],
)
def test_bad_instances_are_refused(make_pool, instances, match):
    pool = make_pool("Hopper-v5", 2, seed=1)
    before = pool.export_states(pool.snapshot())
    with pytest.raises((ValueError, TypeError), match=match):
        pool.reset(env_ids=[1], instances=instances)
    assert pool.export_states(pool.snapshot()) == before


def test_info_fields_stay_out_of_the_observation(make_pool):
    """Policies see `obs` only; the reward terms and qpos/qvel are in info,
    and out= cannot redirect them."""
    pool = make_pool("Ant-v5", 2)
    assert list(pool.spec.fields) == ["obs"]
    assert list(pool.single_observation_space.spaces) == ["obs"]
    assert "reward_contact" in pool.spec.info_fields
    obs, _, _, _, info = pool.step(np.zeros((2, 8), np.float32))
    assert list(obs) == ["obs"] and info["reward_contact"].shape == (2,)
    with pytest.raises(ValueError, match="unknown key 'reward_contact'"):
        pool.step(np.zeros((2, 8), np.float32), out={"reward_contact": np.zeros(2)})


def test_async_recv_matches_sync_steps_info_fields_included(make_pool):
    """send/recv: each env's rewards, observations and info fields are those
    of synchronous stepping, whichever order the workers serve the envs in."""
    n, b, steps = 6, 3, 12
    sync = make_pool("Hopper-v5", n, seed=9)
    apool = make_pool("Hopper-v5", n, batch_size=b, num_threads=2, seed=9)
    plan = _actions(np.random.default_rng(4), steps * n, 3).reshape(steps, n, 3)
    for t in range(steps):
        e_obs, e_rew, _, _, e_info = sync.step(plan[t], copy=True)
        apool.send(plan[t], np.arange(n))
        served = []
        for _ in range(n // b):
            obs, reward, terminated, truncated, info = apool.recv()
            for row, env in enumerate(info["env_id"]):
                assert np.array_equal(obs["obs"][row], e_obs["obs"][env])
                assert reward[row] == e_rew[env]
                for k in ("reward_forward", "reward_ctrl", "reward_survive", "qpos"):
                    assert np.array_equal(info[k][row], e_info[k][env]), k
                served.append(int(env))
        assert sorted(served) == list(range(n))
