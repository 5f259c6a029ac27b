"""Data-parallel training under torchrun: two CPU ranks on gloo, tiny CartPole budgets.

Each launch costs a few seconds (torchrun and two workers import torch), so the
module trains two identical runs once (``two_rank_runs``) and the tests read
them; the resume and failure tests add one launch each (the failure test's
torchrun restarts its workers once).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from trainer import checkpoint
from trainer.distributed import (
    DistributedError,
    World,
    choose_backend,
    mean_metrics,
    merge_rank_states,
    rank_seed,
    split_rank_states,
)

ROOT = Path(__file__).resolve().parents[2]
# The checkout goes on the child's path only when it holds a development
# build (pyenvpool/_core*.so); otherwise the child imports the installed package.
IN_PLACE = [str(ROOT)] if any((ROOT / "pyenvpool").glob("_core*.so")) else []
TINY = [
    "--task", "CartPole-v1", "--num-envs", "8", "--num-steps", "16", "--total-steps", "512",
    "--eval-interval", "256", "--eval-episodes", "4", "--eval-num-envs", "4",
    "--checkpoint-interval", "256", "--keep-checkpoints", "0",
    "--task-kwargs", "{max_episode_steps: 40}", "--no-progress", "--no-plot",
]  # fmt: skip
UPDATE = 2 * 8 * 16  # env steps of one update: 2 ranks x 8 envs x 16 steps
TIMING = {"wall_time", "train_time", "time", "duration", "steps_per_second", "env_steps_per_second"}


def environment() -> dict[str, str]:
    return dict(
        os.environ,
        OMP_NUM_THREADS="1",
        GLOO_SOCKET_IFNAME="lo",  # the ranks talk over loopback, whatever the host name
        PYTHONPATH=os.pathsep.join(IN_PLACE + [os.environ.get("PYTHONPATH", "")]),
    )


def command(*args: str, nproc: int = 2) -> list[str]:
    if nproc == 1:
        return [sys.executable, "-m", "trainer.cli", *args]
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc-per-node", str(nproc), "-m", "trainer.cli", *args,
    ]  # fmt: skip


def launch(*args: str, cwd: Path, nproc: int = 2) -> subprocess.CompletedProcess:
    result = subprocess.run(
        command(*args, nproc=nproc),
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def events(run: Path) -> list[dict]:
    out = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        event = json.loads(line)
        out.append({k: v for k, v in event.items() if k not in TIMING and not k.endswith("_time")})
    return out


def load(step_dir: Path) -> dict:
    return {
        name: torch.load(step_dir / f"{name}.pt", weights_only=True)
        for name in ("model", "optimizer", "state")
    }


def assert_same_checkpoint(a: Path, b: Path) -> None:
    """Model, optimiser, counters and every rank's envs, sampler and RNG agree bit for bit."""
    x, y = load(a), load(b)
    for name in x["model"]:
        assert torch.equal(x["model"][name], y["model"][name]), name
    for s, t in zip(x["optimizer"]["exp_avg"], y["optimizer"]["exp_avg"]):
        assert torch.equal(s, t)
    assert x["optimizer"]["step"] == y["optimizer"]["step"]
    ranks_x = [x["state"], *x["state"].get("ranks", [])]
    ranks_y = [y["state"], *y["state"].get("ranks", [])]
    assert len(ranks_x) == len(ranks_y)
    for rx, ry in zip(ranks_x, ranks_y):
        assert torch.equal(rx["envs"]["states"], ry["envs"]["states"])
        assert torch.equal(rx["algorithm"]["generator"], ry["algorithm"]["generator"])
        assert torch.equal(rx["rng"]["torch"], ry["rng"]["torch"])
    cx, cy = dict(x["state"]["counters"]), dict(y["state"]["counters"])
    for key in ("wall_time", "train_time"):
        cx.pop(key), cy.pop(key)
    assert cx == cy


