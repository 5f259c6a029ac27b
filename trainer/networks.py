"""Actor-critic networks, one family per kind of observation.

Every agent maps an observation dict (``name -> tensor [B, *field_shape]``, in
the task's dtypes, exactly as the pool produced it) to ``(policy parameters
[B, P], value [B])``: P = ``ActionSpace.num_params`` (``trainer.distributions``),
the logits of a discrete task. Turning them into a policy, and masking illegal
actions, is the distribution's job; an agent may *also* read ``action_mask``
as an input, as the BinPack network does for cross-attention.

* ``mlp`` -- CleanRL's agent: separate actor and critic MLPs over all
  observation fields flattened (CartPole-v1, and any small vector task). It is
  the one family for every action space: for a Box task the actor emits the
  Gaussian means and a state-independent log-std parameter (initialised to
  ``log_std_init``, 0 by default) is appended, as in CleanRL's
  ``ppo_continuous_action``. With
  ``normalize_observation`` it standardises its float observation fields with
  running statistics (``trainer.normalization``) that the algorithms update
  between rollouts and checkpoints save with the weights.
* ``maze_cnn`` -- Jumanji's Maze A2C network: 3x3 convolutions over a
  walls / agent / target grid, the normalised step count appended, MLP heads.
* ``maze_vin`` -- a value iteration network (Tamar et al., NeurIPS 2016): a
  learned reward map over the walls and the target, K steps of learned
  3x3 Bellman backups, and heads that read the Q and value maps at the agent.
* ``connect_four_cnn`` -- 3x3 convolutions over the Connect Four board; each
  column's logit scores the cell a piece dropped there lands on (plus an MLP).
* ``binpack_attention`` -- Jumanji's BinPack A2C network: EMS and item
  encoders, per layer self-attention within each set and EMS<->item
  cross-attention masked by the action mask, bilinear EMS x item logits, and a
  value head over masked sums of both sets.

Layers use orthogonal initialisation (gain sqrt(2)) with zero biases; the
policy output is initialised with a small gain (0.01) and the value output with
gain 1, as in "The 37 implementation details of PPO". The mlp family can keep
PyTorch's default ``nn.Linear`` initialisation instead (``orthogonal_init:
false``, the RL Zoo's ``ortho_init=False``).

Every architecture but connect_four_cnn also comes apart for a recurrent core
(``network.recurrent``, ``trainer.recurrent``): ``encode(obs)`` runs the torso,
``core_input(encoding, obs)`` flattens it into the core's input
(``core_input_size`` wide) and ``heads(encoding, obs, memory)`` finishes the outputs, with the
core's output ``memory`` (``[B, recurrent_size]``) joined to what the heads
read (concatenated to their MLPs' input; BinPack adds it to every EMS and item
embedding too). ``forward`` is ``heads(encode(obs), obs)`` with no memory, and
a feed-forward network is built exactly as it was before the split.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import nn

from trainer.config import NetworkConfig
from trainer.distributions import ActionSpace
from trainer.normalization import ObservationNormalizer
from trainer.recurrent import RecurrentAgent

Observation = dict[str, torch.Tensor]


def layer_init(layer: nn.Module, std: float = math.sqrt(2), bias: float = 0.0) -> nn.Module:
    """Orthogonal weights scaled by ``std``, constant bias."""
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias)
    return layer


def memory_size(cfg: NetworkConfig) -> int:
    """Width of the recurrent core's output that the heads read (0: feed-forward)."""
    return 0 if cfg.recurrent == "none" else cfg.recurrent_size


def with_memory(x: torch.Tensor, memory: torch.Tensor | None) -> torch.Tensor:
    """What a head reads: ``x``, and the recurrent core's output after it."""
    return x if memory is None else torch.cat([x, memory], dim=-1)


def mlp(
    sizes: list[int], activation: str, out_std: float, orthogonal: bool = True
) -> nn.Sequential:
    """Linear layers of ``sizes``, activations between them, none after the last.

    ``orthogonal``: ``layer_init`` (gain sqrt(2), ``out_std`` on the last layer);
    otherwise PyTorch's default ``nn.Linear`` initialisation is kept.
    """
    act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        last = i == len(sizes) - 2
        layer = nn.Linear(a, b)
        layers.append(layer_init(layer, out_std if last else math.sqrt(2)) if orthogonal else layer)
        if not last:
            layers.append(act())
    return nn.Sequential(*layers)


