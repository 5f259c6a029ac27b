"""Training configuration: dataclasses, embedded per-task defaults, and merging.

Precedence, lowest first:

1. the dataclass defaults below;
2. the task's embedded YAML, ``trainer/configs/<task>.yaml``, shipped in the package;
3. the user's ``--config`` YAML file;
4. explicit command-line flags (the field names in kebab-case: ``--learning-rate``).

Every field has a default and a one-line docstring, and that docstring is the
flag's ``--help`` text. The YAML layout mirrors the dataclasses: top-level keys
for the run, and one mapping per section (``network:``, ``ppo:``). Flags are
flat, so a field name is unique across sections. A key that names no field is
an error that names it and suggests close matches. A resolved config is a
complete, frozen record of a run: ``config.yaml`` in the run directory.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import inspect
import math
import types
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union, get_args, get_origin, get_type_hints

import yaml

# typing.Optional[X], and X | None on Python >= 3.10.
UNION_TYPES: tuple[Any, ...] = (Union, getattr(types, "UnionType", Union))


class ConfigError(ValueError):
    """A config file or flag is invalid; the message names the key."""


@dataclass
class NetworkConfig:
    """Which network the agent uses and its size. ``auto`` picks by task."""

    architecture: str = "auto"
    """Network: auto (by task), mlp, maze_cnn, maze_vin, connect_four_cnn, binpack_attention."""
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])
    """Widths of the MLP layers (the mlp torso; the maze_cnn heads)."""
    activation: str = "tanh"
    """Activation of the MLP layers: tanh or relu."""
    conv_channels: list[int] = field(default_factory=lambda: [32, 32, 8])
    """Output channels of the 3x3 convolutions of maze_cnn and connect_four_cnn ([]: none)."""
    num_layers: int = 2
    """Attention layers of binpack_attention (each: 2 self- and 2 cross-attention blocks)."""
    num_heads: int = 8
    """Attention heads of binpack_attention."""
    key_size: int = 16
    """Size of one attention head; the model width is num_heads * key_size."""
    shared_torso: bool = False
    """Actor and critic share one torso (maze_cnn, connect_four_cnn, binpack_attention), not two."""
    egocentric: bool = False
    """maze_cnn: see the maze from the agent, a (2H-1)x(2W-1) wall/target window centred on it."""
    vin_iterations: int = 40
    """maze_vin: value-iteration steps (at least the longest shortest path in the maze)."""
    vin_channels: int = 8
    """maze_vin: Q channels per value-iteration step (the max over them is the value map)."""


@dataclass
class PPOConfig:
    """Proximal Policy Optimisation (Schulman et al. 2017), CleanRL vocabulary."""

    learning_rate: float = 2.5e-4
    """Adam learning rate (at the start, when annealed)."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over the run."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    update_epochs: int = 4
    """Passes over each rollout."""
    num_minibatches: int = 4
    """Minibatches per pass; num_envs * num_steps must be divisible by it."""
    gae_lambda: float = 0.95
    """Lambda of generalised advantage estimation."""
    norm_adv: bool = True
    """Normalise advantages per minibatch."""
    clip_coef: float = 0.2
    """Clipping range of the policy ratio."""
    clip_vloss: bool = True
    """Clip the value loss around the old values, as PPO2 does."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Clip the global gradient norm to this."""
    target_kl: Optional[float] = None
    """Stop an update's epochs early once the approximate KL exceeds this (null: never)."""


