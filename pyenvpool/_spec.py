"""Observation specs, derived from the table each C++ task declares once."""

from __future__ import annotations

from dataclasses import dataclass
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
class Spec:
    """What a pool produces: observation fields (name -> FieldSpec) and the
    number of flat discrete actions. `instance_fields` are the arrays that
    `reset(instances=...)` accepts, with a leading dimension of k envs."""

    task_id: str
    fields: dict[str, FieldSpec]
    num_actions: int
    instance_fields: dict[str, FieldSpec]

    def __repr__(self) -> str:
        rows = ", ".join(f"{n}: {f.dtype}{list(f.shape)}" for n, f in self.fields.items())
        return f"Spec({self.task_id}, fields={{{rows}}}, num_actions={self.num_actions})"


def _bound(values: list, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Broadcast one bound (or one per element) to `shape` in `dtype`."""
    v = np.asarray(values, np.float64)
    v = np.full(shape, v[0]) if v.size == 1 else v.reshape(shape)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        v = np.clip(v, info.min, info.max)
    return v.astype(dtype)