class MLPAgent(nn.Module):
    """Separate actor and critic MLPs over all observation fields, flattened."""

    def __init__(self, spec: Any, cfg: NetworkConfig) -> None:
        super().__init__()
        self.inputs = [name for name in spec.fields if name != "action_mask"]
        obs_dim = sum(math.prod(spec.fields[name].shape) for name in self.inputs)
        space = ActionSpace.from_spec(spec)
        # A Box policy's network emits the means; the log-stds are one parameter.
        outputs = space.num_params // 2 if space.continuous else space.num_params
        self.core_input_size = obs_dim
        head_in = obs_dim + memory_size(cfg)
        ortho = cfg.orthogonal_init
        self.actor = mlp([head_in, *cfg.hidden_sizes, outputs], cfg.activation, 0.01, ortho)
        self.critic = mlp([head_in, *cfg.hidden_sizes, 1], cfg.activation, 1.0, ortho)
        self.log_std = (
            nn.Parameter(torch.full((outputs,), float(cfg.log_std_init)))
            if space.continuous
            else None
        )
        self.normalizer = (
            ObservationNormalizer(spec, cfg.observation_clip) if cfg.normalize_observation else None
        )

    def features(self, obs: Observation) -> torch.Tensor:
        if self.normalizer is not None:
            obs = self.normalizer(obs)
        parts = [obs[name].reshape(obs[name].shape[0], -1) for name in self.inputs]
        x = parts[0] if len(parts) == 1 else torch.cat([p.float() for p in parts], dim=-1)
        return x.float()

    encode = features

    def core_input(self, encoding: torch.Tensor, obs: Observation) -> torch.Tensor:
        return encoding

    def _policy(self, x: torch.Tensor) -> torch.Tensor:
        out = self.actor(x)
        if self.log_std is None:
            return out
        return torch.cat([out, self.log_std.expand_as(out)], dim=-1)

    def heads(
        self, encoding: torch.Tensor, obs: Observation, memory: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = with_memory(encoding, memory)
        return self._policy(x), self.critic(x).squeeze(-1)

    def forward(self, obs: Observation) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.encode(obs), obs)

    def logits(self, obs: Observation) -> torch.Tensor:
        return self._policy(self.features(obs))

    def get_value(self, obs: Observation) -> torch.Tensor:
        return self.critic(self.features(obs)).squeeze(-1)


