"""Named scenarios: what they build, how overrides merge, which settings are rejected, and calibration."""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from envs.dnn.plan import FAMILIES
from envs.edge_split import EdgeSplitEnv
from envs.scenarios import SCENARIO_DIR, list_scenarios, load_scenario, scenario_settings
from envs.workload.apps import SPLITPLACE_APP_WEIGHTS, SPLITPLACE_DEADLINE_INTERVALS, SPLITPLACE_INTERVAL_S

BENCH_PATH = Path(__file__).resolve().parents[2] / "scripts" / "bench_env.py"


def test_the_four_named_scenarios_ship():
    assert {"splitplace", "mobile-edge", "mdi-jetson", "large"} <= set(list_scenarios())


@pytest.mark.parametrize("name", list_scenarios())
def test_every_setting_line_of_a_scenario_file_is_commented(name):
    for number, line in enumerate((SCENARIO_DIR / f"{name}.yaml").read_text().splitlines(), start=1):
        if re.match(r"^\s*-?\s*[A-Za-z_{]", line):
            assert "#" in line, f"{name}.yaml line {number} has no comment: {line!r}"


def test_splitplace_has_the_papers_cluster_apps_and_deadlines():
    scenario = load_scenario("splitplace")
    devices = Counter(node.device.name for node in scenario.simulator.nodes)
    assert devices == {"azure_b2ms": 4, "azure_e2as_v4": 2, "azure_b4ms": 2, "azure_e4as_v4": 2}
    apps = {app.name: app for app in scenario.simulator.workload.apps}
    assert {name: app.weight for name, app in apps.items()} == SPLITPLACE_APP_WEIGHTS
    for name, (low, high) in SPLITPLACE_DEADLINE_INTERVALS.items():
        assert apps[name].deadline_min_s == low * SPLITPLACE_INTERVAL_S
        assert apps[name].deadline_max_s == high * SPLITPLACE_INTERVAL_S
    assert {plan.family for plans in scenario.plans.values() for plan in plans} == {"none", "layer", "semantic"}


def test_large_has_a_thousand_nodes_and_mdi_jetson_only_jetson_nanos():
    assert len(load_scenario("large").simulator.nodes) == 1000
    mdi = load_scenario("mdi-jetson")
    assert {node.device.name for node in mdi.simulator.nodes} == {"jetson_nano"}
    assert mdi.simulator.workload.origin_nodes == (0,)


def test_overrides_replace_values_and_merge_sections_key_by_key():
    base = scenario_settings("splitplace")
    settings = scenario_settings("splitplace", {"horizon_s": 60.0, "reward": {"energy_weight": 0.25}})
    assert settings["horizon_s"] == 60.0
    assert settings["reward"] == {**base["reward"], "energy_weight": 0.25}
    scenario = load_scenario("splitplace", {"reward": {"energy_weight": 0.25}})
    assert scenario.reward.energy_weight == 0.25 and scenario.reward.infeasible_penalty == base["reward"]["infeasible_penalty"]


def test_families_setting_limits_the_plans_and_the_action_space():
    env = EdgeSplitEnv("splitplace", {"families": ["none"]})
    assert {plan.family for plans in env.scenario.plans.values() for plan in plans} == {"none"}
    assert env.action_space.nvec[1] == max(len(plans) for plans in env.scenario.plans.values())
    assert env.action_space.nvec[0] == len(FAMILIES) and env.action_space.nvec[2] == 10


