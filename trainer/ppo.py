"""PPO: rollout collection, advantages, the clipped update; an ``Algorithm``.

Reads like CleanRL's ``ppo.py`` and keeps its vocabulary, with the details of
"The 37 implementation details of PPO": Adam with eps 1e-5, optional linear
learning-rate decay, GAE, advantage normalisation per minibatch, clipped
policy and value losses, an entropy bonus, global gradient-norm clipping, and
an optional target-KL early stop. Orthogonal initialisation lives in
``networks``. The policy is the task's (``Algorithm.space``): a masked
categorical, independent categoricals (MultiDiscrete) or a diagonal Gaussian
(Box, as ``ppo_continuous_action``: the env gets the sample clipped to the
bounds, the rollout keeps the unclipped sample and its log-probability).
With ``normalize_reward`` the stored rewards are scaled as they arrive, and
with the network's ``normalize_observation`` the rollout's observations enter
its statistics after the update (``trainer.normalization``).

Truncation is not termination: where a step truncated an episode, the rollout
stores V(final_obs) -- the value of the state the episode was cut off in,
which the engine reports in ``info["final_obs"]`` -- and ``advantages.
compute_gae`` bootstraps from it. In envs whose consecutive rows alternate
between two players (``envs.alternating``: self-play) GAE is negamax.

Randomness (action sampling, minibatch order) comes from one seeded
``torch.Generator`` that checkpoints save, so a seeded CPU run is
bit-reproducible and a resumed run continues the same stream.

Under torchrun (``trainer.distributed``) each rank collects its own rollout
and shuffles its own minibatches; ``world.average_gradients`` makes every
optimiser step use the mean gradient over the ranks, the target-KL early stop
decides on the mean KL, and the schedule counts the global batch
(``batching.batch_size``). Advantages are normalised per rank's minibatch.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from trainer.advantages import compute_gae, explained_variance
from trainer.algorithm import Algorithm, Rollout
from trainer.config import Config
from trainer.distributed import World
from trainer.normalization import update_observation_statistics
from trainer.optim import Adam
from trainer.storage import RolloutStorage, copy_obs, copy_outcome


class PPO(Algorithm):
    """One run's PPO state: the optimiser, the rollout storage and the sampling RNG."""

    PER_RANK_STATE = ("generator", "reward_returns")

    def __init__(
        self,
        config: Config,
        envs: Any,
        agent: nn.Module,
        device: torch.device,
        world: World | None = None,
    ) -> None:
        super().__init__(config, envs, agent, device, world)
        self.ppo = config.ppo
        self.has_mask = "action_mask" in envs.spec.fields
        self.storage = RolloutStorage(envs.spec, config.num_steps, config.num_envs, device)
        self.optimizer = Adam(agent.parameters(), lr=self.ppo.learning_rate, eps=self.ppo.adam_eps)
        self.generator = torch.Generator(device).manual_seed(config.seed)
        # The linear decay runs from (anchor update, anchor lr) to 0 at num_updates.
        self.lr_anchor = (0, self.ppo.learning_rate)

    # ----------------------------------------------------------- schedule
    def set_num_updates(self, num_updates: int, update: int) -> None:
        """A new end before ``update``: the linear decay then runs from the
        learning rate of the last update done to 0 at the new end."""
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
    def collect(self) -> Rollout:
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
            params, value = agent(obs)
            dist = self.space.distribution(params, self._mask(obs))
            action = dist.sample(self.generator)
            s.actions[t] = action
            s.logprobs[t] = dist.log_prob(action)
            s.values[t] = value
            actions = self.space.to_env(action)
            tock = time.perf_counter()
            out = s.step_out(t)
            _, reward, terminated, truncated, info = envs.step(actions, out)
            env_time += time.perf_counter() - tock
            model_time += tock - tick
            if out is None:
                copy_outcome(s, t, reward, terminated, truncated)
            done = terminated | truncated
            if self.reward_normalizer is not None:
                ended = s.terminated[t] | s.truncated[t]
                s.rewards[t] = self.reward_normalizer(s.rewards[t], ended, self.world)
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
            s.advantages[:], s.returns[:] = compute_gae(
                s.rewards,
                s.values[:-1],
                s.next_values(),
                s.terminated,
                s.truncated,
                self.config.gamma,
                ppo.gae_lambda,
                negamax=self.envs.alternating,
            )
        batch = s.flat()
        batch_size = self.batching.rank_batch_size
        minibatch_size = self.batching.minibatch_size(ppo.num_minibatches)
        max_norm = ppo.max_grad_norm if ppo.max_grad_norm > 0 else math.inf
        stats: list[torch.Tensor] = []
        epochs = 0
        for _ in range(ppo.update_epochs):
            epochs += 1
            order = torch.randperm(batch_size, generator=self.generator, device=self.device)
            for first in range(0, batch_size, minibatch_size):
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
        # The observations acted on enter the network's statistics only now, after
        # the update that used the statistics they were collected with.
        update_observation_statistics(self.agent, batch["obs"], self.world)
        return metrics

    def _minibatch_step(
        self, batch: dict[str, Any], index: torch.Tensor, max_norm: float
    ) -> torch.Tensor:
        ppo = self.ppo
        obs = {name: tensor[index] for name, tensor in batch["obs"].items()}
        params, new_values = self.agent(obs)
        dist = self.space.distribution(params, self._mask(obs))
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

    # ------------------------------------------------------------ checkpoints
    def optimizer_state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_optimizer_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)
        self.optimizer.eps = self.ppo.adam_eps

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.get_state(),
            "lr_anchor": list(self.lr_anchor),
            "num_updates": self.num_updates,
            **self.normalization_state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.lr_anchor = (int(state["lr_anchor"][0]), float(state["lr_anchor"][1]))
        self.num_updates = int(state["num_updates"])
        self.load_normalization_state_dict(state)
