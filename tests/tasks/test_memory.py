"""Memory-v0: a cue at the first step, a delay, then a reward for recalling it."""

from __future__ import annotations

import numpy as np
import pytest

import pyenvpool


def test_one_episode_step_by_step(make_pool):
    k, delay = 3, 4
    pool = make_pool("Memory-v0", 3, num_cues=k, delay=delay)
    obs, _ = pool.reset(instances={"cue": np.array([0, 1, 2], np.int32)})
    assert np.array_equal(obs["obs"], np.eye(k + 1, dtype=np.float32)[:3])
    for t in range(1, delay + 1):
        obs, reward, terminated, truncated, _ = pool.step(np.array([2, 2, 2]))
        assert (reward == 0).all() and not terminated.any() and not truncated.any()
        expected = np.zeros((3, k + 1), np.float32)
        if t == delay:
            expected[:, k] = 1  # the query
        assert np.array_equal(obs["obs"], expected)
    obs, reward, terminated, truncated, info = pool.step(np.array([0, 0, 2]))
    assert reward.tolist() == [1.0, 0.0, 1.0] and terminated.all() and not truncated.any()
    assert (info["final_obs"]["obs"] == 0).all()
    assert (info["episode_length"] == delay + 1).all()
    assert info["episode_return"].tolist() == [1.0, 0.0, 1.0]
    # Auto-reset: the next episode's cue is already shown.
    assert (obs["obs"][:, :k].sum(1) == 1).all() and (obs["obs"][:, k] == 0).all()


def test_nothing_after_the_first_step_depends_on_the_cue(make_pool):
    """The reason a memoryless policy scores exactly chance: every observation
    after t = 0 (and every rgb frame before the answer) is the same for every
    cue, so its answer cannot depend on the cue."""
    k, delay = 5, 6
    pool = make_pool("Memory-v0", k, num_cues=k, delay=delay, autoreset=False)
    pool.reset(instances={"cue": np.arange(k, dtype=np.int32)})
    frames = pool.render(None, mode="rgb_array")
    assert len({f.tobytes() for f in frames}) == k  # the cue is drawn at t = 0
    for _ in range(delay):
        obs, *_ = pool.step(np.zeros(k, np.int32))
        assert (obs["obs"] == obs["obs"][0]).all()
        frames = pool.render(None, mode="rgb_array")
        assert (frames == frames[0]).all()


def test_memoryless_scores_chance_and_memory_scores_one(make_pool, rng):
    n, k, delay = 4096, 4, 8
    pool = make_pool("Memory-v0", n, seed=1)
    assert pool.spec.num_actions == k
    obs, _ = pool.reset()
    table = rng.integers(0, k, 2 ** (k + 1))  # a memoryless policy: any function of the obs

    def memoryless(o):
        return table[(o > 0.5).astype(int) @ (1 << np.arange(k + 1))]

    returns = []
    for _ in range(3 * (delay + 1)):
        obs, reward, terminated, _, info = pool.step(memoryless(obs["obs"]))
        returns += info["episode_return"][terminated].tolist()
    assert len(returns) > 8000
    assert abs(np.mean(returns) - 1 / k) < 0.02
    # Remembering the first observation solves it.
    pool = make_pool("Memory-v0", n, seed=2)
    obs, _ = pool.reset()
    memory = obs["obs"][:, :k].argmax(1)
    returns = []
    for _ in range(3 * (delay + 1)):
        obs, reward, terminated, _, info = pool.step(memory)
        returns += info["episode_return"][terminated].tolist()
        seen = obs["obs"][:, :k].sum(1) > 0  # a new episode's cue
        memory = np.where(seen, obs["obs"][:, :k].argmax(1), memory)
    assert len(returns) > 8000 and np.mean(returns) == 1.0


def test_cues_are_uniform(make_pool):
    pool = make_pool("Memory-v0", 40000, seed=3, num_cues=6)
    obs, _ = pool.reset()
    counts = np.bincount(obs["obs"][:, :6].argmax(1), minlength=6) / 40000
    assert np.abs(counts - 1 / 6).max() < 0.01


def test_delay_zero_needs_no_memory(make_pool):
    pool = make_pool("Memory-v0", 64, delay=0, num_cues=3)
    obs, _ = pool.reset()
    assert (obs["obs"][:, 3] == 1).all()
    _, reward, terminated, *_ = pool.step(obs["obs"][:, :3].argmax(1))
    assert (reward == 1).all() and terminated.all()


def test_spec_kwargs_and_bad_input(make_pool):
    pool = make_pool("Memory-v0", 2, num_cues=7, delay=20)
    field = pool.spec.fields["obs"]
    assert field.shape == (8,) and field.dtype == np.float32
    assert field.low.min() == 0 and field.high.max() == 1
    assert pool.single_action_space.n == 7
    assert pool.config == "delay=20;num_cues=7;"
    for kwargs, error in [
        ({"num_cues": 1}, ValueError),
        ({"delay": -1}, ValueError),
        ({"num_cues": 2.0}, TypeError),
        ({"cues": 3}, TypeError),
    ]:
        with pytest.raises(error, match=next(iter(kwargs))):
            pyenvpool.make("Memory-v0", 2, **kwargs)
    pool.reset(seed=0)
    with pytest.raises(ValueError, match="'cue' must be in"):
        pool.reset(instances={"cue": np.array([0, 7], np.int32)})
    with pytest.raises(ValueError, match=r"actions\[1\] = 7"):
        pool.step(np.array([0, 7]))


def test_render(make_pool):
    pool = make_pool("Memory-v0", 1, delay=2, autoreset=False)
    pool.reset(instances={"cue": np.array([3], np.int32)})
    assert pool.render(0) == "step 0/2, the agent sees the cue 3  [cue 3]"
    pool.step([0])
    assert pool.render(0).startswith("step 1/2, the agent sees nothing")
    pool.step([0])
    assert pool.render(0).startswith("step 2/2, the agent sees the query")
    query = pool.render(0, mode="rgb_array")
    pool.step([3])
    assert "answered 3 (right)" in pool.render(0)
    answered = pool.render(0, mode="rgb_array")
    assert answered.shape == query.shape == pool.frame_shape
    assert not np.array_equal(answered, query)


def test_gymnasium_vector_env(make_pool):
    gym = pytest.importorskip("gymnasium")
    env = pyenvpool.GymnasiumVectorEnv("Memory-v0", 4, delay=3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 5) and env.single_action_space == gym.spaces.Discrete(4)
    assert env.single_observation_space == gym.spaces.Box(0, 1, (5,), np.float32)
    for _ in range(4):
        obs, reward, terminated, truncated, _ = env.step(np.zeros(4, np.int64))
    assert terminated.all()
    env.close()
