"""Telemetry: metrics.jsonl, console dashboard, TensorBoard, progress bar, plots.

Every event has a category -- ``TRAINER`` (losses, entropy, KL, clip fraction,
explained variance, grad norm, learning rate), ``ACTOR`` (training episodes,
steps/s), ``EVALUATOR`` (the evaluation protocol's numbers) or ``MISC``
(timings) -- and one step axis, environment steps. An event becomes:

* one JSON line in ``metrics.jsonl``: ``category``, ``env_steps``, ``update``,
  ``wall_time`` (seconds of this run, summed over resumes), ``train_time``
  (of that, rollouts and updates only), ``time`` (Unix time), then the metrics;
* a TensorBoard scalar ``<category>/<metric>`` when tensorboard is installed;
* a console dashboard line (evaluations always; the others at most every
  ``console_interval`` seconds).

``learning_curve.png`` is redrawn after evaluations (at most every
``PLOT_INTERVAL`` seconds, since drawing costs a few tenths of a second) and
when the run ends.

Under torchrun only rank 0 has a ``Telemetry``; the other ranks log into a
``NullTelemetry``, which writes nothing.

On resume, ``metrics.jsonl`` is cut back to the checkpoint's step (events after
it are replayed by the resumed run) and TensorBoard purges them likewise, so no
event appears twice.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

CATEGORIES = ("TRAINER", "ACTOR", "EVALUATOR", "MISC")
PLOT_INTERVAL = 30.0  # seconds between learning-curve redraws during a run


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
    tmp.write_text("".join(json.dumps(e) + "\n" for e in kept))
    os.replace(tmp, path)
    return kept


def format_value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value) or value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.1f}"
    return f"{value:.3e}"


def dashboard_line(category: str, env_steps: int, metrics: dict[str, Any]) -> str:
    body = " | ".join(f"{k} {format_value(v)}" for k, v in metrics.items())
    return f"{category:<9} steps {env_steps:,} | {body}"


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
    ) -> None:
        self.run_dir = run_dir
        self.path = run_dir / "metrics.jsonl"
        self.console_interval = console_interval
        self.title = title
        self.plot_enabled = plot
        self.plotted = 0
        self.last_plot = time.monotonic()  # the first drawing waits PLOT_INTERVAL too
        history = truncate_metrics(self.path, start_env_steps) if resume else []
        self.actor_points = [
            (e["env_steps"], e["mean_return"])
            for e in history
            if e["category"] == "ACTOR" and "mean_return" in e
        ]
        self.eval_points = [
            e for e in history if e["category"] == "EVALUATOR" and "mean_return" in e
        ]
        self.file = self.path.open("a" if resume else "w")
        self.writer = (
            self._tensorboard(start_env_steps if resume else None) if tensorboard else None
        )
        self.last_dashboard = -math.inf
        self.last_eval = "-"
        self.bar = (
            _ProgressBar(total_steps, start_env_steps, title) if _want_progress(progress) else None
        )

    def _tensorboard(self, resume_step: int | None) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return None
        purge = None if resume_step is None else resume_step + 1
        return SummaryWriter(log_dir=str(self.run_dir / "tensorboard"), purge_step=purge)

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
        echo: bool = False,
    ) -> None:
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
        self.file.write(json.dumps(event) + "\n")
        if self.writer is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(f"{category.lower()}/{key}", value, env_steps)
        if category == "ACTOR" and "mean_return" in metrics:
            self.actor_points.append((env_steps, metrics["mean_return"]))
        if category == "EVALUATOR" and "mean_return" in metrics:
            self.eval_points.append(event)
            self.last_eval = format_value(metrics["mean_return"])
        if echo or category == "EVALUATOR":
            self.print(dashboard_line(category, env_steps, metrics))

    def print(self, line: str) -> None:
        if self.bar is not None:
            self.bar.print(line)
        else:
            print(line, flush=True)

    def progress(self, env_steps: int, steps_per_second: float) -> None:
        if self.bar is not None:
            self.bar.update(env_steps, steps_per_second, self.last_eval)

    def flush(self) -> None:
        self.file.flush()
        if self.writer is not None:
            self.writer.flush()

    def plot(self, force: bool = False) -> None:
        """Redraw learning_curve.png if there is a new evaluation, at most every
        ``PLOT_INTERVAL`` seconds unless ``force`` (drawing costs ~0.3 s)."""
        if not self.plot_enabled or len(self.eval_points) == self.plotted:
            return
        if not force and time.monotonic() - self.last_plot < PLOT_INTERVAL:
            return
        plot_learning_curve(
            self.actor_points, self.eval_points, self.run_dir / "learning_curve.png", self.title
        )
        self.plotted = len(self.eval_points)
        self.last_plot = time.monotonic()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.file.close()
        if self.writer is not None:
            self.writer.close()


class NullTelemetry:
    """The sinks of a rank that is not rank 0: every event is dropped."""

    def dashboard_due(self) -> bool:
        return False

    def log(self, category: str, env_steps: int, metrics: dict[str, Any], **kwargs: Any) -> None:
        pass

    def print(self, line: str) -> None:
        pass

    def progress(self, env_steps: int, steps_per_second: float) -> None:
        pass

    def flush(self) -> None:
        pass

    def plot(self, force: bool = False) -> None:
        pass

    def close(self) -> None:
        pass


def _want_progress(progress: bool | None) -> bool:
    return sys.stdout.isatty() if progress is None else progress


class _ProgressBar:
    """A rich progress bar: env steps, steps/s, ETA and the last evaluation."""

    def __init__(self, total: int, completed: int, title: str) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=20),
            TextColumn("{task.completed:,}/{task.total:,} steps"),
            TextColumn("{task.fields[sps]} steps/s"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("eval {task.fields[last_eval]}"),
            transient=False,
        )
        self.task = self.progress.add_task(
            title, total=total, completed=completed, sps="-", last_eval="-"
        )
        self.progress.start()

    def update(self, env_steps: int, steps_per_second: float, last_eval: str) -> None:
        self.progress.update(
            self.task, completed=env_steps, sps=f"{steps_per_second:,.0f}", last_eval=last_eval
        )

    def print(self, line: str) -> None:
        self.progress.console.print(line, highlight=False, markup=False, soft_wrap=True)

    def close(self) -> None:
        self.progress.stop()


def plot_learning_curve(
    actor_points: list[tuple[int, float]], eval_events: list[dict[str, Any]], path: Path, title: str
) -> None:
    """Return against env steps and against training time; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), dpi=90)
    by_steps, by_time = fig.subplots(1, 2)
    steps = [e["env_steps"] for e in eval_events]
    means = [e["mean_return"] for e in eval_events]
    lows = [e.get("min_return", m) for e, m in zip(eval_events, means)]
    highs = [e.get("max_return", m) for e, m in zip(eval_events, means)]
    if actor_points:
        xs, ys = zip(*actor_points)
        by_steps.plot(xs, ys, color="tab:gray", alpha=0.7, label="training episodes (last 100)")
    by_steps.fill_between(
        steps, lows, highs, color="tab:blue", alpha=0.15, label="evaluation min-max"
    )
    by_steps.plot(steps, means, "o-", color="tab:blue", markersize=3, label="evaluation mean")
    greedy = [e.get("greedy_mean_return") for e in eval_events]
    if any(g is not None for g in greedy):  # SPO: the main curve is the search's
        by_steps.plot(
            [s for s, g in zip(steps, greedy) if g is not None],
            [g for g in greedy if g is not None],
            "s--",
            color="tab:orange",
            markersize=3,
            label="evaluation mean (greedy, no search)",
        )
    by_steps.set_xlabel("environment steps")
    by_steps.set_ylabel("episode return")
    by_steps.legend(loc="lower right", fontsize=8)
    by_time.plot(
        [e["train_time"] for e in eval_events], means, "o-", color="tab:blue", markersize=3
    )
    by_time.set_xlabel("training wall time (s)")
    by_time.set_ylabel("evaluation mean return")
    for ax in (by_steps, by_time):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp)
    os.replace(tmp, path)
