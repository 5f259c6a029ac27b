"""``pyenvpool-train``: train, resume, fork or evaluate from the shell.

    pyenvpool-train --task BinPack-v0                       # embedded defaults of the task
    pyenvpool-train --task Maze-v0 --config my.yaml --num-envs 256 --seed 3
    pyenvpool-train --resume runs/<run> [--total-steps N]   # exact continuation
    pyenvpool-train --fork runs/<run>/checkpoints/best --learning-rate 1e-4
    pyenvpool-train --evaluate runs/<run>/checkpoints/best --eval-episodes 1000 --render 3
    pyenvpool-train --evaluate runs/<run>/checkpoints/best --video 2   # runs/<run>/videos/*.mp4
    pyenvpool-train --task BinPack-v0 --algo spo            # SPO (embedded <task>.spo.yaml)
    pyenvpool-train --task Maze-v0 --help                   # the flags with Maze-v0's defaults
    torchrun --nproc-per-node 2 -m trainer.cli --task CartPole-v1   # data-parallel ranks

Every config field is a kebab-case flag whose help is the field's docstring
(``trainer.config``). Flags given explicitly override ``--config``, which
overrides the task's embedded defaults. Heavy imports (torch) happen only once
there is work to do, so ``--help`` and config errors are instant.

Under torchrun (``WORLD_SIZE`` > 1) every rank runs this command; rank 0
resolves the config, reads and writes the run directory and prints, and
hands the other ranks what they need (``trainer.distributed``). Paths are
then checked by rank 0 only, so other nodes need not see them. When torchrun
restarts the job after a failure (``--max-restarts``), a run given with
``--run-dir`` resumes from its latest checkpoint.

Every failure a person can fix ends in one or two lines and a non-zero exit
code, never a traceback: config and usage mistakes (exit 2; an unknown task
gets "did you mean"), unusable paths, full disks and damaged checkpoints
(exit 1, saying what was kept and what to do), and a second Ctrl-C (exit 130,
saying where the run stands; the first one stops after the update and saves).
``--resume`` of a finished run says so, changes nothing and exits 0, so a
script may resume until a run is done.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
import time
from dataclasses import dataclass, fields
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Callable, NoReturn, get_args, get_origin

import click

from trainer.config import (
    Config,
    ConfigError,
    Setting,
    dump,
    embedded_tasks,
    resolve,
    settings,
    task_defaults,
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


@dataclass(frozen=True)
class Request:
    """What the command line asks for, besides the config flags."""

    config_file: str | None
    resume: str | None
    fork: str | None
    evaluate: str | None
    render: int
    video: int
    run_dir: str | None
    runs_root: str
    progress: bool | None
    verbose: bool
    tensorboard_video: bool
    print_config: bool
    flags: dict[str, Any]  # the config fields given as flags


@dataclass
class Plan:
    """What rank 0 decided to train: a run to continue (``config`` None) or a new
    run with its config, from a fork's checkpoint when ``source`` is set."""

    run_dir: Path
    config: Config | None = None
    source: dict[str, Any] | None = None


# ---------------------------------------------------------------- commands
def _command(world: Any, request: Request) -> None:
    """Evaluate a checkpoint, print a config, or train (new, resumed or forked)."""
    main_rank = world is None or world.is_main

    def on_main(fn: Callable[[], Any]) -> Any:  # run on rank 0, hand the result to every rank
        return fn() if world is None else world.on_main(fn)

    def echo(text: str, **kwargs: Any) -> None:
        if main_rank:
            click.echo(text, **kwargs)

    _check_modes(request)
    if request.evaluate:
        _evaluate(request)
        return
    if request.print_config:
        echo(on_main(lambda: dump(_config(request))), nl=False)
        return
    plan: Plan | None = None
    trainer = None
    try:
        plan = on_main(lambda: _plan(request))
        trainer = _trainer(plan, request, world, echo)
        if trainer is None:  # a finished run: nothing to do
            return
        echo(f"run directory: {trainer.run_dir}")
        try:
            summary = trainer.run()
        finally:
            trainer.close()
    except KeyboardInterrupt:  # a second Ctrl-C, or one before training started
        if main_rank:
            _interrupted(_where_it_stands(plan, trainer is not None))
        sys.exit(130)
    if main_rank:
        _print_summary(summary, 1 if world is None else world.size)
    if summary["stop_reason"] == "interrupted":
        sys.exit(130)


def _evaluate(request: Request) -> None:
    from trainer.evaluate import evaluate_checkpoint

    try:
        evaluation = evaluate_checkpoint(
            request.evaluate, request.flags, request.render, request.video
        )
    except KeyboardInterrupt:
        kept = "finished videos stay, unfinished ones were removed"
        _interrupted(
            [f"evaluation interrupted; {kept if request.video else 'nothing was written'}"]
        )
    click.echo("\n".join(evaluation.report()))


