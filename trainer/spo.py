"""SPO, Sequential Monte Carlo Policy Optimisation (Macfarlane et al., NeurIPS 2024).

Stoix ``ff_spo.py`` semantics (``shared/reference/jumanji_spo.md`` section 4),
on pyenvpool's snapshot store. Each update:

1. **Collect** ``num_steps`` real steps of every training env. At each step
   ``smc_search`` (``trainer.smc``) runs from every env's live state with the
   *online* network and the *learned* temperature eta; the real action is a
   sample of the search target. Every transition goes into a FIFO replay
   buffer (``storage.ReplayBuffer``): observation (with its action mask),
   action, reward, terminated, truncated, the bootstrap observation (``final_obs`` where the episode
   ended, else the next observation), the N particle root actions and their
   final weights (the search target, stored sparsely: ``q(a) = sum_n w_n
   [a_n = a]``) and the N pre-resampling particle advantages.
2. **Learn** with ``gradient_steps`` gradient steps, each on a fresh batch of
   ``sample_sequences`` x ``sample_sequence_length`` replayed sequences:

   - the MPO losses (``trainer.mpo``): cross-entropy to the search target,
     the temperature dual on the stored pre-resampling advantages, the KL
     trust region KL(pi_target || pi_online) against the Polyak target actor
     with its alpha dual (all over the masked, legal actions);
   - the critic, ``critic_coef * 0.5 (V - G)^2``, on GAE(lambda) targets G
     computed inside each sequence from the *target* critic: a terminated step
     bootstraps nothing, a truncated one bootstraps V_target(final_obs), and
     both cut the recursion (``advantages.compute_gae``);
   - Adam (eps 1e-5) on the network and on the duals, each with global-norm
     clipping; the dual parameters are clipped to >= -18 after each step; the
     target network moves by Polyak averaging (tau) after every step.

Gradient steps start once every env has ``sample_sequence_length`` steps in
the buffer (the first update of a run with the defaults already qualifies).

Randomness: one seeded ``torch.Generator`` drives the search, the action
choice and the replay sampling; checkpoints save it with the replay contents,
the duals, the target network and both optimisers, so a resumed CPU run is
bit-identical to an uninterrupted one. Evaluations use their own generator
(seeded from ``eval_seed``) and no root noise, so they touch no training state.

Under torchrun (``trainer.distributed``) each rank searches, collects and
replays on its own envs, replay buffer (``replay_size`` per rank) and
generator; gradients of the network and of the duals are averaged over the
ranks before clipping, gradient steps start once every rank's replay can be
sampled, and the update count follows the global batch.

A recurrent policy (``network.recurrent``) keeps a hidden state per env,
reset at episode starts. The search starts every particle from the state
after the env's observation and carries it in the particle (``trainer.smc``);
the replay stores, with each transition, the state its observation was
consumed with, and a gradient step unrolls each sampled sequence from the
stored state of its first step (R2D2's stored state), online and target
network alike, resetting at the episode starts inside it.

A fork (``--fork``) carries the network, the target network, the duals and the
optimisers, but not the replay: it starts with an empty buffer, and its first
``sample_sequence_length`` steps of every env only collect (the warm-up).

Box actions (a diagonal Gaussian policy), as the SPO paper does for Brax: the
search's particles are Gaussian proposals from the policy at every step (no
root noise), the real action is a particle's root action picked by weight
(clipped for the env; the replay keeps the unclipped one), the stored target
is the particles' root actions with their weights, and the policy loss is
MPO's decoupled Gaussian form (``mpo.gaussian_mpo_losses``): weighted
log-likelihood of the target actions, with separate trust regions and duals
on the mean (``log_alpha``, ``epsilon_alpha``) and on the std
(``log_alpha_std``, ``epsilon_alpha_std``). Everything else is shared.
MultiDiscrete tasks are not supported by SPO.

With ``normalize_reward`` the replay holds scaled rewards and the search
scales the rewards of its simulated steps with the same (frozen) statistics;
with the network's ``normalize_observation`` the replay holds raw
observations, the network standardises them, and each rollout's
observations enter its statistics at the end of the update.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from trainer.advantages import compute_gae, explained_variance
from trainer.algorithm import Algorithm, Policy, Rollout, greedy_policy
from trainer.config import Config
from trainer.distributed import World
from trainer.distributions import ActionSpace
from trainer.envs import TrainingEnvs
from trainer.mpo import clip_duals, dual_value, gaussian_mpo_losses, inverse_softplus, mpo_losses
from trainer.normalization import RewardNormalizer, update_observation_statistics
from trainer.optim import Adam
from trainer.recurrent import HiddenState, RecurrentAgent, StatefulPolicy
from trainer.smc import SearchConfig, SearchResult, smc_search
from trainer.storage import ReplayBuffer


def dense_target(root_actions: torch.Tensor, weights: torch.Tensor, num_actions: int):
    """``q(a) = sum_n w_n [root_action_n = a]`` for ``[..., N]`` particles: ``[..., A]``."""
    out = torch.zeros(*root_actions.shape[:-1], num_actions, device=weights.device)
    return out.scatter_add_(-1, root_actions, weights)


def critic_targets(
    target_values: torch.Tensor,
    bootstrap_values: torch.Tensor,
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> torch.Tensor:
    """GAE(lambda) returns over ``[L, S]`` replayed sequences from the target critic.

    ``target_values[t]`` = V_target(obs_t), ``bootstrap_values[t]`` =
    V_target(bootstrap obs of step t) (the next observation, or ``final_obs``
    where the episode ended). Terminated steps bootstrap nothing, truncated
    steps bootstrap their final observation; both stop the recursion. The last
    step of a sequence bootstraps with its one-step TD error (truncated GAE).
    """
    _, returns = compute_gae(
        rewards, target_values, bootstrap_values, terminated, truncated, gamma, gae_lambda
    )
    return returns


def search_config(config: Config, training: bool) -> SearchConfig:
    spo = config.spo
    return SearchConfig(
        num_particles=spo.num_particles,
        depth=spo.search_depth,
        resample_period=spo.resample_period,
        resample_ess_threshold=spo.resample_ess_threshold,
        gamma=config.gamma if spo.search_gamma is None else spo.search_gamma,
        gae_lambda=spo.search_gae_lambda,
        dirichlet_alpha=spo.dirichlet_alpha,
        dirichlet_fraction=spo.dirichlet_fraction if training else 0.0,
    )


def distinct_rows(obs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """``(first, inverse)`` such that row i equals row ``first[inverse[i]]`` in
    every field; None when all rows are distinct."""
    n = len(next(iter(obs.values())))
    parts = [np.ascontiguousarray(v).reshape(n, -1).view(np.uint8) for v in obs.values()]
    keys = np.concatenate(parts, axis=1)
    seen: dict[bytes, int] = {}
    inverse = np.fromiter(
        (seen.setdefault(row.tobytes(), len(seen)) for row in keys), np.int64, count=n
    )
    if len(seen) == n:
        return None
    first = np.zeros(len(seen), np.int64)
    first[inverse[::-1]] = np.arange(n - 1, -1, -1)  # the first row of each key
    return first, inverse


def policy_value_fn(agent: nn.Module, device: torch.device, dedupe: bool = True):
    """obs (NumPy views) -> (logits, values), batched over every row; for a
    recurrent agent (obs, state) -> (logits, values, next state), with no
    episode starts (the search never resets). With ``dedupe``, the network
    runs once per distinct observation (and state) -- particles forked from
    one root often share them -- and the outputs are gathered back; results
    are deterministic either way."""

    def run(tensors: dict[str, torch.Tensor], state: torch.Tensor | None):
        if state is None:
            return agent(tensors)
        return agent.step(tensors, state, torch.zeros(len(state), dtype=torch.bool, device=device))

    def policy_value(obs: dict[str, np.ndarray], state: torch.Tensor | None = None):
        keys = obs if state is None else {**obs, " state": state.cpu().numpy()}
        rows = distinct_rows(keys) if dedupe else None
        if rows is None:
            tensors = {name: torch.from_numpy(np.asarray(v)).to(device) for name, v in obs.items()}
            return run(tensors, state)
        first, inverse = rows
        tensors = {
            name: torch.from_numpy(np.asarray(v)[first]).to(device) for name, v in obs.items()
        }
        index = torch.from_numpy(inverse).to(device)
        first_rows = None if state is None else state[torch.from_numpy(first).to(state.device)]
        return tuple(out[index] for out in run(tensors, first_rows))

    return policy_value


def search_policy(
    agent: nn.Module,
    pool: Any,
    temperature: float,
    config: Config,
    device: torch.device,
    seed: int,
) -> Policy:
    """Evaluation policy: an SMC search from every env of ``pool`` (no root
    noise), then the argmax of the search target. Its randomness is a fresh
    generator seeded with ``seed``, so repeated evaluations are identical."""
    generator = torch.Generator().manual_seed(seed)
    cfg = search_config(config, training=False)
    policy_value = policy_value_fn(agent, device, config.spo.dedupe_particles)
    space = ActionSpace.from_spec(pool.spec)

    @torch.no_grad()
    def search(obs: dict[str, np.ndarray], state: torch.Tensor | None = None) -> SearchResult:
        return smc_search(
            pool, obs, policy_value, temperature, cfg, generator, root_state=state, space=space
        )

    if isinstance(agent, RecurrentAgent):
        return RecurrentSearchPolicy(agent, device, search, space)
    return lambda obs: space.to_env(torch.from_numpy(search(obs).act(greedy=True)))


class RecurrentSearchPolicy(StatefulPolicy):
    """``search_policy`` for a recurrent agent: a hidden state per env, the root
    state of each search, advanced by the search's root step."""

    def __init__(
        self, agent: RecurrentAgent, device: torch.device, search, space: ActionSpace
    ) -> None:
        self.agent, self.device, self.search, self.space = agent, device, search, space
        self.hidden: HiddenState | None = None

    def reset(self, num_envs: int) -> None:
        self.hidden = HiddenState(self.agent, num_envs, self.device)

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if self.hidden is None:
            self.reset(len(next(iter(obs.values()))))
        result = self.search(obs, self.hidden.current())
        self.hidden.state = result.root_state
        return self.space.to_env(torch.from_numpy(result.act(greedy=True)))

    def episodes_ended(self, done: np.ndarray) -> None:
        self.hidden.episodes_ended(torch.from_numpy(np.asarray(done)))


