"""Atomic checkpoint writes, read-back, pointers, retention, and refusal of
checkpoints from another task or architecture."""

from __future__ import annotations

import json
import os

import pytest
import torch

from trainer import checkpoint
from trainer.checkpoint import CheckpointError
from trainer.rundir import StorageError


def payload(value: float) -> dict:
    return {
        "model": {"w": torch.full((3,), value)},
        "optimizer": {"step": 1, "exp_avg": [torch.zeros(3)]},
        "state": {"counters": {"update": 2}, "rng": torch.get_rng_state()},
    }


META = {
    "task": "CartPole-v1",
    "algo": "ppo",
    "architecture": {"network": {"architecture": "mlp"}},
    "config": {},
}


def test_write_and_read_back(tmp_path):
    folder = tmp_path / "checkpoints"
    path = checkpoint.save(folder, 1024, payload(1.5), META)
    assert path == folder / "step_1024"
    assert sorted(p.name for p in path.iterdir()) == [
        "metadata.json",
        "model.pt",
        "optimizer.pt",
        "state.pt",
    ]
    assert checkpoint.pointer(folder, "latest") == path.resolve()
    assert os.readlink(folder / "latest") == "step_1024"  # relative: the run dir can move
    loaded = checkpoint.load(tmp_path)  # a run directory means its latest checkpoint
    assert loaded["path"] == path.resolve()
    assert torch.equal(loaded["model"]["w"], torch.full((3,), 1.5))
    assert loaded["optimizer"]["step"] == 1 and loaded["state"]["counters"]["update"] == 2
    assert loaded["metadata"]["env_steps"] == 1024 and loaded["metadata"]["task"] == "CartPole-v1"
    for name in ("step_1024", "latest"):
        assert checkpoint.load(folder / name)["path"] == path.resolve()


def test_a_failed_write_leaves_no_partial_checkpoint(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    checkpoint.save(folder, 10, payload(1.0), META)
    real_save = torch.save
    calls = []

    def failing_save(obj, f):
        calls.append(f)
        if len(calls) == 2:
            raise OSError("disk full")
        real_save(obj, f)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(StorageError, match="cannot write .*optimizer.pt: disk full"):
        checkpoint.save(folder, 20, payload(2.0), META)
    assert sorted(p.name for p in folder.iterdir()) == ["latest", "step_10"]
    assert checkpoint.pointer(folder, "latest").name == "step_10"


def test_resaving_a_step_replaces_it_atomically(tmp_path):
    folder = tmp_path / "checkpoints"
    checkpoint.save(folder, 10, payload(1.0), META)
    checkpoint.save(folder, 10, payload(2.0), META)
    assert torch.equal(checkpoint.load(folder / "step_10")["model"]["w"], torch.full((3,), 2.0))
    assert sorted(p.name for p in folder.iterdir()) == ["latest", "step_10"]


def test_retention_keeps_best_and_latest_and_touches_only_this_run(tmp_path):
    folder = tmp_path / "run_a" / "checkpoints"
    other = tmp_path / "run_b" / "checkpoints"
    checkpoint.save(other, 1, payload(0.0), META)
    for step in (10, 20, 30, 40, 50):
        path = checkpoint.save(folder, step, payload(step), META)
        if step == 20:
            checkpoint.set_pointer(folder, "best", path)
    deleted = checkpoint.prune(folder, keep=2)
    assert [p.name for p in deleted] == ["step_10", "step_30"]
    assert [p.name for p in checkpoint.step_dirs(folder)] == ["step_20", "step_40", "step_50"]
    assert checkpoint.pointer(folder, "best").name == "step_20"
    assert [p.name for p in checkpoint.step_dirs(other)] == ["step_1"]
    assert checkpoint.prune(folder, keep=0) == []  # 0 keeps everything


def test_load_uses_weights_only(tmp_path):
    folder = tmp_path / "checkpoints"
    path = checkpoint.save(folder, 5, payload(1.0), META)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"x": Evil()}, path / "state.pt")
    loaded = checkpoint.load(path)
    assert loaded["model"]["w"].sum() == 3  # the other files still load
    with pytest.raises(CheckpointError, match="state.pt holds objects other than tensors"):
        loaded["state"]


