"""GymnasiumEnv, the single `gymnasium.Env` behind ``gymnasium.make("pyenvpool/<task>")``:
Gymnasium's own env checker on every task, registration facts, time limits in
both directions, seeding, the end of an episode, and lockstep against
Gymnasium's CartPole-v1; ``gymnasium.make_vec`` in its three modes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")

from gymnasium.error import ResetNeeded  # noqa: E402
from gymnasium.spaces.utils import is_space_dtype_shape_equiv  # noqa: E402
from gymnasium.utils.env_checker import check_env  # noqa: E402

import pyenvpool  # noqa: E402
from pyenvpool import GymnasiumEnv, GymnasiumVectorEnv  # noqa: E402

TASKS = pyenvpool.list_tasks()
# check_env's warnings that describe a task rather than a fault: CartPole's
# velocity bounds are infinite in Gymnasium too.
# Warnings check_env also gives Gymnasium's own envs: unbounded observation
# spaces, and Box actions outside [-1, 1] (Pendulum-v1's torque is in [-2, 2]).
HARMLESS = ("infinity", "-infinity", "symmetric and normalized space")


@pytest.fixture
def make_env():
    """gymnasium.make that closes every env it made at teardown."""
    envs = []

    def _make(*args, **kwargs):
        env = gym.make(*args, **kwargs)
        envs.append(env)
        return env

    yield _make
    for env in envs:
        env.close()


def balance(obs: np.ndarray) -> int:
    """A controller that keeps CartPole up for well over 500 steps."""
    x, x_dot, theta, theta_dot = obs
    return int(theta + 0.5 * theta_dot + 0.05 * x + 0.1 * x_dot > 0)


# ------------------------------------------------------------ env checker
@pytest.mark.parametrize("task_id", TASKS)
def test_check_env(make_env, task_id):
    """Gymnasium's check_env passes with every render mode the task has, and
    warns about nothing but what Gymnasium's own CartPole also triggers."""
    env = make_env(f"pyenvpool/{task_id}")
    assert set(env.unwrapped.metadata["render_modes"]) <= {"ansi", "rgb_array"}
    for render_mode in [None, *env.unwrapped.metadata["render_modes"]]:
        checked = make_env(f"pyenvpool/{task_id}", render_mode=render_mode).unwrapped
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(checked)
        messages = [str(w.message) for w in caught]
        assert not [m for m in messages if not any(h in m for h in HARMLESS)], messages


@pytest.mark.parametrize("task_id", TASKS)
def test_spaces(make_env, task_id):
    env = make_env(f"pyenvpool/{task_id}").unwrapped
    fields = env.pool.spec.fields
    assert env.action_space == env.pool.single_action_space
    if len(fields) == 1:
        assert env.observation_space == next(iter(fields.values())).to_space()
    else:
        assert isinstance(env.observation_space, gym.spaces.Dict)
        assert set(env.observation_space) == set(fields)
    obs, info = env.reset(seed=0)
    assert info == {} and env.observation_space.contains(obs)


def test_cartpole_spaces_equal_gymnasium(make_env):
    ours, theirs = make_env("pyenvpool/CartPole-v1"), make_env("CartPole-v1")
    assert ours.observation_space == theirs.observation_space
    assert ours.action_space == theirs.action_space


# ----------------------------------------------------------- registration
@pytest.mark.parametrize("task_id", TASKS)
def test_registration(task_id):
    spec = gym.spec(f"pyenvpool/{task_id}")
    assert spec.entry_point == "pyenvpool.gymnasium_single:GymnasiumEnv"
    assert spec.vector_entry_point == "pyenvpool.gymnasium_env:GymnasiumVectorEnv"
    original = gym.registry.get(task_id)
    if original is not None:  # a Gymnasium task: its limit and threshold
        assert spec.max_episode_steps == original.max_episode_steps
        assert spec.reward_threshold == original.reward_threshold


def test_registered_limits():
    assert gym.spec("pyenvpool/CartPole-v1").max_episode_steps == 500
    assert gym.spec("pyenvpool/CartPole-v1").reward_threshold == 475.0
    assert gym.spec("pyenvpool/Maze-v0").max_episode_steps == 100  # Jumanji's
    assert gym.spec("pyenvpool/BinPack-v0").max_episode_steps is None


# ------------------------------------------------------------ time limits
def episode_length(env, policy, cap: int) -> tuple[int, bool]:
    """Steps until the episode ends (at most `cap`), and whether it was truncated."""
    obs, _ = env.reset(seed=0)
    for t in range(1, cap + 1):
        obs, _, terminated, truncated, _ = env.step(policy(obs))
        if terminated or truncated:
            assert not terminated
            return t, truncated
    return cap, False


