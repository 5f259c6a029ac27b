"""Masked categorical distribution over flat discrete actions.

Illegal actions (``mask == False``) get exactly zero probability: their logits
are replaced by the most negative float before the log-softmax, so they are
never sampled, and the entropy sums over legal actions only. A row with no
legal action at all (which no built-in task produces) is treated as all-legal
rather than producing NaNs.
"""

from __future__ import annotations

import torch


class MaskedCategorical:
    """Categorical over the last dimension of ``logits``, restricted to ``mask``."""

    def __init__(self, logits: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        if mask is not None:
            mask = mask.bool()
            mask = mask | ~mask.any(dim=-1, keepdim=True)
            logits = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
        self.mask = mask
        self.log_probs = torch.log_softmax(logits, dim=-1)

    @property
    def probs(self) -> torch.Tensor:
        return self.log_probs.exp()

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """One action per row, drawn with ``generator`` (reproducible)."""
        flat = self.probs.reshape(-1, self.probs.shape[-1])
        actions = torch.multinomial(flat, 1, generator=generator)
        return actions.reshape(self.probs.shape[:-1])

    def mode(self) -> torch.Tensor:
        """The most likely legal action per row (the greedy policy)."""
        return self.log_probs.argmax(dim=-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        """Entropy over legal actions (illegal ones contribute exactly 0)."""
        p_log_p = self.probs * self.log_probs
        if self.mask is not None:
            p_log_p = torch.where(self.mask, p_log_p, torch.zeros_like(p_log_p))
        return -p_log_p.sum(dim=-1)
