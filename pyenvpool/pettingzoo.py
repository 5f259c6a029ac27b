"""PettingZoo: ConnectFour-v0 as a two-agent AEC (and Parallel) environment.

    import pyenvpool.pettingzoo

    env = pyenvpool.pettingzoo.env("ConnectFour-v0")
    env.reset(seed=0)
    for agent in env.agent_iter():
        observation, reward, termination, truncation, info = env.last()
        action = None if termination or truncation else policy(observation)
        env.step(action)

The layout follows PettingZoo's own ``pettingzoo.classic.connect_four_v3``, so
code written for it runs on this one:

* agents ``player_0`` (moves first) and ``player_1``; ``Discrete(7)`` actions,
  the column to drop a piece into;
* ``observe(agent)`` is ``{"observation": int8 [6, 7, 2], "action_mask": int8
  [7]}``: plane 0 the observing agent's pieces, plane 1 the opponent's, row 0
  the top row; the mask marks the columns that are not full, and is all zero
  for the agent that is not to move and once the game is over (PettingZoo's
  still shows the open columns of a finished game);
* rewards: +1 to the winner and -1 to the loser on the winning move, 0 to both
  for a draw; an illegal move (a full column) ends the game with -1 for the
  agent that made it and 0 for the other, as PettingZoo's
  ``TerminateIllegalWrapper`` scores it (the engine reports the forfeit as the
  mover's -1; PettingZoo does not give the opponent +1). Games end by
  termination only: truncations stay False, also after an illegal move,
  where PettingZoo's wrapper sets both.

tests/test_pettingzoo.py plays the same games on both and compares every
observation, reward and termination.

One step is one engine step of a one-env pool (`pyenvpool.make`) that keeps
its final state (``autoreset=False``), so the last board stays observable.
``reset(seed=s)`` restarts the pool's random stream (random openings and
random moves, when the task kwargs ask for them); the plain game has no
randomness. Task kwargs (``random_opening_moves``...) pass through ``env()``;
with a random opening ``player_1`` may be the first to move.

``parallel_env()`` offers the same game through PettingZoo's Parallel API.
A turn-based game fits it awkwardly: every step takes an action from both
agents and applies only the one from the agent to move (``infos[agent]
["active_agent"]`` names it, as PettingZoo's ``turn_based_aec_to_parallel``
does; the other agent's action mask is all zero, and its action may be
omitted). It is there for tools that only take Parallel envs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    from gymnasium import spaces
    from pettingzoo import AECEnv, ParallelEnv
    from pettingzoo.utils import wrappers
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "pyenvpool.pettingzoo needs pettingzoo: pip install 'pyenvpool[pettingzoo]'"
    ) from error

from pyenvpool._pool import make

__all__ = ["ConnectFourAEC", "ConnectFourParallel", "env", "parallel_env", "raw_env"]

AGENTS = ("player_0", "player_1")
_TASKS = ("ConnectFour-v0",)


def env(task_id: str = "ConnectFour-v0", **kwargs: Any) -> AECEnv:
    """The AEC env behind PettingZoo's ``OrderEnforcingWrapper`` (which
    refuses steps before ``reset``), as PettingZoo's classic ``env()`` does."""
    return wrappers.OrderEnforcingWrapper(raw_env(task_id, **kwargs))


def raw_env(task_id: str = "ConnectFour-v0", **kwargs: Any) -> ConnectFourAEC:
    """The unwrapped AEC env; keyword arguments as for `ConnectFourAEC`."""
    return ConnectFourAEC(task_id, **kwargs)


def parallel_env(task_id: str = "ConnectFour-v0", **kwargs: Any) -> ConnectFourParallel:
    """The Parallel env; keyword arguments as for `ConnectFourAEC`."""
    return ConnectFourParallel(task_id, **kwargs)