@pytest.fixture(scope="module")
def two_rank_runs(tmp_path_factory):
    """Two identical 2-rank runs (same seed): runs/a and runs/b, and rank 0's stdout."""
    root = tmp_path_factory.mktemp("distributed")
    outputs = [launch(*TINY, "--run-dir", f"runs/{name}", cwd=root) for name in "ab"]
    return root, outputs


# ------------------------------------------------------------------ helpers
def test_rank_seeds_are_the_run_seed_on_rank_0_and_distinct_elsewhere():
    assert rank_seed(7, 0) == 7
    seeds = {rank_seed(7, r) for r in range(64)} | {rank_seed(8, r) for r in range(64)}
    assert len(seeds) == 128 and all(0 <= s < 2**64 for s in seeds)
    assert rank_seed(7, 1) == rank_seed(7, 1)  # derived, not drawn
    assert rank_seed(7, 1, generation=5) not in seeds


def test_checkpoint_state_splits_per_rank_and_across_world_sizes():
    def rank(r):
        return {"algorithm": {"generator": r, "lr_anchor": [0, 1.0]}, "envs": f"e{r}", "rng": r}

    state = {"counters": {"update": 3}, **merge_rank_states([rank(0), rank(1)])}
    assert state["world_size"] == 2 and state["envs"] == "e0" and state["ranks"] == [rank(1)]
    same = split_rank_states(state, 2, ["generator"])
    assert [s["envs"] for s in same] == ["e0", "e1"] and same[1]["counters"] == {"update": 3}
    grown = split_rank_states(state, 3, ["generator"])
    assert grown[2]["envs"] is None and grown[2]["rng"] is None
    assert grown[2]["algorithm"] == {"lr_anchor": [0, 1.0]}  # shared part only
    assert all(s["saved_world_size"] == 2 for s in grown)
    shrunk = split_rank_states(state, 1, ["generator"])
    assert len(shrunk) == 1 and shrunk[0]["envs"] == "e0" and "ranks" not in shrunk[0]
    assert merge_rank_states([rank(0)]) == rank(0)  # one rank: a plain checkpoint


def test_trainer_metrics_are_averaged_over_ranks():
    merged = mean_metrics(
        [{"loss": 1.0, "lr": 0.5, "epochs": 4}, {"loss": 2.0, "lr": 0.5, "epochs": 4}]
    )
    assert merged == {"loss": 1.5, "lr": 0.5, "epochs": 4}


def test_backend_and_device_follow_the_gpus(monkeypatch):
    monkeypatch.delenv("PYENVPOOL_DIST_BACKEND", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_backend(2) == "gloo"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.distributed, "is_nccl_available", lambda: True)
    assert choose_backend(2) == "cpu:gloo,cuda:nccl"  # a GPU per rank
    assert choose_backend(4) == "gloo"  # ranks share GPUs: NCCL would refuse
    monkeypatch.setenv("PYENVPOOL_DIST_BACKEND", "nccl")
    assert choose_backend(4) == "cpu:gloo,cuda:nccl"
    monkeypatch.setenv("PYENVPOOL_DIST_BACKEND", "mpi")
    with pytest.raises(DistributedError, match="expected gloo or nccl"):
        choose_backend(2)
    selected = []
    monkeypatch.setattr(torch.cuda, "set_device", selected.append)
    world = World(rank=3, size=4, local_rank=3, local_size=4)
    assert world.device(torch.device("cuda")) == torch.device("cuda", 1)  # 3 % 2 GPUs
    assert world.device(torch.device("cuda", 0)) == torch.device("cuda", 0)
    assert world.device(torch.device("cpu")) == torch.device("cpu")
    assert selected == [torch.device("cuda", 1), torch.device("cuda", 0)]
    assert World().device(torch.device("cuda")) == torch.device("cuda")  # one process: as is
    assert World(size=2, local_size=2).env_threads(0) >= 1
    assert World(size=2, local_size=2).env_threads(3) == 3 and World().env_threads(0) is None


