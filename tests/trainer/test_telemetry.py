"""Telemetry: metrics.jsonl schema, truncation on resume, the 80-column console,
the ETA, plots for returns, success rates and matches."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from trainer.telemetry import (
    CATEGORIES,
    RateEstimate,
    Telemetry,
    evaluation_line,
    format_duration,
    learning_curve_figure,
    read_metrics,
    truncate_metrics,
    wilson_interval,
)


def make(tmp_path, **kwargs):
    defaults = dict(total_steps=100, tensorboard=False, progress=False, plot=True, title="t")
    defaults.update(kwargs)
    return Telemetry(tmp_path, **defaults)


def console80() -> Console:
    return Console(width=80, record=True, file=io.StringIO(), color_system=None)


def test_every_event_is_one_json_line_with_category_step_and_times(tmp_path):
    console = console80()
    telemetry = make(tmp_path, console=console)
    for i, category in enumerate(CATEGORIES):
        metrics = (
            {"mean_return": 1.0 + i, "std_return": 0.0, "min_return": 1.0, "max_return": 1.0}
            if category != "TRAINER"
            else {"entropy": 0.5}
        )
        metrics["episodes"] = 3
        telemetry.log(category, 10 * (i + 1), metrics, update=i + 1, wall_time=0.5, train_time=0.25)
    telemetry.close()
    events = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [e["category"] for e in events] == list(CATEGORIES)
    for event in events:
        assert {"category", "env_steps", "update", "wall_time", "train_time", "time"} <= set(event)
    assert events[0]["entropy"] == 0.5
    printed = console.export_text()
    assert printed.startswith("eval") and "TRAINER" not in printed  # only evaluations


def test_resume_cuts_events_after_the_checkpoint(tmp_path):
    telemetry = make(tmp_path)
    for step in (10, 20, 30):
        telemetry.log(
            "ACTOR",
            step,
            {"mean_return": float(step)},
            update=step // 10,
            wall_time=0.0,
            train_time=0.0,
        )
    telemetry.close()
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"category": "ACTOR", "env_steps": 40, "mean_ret')  # a torn line from a crash
    resumed = make(tmp_path, start_env_steps=20, resume=True)
    resumed.log("ACTOR", 30, {"mean_return": 3.0}, update=3, wall_time=0.0, train_time=0.0)
    resumed.close()
    steps = [e["env_steps"] for e in read_metrics(tmp_path / "metrics.jsonl")]
    assert steps == [10, 20, 30]
    assert [p[0] for p in resumed.actor_points] == [10, 20, 30]


def test_truncate_metrics_keeps_the_checkpoint_step(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        "".join(json.dumps({"category": "MISC", "env_steps": s}) + "\n" for s in (1, 2, 3))
    )
    assert [e["env_steps"] for e in truncate_metrics(path, 2)] == [1, 2]


def test_plot_is_written_on_force(tmp_path):
    telemetry = make(tmp_path)
    telemetry.log("ACTOR", 10, {"mean_return": 1.0}, update=1, wall_time=0, train_time=0.1)
    telemetry.log(
        "EVALUATOR",
        10,
        {"episodes": 4, "mean_return": 2.0, "std_return": 1, "min_return": 1.0, "max_return": 3.0},
        update=1,
        wall_time=0,
        train_time=0.1,
    )
    telemetry.plot()  # rate-limited: not yet
    assert not (tmp_path / "learning_curve.png").exists()
    telemetry.plot(force=True)
    assert (tmp_path / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir() if "tmp" in p.name] == []
    telemetry.close()


def test_tensorboard_events_are_written(tmp_path):
    telemetry = make(tmp_path, tensorboard=True)
    telemetry.log("TRAINER", 5, {"entropy": 0.5}, update=1, wall_time=0, train_time=0)
    telemetry.close()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


# ------------------------------------------------------------------ console
TRAINER = {
    "policy_loss": -0.002103,
    "value_loss": 11.04,
    "entropy": 0.6922,
    "approx_kl": 8.628e-4,
    "clip_fraction": 0.0,
    "grad_norm": 5.033,
    "explained_variance": -0.007532,
    "learning_rate": 0.0025,
    "epochs": 4,
}
ACTOR = {
    "episodes": 4,
    "total_episodes": 4,
    "mean_return": 14.25,
    "min_return": 14.0,
    "max_return": 15.0,
    "episode_length_mean": 14.25,
    "steps_per_second": 1359.3,
}
MISC = {
    "rollout_time": 0.005311,
    "env_time": 2.2e-4,
    "inference_time": 0.004554,
    "storage_time": 5.369e-4,
    "update_time": 0.08876,
    "env_steps_per_second": 5.817e5,
}
EVALUATION = {
    "episodes": 100,
    "mean_return": 487.25,
    "std_return": 12.1,
    "min_return": 400.0,
    "max_return": 500.0,
    "duration": 0.41,
}
SNAPSHOT = """\
       steps     return     length    entropy value loss  approx KL    steps/s
     131,072      14.25      14.25     0.6922      11.04  8.628e-04      1,359
   1,048,576      14.25      14.25     0.6922      11.04  8.628e-04      1,359
