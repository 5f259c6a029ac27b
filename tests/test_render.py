"""pool.render: text and rgb frames, their arguments and errors."""

from __future__ import annotations

import pytest


def test_render_modes_and_arguments(make_pool):
    pool = make_pool("CartPole-v1", 3)
    pool.reset(seed=0)
    assert isinstance(pool.render(), str) and pool.render(2) != ""
    texts = pool.render([0, 2])
    assert isinstance(texts, list) and len(texts) == 2 and texts[1] == pool.render(2)
    assert len(pool.render(None)) == 3
    with pytest.raises(ValueError, match="mode"):
        pool.render(0, mode="human")
    with pytest.raises(ValueError, match="env_id"):
        pool.render(3)
    with pytest.raises(ValueError, match="out of range"):
        pool.render([0, 5])
    with pytest.raises(TypeError, match="integer"):
        pool.render([0.5])
