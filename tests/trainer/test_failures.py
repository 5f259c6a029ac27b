"""``pyenvpool-train`` under a careless user and a full disk (issue 20).

Every failure is made real, never mocked: read-only bind mounts, a path the
kernel refuses (/proc), size-limited tmpfs mounts that fill, damaged files,
and SIGINT sent twice to a real process. Each test checks that the message
names the cause and what to do, that the exit code is non-zero, and that the
run directory is byte-identical (every file hashed) where the failure leaves
it alone. The mounts need root (CI runs as root); they are undone in the
fixture, lazily, even when a test fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

import trainer.cli
from trainer import checkpoint

ROOT = Path(__file__).resolve().parents[2]
IN_PLACE = [str(ROOT)] if any((ROOT / "pyenvpool").glob("_core*.so")) else []
TINY = [
    "--task", "CartPole-v1", "--num-envs", "8", "--num-steps", "16", "--eval-interval", "256",
    "--eval-episodes", "4", "--eval-num-envs", "4", "--checkpoint-interval", "256",
    "--task-kwargs", "{max_episode_steps: 40}", "--no-progress",
]  # fmt: skip


def _can_mount() -> bool:
    if os.geteuid() != 0:
        return False
    probe = Path(f"/tmp/pyenvpool-mount-probe-{uuid.uuid4().hex[:8]}")
    probe.mkdir()
    try:
        made = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True
        )
        if made.returncode != 0:
            return False
        subprocess.run(["umount", "-l", str(probe)], check=True)
        return True
    finally:
        probe.rmdir()


needs_mounts = pytest.mark.skipif(not _can_mount(), reason="needs root and mount(8)")


@pytest.fixture
def mount():
    """mount(kind, directory, size=None): "ro" makes ``directory`` a read-only bind
    mount of itself, "tmpfs" mounts a tmpfs of ``size`` there."""
    mounted: list[Path] = []

    def make(kind: str, directory: Path, size: str | None = None) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        if kind == "ro":
            subprocess.run(["mount", "--bind", str(directory), str(directory)], check=True)
            mounted.append(directory)
            subprocess.run(["mount", "-o", "remount,ro,bind", str(directory)], check=True)
        else:
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)], check=True
            )
            mounted.append(directory)
        return directory

    yield make
    for directory in reversed(mounted):
        subprocess.run(["umount", "-l", str(directory)], check=False)


def cli(*args: str):
    """The command in this process (fast: torch is imported once)."""
    return CliRunner().invoke(trainer.cli.main, list(args), catch_exceptions=False)


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root``: a file's sha256, a link's target, or 'dir'."""
    out = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            out[key] = "-> " + os.readlink(path)
        elif path.is_dir():
            out[key] = "dir"
        else:
            out[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def train(run_dir: Path, total_steps: int, *extra: str):
    result = cli(*TINY, "--total-steps", str(total_steps), "--run-dir", str(run_dir), *extra)
    assert result.exit_code == 0, result.output
    return result


def fill(directory: Path, leave: int) -> Path:
    """Fill the file system of ``directory`` until ``leave`` bytes are free."""
    filler = directory / "filler"
    stat = os.statvfs(directory)
    size = max(stat.f_bavail * stat.f_frsize - leave, 0)
    with open(filler, "wb") as f:
        f.write(b"\0" * size)
    return filler


def steps_logged(run_dir: Path) -> list[int]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["env_steps"] for line in lines if '"TRAINER"' in line]


# ------------------------------------------------------------ paths
@needs_mounts
def test_a_read_only_runs_root(tmp_path, mount):
    root = mount("ro", tmp_path / "runs")
    result = cli(*TINY, "--total-steps", "128", "--runs-root", str(root))
    assert result.exit_code == 1
    first, second = result.stderr.strip().splitlines()
    assert first.startswith(f"Error: cannot create the run directory {root}/CartPole-v1-ppo-seed1-")
    assert first.endswith(": the file system is read-only")
    assert second == (
        "nothing was written; choose a writable place with --runs-root DIR or --run-dir DIR, "
        "then start again"
    )
    assert list(root.iterdir()) == []


