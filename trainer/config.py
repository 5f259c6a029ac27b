"""Training configuration: pydantic models, the embedded per-task defaults, and their layers.

Precedence, lowest first:

1. the field defaults below;
2. the task's embedded YAML, ``trainer/configs/<task>.yaml``, shipped in the
   package, and ``<task>.<algo>.yaml`` over it when another algorithm than PPO
   trains the task;
3. the user's ``--config`` YAML file;
4. explicit command-line flags (the field names in kebab-case: ``--learning-rate``).

Every field has a default and a one-line docstring; pydantic reads the
docstrings (``use_attribute_docstrings``) and the CLI shows them as the flags'
help. The YAML layout mirrors the models: top-level keys for the run, and one
mapping per section (``network:``, ``ppo:``, ``spo:``). Flags are flat, so a
field name is unique across sections. pydantic checks types and bounds and
the validators below the rules between fields; a key that names no field is
an error that names it, where it came from and the close matches. Every error
is one line, ``key: what is wrong``. A resolved config is a complete, frozen
record of a run: ``config.yaml`` in the run directory, which ``load_config`` reads back.

This module imports neither torch nor the engine, so ``--help`` and config
errors are instant.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, get_args

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from trainer.batching import Batching

# The algorithms: the --algo name, and the class that implements it as
# "module:Class" (trainer.algorithm.algorithm_class imports it when a run
# starts, so that the config and the CLI stay free of torch). Each one's
# settings are the Config section of the same name; appo (asynchronous PPO)
# reads the ppo section too.
ALGORITHMS = {"ppo": "trainer.ppo:PPO", "spo": "trainer.spo:SPO", "appo": "trainer.appo:AsyncPPO"}


def algorithm_sections(algo: str) -> tuple[str, ...]:
    """The config sections that ``algo`` reads."""
    return ("ppo", "appo") if algo == "appo" else (algo,)


class ConfigError(ValueError):
    """A config file or flag is invalid; the message names the key."""


# -------------------------------------------------------------- field types
# pydantic coerces YAML values and command-line text to the field types; these
# before-validators add the spellings it leaves alone: 1e5 for an integer,
# "64,64" for a list, YAML text for a mapping, "null" for nothing.
def _number(value: Any) -> Any:
    if isinstance(value, bool):  # YAML reads yes/no/on/off as booleans: no numbers
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        if text.lower() in ("null", "none"):
            return None
        for parse in (int, float):
            try:
                return parse(text)
            except ValueError:
                pass
    return value


def _items(value: Any) -> Any:
    if isinstance(value, str):
        return [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
    return value


def _mapping(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return yaml.safe_load(value) if value.strip() else {}
        except yaml.YAMLError:
            return value
    return value


Real = Annotated[float, BeforeValidator(_number)]
Positive = Annotated[float, BeforeValidator(_number), Field(gt=0)]
Fraction = Annotated[float, BeforeValidator(_number), Field(ge=0, le=1)]
OptionalReal = Annotated[Optional[float], BeforeValidator(_number)]
OptionalFraction = Annotated[Optional[Fraction], BeforeValidator(_number)]
Count = Annotated[int, BeforeValidator(_number), Field(ge=1)]
NonNegative = Annotated[int, BeforeValidator(_number), Field(ge=0)]
NonNegativeReal = Annotated[float, BeforeValidator(_number), Field(ge=0)]
Sizes = Annotated[list[Count], BeforeValidator(_items)]
Mapping = Annotated[dict[str, Any], BeforeValidator(_mapping)]


class Section(BaseModel):
    """A group of settings: unknown keys are errors, docstrings are the help.
    (``defer_build``: pydantic builds the validators at the first validation,
    so ``--help`` does not wait for them.)"""

    model_config = ConfigDict(
        extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False, defer_build=True
    )


# ------------------------------------------------------------------- models
class NetworkConfig(Section):
    """Which network the agent uses and its size. ``auto`` picks by task."""

    architecture: Literal[
        "auto", "mlp", "maze_cnn", "maze_vin", "connect_four_cnn", "binpack_attention"
    ] = "auto"
    """Network: auto (by task), mlp, maze_cnn, maze_vin, connect_four_cnn, binpack_attention."""
    hidden_sizes: Sizes = [64, 64]
    """Widths of the MLP layers (the mlp torso; the maze_cnn heads)."""
    activation: Literal["tanh", "relu"] = "tanh"
    """Activation of the MLP layers: tanh or relu."""
    conv_channels: Sizes = [32, 32, 8]
    """Output channels of the 3x3 convolutions of maze_cnn and connect_four_cnn ([]: none)."""
    num_layers: Count = 2
    """Attention layers of binpack_attention (each: 2 self- and 2 cross-attention blocks)."""
    num_heads: Count = 8
    """Attention heads of binpack_attention."""
    key_size: Count = 16
    """Size of one attention head; the model width is num_heads * key_size."""
    shared_torso: bool = False
    """Actor and critic share one torso (maze_cnn, connect_four_cnn, binpack_attention), not two."""
    egocentric: bool = False
    """maze_cnn: see the maze from the agent, a (2H-1)x(2W-1) wall/target window centred on it."""
    vin_iterations: Count = 40
    """maze_vin: value-iteration steps (at least the longest shortest path in the maze)."""
    vin_channels: Count = 8
    """maze_vin: Q channels per value-iteration step (the max over them is the value map)."""
    recurrent: Literal["none", "lstm", "gru"] = "none"
    """Recurrent core between the torso and the heads: lstm, gru or none (trainer.recurrent)."""
    recurrent_size: Count = 128
    """Hidden units of the recurrent core."""
    orthogonal_init: bool = True
    """mlp: orthogonal weights (policy head gain 0.01, value head 1), else PyTorch's default."""
    log_std_init: Real = 0.0
    """mlp on Box actions: initial value of the state-independent log standard deviation."""
    normalize_observation: bool = False
    """mlp: standardise float observation fields with running mean/std, updated every update."""
    observation_clip: Positive = 10.0
    """mlp with normalize_observation: clip standardised observations to +-this."""