class ScaledRewardPool:
    """``pool`` as the search sees it under reward normalisation: the rewards of
    ``simulate`` scaled by ``normalizer`` (frozen); snapshots pass through."""

    def __init__(self, pool: Any, normalizer: RewardNormalizer) -> None:
        self.pool, self.normalizer = pool, normalizer

    def snapshot(self, env_ids=None):
        return self.pool.snapshot(env_ids)

    def release(self, ids):
        return self.pool.release(ids)

    def simulate(self, ids, actions):
        obs, reward, terminated, truncated, new_ids = self.pool.simulate(ids, actions)
        scaled = self.normalizer.scale(torch.from_numpy(reward)).numpy()
        return obs, scaled, terminated, truncated, new_ids


# --------------------------------------------------------------- algorithm
class SPO(Algorithm):
    """One run's SPO state: target network, duals, optimisers, replay, RNG."""

    PER_RANK_STATE = ("generator", "replay", "hidden", "reward_returns")

    def __init__(
        self,
        config: Config,
        envs: TrainingEnvs,
        agent: nn.Module,
        device: torch.device,
        world: World | None = None,
    ) -> None:
        super().__init__(config, envs, agent, device, world)
        if self.space.kind == "multi_discrete":
            raise ValueError(
                f"spo: {envs.spec.task_id} has {envs.spec.action!r} actions; SPO supports "
                "Discrete and Box actions (train MultiDiscrete tasks with --algo ppo)"
            )
        self.spo = spo = config.spo
        self.has_mask = "action_mask" in envs.spec.fields
        self.num_actions = int(envs.spec.num_actions)
        self.target_agent = copy.deepcopy(agent).requires_grad_(False)
        self.log_temperature = nn.Parameter(
            torch.tensor(inverse_softplus(spo.init_temperature), device=device)
        )
        # Box actions: one trust-region dual per action element for the mean
        # (log_alpha) and for the std (log_alpha_std); discrete: one scalar.
        elements = (self.space.num_params // 2,) if self.space.continuous else ()
        self.log_alpha = nn.Parameter(
            torch.full(elements, inverse_softplus(spo.init_alpha), device=device)
        )
        self.duals = [self.log_temperature, self.log_alpha]
        self.log_alpha_std: nn.Parameter | None = None
        if self.space.continuous:
            self.log_alpha_std = nn.Parameter(
                torch.full(elements, inverse_softplus(spo.init_alpha_std), device=device)
            )
            self.duals.append(self.log_alpha_std)
        self.optimizer = Adam(agent.parameters(), lr=spo.spo_learning_rate, eps=spo.spo_adam_eps)
        self.dual_optimizer = Adam(self.duals, lr=spo.dual_learning_rate, eps=spo.spo_adam_eps)
        # A CPU generator: the search samples on the CPU whatever the model's device.
        self.generator = torch.Generator().manual_seed(config.seed)
        capacity = max(spo.replay_size // config.num_envs, spo.sample_sequence_length)
        self.hidden = (
            HiddenState(agent, config.num_envs, device)
            if isinstance(agent, RecurrentAgent)
            else None
        )
        self.replay = ReplayBuffer(
            envs.spec,
            capacity,
            config.num_envs,
            spo.num_particles,
            device,
            state_size=agent.state_size if self.hidden is not None else 0,
        )
        self.search = search_config(config, training=True)
        self.policy_value = policy_value_fn(agent, device, spo.dedupe_particles)
        self.fields = list(envs.spec.fields)
        self.rollout_obs: list[dict[str, np.ndarray]] = []  # for the observation statistics

    @property
    def temperature(self) -> float:
        return float(dual_value(self.log_temperature.detach()))

    # ------------------------------------------------------------ rollout
    @torch.no_grad()
    def collect(self) -> Rollout:
        envs, cfg = self.envs, self.config
        start = time.perf_counter()
        env_time = search_time = sim_time = net_time = 0.0
        ess_sum = np.zeros(self.spo.search_depth)
        returns: list[np.ndarray] = []
        lengths: list[np.ndarray] = []
        eta = self.temperature
        snapshots_before = envs.pool.snapshot_count
        hidden = self.hidden
        normalizer = self.reward_normalizer
        pool = envs.pool if normalizer is None else ScaledRewardPool(envs.pool, normalizer)
        self.rollout_obs = []
        for _ in range(cfg.num_steps):
            obs = {name: np.array(envs.obs[name]) for name in self.fields}
            self.rollout_obs.append(obs)
            root_state = None if hidden is None else hidden.current()
            result: SearchResult = smc_search(
                pool,
                obs,
                self.policy_value,
                eta,
                self.search,
                self.generator,
                root_state=root_state,
                space=self.space,
            )
            if hidden is not None:
                hidden.state = result.root_state
            search_time += result.total_seconds
            sim_time += result.simulate_seconds
            net_time += result.network_seconds
            ess_sum += np.asarray(result.ess)
            actions = result.act(greedy=False, generator=self.generator)
            tick = time.perf_counter()
            next_obs, reward, terminated, truncated, info = envs.step(
                self.space.to_env(torch.from_numpy(actions))
            )
            env_time += time.perf_counter() - tick
            done = terminated | truncated
            if hidden is not None:
                hidden.episodes_ended(torch.from_numpy(done))
            reward = reward.astype(np.float32)
            if normalizer is not None:
                scaled = normalizer(torch.from_numpy(reward), torch.from_numpy(done), self.world)
                reward = scaled.numpy()
            bootstrap = {name: np.array(next_obs[name]) for name in self.fields}
            if done.any():
                rows = np.flatnonzero(done)
                for name in self.fields:
                    bootstrap[name][rows] = info["final_obs"][name][rows]
                returns.append(info["episode_return"][done].astype(np.float64))
                lengths.append(info["episode_length"][done].astype(np.int64))
            row: dict[str, Any] = {
                **{f"obs.{k}": v for k, v in obs.items()},
                **{f"next_obs.{k}": v for k, v in bootstrap.items()},
                "actions": actions,
                "rewards": reward,
                "terminated": terminated.copy(),
                "truncated": truncated.copy(),
                "root_actions": result.root_actions,
                "weights": result.weights,
                "advantages": result.advantages,
            }
            if hidden is not None:  # the state the observation was consumed with
                row["state"] = root_state
            self.replay.add(row)
        assert envs.pool.snapshot_count == snapshots_before, "the search leaked snapshots"
        total = time.perf_counter() - start
        steps = cfg.num_steps
        search = {
            "search_time": search_time,
            "search_simulate_share": sim_time / max(search_time, 1e-9),
            "search_network_share": net_time / max(search_time, 1e-9),
            "search_sim_steps_per_second": cfg.num_envs
            * self.spo.num_particles
            * self.spo.search_depth
            * steps
            / max(sim_time, 1e-9),
            "temperature_used": eta,
            **{f"ess_depth_{d}": float(v / steps) for d, v in enumerate(ess_sum)},
        }
        return {
            "episode_returns": np.concatenate(returns) if returns else np.zeros(0),
            "episode_lengths": np.concatenate(lengths) if lengths else np.zeros(0, np.int64),
            "rollout_time": total,
            # The engine's share: real steps plus the search's snapshot/simulate/release.
            "env_time": env_time + sim_time,
            "inference_time": net_time,
            "storage_time": total - env_time - sim_time - net_time,
            "trainer": search,
        }

    # ------------------------------------------------------------- update
    def _obs(self, batch: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in batch.items() if k.startswith(prefix)}

    def gradient_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One gradient step on ``[L, S]`` replayed sequences; then the Polyak update."""
        spo = self.spo
        length, num = batch["rewards"].shape
        flat = length * num
        obs = {k: v.reshape(flat, *v.shape[2:]) for k, v in self._obs(batch, "obs.").items()}
        next_obs = {
            k: v.reshape(flat, *v.shape[2:]) for k, v in self._obs(batch, "next_obs.").items()
        }
        if self.hidden is None:
            with torch.no_grad():
                target_logits, target_values = self.target_agent(obs)
                bootstrap_values = self.target_agent.get_value(next_obs)
            logits, values = self.agent(obs)
        else:
            logits, values, target_logits, target_values, bootstrap_values = self._unroll(
                batch, next_obs
            )
        with torch.no_grad():
            returns = critic_targets(
                target_values.reshape(length, num),
                bootstrap_values.reshape(length, num),
                batch["rewards"],
                batch["terminated"],
                batch["truncated"],
                self.config.gamma,
                spo.critic_gae_lambda,
            ).reshape(flat)
        if self.space.continuous:
            terms = gaussian_mpo_losses(
                self.space.distribution(logits),
                self.space.distribution(target_logits),
                batch["root_actions"].reshape(flat, -1, *self.space.shape),
                batch["weights"].reshape(flat, -1),
                batch["advantages"].reshape(flat, -1),
                self.log_temperature,
                self.log_alpha,
                self.log_alpha_std,
                spo.epsilon,
                spo.epsilon_alpha,
                spo.epsilon_alpha_std,
            )
        else:
            mask = obs["action_mask"] if self.has_mask else None
            target = dense_target(
                batch["root_actions"].reshape(flat, -1),
                batch["weights"].reshape(flat, -1),
                self.num_actions,
            )
            terms = mpo_losses(
                logits,
                target_logits,
                mask,
                target,
                batch["advantages"].reshape(flat, -1),
                self.log_temperature,
                self.log_alpha,
                spo.epsilon,
                spo.epsilon_alpha,
            )
        critic_loss = 0.5 * ((values - returns) ** 2).mean()
        loss = terms.total + spo.critic_coef * critic_loss
        self.optimizer.zero_grad()
        self.dual_optimizer.zero_grad()
        loss.backward()
        self.world.average_gradients([*self.agent.parameters(), *self.duals])
        max_norm = spo.spo_max_grad_norm if spo.spo_max_grad_norm > 0 else math.inf
        grad_norm = nn.utils.clip_grad_norm_(self.agent.parameters(), max_norm)
        nn.utils.clip_grad_norm_(self.duals, max_norm)
        self.optimizer.step()
        self.dual_optimizer.step()
        clip_duals(*self.duals)
        with torch.no_grad():
            online = list(self.agent.parameters()) + list(self.agent.buffers())
            target_params = list(self.target_agent.parameters()) + list(self.target_agent.buffers())
            torch._foreach_lerp_(
                [t for t in target_params if t.is_floating_point()],
                [o for o in online if o.is_floating_point()],
                spo.tau,
            )
            # Realised E-step KL of the stored targets: sum_n w log(N w).
            w = batch["weights"].reshape(flat, -1)
            kl_np = torch.where(w > 0, w * torch.log(w * w.shape[-1]), torch.zeros_like(w))
        extra = {} if terms.kl_std is None else {"kl_std": terms.kl_std.detach()}
        return {
            "policy_loss": terms.policy.detach(),
            "temperature_loss": terms.temperature.detach(),
            "kl_penalty": terms.kl_penalty.detach(),
            "alpha_loss": terms.alpha.detach(),
            "kl": terms.kl.detach(),
            **extra,
            "critic_loss": critic_loss.detach(),
            "kl_nonparametric": kl_np.sum(-1).mean(),
            "grad_norm": grad_norm.detach(),
            "values": values.detach(),
            "returns": returns,
        }

    def _unroll(self, batch: dict[str, torch.Tensor], next_obs: dict[str, torch.Tensor]):
        """A recurrent agent's outputs on ``[L, S]`` sequences, flat: online logits
        and values, target logits and values, and the target's V of the
        bootstrap observations (continuing each step's state). Both networks
        unroll from the stored state of each sequence's first step and reset
        where an episode starts inside it."""
        done = batch["terminated"] | batch["truncated"]
        starts = torch.cat([torch.zeros_like(done[:1]), done[:-1]])
        obs, state = self._obs(batch, "obs."), batch["state"][0]
        with torch.no_grad():
            target_logits, target_values, states = self.target_agent.unroll(obs, state, starts)
            no_starts = torch.zeros(done.numel(), dtype=torch.bool, device=done.device)
            bootstrap = self.target_agent.step(next_obs, states.flatten(0, 1), no_starts)[1]
        logits, values, _ = self.agent.unroll(obs, state, starts)
        return (
            logits.flatten(0, 1),
            values.flatten(),
            target_logits.flatten(0, 1),
            target_values.flatten(),
            bootstrap,
        )

    def update(self, update: int) -> dict[str, float]:
        """``gradient_steps`` steps on replayed sequences (the learning rates are
        constant); then the rollout's observations enter the network's statistics."""
        metrics = self._learn()
        if self.rollout_obs:
            obs = {
                name: torch.from_numpy(np.stack([o[name] for o in self.rollout_obs]))
                for name in self.fields
            }
            update_observation_statistics(self.agent, obs, self.world)
            self.rollout_obs = []
        return metrics

    def _learn(self) -> dict[str, float]:
        spo = self.spo
        if not self.world.all(self.replay.can_sample(spo.sample_sequence_length)):
            return {"gradient_steps": 0, "replay_size": len(self.replay)}
        stats: dict[str, list[torch.Tensor]] = {}
        values, returns = [], []
        for _ in range(spo.gradient_steps):
            batch = self.replay.sample(
                spo.sample_sequences, spo.sample_sequence_length, self.generator
            )
            out = self.gradient_step(batch)
            values.append(out.pop("values"))
            returns.append(out.pop("returns"))
            for k, v in out.items():
                stats.setdefault(k, []).append(v)
        metrics = {k: float(torch.stack(v).mean()) for k, v in stats.items()}
        metrics["explained_variance"] = explained_variance(torch.cat(values), torch.cat(returns))
        metrics["gradient_steps"] = spo.gradient_steps
        metrics["replay_size"] = len(self.replay)
        return metrics

    def diagnostics(self) -> dict[str, float]:
        """The duals after the update."""
        out = {
            "temperature": self.temperature,
            "alpha": float(dual_value(self.log_alpha.detach()).mean()),
        }
        if self.log_alpha_std is not None:
            out["alpha_std"] = float(dual_value(self.log_alpha_std.detach()).mean())
        return out

    # ------------------------------------------------------------ evaluation
    def evaluation_policy(self, pool: Any) -> Policy:
        """Search evaluation on ``pool`` when ``eval_search`` (and a pool is given),
        else greedy over the raw policy's legal actions."""
        if pool is None or not self.spo.eval_search:
            return greedy_policy(self.agent, self.device, self.space)
        return search_policy(
            self.agent, pool, self.temperature, self.config, self.device, self.config.eval_seed
        )

    def comparison_policies(self, pool: Any) -> dict[str, Policy]:
        """The greedy comparison evaluation, logged as ``greedy_*``."""
        if pool is not None and self.spo.eval_search and self.spo.eval_compare_greedy:
            return {"greedy": greedy_policy(self.agent, self.device, self.space)}
        return {}

    @classmethod
    def saved_policy(
        cls,
        agent: nn.Module,
        pool: Any,
        config: Config,
        device: torch.device,
        source: dict[str, Any],
    ) -> tuple[Policy, str]:
        """The search with the checkpoint's temperature (a PPO checkpoint's
        agent searches at ``init_temperature``), or greedy without ``eval_search``."""
        spo = config.spo
        if not spo.eval_search:
            return greedy_policy(agent, device, ActionSpace.from_spec(pool.spec)), "greedy"
        if source["metadata"]["algo"] == "spo":
            temperature = float(dual_value(source["optimizer"]["log_temperature"]))
        else:
            temperature = spo.init_temperature
        policy = search_policy(agent, pool, temperature, config, device, config.eval_seed)
        name = (
            f"SMC search, {spo.num_particles} particles x depth {spo.search_depth}, "
            f"eta {temperature:.4g}"
        )
        return policy, name

    # ------------------------------------------------------------ checkpoints
    def optimizer_state_dict(self) -> dict[str, Any]:
        """What a fork carries besides the weights: optimisers, duals, target network."""
        state = {
            "network": self.optimizer.state_dict(),
            "duals": self.dual_optimizer.state_dict(),
            "log_temperature": self.log_temperature.detach().clone(),
            "log_alpha": self.log_alpha.detach().clone(),
            "target_network": self.target_agent.state_dict(),
        }
        if self.log_alpha_std is not None:
            state["log_alpha_std"] = self.log_alpha_std.detach().clone()
        return state

    def load_weights(self, model: dict[str, torch.Tensor]) -> None:
        """Weights from another algorithm's checkpoint: the Polyak target starts from them."""
        super().load_weights(model)
        self.target_agent.load_state_dict(self.agent.state_dict())

    def load_optimizer_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["network"])
        self.dual_optimizer.load_state_dict(state["duals"])
        self.optimizer.eps = self.dual_optimizer.eps = self.spo.spo_adam_eps
        self.optimizer.lr = self.spo.spo_learning_rate
        self.dual_optimizer.lr = self.spo.dual_learning_rate
        with torch.no_grad():
            self.log_temperature.copy_(state["log_temperature"])
            self.log_alpha.copy_(state["log_alpha"])
            if self.log_alpha_std is not None:
                self.log_alpha_std.copy_(state["log_alpha_std"])
        self.target_agent.load_state_dict(state["target_network"])

    def state_dict(self) -> dict[str, Any]:
        state = {
            "generator": self.generator.get_state(),
            "num_updates": self.num_updates,
            "replay": self.replay.state_dict(),
            **self.normalization_state_dict(),
        }
        if self.hidden is not None:
            state["hidden"] = self.hidden.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.num_updates = int(state["num_updates"])
        self.replay.load_state_dict(state["replay"])
        if self.hidden is not None and "hidden" in state:
            self.hidden.load_state_dict(state["hidden"])
        self.load_normalization_state_dict(state)