def test_a_path_that_cannot_be_created():
    result = cli(*TINY, "--total-steps", "128", "--run-dir", "/proc/run1")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "Error: cannot create the run directory /proc/run1: /proc does not accept new files or "
        "directories",
        "nothing was written; choose a writable place with --runs-root DIR or --run-dir DIR, "
        "then start again",
    ]


@needs_mounts
def test_resuming_a_run_on_read_only_storage(tmp_path, mount):
    run = tmp_path / "runs" / "a"
    train(run, 256)
    before = snapshot(run)
    mount("ro", run)
    result = cli("--resume", str(run), "--total-steps", "512", "--no-progress")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: cannot resume {run}: it cannot be written (the file system is read-only)",
        f"nothing was changed; copy the run to writable storage and resume the copy: cp -a {run} "
        "NEW_DIR && pyenvpool-train --resume NEW_DIR",
    ]
    assert snapshot(run) == before


# ------------------------------------------------------------ full disks
@needs_mounts
@pytest.mark.parametrize("sinks", ["checkpoint only", "all sinks"])
def test_a_disk_that_fills_mid_run(tmp_path, mount, sinks):
    """A run resumed onto a nearly full disk fails at its first write that does
    not fit: its earlier checkpoints and config stay byte-identical, and once
    space is freed it resumes to the end of its budget."""
    disk = mount("tmpfs", tmp_path / "disk", size="4m")
    run = disk / "run"
    extra = ["--no-tensorboard", "--no-plot"] if sinks == "checkpoint only" else []
    train(run, 256, *extra)
    kept = snapshot(run / "checkpoints")
    config = (run / "config.yaml").read_bytes()
    # Room for a resume's small writes (metrics, resume log), not for a checkpoint.
    filler = fill(disk, leave=(24 if sinks == "checkpoint only" else 8) * 1024)
    result = cli("--resume", str(run), "--total-steps", "768", "--no-progress")
    assert result.exit_code == 1
    first, second = result.stderr.strip().splitlines()
    assert first.startswith("Error: training stopped at ")
    assert first.endswith(": no space left on the device")
    if sinks == "checkpoint only":
        assert first.startswith(f"Error: training stopped at 512 env steps: cannot write {run}/")
        assert "checkpoints/step_512/model.pt" in first
    assert second == (
        f"kept: the checkpoint {run}/checkpoints/step_256 (256 env steps) and all before it; "
        f"free some space, then continue with: pyenvpool-train --resume {run}"
    )
    assert snapshot(run / "checkpoints") == kept
    assert (run / "config.yaml").read_bytes() == config
    filler.unlink()
    result = cli("--resume", str(run), "--total-steps", "768", "--no-progress")
    assert result.exit_code == 0, result.output
    assert steps_logged(run) == list(range(128, 769, 128))
    assert not [p for p in run.rglob("*") if ".tmp" in p.name]


@needs_mounts
def test_resuming_onto_a_full_disk_changes_nothing(tmp_path, mount):
    disk = mount("tmpfs", tmp_path / "disk", size="4m")
    run = disk / "run"
    train(run, 256)
    before = snapshot(run)
    fill(disk, leave=0)
    result = cli("--resume", str(run), "--total-steps", "512", "--no-progress")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: cannot resume {run}: cannot write {run}/metrics.jsonl: no space left on the "
        "device",
        "the run is as its last checkpoint left it; free some space, then resume it again",
    ]
    before["filler"] = snapshot(disk)["filler"]
    assert snapshot(run) == {k: v for k, v in before.items() if k != "filler"}