@dataclass
class SPOConfig:
    """Sequential Monte Carlo Policy Optimisation (Macfarlane et al. 2024), Stoix semantics.

    Defaults are the SPO paper's discrete column (Table 3) except where marked
    SCALED: the paper runs 768 envs x 16 particles x depth 4 on a TPU; this
    trainer runs on a 2-core CPU, so the per-task YAML (``<task>.spo.yaml``)
    shrinks the env count, batch and replay further. Field names carry an
    ``spo``/``search`` prefix where PPO has a field of the same meaning, because
    flags are flat and must be unique.
    """

    num_particles: int = 16
    """Particles per env in the SMC search (paper: 16)."""
    search_depth: int = 4
    """Simulated steps per particle (paper: 4)."""
    resample_period: int = 4
    """Resample every this many depth steps; 0 disables periodic resampling (paper: 4)."""
    resample_ess_threshold: float = 0.0
    """Also resample envs whose ESS is below this fraction of N (0: off; Stoix ESS mode: 0.5)."""
    search_gamma: Optional[float] = None
    """Discount of the search's 1-step advantages r + g V(s') - V(s); null: the run's gamma,
    the critic's own, so that the advantages are its TD errors (Stoix: 1.0, for its 0.99)."""
    search_gae_lambda: float = 1.0
    """Lambda of the per-particle advantages the temperature loss uses (Stoix: 1.0)."""
    dirichlet_alpha: float = 0.03
    """Root Dirichlet noise concentration, over legal actions only (paper: 0.03)."""
    dirichlet_fraction: float = 0.25
    """Root Dirichlet noise weight during training; evaluation uses none (paper: 0.25)."""
    init_temperature: float = 0.5
    """Initial value of the temperature dual eta (paper: 0.5)."""
    init_alpha: float = 0.5
    """Initial value of the trust-region dual alpha (paper: 0.5)."""
    epsilon: float = 0.5
    """E-step KL bound of the temperature dual (paper: 0.5)."""
    epsilon_alpha: float = 0.001
    """M-step KL bound of the trust region against the target actor (paper: 1e-3)."""
    spo_learning_rate: float = 0.0003
    """Adam learning rate of the actor and critic (paper: 3e-4; constant)."""
    dual_learning_rate: float = 0.0003
    """Adam learning rate of the duals (paper: 3e-4)."""
    spo_adam_eps: float = 1e-5
    """Adam epsilon of all SPO optimisers."""
    spo_max_grad_norm: float = 0.5
    """Global gradient-norm clip, of the network and of the duals separately (paper: 0.5)."""
    tau: float = 0.005
    """Polyak rate of the target actor and critic, after every gradient step (paper: 5e-3)."""
    critic_gae_lambda: float = 0.95
    """Lambda of the critic's GAE targets on replayed sequences (paper: 0.95)."""
    critic_coef: float = 1.0
    """Weight of the critic loss 0.5 (V - target)^2 (Stoix vf_coef: 1.0)."""
    replay_size: int = 65536
    """Replay capacity in transitions (paper: 65536; rounded to whole steps of all envs)."""
    sample_sequences: int = 64
    """Sequences per gradient-step batch (paper: 64)."""
    sample_sequence_length: int = 17
    """Steps per sampled sequence; critic GAE runs within it (paper: 17)."""
    gradient_steps: int = 16
    """Gradient steps per update, each on a fresh replay batch (paper 'epochs': 16)."""
    dedupe_particles: bool = True
    """Run the search's network once per distinct particle observation (same results, faster)."""
    eval_search: bool = True
    """Evaluate with the search (argmax of the search target); false: greedy on the raw policy."""
    eval_compare_greedy: bool = True
    """With eval_search, also run a greedy (no search) evaluation and log it as greedy_*."""


