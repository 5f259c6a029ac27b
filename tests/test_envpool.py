"""pyenvpool.envpool: code written for EnvPool runs unchanged but for its import.

The scripts below are written for EnvPool, in the style of its README. Each
runs twice, once as written (real EnvPool 1.2.5, where installed) and once
with ``import envpool`` replaced by ``import pyenvpool.envpool as envpool``;
the two runs must agree in structure, dtypes, info keys and next-step
auto-reset timing, and, for CartPole from the same start states, in every
transition.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

import pyenvpool  # noqa: E402
import pyenvpool.envpool as penvpool  # noqa: E402

SYNC_SCRIPT = """
import numpy as np
import envpool

env = envpool.make("CartPole-v1", env_type="gymnasium", num_envs=8, seed=3)
obs, info = env.reset()
rng = np.random.default_rng(0)
log = [(obs, None, None, None, info)]
for _ in range(300):
    action = rng.integers(0, env.action_space.n, len(info["env_id"]))
    obs, reward, terminated, truncated, info = env.step(action, info["env_id"])
    log.append((obs, reward, terminated, truncated, info))
spaces = (env.observation_space, env.action_space)
env.close()
"""

ASYNC_SCRIPT = """
import numpy as np
import envpool

env = envpool.make("CartPole-v1", env_type="gymnasium", num_envs=8, batch_size=4, seed=3)
env.async_reset()
rng = np.random.default_rng(0)
log = []
for _ in range(400):
    obs, reward, terminated, truncated, info = env.recv()
    log.append((obs, reward, terminated, truncated, info))
    env_id = info["env_id"]
    action = rng.integers(0, env.action_space.n, len(env_id))
    env.send(action, env_id)
