"""The training loop of one run directory: a new run, a resumed one or a fork.

    trainer = Trainer.new(config, run_dir)   # or Trainer.resume(run_dir), Trainer.fork(...)
    summary = trainer.run()
    trainer.close()

Each update is ``envs.prepare_rollout`` (self-play: this rollout's opponent),
then ``algorithm.iteration`` (a rollout, then optimisation; the interface is
``trainer.algorithm``), then the TRAINER / ACTOR / MISC events, an evaluation
when its interval is crossed (and after the last update), and a checkpoint when
its interval is crossed, at a new best evaluation, after the last update and
when the run stops early.

Evaluations and checkpoints consume no training randomness and touch no
training state, so their cadence never changes the trajectory: a run that is
stopped (``max_updates``, Ctrl-C, SIGTERM) and resumed is bit-identical to one
that never stopped. A resume may change only the step budget; the learning
rate then decays from its current value over the new remainder.

Under torchrun every rank runs this loop on its own envs and a ``World``
(``trainer.distributed``) ties the ranks together: gradients are averaged,
env steps count every rank, and rank 0 alone owns the run directory,
evaluates and writes telemetry and checkpoints (with every rank's state).
Without torchrun the world has one rank and nothing changes.

Run directory::

    runs/<run>/config.yaml    the frozen, fully resolved config, written once
               resumes.jsonl  one line per resumed session: from which step, and
                              the step budget before and after (only the
                              budget may change, and config.yaml keeps the first)
               metrics.jsonl  one JSON event per line (see telemetry)
               learning_curve.png, tensorboard/, checkpoints/ (see checkpoint)

The budget in force is the one of the latest checkpoint (its metadata holds
the config it ran with), so a run resumed with ``--total-steps`` keeps the
new budget through later resumes. A run whose latest checkpoint has used its
budget (or reached ``target_return``) is finished: resuming it raises
``RunFinished`` before anything is touched.

Files that cannot be written (a read-only mount, a full disk) end the run
with a ``RunError`` that says what failed, what was kept and what to do
(``trainer.rundir``): a new run removes the directory it had just created, a
resume checks that the directory can be written before it changes anything,
and a run that fails mid-way keeps its last complete checkpoint, and the
metrics up to it (flushed before every checkpoint).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import errno
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import pyenvpool
from trainer import checkpoint, rundir
from trainer.algorithm import Algorithm, algorithm_class
from trainer.batching import Batching
from trainer.config import (
    Config,
    dump,
    evaluation_task_kwargs,
    load_config,
    override,
    to_dict,
)
from trainer.distributed import (
    DistributedError,
    World,
    mean_metrics,
    merge_rank_states,
    parameter_digest,
    rank_seed,
    split_rank_states,
    to_cpu,
)
from trainer.envs import Envs, TrainingEnvs
from trainer.evaluate import Evaluator
from trainer.networks import architecture_record, build_agent
from trainer.recording import Showcase, check_animations, gif_bytes
from trainer.rundir import RunError, StorageError
from trainer.runtime import rng_state, seed_process, select_device, set_rng_state
from trainer.selfplay import SelfPlayEnvs
from trainer.tasks import task_info
from trainer.telemetry import NullTelemetry, Telemetry

ACTOR_WINDOW = 100  # training episodes the ACTOR statistics average over
__all__ = ["RunError", "RunFinished", "Trainer", "load_run_config"]


class RunFinished(RunError):
    """A resumed run has nothing left to do (the message says why)."""


def load_run_config(run_dir: Path, total_steps: int | None = None) -> Config:
    """The config a resume of ``run_dir`` continues with: the frozen config.yaml
    with the budget of the latest checkpoint, and ``total_steps`` over that."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise RunError(f"{run_dir} is not a run directory (no config.yaml)")
    config = load_config(path)
    latest = checkpoint.pointer(run_dir / "checkpoints", "latest")
    if latest is not None and total_steps is None:
        with contextlib.suppress(checkpoint.CheckpointError):
            total_steps = checkpoint.read_metadata(latest)["config"].get("total_steps")
    return config if total_steps is None else override(config, {"total_steps": total_steps})


