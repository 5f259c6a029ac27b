"""The training loop of one run directory: a new run, a resumed one or a fork.

    trainer = Trainer.new(config, run_dir)   # or Trainer.resume(run_dir), Trainer.fork(...)
    summary = trainer.run()
    trainer.close()

Each update is ``algorithm.iteration`` (a rollout, then optimisation), then the
TRAINER / ACTOR / MISC events, an evaluation when its interval is crossed (and
after the last update), and a checkpoint when its interval is crossed, at a new
best evaluation, after the last update and when the run stops early.

Evaluations and checkpoints consume no training randomness and touch no
training state, so their cadence never changes the trajectory: a run that is
stopped (``max_updates``, Ctrl-C, SIGTERM) and resumed is bit-identical to one
that never stopped. A resume may change only the step budget; the learning
rate then decays from its current value over the new remainder.

Run directory::

    runs/<run>/config.yaml   the frozen, fully resolved config
               metrics.jsonl  one JSON event per line (see telemetry)
               learning_curve.png, tensorboard/, checkpoints/ (see checkpoint)
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import pyenvpool
from trainer import checkpoint
from trainer.config import Config, apply, dump, evaluation_task_kwargs, finalize, load_yaml, to_dict
from trainer.envs import TrainingEnvs
from trainer.evaluate import Evaluator
from trainer.networks import architecture_record, build_agent
from trainer.ppo import PPO
from trainer.selfplay import self_play_envs
from trainer.spo import SPO
from trainer.telemetry import Telemetry

# An algorithm is built as ``cls(config, envs, agent, device)`` and provides:
#   num_updates, set_total_steps(total_steps, update), iteration(update) -> dict
#   (episode_returns, episode_lengths, the MISC timings, "trainer": TRAINER
#   metrics), evaluation_policy(pool) -> obs -> actions (``pool`` is the
#   evaluation pool, for policies that search on it), optionally
#   extra_evaluation_policies(pool) -> {prefix: policy} (comparison evaluations
#   logged as ``<prefix>_<metric>``), optimizer_state_dict() /
#   load_optimizer_state_dict(), state_dict() / load_state_dict() (its RNG and
#   schedule). The loop, evaluation, checkpoints and telemetry are shared.
ALGORITHMS: dict[str, Callable[..., Any]] = {"ppo": PPO, "spo": SPO}
ACTOR_WINDOW = 100  # training episodes the ACTOR statistics average over


class RunError(RuntimeError):
    """The run directory cannot be used the way it was asked for."""


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RunError(f"--device {name} was requested, but PyTorch sees no CUDA device")
    return torch.device(name)


def load_run_config(run_dir: Path) -> Config:
    """The frozen config of an existing run."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise RunError(f"{run_dir} is not a run directory (no config.yaml)")
    return finalize(apply(Config(), load_yaml(path), str(path)))


@dataclasses.dataclass
class Counters:
    """Progress of a run; saved in every checkpoint."""

    update: int = 0
    env_steps: int = 0
    wall_time: float = 0.0
    train_time: float = 0.0
    total_episodes: int = 0
    best_return: float | None = None
    best_env_steps: int | None = None


