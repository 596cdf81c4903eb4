"""Experiment configs: validation names the bad key, overrides keep types, presets expand."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agents.config import (
    ConfigError,
    agent_presets,
    apply_override,
    config_from_dict,
    dump_config,
    load_config,
    read_yaml_mapping,
)

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


def _tree() -> dict:
    return {"name": "t", "agents": [{"label": "b", "name": "bandit", "train_steps": 10}]}


def test_unknown_top_level_key_is_named():
    tree = _tree() | {"trian": {}}
    with pytest.raises(ConfigError, match="trian"):
        config_from_dict(tree)


def test_mistyped_nested_key_is_named():
    with pytest.raises(ConfigError, match=r"train\.eval_evry_steps"):
        config_from_dict(_tree(), ["train.eval_evry_steps=5"])


def test_unknown_agent_param_is_named_with_its_path():
    with pytest.raises(ConfigError, match=r"params\.bandit\.polcy"):
        config_from_dict(_tree(), ["agents.0.params.bandit.polcy=ucb1"])


def test_unknown_policy_kwarg_and_agent_name_are_refused():
    with pytest.raises(ConfigError, match="epsilon"):
        config_from_dict(_tree(), ["agents.0.params.bandit.policy=ucb1",
                                   "agents.0.params.bandit.policy_kwargs={epsilon: 0.1}"])
    tree = _tree()
    tree["agents"][0]["name"] = "banditt"
    with pytest.raises(ConfigError, match="unknown agent 'banditt'"):
        config_from_dict(tree)


def test_overrides_parse_values_as_yaml_and_reach_list_items():
    config = config_from_dict(_tree(), ["agents.0.train_steps=25", "agents.0.params.bandit.arms=[layer, none]",
                                        "wandb.mode=disabled", "evaluation.seeds=[7, 8]"])
    agent = config.agents[0]
    assert agent.train_steps == 25
    assert agent.params["bandit"]["arms"] == ["layer", "none"]
    assert config.wandb.mode == "disabled"
    assert config.evaluation.seeds == [7, 8]


def test_bad_override_syntax_and_index_are_errors():
    with pytest.raises(ConfigError, match="key.sub=value"):
        apply_override({}, "no-equals-sign")
    with pytest.raises(ConfigError, match="index below 1"):
        config_from_dict(_tree(), ["agents.3.train_steps=1"])


def test_defaults_are_filled_in_and_survive_a_dump(tmp_path):
    config = config_from_dict(_tree())
    assert config.agents[0].params["bandit"]["policy"] == "epsilon_greedy"
    assert config.wandb.mode == "offline"
    assert config.evaluation.scenario_overrides == {"trace_split": "test"}
    dump_config(config, tmp_path / "c.yaml")
    again = load_config(tmp_path / "c.yaml")
    assert again == config


def test_duplicate_labels_are_refused():
    tree = _tree()
    tree["agents"].append(dict(tree["agents"][0]))
    with pytest.raises(ConfigError, match="repeated"):
        config_from_dict(tree)


def test_presets_expand_and_unknown_presets_are_named():
    config = config_from_dict({"name": "t", "agents": ["random", "bandit"]})
    assert [agent.name for agent in config.agents] == ["random", "bandit"]
    with pytest.raises(ConfigError, match="unknown agent preset 'bandito'"):
        config_from_dict({"name": "t", "agents": ["bandito"]})


@pytest.mark.parametrize("preset", agent_presets())
def test_every_agent_preset_validates(preset):
    config = config_from_dict({"name": "t", "agents": [preset]})
    assert config.agents[0].label == preset


@pytest.mark.parametrize("path", sorted((CONFIG_DIR / "experiments").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_experiment_validates(path):
    assert load_config(path).agents


@pytest.mark.parametrize("path", sorted((CONFIG_DIR / "sweeps").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_sweep_names_parameters_its_experiment_accepts(path):
    sweep = yaml.safe_load(path.read_text())
    experiment = sweep["command"][sweep["command"].index("--config") + 1]
    for name, spec in sweep["parameters"].items():
        value = spec["values"][0] if "values" in spec else spec.get("value", spec.get("min"))
        load_config(CONFIG_DIR.parent / experiment, [f"{name}={value}"])


def test_yaml_mapping_files_are_read_or_refused_naming_the_file_and_the_problem(tmp_path):
    path = tmp_path / "settings.yaml"
    with pytest.raises(ConfigError, match=f"sweep file {path} not found"):
        read_yaml_mapping(path, "sweep")
    path.write_text("")
    assert read_yaml_mapping(path) == {}
    path.write_text("a: {b: 1}\n")
    assert read_yaml_mapping(path) == {"a": {"b": 1}}
    path.write_text("a: [1\n")
    with pytest.raises(ConfigError, match=f"config file {path} is not valid YAML"):
        read_yaml_mapping(path)
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping at the top level, got list"):
        read_yaml_mapping(path)


def test_the_replaced_greedy_setting_says_what_replaces_it():
    placement = {"kind": "decision_aware", "greedy": True}
    entry = {"label": "a", "name": "decision_aware", "params": {"placement": placement}}
    with pytest.raises(ConfigError, match="params.placement.*greedy was replaced by exploration.*exploration: never"):
        config_from_dict({"name": "x", "agents": [entry]})
