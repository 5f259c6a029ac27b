"""The SMC search: targets, lineage, masks, frozen terminals, snapshot
accounting; for discrete actions and for Box actions (Gaussian proposals)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import pyenvpool
from trainer.distributions import ActionSpace
from trainer.smc import SearchConfig, SearchResult, legal_dirichlet_mix, smc_search


def constant_value(num_actions: int, value: float = 0.0, logits=None):
    def policy_value(obs):
        m = next(iter(obs.values())).shape[0]
        out = torch.zeros(m, num_actions) if logits is None else logits(obs)
        return out, torch.full((m,), value)

    return policy_value


class RecordingPool:
    """Wraps a real pool: records every simulate (id -> parent id, action) and
    holds releases back until the test has traced the lineage."""

    def __init__(self, pool):
        self.pool = pool
        self.parent = {}
        self.released = []

    def snapshot(self, env_ids=None):
        return self.pool.snapshot(env_ids)

    def simulate(self, ids, actions):
        result = self.pool.simulate(ids, actions)
        for parent, action, child in zip(ids, actions, result[4]):
            self.parent[int(child)] = (int(parent), int(action))
        return result

    def release(self, ids):
        self.released.append(np.asarray(ids).copy())


def brute_force_best_first_action(pool, env, depth, gamma):
    """Expected return of each first action under uniform random continuation."""
    root = pool.snapshot([env])
    num_actions = pool.spec.num_actions
    returns = np.zeros(num_actions)
    for first in range(num_actions):
        total = 0.0
        rest = list(itertools.product(range(num_actions), repeat=depth - 1))
        for seq in rest:
            ids, ret, disc = root, 0.0, 1.0
            created = []
            for a in (first, *seq):
                _, r, *_, ids = pool.simulate(ids, [a])
                created.append(ids)
                ret += disc * float(r[0])
                disc *= gamma
            pool.release(np.concatenate(created))
            total += ret
        returns[first] = total / len(rest)
    pool.release(root)
    return returns


def test_target_concentrates_on_the_known_best_first_action():
    # The cart is about to leave the track on the left unless pushed right (1);
    # pushing left (0) ends the episode within the search horizon on every branch.
    pool = pyenvpool.make("CartPole-v1", 1)
    pool.reset(instances={"state": np.array([[-2.348, -1.3, 0.0, 0.0]])})
    depth = 3
    returns = brute_force_best_first_action(pool, 0, depth, gamma=1.0)
    best = int(np.argmax(returns))
    assert returns[best] > returns[1 - best]
    config = SearchConfig(num_particles=64, depth=depth, resample_period=0, dirichlet_fraction=0.0)
    result = smc_search(
        pool,
        {"obs": pool._obs["obs"]},
        constant_value(2),
        temperature=0.1,
        config=config,
        generator=torch.Generator().manual_seed(0),
    )
    assert result.target[0, best] > 0.9
    assert result.act(greedy=True)[0] == best
    assert pool.snapshot_count == 0


@pytest.mark.parametrize("period, ess", [(1, 0.0), (2, 0.0), (0, 0.9)])
def test_lineage_survives_resampling(period, ess):
    """Trace every final particle back to its root through the recorded
    simulate calls: its root env and first action must match what the search
    reports for it."""
    n, b, depth = 8, 6, 4
    pool = pyenvpool.make("CartPole-v1", b, seed=3)
    pool.reset()
    recorder = RecordingPool(pool)
    config = SearchConfig(
        num_particles=n,
        depth=depth,
        resample_period=period,
        resample_ess_threshold=ess,
        dirichlet_fraction=0.0,
    )

    def varied_values(obs):  # uneven weights, so resampling really reorders
        x = torch.as_tensor(obs["obs"])
        return torch.zeros(len(x), 2), 5 * x[:, 2] + x[:, 0]

    roots_before = set()
    original_snapshot = recorder.snapshot

    def snapshot(env_ids=None):
        ids = original_snapshot(env_ids)
        roots_before.update(int(i) for i in ids)
        recorder.roots = ids
        return ids

    recorder.snapshot = snapshot
    result = smc_search(
        recorder,
        {"obs": pool._obs["obs"].copy()},
        varied_values,
        0.05,
        config,
        torch.Generator().manual_seed(1),
    )
    root_env = {int(r): e for e, r in enumerate(recorder.roots)}
    leaves = result.leaf_ids.reshape(b, n)
    # Resampling duplicated some lineages (and dropped others).
    assert len(np.unique(result.leaf_ids)) < b * n
    for env in range(b):
        for k in range(n):
            node, path = int(leaves[env, k]), []
            while node not in root_env:
                node, action = recorder.parent[node]
                path.append(action)
            assert root_env[node] == env
            assert len(path) == depth
            assert path[-1] == int(result.root_actions[env, k])
    pool.release(np.concatenate(recorder.released))
    assert pool.snapshot_count == 0


def test_terminated_particles_stop_accumulating():
    """Every branch leaves the track at step 1: the advantage is r - V(root)
    once, and nothing is added on the absorbing steps after."""
    pool = pyenvpool.make("CartPole-v1", 3)
    pool.reset(instances={"state": np.tile([2.39, 1.0, 0.0, 0.0], (3, 1))})
    config = SearchConfig(num_particles=5, depth=4, resample_period=0, dirichlet_fraction=0.0)
    c = 10.0
    result = smc_search(
        pool,
        {"obs": pool._obs["obs"]},
        constant_value(2, value=c),
        1.0,
        config,
        torch.Generator().manual_seed(0),
    )
    assert torch.allclose(result.advantages, torch.full((3, 5), 1.0 - c))
    assert pool.snapshot_count == 0


def test_masked_actions_are_never_sampled():
    """A masked task (Maze) is not needed to check the sampler: a pool whose
    observations carry an action_mask that forbids action 0 in even envs."""

    class MaskedPool(RecordingPool):
        def simulate(self, ids, actions):
            env_of = np.asarray([self.env_of_root.get(int(i), -1) for i in ids])
            assert not np.any(actions[(env_of % 2) == 0] == 0), "sampled a masked action"
            obs, *rest = self.pool.simulate(ids, actions)
            for child, env in zip(rest[-1], env_of):
                self.env_of_root[int(child)] = int(env)
            mask = np.ones((len(ids), 2), bool)
            mask[(env_of % 2) == 0, 0] = False
            return ({"obs": obs["obs"], "action_mask": mask}, *rest)

        def snapshot(self, env_ids=None):
            ids = self.pool.snapshot(env_ids)
            self.env_of_root = {int(r): e for e, r in enumerate(ids)}
            return ids

        def release(self, ids):
            self.pool.release(ids)

    b = 8
    pool = pyenvpool.make("CartPole-v1", b, seed=0)
    pool.reset()
    mask = np.ones((b, 2), bool)
    mask[::2, 0] = False
    config = SearchConfig(
        num_particles=32, depth=3, resample_period=2, dirichlet_alpha=0.3, dirichlet_fraction=0.5
    )
    for seed in range(5):
        result = smc_search(
            MaskedPool(pool),
            {"obs": pool._obs["obs"], "action_mask": mask},
            constant_value(2),
            1.0,
            config,
            torch.Generator().manual_seed(seed),
        )
        assert (result.root_actions[::2] == 1).all()
        assert (result.target[::2, 0] == 0).all()
    assert pool.snapshot_count == 0


def test_dirichlet_noise_respects_the_mask():
    probs = torch.tensor([[0.0, 0.5, 0.5, 0.0]])
    legal = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    for seed in range(20):
        mixed = legal_dirichlet_mix(probs, legal, 0.03, 0.25, torch.Generator().manual_seed(seed))
        assert mixed[0, 0] == 0 and mixed[0, 3] == 0
        assert torch.isclose(mixed.sum(), torch.tensor(1.0))


def test_search_is_reproducible_and_leaves_no_snapshots():
    pool = pyenvpool.make("CartPole-v1", 16, seed=5)
    pool.reset()
    before = pool.snapshot_count
    config = SearchConfig(num_particles=8, depth=4)
    run = [
        smc_search(
            pool,
            {"obs": pool._obs["obs"]},
            constant_value(2, 1.0),
            0.5,
            config,
            torch.Generator().manual_seed(7),
        )
        for _ in range(2)
    ]
    assert torch.equal(run[0].target, run[1].target)
    assert torch.equal(run[0].root_actions, run[1].root_actions)
    assert pool.snapshot_count == before
    assert len(run[0].ess) == 4 and all(0 < e <= 1 for e in run[0].ess)


# ------------------------------------------------------------- Box actions
PENDULUM = ActionSpace.from_spec(pyenvpool.make("Pendulum-v1", 1).spec)


def gaussian_policy(mean=0.0, log_std=0.0, values=None):
    """policy_value for Pendulum: a fixed Gaussian (mean, log-std) everywhere."""

    def policy_value(obs):
        x = torch.as_tensor(obs["obs"])
        params = torch.tensor([[mean, log_std]]).expand(len(x), 2)
        return params, (torch.zeros(len(x)) if values is None else values(x))

    return policy_value


class RecordingBoxPool(RecordingPool):
    """RecordingPool for float actions: records the action vectors the pool received."""

    def simulate(self, ids, actions):
        result = self.pool.simulate(ids, actions)
        for parent, action, child in zip(ids, actions, result[4]):
            self.parent[int(child)] = (int(parent), np.array(action))
        return result


@pytest.mark.parametrize("period, ess", [(1, 0.0), (2, 0.0), (0, 0.9)])
def test_box_lineage_survives_resampling(period, ess):
    """Every final particle's recorded path starts at its env's root with its
    root action as the env received it: the stored (unclipped) root action,
    clipped to the bounds."""
    n, b, depth = 8, 5, 4
    pool = pyenvpool.make("Pendulum-v1", b, seed=3)
    pool.reset()
    recorder = RecordingBoxPool(pool)
    roots = {}
    original_snapshot = recorder.snapshot

    def snapshot(env_ids=None):
        ids = original_snapshot(env_ids)
        roots.update({int(r): e for e, r in enumerate(ids)})
        return ids

    recorder.snapshot = snapshot
    config = SearchConfig(
        num_particles=n, depth=depth, resample_period=period, resample_ess_threshold=ess
    )
    # Values that differ a lot between states, so that resampling reorders.
    varied = gaussian_policy(0.0, math.log(2.0), values=lambda x: 20 * x[:, 1] + 5 * x[:, 0])
    result = smc_search(
        recorder, {"obs": pool._obs["obs"].copy()}, varied, 0.05, config,
        torch.Generator().manual_seed(1), space=PENDULUM,
    )  # fmt: skip
    assert result.target is None and result.root_actions.shape == (b, n, 1)
    assert (result.root_actions.abs() > 2).any()  # some proposals leave the bounds
    assert len(np.unique(result.leaf_ids)) < b * n  # resampling duplicated lineages
    leaves = result.leaf_ids.reshape(b, n)
    for env in range(b):
        for k in range(n):
            node, path = int(leaves[env, k]), []
            while node not in roots:
                node, action = recorder.parent[node]
                path.append(action)
            assert roots[node] == env and len(path) == depth
            root_action = result.root_actions[env, k].numpy()
            np.testing.assert_array_equal(path[-1], np.clip(root_action, -2.0, 2.0))
    pool.release(np.concatenate(recorder.released))
    assert pool.snapshot_count == 0


def best_first_torque(pool, torques, depth):
    """The return over ``depth`` steps of each first torque followed by zero torque."""
    root = pool.snapshot([0])
    returns = []
    for torque in torques:
        ids, total, created = root, 0.0, []
        for step in range(depth):
            action = np.array([[torque if step == 0 else 0.0]], np.float32)
            _, r, *_, ids = pool.simulate(ids, action)
            created.append(ids)
            total += float(r[0])
        pool.release(np.concatenate(created))
        returns.append(total)
    pool.release(root)
    return np.array(returns)


def test_box_target_concentrates_on_the_known_best_torque():
    """The pendulum hangs 0.5 rad off upright with no speed: within a short
    horizon the strongest torque back towards upright (-2) is best, and the
    search target (the weighted root actions) puts its mass there, though the
    proposals (N(0, 2^2)) are centred on 0."""
    pool = pyenvpool.make("Pendulum-v1", 1)
    pool.reset(instances={"state": np.array([[0.5, 0.0]])})
    torques = np.linspace(-2, 2, 9)
    returns = best_first_torque(pool, torques, depth=5)
    assert torques[np.argmax(returns)] == -2.0
    config = SearchConfig(num_particles=256, depth=5, resample_period=0)
    result = smc_search(
        pool, {"obs": pool._obs["obs"]}, gaussian_policy(0.0, math.log(2.0)), 0.02, config,
        torch.Generator().manual_seed(0), space=PENDULUM,
    )  # fmt: skip
    roots = result.root_actions[0, :, 0].clamp(-2, 2)  # what the env received
    assert abs(float(roots.mean())) < 0.3
    assert float((result.weights[0] * roots).sum()) < -1.9
    greedy = result.act(greedy=True)
    assert greedy.shape == (1, 1) and greedy[0, 0] < -1.9
    assert pool.snapshot_count == 0


def test_box_search_is_reproducible_and_leaves_no_snapshots():
    pool = pyenvpool.make("Pendulum-v1", 6, seed=5)
    pool.reset()
    config = SearchConfig(num_particles=8, depth=4, resample_period=2)
    runs = [
        smc_search(
            pool,
            {"obs": pool._obs["obs"]},
            gaussian_policy(0.3, -0.5),
            0.5,
            config,
            torch.Generator().manual_seed(7),
            space=PENDULUM,
        )  # fmt: skip
        for _ in range(2)
    ]
    assert torch.equal(runs[0].root_actions, runs[1].root_actions)
    assert torch.equal(runs[0].weights, runs[1].weights)
    assert pool.snapshot_count == 0
    # A sampled real action is one of the particles' root actions.
    sample = runs[0].act(greedy=False, generator=torch.Generator().manual_seed(0))
    for env in range(6):
        assert (runs[0].root_actions[env, :, 0] == float(sample[env, 0])).any()


def test_box_greedy_action_is_the_mean_of_the_weighted_root_actions():
    result = SearchResult(
        target=None,
        root_actions=torch.tensor([[[1.0], [3.0], [3.0]], [[-1.0], [0.0], [5.0]]]),
        weights=torch.tensor([[0.5, 0.25, 0.25], [0.0, 1.0, 0.0]]),
        advantages=torch.zeros(2, 3),
        root_values=torch.zeros(2),
        leaf_ids=np.zeros(6, np.int64),
    )
    np.testing.assert_allclose(result.act(greedy=True), [[2.0], [0.0]])
    picks = [result.act(False, torch.Generator().manual_seed(s))[1, 0] for s in range(20)]
    assert set(picks) == {0.0}  # a sample is a particle's root action, drawn by weight