class Trainer:
    """Everything one run owns: envs, agent, algorithm, evaluator, telemetry, checkpoints."""

    def __init__(
        self,
        config: Config,
        run_dir: Path,
        *,
        resume_from: dict[str, Any] | None = None,
        fork_from: dict[str, Any] | None = None,
        progress: bool | None = None,
    ) -> None:
        self.config, self.run_dir = config, run_dir
        torch.set_num_threads(config.torch_threads)
        torch.manual_seed(config.seed)
        np.random.seed(config.seed % 2**32)
        self.device = select_device(config.device)
        envs_class = self_play_envs(config) if config.self_play else TrainingEnvs
        self.envs = envs_class(
            config.task, config.num_envs, config.seed, config.task_kwargs, config.env_threads
        )
        self.spec = self.envs.spec
        self.architecture = architecture_record(self.spec, config.network)
        self.agent = build_agent(self.spec, config.network).to(self.device)
        self.algo = ALGORITHMS[config.algo](config, self.envs, self.agent, self.device)
        self.batch_size = config.num_envs * config.num_steps
        self.counters = Counters()
        self.recent_returns: collections.deque = collections.deque(maxlen=ACTOR_WINDOW)
        self.recent_lengths: collections.deque = collections.deque(maxlen=ACTOR_WINDOW)
        self.forked_from: str | None = None
        self.evaluator: Evaluator | None = None
        self.last_saved_step: int | None = None
        if resume_from is not None:
            self._load(resume_from)
        elif fork_from is not None:
            checkpoint.check_compatible(
                fork_from["metadata"], config.task, config.algo, self.architecture
            )
            self.agent.load_state_dict(fork_from["model"])
            self.algo.load_optimizer_state_dict(fork_from["optimizer"])
            self.forked_from = str(fork_from["path"])
        self.algo.set_total_steps(config.total_steps, self.counters.update)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(dump(config))
        self.telemetry = Telemetry(
            run_dir,
            total_steps=self.algo.num_updates * self.batch_size,
            start_env_steps=self.counters.env_steps,
            resume=resume_from is not None,
            tensorboard=config.tensorboard,
            progress=progress,
            console_interval=config.console_interval,
            title=f"{config.task} {config.algo}",
            plot=config.plot,
        )
        self._session_start = time.monotonic()
        self._wall_offset = self.counters.wall_time

    # ------------------------------------------------------------ creation
    @classmethod
    def new(cls, config: Config, run_dir: Path, **kwargs: Any) -> Trainer:
        if (run_dir / "config.yaml").exists():
            raise RunError(f"{run_dir} already holds a run; continue it with --resume {run_dir}")
        return cls(config, run_dir, **kwargs)

    @classmethod
    def resume(cls, run_dir: Path, total_steps: int | None = None, **kwargs: Any) -> Trainer:
        config = load_run_config(run_dir)
        if total_steps is not None:
            config = finalize(apply(config, {"total_steps": total_steps}, "--total-steps"))
        latest = checkpoint.pointer(run_dir / "checkpoints", "latest")
        if latest is None:
            raise RunError(
                f"{run_dir} has no checkpoint to resume from (checkpoints/latest is missing)"
            )
        # A resume continues *this* run: its pointer may not lead elsewhere.
        inside = (run_dir / "checkpoints").resolve()
        if Path(latest).resolve().parent != inside:
            raise RunError(
                f"{run_dir}/checkpoints/latest points outside the run ({latest}); "
                "refusing to resume"
            )
        return cls(
            config,
            run_dir,
            resume_from=checkpoint.load(latest, select_device(config.device)),
            **kwargs,
        )

    @classmethod
    def fork(cls, source: dict[str, Any], config: Config, run_dir: Path, **kwargs: Any) -> Trainer:
        if (run_dir / "config.yaml").exists():
            raise RunError(f"{run_dir} already holds a run; fork into a new --run-dir")
        return cls(config, run_dir, fork_from=source, **kwargs)

    # ---------------------------------------------------------------- loop
    @property
    def wall_time(self) -> float:
        return self._wall_offset + time.monotonic() - self._session_start

    def run(self, max_updates: int | None = None) -> dict[str, Any]:
        """Train until the step budget, ``target_return``, ``max_updates`` more
        updates, or an interrupt; always ends with a checkpoint."""
        config, c = self.config, self.counters
        last_eval: dict[str, Any] | None = None
        stop_reason = "budget"
        done_updates = 0
        speed = 0.0
        with _stop_requests(self.telemetry.print) as stop_requested:
            while c.update < self.algo.num_updates:
                if stop_requested():
                    stop_reason = "interrupted"
                    break
                if max_updates is not None and done_updates >= max_updates:
                    stop_reason = "paused"
                    break
                start = time.perf_counter()
                iteration = self.algo.iteration(c.update)
                elapsed = time.perf_counter() - start
                c.update += 1
                c.env_steps += self.batch_size
                c.train_time += elapsed
                done_updates += 1
                speed = (
                    self.batch_size / elapsed
                    if speed == 0
                    else 0.8 * speed + 0.2 * self.batch_size / elapsed
                )
                self._log_iteration(iteration, elapsed)
                final = c.update >= self.algo.num_updates
                result = None
                if final or _crossed(c.env_steps, self.batch_size, config.eval_interval):
                    result = last_eval = self.evaluate()
                score = None if result is None else result.get("mean_return")
                new_best = score is not None and (c.best_return is None or score > c.best_return)
                if new_best:
                    c.best_return, c.best_env_steps = score, c.env_steps
                if (
                    final
                    or new_best
                    or _crossed(c.env_steps, self.batch_size, config.checkpoint_interval)
                ):
                    self.save(result, best=new_best)
                self.telemetry.progress(c.env_steps, speed)
                target = config.target_return
                if score is not None and target is not None and score >= target:
                    stop_reason = "target_return"
                    break
        if self.last_saved_step != c.env_steps:
            self.save(None)
        self.telemetry.plot(force=True)
        self.telemetry.flush()
        return {
            "run_dir": str(self.run_dir),
            "stop_reason": stop_reason,
            "env_steps": c.env_steps,
            "updates": c.update,
            "train_time": c.train_time,
            "wall_time": self.wall_time,
            "last_eval": last_eval,
            "best_return": c.best_return,
            "best_env_steps": c.best_env_steps,
        }

    def _log_iteration(self, it: dict[str, Any], elapsed: float) -> None:
        c = self.counters
        returns, lengths = it["episode_returns"], it["episode_lengths"]
        c.total_episodes += int(returns.size)
        self.recent_returns.extend(returns.tolist())
        self.recent_lengths.extend(lengths.tolist())
        actor: dict[str, Any] = {"episodes": int(returns.size), "total_episodes": c.total_episodes}
        if self.recent_returns:
            window, window_lengths = np.array(self.recent_returns), np.array(self.recent_lengths)
            actor.update(
                mean_return=float(window.mean()),
                min_return=float(window.min()),
                max_return=float(window.max()),
                episode_length_mean=float(window_lengths.mean()),
            )
        actor["steps_per_second"] = self.batch_size / elapsed
        misc = {
            "rollout_time": it["rollout_time"],
            "env_time": it["env_time"],
            "inference_time": it["inference_time"],
            "storage_time": it["storage_time"],
            "update_time": it["update_time"],
            "env_steps_per_second": self.batch_size / max(it["env_time"], 1e-9),
        }
        echo = self.telemetry.dashboard_due()
        for category, metrics in (("TRAINER", it["trainer"]), ("ACTOR", actor), ("MISC", misc)):
            self.telemetry.log(
                category,
                c.env_steps,
                metrics,
                update=c.update,
                wall_time=self.wall_time,
                train_time=c.train_time,
                echo=echo,
            )

    # ------------------------------------------------------------ evaluate
    def evaluate(self) -> dict[str, Any]:
        """Run the evaluation protocol now; logs an EVALUATOR event and redraws the plot."""
        config = self.config
        if self.evaluator is None:
            self.evaluator = Evaluator(
                config.task,
                min(config.eval_num_envs, config.eval_episodes),
                config.eval_seed,
                evaluation_task_kwargs(config),
                config.env_threads,
            )
        pool = self.evaluator.pool
        result = self.evaluator.run(self.algo.evaluation_policy(pool), config.eval_episodes)
        extras = getattr(self.algo, "extra_evaluation_policies", lambda pool: {})(pool)
        for prefix, policy in extras.items():
            extra = self.evaluator.run(policy, config.eval_episodes)
            result.update({f"{prefix}_{k}": v for k, v in extra.items() if k != "episodes"})
        self.telemetry.log(
            "EVALUATOR",
            self.counters.env_steps,
            result,
            update=self.counters.update,
            wall_time=self.wall_time,
            train_time=self.counters.train_time,
        )
        self.telemetry.plot()
        return result

    # ---------------------------------------------------------- checkpoints
    def save(self, evaluation: dict[str, Any] | None, best: bool = False) -> Path:
        c = self.counters
        c.wall_time = self.wall_time
        state = {
            "counters": dataclasses.asdict(c),
            "recent_returns": list(self.recent_returns),
            "recent_lengths": list(self.recent_lengths),
            "algorithm": self.algo.state_dict(),
            "envs": self.envs.state_dict(),
            "rng": _rng_state(),
        }
        metadata = {
            "task": self.config.task,
            "algo": self.config.algo,
            "architecture": self.architecture,
            "update": c.update,
            "wall_time": c.wall_time,
            "train_time": c.train_time,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "evaluation": evaluation,
            "run": self.run_dir.name,
            "forked_from": self.forked_from,
            "config": to_dict(self.config),
            "versions": {"pyenvpool": pyenvpool.__version__, "torch": torch.__version__},
        }
        payload = {
            "model": self.agent.state_dict(),
            "optimizer": self.algo.optimizer_state_dict(),
            "state": state,
        }
        folder = self.run_dir / "checkpoints"
        path = checkpoint.save(folder, c.env_steps, payload, metadata)
        if best:
            checkpoint.set_pointer(folder, "best", path)
        checkpoint.prune(folder, self.config.keep_checkpoints)
        self.last_saved_step = c.env_steps
        return path

    def _load(self, source: dict[str, Any]) -> None:
        checkpoint.check_compatible(
            source["metadata"], self.config.task, self.config.algo, self.architecture
        )
        state = source["state"]
        self.agent.load_state_dict(source["model"])
        self.algo.load_optimizer_state_dict(source["optimizer"])
        self.algo.load_state_dict(state["algorithm"])
        self.envs.load_state_dict(state["envs"])
        self.counters = Counters(**state["counters"])
        self.recent_returns.extend(state["recent_returns"])
        self.recent_lengths.extend(state["recent_lengths"])
        _set_rng_state(state["rng"])
        self.last_saved_step = self.counters.env_steps

    def close(self) -> None:
        self.telemetry.close()
        self.envs.close()
        if self.evaluator is not None:
            self.evaluator.close()


def _crossed(env_steps: int, batch: int, interval: int) -> bool:
    """True when the last update crossed a multiple of ``interval`` (0: never)."""
    return interval > 0 and env_steps // interval > (env_steps - batch) // interval


def _rng_state() -> dict[str, Any]:
    numpy_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


@contextlib.contextmanager
def _stop_requests(say: Callable[[str], None]) -> Iterator[Callable[[], bool]]:
    """While active, the first SIGINT/SIGTERM asks the loop to stop after the
    current update (and save); a second SIGINT interrupts at once."""
    requested = [False]
    if threading.current_thread() is not threading.main_thread():
        yield lambda: requested[0]
        return

    def handler(signum: int, frame: Any) -> None:
        if requested[0] and signum == signal.SIGINT:
            raise KeyboardInterrupt
        requested[0] = True
        say("stopping after this update and saving a checkpoint (Ctrl-C again to abort now)")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: requested[0]
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