@dataclass
class Config:
    """Everything that determines a training run."""

    task: str = ""
    """Task id, one of pyenvpool.list_tasks()."""
    algo: str = "ppo"
    """Training algorithm."""
    seed: int = 1
    """Seed of the network init, the action sampling and the training envs."""
    total_steps: int = 1_000_000
    """Environment steps to train for, rounded up to whole updates."""
    num_envs: int = 64
    """Parallel training environments."""
    num_steps: int = 128
    """Rollout length: steps per environment between updates."""
    gamma: float = 0.99
    """Discount factor."""
    self_play: bool = False
    """Two-player zero-sum task: one network plays both sides, with negamax GAE (PPO only)."""
    opponent_fraction: float = 0.0
    """self_play: share of the training envs where the learner plays a past copy of itself."""
    opponent_pool_size: int = 8
    """self_play: past copies kept as opponents (the oldest leaves first)."""
    opponent_interval: int = 10
    """self_play: updates between copies added to the opponent pool."""
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    """Task parameters passed to pyenvpool.make (a YAML/JSON mapping on the command line)."""
    eval_task_kwargs: dict[str, Any] = field(default_factory=dict)
    """Task parameters of the evaluation pool that differ from task_kwargs (merged over them)."""
    env_threads: int = 0
    """Engine worker threads; 0 picks one per core. Results never depend on it."""
    device: str = "auto"
    """Torch device: auto, cpu, cuda or cuda:N."""
    torch_threads: int = 1
    """CPU threads for PyTorch; a seeded CPU run is bit-reproducible for a fixed count."""
    eval_interval: int = 100_000
    """Environment steps between greedy evaluations; 0 evaluates only at the end."""
    eval_episodes: int = 100
    """Episodes per evaluation (split evenly over the evaluation envs)."""
    eval_num_envs: int = 100
    """Environments in the separate evaluation pool."""
    eval_seed: int = 1_000_000
    """Seed of the evaluation pool: every evaluation replays the same held-out episodes."""
    target_return: Optional[float] = None
    """Stop training once an evaluation's mean return reaches this (null: never)."""
    checkpoint_interval: int = 500_000
    """Environment steps between checkpoints; 0 checkpoints only at the end."""
    keep_checkpoints: int = 3
    """Step checkpoints kept in this run, besides the best; 0 keeps all."""
    console_interval: float = 10.0
    """Seconds between console dashboard lines (evaluations are always printed)."""
    tensorboard: bool = True
    """Write TensorBoard event files when tensorboard is installed."""
    plot: bool = True
    """Draw learning_curve.png: after evaluations (at most every 30 s) and at the end."""
    network: NetworkConfig = field(default_factory=NetworkConfig)
    """The network (a section)."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO settings (a section; used when algo is ppo)."""
    spo: SPOConfig = field(default_factory=SPOConfig)
    """SPO settings (a section; used when algo is spo)."""


# Algorithms and their settings section. Adding one (SPO) means a dataclass,
# a field on Config named after it, and an entry here.
ALGORITHM_SECTIONS = {"ppo": "ppo", "spo": "spo"}
ARCHITECTURES = ("mlp", "maze_cnn", "maze_vin", "connect_four_cnn", "binpack_attention")
DEFAULT_ARCHITECTURE = {
    "Maze-v0": "maze_vin",
    "BinPack-v0": "binpack_attention",
    "ConnectFour-v0": "connect_four_cnn",
}
SECTIONS = {"network": NetworkConfig, "ppo": PPOConfig, "spo": SPOConfig}


# ----------------------------------------------------------------- field facts
@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The one-line docstring under each field of a dataclass, read from its source."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, following in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.target.id] = following.value.value.strip()
    return docs


@dataclass(frozen=True)
class FieldInfo:
    """One settable leaf of the config: where it lives, its type, default and help."""

    name: str
    section: Optional[str]
    type: Any
    default: Any
    help: str

    @property
    def path(self) -> str:
        return self.name if self.section is None else f"{self.section}.{self.name}"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@functools.cache
def leaf_fields() -> dict[str, FieldInfo]:
    """Every leaf field of Config, by its (unique) name."""
    out: dict[str, FieldInfo] = {}
    for section, cls in [(None, Config), *SECTIONS.items()]:
        hints = get_type_hints(cls)
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            if f.name in SECTIONS and section is None:
                continue
            assert f.name not in out, f"config field name {f.name!r} is not unique"
            default = (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            )
            out[f.name] = FieldInfo(f.name, section, hints[f.name], default, docs.get(f.name, ""))
    return out