class PPOConfig(Section):
    """Proximal Policy Optimisation (Schulman et al. 2017), CleanRL vocabulary."""

    learning_rate: Positive = 2.5e-4
    """Adam learning rate (at the start, when annealed)."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over the run."""
    adam_eps: Real = 1e-5
    """Adam epsilon."""
    update_epochs: Count = 4
    """Passes over each rollout."""
    num_minibatches: Count = 4
    """Minibatches per pass; num_envs * num_steps must be divisible by it."""
    gae_lambda: Fraction = 0.95
    """Lambda of generalised advantage estimation."""
    norm_adv: bool = True
    """Normalise advantages per minibatch."""
    clip_coef: Real = 0.2
    """Clipping range of the policy ratio."""
    clip_vloss: bool = True
    """Clip the value loss around the old values, as PPO2 does."""
    ent_coef: Real = 0.01
    """Weight of the entropy bonus."""
    vf_coef: Real = 0.5
    """Weight of the value loss."""
    max_grad_norm: Real = 0.5
    """Clip the global gradient norm to this."""
    target_kl: OptionalReal = None
    """Stop an update's epochs early once the approximate KL exceeds this (null: never)."""
    advantage_estimator: Literal["gae", "vtrace"] = "gae"
    """Advantages and value targets: gae, or vtrace (IMPALA; with lambda = gae_lambda). appo
    always uses vtrace."""
    vtrace_rho_bar: Positive = 1.0
    """V-trace: clip of the importance weights of the TD errors and the advantages (rho bar)."""
    vtrace_c_bar: Positive = 1.0
    """V-trace: clip of the importance weights that carry the trace back in time (c bar)."""


