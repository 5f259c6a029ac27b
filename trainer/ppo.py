"""PPO: rollout collection, generalised advantage estimation, the clipped update.

Reads like CleanRL's ``ppo.py`` and keeps its vocabulary, with the details of
"The 37 implementation details of PPO" that apply to discrete actions: Adam
with eps 1e-5, optional linear learning-rate decay, GAE, advantage
normalisation per minibatch, clipped policy and value losses, an entropy
bonus, global gradient-norm clipping, and an optional target-KL early stop.
Orthogonal initialisation lives in ``networks``.

Truncation is not termination. ``compute_gae`` takes ``terminated`` and
``truncated`` separately: a terminated step bootstraps nothing, a truncated
step bootstraps from V(final_obs) -- the value of the state the episode was cut
off in, which the engine reports in ``info["final_obs"]`` -- and both stop
the advantage recursion, since the next row belongs to a new episode.

Randomness (action sampling, minibatch order) comes from one seeded
``torch.Generator`` that checkpoints save, so a seeded CPU run is
bit-reproducible and a resumed run continues the same stream.

Under torchrun (``trainer.distributed``) each rank collects its own rollout
and shuffles its own minibatches; ``world.average_gradients`` makes every
optimiser step use the mean gradient over the ranks, the target-KL early stop
decides on the mean KL, and the schedule counts the global batch
(``world.size * num_envs * num_steps``). Advantages are normalised per rank's
minibatch.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from trainer.config import Config
from trainer.distributed import World
from trainer.distributions import MaskedCategorical
from trainer.envs import TrainingEnvs
from trainer.optim import Adam
from trainer.storage import RolloutStorage, copy_obs, copy_outcome


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns for ``[T, N]`` tensors.

    ``values[t]`` is V(s_t) and ``next_values[t]`` the value of the state step
    t led to: V(s_{t+1}) normally, V(final_obs) where the step truncated. A
    terminated step has no successor value.
    """
    not_terminated = 1.0 - terminated.float()
    continues = 1.0 - (terminated | truncated).float()
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + gamma * next_values[t] * not_terminated[t] - values[t]
        last = delta + gamma * gae_lambda * continues[t] * last
        advantages[t] = last
    return advantages, advantages + values