def training_envs(
    config: Config, seed: int, num_threads: int | None, batch_size: int | None = None
) -> Envs:
    """The envs a run trains on: self-play envs for a two-player task, else plain ones
    (``batch_size``: for an algorithm that steps them with send/recv)."""
    if config.self_play:
        return SelfPlayEnvs(
            config.task,
            config.num_envs,
            seed,
            config.task_kwargs,
            num_threads,
            opponent_fraction=config.opponent_fraction,
            opponent_pool_size=config.opponent_pool_size,
            opponent_interval=config.opponent_interval,
        )
    return TrainingEnvs(
        config.task, config.num_envs, seed, config.task_kwargs, num_threads, batch_size
    )


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
        verbose: bool = False,
        tensorboard_video: bool = False,
        world: World | None = None,
    ) -> None:
        self.config, self.run_dir = config, run_dir
        # Presentation, like ``progress`` and ``verbose``: not in the frozen config.
        self.tensorboard_video = tensorboard_video and config.tensorboard
        self.world = world = world or World()
        seed_process(config.seed, config.torch_threads)
        self.device = world.device(select_device(config.device))
        # This rank's envs and sampler: see trainer.distributed for the seeds. A
        # rank that a resumed checkpoint has no state for starts a new stream.
        fresh_rank = resume_from is not None and resume_from["state"]["envs"] is None
        generation = resume_from["state"]["counters"]["update"] if fresh_rank else 0
        self.rank_seed = rank_seed(config.seed, world.rank, generation)
        self.env_threads = world.env_threads(config.env_threads)
        algorithm = algorithm_class(config.algo)
        batch_size = 1 if algorithm.ASYNC_POOL else None
        self.envs = training_envs(config, self.rank_seed, self.env_threads, batch_size)
        self.spec = self.envs.spec
        self.architecture = architecture_record(self.spec, config.network)
        self.agent = build_agent(self.spec, config.network).to(self.device)
        self.algo: Algorithm = algorithm(config, self.envs, self.agent, self.device, world)
        if self.rank_seed != config.seed:
            seed_process(self.rank_seed)
            self.algo.generator.manual_seed(self.rank_seed)
        self.batching = Batching(config.num_envs, config.num_steps, world.size)
        self.batch_size = self.batching.batch_size  # env steps per update
        self.counters = Counters()
        self.recent_returns: collections.deque = collections.deque(maxlen=ACTOR_WINDOW)
        self.recent_lengths: collections.deque = collections.deque(maxlen=ACTOR_WINDOW)
        self.forked_from: str | None = None
        self.evaluator: Evaluator | None = None
        self.showcase: Showcase | None = None  # the TensorBoard video's pool
        self.last_saved_step: int | None = None
        if resume_from is not None:
            self._load(resume_from)
        elif fork_from is not None:
            # Same algorithm: weights and optimizer state (SPO: duals and target
            # too). Another algorithm (a PPO checkpoint warm-starting SPO, say):
            # the weights alone; the rest starts fresh, SPO's target from them.
            checkpoint.check_compatible(fork_from["metadata"], config.task, None, self.architecture)
            if fork_from["metadata"].get("algo") == config.algo:
                self.agent.load_state_dict(fork_from["model"])
                self.algo.load_optimizer_state_dict(fork_from["optimizer"])
            else:
                self.algo.load_weights(fork_from["model"])
            self.forked_from = str(fork_from["path"])
        if resume_from is None:
            world.broadcast_parameters(self.agent)
        # The updates left cover the steps left at this world size's batch (a
        # resume may change the budget, or under torchrun the world size).
        c = self.counters
        num_updates = self.batching.updates_after(c.update, c.env_steps, config.total_steps)
        self.algo.set_num_updates(num_updates, c.update)
        if self.tensorboard_video and world.is_main:  # refuse now, not at the first evaluation
            self.showcase = Showcase(
                config.task, 1, config.eval_seed, evaluation_task_kwargs(config), self.env_threads
            )
            check_animations(self.showcase.pool)
        self.telemetry: Telemetry | NullTelemetry = NullTelemetry()
        if world.is_main:  # the run directory is rank 0's alone
            try:
                self.telemetry = self._open_run_directory(resume_from, progress, verbose)
            except BaseException:
                self.envs.close()
                raise
            warning = world.oversubscription(config.torch_threads, self.env_threads)
            if warning:
                self.telemetry.print(warning)
            reason = task_info(config.task).test_task
            if reason:
                self.telemetry.print(
                    f"warning: {config.task} is a test task of the engine, not a learning "
                    f"problem:\n{reason}"
                )
        self._session_start = time.monotonic()
        self._wall_offset = self.counters.wall_time

    def _open_run_directory(
        self, resume_from: dict[str, Any] | None, progress: bool | None, verbose: bool
    ) -> Telemetry:
        """Rank 0: a new run's directory and frozen config, or a resumed run's
        log line; then the telemetry. A failure says what was kept."""
        config, run_dir, c = self.config, self.run_dir, self.counters
        created = False
        try:
            if resume_from is None:
                created = rundir.create(run_dir)
                rundir.write_text_atomic(run_dir / "config.yaml", dump(config))
            telemetry = Telemetry(
                run_dir,
                total_steps=c.env_steps + (self.algo.num_updates - c.update) * self.batch_size,
                start_env_steps=c.env_steps,
                resume=resume_from is not None,
                tensorboard=config.tensorboard,
                progress=progress,
                console_interval=config.console_interval,
                title=f"{config.task} {config.algo}",
                plot=config.plot,
                task=config.task,
                self_play=config.self_play,
                verbose=verbose,
            )
            if resume_from is not None:
                before = resume_from["metadata"]["config"].get("total_steps")
                rundir.append_line(
                    run_dir / rundir.RESUME_LOG,
                    {
                        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "env_steps": c.env_steps,
                        "update": c.update,
                        "previous_total_steps": before,
                        "total_steps": config.total_steps,
                        "world_size": self.world.size,
                    },
                )
        except StorageError as e:
            if resume_from is not None:
                raise RunError(
                    f"cannot resume {run_dir}: {e}\nthe run is as its last checkpoint left "
                    f"it; {_remedy(e)}, then resume it again"
                ) from None
            if created:
                shutil.rmtree(run_dir, ignore_errors=True)
            where = "the new run directory was removed" if created else "nothing was written"
            remedy = "free some space or choose" if e.full else "choose"
            raise RunError(
                f"{e}\n{where}; {remedy} a writable place with --runs-root DIR or --run-dir DIR, "
                "then start again"
            ) from None
        return telemetry

    # ------------------------------------------------------------ creation
    @classmethod
    def new(
        cls, config: Config, run_dir: Path, *, world: World | None = None, **kwargs: Any
    ) -> Trainer:
        world = world or World()

        def check() -> None:
            if (run_dir / "config.yaml").exists():
                raise RunError(
                    f"{run_dir} already holds a run; continue it with --resume {run_dir}"
                )

        world.on_main(check)
        return cls(config, run_dir, world=world, **kwargs)

    @classmethod
    def resume(
        cls,
        run_dir: Path,
        total_steps: int | None = None,
        *,
        world: World | None = None,
        **kwargs: Any,
    ) -> Trainer:
        """Continue ``run_dir`` from its latest checkpoint. Rank 0 reads it and
        hands each rank its part (``distributed.split_rank_states``)."""
        world = world or World()

        def read() -> list[tuple[Config, dict[str, Any]]]:
            config = load_run_config(run_dir, total_steps)
            latest = checkpoint.pointer(run_dir / "checkpoints", "latest")
            if latest is None:
                if (run_dir / "checkpoints" / "latest").is_symlink():
                    checkpoint.find(run_dir)  # a pointer to nowhere: says so
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
            device = select_device(config.device) if world.size == 1 else "cpu"
            source = checkpoint.load(latest, device)
            _check_unfinished(run_dir, config, source["metadata"])
            try:
                rundir.check_writable(run_dir)
            except StorageError as e:
                raise RunError(
                    f"cannot resume {run_dir}: it cannot be written ({e.cause})\nnothing was "
                    f"changed; copy the run to writable storage and resume the copy: cp -a "
                    f"{run_dir} NEW_DIR && pyenvpool-train --resume NEW_DIR"
                ) from None
            per_rank = algorithm_class(config.algo).PER_RANK_STATE
            parts = split_rank_states(source["state"], world.size, per_rank)
            return [(config, {**source, "state": part}) for part in parts]

        config, source = world.on_main(read, scatter=True)
        return cls(config, run_dir, resume_from=source, world=world, **kwargs)

    @classmethod
    def fork(
        cls,
        source: dict[str, Any],
        config: Config,
        run_dir: Path,
        *,
        world: World | None = None,
        **kwargs: Any,
    ) -> Trainer:
        world = world or World()

        def check() -> None:
            if (run_dir / "config.yaml").exists():
                raise RunError(f"{run_dir} already holds a run; fork into a new --run-dir")

        world.on_main(check)
        return cls(config, run_dir, fork_from=source, world=world, **kwargs)

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
        with self._stop_on_storage_errors(), _stop_requests(self.telemetry.print) as stop_requested:
            while c.update < self.algo.num_updates:
                if self.world.any(stop_requested()):  # every rank stops at the same update
                    stop_reason = "interrupted"
                    break
                if max_updates is not None and done_updates >= max_updates:
                    stop_reason = "paused"
                    break
                start = time.perf_counter()
                self.envs.prepare_rollout(self.agent, c.update)
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
            "task": config.task,
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
        # Every rank's finished episodes, game outcomes and TRAINER metrics
        # (one rank: its own).
        ranks = self.world.all_gather(
            (
                it["episode_returns"],
                it["episode_lengths"],
                it["trainer"],
                self.envs.episode_outcomes(),
            )
        )
        returns = np.concatenate([r[0] for r in ranks])
        lengths = np.concatenate([r[1] for r in ranks])
        trainer_metrics = mean_metrics([r[2] for r in ranks])
        c.total_episodes += int(returns.size)
        self.recent_returns.extend(returns.tolist())
        self.recent_lengths.extend(lengths.tolist())
        actor: dict[str, Any] = {"episodes": int(returns.size), "total_episodes": c.total_episodes}
        if self.recent_returns:
            window, window_lengths = np.array(self.recent_returns), np.array(self.recent_lengths)
            if not self.config.self_play:  # self-play returns are the last mover's: meaningless
                actor.update(
                    mean_return=float(window.mean()),
                    min_return=float(window.min()),
                    max_return=float(window.max()),
                )
            actor["episode_length_mean"] = float(window_lengths.mean())
        actor.update(outcome_rates([r[3] for r in ranks]))
        actor["steps_per_second"] = self.batch_size / elapsed
        misc = {
            "rollout_time": it["rollout_time"],
            "env_time": it["env_time"],
            "inference_time": it["inference_time"],
            "storage_time": it["storage_time"],
            "update_time": it["update_time"],
            "env_steps_per_second": self.batch_size / max(it["env_time"], 1e-9),
        }
        events = {"TRAINER": trainer_metrics, "ACTOR": actor, "MISC": misc}
        for category, metrics in events.items():
            self.telemetry.log(
                category,
                c.env_steps,
                metrics,
                update=c.update,
                wall_time=self.wall_time,
                train_time=c.train_time,
            )
        if self.telemetry.dashboard_due():
            self.telemetry.dashboard(c.env_steps, events)

    # ------------------------------------------------------------ evaluate
    def evaluate(self) -> dict[str, Any]:
        """Run the evaluation protocol now; logs an EVALUATOR event and redraws the
        plot. Rank 0 evaluates; every rank returns its result."""
        result = self.world.on_main(self._evaluate)
        self.telemetry.log(
            "EVALUATOR",
            self.counters.env_steps,
            result,
            update=self.counters.update,
            wall_time=self.wall_time,
            train_time=self.counters.train_time,
        )
        if self.tensorboard_video and self.world.is_main:
            self._log_video()
        self.telemetry.plot()
        return result

    def _log_video(self) -> None:
        """The first evaluation episode, as an animation in TensorBoard."""
        assert self.showcase is not None  # made in __init__
        frames = self.showcase.animation(self.algo.evaluation_policy(self.showcase.pool))
        gif = gif_bytes(frames, task_info(self.config.task).video_fps)
        self.telemetry.video("evaluation/episode", gif, frames.shape[1:3], self.counters.env_steps)

    def _evaluate(self) -> dict[str, Any]:
        if self.evaluator is None:
            self.evaluator = Evaluator.for_config(self.config, self.env_threads)
        pool = self.evaluator.pool
        return self.evaluator.run_policies(
            self.algo.evaluation_policy(pool),
            self.algo.comparison_policies(pool),
            self.config.eval_episodes,
        )

    # ---------------------------------------------------------- checkpoints
    def save(self, evaluation: dict[str, Any] | None, best: bool = False) -> Path | None:
        """Write a checkpoint (every rank takes part; rank 0 writes it and
        returns its path, the others None)."""
        c = self.counters
        c.wall_time = self.wall_time
        rank_state = {
            "algorithm": self.algo.state_dict(),
            "envs": self.envs.state_dict(),
            "rng": rng_state(),
        }
        if self.world.size == 1:
            ranks = [(rank_state, {})]
        else:
            info = {
                "rank": self.world.rank,
                "env_steps": self.envs.env_steps,
                "parameter_sha256": parameter_digest(self.agent),
            }
            ranks = self.world.gather((to_cpu(rank_state), info))
        if ranks is None:  # not rank 0: its state went to rank 0
            self.last_saved_step = c.env_steps
            return None
        rank_infos = [info for _, info in ranks]
        if len({info["parameter_sha256"] for info in rank_infos if info}) > 1:
            raise DistributedError(
                "the ranks' parameters differ ("
                + ", ".join(f"rank {i['rank']}: {i['parameter_sha256'][:12]}" for i in rank_infos)
                + "); refusing to checkpoint"
            )
        state = {
            "counters": dataclasses.asdict(c),
            "recent_returns": list(self.recent_returns),
            "recent_lengths": list(self.recent_lengths),
            **merge_rank_states([rank for rank, _ in ranks]),
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
            "world_size": self.world.size,
        }
        if self.world.size > 1:
            metadata["ranks"] = rank_infos
        payload = {
            "model": self.agent.state_dict(),
            "optimizer": self.algo.optimizer_state_dict(),
            "state": state,
        }
        folder = self.run_dir / "checkpoints"
        # The metrics up to this checkpoint are on disk before it is: a resume
        # from it finds every event it keeps.
        self.telemetry.flush()
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
        if state["envs"] is None:
            # A rank the checkpoint has no state for (it was written by fewer
            # ranks): the shared algorithm state, and this rank's fresh sampler,
            # replay and envs (seeded in __init__).
            self.algo.load_state_dict({**self.algo.state_dict(), **state["algorithm"]})
        else:
            self.algo.load_state_dict(state["algorithm"])
            self.envs.load_state_dict(state["envs"])
            set_rng_state(state["rng"])
        self.counters = Counters(**state["counters"])
        self.recent_returns.extend(state["recent_returns"])
        self.recent_lengths.extend(state["recent_lengths"])
        self.last_saved_step = self.counters.env_steps
        saved = state.get("saved_world_size", 1)
        if saved != self.world.size and self.world.is_main:
            low, high = sorted((saved, self.world.size))
            ranks = f"rank {low}" if high - low == 1 else f"ranks {low}-{high - 1}"
            change = (
                f"{ranks} start{'s' if high - low == 1 else ''} with fresh envs and samplers"
                if saved < self.world.size
                else f"the envs of {ranks} are dropped"
            )
            print(
                f"resuming a checkpoint of {saved} rank(s) with {self.world.size}: the model, "
                f"optimiser, counters and schedule carry over; {change}",
                flush=True,
            )

    def close(self) -> None:
        """Close the pools and telemetry (the World belongs to the caller)."""
        self.telemetry.close()
        self.algo.close()
        self.envs.close()
        for pool in (self.evaluator, self.showcase):
            if pool is not None:
                pool.close()

    @contextlib.contextmanager
    def _stop_on_storage_errors(self) -> Iterator[None]:
        """A file that cannot be written ends the run with what was kept."""
        try:
            yield
        except StorageError as e:
            latest = checkpoint.pointer(self.run_dir / "checkpoints", "latest")
            if latest is None:
                kept = "no checkpoint was saved yet, so the run must start again"
                then = "then start again"
            else:
                steps = checkpoint.read_metadata(latest)["env_steps"]
                latest = self.run_dir / "checkpoints" / latest.name  # as the user named the run
                kept = f"kept: the checkpoint {latest} ({steps:,} env steps) and all before it"
                then = f"then continue with: pyenvpool-train --resume {self.run_dir}"
            raise RunError(
                f"training stopped at {self.counters.env_steps:,} env steps: {e}\n"
                f"{kept}; {_remedy(e)}, {then}"
            ) from None