def _trainer(plan: Plan, request: Request, world: Any, echo: Callable[[str], None]) -> Any:
    """The Trainer of the plan, or None for a resumed run that is finished
    (nothing to do is not a failure: see the module docstring)."""
    from trainer.train import RunFinished, Trainer

    options = {
        "progress": request.progress,
        "verbose": request.verbose,
        "tensorboard_video": request.tensorboard_video,
        "world": world,
    }
    if plan.config is None:
        if not request.resume:
            echo(f"torchrun restarted the job: resuming {plan.run_dir} from its last checkpoint")
        total_steps = request.flags.get("total_steps") if request.resume else None
        try:
            return Trainer.resume(plan.run_dir, total_steps, **options)
        except RunFinished as e:
            echo(str(e))
            return None
    if plan.source is not None:
        return Trainer.fork(plan.source, plan.config, plan.run_dir, **options)
    return Trainer.new(plan.config, plan.run_dir, **options)


def _where_it_stands(plan: Plan | None, started: bool) -> list[str]:
    """What a second Ctrl-C (or one before training began) leaves behind."""
    if plan is None or not plan.run_dir.is_dir():
        return ["interrupted before the run directory was made; nothing was written"]
    from trainer import checkpoint

    run_dir = plan.run_dir
    how = "at once (a second Ctrl-C)" if started else "before training started"
    latest = checkpoint.pointer(run_dir / "checkpoints", "latest")
    if latest is None:
        return [
            f"interrupted {how}; {run_dir} holds no checkpoint yet",
            f"nothing to resume: remove {run_dir} and start again",
        ]
    steps = checkpoint.read_metadata(latest)["env_steps"]
    latest = run_dir / "checkpoints" / latest.name  # as the user named the run
    lost = "; the updates after it were not saved" if started else ""
    return [
        f"interrupted {how}: the last checkpoint is {latest} ({steps:,} env steps){lost}",
        f"continue with: pyenvpool-train --resume {run_dir}",
    ]


def _interrupted(lines: list[str]) -> NoReturn:
    click.echo("\n".join(lines), err=True)
    sys.exit(130)


def _check_modes(request: Request) -> None:
    """The flags each mode takes: --evaluate the evaluation settings, --resume
    only a new budget."""
    if request.evaluate:
        extra = sorted(set(request.flags) - EVALUATE_FLAGS)
        if extra or request.config_file:
            bad = "--config" if request.config_file else _flag(extra[0])
            known = ", ".join(_flag(name) for name in sorted(EVALUATE_FLAGS))
            raise click.UsageError(
                f"{bad} does not apply to --evaluate (it takes {known}, --render, --video)"
            )
        return
    if request.render or request.video:
        raise click.UsageError(
            f"{'--render' if request.render else '--video'} applies only to --evaluate"
        )
    if request.resume:
        extra = sorted(set(request.flags) - {"total_steps"})
        if extra or request.config_file or request.run_dir:
            bad = "--config" if request.config_file else None
            bad = bad or ("--run-dir" if request.run_dir else _flag(extra[0]))
            raise click.UsageError(
                f"--resume continues a run exactly, so {bad} cannot change; only --total-steps "
                f"may. To train on with other settings use --fork {request.resume}"
                "/checkpoints/latest"
            )


def _config(request: Request) -> Config:
    """The config a request describes: a resumed run's, or the resolved layers."""
    if request.resume:
        from trainer.train import load_run_config

        return load_run_config(Path(request.resume), request.flags.get("total_steps"))
    config = _resolve(request, _fork_source(request))
    _check_task(config.task)
    return config


def _plan(request: Request) -> Plan:
    """Rank 0's decision: what to resume, or the config and directory of a new run."""
    if request.resume:
        return Plan(Path(request.resume))
    if RESTARTED and request.run_dir and _has_checkpoint(Path(request.run_dir)):
        return Plan(Path(request.run_dir))
    source = _fork_source(request)
    config = _resolve(request, source)
    _check_task(config.task)
    run_dir = Path(request.run_dir) if request.run_dir else _run_dir(request.runs_root, config)
    return Plan(run_dir, config, source)


def _check_task(task: str) -> None:
    """Refuse a task this build does not have, suggesting the close names."""
    import pyenvpool

    known = pyenvpool.list_tasks()
    if task in known:
        return
    # Names compare without case and version ("-v1" alike in every name
    # would make any two names close); a prefix counts too ("maze").
    bases: dict[str, list[str]] = {}
    for name in known:
        bases.setdefault(_base_name(name), []).append(name)
    wanted = _base_name(task)
    close = list(bases.get(wanted, []))  # another version, another case
    close += [
        n for base, names in bases.items() if wanted and base.startswith(wanted) for n in names
    ]
    for base in difflib.get_close_matches(wanted, list(bases), n=3, cutoff=0.7):
        close += bases[base]
    close = list(dict.fromkeys(close))[:3]
    hint = " (did you mean " + " or ".join(map(repr, close)) + "?)" if close else ""
    raise ConfigError(f"task: unknown task {task!r}{hint}; known: {', '.join(known)}")