spaces = (env.observation_space, env.action_space)
"""


def run_script(source: str, ours: bool) -> dict:
    if ours:
        source = source.replace("import envpool", "import pyenvpool.envpool as envpool")
    else:
        pytest.importorskip("envpool")
    scope: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # EnvPool's float64 bound casts
        exec(compile(source, "<envpool script>", "exec"), scope)
    return scope


def structure(log: list) -> list:
    """What a caller sees of each result, values aside."""

    def describe(x):
        if isinstance(x, dict):
            return {k: describe(v) for k, v in x.items()}
        if x is None:
            return None
        return (type(x).__name__, x.dtype.str, x.shape)

    return [tuple(describe(x) for x in step) for step in log]


def check_next_step_autoreset(log: list) -> int:
    """EnvPool's auto-reset, env by env: a step after a done returns reward 0,
    no flags and elapsed_step 0; any other step adds one to elapsed_step.
    Returns how many episodes ended."""
    done_before: dict[int, bool] = {}
    elapsed: dict[int, int] = {}
    ended = 0
    for _obs, reward, terminated, truncated, info in log:
        assert info["env_id"].dtype == np.int32 and info["elapsed_step"].dtype == np.int32
        assert np.array_equal(info["players"]["env_id"], info["env_id"])
        if reward is None:  # a reset
            for env in info["env_id"].tolist():
                done_before[env], elapsed[env] = False, 0
            assert (info["elapsed_step"] == 0).all()
            continue
        for row, env in enumerate(info["env_id"].tolist()):
            step = int(info["elapsed_step"][row])
            if done_before.get(env, True):  # restarted: the action was ignored
                assert step == 0 and reward[row] == 0
                assert not terminated[row] and not truncated[row]
            else:
                assert step == elapsed[env] + 1 and reward[row] == 1.0
            elapsed[env] = step
            done_before[env] = bool(terminated[row] or truncated[row])
            ended += done_before[env]
    return ended


@pytest.mark.parametrize("script", [SYNC_SCRIPT, ASYNC_SCRIPT], ids=["sync", "async"])
def test_envpool_script_runs_unchanged(script):
    ours = run_script(script, ours=True)
    assert check_next_step_autoreset(ours["log"]) > 20
    assert ours["spaces"][0] == gymnasium.spaces.Box(
        ours["spaces"][0].low, ours["spaces"][0].high, (4,), np.float32
    )
    assert ours["spaces"][1] == gymnasium.spaces.Discrete(2)

    real = run_script(script, ours=False)
    assert check_next_step_autoreset(real["log"]) > 20  # our reading of EnvPool holds
    assert structure(ours["log"]) == structure(real["log"])
    assert ours["spaces"] == real["spaces"]


@pytest.mark.filterwarnings("ignore:.*precision lowered:UserWarning")  # EnvPool's spaces
def test_cartpole_transitions_match_envpool():
    """From the same start states, CartPole steps as EnvPool's does (it is
    Gymnasium's CartPole), with the same next-step auto-reset and time limit;
    the flags differ where the pole falls on the time limit's step."""
    envpool = pytest.importorskip("envpool")
    n, steps = 16, 400
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        real = envpool.make(
            "CartPole-v1", env_type="gymnasium", num_envs=n, seed=5, max_episode_steps=30
        )
    ours = penvpool.make(
        "CartPole-v1", env_type="gymnasium", num_envs=n, seed=5, max_episode_steps=30
    )
    real_obs, real_info = real.reset()
    ours.reset()
    # EnvPool's start states, as the float32 observations show them.
    ours.pool.reset(instances={"state": real_obs.astype(np.float64)})
    plan = np.random.default_rng(1).integers(0, 2, (steps, n))
    restarts = truncations = both = 0
    for t in range(steps):
        r_obs, r_rew, r_term, r_trunc, r_info = real.step(plan[t])
        o_obs, o_rew, o_term, o_trunc, o_info = ours.step(plan[t])
        assert np.array_equal(o_info["env_id"], r_info["env_id"])
        assert np.array_equal(o_info["elapsed_step"], r_info["elapsed_step"]), t
        assert np.array_equal(o_rew, r_rew) and o_rew.dtype == r_rew.dtype
        assert np.array_equal(o_trunc, r_trunc), t
        # A pole that falls on the time limit's step: EnvPool reports truncated
        # only, pyenvpool (as Gymnasium's TimeLimit) terminated and truncated.
        assert np.array_equal(o_term & ~o_trunc, r_term), t
        both += int((o_term & o_trunc).sum())
        restarted = np.flatnonzero(r_info["elapsed_step"] == 0)
        stepped = np.flatnonzero(r_info["elapsed_step"] > 0)
        np.testing.assert_allclose(o_obs[stepped], r_obs[stepped], rtol=0, atol=1e-5)
        if len(restarted):  # each drew its own start state: continue from EnvPool's
            ours.pool.reset(
                env_ids=restarted, instances={"state": r_obs[restarted].astype(np.float64)}
            )
        restarts += len(restarted)
        truncations += int(r_trunc.sum())
    assert restarts > 100 and truncations > 5 and both > 0


def test_gym_api_is_the_old_four_tuple():
    gym_env = penvpool.make("CartPole-v1", env_type="gym", num_envs=4, seed=2, max_episode_steps=8)
    new_env = penvpool.make_gymnasium("CartPole-v1", num_envs=4, seed=2, max_episode_steps=8)
    obs = gym_env.reset()
    new_obs, _ = new_env.reset()
    assert isinstance(obs, np.ndarray) and np.array_equal(obs, new_obs)
    truncated_seen = 0
    for _ in range(30):
        obs, reward, done, info = gym_env.step(np.ones(4, np.int64))
        n_obs, n_reward, terminated, truncated, n_info = new_env.step(np.ones(4, np.int64))
        assert np.array_equal(obs, n_obs) and np.array_equal(reward, n_reward)
        assert np.array_equal(done, terminated | truncated)
        assert np.array_equal(info["TimeLimit.truncated"], truncated & ~terminated)
        assert np.array_equal(info["elapsed_step"], n_info["elapsed_step"])
        truncated_seen += int(info["TimeLimit.truncated"].sum())
    assert truncated_seen > 0  # pushing one way, the pole lasts about 9 steps
    with_info = penvpool.make_gym("CartPole-v1", num_envs=2, gym_reset_return_info=True)
    obs, info = with_info.reset()
    assert obs.shape == (2, 4) and not info["TimeLimit.truncated"].any()
    assert set(info) == {"env_id", "players", "elapsed_step", "TimeLimit.truncated"}
    for env in (gym_env, new_env, with_info):
        env.close()


