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
from pyenvpool._spec import ActionSpec, FieldSpec, Spec

__all__ = [
    "ActionSpec",
    "EnvPool",
    "FieldSpec",
    "SnapshotCapacityError",
    "Spec",
    "list_tasks",
    "make",
]

__version__ = "0.1.0"

# Gymnasium (>= 1.1) is optional: when it is installed, export the single and
# vector env adapters and register `pyenvpool/<task_id>` for `gymnasium.make`
# and `gymnasium.make_vec`.
try:
    from gymnasium.vector import AutoresetMode as _AutoresetMode  # noqa: F401
except ImportError:

    def __getattr__(name: str):
        if name in ("GymnasiumEnv", "GymnasiumVectorEnv"):
            raise ImportError(f"pyenvpool.{name} needs gymnasium>=1.1")
        raise AttributeError(f"module 'pyenvpool' has no attribute {name!r}")

else:
    from pyenvpool.gymnasium_env import GymnasiumVectorEnv, register_envs
    from pyenvpool.gymnasium_single import GymnasiumEnv

    register_envs()
    __all__ += ["GymnasiumEnv", "GymnasiumVectorEnv"]