class SPOConfig(Section):
    """Sequential Monte Carlo Policy Optimisation (Macfarlane et al. 2024), Stoix semantics.

    Defaults are the SPO paper's discrete column (Table 3) except where marked
    SCALED: the paper runs 768 envs x 16 particles x depth 4 on a TPU; this
    trainer runs on a 2-core CPU, so the per-task YAML (``<task>.spo.yaml``)
    shrinks the env count, batch and replay further. Field names carry an
    ``spo``/``search`` prefix where PPO has a field of the same meaning, because
    flags are flat and must be unique.
    """

    num_particles: Count = 16
    """Particles per env in the SMC search (paper: 16)."""
    search_depth: Count = 4
    """Simulated steps per particle (paper: 4)."""
    resample_period: NonNegative = 4
    """Resample every this many depth steps; 0 disables periodic resampling (paper: 4)."""
    resample_ess_threshold: Fraction = 0.0
    """Also resample envs whose ESS is below this fraction of N (0: off; Stoix ESS mode: 0.5)."""
    search_gamma: OptionalFraction = None
    """Discount of the search's 1-step advantages r + g V(s') - V(s); null: the run's gamma,
    the critic's own, so that the advantages are its TD errors (Stoix: 1.0, for its 0.99)."""
    search_gae_lambda: Fraction = 1.0
    """Lambda of the per-particle advantages the temperature loss uses (Stoix: 1.0)."""
    dirichlet_alpha: Positive = 0.03
    """Root Dirichlet noise concentration, over legal actions only (paper: 0.03)."""
    dirichlet_fraction: Fraction = 0.25
    """Root Dirichlet noise weight during training; evaluation uses none (paper: 0.25)."""
    init_temperature: Positive = 0.5
    """Initial value of the temperature dual eta (paper: 0.5)."""
    init_alpha: Positive = 0.5
    """Initial value of the trust-region dual alpha (paper: 0.5; Box: the mean's, paper 10)."""
    epsilon: Real = 0.5
    """E-step KL bound of the temperature dual (paper: 0.5)."""
    epsilon_alpha: Real = 0.001
    """M-step KL bound of the trust region against the target actor (paper: 1e-3); for Box
    actions, the bound on the Gaussian mean's KL, per action element (paper: 5e-2)."""
    init_alpha_std: Positive = 500.0
    """Box actions: initial trust-region dual of the Gaussian std's KL (paper: 500)."""
    epsilon_alpha_std: Real = 0.0005
    """Box actions: KL bound on the Gaussian std, per action element (paper: 5e-4)."""
    spo_learning_rate: Positive = 0.0003
    """Adam learning rate of the actor and critic (paper: 3e-4; constant)."""
    dual_learning_rate: Positive = 0.0003
    """Adam learning rate of the duals (paper: 3e-4)."""
    spo_adam_eps: Real = 1e-5
    """Adam epsilon of all SPO optimisers."""
    spo_max_grad_norm: Real = 0.5
    """Global gradient-norm clip, of the network and of the duals separately (paper: 0.5)."""
    tau: Fraction = 0.005
    """Polyak rate of the target actor and critic, after every gradient step (paper: 5e-3)."""
    critic_gae_lambda: Fraction = 0.95
    """Lambda of the critic's GAE targets on replayed sequences (paper: 0.95)."""
    critic_coef: Real = 1.0
    """Weight of the critic loss 0.5 (V - target)^2 (Stoix vf_coef: 1.0)."""
    replay_size: Count = 65536
    """Replay capacity in transitions (paper: 65536; rounded to whole steps of all envs)."""
    sample_sequences: Count = 64
    """Sequences per gradient-step batch (paper: 64)."""
    sample_sequence_length: Count = 17
    """Steps per sampled sequence; critic GAE runs within it (paper: 17)."""
    gradient_steps: Count = 16
    """Gradient steps per update, each on a fresh replay batch (paper 'epochs': 16)."""
    dedupe_particles: bool = True
    """Run the search's network once per distinct particle observation (same results, faster)."""
    eval_search: bool = True
    """Evaluate with the search (argmax of the search target); false: greedy on the raw policy."""
    eval_compare_greedy: bool = True
    """With eval_search, also run a greedy (no search) evaluation and log it as greedy_*."""