@pytest.mark.parametrize(
    "max_episode_steps, expected", [(None, 500), (200, 200), (700, 700), (-1, None)]
)
def test_cartpole_time_limit_both_directions(make_env, max_episode_steps, expected):
    """make's max_episode_steps replaces the task's own 500-step limit, below
    and above it; -1 leaves no limit at all, as for Gymnasium's envs."""
    env = make_env("pyenvpool/CartPole-v1", max_episode_steps=max_episode_steps)
    length, truncated = episode_length(env, balance, cap=900)
    if expected is None:
        assert (length, truncated) == (900, False)
    else:
        assert (length, truncated) == (expected, True)


@pytest.mark.parametrize("max_episode_steps, expected", [(None, 100), (40, 40), (150, 150)])
def test_maze_time_limit_both_directions(make_env, max_episode_steps, expected):
    """Maze's own limit is `time_limit`; make's max_episode_steps still rules."""
    env = make_env("pyenvpool/Maze-v0", max_episode_steps=max_episode_steps)

    def blocked(obs):  # walk into a wall: a no-op, so the target is never reached
        return int(np.flatnonzero(~obs["action_mask"])[0])

    assert episode_length(env, blocked, cap=300) == (expected, True)


@pytest.mark.parametrize("mode", ["sync", "async", "vector_entry_point"])
@pytest.mark.parametrize("max_episode_steps, expected", [(None, 100), (30, 30), (130, 130)])
def test_make_vec_time_limit(mode, max_episode_steps, expected):
    """The same limits hold through make_vec in all three modes (Delay-v0 never
    terminates; its own limit is 100 steps)."""
    kwargs = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    envs = gym.make_vec("pyenvpool/Delay-v0", num_envs=2, vectorization_mode=mode, **kwargs)
    envs.reset(seed=0)
    steps, truncated = 0, np.zeros(2, bool)
    while not truncated.any() and steps < 200:
        _, _, terminated, truncated, _ = envs.step(np.zeros(2, np.int64))
        assert not terminated.any()
        steps += 1
    envs.close()
    assert steps == expected and truncated.all()


def test_own_step_limit_when_built_directly():
    """Built directly, the env has no limit unless given one, like Gymnasium's
    CartPoleEnv; a task without a limit of its own refuses one."""
    with GymnasiumEnv("Delay-v0") as env:
        env.reset(seed=0)
        assert not any(env.step(0)[3] for _ in range(300))
    with GymnasiumEnv("Delay-v0", max_episode_steps=5) as env:
        env.reset(seed=0)
        assert [env.step(0)[3] for _ in range(5)] == [False] * 4 + [True]
    with pytest.raises(TypeError, match="no step limit"):
        GymnasiumEnv("BinPack-v0", max_episode_steps=5)


# --------------------------------------------------------------- seeding
def test_seeding(make_env):
    env = make_env("pyenvpool/CartPole-v1").unwrapped
    first, _ = env.reset(seed=3)
    assert env.np_random_seed == 3
    continued, _ = env.reset()
    assert not np.array_equal(first, continued)
    np.testing.assert_array_equal(env.reset(seed=3)[0], first)
    np.testing.assert_array_equal(env.reset()[0], continued)
    with pyenvpool.make("CartPole-v1", 1) as pool:  # env 0 of a pool seeded with 3
        np.testing.assert_array_equal(pool.reset(seed=3)[0]["obs"][0], first)


def test_first_reset_without_seed_is_random(make_env):
    a = make_env("pyenvpool/CartPole-v1").unwrapped
    b = make_env("pyenvpool/CartPole-v1").unwrapped
    obs_a, obs_b = a.reset()[0], b.reset()[0]
    assert not np.array_equal(obs_a, obs_b)
    assert a.np_random_seed != b.np_random_seed and a.np_random_seed >= 0


def test_lockstep_with_gymnasium_cartpole(make_env):
    """Same start states (loaded as instances), same actions: same episodes."""
    ours, theirs = make_env("pyenvpool/CartPole-v1"), make_env("CartPole-v1")
    rng = np.random.default_rng(0)
    episodes = 0
    for _ in range(10):
        start = rng.uniform(-0.05, 0.05, 4)
        obs, _ = ours.reset(options={"instances": {"state": start}})
        theirs.reset(seed=0)
        theirs.unwrapped.state = start.copy()
        np.testing.assert_array_equal(obs, start.astype(np.float32))
        done = False
        while not done:
            action = int(rng.integers(2))
            obs, reward, terminated, truncated, _ = ours.step(action)
            ref_obs, ref_reward, ref_terminated, ref_truncated, _ = theirs.step(action)
            np.testing.assert_array_equal(obs, ref_obs)
            assert (reward, terminated, truncated) == (ref_reward, ref_terminated, ref_truncated)
            assert isinstance(reward, float) and type(terminated) is bool
            done = terminated or truncated
        episodes += 1
    assert episodes == 10


