"""Process-wide PyTorch and NumPy state: the device, the thread count, the global seeds.

A seeded CPU run is bit-reproducible for a fixed ``torch_threads`` (and world
size): ``seed_process`` sets the thread count and seeds the global torch and
NumPy generators that network initialisation draws from, and ``rng_state`` /
``set_rng_state`` save and restore those generators (and CUDA's) in a
checkpoint, so a resumed run draws what the uninterrupted run would have.
The algorithms' own samplers are separate ``torch.Generator`` objects that
they save themselves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class DeviceError(RuntimeError):
    """The requested device is not available."""


def select_device(name: str) -> torch.device:
    """``auto`` (CUDA when PyTorch sees a GPU, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"--device {name} was requested, but PyTorch sees no CUDA device")
    return torch.device(name)


def seed_process(seed: int, torch_threads: int | None = None) -> None:
    """Seed the global torch and NumPy generators (and set torch's CPU threads)."""
    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def rng_state() -> dict[str, Any]:
    """The global generators' states, as tensors and plain data (checkpoint-safe)."""
    numpy_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned."""
    torch.set_rng_state(state["torch"].cpu())
    saved = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": saved["key"].numpy().astype(np.uint32), "pos": saved["pos"]},
            "has_gauss": saved["has_gauss"],
            "gauss": saved["gauss"],
        }
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