@needs_mounts
@pytest.mark.parametrize("sink", ["metrics", "tensorboard", "plot", "checkpoint"])
def test_each_sink_on_a_full_disk_names_its_file_and_keeps_what_was_there(tmp_path, mount, sink):
    import torch

    from trainer.rundir import StorageError
    from trainer.telemetry import Telemetry

    disk = mount("tmpfs", tmp_path / "disk", size="1m")
    telemetry = Telemetry(
        disk,
        total_steps=100,
        tensorboard=sink == "tensorboard",
        progress=False,
        plot=True,
        task="Maze-v0",
    )
    evaluation = {"episodes": 10, "success_rate": 0.5, "mean_return": 0.5}
    telemetry.log("EVALUATOR", 10, evaluation, update=1, wall_time=0, train_time=0)
    telemetry.plot(force=True)
    telemetry.flush()
    meta = {"task": "Maze-v0", "algo": "ppo", "config": {}}
    checkpoint.save(disk / "checkpoints", 10, {"model": {}, "optimizer": {}, "state": {}}, meta)
    kept = snapshot(disk)
    fill(disk, leave=0)
    with pytest.raises(StorageError) as caught:
        # More than the page (4 KiB) that each file's last block has room in.
        if sink == "metrics":
            for step in range(20, 220):
                telemetry.log("MISC", step, {"x": 1.0}, update=2, wall_time=0, train_time=0)
            telemetry.flush()
        elif sink == "tensorboard":  # its thread's error surfaces at the next write
            many = {f"x{i}": 1.0 for i in range(50)}  # 50 events, but 1 buffered line
            for step in range(20, 30):
                telemetry.log("MISC", step, many, update=2, wall_time=0, train_time=0)
                time.sleep(0.05)
        elif sink == "plot":
            telemetry.log("EVALUATOR", 20, evaluation, update=2, wall_time=0, train_time=0)
            telemetry.plot(force=True)
        else:
            big = {"model": {"w": torch.zeros(100_000)}, "optimizer": {}, "state": {}}
            checkpoint.save(disk / "checkpoints", 20, big, meta)
    names = {
        "metrics": "metrics.jsonl",
        "tensorboard": "tensorboard",
        "plot": "learning_curve.png",
        "checkpoint": "checkpoints/step_20/model.pt",
    }
    assert str(caught.value) == f"cannot write {disk}/{names[sink]}: no space left on the device"
    telemetry.close()  # never raises, even now
    after = snapshot(disk)
    for name, digest in kept.items():
        if name != "metrics.jsonl" and not name.startswith("tensorboard"):
            assert after[name] == digest, name  # the plot and the checkpoints are whole
    assert not [name for name in after if ".tmp" in name]