class MazeCNNAgent(nn.Module):
    """Convolutions over [walls, agent, target] planes plus the step count.

    With ``egocentric`` the planes are a (2H-1) x (2W-1) window centred on the
    agent (cells outside the maze read as walls) holding the walls and the
    target, so what the policy sees moves with the agent: a corridor or a
    junction looks the same wherever it is, which the MLP heads learn far faster
    on than on absolute positions. With no ``conv_channels`` the planes go
    straight to the MLPs (cheap on a CPU).
    """

    def __init__(self, spec: Any, cfg: NetworkConfig) -> None:
        super().__init__()
        self.height, self.width = spec.fields["walls"].shape
        high = float(spec.fields["step_count"].high) if "step_count" in spec.fields else 0.0
        # Normalise the step count by the step limit when the spec bounds it.
        self.step_scale = high if 0 < high < 1e6 else 100.0
        self.shared = cfg.shared_torso
        self.egocentric = cfg.egocentric
        in_channels = 2 if self.egocentric else 3
        rows, cols = (
            (2 * self.height - 1, 2 * self.width - 1)
            if self.egocentric
            else (self.height, self.width)
        )
        out_channels = cfg.conv_channels[-1] if cfg.conv_channels else in_channels
        embed = out_channels * rows * cols + 1
        self.core_input_size = embed if self.shared else 2 * embed
        self.actor_torso = self._torso(in_channels, cfg.conv_channels)
        self.critic_torso = None if self.shared else self._torso(in_channels, cfg.conv_channels)
        head_in = embed + memory_size(cfg)
        self.actor = mlp([head_in, *cfg.hidden_sizes, spec.num_actions], cfg.activation, 0.01)
        self.critic = mlp([head_in, *cfg.hidden_sizes, 1], cfg.activation, 1.0)

    @staticmethod
    def _torso(in_channels: int, channels: list[int], flatten: bool = True) -> nn.Sequential:
        layers: list[nn.Module] = []
        for a, b in zip([in_channels, *channels], channels):
            layers += [layer_init(nn.Conv2d(a, b, 3, padding=1)), nn.ReLU()]
        return nn.Sequential(*layers, *([nn.Flatten()] if flatten else []))

    def planes(self, obs: Observation) -> torch.Tensor:
        """[B, 3, H, W]: walls, a one-hot of the agent, a one-hot of the target; or,
        egocentric, [B, 2, 2H-1, 2W-1]: walls and the target around the agent."""
        if self.egocentric:
            return self._egocentric_planes(obs)
        walls = obs["walls"].float()
        batch = walls.shape[0]

        def one_hot(position: torch.Tensor) -> torch.Tensor:
            index = (position[:, 0] * self.width + position[:, 1]).long().unsqueeze(1)
            flat = torch.zeros(batch, self.height * self.width, device=walls.device)
            return flat.scatter_(1, index, 1.0).view(batch, self.height, self.width)

        agent, target = one_hot(obs["agent_position"]), one_hot(obs["target_position"])
        return torch.stack([walls, agent, target], dim=1)

    def _egocentric_planes(self, obs: Observation) -> torch.Tensor:
        h, w = self.height, self.width
        walls = obs["walls"].float()
        batch, device = walls.shape[0], walls.device
        # Walls inside a border of H-1 / W-1 wall cells; the window at padded
        # (r, c) .. (r + 2H - 2, c + 2W - 2) is centred on the agent at (r, c).
        padded = torch.ones(batch, 3 * h - 2, 3 * w - 2, device=device)
        padded[:, h - 1 : 2 * h - 1, w - 1 : 2 * w - 1] = walls
        agent = obs["agent_position"].long()
        rows = agent[:, 0:1] + torch.arange(2 * h - 1, device=device)  # [B, 2H-1]
        cols = agent[:, 1:2] + torch.arange(2 * w - 1, device=device)  # [B, 2W-1]
        flat_index = (rows.unsqueeze(2) * (3 * w - 2) + cols.unsqueeze(1)).view(batch, -1)
        window = padded.view(batch, -1).gather(1, flat_index)
        offset = obs["target_position"].long() - agent + torch.tensor([h - 1, w - 1], device=device)
        target = torch.zeros_like(window).scatter_(
            1, (offset[:, 0] * (2 * w - 1) + offset[:, 1]).unsqueeze(1), 1.0
        )
        return torch.stack([window, target], dim=1).view(batch, 2, 2 * h - 1, 2 * w - 1)

    def _embed(self, torso: nn.Module, planes: torch.Tensor, obs: Observation) -> torch.Tensor:
        steps = obs["step_count"].reshape(-1, 1).float() / self.step_scale
        return torch.cat([torso(planes), steps], dim=-1)

    def encode(self, obs: Observation) -> tuple[torch.Tensor, torch.Tensor]:
        """The actor's and the critic's embeddings (the same tensor with a shared torso)."""
        planes = self.planes(obs)
        actor_in = self._embed(self.actor_torso, planes, obs)
        critic_in = actor_in if self.shared else self._embed(self.critic_torso, planes, obs)
        return actor_in, critic_in

    def core_input(
        self, encoding: tuple[torch.Tensor, torch.Tensor], obs: Observation
    ) -> torch.Tensor:
        return encoding[0] if self.shared else torch.cat(encoding, dim=-1)

    def heads(
        self,
        encoding: tuple[torch.Tensor, torch.Tensor],
        obs: Observation,
        memory: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        actor_in, critic_in = encoding
        actor_out = self.actor(with_memory(actor_in, memory))
        return actor_out, self.critic(with_memory(critic_in, memory)).squeeze(-1)

    def forward(self, obs: Observation) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.encode(obs), obs)

    def logits(self, obs: Observation) -> torch.Tensor:
        return self.actor(self._embed(self.actor_torso, self.planes(obs), obs))

    def get_value(self, obs: Observation) -> torch.Tensor:
        torso = self.actor_torso if self.shared else self.critic_torso
        return self.critic(self._embed(torso, self.planes(obs), obs)).squeeze(-1)


