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
entries that a killed writer left behind are removed by the next ``save``.
A write that fails (a full disk, read-only storage) raises
``rundir.StorageError`` naming the file and the cause, and leaves the
checkpoints that were there as they were.

Files are read back with ``torch.load(weights_only=True)``: tensors and plain
data only, never arbitrary pickled objects. ``load`` reads ``metadata.json`` at
once and each ``.pt`` file when it is first used, so evaluating a checkpoint
needs only the files evaluation reads. Every kind of damage (a missing,
empty, truncated or foreign file, unreadable metadata, a pointer to nowhere)
raises ``CheckpointError`` with one message shape::

    damaged checkpoint <dir>: <file> <what is wrong>
    <the newest other checkpoint that looks intact, or that there is none>

``check_compatible`` refuses a checkpoint from another task or another
architecture with a message that says which.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from trainer.rundir import cause, writing

FORMAT_VERSION = 1
FILES = ("model", "optimizer", "state")
# What every reader of a checkpoint relies on in its metadata.
REQUIRED_METADATA = ("format", "env_steps", "task", "algo", "config")
ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes zip archives


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
    to ``folder/step_<env_steps>`` atomically; point ``latest`` at it. A write
    that fails raises ``StorageError`` and leaves no trace."""
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(folder)
    final = folder / step_name(env_steps)
    tmp = folder / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    try:
        with writing(final):
            tmp.mkdir()
        # Errors name the file as it would have been (the temporary one is removed).
        for name in FILES:
            with writing(final / f"{name}.pt"):
                _torch_save(payload[name], tmp / f"{name}.pt")
        meta = {"format": FORMAT_VERSION, "env_steps": env_steps, **metadata}
        with writing(final / "metadata.json"):
            (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
            for child in tmp.iterdir():
                _fsync(child)
        with writing(final):
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


class _Writer:
    """The file ``torch.save`` writes through, remembering the ``OSError`` that
    PyTorch's zip writer replaces by its own "unexpected pos" message."""

    def __init__(self, file: Any) -> None:
        self.file, self.error = file, None

    def write(self, data: Any) -> int:
        try:
            return self.file.write(data)
        except OSError as e:
            self.error = self.error or e
            raise

    def flush(self) -> None:
        self.file.flush()


def _torch_save(obj: Any, path: Path) -> None:
    with open(path, "wb") as f:
        writer = _Writer(f)
        try:
            torch.save(obj, writer)
        except RuntimeError:
            if writer.error is not None:
                raise writer.error from None
            raise


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
    with writing(folder / name):
        try:
            os.symlink(target.name, tmp)
            os.replace(tmp, folder / name)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


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
        with writing(path, "delete"):
            os.rename(path, old)  # gone at once; the files go after
            shutil.rmtree(old)
    return doomed