# ---------------------------------------------------------------- torchrun
def test_two_ranks_train_one_model_and_only_rank_0_writes(two_rank_runs):
    root, (out, _) = two_rank_runs
    assert out.stdout.count("run directory: runs/a") == 2  # rank 0's header and summary
    assert "budget: 512 env steps, 2 updates" in out.stdout
    assert sorted(p.name for p in root.iterdir()) == ["runs"]  # no rank wrote elsewhere
    run = root / "runs" / "a"
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoints", "config.yaml", "metrics.jsonl", "tensorboard",
    ]  # fmt: skip
    assert len(list((run / "tensorboard").iterdir())) == 1  # one writer

    # The step axis counts both ranks: 2 x 8 envs x 16 steps per update.
    trainer_steps = [e["env_steps"] for e in events(run) if e["category"] == "TRAINER"]
    assert trainer_steps == [UPDATE, 2 * UPDATE]
    assert [e["env_steps"] for e in events(run) if e["category"] == "EVALUATOR"] == [256, 512]
    assert checkpoint.step_dirs(run / "checkpoints")[-1].name == "step_512"

    meta = json.loads((run / "checkpoints" / "latest" / "metadata.json").read_text())
    assert meta["world_size"] == 2 and meta["env_steps"] == 512 and meta["update"] == 2
    # Each rank's pool counted its own steps; together they are the run's.
    assert [r["env_steps"] for r in meta["ranks"]] == [256, 256]
    assert sum(r["env_steps"] for r in meta["ranks"]) == meta["env_steps"]
    # Every rank ended with the same parameters: the ones rank 0 saved.
    model = load(run / "checkpoints" / "latest")["model"]
    digest = hashlib.sha256()
    for name, tensor in model.items():
        digest.update(name.encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    assert [r["parameter_sha256"] for r in meta["ranks"]] == [digest.hexdigest()] * 2

    # Each rank's envs ran on their own seed.
    state = load(run / "checkpoints" / "latest")["state"]
    assert state["world_size"] == 2 and len(state["ranks"]) == 1
    assert state["envs"]["seed"] == 1 and state["ranks"][0]["envs"]["seed"] == rank_seed(1, 1)
    assert not torch.equal(state["envs"]["states"], state["ranks"][0]["envs"]["states"])


def test_same_seed_and_world_size_give_the_same_run(two_rank_runs):
    root, _ = two_rank_runs
    a, b = root / "runs" / "a", root / "runs" / "b"
    assert events(a) == events(b)
    assert_same_checkpoint(a / "checkpoints" / "step_512", b / "checkpoints" / "step_512")


def test_resume_with_the_same_world_size_continues_bit_for_bit(two_rank_runs, tmp_path):
    root, _ = two_rank_runs
    run = tmp_path / "runs" / "a"
    shutil.copytree(root / "runs" / "a", run, symlinks=True)
    # Go back to the checkpoint after the first update, as if the run had died there.
    folder = run / "checkpoints"
    checkpoint.set_pointer(folder, "latest", folder / "step_256")
    shutil.rmtree(folder / "step_512")
    (folder / "best").unlink()
    launch("--resume", "runs/a", "--no-progress", cwd=tmp_path)
    assert events(run) == events(root / "runs" / "a")
    assert_same_checkpoint(folder / "step_512", root / "runs" / "a" / "checkpoints" / "step_512")


def test_resume_with_another_world_size_keeps_model_and_counters(two_rank_runs, tmp_path):
    root, _ = two_rank_runs
    run = tmp_path / "runs" / "a"
    shutil.copytree(root / "runs" / "a", run, symlinks=True)
    out = launch("--resume", "runs/a", "--total-steps", "768", cwd=tmp_path, nproc=1)
    assert "checkpoint of 2 rank(s) with 1" in out.stdout and "rank 1 are dropped" in out.stdout
    trainer_events = [e for e in events(run) if e["category"] == "TRAINER"]
    assert [e["env_steps"] for e in trainer_events] == [256, 512, 640, 768]
    # The learning rate decays on from where it was, over the remaining steps.
    rates = [e["learning_rate"] for e in trainer_events]
    assert rates[2] == pytest.approx(rates[1] * (1 - 1 / 3)) and rates[3] < rates[2]
    latest = run / "checkpoints" / "latest"
    meta = json.loads((latest / "metadata.json").read_text())
    assert meta["world_size"] == 1 and meta["update"] == 4 and "ranks" not in meta
    state = load(latest)["state"]
    assert state["envs"]["env_steps"] == 256 + 2 * 128  # rank 0's envs continued


def test_spo_resumed_on_more_ranks_gives_the_new_rank_fresh_envs_and_replay(tmp_path):
    spo = [
        "--task", "Maze-v0", "--algo", "spo", "--num-envs", "4", "--num-steps", "8",
        "--total-steps", "64", "--eval-interval", "0", "--eval-episodes", "4",
        "--eval-num-envs", "4", "--no-eval-search", "--checkpoint-interval", "0",
        "--no-tensorboard", "--no-plot", "--env-threads", "1", "--conv-channels", "4,4",
        "--hidden-sizes", "16", "--num-particles", "4", "--search-depth", "2",
        "--resample-period", "2", "--replay-size", "64", "--sample-sequences", "4",
        "--sample-sequence-length", "4", "--gradient-steps", "2",
        "--task-kwargs", "{time_limit: 12}", "--no-progress", "--run-dir", "runs/spo",
    ]  # fmt: skip
    launch(*spo, cwd=tmp_path, nproc=1)  # 2 updates of 32 steps in one process
    out = launch("--resume", "runs/spo", "--total-steps", "192", cwd=tmp_path)
    assert "checkpoint of 1 rank(s) with 2" in out.stdout and "rank 1 starts" in out.stdout
    run = tmp_path / "runs" / "spo"
    trainer_events = [e for e in events(run) if e["category"] == "TRAINER"]
    assert [e["env_steps"] for e in trainer_events] == [32, 64, 128, 192]
    assert all(e["gradient_steps"] == 2 for e in trainer_events)
    meta = json.loads((run / "checkpoints" / "latest" / "metadata.json").read_text())
    assert [r["env_steps"] for r in meta["ranks"]] == [128, 64]
    assert len({r["parameter_sha256"] for r in meta["ranks"]}) == 1
    state = load(run / "checkpoints" / "latest")["state"]
    replays = [state["algorithm"]["replay"], state["ranks"][0]["algorithm"]["replay"]]
    assert [r["size"] for r in replays] == [16, 16]  # rank 1 filled its own, from empty
    assert not torch.equal(replays[0]["tensors"]["actions"], replays[1]["tensors"]["actions"])
    assert state["ranks"][0]["envs"]["seed"] == rank_seed(1, 1, generation=2)


def test_normalisation_statistics_are_shared_by_the_ranks_and_resume_exactly(tmp_path):
    """Observation and return statistics fold in the whole world's batch, so they
    are identical on both ranks (the checkpoint's parameter digests include the
    observation statistics); the discounted returns are per rank."""
    args = [
        "--task", "Pendulum-v1", "--num-envs", "4", "--num-steps", "16", "--total-steps", "256",
        "--normalize-observation", "--normalize-reward", "--eval-interval", "0",
        "--eval-episodes", "2", "--eval-num-envs", "2", "--checkpoint-interval", "128",
        "--keep-checkpoints", "0", "--no-progress", "--no-plot", "--no-tensorboard",
    ]  # fmt: skip
    launch(*args, "--run-dir", "runs/n", cwd=tmp_path)
    run = tmp_path / "runs" / "n"
    latest = run / "checkpoints" / "step_256"
    meta = json.loads((latest / "metadata.json").read_text())
    assert len({r["parameter_sha256"] for r in meta["ranks"]}) == 1
    saved = load(latest)
    world_steps = 2 * 4 * 16 * 2  # ranks x envs x steps x updates
    assert float(saved["model"]["normalizer.statistics.obs.count"]) == pytest.approx(world_steps)
    mine, other = saved["state"]["algorithm"], saved["state"]["ranks"][0]["algorithm"]
    for key, tensor in mine["reward_statistics"].items():
        assert torch.equal(tensor, other["reward_statistics"][key]), key
    assert float(mine["reward_statistics"]["count"]) == pytest.approx(world_steps)
    assert not torch.equal(mine["reward_returns"], other["reward_returns"])
    # Back to the checkpoint after the first update, and on from there.
    copy = tmp_path / "runs" / "m"
    shutil.copytree(run, copy, symlinks=True)
    checkpoint.set_pointer(copy / "checkpoints", "latest", copy / "checkpoints" / "step_128")
    shutil.rmtree(copy / "checkpoints" / "step_256")
    launch("--resume", "runs/m", "--no-progress", cwd=tmp_path)
    assert_same_checkpoint(copy / "checkpoints" / "step_256", latest)
    resumed = load(copy / "checkpoints" / "step_256")["state"]
    for a, b in ((resumed, saved["state"]), (resumed["ranks"][0], saved["state"]["ranks"][0])):
        assert torch.equal(a["algorithm"]["reward_returns"], b["algorithm"]["reward_returns"])


def _rank_pid(agent: int, rank: int) -> int | None:
    """The pid of torchrun worker ``rank`` among the children of ``agent``."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            variables = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if parent == agent and f"RANK={rank}".encode() in variables:
            return int(proc.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_a_dead_rank_stops_the_ranks_with_a_clear_error_and_a_restart_resumes(tmp_path):
    budget = 8192
    args = [*TINY, "--total-steps", str(budget), "--eval-interval", "0", "--keep-checkpoints", "2"]
    launcher = command(*args, "--run-dir", "runs/k")
    launcher.insert(launcher.index("--standalone"), "--max-restarts=1")
    # The agent looks at its workers every 10 s (default 0.1 s), so even on a
    # loaded machine rank 0 meets the dead peer in a collective before the
    # agent stops it: the message below is what a user sees when a rank dies.
    launcher.insert(launcher.index("--standalone"), "--monitor-interval=10")
    proc = subprocess.Popen(
        launcher, cwd=tmp_path, env=environment(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    folder = tmp_path / "runs" / "k" / "checkpoints"
    deadline = time.time() + 120
    while len(checkpoint.step_dirs(folder)) < 2 and time.time() < deadline:
        time.sleep(0.02)
    worker = _rank_pid(proc.pid, 1)
    assert proc.poll() is None and worker is not None, proc.communicate()
    os.kill(worker, signal.SIGKILL)
    out, err = proc.communicate(timeout=180)
    # Rank 0 said what happened; torchrun restarted both ranks, which resumed
    # from the latest (complete) checkpoint and finished the budget.
    assert "rank 0 of 2:" in err and "Another rank has probably failed" in err
    assert proc.returncode == 0, err
    assert "torchrun restarted the job: resuming runs/k" in out
    assert f"budget: {budget:,} env steps" in out
    assert not list(folder.glob(".tmp-*"))
    for step in checkpoint.step_dirs(folder):
        load(step)
    assert json.loads((folder / "latest" / "metadata.json").read_text())["env_steps"] == budget
    steps = [e["env_steps"] for e in events(tmp_path / "runs" / "k") if e["category"] == "TRAINER"]
    assert steps == list(range(UPDATE, budget + 1, UPDATE))  # no update lost or repeated