class MazeVINAgent(nn.Module):
    """A value iteration network (Tamar et al. 2016) over the whole maze.

    A small convolution turns the [walls, target] planes into a reward map r.
    Then ``vin_iterations`` times: Q = conv(r) + conv(V) with ``vin_channels``
    output channels, V = max over the channels of Q -- a Bellman backup whose
    3x3 kernels (shared across iterations) are learned. K iterations propagate
    value K cells, so K must reach the longest path (at most 42 cells from the
    target on 2,000 random 10x10 Jumanji mazes).
    The actor and critic MLPs read Q at the agent's cell and V in the 3x3
    window around it, both relative to V at the agent (plus that V itself),
    the walls in the window and the normalised step count. (Absolute values
    learned as fast on some seeds but stalled near 0.45 success on others.) All maps stay
    learned: nothing tells the network that walls block or where the target is
    beyond its input planes. The V-kernel starts as "stay or move to a
    neighbour, discounted by 0.9" on random channels (a prior for the backup
    shape, which keeps V bounded over many iterations at the start).
    """

    def __init__(self, spec: Any, cfg: NetworkConfig) -> None:
        super().__init__()
        self.height, self.width = spec.fields["walls"].shape
        high = float(spec.fields["step_count"].high) if "step_count" in spec.fields else 0.0
        self.step_scale = high if 0 < high < 1e6 else 100.0
        self.iterations = cfg.vin_iterations
        channels = cfg.vin_channels
        self.reward = nn.Sequential(
            layer_init(nn.Conv2d(2, 16, 3, padding=1)),
            nn.ReLU(),
            layer_init(nn.Conv2d(16, 1, 1), 1.0),
        )
        self.q_from_r = nn.Conv2d(1, channels, 3, padding=1, bias=False)
        self.q_from_v = nn.Conv2d(1, channels, 3, padding=1, bias=False)
        with torch.no_grad():
            nn.init.normal_(self.q_from_r.weight, 0.0, 0.1)
            self.q_from_r.weight[:, 0, 1, 1] += 1.0
            nn.init.normal_(self.q_from_v.weight, 0.0, 0.01)
            cells = [(1, 1), (0, 1), (1, 2), (2, 1), (1, 0)]  # stay, up, right, down, left
            for c in range(channels):
                r, k = cells[c % len(cells)]
                self.q_from_v.weight[c, 0, r, k] += 0.9
        embed = channels + 9 + 9 + 1
        self.core_input_size = embed
        head_in = embed + memory_size(cfg)
        self.actor = mlp([head_in, *cfg.hidden_sizes, spec.num_actions], cfg.activation, 0.01)
        self.critic = mlp([head_in, *cfg.hidden_sizes, 1], cfg.activation, 1.0)
        self._cache: dict[bytes, tuple[torch.Tensor, torch.Tensor]] = {}
        self._cache_weights: list[tuple[int, int]] = []

    def _maps(self, planes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``_iterate``, remembered between calls that take no gradient while the
        weights stay the same (any in-place change bumps a tensor's version). An
        env's maze is fixed for its whole episode, so a rollout or an evaluation
        iterates only for the mazes of new episodes."""
        if torch.is_grad_enabled():
            return self._iterate(planes)
        weights = [(p.data_ptr(), p._version) for p in self.parameters()]
        if weights != self._cache_weights or len(self._cache) > 4096:
            self._cache.clear()
            self._cache_weights = weights
        keys = [row.tobytes() for row in planes.flatten(1).to(torch.uint8).cpu().numpy()]
        missing = [i for i, key in enumerate(keys) if key not in self._cache]
        if missing:
            q, value = self._iterate(planes[missing])
            for j, i in enumerate(missing):
                self._cache[keys[i]] = (q[j], value[j])
        maps = [self._cache[key] for key in keys]
        return torch.stack([m[0] for m in maps]), torch.stack([m[1] for m in maps])

    def _iterate(self, planes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Q maps [N, C, H, W] and value maps [N, 1, H, W] of [walls, target] planes."""
        q_r = self.q_from_r(self.reward(planes))
        q, (value, _) = q_r, q_r.max(dim=1, keepdim=True)
        for _ in range(self.iterations):
            q = q_r + self.q_from_v(value)
            value, _ = q.max(dim=1, keepdim=True)
        return q, value

    def _embed(self, obs: Observation) -> torch.Tensor:
        h, w = self.height, self.width
        walls = obs["walls"].float()
        batch, device = walls.shape[0], walls.device
        target = obs["target_position"].long()
        goal = torch.zeros(batch, h * w, device=device)
        goal.scatter_(1, (target[:, 0] * w + target[:, 1]).unsqueeze(1), 1.0)
        planes = torch.stack([walls, goal.view(batch, h, w)], dim=1)
        # The value maps depend only on (walls, target), which stay fixed for a
        # whole episode: iterate once per distinct maze in the batch (a rollout
        # batch holds a few episodes per env) and hand the maps back to every row.
        unique, rows = torch.unique(planes.flatten(1), dim=0, return_inverse=True)
        q, value = self._maps(unique.view(-1, 2, h, w))
        q, value = q[rows], value[rows]
        agent = obs["agent_position"].long()
        at_agent = (agent[:, 0] * w + agent[:, 1]).view(batch, 1, 1)
        q_agent = q.flatten(2).gather(2, at_agent.expand(-1, q.shape[1], 1)).squeeze(2)
        # 3x3 windows around the agent: V (padded with its minimum), walls (padded as walls).
        rows = agent[:, 0:1] + torch.arange(3, device=device)  # padded coordinates
        cols = agent[:, 1:2] + torch.arange(3, device=device)
        window = (rows.unsqueeze(2) * (w + 2) + cols.unsqueeze(1)).view(batch, 9)
        v_pad = nn.functional.pad(value.squeeze(1), (1, 1, 1, 1), value=0.0)
        lowest = value.flatten(1).min(dim=1).values.view(batch, 1, 1)
        border = nn.functional.pad(torch.zeros_like(walls), (1, 1, 1, 1), value=1.0)
        v_pad = v_pad + border * lowest
        w_pad = nn.functional.pad(walls, (1, 1, 1, 1), value=1.0)
        v_window = v_pad.flatten(1).gather(1, window)
        w_window = w_pad.flatten(1).gather(1, window)
        steps = obs["step_count"].reshape(-1, 1).float() / self.step_scale
        # Q and the neighbours' V relative to V at the agent (what the choice of
        # move depends on), and V at the agent itself (what the critic needs).
        v_agent = v_window[:, 4:5]
        relative = torch.cat(
            [q_agent - v_agent, v_window[:, :4] - v_agent, v_window[:, 5:] - v_agent], 1
        )
        return torch.cat([relative, v_agent, w_window, steps], dim=-1)

    def encode(self, obs: Observation) -> torch.Tensor:
        return self._embed(obs)

    def core_input(self, encoding: torch.Tensor, obs: Observation) -> torch.Tensor:
        return encoding

    def heads(
        self, encoding: torch.Tensor, obs: Observation, memory: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = with_memory(encoding, memory)
        return self.actor(x), self.critic(x).squeeze(-1)

    def forward(self, obs: Observation) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.encode(obs), obs)

    def logits(self, obs: Observation) -> torch.Tensor:
        return self.actor(self._embed(obs))

    def get_value(self, obs: Observation) -> torch.Tensor:
        return self.critic(self._embed(obs)).squeeze(-1)


class ConnectFourAgent(nn.Module):
    """ConnectFour-v0: 3x3 convolutions over the board, a policy scored where pieces land.

    Input planes: the mover's pieces, the opponent's, and the cells a piece
    would land on now (empty, and on the bottom row or above a piece: gravity
    applied to the board). ``conv_channels`` 3x3 convolutions (padding 1, ReLU)
    keep the 6x7 map; three of them see the 7x7 square around a cell, so every
    line of four through it. The logit of column c is a 1x1 convolution's
    score of the cell a piece dropped into c lands on, plus an MLP's term over
    the flattened map (with ``to_play``): the first judges a move by what is
    around its cell with the same weights everywhere on the board, so a
    pattern learned in one place (three in a row and a playable fourth cell)
    counts in all; the second adds what depends on the whole board. The value
    is an MLP over the flattened map. ``hidden_sizes`` sizes both MLPs;
    ``shared_torso`` lets actor and critic share the convolutions.
    """

    def __init__(self, spec: Any, cfg: NetworkConfig) -> None:
        super().__init__()
        _, height, width = spec.fields["board"].shape
        if not cfg.conv_channels:
            raise ValueError("connect_four_cnn needs at least one entry in conv_channels")
        self.height = height
        self.extras = [n for n in spec.fields if n not in ("board", "action_mask")]
        extra = sum(math.prod(spec.fields[n].shape) for n in self.extras)
        embed = cfg.conv_channels[-1] * height * width + extra
        self.shared = cfg.shared_torso
        self.actor_torso = MazeCNNAgent._torso(3, cfg.conv_channels, flatten=False)
        self.critic_torso = (
            None if self.shared else MazeCNNAgent._torso(3, cfg.conv_channels, flatten=False)
        )
        self.cell_score = layer_init(nn.Conv2d(cfg.conv_channels[-1], 1, 1), 0.01)
        self.actor = mlp([embed, *cfg.hidden_sizes, spec.num_actions], cfg.activation, 0.01)
        self.critic = mlp([embed, *cfg.hidden_sizes, 1], cfg.activation, 1.0)

    @staticmethod
    def planes(board: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W]: the two piece planes and the cells a move lands on."""
        board = board.bool()
        occupied = board.any(dim=1)
        floor = torch.ones_like(occupied[:, :1])
        supported = torch.cat([occupied[:, 1:], floor], dim=1)  # the cell below is filled
        return torch.cat([board, (~occupied & supported).unsqueeze(1)], dim=1).float()

    def _flat(self, maps: torch.Tensor, obs: Observation) -> torch.Tensor:
        parts = [maps.flatten(1)]
        parts += [obs[n].reshape(len(maps), -1).float() for n in self.extras]
        return torch.cat(parts, dim=-1)

    def _logits(self, maps: torch.Tensor, obs: Observation) -> torch.Tensor:
        board = obs["board"].bool()
        landing_row = (self.height - 1 - board.any(dim=1).sum(dim=1)).clamp(min=0)  # [B, W]
        cells = self.cell_score(maps).squeeze(1)  # [B, H, W]
        scores = cells.gather(1, landing_row.unsqueeze(1)).squeeze(1)
        return scores + self.actor(self._flat(maps, obs))

    def forward(self, obs: Observation) -> tuple[torch.Tensor, torch.Tensor]:
        planes = self.planes(obs["board"])
        maps = self.actor_torso(planes)
        critic_maps = maps if self.shared else self.critic_torso(planes)
        return self._logits(maps, obs), self.critic(self._flat(critic_maps, obs)).squeeze(-1)

    def logits(self, obs: Observation) -> torch.Tensor:
        return self._logits(self.actor_torso(self.planes(obs["board"])), obs)

    def get_value(self, obs: Observation) -> torch.Tensor:
        torso = self.actor_torso if self.shared else self.critic_torso
        maps = torso(self.planes(obs["board"]))
        return self.critic(self._flat(maps, obs)).squeeze(-1)


# ------------------------------------------------------------------ BinPack
_MASKED = -1e9  # additive attention bias; a fully masked row attends uniformly, like Haiku


def attention_bias(mask: torch.Tensor) -> torch.Tensor:
    """[B, Tq, Tk] bool (True = may attend) -> additive bias [B, 1, Tq, Tk]."""
    bias = torch.zeros(mask.shape, device=mask.device)
    return bias.masked_fill_(~mask, _MASKED).unsqueeze(1)


class TransformerBlock(nn.Module):
    """Post-LayerNorm block, as Jumanji's: LN(q + MHA(q, kv)), then LN(h + MLP(h))."""

    def __init__(
        self, model_size: int, num_heads: int, key_size: int, mlp_sizes: list[int]
    ) -> None:
        super().__init__()
        self.num_heads, self.key_size = num_heads, key_size
        inner = num_heads * key_size
        self.query = layer_init(nn.Linear(model_size, inner), 1.0)
        self.key = layer_init(nn.Linear(model_size, inner), 1.0)
        self.value = layer_init(nn.Linear(model_size, inner), 1.0)
        self.out = layer_init(nn.Linear(inner, model_size), 1.0)
        self.norm1 = nn.LayerNorm(model_size)
        sizes = [model_size, *mlp_sizes, model_size]
        self.mlp = nn.Sequential(
            *[m for a, b in zip(sizes, sizes[1:]) for m in (layer_init(nn.Linear(a, b)), nn.ReLU())]
        )
        self.norm2 = nn.LayerNorm(model_size)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], self.num_heads, self.key_size).transpose(1, 2)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        q, k, v = (
            self._heads(self.query(query)),
            self._heads(self.key(keys)),
            self._heads(self.value(keys)),
        )
        # Written out rather than F.scaled_dot_product_attention: at these sizes
        # (sets of 20-40, heads of 8) PyTorch's CPU flash-attention kernel took
        # over half of a forward+backward, and these two matmuls are 1.2-1.5x
        # faster than it (same result; a fully masked row still attends uniformly).
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.key_size**-0.5 + bias
        attended = torch.matmul(torch.softmax(scores, dim=-1), v)
        attended = attended.transpose(1, 2).reshape(query.shape[0], query.shape[1], -1)
        h = self.norm1(query + self.out(attended))
        return self.norm2(h + self.mlp(h))


