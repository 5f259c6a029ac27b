"""Networks on synthetic tensors of the contract's task layouts (section 3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import pyenvpool
from pyenvpool import ActionSpec, FieldSpec, Spec
from trainer.config import NetworkConfig
from trainer.distributions import ActionSpace, MaskedCategorical
from trainer.networks import (
    BinPackAgent,
    MazeCNNAgent,
    MazeVINAgent,
    MLPAgent,
    architecture_record,
    build_agent,
)


def check_agent(agent, obs, num_actions):
    logits, value = agent(obs)
    batch = next(iter(obs.values())).shape[0]
    assert logits.shape == (batch, num_actions) and value.shape == (batch,)
    assert torch.isfinite(logits).all() and torch.isfinite(value).all()
    torch.testing.assert_close(agent.logits(obs), logits)
    torch.testing.assert_close(agent.get_value(obs), value)
    dist = MaskedCategorical(logits, obs.get("action_mask"))
    loss = -dist.log_prob(dist.sample()).mean() + value.pow(2).mean() - dist.entropy().mean()
    loss.backward()
    grads = [p.grad for p in agent.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_mlp_on_cartpole():
    spec = pyenvpool.make("CartPole-v1", 1).spec
    agent = build_agent(spec, NetworkConfig(architecture="mlp"))
    assert isinstance(agent, MLPAgent)
    check_agent(agent, {"obs": torch.randn(5, 4)}, 2)


def test_mlp_uses_orthogonal_init_with_small_policy_and_unit_value_heads():
    spec = pyenvpool.make("CartPole-v1", 1).spec
    agent = build_agent(spec, NetworkConfig(architecture="mlp", hidden_sizes=[64, 64]))
    first = agent.actor[0].weight  # [64, 4]: orthogonal rows scaled by sqrt(2)
    torch.testing.assert_close(first.T @ first, 2.0 * torch.eye(4), atol=1e-5, rtol=0)
    head = agent.actor[-1].weight  # [2, 64]
    torch.testing.assert_close(head @ head.T, 0.01**2 * torch.eye(2), atol=1e-7, rtol=0)
    value_head = agent.critic[-1].weight  # [1, 64]
    assert value_head.norm().item() == pytest.approx(1.0, abs=1e-5)
    assert all(torch.all(m.bias == 0) for m in agent.modules() if isinstance(m, torch.nn.Linear))


def test_mlp_without_orthogonal_init_keeps_pytorchs_default_linear_init():
    spec = pyenvpool.make("CartPole-v1", 1).spec
    cfg = NetworkConfig(architecture="mlp", hidden_sizes=[64, 64], orthogonal_init=False)
    torch.manual_seed(3)
    agent = build_agent(spec, cfg)
    torch.manual_seed(3)
    expected = [torch.nn.Linear(a, b) for a, b in [(4, 64), (64, 64), (64, 2)]]
    for layer, reference in zip(agent.actor[::2], expected):
        torch.testing.assert_close(layer.weight, reference.weight, atol=0, rtol=0)
        torch.testing.assert_close(layer.bias, reference.bias, atol=0, rtol=0)
    head = agent.actor[-1].weight  # PyTorch's U(-1/8, 1/8), far from a 0.01 gain
    assert head.norm().item() > 0.3 and head.abs().max().item() <= 1 / 8


@pytest.mark.parametrize("shared", [False, True])
def test_maze_cnn_on_maze_shaped_tensors(maze_spec, shared, random_obs):
    agent = build_agent(maze_spec, NetworkConfig(architecture="maze_cnn", shared_torso=shared))
    assert isinstance(agent, MazeCNNAgent)
    assert agent.step_scale == 100.0
    obs = random_obs(maze_spec, 6)
    check_agent(agent, obs, 4)
    planes = agent.planes(obs)
    assert planes.shape == (6, 3, 10, 10)
    for b in range(6):
        r, c = obs["agent_position"][b].tolist()
        assert planes[b, 1].sum() == 1 and planes[b, 1, r, c] == 1
        r, c = obs["target_position"][b].tolist()
        assert planes[b, 2].sum() == 1 and planes[b, 2, r, c] == 1
    torch.testing.assert_close(planes[:, 0], obs["walls"].float())


@pytest.mark.parametrize("conv_channels", [[], [4, 4]])
def test_maze_egocentric_view_is_centred_on_the_agent(maze_spec, conv_channels, random_obs):
    cfg = NetworkConfig(
        architecture="maze_cnn", egocentric=True, conv_channels=conv_channels, hidden_sizes=[16]
    )
    agent = build_agent(maze_spec, cfg)
    obs = random_obs(maze_spec, 6)
    check_agent(agent, obs, 4)
    planes = agent.planes(obs)
    assert planes.shape == (6, 2, 19, 19)
    for b in range(6):
        r, c = obs["agent_position"][b].tolist()
        walls = planes[b, 0]
        # The maze sits in the window with the agent at the centre (9, 9) ...
        torch.testing.assert_close(walls[9 - r : 19 - r, 9 - c : 19 - c], obs["walls"][b].float())
        # ... and everything outside it reads as wall.
        assert walls.sum() == obs["walls"][b].sum() + 19 * 19 - 100
        tr, tc = obs["target_position"][b].tolist()
        assert planes[b, 1].sum() == 1 and planes[b, 1, 9 + tr - r, 9 + tc - c] == 1


@pytest.mark.parametrize("shared", [False, True])
def test_binpack_attention_on_binpack_shaped_tensors(binpack_spec, shared, random_obs):
    cfg = NetworkConfig(
        architecture="binpack_attention",
        num_layers=2,
        num_heads=4,
        key_size=8,
        hidden_sizes=[32],
        shared_torso=shared,
    )
    agent = build_agent(binpack_spec, cfg)
    assert isinstance(agent, BinPackAgent)
    check_agent(agent, random_obs(binpack_spec, 3), 800)


def test_binpack_logits_are_bilinear_in_ems_major_order(binpack_spec, random_obs):
    # Action a = ems_index * 20 + item_index (row-major over Jumanji's (40, 20) mask).
    cfg = NetworkConfig(
        architecture="binpack_attention", num_layers=1, num_heads=2, key_size=4, hidden_sizes=[8]
    )
    agent = build_agent(binpack_spec, cfg)
    obs = random_obs(binpack_spec, 2)
    ems, items = agent.actor_torso(obs, agent.biases(obs))
    e, i = agent.policy_ems(ems), agent.policy_items(items)
    logits = agent.logits(obs)
    for ems_index, item_index in [(0, 0), (3, 7), (39, 19)]:
        expected = (e[:, ems_index] * i[:, item_index]).sum(-1)
        torch.testing.assert_close(logits[:, ems_index * 20 + item_index], expected)


def test_binpack_cross_attention_respects_the_action_mask(binpack_spec, random_obs):
    # An item that no EMS may take cannot influence the EMS embeddings through
    # cross-attention (ems_self / items_self are masked by their own masks).
    cfg = NetworkConfig(
        architecture="binpack_attention", num_layers=1, num_heads=2, key_size=4, hidden_sizes=[8]
    )
    agent = build_agent(binpack_spec, cfg)
    obs = random_obs(binpack_spec, 1)
    obs["items_mask"][:] = True
    obs["items_placed"][:] = False
    mask = obs["action_mask"].view(1, 40, 20)
    mask[:, :, 5] = False  # item 5 fits nowhere
    obs["items_placed"][:, 5] = True  # and is excluded from item self-attention
    changed = {k: v.clone() for k, v in obs.items()}
    changed["items"][:, 5] += 0.5
    ems_a, _ = agent.actor_torso(obs, agent.biases(obs))
    ems_b, _ = agent.actor_torso(changed, agent.biases(changed))
    torch.testing.assert_close(ems_a, ems_b)


def test_binpack_fully_masked_rows_stay_finite(binpack_spec, random_obs):
    agent = build_agent(
        binpack_spec,
        NetworkConfig(architecture="binpack_attention", num_heads=2, key_size=4, hidden_sizes=[8]),
    )
    obs = random_obs(binpack_spec, 2)
    for name in ("ems_mask", "items_mask", "action_mask"):
        obs[name][:] = False
    logits, value = agent(obs)
    assert torch.isfinite(logits).all() and torch.isfinite(value).all()


def test_wrong_architecture_for_the_observation_is_a_clear_error():
    spec = pyenvpool.make("CartPole-v1", 1).spec
    with pytest.raises(ValueError, match="needs observation fields .*walls"):
        build_agent(spec, NetworkConfig(architecture="maze_cnn"))


def test_architecture_record_names_network_and_shapes(binpack_spec):
    cfg = NetworkConfig(architecture="binpack_attention")
    record = architecture_record(binpack_spec, cfg)
    assert record["network"] == {
        "architecture": "binpack_attention",
        "hidden_sizes": cfg.hidden_sizes,
        "num_layers": cfg.num_layers,
        "num_heads": cfg.num_heads,
        "key_size": cfg.key_size,
        "shared_torso": cfg.shared_torso,
    }
    assert record["observation"]["ems"] == [40, 6] and record["num_actions"] == 800
    # Fields the architecture never reads do not count.
    other = cfg.model_copy(update={"conv_channels": [1], "vin_iterations": 3, "egocentric": True})
    assert architecture_record(binpack_spec, other) == record


def test_a_checkpoint_recording_unread_or_older_fields_still_loads(binpack_spec):
    from trainer import checkpoint

    cfg = NetworkConfig(architecture="binpack_attention")
    record = architecture_record(binpack_spec, cfg)
    # An older checkpoint recorded every network field of its day (no vin_* yet).
    old = cfg.model_dump()
    del old["vin_iterations"], old["vin_channels"]
    meta = {"task": "BinPack-v0", "algo": "ppo", "architecture": {**record, "network": old}}
    checkpoint.check_compatible(meta, "BinPack-v0", "ppo", record)
    old["num_heads"] = 4
    with pytest.raises(checkpoint.CheckpointError, match="network.num_heads"):
        checkpoint.check_compatible(meta, "BinPack-v0", "ppo", record)


def test_model_sizes_are_modest(binpack_spec, maze_spec):
    from trainer.config import resolve

    for task, spec in (("BinPack-v0", binpack_spec), ("Maze-v0", maze_spec)):
        agent = build_agent(spec, resolve(flags={"task": task}).network)
        params = sum(math.prod(p.shape) for p in agent.parameters())
        assert params < 2_000_000, (task, params)


@pytest.mark.parametrize("task", ["Maze-v0", "BinPack-v0"])
def test_synthetic_layouts_match_the_engine(task, maze_spec, binpack_spec):
    if task not in pyenvpool.list_tasks():
        pytest.skip(f"{task} is not built into this engine yet")
    synthetic = {"Maze-v0": maze_spec, "BinPack-v0": binpack_spec}[task]
    real = pyenvpool.make(task, 1).spec
    assert real.num_actions == synthetic.num_actions
    for name, f in synthetic.fields.items():
        assert (real.fields[name].shape, real.fields[name].dtype) == (f.shape, f.dtype), name


def _vin(maze_spec, iterations=12):
    torch.manual_seed(0)
    cfg = NetworkConfig(architecture="maze_vin", vin_iterations=iterations, hidden_sizes=[16])
    return build_agent(maze_spec, cfg)


def test_maze_vin_on_maze_shaped_tensors(maze_spec, random_obs):
    agent = _vin(maze_spec)
    assert isinstance(agent, MazeVINAgent)
    check_agent(agent, random_obs(maze_spec, 6), 4)
    # The Bellman-backup kernels are learned: they get gradients.
    assert agent.q_from_v.weight.grad.abs().sum() > 0


def test_maze_vin_computes_each_distinct_maze_once_with_identical_results(maze_spec, random_obs):
    """Rows sharing (walls, target) share one value iteration; the outputs and
    gradients equal those of computing every row on its own."""
    agent = _vin(maze_spec)
    obs = random_obs(maze_spec, 4)
    # 12 rows: 4 mazes, each seen from 3 agent positions and step counts.
    rows = torch.arange(12) % 4
    batch = {k: v[rows].clone() for k, v in obs.items()}
    batch["agent_position"] = torch.randint(0, 10, (12, 2), dtype=torch.int32)
    batch["step_count"] = torch.arange(12, dtype=torch.int32)
    logits, value = agent(batch)
    (logits.sum() + value.sum()).backward()
    grads = [p.grad.clone() for p in agent.parameters()]
    agent.zero_grad()
    single = [agent({k: v[i : i + 1] for k, v in batch.items()}) for i in range(12)]
    torch.testing.assert_close(torch.cat([s[0] for s in single]), logits)
    torch.testing.assert_close(torch.cat([s[1] for s in single]), value)
    sum(s[0].sum() + s[1].sum() for s in single).backward()
    for g, p in zip(grads, agent.parameters()):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)


def test_maze_vin_values_propagate_one_cell_per_iteration(maze_spec, random_obs):
    """Each layer sees one cell further (3x3 kernels): the reward map 1, Q's
    reward term 1, K backups K, the 3x3 window read by the heads 1. So with
    K = 3 the policy cannot tell targets more than 6 cells away (Chebyshev)
    apart, and can tell nearer ones."""
    agent = _vin(maze_spec, iterations=3)
    obs = random_obs(maze_spec, 1)
    obs["walls"][:] = False
    obs["agent_position"][:] = torch.tensor([0, 0], dtype=torch.int32)

    def logits_with_target(r, c):
        o = {k: v.clone() for k, v in obs.items()}
        o["target_position"][:] = torch.tensor([r, c], dtype=torch.int32)
        return agent.logits(o)

    far = [logits_with_target(9, 9), logits_with_target(9, 8)]
    torch.testing.assert_close(far[0], far[1])
    near = [logits_with_target(1, 1), logits_with_target(0, 2)]
    assert not torch.allclose(near[0], near[1])


def test_maze_vin_inference_remembers_value_maps_until_the_weights_change(maze_spec, random_obs):
    agent = _vin(maze_spec)
    obs = random_obs(maze_spec, 8)
    with torch.no_grad():
        first = agent(obs)
        assert len(agent._cache) == len(torch.unique(obs["walls"].flatten(1), dim=0))
        calls = []
        agent.q_from_v.register_forward_hook(lambda *_: calls.append(1))
        again = agent(obs)  # every maze remembered: no backups run
        assert not calls
    for a, b in zip(first, again):
        torch.testing.assert_close(a, b)
    fresh = agent(obs)  # with gradients: always computed, and the same
    for a, b in zip(first, fresh):
        torch.testing.assert_close(a, b.detach())
    with torch.no_grad():
        agent.q_from_v.weight.mul_(0.5)  # an optimizer step changes weights in place
        changed = agent(obs)
    assert calls and not torch.allclose(changed[0], first[0])


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("channels", [[8], [8, 4]])
def test_connect_four_cnn(shared, channels):
    from trainer.networks import ConnectFourAgent

    pool = pyenvpool.make("ConnectFour-v0", 6, random_opening_moves=20)
    obs, _ = pool.reset()
    cfg = NetworkConfig(
        architecture="connect_four_cnn",
        hidden_sizes=[16],
        activation="relu",
        conv_channels=channels,
        shared_torso=shared,
    )
    agent = build_agent(pool.spec, cfg)
    check_agent(agent, {k: torch.from_numpy(v.copy()) for k, v in obs.items()}, 7)
    # The third plane: the cells a piece lands on, one per open column.
    planes = ConnectFourAgent.planes(torch.from_numpy(obs["board"]))
    landing = planes[:, 2].sum(dim=1)  # [B, 7]: landing cells per column
    torch.testing.assert_close(landing, torch.from_numpy(obs["action_mask"]).float())
    with pytest.raises(ValueError, match="conv_channels"):
        build_agent(pool.spec, NetworkConfig(architecture="connect_four_cnn", conv_channels=[]))
    pool.close()


# ------------------------------------------------------------ action spaces
def box_spec(obs_dim=17, action_dim=6, dtype=np.float64) -> Spec:
    """A MuJoCo-like task: one float64 observation field, a Box(-1, 1, (6,)) action."""
    field = FieldSpec("obs", (obs_dim,), np.dtype(dtype), np.full(obs_dim, -np.inf),
                      np.full(obs_dim, np.inf))  # fmt: skip
    low, high = np.full(action_dim, -1, np.float32), np.full(action_dim, 1, np.float32)
    action = ActionSpec("box", (), (action_dim,), low, high)
    return Spec("HalfCheetah-like", {"obs": field}, 0, {}, action)


@pytest.mark.parametrize("normalize", [False, True])
def test_mlp_gaussian_head_on_a_float64_six_dim_box_task(normalize):
    spec = box_spec()
    cfg = NetworkConfig(architecture="mlp", normalize_observation=normalize, log_std_init=-0.5)
    torch.manual_seed(0)
    agent = build_agent(spec, cfg)
    obs = {"obs": torch.randn(5, 17, dtype=torch.float64) * 10}
    params, value = agent(obs)
    space = ActionSpace.from_spec(spec)
    assert params.shape == (5, 12) and value.shape == (5,)
    assert torch.equal(params[:, 6:], torch.full((5, 6), -0.5))  # the log-std parameter
    # Orthogonal init with gain 0.01 on the mean head: means start near 0.
    assert params[:, :6].abs().max() < 0.1
    dist = space.distribution(params)
    actions = dist.sample(torch.Generator().manual_seed(0))
    assert actions.shape == (5, 6)
    env_actions = space.to_env(actions)
    assert env_actions.dtype == np.float32 and np.abs(env_actions).max() <= 1.0
    loss = -dist.log_prob(actions).mean() + value.pow(2).mean() - dist.entropy().mean()
    loss.backward()
    assert agent.log_std.grad is not None and torch.isfinite(agent.log_std.grad).all()
    record = architecture_record(spec, cfg)
    assert record["action"] == {"kind": "box", "shape": [6], "nvec": []}
    assert ("normalize_observation" in record["network"]) == normalize


def test_architectures_without_a_head_for_the_action_space_refuse_it(maze_spec):
    box = box_spec().action
    spec = Spec("Maze-like", maze_spec.fields, 0, {}, box)
    with pytest.raises(ValueError, match="no policy head.*'mlp'"):
        build_agent(spec, NetworkConfig(architecture="maze_vin"))