# ------------------------------------------------------------------ coercion
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def coerce(key: str, value: Any, typ: Any) -> Any:
    """Convert ``value`` (from YAML or the command line) to ``typ``, or raise ConfigError."""
    origin, args = get_origin(typ), get_args(typ)
    if origin in UNION_TYPES:  # Optional[X]
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            return None
        return coerce(key, value, next(a for a in args if a is not type(None)))
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                return value.strip().lower() in _TRUE
            raise TypeError
        if typ is int:
            if isinstance(value, bool):
                raise TypeError
            if isinstance(value, str):
                value = value.strip().replace("_", "")
                value = int(value) if value.lstrip("+-").isdigit() else float(value)
            if isinstance(value, float):
                if not value.is_integer():
                    raise TypeError
                value = int(value)
            if not isinstance(value, int):
                raise TypeError
            return value
        if typ is float:
            if isinstance(value, bool):
                raise TypeError
            value = float(value)
            if math.isnan(value):
                raise TypeError
            return value
        if typ is str:
            if not isinstance(value, str):
                raise TypeError
            return value
        if origin is list:
            if isinstance(value, str):
                value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
            if not isinstance(value, (list, tuple)):
                raise TypeError
            return [coerce(key, v, args[0]) for v in value]
        if origin is dict:
            if isinstance(value, str):
                value = yaml.safe_load(value) if value.strip() else {}
            if not isinstance(value, dict):
                raise TypeError
            return dict(value)
    except (TypeError, ValueError, yaml.YAMLError):
        pass
    else:
        raise AssertionError(f"unsupported config type {typ}")
    raise ConfigError(f"{key}: expected {_type_name(typ)}, got {value!r}")


def _type_name(typ: Any) -> str:
    origin, args = get_origin(typ), get_args(typ)
    if origin in UNION_TYPES:
        return _type_name(next(a for a in args if a is not type(None))) + " or null"
    if origin is list:
        return {int: "a list of integers", float: "a list of numbers"}.get(args[0], "a list")
    if origin is dict:
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[typ]


def suggest(key: str, candidates: list[str]) -> str:
    """' (did you mean X?)' for close matches of ``key``, or ''."""
    matches = difflib.get_close_matches(key, candidates, n=3, cutoff=0.6)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(repr(m) for m in matches) + "?)"


def _unknown_key_error(key: str, where: str, section: Optional[str]) -> ConfigError:
    fields = leaf_fields()
    if section is None:
        here = [f.name for f in fields.values() if f.section is None] + list(SECTIONS)
    else:
        here = [f.name for f in fields.values() if f.section == section]
    # Also offer the right section for a key that lives elsewhere.
    elsewhere = [f.path for f in fields.values()]
    hint = suggest(key, here) or suggest(key, elsewhere) or suggest(key.split(".")[-1], elsewhere)
    name = key if section is None else f"{section}.{key}"
    return ConfigError(f"unknown config key {name!r} in {where}{hint}")


# ------------------------------------------------------------------- merging
def to_dict(config: Config) -> dict[str, Any]:
    """The nested plain-data form of a config (what config.yaml holds)."""
    data = dataclasses.asdict(config)
    for algo, section in ALGORITHM_SECTIONS.items():  # drop other algorithms' sections
        if algo != config.algo:
            data.pop(section, None)
    return data