# ------------------------------------------------------------ checkpoints
def _damage_model(step: Path) -> None:
    data = (step / "model.pt").read_bytes()
    (step / "model.pt").write_bytes(data[: len(data) // 2])


def test_damaged_checkpoints_get_one_message_and_change_nothing(tmp_path):
    run = tmp_path / "run"
    train(run, 512)
    step = run / "checkpoints" / "step_512"
    _damage_model(step)
    before = snapshot(run)
    expected = [
        f"Error: damaged checkpoint {step}: model.pt is truncated (it ends before its index)",
        f"the newest other checkpoint that looks intact is {run}/checkpoints/step_256 (use it in "
        f"place of this one; to resume from it: ln -sfn step_256 {run}/checkpoints/latest)",
    ]
    for args in (["--evaluate", str(run)], ["--resume", str(run), "--total-steps", "768"]):
        result = cli(*args, "--no-progress") if args[0] == "--resume" else cli(*args)
        assert result.exit_code == 1
        assert result.stderr.strip().splitlines() == expected
        assert "weights_only" not in result.output
    assert snapshot(run) == before
    # The advice works: point latest at the intact one and resume.
    os.remove(run / "checkpoints" / "latest")
    os.symlink("step_256", run / "checkpoints" / "latest")
    assert cli("--resume", str(run), "--total-steps", "768", "--no-progress").exit_code == 0


def test_evaluation_needs_only_what_it_reads(tmp_path):
    run = tmp_path / "run"
    train(run, 256)
    (run / "checkpoints" / "step_256" / "state.pt").write_bytes(os.urandom(1000))
    result = cli("--evaluate", str(run), "--eval-episodes", "4")
    assert result.exit_code == 0, result.output
    assert "4 episodes (greedy" in result.stdout
    result = cli("--resume", str(run), "--total-steps", "512", "--no-progress")
    assert result.exit_code == 1
    assert "state.pt is not a PyTorch checkpoint file" in result.stderr


def test_a_pointer_to_nowhere(tmp_path):
    run = tmp_path / "run"
    train(run, 256)
    os.remove(run / "checkpoints" / "latest")
    os.symlink("step_999", run / "checkpoints" / "latest")
    before = snapshot(run)
    for args in (["--evaluate", str(run)], ["--resume", str(run), "--no-progress"]):
        result = cli(*args)
        assert result.exit_code == 1
        assert result.stderr.startswith(
            f"Error: damaged checkpoint pointer {run}/checkpoints/latest: it points to step_999, "
            "which does not exist\n"
        )
    assert snapshot(run) == before


# ------------------------------------------------------------ resumes
def test_resume_of_a_finished_run_says_so_and_changes_nothing(tmp_path):
    run = tmp_path / "run"
    train(run, 256)
    before = snapshot(run)
    result = cli("--resume", str(run), "--no-progress")
    assert result.exit_code == 0
    assert result.stdout.strip().splitlines() == [
        f"{run} is finished: it has trained 256 env steps of its 256-step budget; nothing was "
        "changed",
        f"to train it further: pyenvpool-train --resume {run} --total-steps 512",
    ]
    assert snapshot(run) == before  # no new TensorBoard file, config.yaml as it was


def test_a_resume_records_its_budget_outside_the_frozen_config(tmp_path):
    run = tmp_path / "run"
    train(run, 256)
    config = (run / "config.yaml").read_bytes()
    assert cli("--resume", str(run), "--total-steps", "512", "--no-progress").exit_code == 0
    assert (run / "config.yaml").read_bytes() == config
    (entry,) = [json.loads(line) for line in (run / "resumes.jsonl").open()]
    assert entry["previous_total_steps"] == 256 and entry["total_steps"] == 512
    # A later resume keeps the new budget: the run is finished at 512.
    result = cli("--resume", str(run), "--no-progress")
    assert "trained 512 env steps of its 512-step budget" in result.stdout
    printed = cli("--resume", str(run), "--print-config")
    assert "total_steps: 512" in printed.stdout


# ------------------------------------------------------------ Ctrl-C
def test_ctrl_c_twice_says_where_the_run_stands(tmp_path):
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(IN_PLACE + [os.environ.get("PYTHONPATH", "")])
    )
    # Updates of 32 K steps take long enough that the second SIGINT lands in one.
    args = [
        *TINY, "--num-envs", "64", "--num-steps", "512", "--total-steps", "100000000",
        "--checkpoint-interval", "32768", "--eval-interval", "0", "--run-dir", "run",
        "--no-tensorboard", "--no-plot",
    ]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainer.cli", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not checkpoint.step_dirs(tmp_path / "run" / "checkpoints") and time.time() < deadline:
        time.sleep(0.05)
    # The first checkpoint ends update 1; a signal at that moment can reach
    # the loop just before it checks for a stop, so that it stops before the
    # second one arrives. Wait until update 2 (about 0.5 s here) is under way.
    time.sleep(0.15)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "Aborted!" not in err and "Traceback" not in err
    latest = (tmp_path / "run" / "checkpoints" / "latest").resolve()
    steps = json.loads((latest / "metadata.json").read_text())["env_steps"]
    assert err.strip().splitlines() == [
        f"interrupted at once (a second Ctrl-C): the last checkpoint is run/checkpoints/"
        f"{latest.name} ({steps:,} env steps); the updates after it were not saved",
        "continue with: pyenvpool-train --resume run",
    ]
    assert "stopping after this update" in out
