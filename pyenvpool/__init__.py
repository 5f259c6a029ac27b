"""pyenvpool: a C++ thread-pool engine that steps many copies of an
environment in parallel, with same-step auto-reset, a snapshot store for
search, and zero-copy NumPy views of its output buffers.

    import pyenvpool
    pool = pyenvpool.make("CartPole-v1", num_envs=4096)
    obs, info = pool.reset(seed=0)
    obs, reward, terminated, truncated, info = pool.step(actions)
"""

from __future__ import annotations

from pyenvpool._core import SnapshotCapacityError
from pyenvpool._pool import EnvPool, list_tasks, make
from pyenvpool._spec import FieldSpec, Spec

__all__ = [
    "EnvPool",
    "FieldSpec",
    "SnapshotCapacityError",
    "Spec",
    "list_tasks",
    "make",
]

__version__ = "0.1.0"