class AsyncConfig(Section):
    """Asynchronous PPO (``--algo appo``, ``trainer.appo``): an actor thread steps the envs
    through the pool's send/recv while the learner updates; V-trace corrects the policy lag.
    The PPO settings (the ppo section) apply to its updates."""

    max_policy_lag: NonNegativeReal = 0.25
    """How far, in rollouts, an env may run ahead of the learner: 1 lets it collect the whole
    next rollout with the policy one update behind, 0.25 its first quarter (the actor keeps
    stepping while the learner updates), 0 makes the actor wait for each update as synchronous
    PPO does. No step trails the policy that learns from it by more than ceil(max_policy_lag)
    updates. Measured in docs/training.md: on CartPole, lag 1 needs about twice the steps."""
    actor_batch_size: NonNegative = 0
    """Envs the actor acts for together, as soon as that many wait for an action (0: half)."""


class Config(Section):
    """Everything that determines a training run."""

    task: str = ""
    """Task id, one of pyenvpool.list_tasks()."""
    algo: str = "ppo"
    """Training algorithm."""
    seed: NonNegative = 1
    """Seed of the network init, the action sampling and the training envs."""
    total_steps: Count = 1_000_000
    """Environment steps to train for, rounded up to whole updates."""
    num_envs: Count = 64
    """Parallel training environments."""
    num_steps: Count = 128
    """Rollout length: steps per environment between updates."""
    gamma: Fraction = 0.99
    """Discount factor."""
    normalize_reward: bool = False
    """Scale rewards by the running std of the discounted return (SB3 VecNormalize)."""
    reward_clip: Positive = 10.0
    """With normalize_reward: clip scaled rewards to +-this."""
    self_play: bool = False
    """Two-player zero-sum task: one network plays both sides, with negamax GAE (PPO only)."""
    opponent_fraction: Fraction = 0.0
    """self_play: share of the training envs where the learner plays a past copy of itself."""
    opponent_pool_size: Count = 8
    """self_play: past copies kept as opponents (the oldest leaves first)."""
    opponent_interval: Count = 10
    """self_play: updates between copies added to the opponent pool."""
    task_kwargs: Mapping = {}
    """Task parameters passed to pyenvpool.make (a YAML/JSON mapping on the command line)."""
    eval_task_kwargs: Mapping = {}
    """Task parameters of the evaluation pool that differ from task_kwargs (merged over them)."""
    env_threads: NonNegative = 0
    """Engine worker threads; 0 picks one per core. Results never depend on it."""
    device: str = "auto"
    """Torch device: auto, cpu, cuda or cuda:N."""
    torch_threads: Count = 1
    """CPU threads for PyTorch; a seeded CPU run is bit-reproducible for a fixed count."""
    eval_interval: NonNegative = 100_000
    """Environment steps between greedy evaluations; 0 evaluates only at the end."""
    eval_episodes: Count = 100
    """Episodes per evaluation, split evenly over the evaluation envs (two-player tasks: games
    in all, split evenly over the fixed opponents and sides)."""
    eval_num_envs: Count = 100
    """Environments in the separate evaluation pool."""
    eval_seed: NonNegative = 1_000_000
    """Seed of the evaluation pool: every evaluation replays the same held-out episodes."""
    target_return: OptionalReal = None
    """Stop training once an evaluation's mean return reaches this (null: never)."""
    checkpoint_interval: NonNegative = 500_000
    """Environment steps between checkpoints; 0 checkpoints only at the end."""
    keep_checkpoints: NonNegative = 3
    """Step checkpoints kept in this run, besides the best; 0 keeps all."""
    console_interval: Real = 10.0
    """Seconds between console dashboard lines (evaluations are always printed)."""
    tensorboard: bool = True
    """Write TensorBoard event files when tensorboard is installed."""
    plot: bool = True
    """Draw learning_curve.png: after evaluations (at most every 30 s) and at the end."""
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    """The network (a section)."""
    ppo: PPOConfig = Field(default_factory=PPOConfig)
    """PPO settings (a section; used when algo is ppo)."""
    spo: SPOConfig = Field(default_factory=SPOConfig)
    """SPO settings (a section; used when algo is spo)."""
    appo: AsyncConfig = Field(default_factory=AsyncConfig)
    """Asynchronous PPO settings (a section; used when algo is appo, with the ppo section)."""

    @field_validator("algo")
    @classmethod
    def _known_algorithm(cls, algo: str) -> str:
        if algo not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {algo!r}; known: {sorted(ALGORITHMS)}")
        return algo

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if device in ("auto", "cpu", "cuda") or (
            device.startswith("cuda:") and device[5:].isdigit()
        ):
            return device
        raise ValueError(f"expected auto, cpu, cuda or cuda:N, got {device!r}")

    @model_validator(mode="after")
    def _rules_between_fields(self) -> Config:
        if self.self_play and self.algo != "ppo":
            raise ValueError(f"self_play: supported by ppo only, not {self.algo}")
        if self.algo == "appo" and self.appo.actor_batch_size > self.num_envs:
            raise ValueError(
                f"actor_batch_size: {self.appo.actor_batch_size} is more than the "
                f"{self.num_envs} envs"
            )
        if self.algo == "appo" and self.normalize_reward:
            raise ValueError(
                "normalize_reward: appo's actor thread stores the raw rewards; "
                "use --algo ppo or spo with it"
            )
        if self.algo in ("ppo", "appo"):
            try:
                Batching(self.num_envs, self.num_steps).minibatch_size(self.ppo.num_minibatches)
            except ValueError as e:
                raise ValueError(f"num_minibatches: {e}") from None
        if self.algo == "spo" and self.spo.replay_size // self.num_envs < (
            self.spo.sample_sequence_length
        ):
            raise ValueError(
                f"replay_size: {self.spo.replay_size} transitions over {self.num_envs} envs hold "
                f"fewer steps than sample_sequence_length = {self.spo.sample_sequence_length}"
            )
        if self.network.architecture == "auto":
            from trainer.tasks import task_info  # with NumPy: only once there is a task

            self.network.architecture = task_info(self.task).architecture
        for key, default in (("normalize_observation", False), ("orthogonal_init", True)):
            if getattr(self.network, key) != default and self.network.architecture != "mlp":
                raise ValueError(
                    f"{key}: supported by the mlp architecture only, "
                    f"not {self.network.architecture}"
                )
        if self.network.recurrent != "none":
            self._check_recurrent()
        return self

    def _check_recurrent(self) -> None:
        from trainer.tasks import task_info

        if self.self_play or task_info(self.task).opponents:
            raise ValueError(
                "recurrent: two-player tasks (self-play, matches against fixed players) "
                "need a feed-forward network"
            )
        if self.network.architecture == "connect_four_cnn":
            raise ValueError("recurrent: connect_four_cnn has no recurrent form")
        if self.algo in ("ppo", "appo") and self.num_envs % self.ppo.num_minibatches:
            raise ValueError(
                f"num_minibatches: a recurrent policy's minibatches split the envs, and "
                f"num_envs = {self.num_envs} is not divisible by {self.ppo.num_minibatches}"
            )


