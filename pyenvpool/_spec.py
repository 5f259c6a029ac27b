"""Observation and action specs, derived from the table each C++ task declares once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FieldSpec:
    """One observation field: per-env shape, dtype and bounds."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def _from_core(cls, name: str, dtype: Any, shape: tuple, low: list, high: list) -> FieldSpec:
        dtype, shape = np.dtype(dtype), tuple(shape)
        if dtype == np.bool_:
            lo, hi = np.zeros(shape, np.bool_), np.ones(shape, np.bool_)
        else:
            lo, hi = (_bound(v, shape, dtype) for v in (low, high))
        return cls(name, tuple(shape), dtype, lo, hi)

    def to_space(self):
        """The Gymnasium space of one env's value of this field."""
        from gymnasium import spaces

        return spaces.Box(self.low, self.high, shape=self.shape, dtype=self.dtype)


@dataclass(frozen=True)
class ActionSpec:
    """One env's action space.

    ``kind`` is ``"discrete"`` (an int in ``[0, nvec[0])``), ``"multi_discrete"``
    (``len(nvec)`` ints, component ``c`` in ``[0, nvec[c])``) or ``"box"``
    (float32 of ``shape``, nominally within ``[low, high]``). A batch of actions
    has a leading ``num_envs`` dimension: int ``[N]``, int ``[N, k]`` or float32
    ``[N, *shape]``.
    """

    kind: str
    nvec: tuple[int, ...] = ()
    shape: tuple[int, ...] = ()
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    @classmethod
    def discrete(cls, n: int) -> ActionSpec:
        return cls("discrete", (int(n),), ())

    @classmethod
    def _from_core(cls, kind: str, nvec: list, shape: tuple, low: list, high: list) -> ActionSpec:
        shape = tuple(shape)
        if kind == "box":
            dtype = np.dtype(np.float32)
            return cls(kind, (), shape, _bound(low, shape, dtype), _bound(high, shape, dtype))
        return cls(kind, tuple(int(n) for n in nvec), shape)

    @property
    def num_logits(self) -> int:
        """Logits of a categorical policy: n, or the sum of the component counts; 0 for Box."""
        return 0 if self.kind == "box" else int(sum(self.nvec))

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32 if self.kind == "box" else np.int64)

    def to_space(self):
        """The Gymnasium space of one env's action."""
        from gymnasium import spaces

        if self.kind == "discrete":
            return spaces.Discrete(self.nvec[0])
        if self.kind == "multi_discrete":
            return spaces.MultiDiscrete(np.array(self.nvec, np.int64))
        return spaces.Box(self.low, self.high, shape=self.shape, dtype=np.float32)

    def __repr__(self) -> str:
        if self.kind == "discrete":
            return f"Discrete({self.nvec[0]})"
        if self.kind == "multi_discrete":
            return f"MultiDiscrete({list(self.nvec)})"
        return f"Box({self.low.min()}, {self.high.max()}, {self.shape})"


@dataclass(frozen=True)
class Spec:
    """What a pool produces and takes: observation fields (name -> FieldSpec),
    the action space, and ``num_actions``, the logits a categorical policy
    needs (Discrete: n; MultiDiscrete: the sum of the component counts; Box:
    0). ``instance_fields`` are the arrays that ``reset(instances=...)``
    accepts, with a leading dimension of k envs. ``action`` defaults to
    ``Discrete(num_actions)``. ``info_fields`` are the per-env values a task
    reports in ``info`` beside its observation (the MuJoCo tasks' reward
    terms, positions and velocities), with the same leading dimension."""

    task_id: str
    fields: dict[str, FieldSpec]
    num_actions: int
    instance_fields: dict[str, FieldSpec]
    action: ActionSpec | None = None
    info_fields: dict[str, FieldSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.action is None:
            object.__setattr__(self, "action", ActionSpec.discrete(self.num_actions))

    def __repr__(self) -> str:
        rows = ", ".join(f"{n}: {f.dtype}{list(f.shape)}" for n, f in self.fields.items())
        return f"Spec({self.task_id}, fields={{{rows}}}, action={self.action!r})"


def _bound(values: list, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Broadcast one bound (or one per element) to `shape` in `dtype`."""
    v = np.asarray(values, np.float64)
    v = np.full(shape, v[0]) if v.size == 1 else v.reshape(shape)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        v = np.clip(v, info.min, info.max)
    return v.astype(dtype)
