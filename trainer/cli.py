"""``pyenvpool-train``: train, resume, fork or evaluate from the shell.

    pyenvpool-train --task BinPack-v0                       # embedded defaults of the task
    pyenvpool-train --task Maze-v0 --config my.yaml --num-envs 256 --seed 3
    pyenvpool-train --resume runs/<run> [--total-steps N]   # exact continuation
    pyenvpool-train --fork runs/<run>/checkpoints/best --learning-rate 1e-4
    pyenvpool-train --evaluate runs/<run>/checkpoints/best --eval-episodes 1000 --render 3
    pyenvpool-train --task BinPack-v0 --algo spo            # SPO (embedded <task>.spo.yaml)
    torchrun --nproc-per-node 2 -m trainer.cli --task CartPole-v1   # data-parallel ranks

Under torchrun (``WORLD_SIZE`` > 1) every rank runs this command; rank 0
resolves the config, reads and writes the run directory and prints, and
hands the other ranks what they need (``trainer.distributed``). Paths are
then checked by rank 0 only, so other nodes need not see them. When torchrun
restarts the job after a failure (``--max-restarts``), a run given with
``--run-dir`` resumes from its latest checkpoint.

Every config field is a kebab-case flag whose help is the field's docstring
(``trainer.config``). Flags given explicitly override ``--config``, which
overrides the task's embedded defaults. Heavy imports (torch) happen only once
there is work to do, so ``--help`` and config errors are instant.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, get_args, get_origin

import click

from trainer.config import (
    UNION_TYPES,
    Config,
    ConfigError,
    apply,
    apply_flags,
    dump,
    embedded_tasks,
    evaluation_task_kwargs,
    finalize,
    leaf_fields,
    resolve,
)

# Started by torchrun as one of several ranks (decided without importing torch),
# and restarted by it after a failure (torchrun --max-restarts).
LAUNCHED = int(os.environ.get("WORLD_SIZE", "1")) > 1
RESTARTED = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0
EVALUATE_FLAGS = {
    "eval_episodes",
    "eval_num_envs",
    "eval_seed",
    "device",
    "torch_threads",
    "env_threads",
    "eval_search",
    # The search settings (SPO checkpoints, or `--algo spo` over a PPO checkpoint).
    "algo",
    "num_particles",
    "search_depth",
    "resample_period",
    "resample_ess_threshold",
    "search_gamma",
    "search_gae_lambda",
    "init_temperature",
}


def _metavar(typ: Any) -> str:
    origin = get_origin(typ)
    if origin in UNION_TYPES:
        return _metavar(next(a for a in get_args(typ) if a is not type(None)))
    if origin is list:
        return "N,N,..."
    if origin is dict:
        return "MAPPING"
    return {int: "INT", float: "FLOAT", str: "TEXT"}.get(typ, "VALUE")


def _config_options() -> list[click.Option]:
    """One flag per config field; defaults are None so 'given' is 'not None'."""
    options = []
    for info in leaf_fields().values():
        section = f"[{info.section}] " if info.section else ""
        default = "null" if info.default is None else info.default
        shown = f" (default: {default})" if default != "" else ""
        help_text = f"{section}{info.help}{shown}"
        if info.type is bool:
            options.append(
                click.Option(
                    [f"{info.flag}/--no-{info.flag[2:]}", info.name], default=None, help=help_text
                )
            )
        else:
            options.append(
                click.Option(
                    [info.flag, info.name],
                    default=None,
                    metavar=_metavar(info.type),
                    help=help_text,
                )
            )
    return options


def _run_dir(runs_root: str, config: Config) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(runs_root) / f"{config.task}-{config.algo}-seed{config.seed}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _print_summary(summary: dict[str, Any], world_size: int = 1) -> None:
    last = summary["last_eval"]
    lines = [
        f"{summary['stop_reason']}: {summary['env_steps']:,} env steps, "
        f"{summary['updates']} updates, "
        f"train {summary['train_time']:.1f} s, wall {summary['wall_time']:.1f} s",
    ]
    if last:
        lines.append(
            f"last evaluation: mean return {last['mean_return']:.4g} "
            f"over {last['episodes']} episodes"
        )
    if summary["best_return"] is not None:
        lines.append(
            f"best evaluation: {summary['best_return']:.4g} at {summary['best_env_steps']:,} steps"
        )
    lines.append(f"run directory: {summary['run_dir']}")
    if summary["stop_reason"] in ("interrupted", "paused"):
        if world_size > 1:
            lines.append(
                f"continue with: torchrun [launch options] -m trainer.cli --resume "
                f"{summary['run_dir']} (with this or another number of ranks)"
            )
        else:
            lines.append(f"continue with: pyenvpool-train --resume {summary['run_dir']}")
    click.echo("\n".join(lines))


def _evaluate(path: str, flags: dict[str, Any], render: int) -> None:
    import torch

    from trainer import checkpoint
    from trainer.evaluate import Evaluator, greedy_policy
    from trainer.networks import architecture_record, build_agent
    from trainer.train import select_device

    source = checkpoint.load(path)
    config = finalize(apply(Config(), source["metadata"]["config"], f"{path} metadata"))
    config = finalize(apply_flags(config, flags))
    torch.set_num_threads(config.torch_threads)
    device = select_device(config.device)
    evaluator = Evaluator(
        config.task,
        min(config.eval_num_envs, config.eval_episodes),
        config.eval_seed,
        evaluation_task_kwargs(config),
        config.env_threads,
    )
    try:
        # The weights may come from another algorithm: `--algo spo` evaluates a
        # PPO checkpoint with the SMC search (at the initial temperature).
        checkpoint.check_compatible(
            source["metadata"],
            config.task,
            None,
            architecture_record(evaluator.pool.spec, config.network),
        )
        agent = build_agent(evaluator.pool.spec, config.network).to(device)
        agent.load_state_dict(source["model"])
        policy = greedy_policy(agent, device)
        mode = "greedy"
        if config.algo == "spo" and config.spo.eval_search:
            from trainer.mpo import dual_value
            from trainer.spo import search_policy

            temperature = (
                float(dual_value(source["optimizer"]["log_temperature"]))
                if source["metadata"]["algo"] == "spo"
                else config.spo.init_temperature
            )
            policy = search_policy(
                agent, evaluator.pool, temperature, config, device, config.eval_seed
            )
            mode = (
                f"SMC search, {config.spo.num_particles} particles x depth "
                f"{config.spo.search_depth}, eta {temperature:.4g}"
            )
        result = evaluator.run(policy, config.eval_episodes)
        meta = source["metadata"]
        click.echo(f"checkpoint {source['path']} ({meta['task']}, {meta['env_steps']:,} env steps)")
        click.echo(
            f"{result['episodes']} episodes ({mode}, eval seed {config.eval_seed}): "
            f"return mean {result['mean_return']:.4f} min {result['min_return']:.4f} "
            f"max {result['max_return']:.4f} std {result['std_return']:.4f}"
        )
        click.echo(
            f"length mean {result['episode_length_mean']:.2f} min {result['episode_length_min']} "
            f"max {result['episode_length_max']}"
        )
        if "volume_utilization" in result:
            click.echo(f"volume utilisation {result['volume_utilization']:.4f}")
        if "success_rate" in result:
            click.echo(f"success rate {result['success_rate']:.4f}")
        from trainer.opponents import OPPONENTS

        for name in OPPONENTS.get(config.task, {}):  # two-player tasks: matches per side
            for side in ("first", "second"):
                rates = (result[f"{name}_{side}_{o}"] for o in ("win", "draw", "loss"))
                click.echo(
                    f"vs {name} moving {side}: win {next(rates):.4f} draw {next(rates):.4f} "
                    f"loss {next(rates):.4f}"
                )
        for i, picture in enumerate(
            evaluator.render_final_states(policy, render) if render else []
        ):
            click.echo(f"\n--- final state of evaluation episode {i} ---\n{picture}")
    finally:
        evaluator.close()


@dataclass(frozen=True)
class Request:
    """What the command line asks for, besides the config flags."""

    config_file: str | None
    resume: str | None
    fork: str | None
    evaluate: str | None
    render: int
    run_dir: str | None
    runs_root: str
    progress: bool | None
    print_config: bool
    flags: dict[str, Any]  # the config fields given as flags


def _main(**params: Any) -> None:
    options = {f.name: params.pop(f.name) for f in fields(Request) if f.name != "flags"}
    flags = {name: value for name, value in params.items() if value is not None}
    request = Request(**options, flags=flags)
    modes = [
        name
        for name, value in (
            ("--resume", request.resume),
            ("--fork", request.fork),
            ("--evaluate", request.evaluate),
        )
        if value
    ]
    if len(modes) > 1:
        raise click.UsageError(f"{' and '.join(modes)} cannot be combined")
    world = None
    if LAUNCHED:
        if request.evaluate:
            raise click.UsageError("--evaluate runs in one process: start it without torchrun")
        from trainer.distributed import World

        world = World.from_environment()
    try:
        _command(world, request)
    except Exception as e:
        if world is None or world.is_main:
            raise
        # What rank 0 reports (its failures that every rank waits on, and the
        # usage errors that every rank finds alike) the other ranks do not repeat.
        from trainer.distributed import RemoteError

        if isinstance(e, RemoteError):
            raise click.exceptions.Exit(2 if isinstance(e.error, ConfigError) else 1) from None
        if isinstance(e, (ConfigError, click.UsageError)):
            raise click.exceptions.Exit(2) from None
        raise
    finally:
        if world is not None:
            world.close()


def _command(world: Any, request: Request) -> None:
    main_rank = world is None or world.is_main

    def on_main(fn: Any) -> Any:  # run on rank 0, hand the result to every rank
        return fn() if world is None else world.on_main(fn)

    def echo(text: str, **kwargs: Any) -> None:
        if main_rank:
            click.echo(text, **kwargs)

    try:
        if request.evaluate:
            extra = sorted(set(request.flags) - EVALUATE_FLAGS)
            if extra or request.config_file:
                bad = "--config" if request.config_file else "--" + extra[0].replace("_", "-")
                raise click.UsageError(
                    f"{bad} does not apply to --evaluate (it takes "
                    + ", ".join("--" + f.replace("_", "-") for f in sorted(EVALUATE_FLAGS))
                    + ", --render)"
                )
            _evaluate(request.evaluate, request.flags, request.render)
            return
        if request.render:
            raise click.UsageError("--render applies only to --evaluate")
        if request.resume:
            extra = sorted(set(request.flags) - {"total_steps"})
            if extra or request.config_file or request.run_dir:
                bad = (
                    "--config"
                    if request.config_file
                    else "--run-dir"
                    if request.run_dir
                    else "--" + extra[0].replace("_", "-")
                )
                raise click.UsageError(
                    f"--resume continues a run exactly, so {bad} cannot change; "
                    "only --total-steps may. "
                    "To train on with other settings use "
                    f"--fork {request.resume}/checkpoints/latest"
                )
            from trainer.train import Trainer, load_run_config

            if request.print_config:
                echo(on_main(lambda: dump(load_run_config(Path(request.resume)))), nl=False)
                return
            trainer = Trainer.resume(
                Path(request.resume),
                request.flags.get("total_steps"),
                progress=request.progress,
                world=world,
            )
        else:

            def plan() -> tuple[str, Any, Path | None, Any]:
                """What to do: ("print", YAML text, None, None) for --print-config,
                ("resume", None, run directory, None) when torchrun restarted a
                run that has a checkpoint, else ("train", config, run directory,
                fork source)."""
                if RESTARTED and request.run_dir and not request.print_config:
                    from trainer import checkpoint

                    if (
                        checkpoint.pointer(Path(request.run_dir) / "checkpoints", "latest")
                        is not None
                    ):
                        return "resume", None, Path(request.run_dir), None
                source = None
                if request.fork:
                    from trainer import checkpoint

                    source = checkpoint.load(request.fork)
                    config = resolve(
                        flags=request.flags,
                        config_file=request.config_file,
                        base=source["metadata"]["config"],
                    )
                else:
                    config = resolve(flags=request.flags, config_file=request.config_file)
                if request.print_config:
                    return "print", dump(config), None, None
                import pyenvpool

                if config.task not in pyenvpool.list_tasks():
                    raise ConfigError(
                        f"task: unknown task {config.task!r}; "
                        f"known: {', '.join(pyenvpool.list_tasks())}"
                    )
                path = (
                    Path(request.run_dir)
                    if request.run_dir
                    else _run_dir(request.runs_root, config)
                )
                return "train", config, path, source

            action, config, path, source = on_main(plan)
            if action == "print":
                echo(config, nl=False)
                return
            from trainer.train import Trainer

            if action == "resume":
                echo(f"torchrun restarted the job: resuming {path} from its latest checkpoint")
                trainer = Trainer.resume(path, progress=request.progress, world=world)
            elif source is not None:
                trainer = Trainer.fork(source, config, path, progress=request.progress, world=world)
            else:
                trainer = Trainer.new(config, path, progress=request.progress, world=world)
        echo(f"run directory: {trainer.run_dir}")
        try:
            summary = trainer.run()
        finally:
            trainer.close()
        if main_rank:
            _print_summary(summary, 1 if world is None else world.size)
        if summary["stop_reason"] == "interrupted":
            sys.exit(130)
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        from trainer.checkpoint import CheckpointError
        from trainer.train import RunError

        if isinstance(e, (CheckpointError, RunError)) or type(e).__module__.startswith("pyenvpool"):
            raise click.ClickException(str(e)) from None
        if type(e).__name__ == "DistributedError":
            raise click.ClickException(str(e)) from None
        raise


def _build_command() -> click.Command:
    params = [
        click.Option(
            ["--config", "config_file"],
            type=click.Path(exists=not LAUNCHED, dir_okay=False),
            help="YAML config file; overrides the task's embedded defaults.",
        ),
        click.Option(
            ["--resume"],
            type=click.Path(exists=not LAUNCHED, file_okay=False),
            metavar="RUN_DIR",
            help="Continue a run exactly from its latest checkpoint (only the budget may change).",
        ),
        click.Option(
            ["--fork"],
            type=click.Path(exists=not LAUNCHED),
            metavar="CHECKPOINT",
            help="Start a new run from a checkpoint's weights and optimizer, with new settings.",
        ),
        click.Option(
            ["--evaluate"],
            type=click.Path(exists=not LAUNCHED),
            metavar="CHECKPOINT",
            help="Evaluate a checkpoint over --eval-episodes and print the results (greedy; "
            "SPO checkpoints search unless --no-eval-search).",
        ),
        click.Option(
            ["--render"],
            type=int,
            default=0,
            metavar="K",
            help="With --evaluate: also print the final state of the first K episodes.",
        ),
        click.Option(
            ["--run-dir"],
            type=click.Path(file_okay=False),
            help="Directory of this run (default: <runs-root>/<task>-<algo>-seed<S>-<time>).",
        ),
        click.Option(
            ["--runs-root"],
            default="runs",
            show_default=True,
            help="Parent of new run directories.",
        ),
        click.Option(
            ["--progress/--no-progress"],
            default=None,
            help="Show the progress bar (default: when stdout is a terminal).",
        ),
        click.Option(
            ["--print-config"], is_flag=True, help="Print the resolved config as YAML and exit."
        ),
        *_config_options(),
    ]
    return click.Command(
        "pyenvpool-train",
        callback=_main,
        params=params,
        help=(
            "Train an agent on a pyenvpool task with PPO (default) or SPO (--algo spo).\n\n"
            "Config precedence: built-in defaults < the task's embedded YAML < --config FILE "
            "< flags. "
            f"Tasks with tuned embedded defaults: {', '.join(embedded_tasks())}.\n\n"
            "Data-parallel on several processes or machines: start it under torchrun, e.g. "
            "torchrun --standalone --nproc-per-node 2 -m trainer.cli --task CartPole-v1 "
            "(docs/distributed.md)."
        ),
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    )


main = _build_command()

if __name__ == "__main__":
    main()
