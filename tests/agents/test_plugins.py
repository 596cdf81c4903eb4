"""Your own agents: a config's plugins are imported before its agents are validated, once per process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from agents import registry
from agents.config import ConfigError, StrictModel, config_from_dict, load_config
from agents.evaluation import run_episode

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "round_robin_agent.py"
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import evaluate  # noqa: E402


@pytest.fixture
def clean_registry(monkeypatch):
    """The registry and the imported plugins as they were before the test."""
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))
    modules = set(sys.modules)
    yield
    for name in set(sys.modules) - modules:
        if name.startswith("edgesplit_plugin_"):
            del sys.modules[name]


def _config(plugins, params=None) -> dict:
    agent = {"label": "rr", "name": "round_robin", "params": params or {}}
    return {"name": "own", "plugins": plugins, "agents": [agent]}


def test_an_agent_from_a_plugin_file_plays_and_takes_nodes_in_turn(clean_registry, short_env):
    config = config_from_dict(_config([str(EXAMPLE)], {"family": "layer"}))
    agent = registry.build_agent("round_robin", config.agents[0].params, short_env)
    nodes = []
    original = agent.predict

    def recording(observation, env):
        action = original(observation, env)
        plan, placement = env.unwrapped.decode_action(action)
        nodes.append(placement[0])
        assert plan.family == "layer"
        return action

    agent.predict = recording
    metrics = run_episode(agent, short_env, seed=3, online_updates=True, max_steps=12)
    assert metrics.jobs > 0
    assert nodes[:10] == list(range(10))  # idle cluster: every node has room, so 0, 1, ..., 9


def test_loading_the_config_again_does_not_register_twice(clean_registry):
    for _ in range(2):
        config_from_dict(_config([str(EXAMPLE), "agents.baselines"]))  # a file and a module by name
    assert "round_robin" in registry.agent_names()


def test_a_bad_plugin_or_a_mistyped_param_is_named(clean_registry, tmp_path):
    with pytest.raises(ConfigError, match="round_robin.*allowed"):  # without the plugin the name is unknown
        config_from_dict(_config([]))
    with pytest.raises(ConfigError, match="plugins: plugin 'no_such_module_xyz'"):
        config_from_dict(_config(["no_such_module_xyz"]))
    with pytest.raises(ConfigError, match=r"plugins: plugin 'missing\.py': no such file"):
        config_from_dict(_config(["missing.py"]))
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_package_abc\n")
    with pytest.raises(ConfigError, match="plugin '.*broken.py': No module named 'no_such_package_abc'"):
        config_from_dict(_config([str(broken)]))
    assert not [name for name in sys.modules if name.startswith("edgesplit_plugin_broken")]
    with pytest.raises(ConfigError, match="famly"):
        config_from_dict(_config([str(EXAMPLE)], {"famly": "layer"}))


def test_register_agent_refuses_a_taken_name_and_a_params_class_that_is_not_a_model(clean_registry):
    with pytest.raises(ValueError, match="'random' is already registered"):
        registry.register_agent("random", StrictModel, lambda params, env: None, "")
    with pytest.raises(ValueError, match="params must be a pydantic model class"):
        registry.register_agent("mine", dict, lambda params, env: None, "")


def test_evaluate_script_runs_an_agent_from_a_plugin(clean_registry, tmp_path, capsys):
    config = _config([str(EXAMPLE)]) | {
        "output_dir": str(tmp_path / "out"),
        "env": {"scenario": "splitplace", "config": {"horizon_s": 3 * 3600.0}},
        "evaluation": {"seeds": [1000], "max_steps": 10},
        "wandb": {"mode": "disabled"},
    }
    path = tmp_path / "own.yaml"
    path.write_text(yaml.safe_dump(config))
    assert load_config(path).plugins == [str(EXAMPLE)]
    evaluate.main(["--config", str(path)])
    assert "| rr |" in capsys.readouterr().out


def test_the_splitplace_comparison_takes_an_agent_written_out_from_a_plugin(clean_registry, tmp_path):
    from reproductions.common import load_reproduction_config
    from reproductions.registry import reproduction
    from reproductions.splitplace import _agent_entries, run

    entry = reproduction("splitplace")
    own = '{label: rr, name: round_robin, params: {family: layer}}'
    config = load_reproduction_config(entry.load_module().CONFIG, entry.config_path, quick=True,
                                      overrides=[f"agents=[mc, {own}]", "proposed=rr", f"plugins=[{EXAMPLE}]"])
    assert config.labels == ["mc", "rr"]
    unknown_settings = [f"agents=[mc, {own}]", f"plugins=[{EXAMPLE}]", "agent_settings={nobody: {}}"]
    with pytest.raises(ConfigError, match=r"agent_settings: unknown agent preset\(s\) or label\(s\) \['nobody'\]"):
        load_reproduction_config(entry.load_module().CONFIG, entry.config_path, quick=True, overrides=unknown_settings)
    settings = "agent_settings={rr: {params: {family: semantic}}}"
    config_semantic = load_reproduction_config(entry.load_module().CONFIG, entry.config_path, quick=True,
                                               overrides=[f"agents=[mc, {own}]", f"plugins=[{EXAMPLE}]", settings])
    assert _agent_entries(config_semantic)[1]["params"] == {"family": "semantic"}
    run(config, tmp_path)
    table = (tmp_path / "comparison_plain.md").read_text()
    assert "| rr | rr |" in table and "| MC | mc |" in table
    assert "| rr |" in (tmp_path / "headline.md").read_text()
    with pytest.raises(ConfigError, match="needs a label"):
        load_reproduction_config(entry.load_module().CONFIG, entry.config_path, quick=True,
                                 overrides=["agents=[mc, {name: round_robin}]", f"plugins=[{EXAMPLE}]"])
