"""Checkpoints: atomic step directories, pointers, retention, safe loading.

Layout inside a run directory::

    checkpoints/
      step_<env_steps>/     model.pt, optimizer.pt, state.pt, metadata.json
      latest -> step_<N>    symlink to the newest checkpoint
      best   -> step_<M>    symlink to the best evaluated one

A step directory is written under a temporary name and renamed into place, so
a reader never sees a half-written checkpoint; the pointers are replaced
atomically too. ``prune`` deletes only this run's oldest ``step_*``
directories, never the newest one (``latest``) or the one ``best`` points to,
and renames each away before deleting it, so a process killed while pruning
leaves no partial ``step_*`` directory either. One process writes a run's
checkpoints (rank 0 under torchrun), so the temporary ``.tmp-*`` / ``.old-*``
entries that a killed writer left behind are removed by the next ``save``. Files are read
back with ``torch.load(weights_only=True)``: tensors and plain data only,
never arbitrary pickled objects. ``check_compatible`` refuses a checkpoint
from another task or another architecture with a message that says which.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch

FORMAT_VERSION = 1
FILES = ("model", "optimizer", "state")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or does not fit this run."""


def step_name(env_steps: int) -> str:
    return f"step_{env_steps}"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(folder: Path, env_steps: int, payload: dict[str, Any], metadata: dict[str, Any]) -> Path:
    """Write ``payload`` (``model``, ``optimizer``, ``state``) and ``metadata``
    to ``folder/step_<env_steps>`` atomically; point ``latest`` at it."""
    folder.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(folder)
    final = folder / step_name(env_steps)
    tmp = folder / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        for name in FILES:
            torch.save(payload[name], tmp / f"{name}.pt")
        meta = {"format": FORMAT_VERSION, "env_steps": env_steps, **metadata}
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        for child in tmp.iterdir():
            _fsync(child)
        if final.exists():  # re-saved after a resume: swap the old one out
            old = folder / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old)
        else:
            os.rename(tmp, final)
        _fsync(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    set_pointer(folder, "latest", final)
    return final


def _remove_leftovers(folder: Path) -> None:
    """Delete what a writer killed mid-save or mid-prune left: ``.tmp-*`` and
    ``.old-*`` entries (never visible as checkpoints)."""
    for entry in folder.iterdir():
        if entry.name.startswith((".tmp-", ".old-")):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def set_pointer(folder: Path, name: str, target: Path) -> None:
    """Atomically make ``folder/name`` a relative symlink to ``target``."""
    tmp = folder / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
    os.symlink(target.name, tmp)
    os.replace(tmp, folder / name)


def pointer(folder: Path, name: str) -> Path | None:
    """Where ``folder/name`` points, or None."""
    link = folder / name
    if not link.is_symlink() and not link.exists():
        return None
    target = link.resolve()
    return target if target.is_dir() else None


def step_dirs(folder: Path) -> list[Path]:
    """This run's complete step checkpoints, oldest first."""
    if not folder.is_dir():
        return []
    dirs = [
        p
        for p in folder.iterdir()
        if p.name.startswith("step_") and p.name[5:].isdigit() and p.is_dir()
    ]
    return sorted(dirs, key=lambda p: int(p.name[5:]))


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete this run's step checkpoints except the ``keep`` newest (0: keep all)
    and the ``best`` one. Returns what was deleted."""
    if keep <= 0:
        return []
    best = pointer(folder, "best")
    candidates = [p for p in step_dirs(folder) if p.resolve() != best]
    doomed = candidates[: max(len(candidates) - keep, 0)]
    for path in doomed:
        old = folder / f".old-{path.name}-{uuid.uuid4().hex[:8]}"
        os.rename(path, old)  # gone at once; the files go after
        shutil.rmtree(old)
    return doomed


def find(path: str | Path) -> Path:
    """The checkpoint directory that ``path`` names: a step directory, a pointer,
    a run's ``checkpoints`` folder or a run directory (both meaning ``latest``)."""
    path = Path(path)
    for candidate in (path, path / "latest", path / "checkpoints" / "latest"):
        if (candidate / "metadata.json").is_file():
            return candidate.resolve()
    raise CheckpointError(
        f"no checkpoint at {str(path)!r} (expected a step_<N> directory or a run directory)"
    )


def load(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint: ``{"path", "metadata", "model", "optimizer", "state"}``."""
    folder = find(path)
    try:
        metadata = json.loads((folder / "metadata.json").read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"unreadable checkpoint metadata in {folder}: {e}") from None
    if metadata.get("format") != FORMAT_VERSION:
        raise CheckpointError(
            f"{folder} has checkpoint format {metadata.get('format')}, expected {FORMAT_VERSION}"
        )
    out: dict[str, Any] = {"path": folder, "metadata": metadata}
    for name in FILES:
        try:
            # Weights go to ``device``; the run state (RNG and env states,
            # counters, replay) stays on the CPU, where its readers want it.
            where = "cpu" if name == "state" else device
            out[name] = torch.load(folder / f"{name}.pt", map_location=where, weights_only=True)
        except Exception as e:  # noqa: BLE001 -- any unreadable file is the same user error
            raise CheckpointError(f"cannot read {folder / (name + '.pt')}: {e}") from None
    return out


def check_compatible(
    metadata: dict[str, Any], task: str, algo: str | None, architecture: dict[str, Any]
) -> None:
    """Refuse a checkpoint trained on another task, algorithm (unless ``algo``
    is None: weights only) or architecture."""
    if metadata.get("task") != task:
        raise CheckpointError(
            f"checkpoint was trained on task {metadata.get('task')!r}, but this run is {task!r}"
        )
    if algo is not None and metadata.get("algo") != algo:
        raise CheckpointError(
            f"checkpoint was trained with --algo {metadata.get('algo')}, not {algo}"
        )
    saved = metadata.get("architecture", {})
    # Only what this run's record names counts: an older checkpoint may also
    # record network fields its architecture never read.
    if isinstance(saved.get("network"), dict) and isinstance(architecture.get("network"), dict):
        saved = saved | {"network": {k: saved["network"].get(k) for k in architecture["network"]}}
    if saved != architecture:
        diffs = []
        for section in sorted(set(saved) | set(architecture)):
            a, b = saved.get(section), architecture.get(section)
            if isinstance(a, dict) and isinstance(b, dict):
                for key in sorted(set(a) | set(b)):
                    if a.get(key) != b.get(key):
                        diffs.append(
                            f"{section}.{key}: checkpoint {a.get(key)!r}, this run {b.get(key)!r}"
                        )
            elif a != b:
                diffs.append(f"{section}: checkpoint {a!r}, this run {b!r}")
        raise CheckpointError(
            "checkpoint architecture does not match this run (" + "; ".join(diffs) + ")"
        )