eval 1,048,576  return 487.2 ± 12.1 (400 to 500) over 100 episodes, 0.4 s
1,179,648 env steps ────────────────────────────────────────────────────────────
TRAINER  policy_loss         -0.002103   value_loss              11.04
         entropy                0.6922   approx_kl           8.628e-04
         clip_fraction               0   grad_norm               5.033
         explained_variance  -0.007532   learning_rate          0.0025
         epochs                      4
ACTOR    episodes                     4   total_episodes               4
         mean_return              14.25   min_return                  14
         max_return                  15   episode_length_mean      14.25
         steps_per_second       1,359.3
MISC     rollout_time           0.005311   env_time              2.200e-04
         inference_time         0.004554   storage_time          5.369e-04
         update_time             0.08876   env_steps_per_second  5.817e+05
"""


def test_console_snapshot_at_80_columns(tmp_path):
    """The compact dashboard (a header, then one row per tick), an evaluation
    line, and the --verbose dashboard, as an 80-column terminal shows them."""
    console = console80()
    telemetry = make(tmp_path, console=console, task="CartPole-v1", console_interval=0)
    events = {"TRAINER": TRAINER, "ACTOR": ACTOR, "MISC": MISC}
    telemetry.dashboard(131_072, events)
    telemetry.dashboard(1_048_576, events)
    telemetry.log("EVALUATOR", 1_048_576, EVALUATION, update=8, wall_time=1, train_time=1)
    telemetry.verbose = True
    telemetry.dashboard(1_179_648, events)
    telemetry.close()
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    assert "\n".join(lines) + "\n" == SNAPSHOT
    assert max(len(line) for line in lines) <= 80


def test_compact_dashboard_picks_each_algorithms_numbers_and_self_play_rates(tmp_path):
    console = console80()
    spo = {"critic_loss": 0.25, "kl": 0.01, "temperature": 0.5, "grad_norm": 1.0}
    telemetry = make(tmp_path, console=console, self_play=True)
    actor = {"self_play_first_win": 0.55, "self_play_draw": 0.01, "steps_per_second": 2e4}
    telemetry.dashboard(512, {"TRAINER": spo, "ACTOR": actor, "MISC": {}})
    header, row = console.export_text().splitlines()
    assert header.split() == ["steps", "1st", "wins", "draws", "critic", "loss", "KL"] + [
        "temperature",
        "steps/s",
    ]
    assert row.split() == ["512", "0.55", "0.01", "0.25", "0.01", "0.5", "20,000"]


def test_evaluation_lines_for_binary_returns_and_matches():
    maze = evaluation_line("Maze-v0", 4096, {"episodes": 1000, "success_rate": 0.812})
    low, high = wilson_interval(0.812, 1000)
    assert f"success 0.812 (95% CI {low:.3f}-{high:.3f}) over 1,000 episodes" in maze
    games = {"episodes": 200, "duration": 1.0}
    for name, rates in (("random", (1.0, 0.99)), ("heuristic", (0.94, 0.91))):
        games[f"{name}_first_win"], games[f"{name}_second_win"] = rates
    line = evaluation_line("ConnectFour-v0", 20_000_000, games)
    assert line == (
        "eval 20,000,000  win as 1st/2nd: random 1.00/0.99, heuristic 0.94/0.91, 200 games"
    )  # the duration did not fit in 80 columns
    assert evaluation_line("ConnectFour-v0", 4096, games, width=100).endswith("games, 1.0 s")


def test_wilson_interval():
    low, high = wilson_interval(0.5, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
    assert wilson_interval(1.0, 10)[1] == 1.0 and wilson_interval(0.0, 10)[0] == 0.0
    assert wilson_interval(1.0, 10)[0] == pytest.approx(0.7225, abs=1e-4)


# ---------------------------------------------------------------------- ETA
def test_eta_smooths_a_slow_start_and_evaluation_pauses():
    """1000 steps/s with a 5 s pause (an evaluation) every 20 s: 800 steps/s on
    average. A first update four times slower does not set the estimate."""
    rate = RateEstimate()
    steps, now = 0, 0.0
    rate.update(steps, now)
    steps, now = 1000, 4.0  # the slow first update
    rate.update(steps, now)
    estimates = []
    for second in range(1, 600):
        steps += 1000
        now += 1.0 + (5.0 if second % 20 == 0 else 0.0)
        rate.update(steps, now)
        estimates.append(rate.rate)
    assert all(650 < r < 1000 for r in estimates[60:]), min(estimates[60:])
    assert rate.eta(800_000) == pytest.approx(1000, rel=0.2)


def test_eta_after_a_resume_counts_only_this_session():
    rate = RateEstimate()
    rate.update(5_000_000, 100.0)  # the resumed run starts at 5 M steps
    for i in range(1, 31):
        rate.update(5_000_000 + 2000 * i, 100.0 + i)
    assert rate.rate == pytest.approx(2000)
    assert format_duration(rate.eta(120_000)) == "0:01:00"
    assert format_duration(None) == "-:--:--"


# -------------------------------------------------------------------- plots
def _eval(step, **metrics):
    return {"category": "EVALUATOR", "env_steps": step, "train_time": step / 100, **metrics}


def test_binary_returns_plot_a_success_rate_with_a_wilson_band():
    events = [_eval(s, episodes=100, success_rate=r) for s, r in ((100, 0.2), (200, 0.6))]
    fig = learning_curve_figure([(100, 0.1), (200, 0.5)], events, "Maze", "Maze-v0")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "success rate" and ax.get_ylim() == (-0.02, 1.02)
    (band,) = ax.collections  # the Wilson band, not a min-max band
    top = band.get_paths()[0].vertices[:, 1].max()
    assert top == pytest.approx(wilson_interval(0.6, 100)[1])
    labels = [line.get_label() for line in ax.get_lines()]
    assert "evaluation (95% Wilson band)" in labels


def test_connect_four_plots_win_rates_per_opponent_and_side():
    event = {"episodes": 200}
    for name in ("random", "heuristic"):
        for side in ("first", "second"):
            event[f"{name}_{side}_win"] = 0.9
            event[f"{name}_{side}_games"] = 50
    fig = learning_curve_figure(
        [], [_eval(100, **event), _eval(200, **event)], "C4", "ConnectFour-v0"
    )
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == [
        "vs random, moving first",
        "vs random, moving second",
        "vs heuristic, moving first",
        "vs heuristic, moving second",
    ]
    assert fig.axes[0].get_ylim() == (-0.02, 1.02)
