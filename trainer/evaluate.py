"""Evaluation on a separate pool, with per-env episode quotas; and evaluating a checkpoint.

Protocol (contract section 4): the evaluation pool is reset with a fixed seed
before every evaluation, so each one plays the same held-out episodes; the
policy is greedy for PPO (an algorithm names its own: ``Algorithm.
evaluation_policy``). ``num_episodes`` are split into per-env quotas
(``num_episodes // E`` each, one more for the first ``num_episodes % E``) and
an env's episodes beyond its quota are not counted, so short episodes are not
over-represented. Episodes are recorded in a fixed order (by step, then env),
so results are deterministic for a deterministic policy.

Tasks add their own summary numbers (``tasks.TASKS``): BinPack-v0's return is
the final volume utilisation, Maze-v0's is 1 exactly when the target was
reached, and Squared-v0 reports PufferLib's ``score`` (the fraction of
targets hit), read from each episode's last observation.

Two-player tasks (a ``tasks.TASKS`` entry with ``opponents``: ConnectFour-v0)
are evaluated in matches instead: the policy plays ``num_episodes`` games
against each fixed opponent, moving first in half of them (each env alternates
sides from game to game, starting with env i moving first when i is even). The
return of a game is the policy's result, +1 win, 0 draw, -1 loss;
``<opponent>_<first|second>_<win|draw|loss>`` are the rates per opponent and
side, and ``<opponent>_win`` the win rate over both sides.

``evaluate_checkpoint`` is ``pyenvpool-train --evaluate``: a saved agent, the
run's evaluation settings with the command line's over them, and a report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import pyenvpool
from trainer import checkpoint
from trainer.algorithm import Policy, algorithm_class
from trainer.config import Config, evaluation_task_kwargs, from_dict, override
from trainer.networks import architecture_record, build_agent
from trainer.runtime import select_device
from trainer.tasks import task_info


def summarize(
    task: str, returns: np.ndarray, lengths: np.ndarray, scores: np.ndarray | None = None
) -> dict[str, float]:
    """The evaluator's numbers for finished episodes' returns, lengths and scores."""
    if returns.size == 0:
        return {"episodes": 0}
    out = {
        "episodes": int(returns.size),
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "min_return": float(returns.min()),
        "max_return": float(returns.max()),
        "episode_length_mean": float(lengths.mean()),
        "episode_length_min": int(lengths.min()),
        "episode_length_max": int(lengths.max()),
    }
    metrics = task_info(task).metrics
    if metrics is not None:
        out.update(metrics(returns))
    if scores is not None:
        out["score"] = float(scores.mean())
    return out


class Evaluator:
    """A pool of ``num_envs`` envs that plays fixed episodes with a given policy."""

    def __init__(
        self,
        task: str,
        num_envs: int,
        seed: int,
        task_kwargs: dict[str, Any] | None = None,
        num_threads: int | None = None,
    ) -> None:
        self.task, self.seed = task, seed
        self.task_kwargs = dict(task_kwargs or {})
        self.pool = pyenvpool.make(
            task, num_envs, num_threads=num_threads or None, seed=seed, **self.task_kwargs
        )

    @classmethod
    def for_config(cls, config: Config, num_threads: int | None = None) -> Evaluator:
        """The evaluation pool a run's config describes."""
        return cls(
            config.task,
            min(config.eval_num_envs, config.eval_episodes),
            config.eval_seed,
            evaluation_task_kwargs(config),
            num_threads,
        )

    def run_policies(
        self, policy: Policy, comparisons: dict[str, Policy], num_episodes: int
    ) -> dict[str, float]:
        """``run`` the policy, then each comparison policy, whose numbers are
        added as ``<name>_<metric>``."""
        result = self.run(policy, num_episodes)
        for name, other in comparisons.items():
            extra = self.run(other, num_episodes)
            result.update({f"{name}_{k}": v for k, v in extra.items() if k != "episodes"})
        return result

    def run(
        self, policy: Policy, num_episodes: int, max_steps: int = 1_000_000
    ) -> dict[str, float]:
        """Play ``num_episodes`` quota-limited episodes; at most ``max_steps`` pool steps."""
        if task_info(self.task).opponents:
            return self.run_matches(policy, num_episodes, max_steps)
        start = time.perf_counter()
        num_envs = self.pool.num_envs
        quota = np.full(num_envs, num_episodes // num_envs, np.int64)
        quota[: num_episodes % num_envs] += 1
        counted = np.zeros(num_envs, np.int64)
        returns: list[np.ndarray] = []
        lengths: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        score_fn = task_info(self.task).episode_score
        obs, _ = self.pool.reset(seed=self.seed)
        for _ in range(max_steps):
            if (counted >= quota).all():
                break
            obs, _, terminated, truncated, info = self.pool.step(policy(obs))
            done = terminated | truncated
            if done.any():
                rows = np.flatnonzero(done & (counted < quota))
                returns.append(info["episode_return"][rows].astype(np.float64))
                lengths.append(info["episode_length"][rows].astype(np.int64))
                if score_fn is not None:
                    final = {name: view[rows] for name, view in info["final_obs"].items()}
                    scores.append(np.asarray(score_fn(self.pool, final), np.float64))
                counted[done] += 1
        result = summarize(
            self.task,
            np.concatenate(returns) if returns else np.zeros(0),
            np.concatenate(lengths) if lengths else np.zeros(0, np.int64),
            np.concatenate(scores) if scores else None,
        )
        result["duration"] = time.perf_counter() - start
        return result

    def run_matches(
        self, policy: Policy, num_episodes: int, max_steps: int = 1_000_000
    ) -> dict[str, float]:
        """Two-player tasks: ``num_episodes`` games against each fixed opponent."""
        start = time.perf_counter()
        num_envs = self.pool.num_envs
        quota = np.full(num_envs, num_episodes // num_envs, np.int64)
        quota[: num_episodes % num_envs] += 1
        scores: list[np.ndarray] = []
        lengths: list[np.ndarray] = []
        rates: dict[str, float] = {}
        for index, (name, make_opponent) in enumerate(task_info(self.task).opponents.items()):
            opponent = make_opponent(self.seed + index)
            side = np.arange(num_envs) % 2  # the player the policy is: 0 moves first
            counted = np.zeros(num_envs, np.int64)
            games: dict[str, list[np.ndarray]] = {"score": [], "length": [], "side": []}
            obs, _ = self.pool.reset(seed=self.seed)
            for _ in range(max_steps):
                if (counted >= quota).all():
                    break
                ours = obs["to_play"] == side
                actions = np.zeros(num_envs, np.int64)
                for rows, player in ((ours, policy), (~ours, opponent)):
                    if rows.any():
                        actions[rows] = player({k: v[rows] for k, v in obs.items()})
                obs, reward, terminated, truncated, info = self.pool.step(actions)
                done = terminated | truncated
                if done.any():
                    rows = np.flatnonzero(done & (counted < quota))
                    # The reward is the mover's: the policy's result, or its negation.
                    games["score"].append(np.where(ours[rows], reward[rows], -reward[rows]))
                    games["length"].append(info["episode_length"][rows].astype(np.int64))
                    games["side"].append(side[rows].copy())
                    counted[done] += 1
                    side[done] ^= 1
            score, length, played = (
                np.concatenate(games[k]) if games[k] else np.zeros(0) for k in games
            )
            scores.append(score.astype(np.float64))
            lengths.append(length.astype(np.int64))
            for s, side_name in enumerate(("first", "second")):
                mine = score[played == s]
                for outcome, hit in (("win", mine > 0), ("draw", mine == 0), ("loss", mine < 0)):
                    rates[f"{name}_{side_name}_{outcome}"] = float(hit.mean()) if mine.size else 0.0
            rates[f"{name}_win"] = float((score > 0).mean()) if score.size else 0.0
        result = summarize(self.task, np.concatenate(scores), np.concatenate(lengths))
        result.update(rates)
        result["duration"] = time.perf_counter() - start
        return result

    def render_final_states(self, policy: Policy, count: int) -> list[str]:
        """Text pictures of how the first ``count`` evaluation episodes ended.

        The live pool auto-resets and the engine renders only live,
        unfinished states, so the episodes are played on snapshot copies
        (``simulate`` does not reset); each picture is the last state before
        the episode ended, restored into a live env and rendered, followed by
        the action that ended it and the episode's return.
        """
        count = min(count, self.pool.num_envs)
        obs, _ = self.pool.reset(seed=self.seed)
        obs = {name: view[:count].copy() for name, view in obs.items()}
        states = self.pool.snapshot(np.arange(count))
        returns = np.zeros(count)
        lengths = np.zeros(count, np.int64)
        pictures: list[str | None] = [None] * count
        try:
            while any(p is None for p in pictures):
                actions = policy(obs)
                obs, reward, terminated, truncated, new_states = self.pool.simulate(states, actions)
                obs = {name: view.copy() for name, view in obs.items()}
                for i in np.flatnonzero(terminated | truncated):
                    if pictures[i] is not None:
                        continue
                    self.pool.restore(states[i : i + 1], np.array([i]))
                    pictures[i] = (
                        f"{self.pool.render(int(i))}\n"
                        f"then action {np.array2string(np.asarray(actions[i]))} ended the "
                        f"episode after {lengths[i] + 1} steps with return "
                        f"{returns[i] + reward[i]:.4f}"
                    )
                active = np.array([p is None for p in pictures])
                returns[active] += reward[active]
                lengths[active] += 1
                self.pool.release(states)
                states = new_states
        finally:
            self.pool.release(states, missing_ok=True)
        return [p for p in pictures if p is not None]

    def close(self) -> None:
        self.pool.close()


# ------------------------------------------------------- a saved checkpoint
@dataclass
class CheckpointEvaluation:
    """What ``evaluate_checkpoint`` found, and the report the command prints."""

    checkpoint: Path
    metadata: dict[str, Any]
    config: Config
    policy_name: str
    result: dict[str, float]
    pictures: list[str]

    def report(self) -> list[str]:
        meta, result, config = self.metadata, self.result, self.config
        lines = [
            f"checkpoint {self.checkpoint} ({meta['task']}, {meta['env_steps']:,} env steps)",
            f"{result['episodes']} episodes ({self.policy_name}, eval seed {config.eval_seed}): "
            f"return mean {result['mean_return']:.4f} min {result['min_return']:.4f} "
            f"max {result['max_return']:.4f} std {result['std_return']:.4f}",
            f"length mean {result['episode_length_mean']:.2f} "
            f"min {result['episode_length_min']} max {result['episode_length_max']}",
        ]
        task = task_info(config.task)
        lines += [f"{label} {result[key]:.4f}" for key, label in task.report if key in result]
        for name in task.opponents:  # two-player tasks: matches per side
            for side in ("first", "second"):
                win, draw, loss = (result[f"{name}_{side}_{o}"] for o in ("win", "draw", "loss"))
                lines.append(
                    f"vs {name} moving {side}: win {win:.4f} draw {draw:.4f} loss {loss:.4f}"
                )
        for i, picture in enumerate(self.pictures):
            lines.append(f"\n--- final state of evaluation episode {i} ---\n{picture}")
        return lines


def evaluate_checkpoint(
    path: str | Path, flags: dict[str, Any] | None = None, render: int = 0
) -> CheckpointEvaluation:
    """Evaluate the agent saved at ``path`` with the run's evaluation settings,
    ``flags`` over them, by the protocol above; with ``render``, also picture
    how the first ``render`` episodes ended.

    The policy is the one ``config.algo`` evaluates a saved agent with, so the
    weights may come from another algorithm: ``--algo spo`` evaluates a PPO
    checkpoint with the SMC search (at the initial temperature).
    """
    source = checkpoint.load(path)
    config = override(from_dict(source["metadata"]["config"], f"{path} metadata"), flags or {})
    torch.set_num_threads(config.torch_threads)
    device = select_device(config.device)
    evaluator = Evaluator.for_config(config, config.env_threads)
    try:
        spec = evaluator.pool.spec
        architecture = architecture_record(spec, config.network)
        checkpoint.check_compatible(source["metadata"], config.task, None, architecture)
        agent = build_agent(spec, config.network).to(device)
        agent.load_state_dict(source["model"])
        algorithm = algorithm_class(config.algo)
        policy, name = algorithm.saved_policy(agent, evaluator.pool, config, device, source)
        result = evaluator.run(policy, config.eval_episodes)
        pictures = evaluator.render_final_states(policy, render) if render else []
    finally:
        evaluator.close()
    return CheckpointEvaluation(source["path"], source["metadata"], config, name, result, pictures)
