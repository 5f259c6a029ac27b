"""End-to-end runs of the ``pyenvpool-train`` command on tiny budgets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# The checkout goes on the child's path only when it holds a development
# build (pyenvpool/_core*.so); otherwise the child imports the installed package.
IN_PLACE = [str(ROOT)] if any((ROOT / "pyenvpool").glob("_core*.so")) else []
TINY = [
    "--num-envs",
    "8",
    "--num-steps",
    "16",
    "--total-steps",
    "512",
    "--eval-interval",
    "256",
    "--eval-episodes",
    "4",
    "--eval-num-envs",
    "4",
    "--checkpoint-interval",
    "256",
    "--task-kwargs",
    "{max_episode_steps: 40}",
    "--no-progress",
]


def cli(*args, cwd, check=True, env=None):
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(IN_PLACE + [os.environ.get("PYTHONPATH", "")]),
        **(env or {}),
    )
    result = subprocess.run(
        [sys.executable, "-m", "trainer.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def test_train_resume_fork_evaluate(tmp_path):
    out = cli("--task", "CartPole-v1", *TINY, "--run-dir", "runs/first", cwd=tmp_path)
    run = tmp_path / "runs" / "first"
    assert "run directory: runs/first" in out.stdout and "budget: 512 env steps" in out.stdout
    assert {p.name for p in run.iterdir()} >= {
        "config.yaml",
        "metrics.jsonl",
        "checkpoints",
        "learning_curve.png",
        "tensorboard",
    }
    checkpoints = {p.name for p in (run / "checkpoints").iterdir()}
    assert {"latest", "best", "step_512"} <= checkpoints
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["task"] == "CartPole-v1" and config["num_envs"] == 8
    assert config["network"]["architecture"] == "mlp"  # resolved, not "auto"
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert {json.loads(line)["category"] for line in lines} == {
        "TRAINER",
        "ACTOR",
        "EVALUATOR",
        "MISC",
    }

    # Resume: only the budget may change.
    bad = cli("--resume", "runs/first", "--learning-rate", "0.1", cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "only --total-steps may" in bad.stderr
    out = cli("--resume", "runs/first", "--total-steps", "768", "--no-progress", cwd=tmp_path)
    assert "budget: 768 env steps" in out.stdout
    steps = [
        json.loads(line)["env_steps"]
        for line in (run / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["category"] == "TRAINER"
    ]
    assert steps == [128, 256, 384, 512, 640, 768]

    # Fork from the best checkpoint with a new learning rate into a new run.
    out = cli(
        "--fork",
        "runs/first/checkpoints/best",
        "--learning-rate",
        "1e-4",
        "--total-steps",
        "256",
        "--run-dir",
        "runs/child",
        "--no-progress",
        cwd=tmp_path,
    )
    child = yaml.safe_load((tmp_path / "runs" / "child" / "config.yaml").read_text())
    assert child["ppo"]["learning_rate"] == 1e-4 and child["num_envs"] == 8

    # Evaluate a checkpoint: mean/min/max return and length, and final states.
    out = cli(
        "--evaluate",
        "runs/first/checkpoints/latest",
        "--eval-episodes",
        "6",
        "--render",
        "2",
        cwd=tmp_path,
    )
    assert "6 episodes" in out.stdout and "return mean" in out.stdout and "min" in out.stdout
    assert "length mean" in out.stdout
    assert out.stdout.count("how evaluation episode") == 2
    bad = cli("--evaluate", "runs/first", "--learning-rate", "1", cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "does not apply to --evaluate" in bad.stderr


def test_default_run_name_and_runs_root(tmp_path):
    cli(
        "--task",
        "CartPole-v1",
        *TINY,
        "--total-steps",
        "128",
        "--seed",
        "4",
        "--runs-root",
        "out",
        "--no-tensorboard",
        "--no-plot",
        cwd=tmp_path,
    )
    (run,) = (tmp_path / "out").iterdir()
    assert run.name.startswith("CartPole-v1-ppo-seed4-")
    assert not (run / "tensorboard").exists() and not (run / "learning_curve.png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "CartPole-v1", "--lerning-rate", "1"], "--learning-rate"),
        (["--task", "NoSuchTask-v0", "--print-config"], "unknown task 'NoSuchTask-v0'; known"),
        (["--task", "Nope-v0"], "unknown task 'Nope-v0'; known: "),
        (["--task", "CartPol-v1"], "unknown task 'CartPol-v1' (did you mean 'CartPole-v1'?)"),
        (["--task", "maze", "--print-config"], "(did you mean 'Maze-v0'?)"),
        (["--task", "CartPole-v1", "--num-envs", "many"], "num_envs: expected an integer"),
        (["--num-envs", "4"], "no task given"),
    ],
)
def test_usage_errors_name_the_problem(tmp_path, args, message):
    result = cli(*args, cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr


def test_unknown_key_in_config_file_suggests_the_right_one(tmp_path):
    (tmp_path / "my.yaml").write_text("task: CartPole-v1\nppo:\n  clip_cof: 0.1\n")
    result = cli("--config", "my.yaml", cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "unknown config key 'ppo.clip_cof'" in result.stderr and "clip_coef" in result.stderr


def test_print_config_shows_the_precedence(tmp_path):
    (tmp_path / "my.yaml").write_text("num_envs: 5\nppo:\n  learning_rate: 0.5\n")
    out = cli(
        "--task",
        "CartPole-v1",
        "--config",
        "my.yaml",
        "--learning-rate",
        "0.25",
        "--print-config",
        cwd=tmp_path,
    )
    config = yaml.safe_load(out.stdout)
    assert config["num_envs"] == 5 and config["ppo"]["learning_rate"] == 0.25


def test_help_lists_every_config_field_without_importing_torch():
    code = (
        "import sys, trainer.cli; "
        "from click.testing import CliRunner; "
        "r = CliRunner().invoke(trainer.cli.main, ['--help']); "
        "assert r.exit_code == 0, r.output; "
        "assert '--clip-coef' in r.output and '--architecture' in r.output; "
        "assert '--anneal-lr / --no-anneal-lr' in r.output; "
        "assert 'torch' not in sys.modules"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(IN_PLACE), COLUMNS="120")
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def help_text(*args):
    from click.testing import CliRunner

    import trainer.cli

    result = CliRunner().invoke(trainer.cli.main, list(args))
    assert result.exit_code == 0, result.output
    return " ".join(re.sub(r"-\n\s*", "-", result.output).split())  # without the wrapping


TOTAL_STEPS_HELP = "--total-steps INT Environment steps to train for, rounded up to whole updates."


@pytest.mark.parametrize(
    "args", [["--task", "CartPole-v1", "--help"], ["-h", "--task=CartPole-v1"]]
)
def test_help_with_a_task_shows_its_defaults(args):
    text = help_text(*args)
    assert f"{TOTAL_STEPS_HELP} (default: 131072)" in text
    assert "--num-steps INT Rollout length" in text and "(default: 32)" in text
    assert "those a run of CartPole-v1 with ppo starts from: built-in < trainer/configs/" in text


def test_help_with_an_algorithm_shows_its_overlay(tmp_path):
    text = help_text("--task", "Maze-v0", "--algo", "spo", "--help")
    assert "Parallel training environments. (default: 32)" in text
    assert "trainer/configs/Maze-v0.yaml < trainer/configs/Maze-v0.spo.yaml (flags" in text
    (tmp_path / "my.yaml").write_text("task: Maze-v0\nnum_envs: 12\n")
    text = help_text("--config", str(tmp_path / "my.yaml"), "--help")
    assert "Parallel training environments. (default: 12)" in text


def test_help_without_a_task_says_where_defaults_come_from():
    text = help_text("--help")
    assert f"{TOTAL_STEPS_HELP} (default: 1000000)" in text
    assert "The defaults shown are the built-in ones" in text and "add --task TASK" in text


def test_help_with_a_task_and_config_errors_stay_without_torch():
    code = (
        "import sys, trainer.cli; "
        "from click.testing import CliRunner; "
        "r = CliRunner().invoke(trainer.cli.main, ['--task', 'Maze-v0', '--help']); "
        "assert r.exit_code == 0 and '(default: 3000000)' in r.output, r.output; "
        "r = CliRunner().invoke(trainer.cli.main, ['--task', 'Maze-v0', '--num-envs', 'x']); "
        "assert r.exit_code == 2 and 'num_envs: expected an integer' in r.output, r.output; "
        "assert 'torch' not in sys.modules"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(IN_PLACE), COLUMNS="120")
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_version_names_pyenvpool_and_torch(tmp_path):
    import platform

    import torch

    import pyenvpool

    out = cli("--version", cwd=tmp_path).stdout.splitlines()
    assert out[0] == f"pyenvpool-train {pyenvpool.__version__}"
    assert out[1].startswith(f"pyenvpool {pyenvpool.__version__} (")
    assert out[2] == f"torch {torch.__version__}"
    assert out[3] == f"Python {platform.python_version()}"


def test_the_console_fits_80_columns_and_the_bar_never_glues_to_a_line(tmp_path):
    """With a progress bar and the verbose dashboard at COLUMNS=80, every line
    fits and the run directory line stands alone."""
    env = {"COLUMNS": "80", "TERM": "dumb"}
    args = [*TINY[:-1], "--progress", "--verbose", "--console-interval", "0", "--run-dir", "r"]
    out = cli("--task", "CartPole-v1", *args, cwd=tmp_path, env=env).stdout
    lines = out.splitlines()
    assert lines[0] == "run directory: r"
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    assert sum(line.startswith("eval ") for line in lines) == 2
    assert any(line.startswith("CartPole-v1 ppo") and "ETA" in line for line in lines)


def test_a_test_task_trains_with_a_warning(tmp_path):
    out = cli("--task", "Delay-v0", *TINY, "--run-dir", "d", cwd=tmp_path).stdout
    assert out.splitlines()[:2] == [
        "warning: Delay-v0 is a test task of the engine, not a learning problem:",
        "every action earns 1, so a run only times the trainer itself",
    ]
