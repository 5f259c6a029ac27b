"""Telemetry: metrics.jsonl, console dashboard, TensorBoard, progress bar, plots.

Every event has a category -- ``TRAINER`` (losses, entropy, KL, clip fraction,
explained variance, grad norm, learning rate), ``ACTOR`` (training episodes,
steps/s; two-player self-play: win, draw and loss rates per side), ``EVALUATOR``
(the evaluation protocol's numbers) or ``MISC`` (timings) -- and one step axis,
environment steps. An event becomes:

* one JSON line in ``metrics.jsonl``: ``category``, ``env_steps``, ``update``,
  ``wall_time`` (seconds of this run, summed over resumes), ``train_time``
  (of that, rollouts and updates only), ``time`` (Unix time), then the metrics;
* a TensorBoard scalar ``<category>/<metric>`` when tensorboard is installed.

The console, all of it within 80 columns (or the terminal's width):

* a dashboard at most every ``console_interval`` seconds (``dashboard``): by
  default one row of a table (steps, training return and length, three of the
  algorithm's numbers, steps/s) under a header repeated every
  ``HEADER_EVERY`` rows; with ``verbose``, every metric of every category;
* one line per evaluation (``evaluation_line``): the mean return with its
  spread, a success rate with its 95 % Wilson interval for binary-return
  tasks, win rates per opponent and side for two-player tasks;
* a progress bar (env steps, steps/s, ETA, last evaluation) when stdout is a
  terminal. Lines and the bar go through one rich console, so they never
  collide; the bar starts with the first update, after whatever the command
  printed before training. The ETA divides the steps left by a smoothed rate
  of this session alone (``RateEstimate``: evaluations and checkpoints
  included, the steps of earlier sessions not).

``learning_curve.png`` is redrawn after evaluations (at most every
``PLOT_INTERVAL`` seconds, since drawing costs a few tenths of a second) and
when the run ends: returns with the evaluation's min-max band; for
binary-return tasks (``tasks.Task.success``) the success rate with a Wilson
band; for two-player tasks the win rates against each opponent, per side.

A write that fails raises ``rundir.StorageError`` naming the file (metrics.jsonl,
tensorboard/, learning_curve.png); the plot is replaced atomically, so a failed
redraw leaves the previous one. ``close`` never raises: after a failure it must
not hide the first error.

Under torchrun only rank 0 has a ``Telemetry``; the other ranks log into a
``NullTelemetry``, which writes nothing.

On resume, ``metrics.jsonl`` is cut back to the checkpoint's step (events after
it are replayed by the resumed run) and TensorBoard purges them likewise, so no
event appears twice.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from trainer.rundir import StorageError, writing
from trainer.tasks import task_info

CATEGORIES = ("TRAINER", "ACTOR", "EVALUATOR", "MISC")
PLOT_INTERVAL = 30.0  # seconds between learning-curve redraws during a run
HEADER_EVERY = 20  # compact dashboard rows between repeated headers
STEPS_WIDTH = 12  # the compact dashboard's steps column (up to 999,999,999 and a space)
ETA_TIME_CONSTANT = 60.0  # seconds: how fast the ETA's rate follows a change of pace
WILSON_Z = 1.96  # 95 % intervals
# The compact dashboard's columns: (header, category, metric). The TRAINER
# columns are the first three of TRAINER_COLUMNS that the algorithm reports.
ACTOR_COLUMNS = (("return", "mean_return"), ("length", "episode_length_mean"))
SELF_PLAY_COLUMNS = (("1st wins", "self_play_first_win"), ("draws", "self_play_draw"))
TRAINER_COLUMNS = (
    ("entropy", "entropy"),
    ("value loss", "value_loss"),
    ("approx KL", "approx_kl"),
    ("critic loss", "critic_loss"),
    ("KL", "kl"),
    ("temperature", "temperature"),
    ("policy loss", "policy_loss"),
)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The events of a metrics.jsonl file (a torn last line is skipped)."""
    events = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


def truncate_metrics(path: Path, env_steps: int) -> list[dict[str, Any]]:
    """Keep only the events up to ``env_steps`` (atomically); returns them."""
    kept = [e for e in read_metrics(path) if e.get("env_steps", 0) <= env_steps]
    tmp = path.with_suffix(".jsonl.tmp")
    with writing(path):
        try:
            tmp.write_text("".join(json.dumps(e) + "\n" for e in kept))
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return kept