def test_time_limit_truncation_in_both_apis():
    gym_env = penvpool.make("CartPole-v1", env_type="gym", num_envs=2, seed=0, max_episode_steps=4)
    gym_env.reset()
    for _ in range(3):
        gym_env.step(np.array([0, 1]))
    obs, reward, done, info = gym_env.step(np.array([1, 0]))
    assert done.all() and info["TimeLimit.truncated"].all()
    obs, reward, done, info = gym_env.step(np.array([1, 0]))
    assert not done.any() and (reward == 0).all() and (info["elapsed_step"] == 0).all()
    gym_env.close()


def test_async_trajectories_equal_sync():
    """Whatever order an asynchronous pool returns envs in, each env lives
    the same episodes as in a synchronous pool with the same seed."""
    n, b, steps = 12, 5, 30
    sync = penvpool.make("CartPole-v1", num_envs=n, seed=9)
    obs, _ = sync.reset()
    plan = np.random.default_rng(0).integers(0, 2, (2 * steps, n))
    expected = [(obs, None, None)] + [
        (o, r, i["elapsed_step"]) for o, r, _, _, i in (sync.step(plan[t]) for t in range(steps))
    ]
    env = penvpool.make("CartPole-v1", num_envs=n, batch_size=b, seed=9)
    env.async_reset()
    t_of = np.zeros(n, int)  # results each env has returned
    while (t_of <= steps).any():
        obs, reward, _, _, info = env.recv()
        ids = info["env_id"]
        assert len(ids) == b and len(set(ids.tolist())) == b
        for row, e in enumerate(ids.tolist()):
            if t_of[e] <= steps:
                e_obs, e_rew, e_elapsed = expected[t_of[e]]
                assert np.array_equal(obs[row], e_obs[e])
                if e_rew is not None:
                    assert reward[row] == e_rew[e] and info["elapsed_step"][row] == e_elapsed[e]
            t_of[e] += 1
        assert t_of.max() < 2 * steps
        env.send(plan[t_of[ids] - 1, ids], ids)
    env.close()
    sync.close()


def test_partial_step_leaves_the_other_envs_alone():
    a = penvpool.make("CartPole-v1", num_envs=3, seed=4)
    b = penvpool.make("CartPole-v1", num_envs=3, seed=4)
    a.reset()
    b.reset()
    obs, reward, _, _, info = a.step(np.array([1, 0]), np.array([2, 0]))
    assert info["env_id"].tolist() == [2, 0] and obs.shape == (2, 4)
    full, *_ = b.step(np.array([0, 0, 1]))
    assert np.array_equal(obs, full[[2, 0]])
    obs_a, *_, info_a = a.step(np.array([0, 1, 0]))
    obs_b, *_ = b.step(np.array([0, 1, 0]))
    # env 1 was left alone by the partial step: its one step is b's second step's
    assert info_a["elapsed_step"].tolist() == [2, 1, 2]
    assert not np.array_equal(obs_a[1], obs_b[1])
    c = penvpool.make("CartPole-v1", num_envs=3, seed=4)
    c.reset()
    first, *_ = c.step(np.array([0, 1, 0]))
    assert np.array_equal(obs_a[1], first[1])
    for env in (a, b, c):
        env.close()


