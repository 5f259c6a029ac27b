"""Recurrent policies: the core over every architecture, hidden states that reset
exactly at episode starts (across rollouts too), truncated BPTT against an
explicitly unrolled network, exact resume with hidden states (PPO and SPO),
evaluation that carries a state per env, and SPO particles that carry theirs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pyenvpool
from pyenvpool import Spec
from trainer import checkpoint
from trainer.algorithm import greedy_policy
from trainer.config import ConfigError, NetworkConfig, resolve
from trainer.distributions import ActionSpace
from trainer.evaluate import Evaluator
from trainer.networks import architecture_record, build_agent
from trainer.ppo import PPO
from trainer.recurrent import RecurrentAgent, RecurrentGreedyPolicy, StatefulPolicy
from trainer.smc import SearchConfig, smc_search
from trainer.spo import policy_value_fn
from trainer.train import Trainer

from .conftest import field


def recurrent_net(spec, kind="lstm", size=8, **fields):
    return build_agent(
        spec, NetworkConfig(architecture="mlp", recurrent=kind, recurrent_size=size, **fields)
    )


# ------------------------------------------------------------------ the core
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("architecture", ["mlp", "maze_cnn", "maze_vin", "binpack_attention"])
def test_every_architecture_gets_a_core_that_steps_and_unrolls_alike(
    kind, architecture, maze_spec, binpack_spec, random_obs
):
    if architecture == "mlp":
        spec = Spec("Memory-v0", {"obs": field("obs", (5,), np.float32)}, 4, {})
    else:
        spec = binpack_spec if architecture == "binpack_attention" else maze_spec
    cfg = NetworkConfig(
        architecture=architecture,
        recurrent=kind,
        recurrent_size=6,
        vin_iterations=4,
        conv_channels=[4],
        shared_torso=architecture == "maze_cnn",
    )
    torch.manual_seed(0)
    agent = build_agent(spec, cfg)
    assert isinstance(agent, RecurrentAgent)
    assert agent.state_size == (12 if kind == "lstm" else 6)
    steps, batch = 3, 4
    flat = random_obs(spec, steps * batch, seed=1)
    obs = {k: v.reshape(steps, batch, *v.shape[1:]) for k, v in flat.items()}
    starts = torch.tensor([[True] * 4, [False, True, False, False], [False] * 4])
    state = torch.randn(batch, agent.state_size)
    logits, values, states = agent.unroll(obs, state, starts)
    assert logits.shape == (steps, batch, spec.num_actions) and values.shape == (steps, batch)
    assert states.shape == (steps, batch, agent.state_size)
    # Step by step gives the same outputs.
    for t in range(steps):
        step_logits, step_values, state = agent.step(
            {k: v[t] for k, v in obs.items()}, state, starts[t]
        )
        torch.testing.assert_close(step_logits, logits[t], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(step_values, values[t], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(state, states[t], atol=1e-5, rtol=1e-5)
    with pytest.raises(TypeError, match="hidden state"):
        agent(flat)


def test_the_core_changes_the_record_and_a_feed_forward_record_stays_as_it_was():
    spec = Spec("CartPole-v1", {"obs": field("obs", (4,), np.float32)}, 2, {})
    plain = architecture_record(spec, NetworkConfig(architecture="mlp"))
    assert "recurrent" not in plain["network"]
    lstm = architecture_record(spec, NetworkConfig(architecture="mlp", recurrent="lstm"))
    assert lstm["network"]["recurrent"] == "lstm" and lstm["network"]["recurrent_size"] == 128


def test_recurrent_config_rules():
    with pytest.raises(ConfigError, match="recurrent: two-player"):
        resolve(flags={"task": "ConnectFour-v0", "recurrent": "lstm"})
    with pytest.raises(ConfigError, match="num_minibatches: a recurrent policy"):
        resolve(flags={"task": "CartPole-v1", "recurrent": "gru", "num_envs": 6})
    with pytest.raises(ConfigError, match="unknown 'rnn'"):
        resolve(flags={"task": "CartPole-v1", "recurrent": "rnn"})


# ------------------------------------------------------------------ TBPTT
def explicit_cell(kind, core, x, state):
    """The LSTM / GRU equations written out with the cell's parameters."""
    w_ih, w_hh, b_ih, b_hh = core.weight_ih, core.weight_hh, core.bias_ih, core.bias_hh
    if kind == "lstm":
        h, c = state.chunk(2, dim=-1)
        i, f, g, o = (x @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, torch.cat([h, c], dim=-1)
    xr, xz, xn = (x @ w_ih.T + b_ih).chunk(3, dim=-1)
    hr, hz, hn = (state @ w_hh.T + b_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    h = (1 - z) * torch.tanh(xn + r * hn) + z * state
    return h, h


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_truncated_bptt_gradient_equals_the_explicitly_unrolled_network(kind):
    spec = Spec("Memory-v0", {"obs": field("obs", (5,), np.float32)}, 4, {})
    torch.manual_seed(3)
    agent = recurrent_net(spec, kind, size=7, hidden_sizes=[16])
    steps, batch = 6, 3
    obs = {"obs": torch.randn(steps, batch, 5)}
    # Env 0 restarts at t = 2, env 1 at t = 0 and t = 5, env 2 never.
    starts = torch.zeros(steps, batch, dtype=torch.bool)
    starts[2, 0] = starts[0, 1] = starts[5, 1] = True
    stored = torch.randn(batch, agent.state_size)  # the state stored at the rollout's start
    actions = torch.randint(0, 4, (steps, batch))
    returns = torch.randn(steps, batch)

    def loss(logits, values):
        logp = torch.log_softmax(logits, -1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        return -(logp * returns).mean() + ((values - returns) ** 2).mean()

    logits, values, _ = agent.unroll(obs, stored, starts)
    params = list(agent.parameters())
    tbptt = torch.autograd.grad(loss(logits, values), params)

    # The same network written out step by step from the stored state.
    net, state = agent.net, stored
    step_logits, step_values = [], []
    for t in range(steps):
        state = torch.where(starts[t].unsqueeze(-1), torch.zeros_like(state), state)
        x = obs["obs"][t]
        memory, state = explicit_cell(kind, agent.core, x, state)
        head_in = torch.cat([x, memory], dim=-1)
        step_logits.append(net.actor(head_in))
        step_values.append(net.critic(head_in).squeeze(-1))
    explicit = torch.autograd.grad(loss(torch.stack(step_logits), torch.stack(step_values)), params)
    for (name, _), a, b in zip(agent.named_parameters(), tbptt, explicit):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)
    # Gradients stop at the stored state: it is data, not a parameter.
    assert not stored.requires_grad


# ------------------------------------------------------------------ episode starts
class ScriptedEnvs:
    """Envs whose episode ends follow a script: ``ends[k, n]`` is 0 (goes on),
    1 (terminated) or 2 (truncated) for env n at step k; observations are
    fresh random numbers every step."""

    alternating = None

    def __init__(self, ends: np.ndarray) -> None:
        self.ends, self.k = ends, 0
        self.num_envs = ends.shape[1]
        self.spec = Spec("Scripted", {"obs": field("obs", (3,), np.float32)}, 2, {})
        self.rng = np.random.default_rng(0)
        self.obs = {"obs": self.rng.standard_normal((self.num_envs, 3)).astype(np.float32)}
        self.finals: list[np.ndarray] = []
        self.env_steps = 0

    def prepare_rollout(self, agent, update):
        pass

    def step(self, actions, out=None):
        end = self.ends[self.k]
        self.k += 1
        terminated, truncated = end == 1, end == 2
        final = self.rng.standard_normal((self.num_envs, 3)).astype(np.float32)
        obs = self.rng.standard_normal((self.num_envs, 3)).astype(np.float32)
        self.finals.append(final)
        info = {
            "final_obs": {"obs": final},
            "episode_return": np.ones(self.num_envs, np.float32),
            "episode_length": np.ones(self.num_envs, np.int32),
        }
        reward = np.ones(self.num_envs, np.float32)
        if out is not None:
            out["obs"][:] = obs
            out["reward"][:], out["terminated"][:], out["truncated"][:] = (
                reward,
                terminated,
                truncated,
            )
            obs, reward, terminated, truncated = (
                out["obs"],
                out["reward"],
                out["terminated"],
                out["truncated"],
            )
        self.obs = {"obs": obs}
        return {"obs": obs}, reward, terminated, truncated, info


def test_hidden_state_resets_exactly_at_episode_starts_across_rollouts(tiny_config):
    # Two rollouts of 4 steps of 3 envs. Env 0 ends an episode at the last step
    # of the first rollout and again at the first step of the second (a
    # one-step episode); env 1 is truncated at step 1; env 2 never ends.
    ends = np.zeros((8, 3), np.int64)
    ends[3, 0] = 1
    ends[4, 0] = 1
    ends[1, 1] = 2
    config = tiny_config(
        num_envs=3, num_steps=4, num_minibatches=1, recurrent="lstm", recurrent_size=5
    )
    envs = ScriptedEnvs(ends)
    torch.manual_seed(0)
    agent = build_agent(envs.spec, config.network)
    ppo = PPO(config, envs, agent, torch.device("cpu"))
    seen_obs, seen_starts, initial, values, final_values = [], [], [], [], []
    for _ in range(2):
        ppo.collect()
        s = ppo.storage
        seen_obs.append(s.obs["obs"][:-1].clone())
        seen_starts.append(s.starts.clone())
        initial.append(s.initial_state.clone())
        values.append(s.values[:-1].clone())
        final_values.append(s.final_values.clone())
    starts = torch.cat(seen_starts)
    expected = torch.zeros(8, 3, dtype=torch.bool)
    expected[0] = True  # the first observations after the reset
    expected[4, 0] = expected[5, 0] = True  # after the ends at steps 3 and 4
    expected[2, 1] = True  # after the truncation at step 1
    assert torch.equal(starts, expected)
    # The first rollout starts from zeros, the second from the state the first left.
    assert torch.equal(initial[0], torch.zeros_like(initial[0]))
    assert not torch.equal(initial[1], torch.zeros_like(initial[1]))
    # Every stored value is V of the observation given only its own episode so
    # far: replay each env from zeros at its episode starts, one step at a time.
    obs, values = torch.cat(seen_obs), torch.cat(values)
    with torch.no_grad():
        for n in range(3):
            state = agent.initial_state(1)
            for t in range(8):
                if expected[t, n]:
                    state = agent.initial_state(1)
                _, value, state = agent.step(
                    {"obs": obs[t, n : n + 1]}, state, torch.zeros(1, dtype=torch.bool)
                )
                torch.testing.assert_close(value[0], values[t, n], atol=1e-6, rtol=1e-6)
                if t == 1 and n == 1:  # truncated: V(final_obs) continues the episode's state
                    final = {"obs": torch.from_numpy(envs.finals[1][1:2])}
                    _, final_value, _ = agent.step(final, state, torch.zeros(1, dtype=torch.bool))
                    torch.testing.assert_close(
                        final_value[0], final_values[0][1, 1], atol=1e-6, rtol=1e-6
                    )


def test_minibatches_split_the_envs_and_keep_whole_sequences(tiny_config):
    config = tiny_config(
        num_envs=8, num_steps=5, num_minibatches=4, recurrent="gru", recurrent_size=4
    )
    envs = ScriptedEnvs(np.zeros((5, 8), np.int64))
    ppo = PPO(config, envs, build_agent(envs.spec, config.network), torch.device("cpu"))
    batches = list(ppo._minibatches())
    assert len(batches) == 4
    seen = torch.cat([envs_ for _, envs_ in batches])
    assert sorted(seen.tolist()) == list(range(8))
    for rows, envs_ in batches:
        assert len(envs_) == 2
        # Time first: row t * N + e for every step t of each of the minibatch's envs.
        assert rows.tolist() == [t * 8 + e for t in range(5) for e in envs_.tolist()]


def test_a_recurrent_ppo_update_learns_from_its_rollout(tiny_config):
    config = tiny_config(num_minibatches=2, recurrent="lstm", recurrent_size=8)
    pool_envs = __import__("trainer.envs", fromlist=["TrainingEnvs"]).TrainingEnvs(
        config.task, config.num_envs, config.seed, config.task_kwargs
    )
    agent = build_agent(pool_envs.spec, config.network)
    ppo = PPO(config, pool_envs, agent, torch.device("cpu"))
    before = [p.detach().clone() for p in agent.parameters()]
    ppo.collect()
    metrics = ppo.update(0)
    assert all(np.isfinite(v) for v in metrics.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.parameters()))
    pool_envs.close()


@pytest.mark.parametrize("algo", ["ppo", "spo", "appo"])
def test_a_recurrent_policy_on_box_actions_trains_and_acts_within_the_bounds(tmp_path, algo):
    """Recurrent cores and Gaussian heads together (Pendulum-v1): every
    algorithm trains a few updates with finite results, and the greedy
    recurrent policy sends torques inside [-2, 2]."""
    flags = {
        "task": "Pendulum-v1", "algo": algo, "recurrent": "gru", "recurrent_size": 8,
        "num_envs": 8, "num_steps": 16, "total_steps": 512, "eval_interval": 256,
        "eval_episodes": 4, "eval_num_envs": 4, "tensorboard": False, "plot": False,
        "checkpoint_interval": 0, "normalize_reward": algo != "appo",
    }  # fmt: skip
    if algo != "spo":
        flags["num_minibatches"] = 2
    trainer = Trainer.new(resolve(flags=flags), tmp_path / "run", progress=False)
    try:
        summary = trainer.run()
        agent = trainer.algo.agent
    finally:
        trainer.close()
    assert summary["env_steps"] == 512 and np.isfinite(summary["last_eval"]["mean_return"])
    pool = pyenvpool.make("Pendulum-v1", 4, seed=0)
    policy = greedy_policy(agent, torch.device("cpu"), ActionSpace.from_spec(pool.spec))
    obs, _ = pool.reset()
    for _ in range(5):
        actions = policy(obs)
        assert actions.shape == (4, 1) and actions.dtype == np.float32
        assert np.all(np.abs(actions) <= 2.0)
        obs, _, terminated, truncated, _ = pool.step(actions)
        policy.episodes_ended(terminated | truncated)
    pool.close()


# ------------------------------------------------------------------ evaluation
class CueRecaller(StatefulPolicy):
    """Remembers Memory-v0's cue per env; checks that it is told of every
    episode start (its step count since the start matches what it sees)."""

    def __init__(self, delay: int, num_cues: int) -> None:
        self.delay, self.num_cues = delay, num_cues

    def reset(self, num_envs):
        self.cue = np.full(num_envs, -1)
        self.t = np.zeros(num_envs, np.int64)

    def __call__(self, obs):
        o = obs["obs"]
        has_cue = o[:, : self.num_cues].any(axis=1)
        assert np.array_equal(has_cue, self.t == 0), "an episode start went unnoticed"
        assert np.array_equal(o[:, self.num_cues] == 1, self.t == self.delay)
        self.cue = np.where(has_cue, o[:, : self.num_cues].argmax(axis=1), self.cue)
        self.t += 1
        return self.cue.astype(np.int64)

    def episodes_ended(self, done):
        self.t[done] = 0


def test_evaluation_tells_a_policy_with_memory_where_episodes_start():
    evaluator = Evaluator("Memory-v0", 7, seed=5, task_kwargs={"delay": 3})
    result = evaluator.run(CueRecaller(delay=3, num_cues=4), 50)
    assert result["episodes"] == 50 and result["success_rate"] == 1.0
    evaluator.close()


def test_recurrent_greedy_policy_resets_the_rows_whose_episode_ended():
    spec = Spec("Memory-v0", {"obs": field("obs", (5,), np.float32)}, 4, {})
    agent = recurrent_net(spec, "lstm", size=6)
    policy = RecurrentGreedyPolicy(agent, torch.device("cpu"))
    policy.reset(2)
    rng = np.random.default_rng(0)
    for _ in range(3):
        policy({"obs": rng.standard_normal((2, 5)).astype(np.float32)})
    policy.episodes_ended(np.array([True, False]))
    obs = {"obs": rng.standard_normal((2, 5)).astype(np.float32)}
    before = policy.hidden.state.clone()
    policy(obs)
    fresh = RecurrentGreedyPolicy(agent, torch.device("cpu"))
    fresh.reset(2)
    fresh(obs)
    assert torch.equal(policy.hidden.state[0], fresh.hidden.state[0])  # started afresh
    assert not torch.equal(policy.hidden.state[1], fresh.hidden.state[1])  # carried on
    assert not torch.equal(before[1], policy.hidden.state[1])


# ------------------------------------------------------------------ resume
def recurrent_run_config(tiny_config, **flags):
    return tiny_config(
        task="Memory-v0",
        task_kwargs={"delay": 3},
        num_envs=8,
        num_steps=8,
        num_minibatches=2,
        total_steps=8 * 8 * 5,
        eval_interval=8 * 8 * 2,
        checkpoint_interval=0,
        recurrent="lstm",
        recurrent_size=8,
        **flags,
    )


def run(config, run_dir, **kwargs):
    trainer = Trainer.new(config, run_dir, progress=False)
    try:
        return trainer.run(**kwargs)
    finally:
        trainer.close()


def assert_same_checkpoints(a_dir, b_dir):
    a, b = checkpoint.load(a_dir), checkpoint.load(b_dir)
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    hidden_a, hidden_b = a["state"]["algorithm"]["hidden"], b["state"]["algorithm"]["hidden"]
    assert torch.equal(hidden_a["state"], hidden_b["state"])
    assert torch.equal(hidden_a["starts"], hidden_b["starts"])
    assert torch.equal(a["state"]["envs"]["states"], b["state"]["envs"]["states"])
    return a, b


@pytest.mark.parametrize("algo", ["ppo", "spo"])
def test_resume_is_bit_exact_with_hidden_states(tmp_path, tiny_config, algo):
    flags = {}
    if algo == "spo":
        flags = dict(
            algo="spo",
            num_particles=4,
            search_depth=2,
            sample_sequences=4,
            sample_sequence_length=4,
            gradient_steps=2,
            eval_search=True,
        )
    config = recurrent_run_config(tiny_config, **flags)
    run(config, tmp_path / "straight")
    assert run(config, tmp_path / "stopped", max_updates=2)["stop_reason"] == "paused"
    saved = checkpoint.load(tmp_path / "stopped")
    assert saved["state"]["algorithm"]["hidden"]["state"].abs().sum() > 0
    trainer = Trainer.resume(tmp_path / "stopped", progress=False)
    trainer.run()
    trainer.close()
    a, _ = assert_same_checkpoints(tmp_path / "straight", tmp_path / "stopped")
    if algo == "spo":
        replay = a["state"]["algorithm"]["replay"]["tensors"]
        assert "state" in replay and replay["state"].abs().sum() > 0


# ------------------------------------------------------------------ SPO particles
def test_search_particles_carry_their_own_hidden_states():
    pool = pyenvpool.make("CartPole-v1", 3, seed=1)  # particles' observations diverge
    obs, _ = pool.reset()
    agent = recurrent_net(pool.spec, "gru", size=5)
    policy_value = policy_value_fn(agent, torch.device("cpu"), dedupe=True)
    calls = []

    def spy(obs, state=None):
        calls.append((obs, None if state is None else state.clone()))
        return policy_value(obs, state)

    root = torch.randn(3, agent.state_size)
    config = SearchConfig(num_particles=4, depth=3, resample_period=1, dirichlet_fraction=0.0)
    result = smc_search(
        pool, obs, spy, 0.5, config, torch.Generator().manual_seed(0), root_state=root
    )
    assert pool.snapshot_count == 0
    # The root consumed the observations from the given state; its result is the env's next state.
    with torch.no_grad():
        _, _, root_next = agent.step(
            {k: torch.from_numpy(v) for k, v in obs.items()}, root, torch.zeros(3, dtype=torch.bool)
        )
    torch.testing.assert_close(result.root_state, root_next)
    # Every particle starts from its env's root state ...
    torch.testing.assert_close(calls[1][1], root_next.repeat_interleave(4, dim=0))
    # ... and at each depth steps the state it carries (resampled with it).
    for (obs_d, state_d), (_, next_state) in zip(calls[1:], calls[2:]):
        with torch.no_grad():
            _, _, stepped = agent.step(
                {k: torch.from_numpy(v) for k, v in obs_d.items()},
                state_d,
                torch.zeros(len(state_d), dtype=torch.bool),
            )
        # Resampling permutes particles within each env: each carried state is
        # one of the states its env's particles reached.
        for row in range(len(next_state)):
            env = row // 4
            candidates = stepped[env * 4 : env * 4 + 4]
            assert any(torch.allclose(next_state[row], c) for c in candidates)
    pool.close()


def test_deduplicated_recurrent_calls_match_the_full_batch():
    spec = Spec("Memory-v0", {"obs": field("obs", (5,), np.float32)}, 4, {})
    agent = recurrent_net(spec, "lstm", size=4)
    obs = {"obs": np.repeat(np.eye(5, dtype=np.float32)[:2], 3, axis=0)}  # 2 distinct rows x 3
    state = torch.randn(6, agent.state_size)
    state[1] = state[0]  # rows 0 and 1: same observation and state
    full = policy_value_fn(agent, torch.device("cpu"), dedupe=False)(obs, state)
    deduped = policy_value_fn(agent, torch.device("cpu"), dedupe=True)(obs, state)
    for a, b in zip(full, deduped):
        torch.testing.assert_close(a, b)
    assert not torch.allclose(full[2][0], full[2][2])  # same obs, other state: other output