def format_value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value) or value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.1f}"
    return f"{value:.3e}"


def human_steps(steps: float) -> str:
    """A step count in at most 6 characters: 9,999, 123.4K, 12.35M."""
    if steps < 10_000:
        return f"{steps:,.0f}"
    if steps < 1_000_000:
        return f"{steps / 1e3:.1f}K"
    return f"{steps / 1e6:.2f}M"


def wilson_interval(rate: float, n: int, z: float = WILSON_Z) -> tuple[float, float]:
    """The Wilson score interval of a success rate over ``n`` trials."""
    if n <= 0:
        return 0.0, 1.0
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(centre - half, 0.0), min(centre + half, 1.0)


def evaluation_summary(task: str, metrics: dict[str, Any]) -> list[str]:
    """An evaluation in words, most important first: the mean return with its
    spread, a success rate with its 95 % Wilson interval (binary returns), or
    the win rates against each opponent as first and as second mover."""
    info = task_info(task)
    n = int(metrics.get("episodes", 0))
    if not n:
        return ["no episode finished"]
    parts = []
    if info.opponents:
        rates = ", ".join(
            f"{name} {metrics.get(f'{name}_first_win', 0):.2f}/"
            f"{metrics.get(f'{name}_second_win', 0):.2f}"
            for name in info.opponents
        )
        parts += [f"win as 1st/2nd: {rates}", f"{n:,} games"]
    elif info.success is not None:
        rate = metrics.get("success_rate", 0.0)
        low, high = wilson_interval(rate, n)
        parts.append(f"success {rate:.3f} (95% CI {low:.3f}-{high:.3f}) over {n:,} episodes")
        if "greedy_success_rate" in metrics:
            parts.append(f"greedy {metrics['greedy_success_rate']:.3f}")
    else:
        parts.append(
            f"return {format_value(metrics['mean_return'])} ± "
            f"{format_value(metrics['std_return'])} "
            f"({format_value(metrics['min_return'])} to {format_value(metrics['max_return'])})"
            f" over {n:,} episodes"
        )
        if "greedy_mean_return" in metrics:
            parts.append(f"greedy {format_value(metrics['greedy_mean_return'])}")
    for key, label in info.report:
        if key in metrics and key != "success_rate":
            parts.append(f"{label} {format_value(metrics[key])}")
    if "score" in metrics:
        parts.append(f"score {format_value(metrics['score'])}")
    return parts


def evaluation_line(task: str, env_steps: int, metrics: dict[str, Any], width: int = 80) -> str:
    """The console line of an evaluation, with its duration if that fits ``width``."""
    line = f"{_steps_label('eval', env_steps)}  " + ", ".join(evaluation_summary(task, metrics))
    duration = f", {metrics['duration']:.1f} s" if "duration" in metrics else ""
    return line + duration if len(line) + len(duration) <= width else line


def _steps_label(label: str, env_steps: int) -> str:
    """``label`` and the step count, right-aligned under the dashboard's steps column."""
    steps = f"{env_steps:,}"
    return f"{label}{steps:>{max(STEPS_WIDTH - len(label), len(steps) + 1)}}"


def headline(task: str, metrics: dict[str, Any]) -> str:
    """The last evaluation in a few characters, for the progress bar."""
    info = task_info(task)
    if not metrics.get("episodes"):
        return "-"
    if info.opponents:
        name = list(info.opponents)[-1]
        return f"{name[:5]} {metrics.get(f'{name}_win', 0):.2f}"
    if info.success is not None:
        return f"{metrics.get('success_rate', 0):.3f}"
    return format_value(metrics["mean_return"])