def compute_negamax_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    gae_lambda: float,
    alternating: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``compute_gae`` for two-player zero-sum games played by one network (self-play).

    Players alternate, so consecutive rows of an env belong to opposite
    players, and rewards and values are each from the *mover's* view: the
    next state's value is the opponent's, and enters with a minus sign::

        delta_t = r_t - gamma * V(s_{t+1}) * (1 - terminated_t) - V(s_t)
        A_t     = delta_t - gamma * lambda * (1 - done_t) * A_{t+1}

    (negamax). Returns are ``A + V``, from the mover's view like the values.
    ``alternating`` (bool ``[N]``, default all True) marks the envs that
    alternate; in the others (a learner against an opponent that moves inside
    the env) every row is the same player's and the sign is +1, as in
    ``compute_gae``.
    """
    not_terminated = 1.0 - terminated.float()
    continues = 1.0 - (terminated | truncated).float()
    sign = -torch.ones_like(rewards[0])
    if alternating is not None:
        sign = torch.where(alternating.to(sign.device), sign, -sign)
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + sign * gamma * next_values[t] * not_terminated[t] - values[t]
        last = delta + sign * gamma * gae_lambda * continues[t] * last
        advantages[t] = last
    return advantages, advantages + values


def explained_variance(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """1 - Var(target - predicted) / Var(target); NaN when the target is constant."""
    var = target.var().item()
    return float("nan") if var == 0 else 1.0 - (target - predicted).var().item() / var


class PPO:
    """One run's PPO state: the optimiser, the rollout storage and the sampling RNG."""

    # State that belongs to one rank's data stream (see trainer.distributed).
    PER_RANK_STATE = ("generator",)

    def __init__(
        self,
        config: Config,
        envs: TrainingEnvs,
        agent: nn.Module,
        device: torch.device,
        world: World | None = None,
    ) -> None:
        self.config, self.ppo = config, config.ppo
        self.envs, self.agent, self.device = envs, agent, device
        self.world = world or World()
        self.has_mask = "action_mask" in envs.spec.fields
        self.storage = RolloutStorage(envs.spec, config.num_steps, config.num_envs, device)
        self.batch_size = config.num_envs * config.num_steps  # this rank's rollout
        self.global_batch_size = self.batch_size * self.world.size
        self.optimizer = Adam(agent.parameters(), lr=self.ppo.learning_rate, eps=self.ppo.adam_eps)
        self.generator = torch.Generator(device).manual_seed(config.seed)
        self.num_updates = math.ceil(config.total_steps / self.global_batch_size)
        # The linear decay runs from (anchor update, anchor lr) to 0 at num_updates.
        self.lr_anchor = (0, self.ppo.learning_rate)

    # ----------------------------------------------------------- schedule
    def set_total_steps(self, total_steps: int, update: int) -> None:
        """Change the step budget before ``update``: the linear decay then runs
        from the learning rate of the last update done to 0 at the new end."""
        num_updates = math.ceil(total_steps / self.global_batch_size)
        if num_updates != self.num_updates:
            last = max(update - 1, 0)
            self.lr_anchor = (last, self.learning_rate(last) if update > 0 else self.lr_anchor[1])
            self.num_updates = num_updates

    def learning_rate(self, update: int) -> float:
        if not self.ppo.anneal_lr:
            return self.ppo.learning_rate
        start, lr = self.lr_anchor
        remaining = max(self.num_updates - start, 1)
        return lr * max(1.0 - (update - start) / remaining, 0.0)

    # ------------------------------------------------------------ rollout
    def _mask(self, obs: dict[str, torch.Tensor]) -> torch.Tensor | None:
        return obs["action_mask"] if self.has_mask else None

    @torch.no_grad()
    def collect(self) -> dict[str, Any]:
        """Fill the storage with ``num_steps`` steps of every env.

        Returns the finished episodes' returns and lengths and the time spent in
        the env, in the model and in the rest (storage, bookkeeping).
        """
        s, envs, agent = self.storage, self.envs, self.agent
        start = time.perf_counter()
        env_time = model_time = 0.0
        returns: list[np.ndarray] = []
        lengths: list[np.ndarray] = []
        copy_obs({name: t[0] for name, t in s.obs.items()}, envs.obs)
        for t in range(s.num_steps):
            tick = time.perf_counter()
            obs = {name: tensor[t] for name, tensor in s.obs.items()}
            logits, value = agent(obs)
            dist = MaskedCategorical(logits, self._mask(obs))
            action = dist.sample(self.generator)
            s.actions[t] = action
            s.logprobs[t] = dist.log_prob(action)
            s.values[t] = value
            actions = action.cpu().numpy()
            tock = time.perf_counter()
            out = s.step_out(t)
            _, reward, terminated, truncated, info = envs.step(actions, out)
            env_time += time.perf_counter() - tock
            model_time += tock - tick
            if out is None:
                copy_outcome(s, t, reward, terminated, truncated)
            done = terminated | truncated
            if done.any():
                returns.append(info["episode_return"][done].astype(np.float64))
                lengths.append(info["episode_length"][done].astype(np.int64))
                if truncated.any():
                    tick = time.perf_counter()
                    rows = np.flatnonzero(truncated)
                    final = {
                        name: torch.from_numpy(info["final_obs"][name][rows]).to(self.device)
                        for name in s.obs
                    }
                    s.final_values[t, torch.from_numpy(rows).to(self.device)] = agent.get_value(
                        final
                    )
                    model_time += time.perf_counter() - tick
            if out is None:
                copy_obs({name: tensor[t + 1] for name, tensor in s.obs.items()}, envs.obs)
        tick = time.perf_counter()
        s.values[-1] = agent.get_value({name: tensor[-1] for name, tensor in s.obs.items()})
        model_time += time.perf_counter() - tick
        total = time.perf_counter() - start
        return {
            "episode_returns": np.concatenate(returns) if returns else np.zeros(0),
            "episode_lengths": np.concatenate(lengths) if lengths else np.zeros(0, np.int64),
            "rollout_time": total,
            "env_time": env_time,
            "inference_time": model_time,
            "storage_time": total - env_time - model_time,
        }

    # ------------------------------------------------------------- update
    def update(self, update: int) -> dict[str, float]:
        """Compute advantages and run the clipped-surrogate epochs; returns TRAINER metrics."""
        ppo, s = self.ppo, self.storage
        lr = self.learning_rate(update)
        self.optimizer.lr = lr
        with torch.no_grad():
            args = (s.rewards, s.values[:-1], s.next_values(), s.terminated, s.truncated)
            if self.config.self_play:
                alternating = getattr(self.envs, "alternating", None)
                if alternating is not None:
                    alternating = torch.from_numpy(alternating)
                gae = compute_negamax_gae(*args, self.config.gamma, ppo.gae_lambda, alternating)
            else:
                gae = compute_gae(*args, self.config.gamma, ppo.gae_lambda)
            s.advantages[:], s.returns[:] = gae
        batch = s.flat()
        minibatch_size = self.batch_size // ppo.num_minibatches
        max_norm = ppo.max_grad_norm if ppo.max_grad_norm > 0 else math.inf
        stats: list[torch.Tensor] = []
        epochs = 0
        for _ in range(ppo.update_epochs):
            epochs += 1
            order = torch.randperm(self.batch_size, generator=self.generator, device=self.device)
            for first in range(0, self.batch_size, minibatch_size):
                index = order[first : first + minibatch_size]
                stats.append(self._minibatch_step(batch, index, max_norm))
            if ppo.target_kl is not None and self.world.mean(stats[-1][3]).item() > ppo.target_kl:
                break
        means = torch.stack(stats).mean(0).tolist()
        names = ["policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "grad_norm"]
        metrics = dict(zip(names, means))
        metrics["explained_variance"] = explained_variance(batch["values"], batch["returns"])
        metrics["learning_rate"] = lr
        metrics["epochs"] = epochs
        return metrics

    def _minibatch_step(
        self, batch: dict[str, Any], index: torch.Tensor, max_norm: float
    ) -> torch.Tensor:
        ppo = self.ppo
        obs = {name: tensor[index] for name, tensor in batch["obs"].items()}
        logits, new_values = self.agent(obs)
        dist = MaskedCategorical(logits, self._mask(obs))
        log_ratio = dist.log_prob(batch["actions"][index]) - batch["logprobs"][index]
        ratio = log_ratio.exp()
        advantages = batch["advantages"][index]
        if ppo.norm_adv and advantages.numel() > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss = torch.max(
            -advantages * ratio, -advantages * ratio.clamp(1 - ppo.clip_coef, 1 + ppo.clip_coef)
        ).mean()
        returns, old_values = batch["returns"][index], batch["values"][index]
        if ppo.clip_vloss:
            clipped = old_values + (new_values - old_values).clamp(-ppo.clip_coef, ppo.clip_coef)
            value_loss = (
                0.5 * torch.max((new_values - returns) ** 2, (clipped - returns) ** 2).mean()
            )
        else:
            value_loss = 0.5 * ((new_values - returns) ** 2).mean()
        entropy = dist.entropy().mean()
        loss = policy_loss - ppo.ent_coef * entropy + ppo.vf_coef * value_loss
        self.optimizer.zero_grad()
        loss.backward()
        self.world.average_gradients(self.agent.parameters())
        grad_norm = nn.utils.clip_grad_norm_(self.agent.parameters(), max_norm)
        self.optimizer.step()
        with torch.no_grad():
            approx_kl = ((ratio - 1) - log_ratio).mean()
            clip_fraction = ((ratio - 1).abs() > ppo.clip_coef).float().mean()
        return torch.stack(
            [
                policy_loss.detach(),
                value_loss.detach(),
                entropy.detach(),
                approx_kl,
                clip_fraction,
                grad_norm,
            ]
        )

    # -------------------------------------------------------- the seams
    def iteration(self, update: int) -> dict[str, Any]:
        """One update: a rollout, then optimisation. What the training loop calls."""
        if hasattr(self.envs, "prepare_opponents"):  # self-play: draw this rollout's opponent
            self.envs.prepare_opponents(self.agent, update)
        rollout = self.collect()
        tick = time.perf_counter()
        trainer_metrics = self.update(update)
        rollout["update_time"] = time.perf_counter() - tick
        rollout["trainer"] = trainer_metrics
        return rollout

    def evaluation_policy(self, pool: Any = None) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
        """The policy evaluations run: greedy over legal actions (``pool`` unused)."""
        from trainer.evaluate import greedy_policy

        return greedy_policy(self.agent, self.device)

    def optimizer_state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def warm_start(self) -> None:
        """The agent's weights came from another algorithm's checkpoint: nothing
        else of PPO's depends on them."""

    def load_optimizer_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)
        self.optimizer.eps = self.ppo.adam_eps

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.get_state(),
            "lr_anchor": list(self.lr_anchor),
            "num_updates": self.num_updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.lr_anchor = (int(state["lr_anchor"][0]), float(state["lr_anchor"][1]))
        self.num_updates = int(state["num_updates"])