def _remedy(error: StorageError) -> str:
    """What to do about a file that could not be written."""
    if error.full:
        return "free some space"
    if error.errno == errno.EROFS:
        return "make the storage writable"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "fix the permissions"
    return "fix the cause"


def _check_unfinished(run_dir: Path, config: Config, metadata: dict[str, Any]) -> None:
    """Raise ``RunFinished`` when the latest checkpoint ended the run: its
    budget is spent, or its evaluation reached ``target_return``."""
    steps = metadata["env_steps"]
    evaluation = metadata.get("evaluation") or {}
    target, score = config.target_return, evaluation.get("mean_return")
    if steps >= config.total_steps:
        raise RunFinished(
            f"{run_dir} is finished: it has trained {steps:,} env steps of its "
            f"{config.total_steps:,}-step budget; nothing was changed\n"
            f"to train it further: pyenvpool-train --resume {run_dir} --total-steps "
            f"{2 * config.total_steps}"
        )
    if target is not None and score is not None and score >= target:
        raise RunFinished(
            f"{run_dir} is finished: its evaluation at {steps:,} env steps reached the target "
            f"return {target:g} ({score:.4g}); nothing was changed\n"
            f"to train on past it, fork it: pyenvpool-train --fork {run_dir}/checkpoints/latest "
            "--target-return null"
        )


def outcome_rates(counts: list[dict[str, dict[str, int]]]) -> dict[str, Any]:
    """ACTOR metrics from game outcomes (``Envs.episode_outcomes`` of every
    rank): per group, each outcome's rate and ``<group>_games``."""
    merged: dict[str, dict[str, int]] = {}
    for rank in counts:
        for group, outcomes in rank.items():
            for outcome, n in outcomes.items():
                merged.setdefault(group, {})
                merged[group][outcome] = merged[group].get(outcome, 0) + n
    metrics: dict[str, Any] = {}
    for group in sorted(merged):
        games = sum(merged[group].values())
        outcomes = (
            ("first_win", "draw", "second_win") if group == "self_play" else ("win", "draw", "loss")
        )
        for outcome in outcomes:
            metrics[f"{group}_{outcome}"] = merged[group].get(outcome, 0) / games
        metrics[f"{group}_games"] = games
    return metrics


def _crossed(env_steps: int, batch: int, interval: int) -> bool:
    """True when the last update crossed a multiple of ``interval`` (0: never)."""
    return interval > 0 and env_steps // interval > (env_steps - batch) // interval


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