SECTIONS: dict[str, type[Section]] = {
    "network": NetworkConfig,
    "ppo": PPOConfig,
    "spo": SPOConfig,
    "appo": AsyncConfig,
}


# --------------------------------------------------------- the flat view
@dataclass(frozen=True)
class Setting:
    """One settable leaf of the config, as the command line sees it."""

    name: str
    section: Optional[str]
    annotation: Any
    default: Any
    help: str

    @property
    def path(self) -> str:
        return self.name if self.section is None else f"{self.section}.{self.name}"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def settings() -> dict[str, Setting]:
    """Every leaf field of Config by its name (unique across sections), in order."""
    out: dict[str, Setting] = {}
    for section, model in [(None, Config), *SECTIONS.items()]:
        for name, info in model.model_fields.items():
            if section is None and name in SECTIONS:
                continue
            assert name not in out, f"config field name {name!r} is not unique"
            default = info.get_default(call_default_factory=True)
            out[name] = Setting(name, section, info.annotation, default, info.description or "")
    return out


# ----------------------------------------------------------------- errors
# Written here because pydantic reports errors as a multi-line table with
# links, and proposes no close matches for an unknown key.
def suggest(key: str, candidates: list[str]) -> str:
    """' (did you mean X?)' for close matches of ``key``, or ''."""
    matches = difflib.get_close_matches(key, candidates, n=3, cutoff=0.6)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(repr(m) for m in matches) + "?)"


