"""Telemetry: metrics.jsonl schema, truncation on resume, plots."""

from __future__ import annotations

import json

from trainer.telemetry import CATEGORIES, Telemetry, dashboard_line, read_metrics, truncate_metrics


def make(tmp_path, **kwargs):
    defaults = dict(total_steps=100, tensorboard=False, progress=False, plot=True, title="t")
    defaults.update(kwargs)
    return Telemetry(tmp_path, **defaults)


def test_every_event_is_one_json_line_with_category_step_and_times(tmp_path, capsys):
    telemetry = make(tmp_path)
    for i, category in enumerate(CATEGORIES):
        metrics = (
            {"mean_return": 1.0 + i, "episodes": 3} if category != "TRAINER" else {"entropy": 0.5}
        )
        telemetry.log(category, 10 * (i + 1), metrics, update=i + 1, wall_time=0.5, train_time=0.25)
    telemetry.close()
    events = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [e["category"] for e in events] == list(CATEGORIES)
    for event in events:
        assert {"category", "env_steps", "update", "wall_time", "train_time", "time"} <= set(event)
    assert events[0]["entropy"] == 0.5
    printed = capsys.readouterr().out
    assert "EVALUATOR" in printed and "TRAINER" not in printed  # only evaluations unless echoed


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
        {"mean_return": 2.0, "min_return": 1.0, "max_return": 3.0},
        update=1,
        wall_time=0,
        train_time=0.1,
    )
    telemetry.plot()  # rate-limited: not yet
    assert not (tmp_path / "learning_curve.png").exists()
    telemetry.plot(force=True)
    assert (tmp_path / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    telemetry.close()


def test_tensorboard_events_are_written(tmp_path):
    telemetry = make(tmp_path, tensorboard=True)
    telemetry.log("TRAINER", 5, {"entropy": 0.5}, update=1, wall_time=0, train_time=0)
    telemetry.close()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_dashboard_line_formats_numbers():
    line = dashboard_line("ACTOR", 123456, {"mean_return": 12.3456, "episodes": 7, "lr": 2.5e-5})
    assert (
        line.startswith("ACTOR") and "123,456" in line and "12.35" in line and "2.500e-05" in line
    )