def find(path: str | Path) -> Path:
    """The checkpoint directory that ``path`` names: a step directory, a pointer,
    a run's ``checkpoints`` folder or a run directory (both meaning ``latest``)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise CheckpointError(f"no checkpoint at {str(path)!r}: it does not exist")
    for candidate in (path, path / "latest", path / "checkpoints" / "latest"):
        if candidate.is_symlink() and not candidate.exists():
            raise CheckpointError(
                f"damaged checkpoint pointer {candidate}: it points to "
                f"{os.readlink(candidate)}, which does not exist\n"
                + _alternative(candidate.parent, None)
            )
        if candidate.is_dir() and (candidate / "metadata.json").exists():
            return candidate.resolve()
    if path.is_dir() and path.name.startswith("step_"):
        raise damaged(path.resolve(), "metadata.json", "is missing")
    raise CheckpointError(
        f"no checkpoint at {str(path)!r} (expected a step_<N> directory, a pointer such as "
        "checkpoints/latest, or a run directory)"
    )


class CheckpointFiles(Mapping):
    """A checkpoint read from disk: ``path`` and ``metadata`` at once, and
    ``model``, ``optimizer``, ``state`` from their files on first access
    (a damaged file raises ``CheckpointError`` then). Pickles as a plain dict
    of everything, so it crosses to other ranks loaded."""

    def __init__(self, folder: Path, metadata: dict[str, Any], device: torch.device | str) -> None:
        self.folder, self.metadata, self.device = folder, metadata, device
        self.loaded: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key == "path":
            return self.folder
        if key == "metadata":
            return self.metadata
        if key not in FILES:
            raise KeyError(key)
        if key not in self.loaded:
            # Weights go to ``device``; the run state (RNG and env states,
            # counters, replay) stays on the CPU, where its readers want it.
            where = "cpu" if key == "state" else self.device
            self.loaded[key] = _read(self.folder, key, where)
        return self.loaded[key]

    def __iter__(self) -> Iterator[str]:
        return iter(("path", "metadata", *FILES))

    def __len__(self) -> int:
        return 2 + len(FILES)

    def __reduce__(self) -> tuple:
        return (dict, (dict(self),))


def load(path: str | Path, device: torch.device | str = "cpu") -> CheckpointFiles:
    """Read a checkpoint: ``{"path", "metadata", "model", "optimizer", "state"}``,
    the last three when first used (see ``CheckpointFiles``)."""
    folder = find(path)
    return CheckpointFiles(folder, read_metadata(folder), device)


def read_metadata(folder: Path) -> dict[str, Any]:
    """``folder/metadata.json``, checked for what every reader relies on."""
    file = folder / "metadata.json"
    try:
        text = file.read_text()
    except OSError as e:
        raise damaged(folder, file.name, f"cannot be read: {cause(e, file)}") from None
    if not text.strip():
        raise damaged(folder, file.name, "is empty")
    try:
        metadata = json.loads(text)
    except ValueError as e:
        raise damaged(folder, file.name, f"is not valid JSON ({e})") from None
    if not isinstance(metadata, dict):
        raise damaged(folder, file.name, "does not hold a JSON object")
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise damaged(folder, file.name, f"lacks {', '.join(map(repr, missing))}")
    if metadata["format"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{folder} has checkpoint format {metadata['format']}, but this trainer reads "
            f"format {FORMAT_VERSION}"
        )
    return metadata


def _read(folder: Path, name: str, device: torch.device | str) -> Any:
    file = folder / f"{name}.pt"
    problem = _check_archive(file)
    if problem is None:
        try:
            return torch.load(file, map_location=device, weights_only=True)
        except pickle.UnpicklingError:
            problem = "holds objects other than tensors and plain data, which are never loaded"
        except Exception as e:  # noqa: BLE001 -- every unreadable file is the same user error
            problem = f"cannot be read ({str(e).splitlines()[0]})"
    raise damaged(folder, file.name, problem)


def _check_archive(file: Path) -> str | None:
    """What is wrong with a ``.pt`` file (a zip archive, written by ``torch.save``)
    in words, or None. The checksums are checked too: PyTorch does not, and a
    flipped bit would load as a wrong weight."""
    try:
        if file.stat().st_size == 0:
            return "is empty"
        with open(file, "rb") as f:
            head = f.read(len(ZIP_MAGIC))
        if head != ZIP_MAGIC:
            return "is not a PyTorch checkpoint file"
        if not zipfile.is_zipfile(file):
            return "is truncated (it ends before its index)"
        with zipfile.ZipFile(file) as archive:
            bad = archive.testzip()
    except FileNotFoundError:
        return "is missing"
    except OSError as e:
        return f"cannot be read: {cause(e, file)}"
    except (zipfile.BadZipFile, EOFError, ValueError) as e:
        return f"is corrupt ({e})"
    if bad is not None:
        return f"is corrupt (the checksum of {bad} does not match)"
    return None


def damaged(folder: Path, file: str, problem: str) -> CheckpointError:
    """The error for a damaged file of the checkpoint at ``folder``."""
    return CheckpointError(
        f"damaged checkpoint {folder}: {file} {problem}\n{_alternative(folder.parent, folder)}"
    )


def _alternative(checkpoints: Path, damaged_dir: Path | None) -> str:
    """The second line of a damage message: the newest other checkpoint in
    ``checkpoints`` whose files are all present and non-empty, if any."""
    for candidate in reversed(step_dirs(checkpoints)):
        if candidate.resolve() == damaged_dir:
            continue
        files = [candidate / f"{name}.pt" for name in FILES] + [candidate / "metadata.json"]
        if all(f.is_file() and f.stat().st_size > 0 for f in files):
            return (
                f"the newest other checkpoint that looks intact is {candidate} (use it in place "
                f"of this one; to resume from it: ln -sfn {candidate.name} {checkpoints}/latest)"
            )
    return "no other checkpoint of this run looks intact"


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
