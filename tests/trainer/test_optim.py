"""The trainer's Adam equals torch.optim.Adam."""

from __future__ import annotations

import torch

from trainer.optim import Adam


def test_matches_torch_adam_step_for_step():
    torch.manual_seed(0)
    model_a = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    model_b = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    model_b.load_state_dict(model_a.state_dict())
    ours = Adam(model_a.parameters(), lr=3e-3, eps=1e-5)
    ref = torch.optim.Adam(model_b.parameters(), lr=3e-3, eps=1e-5, foreach=False)
    for step in range(20):
        x = torch.randn(16, 5)
        for model, opt in ((model_a, ours), (model_b, ref)):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
        if step == 10:
            ours.lr = ref.param_groups[0]["lr"] = 1e-3
    for a, b in zip(model_a.parameters(), model_b.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_state_dict_round_trip_continues_identically():
    torch.manual_seed(1)
    p = torch.nn.Parameter(torch.randn(4))
    opt = Adam([p], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        (p**2).sum().backward()
        opt.step()
    state = opt.state_dict()
    q = torch.nn.Parameter(p.detach().clone())
    other = Adam([q], lr=0.5)
    other.load_state_dict(state)
    for param, optimizer in ((p, opt), (q, other)):
        optimizer.zero_grad()
        (param**2).sum().backward()
        optimizer.step()
    assert torch.equal(p, q) and other.step_count == 4