def _unknown_key(loc: tuple[str, ...], where: str) -> str:
    fields = settings().values()
    if len(loc) == 1:
        here = [f.name for f in fields if f.section is None] + list(SECTIONS)
    else:
        here = [f.name for f in fields if f.section == loc[0]]
    # Also offer the right section for a key that lives elsewhere.
    elsewhere = [f.path for f in fields]
    key = loc[-1]
    hint = suggest(key, here) or suggest(key, elsewhere) or suggest(key.split(".")[-1], elsewhere)
    return f"unknown config key {'.'.join(loc)!r} in {where}{hint}"


# pydantic's error types in the words of a one-line message.
EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
BOUNDS = {
    "greater_than_equal": ">=",
    "greater_than": ">",
    "less_than_equal": "<=",
    "less_than": "<",
}


def _message(error: dict[str, Any], data: dict[str, Any], sources: dict[tuple, str]) -> str:
    """One line, ``key: what is wrong``, for one of pydantic's errors."""
    loc, kind = error["loc"], error["type"]
    if kind == "extra_forbidden":
        return _unknown_key(tuple(map(str, loc)), sources.get(loc, "the config"))
    path = [part for part in loc if isinstance(part, str)]
    key = ".".join(path)
    text = error["msg"].removeprefix("Value error, ")
    if kind in EXPECTED:
        text = f"expected {EXPECTED[kind]}"
    elif kind in BOUNDS:
        text = f"must be {BOUNDS[kind]} {next(iter(error['ctx'].values()))}"
    elif kind == "literal_error":
        known = list(get_args(_annotation(path)))
        hint = suggest(str(error["input"]), known)
        return f"{key}: unknown {error['input']!r}; known: {', '.join(known)}{hint}"
    elif kind == "value_error":
        return text if not key else f"{key}: {text}"
    if len(path) < len(loc):  # an entry of a list: name the list
        value = data
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if kind in EXPECTED:
            text = f"expected a list of {'integers' if 'int' in kind else 'numbers'}"
        else:
            text = f"every entry {text}"
        return f"{key}: {text}, got {value!r}"
    return f"{key}: {text}, got {error['input']!r}"


def _annotation(path: list[str]) -> Any:
    model: type[BaseModel] = Config if len(path) == 1 else SECTIONS[path[0]]
    return model.model_fields[path[-1]].annotation


# ----------------------------------------------------------------- layers
# pydantic validates one mapping; merging the layers section by section, and
# remembering which layer set each key (for the errors), is done here.
Layer = tuple[str, Any]  # (where it comes from, a nested mapping in the YAML layout)