def test_an_ended_env_restarts_at_its_own_next_step_after_partial_steps():
    # Env 0 ends; partial steps of env 1 step env 0 too and restore it, so the
    # restart it owes must survive them and come at env 0's own next step.
    env = penvpool.make("CartPole-v1", num_envs=2, seed=0)
    env.reset()
    done = False
    while not done:
        _, _, terminated, truncated, _ = env.step(np.array([0]), np.array([0]))
        done = bool(terminated[0] or truncated[0])
    for _ in range(3):
        env.step(np.array([1]), np.array([1]))
    first, reward, terminated, truncated, info = env.step(np.array([1]), np.array([0]))
    assert reward[0] == 0 and not terminated[0] and not truncated[0]
    assert info["elapsed_step"][0] == 0
    assert np.abs(first[0]).max() <= 0.05  # CartPole's start states
    _, _, _, _, info = env.step(np.array([1]), np.array([0]))
    assert info["elapsed_step"][0] == 1
    env.close()


def test_the_first_step_of_an_env_never_reset_starts_its_episode():
    env = penvpool.make("CartPole-v1", num_envs=3, seed=0)
    obs, reward, terminated, truncated, info = env.step(np.array([1, 0, 1]))
    assert reward.tolist() == [0, 0, 0] and not terminated.any() and not truncated.any()
    assert info["elapsed_step"].tolist() == [0, 0, 0]
    _, reward, _, _, info = env.step(np.array([1, 0, 1]))
    assert reward.tolist() == [1, 1, 1] and info["elapsed_step"].tolist() == [1, 1, 1]
    env.close()


@pytest.mark.parametrize("autoreset", ["next_step", "same_step"])
@pytest.mark.parametrize("task", pyenvpool.list_tasks())
def test_every_task(task, autoreset):
    """Any action space: actions sampled from the single action_space, rows
    as the spaces say, and the auto-reset mode's invariants."""
    n = 4
    env = penvpool.make(task, num_envs=n, seed=1, autoreset=autoreset)
    assert env.single_action_space is env.action_space
    assert (
        env.metadata["autoreset_mode"].value
        == {"next_step": "NextStep", "same_step": "SameStep"}[autoreset]
    )
    obs, info = env.reset()
    env.action_space.seed(0)
    ended = np.zeros(n, bool)
    restarted = 0
    for t in range(1100):  # past the longest time limit (MountainCarContinuous: 999)
        if restarted and t >= 60:
            break
        actions = np.stack([env.action_space.sample() for _ in range(n)])
        obs, reward, terminated, truncated, info = env.step(actions)
        for i in range(n):
            row = {k: np.asarray(v[i]) for k, v in obs.items()} if isinstance(obs, dict) else obs[i]
            assert env.observation_space.contains(row)
        assert reward.dtype == np.float32 and terminated.dtype == np.bool_
        done = terminated | truncated
        if autoreset == "next_step":
            assert (reward[ended] == 0).all() and (info["elapsed_step"][ended] == 0).all()
            assert not done[ended].any()
        else:
            assert (info["elapsed_step"] >= 1).all()
            assert set(info) == {
                "env_id",
                "players",
                "elapsed_step",
                "final_obs",
                "episode_return",
                "episode_length",
            }
            assert np.array_equal(info["episode_length"][done], info["elapsed_step"][done])
        restarted += int(ended.sum())
        ended = done
    assert restarted > 0
    env.close()


def test_same_step_final_obs_is_the_engine_s():
    env = penvpool.make("CartPole-v1", num_envs=4, seed=6, autoreset="same_step")
    pool = pyenvpool.make("CartPole-v1", 4, seed=6)
    env.reset()
    pool.reset()
    ended = 0
    for _ in range(40):
        obs, reward, terminated, truncated, info = env.step(np.zeros(4, np.int64))
        p_obs, p_reward, p_term, p_trunc, p_info = pool.step(np.zeros(4, np.int64))
        done = terminated | truncated
        assert np.array_equal(obs, p_obs["obs"])
        assert np.array_equal(info["final_obs"][done], p_info["final_obs"]["obs"][done])
        ended += int(done.sum())
    assert ended >= 4
    env.close()
    pool.close()


