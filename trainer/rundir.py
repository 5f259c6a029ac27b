"""The run directory on disk: creating it, writing its small files, and the
operating system's errors in words a person can act on.

Every write of a run (config.yaml, resumes.jsonl, metrics.jsonl, TensorBoard,
plots, checkpoints, videos) goes through ``writing(path)``, which turns an
``OSError`` into a ``StorageError`` that names the file and the cause (a
read-only file system, a full disk, a path the system refuses) instead of a
traceback. The callers add what was kept and what to do, since only they know
(``train.Trainer``, ``cli``).

Invariants:

* small files are replaced atomically (``write_text_atomic``: a temporary
  file, fsync, rename), so a failed write leaves the old file whole and no
  temporary file behind;
* ``check_writable`` probes a directory with an unnamed temporary file, so it
  leaves nothing behind either, and it answers as the file system does: a
  read-only mount refuses even root, which ignores permission bits.

This module imports neither torch nor the engine.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RESUME_LOG = "resumes.jsonl"  # one line per resumed session (the frozen config stays as it was)

# The causes people meet, in words; others use the system's own text.
_CAUSES = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "the operation is not permitted",
    errno.EIO: "an input/output error (a failing disk or a lost network mount?)",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.EISDIR: "it is a directory",
    errno.EEXIST: "it already exists",
    errno.ENAMETOOLONG: "the name is too long",
}


class RunError(RuntimeError):
    """The run directory cannot be used the way it was asked for."""


class StorageError(RunError):
    """A file of the run could not be written or read: ``path`` names it,
    ``cause`` says why (``errno`` is the system's code)."""

    def __init__(self, path: Path | str, error: OSError, action: str = "write") -> None:
        self.path, self.errno = Path(path), error.errno
        self.cause = cause(error, self.path)
        super().__init__(f"cannot {action} {self.path}: {self.cause}")

    @property
    def full(self) -> bool:
        """True when the device or the quota is full."""
        return self.errno in (errno.ENOSPC, errno.EDQUOT)


def cause(error: OSError, path: Path) -> str:
    """Why ``error`` happened at ``path``, in words."""
    if error.errno == errno.ENOENT:
        # A parent that exists but refuses new entries (/proc, /sys) answers
        # "no such file or directory", which would send a person looking for
        # a typo: say which part is missing, or that the parent refuses.
        existing = next((p for p in (path, *path.parents) if p.exists()), None)
        if existing is not None and existing == path.parent:
            return f"{existing} does not accept new files or directories"
        missing = path if existing is None else _child_towards(existing, path)
        return f"{missing} does not exist"
    text = _CAUSES.get(error.errno or -1)
    return text if text is not None else (error.strerror or str(error)).lower()


def _child_towards(ancestor: Path, path: Path) -> Path:
    return ancestor / path.relative_to(ancestor).parts[0]


@contextlib.contextmanager
def writing(path: Path | str, action: str = "write") -> Iterator[None]:
    """Turn an ``OSError`` inside the block into a ``StorageError`` naming ``path``."""
    try:
        yield
    except StorageError:
        raise
    except OSError as e:
        raise StorageError(path, e, action) from None


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically; on failure the old file stays
    whole and no temporary file is left."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    with writing(path):
        try:
            with open(tmp, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise


def append_line(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to ``path`` and make it durable."""
    with writing(path), open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def check_writable(directory: Path) -> None:
    """Raise ``StorageError`` unless a file can be created in ``directory``
    (an unnamed temporary file: nothing is left behind)."""
    with writing(directory), tempfile.TemporaryFile(dir=directory):
        pass


def create(run_dir: Path) -> bool:
    """Create ``run_dir`` and its parents; True if this call created it."""
    if run_dir.is_dir():
        return False
    with writing(run_dir, "create the run directory"):
        run_dir.mkdir(parents=True)
    return True