class BinPackTorso(nn.Module):
    """EMS and item encoders followed by ``num_layers`` rounds of four attention blocks."""

    def __init__(self, cfg: NetworkConfig, model_size: int) -> None:
        super().__init__()
        self.ems_encoder = layer_init(nn.Linear(6, model_size))
        self.item_encoder = layer_init(nn.Linear(3, model_size))

        def block() -> TransformerBlock:
            return TransformerBlock(model_size, cfg.num_heads, cfg.key_size, cfg.hidden_sizes)

        self.layers = nn.ModuleList(
            nn.ModuleDict(
                {
                    "ems_self": block(),
                    "items_self": block(),
                    "ems_items": block(),
                    "items_ems": block(),
                }
            )
            for _ in range(cfg.num_layers)
        )

    def forward(
        self, obs: Observation, biases: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        ems = self.ems_encoder(obs["ems"].float())
        items = self.item_encoder(obs["items"].float())
        for layer in self.layers:
            ems = layer["ems_self"](ems, ems, biases["ems_self"])
            items = layer["items_self"](items, items, biases["items_self"])
            new_ems = layer["ems_items"](ems, items, biases["ems_items"])
            items = layer["items_ems"](items, ems, biases["items_ems"])
            ems = new_ems
        return ems, items


class BinPackAgent(nn.Module):
    """Jumanji's BinPack A2C network; action ``a = ems_index * num_items + item_index``."""

    def __init__(self, spec: Any, cfg: NetworkConfig) -> None:
        super().__init__()
        self.num_ems = spec.fields["ems"].shape[0]
        self.num_items = spec.fields["items"].shape[0]
        assert spec.num_actions == self.num_ems * self.num_items, "BinPack action layout mismatch"
        model_size = cfg.num_heads * cfg.key_size
        self.shared = cfg.shared_torso
        self.actor_torso = BinPackTorso(cfg, model_size)
        self.critic_torso = None if self.shared else BinPackTorso(cfg, model_size)
        # Small gains on both bilinear factors give a near-uniform initial policy.
        self.policy_ems = layer_init(nn.Linear(model_size, model_size), 0.1)
        self.policy_items = layer_init(nn.Linear(model_size, model_size), 0.1)
        memory = memory_size(cfg)
        self.critic = nn.Sequential(
            layer_init(nn.Linear(2 * model_size + memory, model_size)),
            nn.ReLU(),
            layer_init(nn.Linear(model_size, 1), 1.0),
        )
        # The core reads the pooled sets (the critic's too, with a torso of its own).
        self.core_input_size = (2 if self.shared else 4) * model_size
        if memory:  # the core's output, added to every EMS and item embedding
            self.memory_ems = layer_init(nn.Linear(memory, model_size))
            self.memory_items = layer_init(nn.Linear(memory, model_size))

    def biases(self, obs: Observation) -> dict[str, torch.Tensor]:
        ems_mask = obs["ems_mask"].bool()
        items_mask = obs["items_mask"].bool() & ~obs["items_placed"].bool()
        action_mask = obs["action_mask"].bool().view(-1, self.num_ems, self.num_items)
        return {
            "ems_self": attention_bias(ems_mask.unsqueeze(2) & ems_mask.unsqueeze(1)),
            "items_self": attention_bias(items_mask.unsqueeze(2) & items_mask.unsqueeze(1)),
            "ems_items": attention_bias(action_mask),
            "items_ems": attention_bias(action_mask.transpose(1, 2)),
        }

    def _pooled(self, ems: torch.Tensor, items: torch.Tensor, obs: Observation) -> torch.Tensor:
        """Sums of the valid EMS and of the items left: [B, 2 * model_size]."""
        ems_mask = obs["ems_mask"].unsqueeze(-1).float()
        items_mask = (obs["items_mask"].bool() & ~obs["items_placed"].bool()).unsqueeze(-1).float()
        return torch.cat([(ems * ems_mask).sum(1), (items * items_mask).sum(1)], dim=-1)

    def _value(self, ems: torch.Tensor, items: torch.Tensor, obs: Observation) -> torch.Tensor:
        return self.critic(self._pooled(ems, items, obs)).squeeze(-1)

    def _logits(self, ems: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        logits = torch.einsum("bek,bik->bei", self.policy_ems(ems), self.policy_items(items))
        return logits.reshape(logits.shape[0], -1)

    def encode(self, obs: Observation):
        """The actor's and the critic's (EMS, item) embeddings (the same with a shared torso)."""
        biases = self.biases(obs)
        actor = self.actor_torso(obs, biases)
        return actor, actor if self.shared else self.critic_torso(obs, biases)

    def core_input(self, encoding, obs: Observation) -> torch.Tensor:
        actor, critic = encoding
        if self.shared:
            return self._pooled(*actor, obs)
        return torch.cat([self._pooled(*actor, obs), self._pooled(*critic, obs)], dim=-1)

    def heads(
        self, encoding, obs: Observation, memory: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        (ems, items), critic = encoding
        if memory is not None:
            ems = ems + self.memory_ems(memory).unsqueeze(1)
            items = items + self.memory_items(memory).unsqueeze(1)
        value = self.critic(with_memory(self._pooled(*critic, obs), memory)).squeeze(-1)
        return self._logits(ems, items), value

    def forward(self, obs: Observation) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.encode(obs), obs)

    def logits(self, obs: Observation) -> torch.Tensor:
        return self._logits(*self.actor_torso(obs, self.biases(obs)))

    def get_value(self, obs: Observation) -> torch.Tensor:
        torso = self.actor_torso if self.shared else self.critic_torso
        ems, items = torso(obs, self.biases(obs))
        return self._value(ems, items, obs)


@dataclasses.dataclass(frozen=True)
class Architecture:
    """One network family: its class, the observation fields it needs, the
    network config fields it reads (what a checkpoint must match; a field
    another architecture reads, or one added later, does not matter), and the
    action kinds (``pyenvpool.ActionSpec.kind``) its policy head can emit."""

    agent: type[nn.Module]
    required_fields: tuple[str, ...]
    config_fields: tuple[str, ...]
    recurrent: bool = True  # splits into encode / core_input / heads (see the module docstring)
    action_kinds: tuple[str, ...] = ("discrete",)


NORMALIZATION_FIELDS = ("normalize_observation", "observation_clip")
MAZE_FIELDS = ("walls", "agent_position", "target_position", "step_count")
BINPACK_FIELDS = ("ems", "ems_mask", "items", "items_mask", "items_placed", "action_mask")
# The names are network.architecture's choices (trainer.config); tasks.TASKS
# names each task's default.
ARCHITECTURES = {
    "mlp": Architecture(
        MLPAgent,
        (),
        ("hidden_sizes", "activation", "normalize_observation", "observation_clip"),
        action_kinds=("discrete", "multi_discrete", "box"),
    ),
    "maze_cnn": Architecture(
        MazeCNNAgent,
        MAZE_FIELDS,
        ("hidden_sizes", "activation", "conv_channels", "shared_torso", "egocentric"),
    ),
    "maze_vin": Architecture(
        MazeVINAgent,
        MAZE_FIELDS,
        ("hidden_sizes", "activation", "vin_iterations", "vin_channels"),
    ),
    "connect_four_cnn": Architecture(
        ConnectFourAgent,
        ("board", "action_mask"),
        ("hidden_sizes", "activation", "conv_channels", "shared_torso"),
        recurrent=False,
    ),
    "binpack_attention": Architecture(
        BinPackAgent,
        BINPACK_FIELDS,
        ("hidden_sizes", "num_layers", "num_heads", "key_size", "shared_torso"),
    ),
}


def build_agent(spec: Any, cfg: NetworkConfig) -> nn.Module:
    """The agent for a pool ``spec`` (``pyenvpool.Spec``) and a resolved network config."""
    architecture = ARCHITECTURES[cfg.architecture]
    missing = [f for f in architecture.required_fields if f not in spec.fields]
    if missing:
        raise ValueError(
            f"architecture {cfg.architecture!r} needs observation fields {missing}, "
            f"which {spec.task_id} does not have; pick another --architecture"
        )
    kind = ActionSpace.from_spec(spec).kind
    if kind not in architecture.action_kinds:
        able = [name for name, a in ARCHITECTURES.items() if kind in a.action_kinds]
        raise ValueError(
            f"architecture {cfg.architecture!r} has no policy head for {spec.task_id}'s "
            f"{spec.action!r} actions; pick one of {able} with --architecture"
        )
    net = architecture.agent(spec, cfg)
    if cfg.recurrent == "none":
        return net
    if not architecture.recurrent:
        raise ValueError(f"recurrent: {cfg.architecture} has no recurrent form")
    return RecurrentAgent(net, cfg.recurrent, cfg.recurrent_size)


def architecture_record(spec: Any, cfg: NetworkConfig) -> dict[str, Any]:
    """What a checkpoint must match to be loadable: the network fields the
    architecture reads and the I/O shapes. Settings that are off, and the
    action space of a discrete task, are left out, so the records of
    checkpoints written before they existed still match."""
    network = cfg.model_dump()
    if cfg.architecture in ARCHITECTURES:
        fields = ARCHITECTURES[cfg.architecture].config_fields
        if cfg.recurrent != "none":  # (a feed-forward record stays as it always was)
            fields = (*fields, "recurrent", "recurrent_size")
        network = {"architecture": cfg.architecture} | {name: network[name] for name in fields}
    if not cfg.normalize_observation:
        network = {k: v for k, v in network.items() if k not in NORMALIZATION_FIELDS}
    record = {
        "network": network,
        "observation": {name: list(f.shape) for name, f in spec.fields.items()},
        "num_actions": int(spec.num_actions),
    }
    space = ActionSpace.from_spec(spec)
    if space.kind != "discrete":
        record["action"] = {
            "kind": space.kind,
            "shape": list(space.shape),
            "nvec": list(space.nvec),
        }
    return record