def test_spec_config_and_listing():
    spec = penvpool.make_spec("CartPole-v1", num_envs=4, batch_size=2, max_episode_steps=100)
    assert spec.config.num_envs == 4 and spec.config.batch_size == 2
    assert spec.config.max_episode_steps == 100 and spec.id == "CartPole-v1"
    assert spec.action_space == gymnasium.spaces.Discrete(2)
    assert penvpool.list_all_envs() == pyenvpool.list_tasks()
    env = penvpool.make("CartPole-v1", env_type="gymnasium", num_envs=3, seed=[5, 6, 7])
    assert env.config["env_seed"] == [5, 6, 7] and len(env) == 3 and not env.is_async
    env.num_envs = 3  # scripts written for EnvPool assign these
    env.single_action_space = env.action_space
    env.close()


def test_gymnasium_vector_wrappers_take_it():
    """As EnvPool's Gymnasium env, it is a VectorEnv with NEXT_STEP autoreset."""
    env = gymnasium.wrappers.vector.RecordEpisodeStatistics(
        penvpool.make("CartPole-v1", env_type="gymnasium", num_envs=4, seed=0)
    )
    env.reset()
    episodes = 0
    for _ in range(100):
        *_, info = env.step(np.ones(4, np.int64))
        if "episode" in info:
            episodes += int(info["_episode"].sum())
            assert (info["episode"]["r"][info["_episode"]] >= 8).all()
    assert episodes >= 8
    env.close()


def test_reset_mask_and_seed():
    env = penvpool.make("CartPole-v1", num_envs=4, seed=0)
    obs, info = env.reset(seed=11)
    again, _ = env.reset(seed=11)
    assert np.array_equal(obs, again)
    obs, info = env.reset(options={"reset_mask": np.array([True, False, True, False])})
    assert info["env_id"].tolist() == [0, 2] and obs.shape == (2, 4)
    env.close()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="env_type"):
        penvpool.make("CartPole-v1", env_type="dm")
    with pytest.raises(ValueError, match="unknown task_id"):
        penvpool.make("Nope-v0")
    env = penvpool.make("CartPole-v1", num_envs=3)
    with pytest.raises(RuntimeError, match="nothing sent"):
        env.recv()
    env.reset()
    with pytest.raises(ValueError, match="out of range"):
        env.step(np.zeros(1, np.int64), np.array([3]))
    with pytest.raises(ValueError, match="repeats"):
        env.step(np.zeros(2, np.int64), np.array([1, 1]))
    with pytest.raises(ValueError, match="rows"):
        env.step(np.zeros(2, np.int64))
    with pytest.raises(ValueError):
        env.step(np.array([0, 5, 0]))  # Discrete(2)
    obs, reward, *_ = env.step(np.zeros(3, np.int64))  # still works
    assert obs.shape == (3, 4) and (reward == 1).all()
    env.close()


def test_render():
    env = penvpool.make("CartPole-v1", num_envs=3, render_mode="ansi", render_env_id=2)
    env.reset()
    assert len(env.render()) == 1 and isinstance(env.render()[0], str)
    assert len(env.render(np.array([0, 1]))) == 2
    env.close()
    drawing = []  # tasks that draw rgb frames
    for task in pyenvpool.list_tasks():
        with pyenvpool.make(task, 1) as probe:
            if "rgb_array" in probe.render_modes:
                drawing.append(task)
    if drawing:
        env = penvpool.make(drawing[0], num_envs=3, render_mode="rgb_array")
        env.reset()
        frames = env.render(np.array([0, 2]))
        assert frames.dtype == np.uint8 and frames.shape[0] == 2 and frames.shape[-1] == 3
        assert env.render().shape[0] == 1
        env.close()
    else:
        with pytest.raises(ValueError, match="renders"):
            penvpool.make("CartPole-v1", num_envs=3, render_mode="rgb_array")
    env = penvpool.make("CartPole-v1")
    with pytest.raises(RuntimeError, match="render_mode"):
        env.render()
    env.close()