# ------------------------------------------------------- episode ends
def test_step_before_reset_raises():
    with GymnasiumEnv("CartPole-v1") as env, pytest.raises(ResetNeeded):
        env.step(0)


def test_step_after_end_warns_and_absorbs():
    """As Gymnasium's CartPole: a warning; the pool keeps the final state, so
    the observation and the picture stay those of the last step."""
    with GymnasiumEnv("CartPole-v1", render_mode="ansi") as env:
        env.reset(seed=0)
        terminated = False
        while not terminated:
            obs, _, terminated, _, _ = env.step(1)
        picture = env.render()
        with pytest.warns(UserWarning, match="already returned terminated"):
            again, reward, still, truncated, _ = env.step(0)
        np.testing.assert_array_equal(again, obs)
        assert (reward, still, truncated) == (0.0, True, False)
        assert env.render() == picture
        obs, _ = env.reset()
        assert env.step(0)[1] == 1.0


def test_returned_observations_are_owned():
    with GymnasiumEnv("Maze-v0") as env:
        first, _ = env.reset(seed=0)
        kept = {k: v.copy() for k, v in first.items()}
        assert all(isinstance(v, np.ndarray) for v in first.values())  # 0-d step_count too
        for _ in range(5):
            env.step(int(np.flatnonzero(first["action_mask"])[0]))
        for name, value in kept.items():
            np.testing.assert_array_equal(first[name], value)


def test_bad_arguments():
    with pytest.raises(ValueError, match="render_mode"):
        GymnasiumEnv("CartPole-v1", render_mode="human")
    with pytest.raises(TypeError, match="bogus"):
        GymnasiumEnv("CartPole-v1", bogus=1)
    with GymnasiumEnv("CartPole-v1") as env:
        env.reset(seed=0)
        with pytest.raises(ValueError, match="unknown reset option"):
            env.reset(options={"reset_mask": np.ones(1, bool)})
        with pytest.raises(ValueError, match="out of range"):
            env.step(2)
        assert env.step(1)[1] == 1.0  # still usable


# ------------------------------------------------------------- make_vec
@pytest.mark.parametrize("task_id", ["CartPole-v1", "Maze-v0"])
@pytest.mark.parametrize("mode", ["sync", "async", "vector_entry_point"])
def test_make_vec_modes(task_id, mode):
    envs = gym.make_vec(f"pyenvpool/{task_id}", num_envs=3, vectorization_mode=mode)
    if mode == "vector_entry_point":
        assert isinstance(envs, GymnasiumVectorEnv)
    else:
        assert isinstance(envs, (gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv))
    single = gym.make(f"pyenvpool/{task_id}")
    assert envs.single_action_space == single.action_space
    if mode == "vector_entry_point":  # Maze's step_count is bounded by the step limit,
        # which the single env leaves to TimeLimit
        assert is_space_dtype_shape_equiv(envs.single_observation_space, single.observation_space)
    else:
        assert envs.single_observation_space == single.observation_space
    single.close()
    obs, _ = envs.reset(seed=0)
    envs.action_space.seed(0)
    assert envs.observation_space.contains(obs)
    for _ in range(20):
        obs, reward, terminated, truncated, _ = envs.step(envs.action_space.sample())
        assert envs.observation_space.contains(obs) and reward.shape == (3,)
    assert len(envs.np_random_seed) == 3
    envs.close()


def test_sync_vector_env_of_single_envs_matches_vector_env():
    """SyncVectorEnv over GymnasiumEnv and GymnasiumVectorEnv play the same
    episodes from the same start states (CartPole instances)."""
    n, rng = 4, np.random.default_rng(1)
    sync = gym.make_vec("pyenvpool/CartPole-v1", num_envs=n, vectorization_mode="sync")
    ours = GymnasiumVectorEnv("CartPole-v1", n)
    starts = rng.uniform(-0.05, 0.05, (n, 4))
    sync.reset(seed=0)
    for env, start in zip(sync.envs, starts):
        env.reset(options={"instances": {"state": start}})
    ours.reset(options={"instances": {"state": starts}})
    done = np.zeros(n, bool)
    for _ in range(30):
        actions = rng.integers(0, 2, n)
        a = sync.step(actions)
        b = ours.step(actions)
        live = ~done
        np.testing.assert_array_equal(a[0][live], b[0][live])
        np.testing.assert_array_equal(a[1][live], b[1][live])
        done |= a[2] | a[3]
    sync.close()
    ours.close()
