"""Asynchronous PPO (``--algo appo``): an actor thread steps the envs through the
pool's ``send``/``recv`` while the learner updates, and V-trace corrects for
the policy lag between them (Espeholt et al. 2018; the learner's update is
PPO's, with ``advantage_estimator: vtrace`` always on).

**Threading model.** One actor thread in this process, beside the learner (the
training loop's thread), both in Python threads: the engine steps envs on its
own C++ workers and releases the GIL in ``send``/``recv``, and PyTorch releases
it inside its kernels, so the env steps, the actor's inference and the
learner's update run at the same time. Threads rather than processes because
everything they share stays in place: the pool (an env is stepped wherever
its action is sent), the rollout buffers (the actor writes them through NumPy
views, the learner reads the same memory) and the weights (copied into the
actor's network, no serialisation). What they contend for is the GIL during
Python bookkeeping, which is small beside the engine and the network.

**Stepping.** The pool is made with ``batch_size=1``: ``recv`` returns whichever
env finished first, so a slow env never holds up the others and the engine's
workers stay busy whatever the step costs. The actor gathers the envs that
wait for an action and acts for them together (``actor_batch_size`` of them,
or fewer when the engine runs short of work), one batched forward pass, one
``send``.

**Rollouts.** As in synchronous PPO a rollout is ``num_steps`` consecutive
steps of every env, ``[T, N]``, so GAE/V-trace and truncated BPTT see whole
env sequences; but every env moves through rollouts at its own pace, writing
its column of rollout k while a slower env is still in rollout k - 1. A
rollout is handed to the learner when its last env finishes it.

**Lag bound.** The learner's version v counts the updates it has applied; it
trains on rollout u with version u. Step t of rollout k is the env's position
k * T + t (T = ``num_steps``); an env may take it only while that position is
below (v + 1 + ``max_policy_lag``) * T, that is, at most ``max_policy_lag``
rollouts past the end of the rollout v the learner needs next. With a whole
lag L, an env acts for rollout k once v >= k - L, so every step is collected
by a policy at most L updates older than the one that learns from it (0: the
actor waits out every update). A fractional lag such as 0.25 lets the envs
run only the first quarter of the next rollout with the older policy: the
actor keeps stepping while the learner updates and while the slowest envs
finish their rollout, and three quarters of the data are on-policy. Rollouts
live in ``ceil(max_policy_lag) + 1`` buffers, rollout k in buffer k mod that;
the bound also guarantees that a buffer is free again before an env writes
into it.

**V-trace.** The learner re-evaluates each rollout with its current network
(log-probs, values, V(final_obs) of truncated steps, a recurrent state
unrolled from the stored one) and takes the clipped importance weights
against the behaviour log-probs the actor recorded.

**Checkpoints** pause the actor: ``state_dict`` stops sending, receives every
step in flight and waits, so that the envs can be saved; the actor resumes at
the next ``collect``. A checkpoint holds the learner's state, each env's
hidden state and the envs; a resumed run starts new rollouts from there (the
steps of rollouts not yet learned from are not in it). Asynchronous runs are
not bit-reproducible: which env finishes first depends on timing.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from trainer.algorithm import Rollout
from trainer.config import Config
from trainer.distributed import World
from trainer.ppo import PPO
from trainer.storage import RolloutStorage


class AsyncPPO(PPO):
    """PPO whose rollouts an actor thread collects while the learner updates."""

    ASYNC_POOL = True
    PER_RANK_STATE = ("generator", "hidden", "actor_generator")

    def __init__(
        self,
        config: Config,
        envs: Any,
        agent: nn.Module,
        device: torch.device,
        world: World | None = None,
    ) -> None:
        super().__init__(config, envs, agent, device, world)
        if envs.pool.batch_size != 1:
            raise ValueError(
                "appo steps its envs with recv() of one env: make the pool with batch_size=1"
            )
        self.vtrace = True
        self.lag = config.appo.max_policy_lag
        # An env may take step t of rollout k while k * num_steps + t is below
        # version * num_steps + lead (the module docstring's lag bound).
        self.lead = math.ceil((1 + self.lag) * config.num_steps - 1e-9)
        self.batch = config.appo.actor_batch_size or max(config.num_envs // 2, 1)
        state_size = self.storage.state_size
        cpu = torch.device("cpu")
        self.buffers = [
            RolloutStorage(
                envs.spec,
                config.num_steps,
                config.num_envs,
                cpu,
                state_size=state_size,
                final_obs=True,
            )
            for _ in range(math.ceil(self.lag) + 1)
        ]
        # The learner's copy of a buffer on its device (the buffer itself on the CPU).
        self.device_storage = (
            None
            if torch.device(device).type == "cpu"
            else RolloutStorage(
                envs.spec,
                config.num_steps,
                config.num_envs,
                device,
                state_size=state_size,
                final_obs=True,
            )
        )
        self.versions = [
            np.zeros((config.num_steps, config.num_envs), np.int64) for _ in self.buffers
        ]
        self.actor_agent = copy.deepcopy(agent).requires_grad_(False)
        self.actor_generator = torch.Generator(device).manual_seed(config.seed + 1)
        self._cond = threading.Condition()  # guards the counters below
        self._net_lock = threading.Lock()  # the actor's network: forward passes vs weight copies
        self._version = 0  # updates published to the actor
        self._consumed = 0  # rollouts handed to the learner
        self._complete = 0  # rollouts every env has finished
        self._episodes: dict[int, list[tuple[float, int]]] = {}
        self._times = np.zeros(4)  # actor seconds: recv, network, waiting on the lag bound, all
        self._times_reported = np.zeros(4)
        self._thread: threading.Thread | None = None
        self._stop = self._pause = self._paused = False
        self._error: BaseException | None = None

    # ------------------------------------------------------------ learner side
    def collect(self) -> Rollout:
        """Wait for the next rollout the actor completes (starting the actor the
        first time, resuming it after a checkpoint)."""
        start = time.perf_counter()
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._actor, name="appo-actor", daemon=True)
                self._thread.start()
            self._pause = False
            self._cond.notify_all()
            while self._complete <= self._consumed and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise RuntimeError("the appo actor failed") from self._error
            episodes = self._episodes.pop(self._consumed, [])
        times = self._times.copy()
        recv, network, waiting, total = times - self._times_reported
        self._times_reported = times
        buffer = self.buffers[self._consumed % len(self.buffers)]
        if self.device_storage is None:
            self.storage = buffer
        else:
            self.storage = self.device_storage
            for name in ("actions", "logprobs", "rewards", "terminated", "truncated"):
                getattr(self.storage, name).copy_(getattr(buffer, name))
            for mine, theirs in (
                (self.storage.obs, buffer.obs),
                (self.storage.final_obs, buffer.final_obs),
            ):
                for name, tensor in mine.items():
                    tensor.copy_(theirs[name])
            if buffer.state_size:
                self.storage.initial_state.copy_(buffer.initial_state)
                self.storage.starts.copy_(buffer.starts)
        returns = np.array([r for r, _ in episodes], np.float64)
        lengths = np.array([n for _, n in episodes], np.int64)
        return {
            "episode_returns": returns,
            "episode_lengths": lengths,
            "rollout_time": time.perf_counter() - start,  # the learner's wait
            "env_time": recv,  # the actor's, since the last rollout
            "inference_time": network,
            "storage_time": max(total - recv - network - waiting, 0.0),
            "trainer": {"actor_lag_wait_fraction": waiting / max(total, 1e-9)},
        }

    def update(self, update: int) -> dict[str, float]:
        """PPO's update with V-trace on the collected rollout; then the new weights
        go to the actor and the rollout's buffer is free again."""
        metrics = super().update(update)
        lag = self._consumed - self.versions[self._consumed % len(self.buffers)]
        metrics["policy_lag_mean"] = float(lag.mean())
        metrics["policy_lag_max"] = int(lag.max())
        with self._net_lock:
            with torch.no_grad():
                for mine, theirs in zip(self.actor_agent.parameters(), self.agent.parameters()):
                    mine.copy_(theirs)
                for mine, theirs in zip(self.actor_agent.buffers(), self.agent.buffers()):
                    mine.copy_(theirs)
            with self._cond:
                self._version += 1
                self._consumed += 1
                self._cond.notify_all()
        return metrics

    def _pause_actor(self) -> None:
        """Stop the actor sending; return once nothing is in flight."""
        with self._cond:
            if self._thread is None:
                return
            self._pause = True
            self._cond.notify_all()
            while not self._paused and self._error is None:
                self._cond.wait()

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # -------------------------------------------------------------- the actor
    def _actor(self) -> None:
        try:
            _Actor(self).run()
        except BaseException as error:  # handed to the learner, which raises it
            with self._cond:
                self._error = error
                self._cond.notify_all()

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Pauses the actor (see the module docstring), then PPO's state with the
        actor's sampler and each env's hidden state."""
        self._pause_actor()
        state = super().state_dict()
        state["actor_generator"] = self.actor_generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "actor_generator" in state:
            self.actor_generator.set_state(state["actor_generator"])
        with torch.no_grad():
            for mine, theirs in zip(self.actor_agent.parameters(), self.agent.parameters()):
                mine.copy_(theirs)

    def load_optimizer_state_dict(self, state: dict[str, Any]) -> None:
        super().load_optimizer_state_dict(state)
        self.actor_agent.load_state_dict(self.agent.state_dict())

    def load_weights(self, model: dict[str, torch.Tensor]) -> None:
        super().load_weights(model)
        self.actor_agent.load_state_dict(self.agent.state_dict())


class _Actor:
    """The actor thread's loop and bookkeeping (see the module docstring).

    Per env: ``rollout[e]`` and ``step[e]`` place its next step, ``waiting[e]``
    says it has an observation and no action in flight, ``obs`` holds its
    current observation and ``starts[e]`` whether that begins an episode.
    """

    def __init__(self, algo: AsyncPPO) -> None:
        self.algo = algo
        self.pool, self.device = algo.envs.pool, algo.device
        self.num_envs, self.num_steps = algo.config.num_envs, algo.config.num_steps
        self.buffers = algo.buffers
        self.views = [self._views(b) for b in algo.buffers]
        self.obs = {name: np.array(view) for name, view in algo.envs.obs.items()}
        self.rollout = np.zeros(self.num_envs, np.int64) + algo._consumed
        self.step = np.zeros(self.num_envs, np.int64)
        self.waiting = np.ones(self.num_envs, bool)
        self.in_flight = 0
        self.finished = np.zeros(
            len(algo.buffers), np.int64
        )  # envs done with each buffer's rollout
        self.hidden = algo.hidden
        self.starts = None if self.hidden is None else self.hidden.starts.cpu().numpy().copy()
        self.has_mask = algo.has_mask

    @staticmethod
    def _views(buffer: RolloutStorage) -> dict[str, Any]:
        views = {
            "obs": {name: t.numpy() for name, t in buffer.obs.items()},
            "final_obs": {name: t.numpy() for name, t in buffer.final_obs.items()},
        }
        for name in ("actions", "logprobs", "rewards", "terminated", "truncated"):
            views[name] = getattr(buffer, name).numpy()
        if buffer.state_size:
            views["starts"] = buffer.starts.numpy()
            views["initial_state"] = buffer.initial_state.numpy()
        return views

    def run(self) -> None:
        algo = self.algo
        started = time.perf_counter()
        while True:
            with algo._cond:
                if algo._stop:
                    break
                if algo._pause and self.in_flight == 0:
                    self._sync_hidden()
                    algo._paused = True
                    algo._cond.notify_all()
                    while algo._pause and not algo._stop:
                        algo._cond.wait()
                    algo._paused = False
                    continue
                version = algo._version
                sending = not algo._pause
            position = self.rollout * self.num_steps + self.step
            allowed = position < version * self.num_steps + algo.lead
            ready = np.flatnonzero(self.waiting & allowed) if sending else []
            if len(ready) and (len(ready) >= algo.batch or self.in_flight < algo.batch):
                self._act(ready)
            if self.in_flight == 0:  # every env waits for the learner
                tick = time.perf_counter()
                with algo._cond:
                    while algo._version == version and not (algo._stop or algo._pause):
                        algo._cond.wait()
                algo._times[2] += time.perf_counter() - tick
            else:
                self._receive()
            algo._times[3] = time.perf_counter() - started
        while self.in_flight:  # leave nothing in flight for the pool's close
            self._receive()
        self._sync_hidden()

    def _sync_hidden(self) -> None:
        if self.hidden is not None:
            self.hidden.starts = torch.from_numpy(self.starts.copy()).to(self.hidden.starts.device)

    def _act(self, envs: np.ndarray) -> None:
        """Act for ``envs`` (each at its next step): record their observations,
        sample their actions with the actor's network, send them."""
        algo = self.algo
        tick = time.perf_counter()
        slots = self.rollout[envs] % len(self.buffers)
        rows = self.step[envs]
        obs = {name: v[envs] for name, v in self.obs.items()}
        tensors = {name: torch.from_numpy(v).to(self.device) for name, v in obs.items()}
        with algo._net_lock, torch.no_grad():
            version = algo._version
            if self.hidden is None:
                logits = algo.actor_agent.logits(tensors)
            else:
                state = self.hidden.state[torch.from_numpy(envs).to(self.device)]
                starts = torch.from_numpy(self.starts[envs]).to(self.device)
                logits, _, new_state = algo.actor_agent.step(tensors, state, starts)
            dist = algo.space.distribution(logits, tensors.get("action_mask"))
            actions = dist.sample(algo.actor_generator)
            logprobs = dist.log_prob(actions).cpu().numpy()
            env_actions = algo.space.to_env(actions)  # (Box: clipped to the bounds)
            actions = actions.cpu().numpy()
        for slot in np.unique(slots):
            mine = slots == slot
            e, t, view = envs[mine], rows[mine], self.views[slot]
            for name, v in obs.items():
                view["obs"][name][t, e] = v[mine]
            view["actions"][t, e] = actions[mine]
            view["logprobs"][t, e] = logprobs[mine]
            algo.versions[slot][t, e] = version
            if self.hidden is not None:
                view["starts"][t, e] = self.starts[e]
                first = t == 0
                view["initial_state"][e[first]] = self.hidden.state[e[first]].cpu().numpy()
        if self.hidden is not None:
            self.hidden.state[torch.from_numpy(envs).to(self.device)] = new_state
            self.starts[envs] = False
        algo._times[1] += time.perf_counter() - tick
        self.pool.send(env_actions, envs)
        self.waiting[envs] = False
        self.in_flight += len(envs)

    def _receive(self) -> None:
        """One env's step result into its rollout; hand over a finished rollout."""
        algo = self.algo
        tick = time.perf_counter()
        obs, reward, terminated, truncated, info = self.pool.recv()
        algo._times[0] += time.perf_counter() - tick
        e = int(info["env_id"][0])
        slot, t = int(self.rollout[e] % len(self.buffers)), int(self.step[e])
        view = self.views[slot]
        view["rewards"][t, e] = reward[0]
        view["terminated"][t, e] = terminated[0]
        view["truncated"][t, e] = truncated[0]
        done = bool(terminated[0] or truncated[0])
        if done:
            episode = (float(info["episode_return"][0]), int(info["episode_length"][0]))
            algo._episodes.setdefault(int(self.rollout[e]), []).append(episode)
        if truncated[0]:
            for name, v in info["final_obs"].items():
                view["final_obs"][name][t, e] = v[0]
        for name, v in obs.items():
            self.obs[name][e] = v[0]
        if self.starts is not None:
            self.starts[e] = done
        algo.envs.env_steps += 1
        self.step[e] += 1
        self.waiting[e] = True
        self.in_flight -= 1
        if self.step[e] == self.num_steps:  # this env is done with the rollout
            for name, v in obs.items():
                view["obs"][name][self.num_steps, e] = v[0]
            self.step[e] = 0
            self.rollout[e] += 1
            self.finished[slot] += 1
            if self.finished[slot] == self.num_envs:
                self.finished[slot] = 0
                with algo._cond:
                    algo._complete += 1
                    algo._cond.notify_all()
