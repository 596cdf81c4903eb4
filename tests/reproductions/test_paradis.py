"""ParaDiS reproduction: its plans and placements, config checks, and the quick run's tables."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import pytest

from agents.config import ConfigError
from envs.cluster.devices import load_device_catalog
from envs.dnn.accuracy import load_accuracy
from envs.dnn.planner import SplitPlanner
from reproductions.common import load_reproduction_config
from reproductions.paradis import METHODS, PARADIS, SINGLE, ModelPlans, ParadisConfig, switch_placement
from reproductions.registry import reproduction

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import reproduce  # noqa: E402

CONFIG_PATH = reproduction("paradis").config_path


def _read(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("reproduce")
    (output,) = reproduce.main(["paradis", "--quick", "--output", str(root)])
    return output, load_reproduction_config(ParadisConfig, CONFIG_PATH, quick=True)


def test_switches_use_the_most_sub_networks_that_fit_and_chains_one_fragment_per_device():
    plans = ModelPlans("resnet50", [1, 2, 3, 4], cut_candidates=5)
    sub_networks = {n: len(plan.fragments) - 1 for n, plan in plans.switches.items()}
    assert sub_networks == {1: 1, 2: 2, 3: 2, 4: 4}
    assert all(len(chain.fragments) == n for n, chains in plans.chains.items() for chain in chains)
    assert plans.chains[1] == [plans.whole] and len(plans.chains[3]) == math.comb(5, 2)
    switches = load_accuracy("resnet50").width_switches
    assert [plans.switches[n].accuracy for n in (2, 3, 4)] == [switches[2], switches[2], switches[4]]


def test_switch_placement_puts_each_sub_network_on_its_device_and_the_fusion_at_the_origin():
    switch = ModelPlans("mobilenet_v1", [4], cut_candidates=5).switches[4]
    assert switch_placement(switch) == [0, 1, 2, 3, 0]
    assert switch.fragments[-1].name == "fusion"


@pytest.mark.parametrize("override, named", [
    ("models=[vgg16]", "mobilenet_v1"),
    ("device_counts=[0,2]", "device_counts"),
    ("scenario_overrides={nodes: []}", "nodes"),
    ("bandwidth_scales=[-1.0]", "bandwidth_scales"),
    ("device_types=[pi5]", "jetson_nano"),
])
def test_config_errors_name_the_key_or_the_allowed_values(override, named):
    with pytest.raises(ConfigError, match=named):
        load_reproduction_config(ParadisConfig, CONFIG_PATH, quick=True, overrides=[override])


def test_quick_table_has_a_row_per_cluster_model_size_and_method_with_finite_numbers(quick_run):
    output, config = quick_run
    summary = _read(output / "paradis.csv")
    expected = len(config.device_types) * len(config.bandwidth_scales) * len(config.models) \
        * len(config.device_counts) * len(METHODS)
    assert len(summary) == expected
    assert [row["method"] for row in summary[: len(METHODS)]] == list(METHODS)
    for row in summary:
        assert int(row["n"]) == len(config.seeds)
        metrics = ("latency_ms", "mean_latency_ms", "speedup", "accuracy_pct")
        assert all(math.isfinite(float(row[key])) and float(row[key]) > 0 for key in metrics)
    for stem in ("paradis_latency", "paradis_accuracy"):
        assert (output / f"{stem}.png").stat().st_size > 0
    assert "derived" in (output / "paradis.md").read_text()


def test_single_device_latency_is_the_whole_models_compute_time_on_the_device(quick_run):
    output, _ = quick_run
    catalog = load_device_catalog()
    for row in _read(output / "paradis_seeds.csv"):
        if row["method"] == SINGLE:
            (whole,) = SplitPlanner.for_model(row["model"]).no_split().fragments
            expected_ms = 1e3 * whole.reference_latency_s / catalog[row["device"]].speed_factor
            assert float(row["latency_ms"]) == pytest.approx(expected_ms, rel=1e-9)
            assert float(row["speedup"]) == pytest.approx(1.0)


def test_faster_links_never_slow_a_switch_down(quick_run):
    output, config = quick_run
    low, high = min(config.bandwidth_scales), max(config.bandwidth_scales)
    rows = {(r["seed"], r["device"], float(r["bandwidth_scale"]), r["model"], r["devices"]): float(r["latency_ms"])
            for r in _read(output / "paradis_seeds.csv") if r["method"] == PARADIS}
    for (seed, device, scale, model, devices), latency_ms in rows.items():
        if scale == low:
            assert rows[seed, device, high, model, devices] <= latency_ms * (1 + 1e-9)
