"""Adam, in a few lines of foreach tensor ops.

The same update as ``torch.optim.Adam`` without weight decay or AMSGrad (the
tests compare the two). It exists because any ``torch.optim`` optimizer
imports ``torch._dynamo`` on construction, which costs 1-2 s of start-up on a
small CPU machine -- a third of a whole CartPole training run. Its state dict
holds only tensors and numbers, so checkpoints load with ``weights_only=True``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


class Adam:
    """Adam (Kingma & Ba, 2015) over a fixed list of parameters."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps = lr, betas, eps
        self.step_count = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        params = [p for p in self.params if p.grad is not None]
        if len(params) != len(self.params):
            raise RuntimeError("Adam.step: every parameter needs a gradient")
        grads = [p.grad for p in params]
        beta1, beta2 = self.betas
        self.step_count += 1
        torch._foreach_lerp_(self.exp_avg, grads, 1 - beta1)
        torch._foreach_mul_(self.exp_avg_sq, beta2)
        torch._foreach_addcmul_(self.exp_avg_sq, grads, grads, 1 - beta2)
        step_size = self.lr / (1 - beta1**self.step_count)
        bias_correction2_sqrt = (1 - beta2**self.step_count) ** 0.5
        denom = torch._foreach_sqrt(self.exp_avg_sq)
        torch._foreach_div_(denom, bias_correction2_sqrt)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, self.exp_avg, denom, -step_size)

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step_count,
            "lr": self.lr,
            "betas": list(self.betas),
            "eps": self.eps,
            "exp_avg": [t.clone() for t in self.exp_avg],
            "exp_avg_sq": [t.clone() for t in self.exp_avg_sq],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        shapes = [tuple(p.shape) for p in self.params]
        if [tuple(t.shape) for t in state["exp_avg"]] != shapes:
            raise ValueError("optimizer state does not match the model's parameters")
        self.step_count = int(state["step"])
        self.lr = float(state["lr"])
        self.betas = (float(state["betas"][0]), float(state["betas"][1]))
        self.eps = float(state["eps"])
        for mine, saved in zip(
            self.exp_avg + self.exp_avg_sq, state["exp_avg"] + state["exp_avg_sq"]
        ):
            mine.copy_(saved)