def _build(layers: list[Layer]) -> Config:
    """Merge the layers, each over the ones before, and validate the result."""
    data: dict[str, Any] = {}
    sources: dict[tuple, str] = {}
    for where, layer in layers:
        if not isinstance(layer, dict):
            raise ConfigError(
                f"{where} must be a mapping of config keys, got {type(layer).__name__}"
            )
        for key, value in layer.items():
            key = str(key)
            if key not in SECTIONS:
                data[key], sources[(key,)] = value, where
            elif value is not None:  # a section merges key by key
                if not isinstance(value, dict):
                    raise ConfigError(f"{key} in {where} must be a mapping, got {value!r}")
                for name, setting in value.items():
                    data.setdefault(key, {})[str(name)] = setting
                    sources[(key, str(name))] = where
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError("\n".join(_message(err, data, sources) for err in e.errors())) from None


def _flag_layer(flags: dict[str, Any]) -> Layer:
    """Flat ``{field_name: value}`` from the command line, in the YAML layout."""
    fields = settings()
    nested: dict[str, Any] = {}
    for name, value in flags.items():
        if name not in fields:
            raise ConfigError(
                f"unknown option --{name.replace('_', '-')}" + suggest(name, list(fields))
            )
        section = fields[name].section
        (nested if section is None else nested.setdefault(section, {}))[name] = value
    return "the command line", nested


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
    defaults and the task YAML; forks use it. A fork into another algorithm
    applies that algorithm's embedded defaults of the task over it.
    """
    flags = dict(flags or {})
    user = load_yaml(config_file) if config_file is not None else {}
    algo = flags.get("algo") or user.get("algo")
    if base is not None:
        layers: list[Layer] = [("the base config", base)]
        base_algo = base.get("algo", "ppo") if isinstance(base, dict) else "ppo"
        if algo and algo != base_algo and algo != "ppo":
            task = str(base.get("task", ""))
            overlay = task_defaults(task, str(algo))
            layers.append((f"the embedded {algo} defaults of {task}", overlay))
    else:
        task = flags.get("task") or user.get("task")
        if not task:
            raise ConfigError(
                "no task given: pass --task (e.g. --task CartPole-v1) or set task in --config"
            )
        embedded = task_defaults(str(task))
        layers = [(f"the embedded defaults of {task}", embedded)]
        algo = algo or embedded.get("algo", "ppo")
        if algo != "ppo":
            overlay = task_defaults(str(task), str(algo))
            layers.append((f"the embedded {algo} defaults of {task}", overlay))
    if user:
        layers.append((str(config_file), user))
    return _build([*layers, _flag_layer(flags)])


def from_dict(data: dict[str, Any], where: str) -> Config:
    """A config from its nested mapping (a checkpoint's metadata, a config.yaml)."""
    return _build([(where, data)])


def load_config(path: str | Path) -> Config:
    """The config a YAML file holds (a run's frozen ``config.yaml``)."""
    return from_dict(load_yaml(path), str(path))


def override(config: Config, flags: dict[str, Any]) -> Config:
    """``config`` with flat ``{field_name: value}`` settings over it."""
    return _build([("the config", config.model_dump()), _flag_layer(flags)])


def evaluation_task_kwargs(config: Config) -> dict[str, Any]:
    """The evaluation pool's task parameters: task_kwargs with eval_task_kwargs over them."""
    return {**config.task_kwargs, **config.eval_task_kwargs}


def to_dict(config: Config) -> dict[str, Any]:
    """The nested plain-data form of a config (what config.yaml holds): the
    sections of the algorithms the run does not use are left out, and so are
    the recurrent core's settings of a feed-forward network."""
    used = algorithm_sections(config.algo)
    exclude: dict[str, Any] = {name: True for name in ALGORITHMS if name not in used}
    if config.network.recurrent == "none":
        exclude["network"] = {"recurrent", "recurrent_size"}
    return config.model_dump(exclude=exclude)


def dump(config: Config) -> str:
    """The YAML text of a resolved config, sections last."""
    return yaml.safe_dump(to_dict(config), sort_keys=False, default_flow_style=None)