def apply(config: Config, data: dict[str, Any], where: str) -> Config:
    """A copy of ``config`` with the nested mapping ``data`` applied (YAML layout)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping of config keys, got {type(data).__name__}")
    config = dataclasses.replace(
        config, **{name: dataclasses.replace(getattr(config, name)) for name in SECTIONS}
    )
    fields = leaf_fields()
    for key, value in data.items():
        key = str(key)
        if key in SECTIONS:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ConfigError(f"{key} in {where} must be a mapping, got {value!r}")
            target = getattr(config, key)
            for sub, sub_value in value.items():
                info = fields.get(str(sub))
                if info is None or info.section != key:
                    raise _unknown_key_error(str(sub), where, key)
                setattr(target, info.name, coerce(info.path, sub_value, info.type))
            continue
        info = fields.get(key)
        if info is None or info.section is not None:
            raise _unknown_key_error(key, where, None)
        setattr(config, key, coerce(key, value, info.type))
    return config


def apply_flags(config: Config, flags: dict[str, Any]) -> Config:
    """Apply flat ``{field_name: value}`` overrides (from the command line)."""
    fields = leaf_fields()
    nested: dict[str, Any] = {}
    for name, value in flags.items():
        info = fields.get(name)
        if info is None:
            raise ConfigError(
                f"unknown option --{name.replace('_', '-')}" + suggest(name, list(fields))
            )
        if info.section is None:
            nested[name] = value
        else:
            nested.setdefault(info.section, {})[name] = value
    return apply(config, nested, "the command line")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a config file with ``yaml.safe_load``; an empty file is an empty mapping."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {str(path)!r}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of config keys")
    return data


def task_defaults(task: str, algo: Optional[str] = None) -> dict[str, Any]:
    """The embedded default config of ``task`` (empty when the package ships none).

    With ``algo`` other than ppo: the task's per-algorithm overlay,
    ``<task>.<algo>.yaml`` (e.g. ``Maze-v0.spo.yaml``), applied over the task
    defaults when that algorithm is selected. PPO uses the task file alone.
    """
    name = task if algo in (None, "ppo") else f"{task}.{algo}"
    resource = resources.files("trainer") / "configs" / f"{name}.yaml"
    if not resource.is_file():
        return {}
    return yaml.safe_load(resource.read_text()) or {}


def embedded_tasks() -> list[str]:
    """Tasks with an embedded default config."""
    folder = resources.files("trainer") / "configs"
    names = [p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml")]
    return sorted(n for n in names if "." not in n)  # not the <task>.<algo> overlays


def resolve(
    *,
    flags: Optional[dict[str, Any]] = None,
    config_file: Optional[str | Path] = None,
    base: Optional[dict[str, Any]] = None,
) -> Config:
    """Build the config of a run: defaults < task YAML < ``config_file`` < ``flags``.

    ``base`` (a resolved config mapping, e.g. a checkpoint's) replaces the
    defaults and the task YAML; forks use it.
    """
    flags = dict(flags or {})
    user = load_yaml(config_file) if config_file is not None else {}
    if base is not None:
        config = apply(Config(), base, "the base config")
        algo = flags.get("algo") or user.get("algo")
        if algo and algo != config.algo and algo != "ppo":
            # Forking into another algorithm: its embedded defaults for the task apply.
            overlay = task_defaults(config.task, str(algo))
            config = apply(config, overlay, f"the embedded {algo} defaults of {config.task}")
    else:
        task = flags.get("task") or user.get("task")
        if not task:
            raise ConfigError(
                "no task given: pass --task (e.g. --task CartPole-v1) or set task in --config"
            )
        config = apply(Config(), task_defaults(str(task)), f"the embedded defaults of {task}")
        algo = flags.get("algo") or user.get("algo") or config.algo
        if algo != "ppo":
            overlay = task_defaults(str(task), str(algo))
            config = apply(config, overlay, f"the embedded {algo} defaults of {task}")
    if user:
        config = apply(config, user, str(config_file))
    config = apply_flags(config, flags)
    return finalize(config)


def finalize(config: Config) -> Config:
    """Resolve ``auto`` choices that depend on the task, then validate."""
    if config.network.architecture == "auto":
        config.network.architecture = DEFAULT_ARCHITECTURE.get(config.task, "mlp")
    validate(config)
    return config


def evaluation_task_kwargs(config: Config) -> dict[str, Any]:
    """The evaluation pool's task parameters: task_kwargs with eval_task_kwargs over them."""
    return {**config.task_kwargs, **config.eval_task_kwargs}


def validate(config: Config) -> None:
    """Raise ConfigError naming the first inconsistent setting."""
    if not config.task:
        raise ConfigError("task: no task given")
    if config.algo not in ALGORITHM_SECTIONS:
        raise ConfigError(
            f"algo: unknown algorithm {config.algo!r}; known: {sorted(ALGORITHM_SECTIONS)}"
        )
    positive = [
        "total_steps",
        "num_envs",
        "num_steps",
        "torch_threads",
        "eval_episodes",
        "eval_num_envs",
    ]
    for name in positive:
        if getattr(config, name) < 1:
            raise ConfigError(f"{name}: must be >= 1, got {getattr(config, name)}")
    for name in [
        "env_threads",
        "eval_interval",
        "checkpoint_interval",
        "keep_checkpoints",
        "seed",
        "eval_seed",
    ]:
        if getattr(config, name) < 0:
            raise ConfigError(f"{name}: must be >= 0, got {getattr(config, name)}")
    if not 0.0 <= config.gamma <= 1.0:
        raise ConfigError(f"gamma: must be in [0, 1], got {config.gamma}")
    device = config.device
    if not (
        device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())
    ):
        raise ConfigError(f"device: expected auto, cpu, cuda or cuda:N, got {device!r}")
    net = config.network
    if net.architecture not in ARCHITECTURES:
        raise ConfigError(
            f"architecture: unknown {net.architecture!r}; known: auto, {', '.join(ARCHITECTURES)}"
            + suggest(net.architecture, list(ARCHITECTURES))
        )
    if net.activation not in ("tanh", "relu"):
        raise ConfigError(f"activation: expected tanh or relu, got {net.activation!r}")
    for name in ["num_layers", "num_heads", "key_size", "vin_iterations", "vin_channels"]:
        if getattr(net, name) < 1:
            raise ConfigError(f"{name}: must be >= 1, got {getattr(net, name)}")
    if any(h < 1 for h in net.hidden_sizes + net.conv_channels):
        raise ConfigError("hidden_sizes and conv_channels must be positive")
    if config.algo == "ppo":
        ppo = config.ppo
        batch = config.num_envs * config.num_steps
        if ppo.num_minibatches < 1 or batch % ppo.num_minibatches:
            raise ConfigError(
                f"num_minibatches: num_envs * num_steps = {batch} "
                f"is not divisible by {ppo.num_minibatches}"
            )
        if ppo.update_epochs < 1:
            raise ConfigError(f"update_epochs: must be >= 1, got {ppo.update_epochs}")
        if ppo.learning_rate <= 0:
            raise ConfigError(f"learning_rate: must be > 0, got {ppo.learning_rate}")
        if not 0.0 <= ppo.gae_lambda <= 1.0:
            raise ConfigError(f"gae_lambda: must be in [0, 1], got {ppo.gae_lambda}")
    if config.self_play and config.algo != "ppo":
        raise ConfigError(f"self_play: supported by ppo only, not {config.algo}")
    if not 0.0 <= config.opponent_fraction <= 1.0:
        raise ConfigError(f"opponent_fraction: must be in [0, 1], got {config.opponent_fraction}")
    for name in ["opponent_pool_size", "opponent_interval"]:
        if getattr(config, name) < 1:
            raise ConfigError(f"{name}: must be >= 1, got {getattr(config, name)}")
    if config.algo == "spo":
        spo = config.spo
        for name in [
            "num_particles",
            "search_depth",
            "replay_size",
            "sample_sequences",
            "sample_sequence_length",
            "gradient_steps",
        ]:
            if getattr(spo, name) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(spo, name)}")
        for name in ["init_temperature", "init_alpha", "spo_learning_rate", "dual_learning_rate"]:
            if getattr(spo, name) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(spo, name)}")
        if spo.search_gamma is not None and not 0.0 <= spo.search_gamma <= 1.0:
            raise ConfigError(f"search_gamma: must be in [0, 1], got {spo.search_gamma}")
        for name in [
            "search_gae_lambda",
            "critic_gae_lambda",
            "tau",
            "dirichlet_fraction",
            "resample_ess_threshold",
        ]:
            if not 0.0 <= getattr(spo, name) <= 1.0:
                raise ConfigError(f"{name}: must be in [0, 1], got {getattr(spo, name)}")
        if spo.resample_period < 0:
            raise ConfigError(f"resample_period: must be >= 0, got {spo.resample_period}")
        if spo.dirichlet_alpha <= 0:
            raise ConfigError(f"dirichlet_alpha: must be > 0, got {spo.dirichlet_alpha}")
        if spo.replay_size // config.num_envs < spo.sample_sequence_length:
            raise ConfigError(
                f"replay_size: {spo.replay_size} transitions over {config.num_envs} envs hold "
                f"fewer steps than sample_sequence_length = {spo.sample_sequence_length}"
            )


def dump(config: Config) -> str:
    """The YAML text of a resolved config, sections last."""
    return yaml.safe_dump(to_dict(config), sort_keys=False, default_flow_style=None)
