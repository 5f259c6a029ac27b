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

A recurrent policy (``network.recurrent``, ``trainer.recurrent``) carries a
hidden state per env across steps and rollouts, reset where an episode
starts; the rollout keeps the state at its start and each step's start flag,
and the update replays whole env sequences from those states (truncated
backpropagation through time), so its minibatches split the envs, not time.

``advantage_estimator: vtrace`` replaces GAE with V-trace (``advantages.
compute_vtrace``): at the start of the update the current network re-evaluates
the rollout (its log-probs of the actions taken, its values, and V(final_obs)
on truncated rows); the clipped importance weights between it and the policy
that collected the data correct for any lag between the two (``trainer.appo``
collects while learning), and the clipped surrogate's ratio is taken against
the re-evaluated policy (the proximal policy of decoupled PPO, Hilton et al.
2022). On data of the current policy the weights are 1.

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

from trainer.advantages import compute_gae, compute_vtrace, explained_variance
from trainer.algorithm import Algorithm, Rollout
from trainer.config import Config
from trainer.distributed import World
from trainer.normalization import update_observation_statistics
from trainer.optim import Adam
from trainer.recurrent import HiddenState, RecurrentAgent
from trainer.storage import RolloutStorage, copy_obs, copy_outcome


class PPO(Algorithm):
    """One run's PPO state: the optimiser, the rollout storage and the sampling RNG
    (and a recurrent policy's hidden state)."""

    PER_RANK_STATE = ("generator", "hidden", "reward_returns")

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
        self.hidden = (
            HiddenState(agent, config.num_envs, device)
            if isinstance(agent, RecurrentAgent)
            else None
        )
        self.vtrace = self.ppo.advantage_estimator == "vtrace"
        self.storage = RolloutStorage(
            envs.spec,
            config.num_steps,
            config.num_envs,
            device,
            state_size=agent.state_size if self.hidden is not None else 0,
            final_obs=self.vtrace,
        )
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
        s, envs, agent, hidden = self.storage, self.envs, self.agent, self.hidden
        start = time.perf_counter()
        env_time = model_time = 0.0
        returns: list[np.ndarray] = []
        lengths: list[np.ndarray] = []
        copy_obs({name: t[0] for name, t in s.obs.items()}, envs.obs)
        if hidden is not None:
            s.initial_state.copy_(hidden.state)
        for t in range(s.num_steps):
            tick = time.perf_counter()
            obs = {name: tensor[t] for name, tensor in s.obs.items()}
            if hidden is None:
                params, value = agent(obs)
            else:
                s.starts[t] = hidden.starts
                params, value = hidden.step(obs)
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
            if hidden is not None:
                hidden.episodes_ended(torch.from_numpy(done))
            if self.reward_normalizer is not None:
                ended = s.terminated[t] | s.truncated[t]
                s.rewards[t] = self.reward_normalizer(s.rewards[t], ended, self.world)
            if done.any():
                returns.append(info["episode_return"][done].astype(np.float64))
                lengths.append(info["episode_length"][done].astype(np.int64))
                if truncated.any():
                    tick = time.perf_counter()
                    rows = torch.from_numpy(np.flatnonzero(truncated)).to(self.device)
                    final = {
                        name: torch.from_numpy(info["final_obs"][name][truncated]).to(self.device)
                        for name in s.obs
                    }
                    s.final_values[t, rows] = (
                        agent.get_value(final)
                        if hidden is None
                        else hidden.final_value(final, rows)
                    )
                    if s.final_obs is not None:
                        for name, tensor in s.final_obs.items():
                            tensor[t, rows] = final[name]
                    model_time += time.perf_counter() - tick
            if out is None:
                copy_obs({name: tensor[t + 1] for name, tensor in s.obs.items()}, envs.obs)
        tick = time.perf_counter()
        last = {name: tensor[-1] for name, tensor in s.obs.items()}
        s.values[-1] = agent.get_value(last) if hidden is None else hidden.value(last)
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
        metrics: dict[str, float] = {}
        with torch.no_grad():
            if self.vtrace:
                logprobs, values, metrics = self._vtrace()
            else:
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
        if self.vtrace:  # the clipped surrogate and value loss are taken against these
            batch["logprobs"], batch["values"] = logprobs.reshape(-1), values.reshape(-1)
        max_norm = ppo.max_grad_norm if ppo.max_grad_norm > 0 else math.inf
        stats: list[torch.Tensor] = []
        epochs = 0
        for _ in range(ppo.update_epochs):
            epochs += 1
            for index, envs in self._minibatches():
                stats.append(self._minibatch_step(batch, index, max_norm, envs))
            if ppo.target_kl is not None and self.world.mean(stats[-1][3]).item() > ppo.target_kl:
                break
        means = torch.stack(stats).mean(0).tolist()
        names = ["policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "grad_norm"]
        metrics.update(zip(names, means))
        metrics["explained_variance"] = explained_variance(batch["values"], batch["returns"])
        metrics["learning_rate"] = lr
        metrics["epochs"] = epochs
        # The observations acted on enter the network's statistics only now, after
        # the update that used the statistics they were collected with.
        update_observation_statistics(self.agent, batch["obs"], self.world)
        return metrics

    def _minibatch_step(
        self,
        batch: dict[str, Any],
        index: torch.Tensor,
        max_norm: float,
        envs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One optimiser step on the flat rows ``index`` of ``batch`` (with a
        recurrent policy: every step of the envs ``envs``, time first)."""
        ppo = self.ppo
        obs = {name: tensor[index] for name, tensor in batch["obs"].items()}
        if envs is None:
            params, new_values = self.agent(obs)
        else:
            s = self.storage
            params, new_values, _ = self.agent.unroll(
                {name: tensor[:-1, envs] for name, tensor in s.obs.items()},
                s.initial_state[envs],
                s.starts[:, envs],
            )
            params, new_values = params.flatten(0, 1), new_values.flatten()
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

    def _minibatches(self):
        """One epoch's minibatches, in a fresh random order: ``(rows, None)`` of
        the flat rollout, or for a recurrent policy ``(rows, envs)``, every step
        of a subset of the envs (the rows time first, as ``unroll`` returns them)."""
        ppo, s = self.ppo, self.storage
        if self.hidden is None:
            batch_size = self.batching.rank_batch_size
            minibatch_size = self.batching.minibatch_size(ppo.num_minibatches)
            order = torch.randperm(batch_size, generator=self.generator, device=self.device)
            for first in range(0, batch_size, minibatch_size):
                yield order[first : first + minibatch_size], None
            return
        num_envs = s.num_envs // ppo.num_minibatches
        order = torch.randperm(s.num_envs, generator=self.generator, device=self.device)
        steps = torch.arange(s.num_steps, device=self.device).unsqueeze(1) * s.num_envs
        for first in range(0, s.num_envs, num_envs):
            envs = order[first : first + num_envs]
            yield (steps + envs).reshape(-1), envs

    def _vtrace(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """V-trace advantages and returns into the storage, from the current
        network's re-evaluation of the rollout; returns its log-probs of the
        actions and its values ``[T, N]``, and the importance-weight metrics."""
        s, ppo = self.storage, self.ppo
        steps, num_envs = s.num_steps, s.num_envs
        final_values = torch.zeros_like(s.final_values)
        rows = s.truncated.nonzero(as_tuple=True)
        final = {name: tensor[rows] for name, tensor in s.final_obs.items()}
        if self.hidden is None:
            obs = {name: t.flatten(0, 1) for name, t in s.obs.items()}
            logits, values = self.agent(obs)
            logits, values = logits[: steps * num_envs], values.reshape(steps + 1, num_envs)
            if len(rows[0]):
                final_values[rows] = self.agent.get_value(final)
        else:
            last_starts = (s.terminated[-1] | s.truncated[-1]).unsqueeze(0)
            logits, values, states = self.agent.unroll(
                s.obs, s.initial_state, torch.cat([s.starts, last_starts])
            )
            logits = logits[:steps].flatten(0, 1)
            if len(rows[0]):
                no_start = torch.zeros_like(rows[0], dtype=torch.bool)
                final_values[rows] = self.agent.step(final, states[rows], no_start)[1]
        mask = s.obs["action_mask"][:-1].flatten(0, 1) if self.has_mask else None
        actions = s.actions.flatten(0, 1)
        logprobs = self.space.distribution(logits, mask).log_prob(actions).reshape(steps, num_envs)
        log_rhos = logprobs - s.logprobs
        s.advantages[:], s.returns[:] = compute_vtrace(
            s.rewards,
            values[:-1],
            torch.where(s.truncated, final_values, values[1:]),
            s.terminated,
            s.truncated,
            log_rhos,
            self.config.gamma,
            ppo.vtrace_rho_bar,
            ppo.vtrace_c_bar,
            ppo.gae_lambda,
            negamax=self.envs.alternating,
        )
        ratios = log_rhos.exp()
        metrics = {
            "importance_weight_mean": float(ratios.mean()),
            "importance_weight_max": float(ratios.max()),
            "rho_clip_fraction": float((ratios > ppo.vtrace_rho_bar).float().mean()),
        }
        return logprobs, values[:-1], metrics

    # ------------------------------------------------------------ checkpoints
    def optimizer_state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_optimizer_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)
        self.optimizer.eps = self.ppo.adam_eps

    def state_dict(self) -> dict[str, Any]:
        state = {
            "generator": self.generator.get_state(),
            "lr_anchor": list(self.lr_anchor),
            "num_updates": self.num_updates,
            **self.normalization_state_dict(),
        }
        if self.hidden is not None:  # each env's hidden state and start flag
            state["hidden"] = self.hidden.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.lr_anchor = (int(state["lr_anchor"][0]), float(state["lr_anchor"][1]))
        self.num_updates = int(state["num_updates"])
        if self.hidden is not None and "hidden" in state:
            self.hidden.load_state_dict(state["hidden"])
        self.load_normalization_state_dict(state)
