"""Process-wide state: seeding, the global RNG states a checkpoint saves, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.runtime import DeviceError, rng_state, seed_process, select_device, set_rng_state


def test_seeding_and_restoring_the_global_generators():
    seed_process(5)
    first = (torch.rand(3), np.random.rand(3))
    seed_process(5)
    state = rng_state()
    assert torch.equal(torch.rand(3), first[0]) and np.array_equal(np.random.rand(3), first[1])
    set_rng_state(state)
    assert torch.equal(torch.rand(3), first[0]) and np.array_equal(np.random.rand(3), first[1])


def test_devices():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="PyTorch sees no CUDA device"):
            select_device("cuda")