def test_a_scenario_can_be_a_yaml_path(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text((SCENARIO_DIR / "mdi-jetson.yaml").read_text().replace("count: 3", "count: 1"))
    assert len(load_scenario(str(path)).simulator.nodes) == 2


def test_a_scenario_file_can_extend_another_and_override_it(tmp_path):
    path = tmp_path / "busier.yaml"
    path.write_text("extends: mdi-jetson  # base\nhorizon_s: 60.0  # s\narrivals: {rate_per_s: 9.0}  # per s\n")
    base, busier = scenario_settings("mdi-jetson"), scenario_settings(str(path))
    assert busier["horizon_s"] == 60.0 and busier["arrivals"]["rate_per_s"] == 9.0
    assert busier["arrivals"]["process"] == base["arrivals"]["process"] and busier["nodes"] == base["nodes"]
    assert {key: value for key, value in busier.items() if key not in ("horizon_s", "arrivals")} == {
        key: value for key, value in base.items() if key not in ("horizon_s", "arrivals")}


@pytest.mark.parametrize(("text", "named"), [("extends: [mdi-jetson]", "extends"), ("extends: no-such", "no-such"),
                                             ("horizon_s: [1", "is not valid YAML"), ("- 1", "must be a mapping")])
def test_a_bad_scenario_file_or_extends_names_the_problem(tmp_path, text, named):
    path = tmp_path / "bad.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ValueError, match=re.escape(named)):
        scenario_settings(str(path))


def test_a_scenario_that_extends_itself_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text(f"extends: {path}\n")
    with pytest.raises(ValueError, match="extends itself"):
        scenario_settings(str(path))


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"horizon": 10.0}, "horizon"),
        ({"reward": {"sla": 1.0}}, "reward.sla"),
        ({"background": {"mean": 0.1}}, "background.mean"),
        ({"apps": [{"name": "mnist", "model": "splitplace_mnist_layer", "weight": 1.0, "deadline_min_s": 1.0,
                    "deadline_max_s": 2.0, "batch": 3}]}, "batch"),
        ({"apps": [{"name": "mnist", "weight": 1.0, "deadline_min_s": 1.0, "deadline_max_s": 2.0}]}, "model"),
        ({"nodes": [{"device": "jetson_nano", "cores": 2, "origin": True}]}, "cores"),
        ({"nodes": [{"device": "cray_1", "origin": True}]}, "cray_1"),
        ({"nodes": [{"device": "jetson_nano"}]}, "origin"),
        ({"nodes": [{"device": "jetson_nano", "count": 0, "origin": True}]}, "count"),
        ({"families": ["layer", "pipeline"]}, "pipeline"),
        ({"trace_kinds": ["no_such_kind"]}, "no_such_kind"),
        ({"horizon_s": -5.0}, "horizon_s"),
        ({"reward": {"accuracy_floor": 1.5}}, "accuracy_floor"),
        ({"observation": {"time_scale_s": 0.0}}, "time_scale_s"),
        ({"arrivals": {"process": "bursty"}}, "process"),
        ({"nodes": 3}, "'nodes' is required (a non-empty list)"),
        ({"apps": {"name": "mnist"}}, "'apps' is required (a non-empty list)"),
        ({"trace_split": "validation"}, "'trace_split' must be one of"),
        ({"link_latency_s": "fast"}, "link_latency_s"),
        ({"nodes": [{"device": "jetson_nano", "link_latency_s": -1.0, "origin": True}]}, "nodes[0]: link_latency_s"),
        ({"nodes": [{"device": "jetson_nano", "bandwidth_scale": 0.0, "origin": True}]}, "nodes[0]: bandwidth_scale"),
        ({"nodes": [{"device": ["jetson_nano"], "origin": True}]}, "nodes[0].device"),
        ({"max_layer_fragments": [2]}, "max_layer_fragments"),
        ({"cut_candidates": 0}, "cut_candidates"),
        ({"reward": {"sla_weight": "high"}}, "reward.sla_weight"),
        ({"reward": {"energy_weight": float("nan")}}, "reward.energy_weight"),
        ({"reward": {"accuracy_floor": None}}, "reward.accuracy_floor"),
    ],
)
def test_invalid_settings_fail_at_construction_naming_the_key(overrides, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        EdgeSplitEnv("splitplace", overrides)


def test_an_episode_without_jobs_says_why_it_has_no_decision():
    env = EdgeSplitEnv("splitplace", {"horizon_s": 1.0})
    env.reset(seed=0)
    with pytest.raises(RuntimeError, match="no job arrived within this episode's horizon_s"):
        env.action_masks()


def test_unknown_scenario_names_the_shipped_ones():
    with pytest.raises(ValueError, match="splitplace"):
        EdgeSplitEnv("no-such-scenario")


def _least_loaded_action():
    """The least-loaded heuristic of scripts/bench_env.py."""
    spec = importlib.util.spec_from_file_location("bench_env", BENCH_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.least_loaded_action


CALIBRATION_EPISODES = {"splitplace": 10, "mobile-edge": 6, "mobile-edge-training": 6, "mdi-jetson": 6, "large": 3}
"""Episodes pooled per scenario (as in docs/environment.md): one episode of splitplace has only ~150 jobs."""


def _violation_rate(env: EdgeSplitEnv, choose, episodes: int) -> float:
    """Share of the jobs resolved in ``episodes`` episodes (seeds 0, 1, ...) that missed their deadline."""
    met = resolved = 0
    for seed in range(episodes):
        env.reset(seed=seed)
        truncated = False
        while not truncated:
            _, _, _, truncated, info = env.step(choose(env))
            met += info["jobs_met_deadline"]
            resolved += info["jobs_finished"] + info["jobs_failed"]
    return 1.0 - met / resolved


@pytest.mark.parametrize("name", list_scenarios())
def test_deadlines_bind_and_least_loaded_beats_random_valid_actions(name):
    env = EdgeSplitEnv(name)
    episodes = CALIBRATION_EPISODES.get(name, 3)
    rng = np.random.default_rng(0)
    random_rate = _violation_rate(env, lambda e: e.actions.sample_valid(e.action_masks(), rng), episodes)
    heuristic_rate = _violation_rate(env, _least_loaded_action(), episodes)
    assert 0.1 <= random_rate <= 0.7
    assert heuristic_rate < random_rate - 0.1