def test_missing_or_foreign_format_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at .*nowhere.*does not exist"):
        checkpoint.load(tmp_path / "nowhere")
    path = checkpoint.save(tmp_path / "c", 5, payload(1.0), META)
    meta = json.loads((path / "metadata.json").read_text())
    meta["format"] = 99
    (path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format 99"):
        checkpoint.load(path)


def test_check_compatible_refuses_other_task_algo_or_architecture():
    checkpoint.check_compatible(META, "CartPole-v1", "ppo", META["architecture"])
    with pytest.raises(
        CheckpointError, match="trained on task 'CartPole-v1', but this run is 'Maze-v0'"
    ):
        checkpoint.check_compatible(META, "Maze-v0", "ppo", META["architecture"])
    with pytest.raises(CheckpointError, match="--algo ppo"):
        checkpoint.check_compatible(META, "CartPole-v1", "spo", META["architecture"])
    other = {"network": {"architecture": "mlp", "hidden_sizes": [32]}}
    with pytest.raises(
        CheckpointError, match=r"network.hidden_sizes: checkpoint None, this run \[32\]"
    ):
        checkpoint.check_compatible(META, "CartPole-v1", "ppo", other)


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def random_bytes(path):
    path.write_bytes(os.urandom(path.stat().st_size))


def flip_a_weight_bit(path):
    data = path.read_bytes()
    weights = torch.full((3,), 2.0).numpy().tobytes()  # the model's w, as stored
    at = data.index(weights)
    path.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :])


DAMAGE = [
    ("model.pt", truncate, "model.pt is truncated"),
    ("model.pt", lambda p: p.write_bytes(b""), "model.pt is empty"),
    ("model.pt", random_bytes, "model.pt is not a PyTorch checkpoint file"),
    ("model.pt", flip_a_weight_bit, "model.pt is corrupt (the checksum of"),
    ("optimizer.pt", lambda p: p.unlink(), "optimizer.pt is missing"),
    ("state.pt", truncate, "state.pt is truncated"),
    ("metadata.json", lambda p: p.write_text('{"format": 1, "env_'), "metadata.json is not valid"),
    ("metadata.json", lambda p: p.write_text(""), "metadata.json is empty"),
    ("metadata.json", lambda p: p.write_text("[1, 2]"), "metadata.json does not hold a JSON"),
    ("metadata.json", lambda p: p.write_text('{"format": 1}'), "metadata.json lacks 'env_steps'"),
    ("metadata.json", lambda p: p.unlink(), "metadata.json is missing"),
]


@pytest.mark.parametrize("name, damage, message", DAMAGE, ids=[d[2] for d in DAMAGE])
def test_every_kind_of_damage_gets_one_error_and_one_message_shape(tmp_path, name, damage, message):
    folder = tmp_path / "checkpoints"
    checkpoint.save(folder, 10, payload(1.0), META)
    path = checkpoint.save(folder, 20, payload(2.0), META)
    damage(path / name)
    with pytest.raises(CheckpointError) as caught:
        loaded = checkpoint.load(path)
        for key in checkpoint.FILES:
            loaded[key]
    first, second = str(caught.value).split("\n")
    assert first.startswith(f"damaged checkpoint {path}: ") and message in first
    assert second.startswith(f"the newest other checkpoint that looks intact is {folder}/step_10")
    assert "weights_only" not in str(caught.value)


def test_a_pointer_to_nowhere_is_damage_too(tmp_path):
    folder = tmp_path / "run" / "checkpoints"
    checkpoint.save(folder, 10, payload(1.0), META)
    os.symlink("step_99", folder / ".new")
    os.replace(folder / ".new", folder / "latest")
    for where in (folder / "latest", tmp_path / "run"):
        with pytest.raises(CheckpointError) as caught:
            checkpoint.load(where)
        assert str(caught.value).splitlines() == [
            f"damaged checkpoint pointer {folder}/latest: it points to step_99, which does not "
            "exist",
            f"the newest other checkpoint that looks intact is {folder}/step_10 (use it in place "
            f"of this one; to resume from it: ln -sfn step_10 {folder}/latest)",
        ]


def test_evaluation_reads_only_the_files_it_uses(tmp_path):
    path = checkpoint.save(tmp_path, 10, payload(1.0), META)
    truncate(path / "state.pt")
    loaded = checkpoint.load(path)
    assert torch.equal(loaded["model"]["w"], torch.ones(3))  # state.pt is never opened
    with pytest.raises(CheckpointError, match="state.pt is truncated"):
        loaded["state"]
