"""Config precedence (defaults < task YAML < --config < flags), coercion,
unknown keys with suggestions, validation, and the frozen config.yaml format."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trainer.config import (
    SECTIONS,
    Config,
    ConfigError,
    dump,
    embedded_tasks,
    load_config,
    override,
    resolve,
    settings,
)


def write(tmp_path, data) -> str:
    path = tmp_path / "my.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_every_field_has_a_default_and_a_docstring():
    for model in (Config, *SECTIONS.values()):
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no docstring"
            assert not info.is_required(), f"{model.__name__}.{name} has no default"
    assert all(setting.help for setting in settings().values())


def test_field_names_are_unique_across_sections():
    leaves = [
        name
        for section, model in [(None, Config), *SECTIONS.items()]
        for name in model.model_fields
        if section is not None or name not in SECTIONS
    ]
    assert len(leaves) == len(set(leaves)) == len(settings())


def test_embedded_task_configs_ship_and_resolve():
    assert {"CartPole-v1", "Maze-v0", "BinPack-v0"} <= set(embedded_tasks())
    for task in embedded_tasks():
        config = resolve(flags={"task": task})
        assert config.task == task
        assert config.network.architecture != "auto"


def test_precedence_defaults_task_yaml_file_flags(tmp_path, monkeypatch):
    embedded = {"task": "CartPole-v1", "num_envs": 11, "seed": 12, "ppo": {"clip_coef": 0.3}}
    monkeypatch.setattr("trainer.config.task_defaults", lambda task: embedded)
    defaults = Config()
    only_task = resolve(flags={"task": "CartPole-v1"})
    assert (only_task.num_envs, only_task.seed, only_task.ppo.clip_coef) == (11, 12, 0.3)
    assert only_task.num_steps == defaults.num_steps  # untouched keys keep their defaults
    path = write(tmp_path, {"num_envs": 7, "ppo": {"learning_rate": 0.125}})
    with_file = resolve(flags={"task": "CartPole-v1"}, config_file=path)
    assert (with_file.num_envs, with_file.seed, with_file.ppo.learning_rate) == (7, 12, 0.125)
    assert with_file.ppo.clip_coef == 0.3
    with_flags = resolve(
        flags={"task": "CartPole-v1", "num_envs": "9", "learning_rate": "1e-4"}, config_file=path
    )
    assert (with_flags.num_envs, with_flags.seed, with_flags.ppo.clip_coef) == (9, 12, 0.3)
    assert with_flags.ppo.learning_rate == 1e-4


def test_task_may_come_from_the_file(tmp_path):
    config = resolve(config_file=write(tmp_path, {"task": "CartPole-v1", "num_steps": 8}))
    assert config.task == "CartPole-v1" and config.num_steps == 8


def test_missing_task_is_an_error():
    with pytest.raises(ConfigError, match="no task given"):
        resolve(flags={})


@pytest.mark.parametrize(
    "data, message",
    [
        ({"num_env": 4}, r"unknown config key 'num_env'.*did you mean 'num_envs'"),
        (
            {"ppo": {"clip_cof": 0.1}},
            r"unknown config key 'ppo.clip_cof'.*did you mean 'clip_coef'",
        ),
        (
            {"learning_rate": 0.1},
            r"unknown config key 'learning_rate'.*did you mean 'ppo.learning_rate'",
        ),
        ({"ppo": {"num_envs": 3}}, r"unknown config key 'ppo.num_envs'.*did you mean 'num_envs'"),
        ({"netwrk": {}}, r"unknown config key 'netwrk'.*did you mean 'network'"),
        ({"zzz_qqq": 1}, r"unknown config key 'zzz_qqq' in .*my.yaml$"),
    ],
)
def test_unknown_keys_in_a_file_are_errors_with_suggestions(tmp_path, data, message):
    with pytest.raises(ConfigError, match=message):
        resolve(flags={"task": "CartPole-v1"}, config_file=write(tmp_path, data))


def test_unknown_flag_is_an_error_with_suggestions():
    with pytest.raises(ConfigError, match=r"--lerning-rate.*did you mean 'learning_rate'"):
        resolve(flags={"task": "CartPole-v1", "lerning_rate": 1})


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"num_envs": "abc"}, "num_envs: expected an integer"),
        ({"num_envs": 2.5}, "num_envs: expected an integer"),
        ({"anneal_lr": "maybe"}, "anneal_lr: expected true or false"),
        ({"hidden_sizes": "64,x"}, "hidden_sizes: expected a list of integers"),
        ({"num_envs": 0}, "num_envs: must be >= 1"),
        ({"num_minibatches": 7}, "num_minibatches: .* not divisible"),
        ({"device": "tpu"}, "device: expected"),
        ({"architecture": "mlpp"}, "did you mean 'mlp'"),
        ({"algo": "dqn"}, "algo: unknown algorithm"),
    ],
)
def test_invalid_values_name_the_key(flags, message):
    with pytest.raises(ConfigError, match=message):
        resolve(flags={"task": "CartPole-v1", **flags})


def test_command_line_strings_are_coerced():
    config = resolve(
        flags={
            "task": "CartPole-v1",
            "total_steps": "1e5",
            "anneal_lr": "false",
            "target_kl": "0.02",
            "hidden_sizes": "32,16",
            "task_kwargs": "{max_episode_steps: 100}",
            "target_return": "null",
        }
    )
    assert config.total_steps == 100_000 and config.ppo.anneal_lr is False
    assert config.ppo.target_kl == 0.02 and config.network.hidden_sizes == [32, 16]
    assert config.task_kwargs == {"max_episode_steps": 100} and config.target_return is None


def test_yaml_scientific_notation_without_a_dot_is_a_float(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("task: CartPole-v1\nppo:\n  learning_rate: 3e-4\n")  # YAML 1.1 reads a string
    assert resolve(config_file=str(path)).ppo.learning_rate == 3e-4


def test_architecture_auto_resolves_by_task():
    assert (
        resolve(flags={"task": "CartPole-v1", "architecture": "auto"}).network.architecture == "mlp"
    )
    assert resolve(flags={"task": "Maze-v0"}).network.architecture == "maze_vin"
    assert resolve(flags={"task": "BinPack-v0"}).network.architecture == "binpack_attention"


def test_dump_round_trips_and_base_replaces_defaults(tmp_path):
    config = resolve(flags={"task": "CartPole-v1", "num_envs": 3, "learning_rate": 0.5})
    text = dump(config)
    assert "ppo:" in text and "network:" in text
    again = resolve(base=yaml.safe_load(text))
    assert again == config
    forked = resolve(base=yaml.safe_load(text), flags={"learning_rate": 0.25})
    assert forked.num_envs == 3 and forked.ppo.learning_rate == 0.25


def test_unreadable_or_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        resolve(flags={"task": "CartPole-v1"}, config_file=str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("num_envs: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve(flags={"task": "CartPole-v1"}, config_file=str(bad))
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        resolve(flags={"task": "CartPole-v1"}, config_file=str(listy))


# A config.yaml written before the config moved to pydantic (main at 17f5dfd):
# old runs must still resume and evaluate, so it loads and dumps to the same
# text, apart from settings added since, which take their defaults.
FROZEN_SPO_RUN = Path(__file__).parent / "data" / "config-17f5dfd-maze-spo.yaml"
ADDED_SINCE = {
    "normalize_reward": False,
    "reward_clip": 10.0,
    "network": {
        "orthogonal_init": True,
        "log_std_init": 0.0,
        "normalize_observation": False,
        "observation_clip": 10.0,
    },
    "spo": {"init_alpha_std": 500.0, "epsilon_alpha_std": 0.0005},
}


def test_a_frozen_config_from_before_loads_and_dumps_unchanged():
    config = load_config(FROZEN_SPO_RUN)
    assert config.algo == "spo" and config.spo.num_particles == 8
    assert config.ppo == Config().ppo  # the section the run did not use: defaults
    dumped = yaml.safe_load(dump(config))
    for key, value in ADDED_SINCE.items():
        if isinstance(value, dict):
            assert {k: dumped[key].pop(k) for k in value} == value
        else:
            assert dumped.pop(key) == value
    text = yaml.safe_dump(dumped, sort_keys=False, default_flow_style=None)
    assert text == FROZEN_SPO_RUN.read_text()


def test_each_error_is_one_line_naming_its_key(tmp_path):
    path = write(
        tmp_path, {"num_envs": "x", "ppo": {"gae_lambda": 2}, "network": {"activation": "sigmoid"}}
    )
    with pytest.raises(ConfigError) as error:
        resolve(flags={"task": "CartPole-v1"}, config_file=path)
    assert str(error.value).splitlines() == [
        "num_envs: expected an integer, got 'x'",
        "network.activation: unknown 'sigmoid'; known: tanh, relu",
        "ppo.gae_lambda: must be <= 1, got 2",
    ]


def test_unknown_keys_name_the_layer_they_came_from(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'lerning_rate' in the base config"):
        resolve(base={"task": "CartPole-v1", "lerning_rate": 1.0})
    bad = write(tmp_path, {"network": {"hiden_sizes": [8]}})
    with pytest.raises(ConfigError, match=r"'network.hiden_sizes' in .*my.yaml.*'hidden_sizes'"):
        resolve(flags={"task": "CartPole-v1", "seed": 3}, config_file=bad)


def test_override_and_from_dict_keep_the_rest():
    config = resolve(flags={"task": "Maze-v0", "algo": "spo"})
    again = override(config, {"num_particles": "4", "eval_episodes": 10})
    assert again.spo.num_particles == 4 and again.eval_episodes == 10
    assert again.model_copy(update={"spo": config.spo, "eval_episodes": 200}) == config
    with pytest.raises(ConfigError, match="num_particles: must be >= 1"):
        override(config, {"num_particles": 0})


def test_rules_between_fields_apply_to_the_algorithm_in_use():
    # 3 x 5 steps do not split into 4 PPO minibatches, which SPO does not use.
    flags = {"task": "Maze-v0", "num_envs": 3, "num_steps": 5}
    with pytest.raises(ConfigError, match="num_minibatches"):
        resolve(flags=flags)
    assert resolve(flags={**flags, "algo": "spo", "replay_size": 60, "sample_sequence_length": 4})
    with pytest.raises(ConfigError, match="self_play: supported by ppo only"):
        resolve(flags={"task": "ConnectFour-v0", "algo": "spo"})


@pytest.mark.parametrize(
    ("key", "value"), [("normalize_observation", True), ("orthogonal_init", False)]
)
def test_mlp_only_network_settings_are_refused_for_other_architectures(key, value):
    assert getattr(resolve(flags={"task": "CartPole-v1", key: value}).network, key) == value
    with pytest.raises(ConfigError, match=f"{key}: supported by the mlp architecture only"):
        resolve(flags={"task": "Maze-v0", key: value})