class _Game:
    """One ConnectFour game on a one-env pool, in PettingZoo's terms: the
    agent to move, agent-relative observations and per-agent rewards."""

    def __init__(self, task_id: str, render_mode: str | None, task_kwargs: dict[str, Any]):
        if task_id not in _TASKS:
            raise ValueError(f"pyenvpool.pettingzoo supports {list(_TASKS)}, not {task_id!r}")
        self.pool = make(task_id, 1, num_threads=1, autoreset=False, **task_kwargs)
        if render_mode is not None and render_mode not in self.pool.render_modes:
            self.pool.close()
            raise ValueError(
                f"{task_id} renders {list(self.pool.render_modes)}; got {render_mode!r}"
            )
        self.render_mode = render_mode
        # One space object per agent, so that seeding an agent's space sticks.
        self.observation_spaces = {
            agent: spaces.Dict(
                {
                    "observation": spaces.Box(0, 1, (6, 7, 2), np.int8),
                    "action_mask": spaces.Box(0, 1, (7,), np.int8),
                }
            )
            for agent in AGENTS
        }
        self.action_spaces = {agent: spaces.Discrete(7) for agent in AGENTS}
        self.over = False
        self._obs: dict[str, np.ndarray] = {}

    def reset(self, seed: int | None) -> str:
        """Start a game; returns the agent to move."""
        obs, _ = self.pool.reset(seed=seed)
        self._keep(obs)
        self.over = False
        return self.to_move

    def move(self, action: Any) -> dict[str, float]:
        """Play the mover's ``action``; returns each agent's reward."""
        mover = self.to_play
        column = np.asarray(action).reshape(-1)
        if column.shape != (1,):
            raise ValueError(f"action must be one column index, got {action!r}")
        obs, reward, terminated, _, _ = self.pool.step(column)
        self._keep(obs)
        self.over = bool(terminated[0])
        r = float(reward[0])
        rewards = {AGENTS[mover]: r, AGENTS[1 - mover]: -r if r > 0 else 0.0}
        return rewards

    @property
    def to_play(self) -> int:
        return int(self._obs["to_play"])

    @property
    def to_move(self) -> str:
        return AGENTS[self.to_play]

    def observe(self, agent: str) -> dict[str, np.ndarray]:
        """``agent``'s view: its pieces in plane 0, the opponent's in plane 1."""
        board = self._obs["board"]  # [2, 6, 7]: the player to move first
        mine = AGENTS.index(agent) == self.to_play
        planes = board if mine else board[::-1]
        observation = np.ascontiguousarray(planes.transpose(1, 2, 0), np.int8)
        if mine and not self.over:
            mask = self._obs["action_mask"].astype(np.int8)
        else:
            mask = np.zeros(7, np.int8)
        return {"observation": observation, "action_mask": mask}

    def render(self) -> Any:
        if self.render_mode is None:
            return None
        return self.pool.render(0, mode=self.render_mode)

    def _keep(self, obs: dict[str, np.ndarray]) -> None:
        self._obs = {name: value[0].copy() for name, value in obs.items()}


class ConnectFourAEC(AECEnv):
    """ConnectFour-v0 as a PettingZoo AEC env (see the module docstring).

    Args:
        task_id: ``"ConnectFour-v0"``.
        render_mode: ``None``, ``"ansi"`` (text) or ``"rgb_array"`` (once the
            task draws frames).
        **task_kwargs: task parameters, as for `pyenvpool.make`.
    """

    metadata = {
        "render_modes": ["ansi", "rgb_array"],
        "name": "pyenvpool_connect_four_v0",
        "is_parallelizable": False,
    }

    def __init__(
        self, task_id: str = "ConnectFour-v0", render_mode: str | None = None, **task_kwargs: Any
    ) -> None:
        super().__init__()
        self._game = _Game(task_id, render_mode, task_kwargs)
        self.render_mode = render_mode
        self.possible_agents = list(AGENTS)
        self.agents = list(AGENTS)

    def observation_space(self, agent: str) -> spaces.Space:
        return self._game.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self._game.action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        self.agents = list(AGENTS)
        self.rewards = dict.fromkeys(self.agents, 0.0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0.0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.infos = {agent: {} for agent in self.agents}
        self.agent_selection = self._game.reset(seed)

    def observe(self, agent: str) -> dict[str, np.ndarray]:
        return self._game.observe(agent)

    def step(self, action: Any) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        self._cumulative_rewards[agent] = 0.0
        self.rewards = self._game.move(action)
        if self._game.over:
            self.terminations = dict.fromkeys(self.agents, True)
        self.agent_selection = self._game.to_move
        self._accumulate_rewards()
        if self.rewards[agent] < 0:  # a forfeit: PettingZoo's wrapper starts the dead steps over
            self._deads_step_first()

    def render(self) -> Any:
        return self._game.render()

    def close(self) -> None:
        self._game.pool.close()


class ConnectFourParallel(ParallelEnv):
    """ConnectFour-v0 as a PettingZoo Parallel env: each step applies only the
    action of the agent to move (see the module docstring)."""

    metadata = ConnectFourAEC.metadata

    def __init__(
        self, task_id: str = "ConnectFour-v0", render_mode: str | None = None, **task_kwargs: Any
    ) -> None:
        self._game = _Game(task_id, render_mode, task_kwargs)
        self.render_mode = render_mode
        self.possible_agents = list(AGENTS)
        self.agents = list(AGENTS)

    def observation_space(self, agent: str) -> spaces.Space:
        return self._game.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self._game.action_spaces[agent]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, dict]]:
        self.agents = list(AGENTS)
        mover = self._game.reset(seed)
        observations = {agent: self._game.observe(agent) for agent in self.agents}
        return observations, {agent: {"active_agent": mover} for agent in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple:
        if not self.agents:
            raise RuntimeError("step() after the game ended: call reset()")
        mover = self._game.to_move
        if mover not in actions:
            raise KeyError(f"actions has no action for {mover}, the agent to move")
        rewards = self._game.move(actions[mover])
        over = self._game.over
        observations = {agent: self._game.observe(agent) for agent in self.agents}
        terminations = dict.fromkeys(self.agents, over)
        truncations = dict.fromkeys(self.agents, False)
        infos = {agent: {"active_agent": self._game.to_move} for agent in self.agents}
        if over:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self) -> Any:
        return self._game.render()

    def close(self) -> None:
        self._game.pool.close()
