"""Sequential Monte Carlo search for SPO (Macfarlane et al., NeurIPS 2024).

At every real step, for every env, the search:

1. samples N particle root actions from the masked policy, mixed with
   Dirichlet noise over the *legal* actions only (Box actions: N Gaussian
   proposals from the policy, with no noise);
2. forks the live state into N snapshots and steps them D times with
   ``pool.simulate`` (no auto-reset; ended particles are absorbing);
3. accumulates log-weights from one-step advantages
   ``r + gamma * V(s') - V(s)`` (``V(s') = 0`` after termination), frozen once
   a particle has ended;
4. resamples multinomially from ``softmax(W / eta)`` on a period or an ESS
   rule, carrying each particle's *whole lineage* along: snapshot id, root
   action, value, terminal flag, next action;
5. reads out the target ``q(a) = sum_n w_n [root_action_n == a]`` (Box
   actions: the particles' weighted root actions themselves, whose mean is
   the greedy action);
6. releases every snapshot it created.

Network calls are batched over all B*N particles. The search uses only the
public pool API (snapshot, simulate, release), so it runs on any task that
supports snapshots. Particles carry their actions in the stored form (Box:
the unclipped Gaussian samples); ``pool.simulate`` gets them as the env takes
them (``ActionSpace.to_env``: clipped to the bounds).

A recurrent policy (``root_state`` given) is searched the same way: the
snapshot holds the env, the particle holds the network's hidden state. The
root observations are consumed from ``root_state`` (each env's state before
them, already reset where an episode starts), every particle starts from the
state that leaves, steps it with each simulated observation, and resampling
carries it along with the rest of the lineage. ``SearchResult.root_state`` is
the state after the root observations: the env's own next state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from trainer.distributions import ActionSpace, DiagGaussian

# policy_value(obs) -> (policy parameters [M, P], values [M]) for a batch of M
# observations: the logits of a discrete task, a Box task's means and log-stds;
# for a recurrent policy policy_value(obs, state [M, S]) -> (parameters, values,
# next state [M, S]).
PolicyValueFn = Callable[..., tuple[torch.Tensor, ...]]


@dataclass
class SearchConfig:
    num_particles: int = 16
    """Particles per env (N)."""
    depth: int = 4
    """Simulated steps per particle (D)."""
    resample_period: int = 4
    """Resample every this many depth steps (0: never on a period)."""
    resample_ess_threshold: float = 0.0
    """Also resample an env whose effective sample size falls below this fraction of N (0: off)."""
    gamma: float = 1.0
    """Discount inside the search."""
    gae_lambda: float = 1.0
    """GAE lambda of the per-particle advantages kept for the temperature loss."""
    dirichlet_alpha: float = 0.03
    """Concentration of the root Dirichlet noise."""
    dirichlet_fraction: float = 0.25
    """Weight of the root noise (0: none)."""


@dataclass
class SearchResult:
    target: torch.Tensor | None  # [B, A] search policy over discrete actions (Box: None)
    root_actions: torch.Tensor  # [B, N, *action shape] root action of each final particle
    weights: torch.Tensor  # [B, N] normalised final particle weights
    advantages: torch.Tensor  # [B, N] per-particle advantages before any resampling
    root_values: torch.Tensor  # [B] V(root)
    leaf_ids: np.ndarray  # [B*N] final particles' state ids (already released)
    ess: list[float] = field(default_factory=list)  # mean ESS / N per depth, before resampling
    root_state: torch.Tensor | None = None  # [B, S] recurrent state after the root observations
    simulate_seconds: float = 0.0
    network_seconds: float = 0.0
    total_seconds: float = 0.0

    def act(self, greedy: bool, generator: torch.Generator | None = None) -> np.ndarray:
        """The real action per env: argmax of the target, or a sample from it.

        Box actions (no dense target; stored form, unclipped): a sample picks a
        particle by its weight and returns its root action; greedy returns the
        target's mean, the weighted mean of the root actions.
        """
        if self.target is None:
            return self._act_particles(greedy, generator)
        if greedy:
            chosen = self.target.argmax(dim=1)
        else:
            chosen = torch.multinomial(self.target.cpu(), 1, generator=generator).squeeze(1)
        return chosen.to(torch.int64).cpu().numpy()

    def _act_particles(self, greedy: bool, generator: torch.Generator | None) -> np.ndarray:
        weights, roots = self.weights.cpu(), self.root_actions.cpu()
        if greedy:
            w = weights.reshape(*weights.shape, *[1] * (roots.dim() - 2))
            return (w * roots).sum(1).numpy()
        chosen = torch.multinomial(weights, 1, generator=generator).squeeze(1)
        return roots[torch.arange(len(roots)), chosen].numpy()


def masked_logits(logits: torch.Tensor, obs: dict[str, np.ndarray]) -> torch.Tensor:
    """Illegal actions (action_mask False) get -inf."""
    if "action_mask" not in obs:
        return logits
    mask = torch.as_tensor(
        np.asarray(obs["action_mask"]).reshape(logits.shape), device=logits.device
    )
    return logits.masked_fill(~mask, float("-inf"))


def legal_dirichlet_mix(
    probs: torch.Tensor,
    legal: torch.Tensor,
    alpha: float,
    fraction: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """(1 - fraction) * probs + fraction * Dirichlet(alpha) over the legal actions only."""
    if fraction <= 0.0:
        return probs
    # A Dirichlet sample is normalised Gamma(alpha) draws; illegal actions get none.
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    draws = np.random.default_rng(seed).gamma(alpha, size=tuple(probs.shape))
    draws = torch.as_tensor(draws, dtype=probs.dtype, device=probs.device) * legal
    total = draws.sum(dim=1, keepdim=True)
    # A row whose draws all underflowed falls back to uniform over its legal actions.
    uniform = legal / legal.sum(dim=1, keepdim=True)
    noise = torch.where(total > 0, draws / total.clamp_min(1e-300), uniform)
    return (1.0 - fraction) * probs + fraction * noise


def _pick(x: torch.Tensor, picks: torch.Tensor) -> torch.Tensor:
    """``x[b, picks[b, n], ...]``: particle rows ``[B, N, ...]`` reordered per env."""
    return x[torch.arange(len(x), device=x.device)[:, None], picks]


def _next_actions(
    params: torch.Tensor,
    obs: dict[str, np.ndarray],
    batch: int,
    n: int,
    space: ActionSpace,
    generator: torch.Generator,
) -> torch.Tensor:
    """One action per particle from the policy at its new state: ``[B, N, *shape]``."""
    device = params.device
    if space.continuous:
        sample = DiagGaussian.from_params(params.float(), space.box_shape).sample(generator)
        return sample.reshape(batch, n, *space.shape)
    next_logits = masked_logits(params.float(), obs)
    # Ended particles' rows may be all illegal (e.g. a finished BinPack), so
    # give them any action.
    safe_logits = torch.where(
        torch.isfinite(next_logits).any(dim=1, keepdim=True),
        next_logits,
        torch.zeros_like(next_logits),
    )
    return (
        torch.multinomial(torch.softmax(safe_logits, dim=1).cpu(), 1, generator=generator)
        .reshape(batch, n)
        .to(device)
    )


def smc_search(
    pool,
    root_obs: dict[str, np.ndarray],
    policy_value: PolicyValueFn,
    temperature: float,
    config: SearchConfig,
    generator: torch.Generator,
    env_ids: np.ndarray | None = None,
    root_state: torch.Tensor | None = None,
    space: ActionSpace | None = None,
) -> SearchResult:
    """Run one SMC search from the live envs ``env_ids`` (default: all) of ``pool``.

    ``root_obs`` holds those envs' current observations. ``temperature`` is
    eta > 0. ``root_state`` (a recurrent policy's) is each env's hidden state
    before its root observation. ``space`` is the task's action space (None:
    discrete). Returns the search target and what the losses need; leaves the
    pool's snapshot count as it found it.
    """
    started = time.perf_counter()
    sim_seconds = net_seconds = 0.0
    n = config.num_particles
    eta = float(temperature)
    space = space or ActionSpace("discrete")

    t = time.perf_counter()
    with torch.no_grad():
        if root_state is None:
            params, root_values = policy_value(root_obs)
        else:
            params, root_values, root_state = policy_value(root_obs, root_state)
    net_seconds += time.perf_counter() - t
    batch, device = params.shape[0], params.device
    num_actions = 0
    if space.continuous:  # Gaussian proposals straight from the policy
        root_dist = DiagGaussian.from_params(params.float(), space.box_shape)
        root_actions = root_dist.sample(generator, num=n)
    else:
        logits = masked_logits(params.float(), root_obs)
        num_actions = logits.shape[1]
        legal = torch.isfinite(logits).to(logits.dtype)
        probs = torch.softmax(logits, dim=1)
        probs = legal_dirichlet_mix(
            probs.cpu(), legal.cpu(), config.dirichlet_alpha, config.dirichlet_fraction, generator
        )
        root_actions = torch.multinomial(probs, n, replacement=True, generator=generator)
        root_actions = root_actions.to(device)

    t = time.perf_counter()
    roots = pool.snapshot(env_ids)
    sim_seconds += time.perf_counter() - t
    ids = np.repeat(roots, n)
    to_release = [roots]
    states = None if root_state is None else root_state.repeat_interleave(n, dim=0)

    log_w = torch.zeros(batch, n, device=device)
    terminal = torch.zeros(batch, n, dtype=torch.bool, device=device)
    values = root_values.float().reshape(batch, 1).expand(batch, n).clone()
    gae = torch.zeros(batch, n, device=device)
    discount_power = torch.ones(batch, n, device=device)  # (gamma * lambda)^steps, per particle
    advantages: torch.Tensor | None = None
    actions = root_actions.clone()
    ess_per_depth: list[float] = []
    rows = np.arange(batch)[:, None] * n  # flat index of particle 0 of each env

    try:
        for d in range(config.depth):
            t = time.perf_counter()
            obs, reward, terminated, truncated, new_ids = pool.simulate(
                ids, space.to_env(actions.reshape(batch * n, *space.shape))
            )
            sim_seconds += time.perf_counter() - t
            to_release.append(new_ids)
            obs = {k: v.copy() for k, v in obs.items()}  # the next simulate rewrites the views
            r = torch.as_tensor(reward.copy(), device=device).reshape(batch, n)
            term = torch.as_tensor(terminated.copy(), device=device).reshape(batch, n)
            ended = term | torch.as_tensor(truncated.copy(), device=device).reshape(batch, n)

            t = time.perf_counter()
            with torch.no_grad():
                if states is None:
                    next_params, next_values = policy_value(obs)
                else:
                    next_params, next_values, states = policy_value(obs, states)
            net_seconds += time.perf_counter() - t
            next_values = next_values.float().reshape(batch, n)
            # A particle that ended earlier is frozen: it adds nothing more.
            alive = ~terminal
            bootstrap = config.gamma * next_values * (~term)  # truncation still bootstraps
            delta = (r + bootstrap - values) * alive
            log_w = log_w + delta
            gae = gae + delta * discount_power
            discount_power = discount_power * config.gamma * config.gae_lambda
            terminal = terminal | ended
            values = next_values
            actions = _next_actions(next_params, obs, batch, n, space, generator)
            ids = new_ids

            weights = torch.softmax(log_w / eta, dim=1)
            ess = 1.0 / (weights**2).sum(dim=1)  # [B]
            ess_per_depth.append(float((ess / n).mean()))
            resample = torch.zeros(batch, dtype=torch.bool, device=device)
            if config.resample_period > 0 and (d + 1) % config.resample_period == 0:
                resample[:] = True
            if config.resample_ess_threshold > 0:
                resample |= ess < config.resample_ess_threshold * n
            if resample.any():
                if advantages is None:
                    advantages = gae.clone()  # the dual loss uses advantages under pi
                picks = torch.multinomial(weights.cpu(), n, replacement=True, generator=generator)
                picks = picks.to(device)
                keep = torch.arange(n, device=device).expand(batch, n)
                picks = torch.where(resample[:, None], picks, keep)  # [B, N] particle index
                flat = (torch.as_tensor(rows, device=device) + picks).reshape(-1).cpu().numpy()
                ids = ids[flat]
                if states is not None:
                    states = states[torch.as_tensor(flat, device=states.device)]
                root_actions = _pick(root_actions, picks)
                actions = _pick(actions, picks)
                values = torch.gather(values, 1, picks)
                terminal = torch.gather(terminal, 1, picks)
                gae = torch.gather(gae, 1, picks)
                discount_power = torch.gather(discount_power, 1, picks)
                log_w = torch.where(resample[:, None], torch.zeros_like(log_w), log_w)
    finally:
        t = time.perf_counter()
        pool.release(np.concatenate(to_release))
        sim_seconds += time.perf_counter() - t

    weights = torch.softmax(log_w / eta, dim=1)
    target = None
    if not space.continuous:
        target = torch.zeros(batch, num_actions, device=device)
        target.scatter_add_(1, root_actions, weights)
    return SearchResult(
        target=target,
        root_actions=root_actions,
        weights=weights,
        advantages=gae if advantages is None else advantages,
        root_values=root_values.float().reshape(batch),
        leaf_ids=ids,
        ess=ess_per_depth,
        root_state=root_state,
        simulate_seconds=sim_seconds,
        network_seconds=net_seconds,
        total_seconds=time.perf_counter() - started,
    )