def _base_name(task: str) -> str:
    return re.sub(r"-v\d+$", "", task.lower())


def _resolve(request: Request, source: dict[str, Any] | None) -> Config:
    base = None if source is None else source["metadata"]["config"]
    return resolve(flags=request.flags, config_file=request.config_file, base=base)


def _fork_source(request: Request) -> dict[str, Any] | None:
    if not request.fork:
        return None
    from trainer import checkpoint

    return checkpoint.load(request.fork)


def _has_checkpoint(run_dir: Path) -> bool:
    from trainer import checkpoint

    return checkpoint.pointer(run_dir / "checkpoints", "latest") is not None


def _run_dir(runs_root: str, config: Config) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(runs_root) / f"{config.task}-{config.algo}-seed{config.seed}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _print_summary(summary: dict[str, Any], world_size: int = 1) -> None:
    from trainer.telemetry import evaluation_summary

    last = summary["last_eval"]
    lines = [
        f"{summary['stop_reason']}: {summary['env_steps']:,} env steps, "
        f"{summary['updates']} update{'s' if summary['updates'] != 1 else ''}, "
        f"train {summary['train_time']:.1f} s, wall {summary['wall_time']:.1f} s",
    ]
    if last:
        lines.append("last evaluation: " + ", ".join(evaluation_summary(summary["task"], last)))
    if summary["best_return"] is not None:
        lines.append(
            f"best evaluation: mean return {summary['best_return']:.4g} at "
            f"{summary['best_env_steps']:,} steps"
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
        _report_errors(lambda: _command(world, request))
    except KeyboardInterrupt:  # before the command could say more (it does during training)
        _interrupted(["interrupted; nothing was written"])
    except Exception as e:
        if world is None or world.is_main:
            raise
        # What rank 0 reports (its failures that every rank waits on, and the
        # usage errors that every rank finds alike) the other ranks do not repeat.
        from trainer.distributed import RemoteError

        if isinstance(e, RemoteError):
            from trainer.train import RunFinished

            code = 0 if isinstance(e.error, RunFinished) else 1
            raise click.exceptions.Exit(2 if isinstance(e.error, ConfigError) else code) from None
        if isinstance(e, (ConfigError, click.UsageError)):
            raise click.exceptions.Exit(2) from None
        raise
    finally:
        if world is not None:
            world.close()


def _report_errors(command: Callable[[], None]) -> None:
    """Run ``command``; the errors a user can fix become one clean message."""
    try:
        command()
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    except OSError as e:  # one that no caller put in words: at least no traceback
        from trainer.rundir import cause

        where = f"{e.filename}: " if e.filename else ""
        raise click.ClickException(f"{where}{cause(e, Path(e.filename or '.'))}") from None
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        from trainer.checkpoint import CheckpointError
        from trainer.distributed import DistributedError
        from trainer.recording import VideoError
        from trainer.rundir import RunError
        from trainer.runtime import DeviceError

        known = (CheckpointError, RunError, DeviceError, DistributedError, VideoError)
        if isinstance(e, known) or type(e).__module__.startswith("pyenvpool"):
            raise click.ClickException(str(e)) from None
        raise


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# -------------------------------------------------------- options and help
class TrainCommand(click.Command):
    """The command, with ``--help`` that shows the defaults a run would use.

    click answers ``--help`` as soon as it parses it, before the other options
    have values, so the options that decide the defaults (``--task``, ``--algo``,
    ``--config``) are read from the raw arguments here.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["help_request"] = _peek(args, ("--task", "--algo", "--config"))
        return super().parse_args(ctx, args)

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_help_text(ctx, formatter)
        formatter.write_paragraph()
        with formatter.indentation():
            formatter.write_text(_help_defaults(ctx)[1])


class ConfigOption(click.Option):
    """A config field's flag; its help ends with the default a run would use."""

    def __init__(self, setting: Setting) -> None:
        self.setting = setting
        names = [setting.flag, setting.name]
        if setting.annotation is bool:
            names[0] = f"{setting.flag}/--no-{setting.flag[2:]}"
        super().__init__(names, default=None, metavar=_metavar(setting.annotation))

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        section = f"[{self.setting.section}] " if self.setting.section else ""
        default = _help_defaults(ctx)[0].get(self.setting.name, self.setting.default)
        default = "null" if default is None else default
        shown = f" (default: {default})" if default != "" else ""
        self.help = f"{section}{self.setting.help}{shown}"
        return super().get_help_record(ctx)


def _peek(args: list[str], names: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for i, arg in enumerate(args):
        name, equals, value = arg.partition("=")
        if name in names:
            if equals:
                found[name] = value
            elif i + 1 < len(args):
                found[name] = args[i + 1]
    return found


def _help_defaults(ctx: click.Context) -> tuple[dict[str, Any], str]:
    """The defaults ``--help`` shows, by field name, and where they come from."""
    root = ctx.find_root()
    if "help_defaults" not in root.meta:
        root.meta["help_defaults"] = _defaults_for(root.meta.get("help_request", {}))
    return root.meta["help_defaults"]


def _defaults_for(request: dict[str, str]) -> tuple[dict[str, Any], str]:
    task, algo, config_file = (request.get(k) for k in ("--task", "--algo", "--config"))
    built_in = (
        "The defaults shown are the built-in ones. Each task's embedded config "
        "(trainer/configs/<task>.yaml, and <task>.<algo>.yaml for another algorithm "
        "than ppo) overrides many of them; add --task TASK to see the defaults a run of "
        f"that task uses. Tasks with embedded configs: {', '.join(embedded_tasks())}."
    )
    if not task and not config_file:
        return {}, built_in
    flags = {key: value for key, value in (("task", task), ("algo", algo)) if value}
    try:
        config = resolve(flags=flags, config_file=config_file)
    except ConfigError as e:
        return {}, f"{built_in}\n\n(Could not resolve the defaults: {e})"
    values = {}
    for name, setting in settings().items():
        holder = config if setting.section is None else getattr(config, setting.section)
        values[name] = getattr(holder, name)
    layers = ["built-in"]
    if task_defaults(config.task):
        layers.append(f"trainer/configs/{config.task}.yaml")
    if config.algo != "ppo" and task_defaults(config.task, config.algo):
        layers.append(f"trainer/configs/{config.task}.{config.algo}.yaml")
    if config_file:
        layers.append(config_file)
    text = (
        f"The defaults shown are those a run of {config.task} with {config.algo} starts "
        f"from: {' < '.join(layers)} (flags override them)."
    )
    return values, text


def _metavar(annotation: Any) -> str:
    if get_origin(annotation) is Annotated:
        return _metavar(get_args(annotation)[0])
    if type(None) in get_args(annotation):  # Optional[X]
        return _metavar(next(a for a in get_args(annotation) if a is not type(None)))
    if get_origin(annotation) is list:
        return "N,N,..."
    if get_origin(annotation) is dict:
        return "MAPPING"
    return {int: "INT", float: "FLOAT", str: "TEXT"}.get(annotation, "TEXT")


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """``--version``: pyenvpool's and PyTorch's versions (torch's without importing it)."""
    if not value or ctx.resilient_parsing:
        return
    import platform

    import pyenvpool

    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "not installed (pip install 'pyenvpool[train]')"
    click.echo(
        f"pyenvpool-train {pyenvpool.__version__}\n"
        f"pyenvpool {pyenvpool.__version__} ({Path(pyenvpool.__file__).parent})\n"
        f"torch {torch_version}\n"
        f"Python {platform.python_version()}"
    )
    ctx.exit()


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
            ["--video"],
            type=click.IntRange(min=0),
            default=0,
            metavar="N",
            help="With --evaluate: also write the first N evaluation episodes as mp4 videos "
            "into the run's videos/ folder (needs the video extra: pip install "
            "'pyenvpool[video]').",
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
            ["-v", "--verbose"],
            is_flag=True,
            help="Print every metric on the console dashboard (default: one compact row).",
        ),
        click.Option(
            ["--tensorboard-video"],
            is_flag=True,
            help="After each evaluation, log its first episode to TensorBoard as an animation "
            "(at most 200 frames; needs the video extra). Not part of the frozen config: give "
            "it again when resuming.",
        ),
        click.Option(
            ["--print-config"], is_flag=True, help="Print the resolved config as YAML and exit."
        ),
        click.Option(
            ["--version"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_print_version,
            help="Print the versions of pyenvpool, PyTorch and Python, and exit.",
        ),
        *(ConfigOption(setting) for setting in settings().values()),
    ]
    return TrainCommand(
        "pyenvpool-train",
        callback=_main,
        params=params,
        help=(
            "Train an agent on a pyenvpool task with PPO (default) or SPO (--algo spo).\n\n"
            "Config precedence: built-in defaults < the task's embedded YAML < --config FILE "
            "< flags.\n\n"
            "Data-parallel on several processes or machines: start it under torchrun, e.g. "
            "torchrun --standalone --nproc-per-node 2 -m trainer.cli --task CartPole-v1 "
            "(docs/distributed.md)."
        ),
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    )


main = _build_command()

if __name__ == "__main__":
    main()
