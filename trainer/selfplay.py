"""Training envs for two-player zero-sum tasks: self-play, and a pool of past opponents.

``SelfPlayEnvs`` replaces ``TrainingEnvs`` (the ``envs.Envs`` interface) when
the training loop's config sets ``self_play``. Its ``num_envs`` envs are split
in two pools:

* **self-play envs** (the first ones): one network plays both sides, one move
  per step, so consecutive rows of an env belong to opposite players; rewards
  and values are from the mover's view and GAE bootstraps with a minus sign
  (``advantages.compute_gae`` with ``negamax``: ``alternating`` is True for
  these envs);
* **opponent envs** (the last ``round(opponent_fraction * num_envs)``): the
  learner plays against a frozen past copy of itself that moves *inside*
  ``step``. A step is the learner's move, then the opponent's reply, so every
  row is a learner move: its reward is the learner's (+1 when its move wins,
  -1 when the reply wins or it forfeits, +1 when the opponent forfeits), the
  next observation is the learner's again, and ordinary GAE applies
  (``alternating`` False). After a game ends on the learner's move the reply
  opens the next game, so the learner moves second there; after it ends on
  the opponent's move the learner opens the next one. Env steps count rows
  (learner moves); an opponent env's row is two engine steps.

The opponent pool holds up to ``opponent_pool_size`` copies of the learner's
weights, one added every ``opponent_interval`` updates (the first at update
0). Before each rollout (``prepare_rollout``) one copy is drawn uniformly
and plays every opponent env for that rollout, sampling from its policy. Weaker
past selves let the games reach positions that self-play between two equally
strong sides rarely does, where blocking a threat, for example, still
changes the result.

``episode_outcomes`` counts the games that ended, for the ACTOR telemetry
(returns in self-play are the last mover's, +1 for nearly every game, so
they say nothing): in the self-play envs by which side won
(``self_play``: ``first_win``, ``draw``, ``second_win``), in the opponent
envs by the learner's result and side (``vs_past_first`` and
``vs_past_second``: ``win``, ``draw``, ``loss``). The side is the mover's
``to_play`` before the step that ended the game.

A checkpoint (``state_dict``) holds both pools' exported states, the copies,
the current opponent and the sampling RNG, so a resumed run is exact. Opponent
envs assume a task that never truncates (ConnectFour-v0).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from trainer.distributions import MaskedCategorical
from trainer.envs import TrainingEnvs

# Added to the run's seed for the opponent envs' pool, so that its env i
# draws other openings than self-play env i.
OPPONENT_SEED_OFFSET = 0x9E3779B97F4A7C15


class SelfPlayEnvs:
    """Self-play envs and opponent envs behind the ``TrainingEnvs`` interface."""

    def __init__(
        self,
        task: str,
        num_envs: int,
        seed: int,
        task_kwargs: dict[str, Any] | None = None,
        num_threads: int | None = None,
        *,
        opponent_fraction: float = 0.0,
        opponent_pool_size: int = 8,
        opponent_interval: int = 10,
    ) -> None:
        self.num_envs, self.seed = num_envs, seed
        self.num_opponent_envs = int(round(opponent_fraction * num_envs))
        self.num_self_play_envs = num_envs - self.num_opponent_envs
        self.self_play = self.opponents = None
        if self.num_self_play_envs:
            self.self_play = TrainingEnvs(
                task, self.num_self_play_envs, seed, task_kwargs, num_threads
            )
        if self.num_opponent_envs:
            self.opponents = TrainingEnvs(
                task,
                self.num_opponent_envs,
                (seed + OPPONENT_SEED_OFFSET) % 2**64,
                task_kwargs,
                num_threads,
            )
        self.spec = (self.self_play or self.opponents).spec
        # True where an env's consecutive rows alternate players (self-play).
        self.alternating = np.arange(num_envs) < self.num_self_play_envs
        self.pool_size, self.interval = opponent_pool_size, opponent_interval
        self.snapshots: list[dict[str, torch.Tensor]] = []
        self.current = -1  # index in snapshots of the opponent of this rollout
        self.opponent_net: nn.Module | None = None
        self.generator = torch.Generator().manual_seed(seed)
        self._buffers = _empty_outputs(self.spec, num_envs)  # when step() gets no out=
        self._final_obs = {name: self._buffers[name].copy() for name in self.spec.fields}
        self.obs = self._join_obs()
        self.outcomes: dict[str, dict[str, int]] = {}

    # ----------------------------------------------------------- opponents
    def prepare_rollout(self, agent: nn.Module, update: int) -> None:
        """Before the rollout of ``update``: add a copy of ``agent`` to the pool
        every ``opponent_interval`` updates, then draw this rollout's opponent."""
        if not self.num_opponent_envs:
            return
        if update % self.interval == 0 or not self.snapshots:
            weights = {k: v.detach().cpu().clone() for k, v in agent.state_dict().items()}
            self.snapshots = (self.snapshots + [weights])[-self.pool_size :]
        self.current = int(torch.randint(len(self.snapshots), (1,), generator=self.generator))
        if self.opponent_net is None:
            self.opponent_net = copy.deepcopy(agent).requires_grad_(False)
        self.opponent_net.load_state_dict(self.snapshots[self.current])

    @torch.no_grad()
    def _opponent_actions(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        assert self.opponent_net is not None, "prepare_rollout() before stepping"
        device = next(self.opponent_net.parameters()).device
        tensors = {name: torch.from_numpy(view).to(device) for name, view in obs.items()}
        logits = self.opponent_net.logits(tensors).float().cpu()
        dist = MaskedCategorical(logits, tensors["action_mask"].cpu())
        return dist.sample(self.generator).numpy()

    # ---------------------------------------------------------------- step
    def step(self, actions: np.ndarray, out: dict[str, np.ndarray] | None = None):
        """Step every env: the self-play envs once, the opponent envs with the
        learner's move and the opponent's reply. Like ``TrainingEnvs.step``."""
        out = self._buffers if out is None else out
        split = self.num_self_play_envs
        movers = self.obs["to_play"].copy()  # the step below rewrites self.obs
        head = {k: v[:split] for k, v in out.items()}
        tail = {k: v[split:] for k, v in out.items()}
        info: dict[str, Any] = {
            "episode_return": np.zeros(self.num_envs, np.float64),
            "episode_length": np.zeros(self.num_envs, np.int64),
            "final_obs": self._final_obs,  # self-play rows only (opponent envs never truncate)
        }
        if self.self_play is not None:
            _, _, _, _, head_info = self.self_play.step(actions[:split], head)
            self._copy_info(info, head_info, slice(0, split))
        if self.opponents is not None:
            self._step_against_opponent(actions[split:], tail, info)
        self.obs = {k: out[k] for k in self.spec.fields}
        self._count_outcomes(movers, out, info)
        return self.obs, out["reward"], out["terminated"], out["truncated"], info

    def _count_outcomes(
        self, movers: np.ndarray, out: dict[str, np.ndarray], info: dict[str, Any]
    ) -> None:
        ended = np.flatnonzero(out["terminated"] | out["truncated"])
        for i in ended:
            mover = int(movers[i])
            if i < self.num_self_play_envs:  # the reward is the mover's
                reward = float(out["reward"][i])
                winner = mover if reward > 0 else 1 - mover if reward < 0 else None
                group = "self_play"
                outcome = "draw" if winner is None else ("first_win", "second_win")[winner]
            else:  # the episode return is the learner's result
                result = float(info["episode_return"][i])
                group = ("vs_past_first", "vs_past_second")[mover]
                outcome = "win" if result > 0 else "loss" if result < 0 else "draw"
            counts = self.outcomes.setdefault(group, {})
            counts[outcome] = counts.get(outcome, 0) + 1

    def episode_outcomes(self) -> dict[str, dict[str, int]]:
        """Finished games by group and outcome since the last call (module docstring)."""
        outcomes, self.outcomes = self.outcomes, {}
        return outcomes

    def _step_against_opponent(
        self, actions: np.ndarray, out: dict[str, np.ndarray], info: dict[str, Any]
    ) -> None:
        envs = self.opponents
        obs, reward, terminated, truncated, first = envs.pool.step(actions, copy=False)
        # Keep what the reply's step rewrites (obs stays: the opponent reads it first).
        ended = terminated | truncated
        mine, truncated = reward.copy(), truncated.copy()
        first_return = first["episode_return"].copy()
        first_length = first["episode_length"].copy()
        _, reply, reply_terminated, reply_truncated, second = envs.step(
            self._opponent_actions(obs), out
        )
        if (truncated | reply_truncated).any():
            raise RuntimeError("opponent envs need a task that never truncates")
        # A game that ended on the learner's move is the learner's row; else
        # the reply decides it (the reply's reward is the opponent's).
        rows = slice(self.num_self_play_envs, self.num_envs)
        info["episode_return"][rows] = np.where(
            ended, first_return, np.where(reply_terminated, -second["episode_return"], 0.0)
        )
        info["episode_length"][rows] = np.where(
            ended, first_length, np.where(reply_terminated, second["episode_length"], 0)
        )
        out["reward"][:] = np.where(ended, mine, -reply)
        out["terminated"][:] = ended | reply_terminated

    @staticmethod
    def _copy_info(info: dict[str, Any], part: dict[str, Any], rows: slice) -> None:
        info["episode_return"][rows] = part["episode_return"]
        info["episode_length"][rows] = part["episode_length"]
        for name, view in part["final_obs"].items():
            info["final_obs"][name][rows] = view

    def _join_obs(self) -> dict[str, np.ndarray]:
        parts = [e.obs for e in (self.self_play, self.opponents) if e is not None]
        for name in self.spec.fields:
            self._buffers[name][:] = np.concatenate([p[name] for p in parts])
        return {name: self._buffers[name] for name in self.spec.fields}

    @property
    def env_steps(self) -> int:
        """Learner moves taken so far, like ``TrainingEnvs.env_steps`` (ranks report it)."""
        return sum(e.env_steps for e in (self.self_play, self.opponents) if e is not None)

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "self_play": None if self.self_play is None else self.self_play.state_dict(),
            "opponents": None if self.opponents is None else self.opponents.state_dict(),
            "snapshots": self.snapshots,
            "current": self.current,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("self_play", "opponents"):
            envs = getattr(self, name)
            if (envs is None) != (state[name] is None):
                raise ValueError(f"saved state has different {name} envs than this run")
            if envs is not None:
                envs.load_state_dict(state[name])
        self.snapshots = list(state["snapshots"])
        self.current = int(state["current"])
        self.generator.set_state(state["generator"])
        if self.current >= 0 and self.opponent_net is not None:
            self.opponent_net.load_state_dict(self.snapshots[self.current])
        self.seed = int(state["seed"])
        self.obs = self._join_obs()

    def close(self) -> None:
        for envs in (self.self_play, self.opponents):
            if envs is not None:
                envs.close()


def _empty_outputs(spec: Any, num_envs: int) -> dict[str, np.ndarray]:
    arrays = {name: np.zeros((num_envs, *f.shape), f.dtype) for name, f in spec.fields.items()}
    arrays["reward"] = np.zeros(num_envs, np.float32)
    arrays["terminated"] = np.zeros(num_envs, bool)
    arrays["truncated"] = np.zeros(num_envs, bool)
    return arrays