class RateEstimate:
    """Env steps per second of this session, for the ETA.

    The rate is an average over wall-clock time that weights each interval by
    ``1 - exp(-dt / time_constant)`` once the session is older than the time
    constant, and by its share of the session before that (a plain average of
    the session so far). So the first estimate is not one update's, later ones
    follow a change of pace within about a minute, evaluations and checkpoints
    count as the time they take, and after a resume the steps of earlier
    sessions count for nothing.
    """

    def __init__(self, time_constant: float = ETA_TIME_CONSTANT) -> None:
        self.time_constant = time_constant
        self.start: float | None = None
        self.last: tuple[int, float] | None = None
        self.rate: float | None = None

    def update(self, env_steps: int, now: float) -> None:
        if self.last is None:
            self.start, self.last = now, (env_steps, now)
            return
        steps, then = self.last
        dt = now - then
        if dt <= 0:
            return
        sample = (env_steps - steps) / dt
        weight = max(1.0 - math.exp(-dt / self.time_constant), dt / (now - self.start))
        self.rate = sample if self.rate is None else self.rate + weight * (sample - self.rate)
        self.last = (env_steps, now)

    def eta(self, steps_left: int) -> float | None:
        """Seconds until ``steps_left`` more steps, or None before two updates."""
        if not self.rate or self.rate <= 0:
            return None
        return max(steps_left, 0) / self.rate


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-:--:--"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Telemetry:
    """The sinks of one run's events; see the module docstring."""

    def __init__(
        self,
        run_dir: Path,
        *,
        total_steps: int,
        start_env_steps: int = 0,
        resume: bool = False,
        tensorboard: bool = True,
        progress: bool | None = None,
        console_interval: float = 10.0,
        title: str = "",
        plot: bool = True,
        task: str = "",
        self_play: bool = False,
        verbose: bool = False,
        console: Any = None,
    ) -> None:
        from rich.console import Console

        self.run_dir = run_dir
        self.path = run_dir / "metrics.jsonl"
        self.console_interval = console_interval
        self.title, self.task, self.verbose = title, task, verbose
        self.plot_enabled = plot
        self.plotted = 0
        self.last_plot = time.monotonic()  # the first drawing waits PLOT_INTERVAL too
        self.console = console or Console(highlight=False)
        history = truncate_metrics(self.path, start_env_steps) if resume else []
        self.actor_points = [
            (e["env_steps"], e["mean_return"])
            for e in history
            if e["category"] == "ACTOR" and "mean_return" in e
        ]
        self.eval_points = [e for e in history if e["category"] == "EVALUATOR"]
        with writing(self.path):
            self.file = self.path.open("a" if resume else "w")
        self.writer = None
        if tensorboard:
            self.writer = self._tensorboard(start_env_steps if resume else None)
        self.last_dashboard = -math.inf
        self.rows = 0
        self.columns: list[tuple[str, str, str]] | None = None
        self.actor_columns = SELF_PLAY_COLUMNS if self_play else ACTOR_COLUMNS
        self.last_eval = "-"
        self.total_steps = total_steps
        self.start_env_steps = start_env_steps
        self.show_bar = _want_progress(progress)
        self.bar: _ProgressBar | None = None
        self.rate = RateEstimate()

    def _tensorboard(self, resume_step: int | None) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return None
        _quiet_tensorboard_thread()
        purge = None if resume_step is None else resume_step + 1
        folder = self.run_dir / "tensorboard"
        with writing(folder):
            return SummaryWriter(log_dir=str(folder), purge_step=purge)

    # ---------------------------------------------------------------- events
    def dashboard_due(self) -> bool:
        """True at most every ``console_interval`` seconds (for per-update events)."""
        now = time.monotonic()
        if now - self.last_dashboard >= self.console_interval:
            self.last_dashboard = now
            return True
        return False

    def log(
        self,
        category: str,
        env_steps: int,
        metrics: dict[str, Any],
        *,
        update: int,
        wall_time: float,
        train_time: float,
    ) -> None:
        """Write one event; an evaluation is also printed and kept for the plot."""
        assert category in CATEGORIES, category
        event = {
            "category": category,
            "env_steps": env_steps,
            "update": update,
            "wall_time": round(wall_time, 6),
            "train_time": round(train_time, 6),
            "time": round(time.time(), 3),
            **metrics,
        }
        with writing(self.path):
            self.file.write(json.dumps(event) + "\n")
        if self.writer is not None:
            with writing(self.run_dir / "tensorboard"):
                for key, value in metrics.items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        self.writer.add_scalar(f"{category.lower()}/{key}", value, env_steps)
        if category == "ACTOR" and "mean_return" in metrics:
            self.actor_points.append((env_steps, metrics["mean_return"]))
        if category == "EVALUATOR":
            self.eval_points.append(event)
            self.last_eval = headline(self.task, metrics)
            self.print(evaluation_line(self.task, env_steps, metrics, self.console.width))

    def dashboard(self, env_steps: int, events: dict[str, dict[str, Any]]) -> None:
        """Print the dashboard for ``events`` (category -> metrics) of one update."""
        if self.verbose:
            self.console.print(verbose_dashboard(env_steps, events, self.console.width))
            return
        if self.columns is None:
            trainer = events.get("TRAINER", {})
            chosen = [(h, "TRAINER", k) for h, k in TRAINER_COLUMNS if k in trainer][:3]
            self.columns = [
                ("steps", "", ""),
                *((h, "ACTOR", k) for h, k in self.actor_columns),
                *chosen,
                ("steps/s", "ACTOR", "steps_per_second"),
            ]
        if self.rows % HEADER_EVERY == 0:
            self.print(_row([header for header, _, _ in self.columns]))
        cells = [
            f"{env_steps:,}" if not category else _cell(events.get(category, {}).get(key))
            for _, category, key in self.columns
        ]
        self.print(_row(cells))
        self.rows += 1

    def print(self, line: str) -> None:
        self.console.print(line, highlight=False, markup=False, soft_wrap=False)

    def progress(self, env_steps: int, steps_per_second: float) -> None:
        self.rate.update(env_steps, time.monotonic())
        if not self.show_bar:
            return
        if self.bar is None:
            self.bar = _ProgressBar(
                self.console, self.total_steps, self.start_env_steps, self.title
            )
        eta = self.rate.eta(self.total_steps - env_steps)
        self.bar.update(env_steps, steps_per_second, format_duration(eta), self.last_eval)

    def video(self, tag: str, gif: bytes, shape: tuple[int, int], env_steps: int) -> None:
        """Log an encoded animated GIF (``recording.gif_bytes``) to TensorBoard,
        where it plays in the Images tab as ``add_video``'s output does."""
        if self.writer is None:
            return
        from tensorboard.compat.proto.summary_pb2 import Summary

        height, width = shape
        image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=gif)
        with writing(self.run_dir / "tensorboard"):
            self.writer.file_writer.add_summary(
                Summary(value=[Summary.Value(tag=tag, image=image)]), env_steps
            )

    def flush(self) -> None:
        with writing(self.path):
            self.file.flush()
        if self.writer is not None:
            with writing(self.run_dir / "tensorboard"):
                self.writer.flush()

    def plot(self, force: bool = False) -> None:
        """Redraw learning_curve.png if there is a new evaluation, at most every
        ``PLOT_INTERVAL`` seconds unless ``force`` (drawing costs ~0.3 s)."""
        if not self.plot_enabled or len(self.eval_points) == self.plotted:
            return
        if not force and time.monotonic() - self.last_plot < PLOT_INTERVAL:
            return
        plot_learning_curve(
            self.actor_points,
            self.eval_points,
            self.run_dir / "learning_curve.png",
            self.title,
            self.task,
        )
        self.plotted = len(self.eval_points)
        self.last_plot = time.monotonic()

    def close(self) -> None:
        """Stop the bar and close the files; never raises (see the module docstring)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        with contextlib.suppress(OSError, StorageError):
            self.file.close()
        if self.writer is not None:
            with contextlib.suppress(OSError, StorageError):
                self.writer.close()


class NullTelemetry:
    """The sinks of a rank that is not rank 0: every event is dropped."""

    def dashboard_due(self) -> bool:
        return False

    def log(self, category: str, env_steps: int, metrics: dict[str, Any], **kwargs: Any) -> None:
        pass

    def dashboard(self, env_steps: int, events: dict[str, dict[str, Any]]) -> None:
        pass

    def print(self, line: str) -> None:
        pass

    def progress(self, env_steps: int, steps_per_second: float) -> None:
        pass

    def video(self, tag: str, gif: bytes, shape: tuple[int, int], env_steps: int) -> None:
        pass

    def flush(self) -> None:
        pass

    def plot(self, force: bool = False) -> None:
        pass

    def close(self) -> None:
        pass


# ------------------------------------------------------------------ console
def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and abs(value) >= 1000 and math.isfinite(value):
        return f"{value:,.0f}"
    return format_value(value)


def _row(cells: list[str]) -> str:
    """One compact dashboard row: the steps in 12 columns, the rest in 10 each."""
    return f"{cells[0]:>{STEPS_WIDTH}}" + "".join(f" {cell:>10}" for cell in cells[1:])


def verbose_dashboard(env_steps: int, events: dict[str, dict[str, Any]], width: int) -> Any:
    """Every metric of every category, as name-value pairs in as many columns
    as ``width`` allows."""
    from rich.console import Group
    from rich.rule import Rule
    from rich.table import Table

    parts: list[Any] = [Rule(f"{env_steps:,} env steps", align="left", characters="─")]
    for category, metrics in events.items():
        if not metrics:
            continue
        names = [str(k) for k in metrics]
        name_width = max(len(n) for n in names)
        pair = name_width + 1 + 10 + 3  # name, value, and the gap before the next pair
        per_row = max(1, (width - 9) // pair)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=8, no_wrap=True)
        for i in range(per_row):
            grid.add_column(width=name_width, no_wrap=True)
            grid.add_column(width=10, justify="right", no_wrap=True)
            if i < per_row - 1:
                grid.add_column(width=1)
        items = [(n, format_value(v)) for n, v in metrics.items()]
        for start in range(0, len(items), per_row):
            cells = [category if start == 0 else ""]
            for i, (name, value) in enumerate(items[start : start + per_row]):
                cells += [name, value] + ([""] if i < per_row - 1 else [])
            grid.add_row(*cells)
        parts.append(grid)
    return Group(*parts)


def _want_progress(progress: bool | None) -> bool:
    return sys.stdout.isatty() if progress is None else progress


class _ProgressBar:
    """A rich progress bar: env steps, steps/s, ETA and the last evaluation."""

    def __init__(self, console: Any, total: int, completed: int, title: str) -> None:
        from rich.progress import BarColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=12),
            TextColumn("{task.fields[steps]}"),
            TextColumn("{task.fields[sps]}/s"),
            TextColumn("ETA {task.fields[eta]}"),
            TextColumn("eval {task.fields[last_eval]}"),
            console=console,
            transient=False,
        )
        self.total = total
        self.task = self.progress.add_task(
            title,
            total=total,
            completed=completed,
            steps=self._steps(completed),
            sps="-",
            eta=format_duration(None),
            last_eval="-",
        )
        self.progress.start()

    def _steps(self, completed: int) -> str:
        return f"{human_steps(completed)}/{human_steps(self.total)}"

    def update(self, env_steps: int, steps_per_second: float, eta: str, last_eval: str) -> None:
        self.progress.update(
            self.task,
            completed=env_steps,
            steps=self._steps(env_steps),
            sps=human_steps(steps_per_second),
            eta=eta,
            last_eval=last_eval,
        )

    def close(self) -> None:
        self.progress.stop()


def _quiet_tensorboard_thread() -> None:
    """TensorBoard writes from a thread of its own; when a write fails (a full
    disk) that thread prints a traceback, and the next write or flush raises
    the same error here, where the run reports it. Keep the traceback away."""
    if getattr(threading.excepthook, "quiet_tensorboard", False):
        return
    previous = threading.excepthook

    def hook(args: Any) -> None:
        if isinstance(args.exc_value, OSError) and type(args.thread).__name__ == (
            "_AsyncWriterThread"
        ):
            return
        previous(args)

    hook.quiet_tensorboard = True  # type: ignore[attr-defined]
    threading.excepthook = hook


# -------------------------------------------------------------------- plots
def plot_learning_curve(
    actor_points: list[tuple[int, float]],
    eval_events: list[dict[str, Any]],
    path: Path,
    title: str,
    task: str = "",
) -> None:
    """Write ``learning_curve_figure`` to ``path`` (a PNG) atomically."""
    fig = learning_curve_figure(actor_points, eval_events, title, task)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    tmp = path.with_name(f".{path.name}.tmp")
    with writing(path):
        try:
            tmp.write_bytes(buffer.getvalue())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def learning_curve_figure(
    actor_points: list[tuple[int, float]], eval_events: list[dict[str, Any]], title: str, task: str
) -> Any:
    """The learning curve against env steps and against training time (see the
    module docstring for what it shows per kind of task): a matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), dpi=90)
    by_steps, by_time = fig.subplots(1, 2)
    events = [e for e in eval_events if e.get("episodes")]
    info = task_info(task)
    if info.opponents:
        _plot_matches(by_steps, by_time, events, list(info.opponents))
    elif info.success is not None:
        _plot_success(by_steps, by_time, actor_points, events)
    else:
        _plot_returns(by_steps, by_time, actor_points, events)
    for ax in (by_steps, by_time):
        ax.grid(alpha=0.3)
    by_steps.set_xlabel("environment steps")
    by_time.set_xlabel("training wall time (s)")
    by_steps.legend(loc="lower right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _plot_returns(by_steps: Any, by_time: Any, actor_points: list, events: list) -> None:
    steps = [e["env_steps"] for e in events]
    means = [e["mean_return"] for e in events]
    lows = [e.get("min_return", m) for e, m in zip(events, means)]
    highs = [e.get("max_return", m) for e, m in zip(events, means)]
    if actor_points:
        xs, ys = zip(*actor_points)
        by_steps.plot(xs, ys, color="tab:gray", alpha=0.7, label="training episodes (last 100)")
    by_steps.fill_between(
        steps, lows, highs, color="tab:blue", alpha=0.15, label="evaluation min-max"
    )
    by_steps.plot(steps, means, "o-", color="tab:blue", markersize=3, label="evaluation mean")
    greedy = [e.get("greedy_mean_return") for e in events]
    if any(g is not None for g in greedy):  # SPO: the main curve is the search's
        by_steps.plot(
            [s for s, g in zip(steps, greedy) if g is not None],
            [g for g in greedy if g is not None],
            "s--",
            color="tab:orange",
            markersize=3,
            label="evaluation mean (greedy, no search)",
        )
    by_steps.set_ylabel("episode return")
    by_time.plot([e["train_time"] for e in events], means, "o-", color="tab:blue", markersize=3)
    by_time.set_ylabel("evaluation mean return")


def _band(ax: Any, xs: list, rates: list, counts: list, color: str) -> None:
    bounds = [wilson_interval(r, n) for r, n in zip(rates, counts)]
    ax.fill_between(xs, [b[0] for b in bounds], [b[1] for b in bounds], color=color, alpha=0.15)


def _plot_success(by_steps: Any, by_time: Any, actor_points: list, events: list) -> None:
    steps = [e["env_steps"] for e in events]
    rates = [e.get("success_rate", 0.0) for e in events]
    counts = [e["episodes"] for e in events]
    if actor_points:
        xs, ys = zip(*actor_points)
        by_steps.plot(xs, ys, color="tab:gray", alpha=0.7, label="training episodes (last 100)")
    _band(by_steps, steps, rates, counts, "tab:blue")
    by_steps.plot(
        steps, rates, "o-", color="tab:blue", markersize=3, label="evaluation (95% Wilson band)"
    )
    greedy = [(s, e.get("greedy_success_rate")) for s, e in zip(steps, events)]
    if any(g is not None for _, g in greedy):  # SPO: the main curve is the search's
        xs, ys = zip(*[(s, g) for s, g in greedy if g is not None])
        by_steps.plot(xs, ys, "s--", color="tab:orange", markersize=3, label="greedy, no search")
    times = [e["train_time"] for e in events]
    _band(by_time, times, rates, counts, "tab:blue")
    by_time.plot(times, rates, "o-", color="tab:blue", markersize=3)
    for ax in (by_steps, by_time):
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("success rate")


def _plot_matches(by_steps: Any, by_time: Any, events: list, opponents: list[str]) -> None:
    colors = ["tab:green", "tab:red", "tab:purple", "tab:brown"]
    for color, name in zip(colors, opponents):
        for side, style in (("first", "o-"), ("second", "s--")):
            key, games = f"{name}_{side}_win", f"{name}_{side}_games"
            rows = [e for e in events if key in e and e.get(games)]
            if not rows:
                continue
            label = f"vs {name}, moving {side}"
            for ax, x in ((by_steps, "env_steps"), (by_time, "train_time")):
                xs = [e[x] for e in rows]
                rates = [e[key] for e in rows]
                _band(ax, xs, rates, [e[games] for e in rows], color)
                ax.plot(xs, rates, style, color=color, markersize=3, label=label)
    for ax in (by_steps, by_time):
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("evaluation win rate (95% Wilson band)")
