"""Device catalog: loading, sources, power curves, headroom rule, speed calibration, validation."""

import copy

import networkx as nx
import numpy as np
import pytest
import yaml

from envs.cluster.devices import (
    CATALOG_PATH,
    HEADROOM_THRESHOLD_BYTES,
    UTILISATION_GRID,
    load_device_catalog,
    usable_memory_bytes,
)
from envs.dnn.fragments import layer_latency_sum_s
from envs.dnn.profile_io import list_profiles, load_profile, save_profile

SHIPPED = yaml.safe_load(CATALOG_PATH.read_text())
REQUIRED_DEVICES = {
    "raspberry_pi_4_4gb",
    "jetson_nano",
    "jetson_xavier_nx",
    "intel_nuc_14_pro",
    "edge_server_t4",
    "azure_b2ms",
    "azure_e2as_v4",
    "azure_b4ms",
    "azure_e4as_v4",
}
CALIBRATION_MODELS = sorted(
    {
        spec["speed"]["published_latency"]["model"]
        for spec in SHIPPED["devices"].values()
        if "published_latency" in spec["speed"]
    }
)
SHIPPED_PROFILES_PRESENT = set(CALIBRATION_MODELS) <= set(list_profiles())
FAKE_REFERENCE_LATENCY_S = {"resnet18": 0.05, "resnet50": 0.2}


def _fake_profiles(directory):
    """Minimal profiles whose per-vertex latencies add up to a known figure, standing in for the shipped ones
    (their whole-model ``total_latency_s`` differs on purpose: calibration must use the sum)."""
    for model in CALIBRATION_MODELS:
        graph = nx.DiGraph(model=model, total_latency_s=3 * FAKE_REFERENCE_LATENCY_S[model], machine="test machine")
        graph.add_node("x", op="input", latency_s=0.0)
        graph.add_node("layer", op="conv2d", latency_s=FAKE_REFERENCE_LATENCY_S[model])
        graph.add_edge("x", "layer")
        save_profile(graph, directory / f"{model}.json")
    return directory


@pytest.fixture(scope="module")
def fake_profile_dir(tmp_path_factory):
    return _fake_profiles(tmp_path_factory.mktemp("profiles"))


@pytest.fixture(scope="module")
def catalog(fake_profile_dir):
    """The shipped catalog, calibrated against stand-in profiles (shape checks need no real profile)."""
    return load_device_catalog(profile_directory=fake_profile_dir)


def _write_catalog(tmp_path, devices):
    path = tmp_path / "devices.yaml"
    path.write_text(yaml.safe_dump({"schema_version": 1, "devices": devices}))
    return str(path)


def _valid_device():
    return copy.deepcopy(SHIPPED["devices"]["azure_b2ms"])


def test_catalog_holds_the_required_devices(catalog):
    assert REQUIRED_DEVICES <= set(catalog)
    for name, device in catalog.items():
        assert device.name == name
        assert device.cores >= 1 and device.memory_bytes > 0
        assert 0 < device.usable_memory_bytes < device.memory_bytes
        assert device.speed_factor > 0


def test_every_number_in_the_yaml_has_a_source():
    def walk(node, where):
        if isinstance(node, dict):
            if "value" in node or "latency_s" in node:
                assert isinstance(node.get("source"), str) and node["source"].strip(), where
            for key, child in node.items():
                walk(child, f"{where}.{key}")
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            assert where.endswith((".value", ".latency_s")) or where == "catalog.schema_version", where

    walk(SHIPPED, "catalog")


def test_loaded_devices_keep_a_source_for_every_figure(catalog):
    for device in catalog.values():
        assert {"cores", "memory", "power_curve", "speed_factor"} <= set(device.sources)
        assert all(text.strip() for text in device.sources.values())


def test_azure_power_curves_are_splitplace_spec_curves(catalog):
    two_vcpu = [75.2, 78.2, 84.1, 89.6, 94.9, 100, 105, 109, 112, 115, 117]
    four_vcpu = [71.0, 77.9, 83.4, 89.2, 95.6, 102, 108, 114, 119, 123, 126]
    for name, cores, memory_gib, curve in [
        ("azure_b2ms", 2, 8, two_vcpu),
        ("azure_e2as_v4", 2, 16, two_vcpu),
        ("azure_b4ms", 4, 16, four_vcpu),
        ("azure_e4as_v4", 4, 32, four_vcpu),
    ]:
        device = catalog[name]
        assert device.power_curve_w == pytest.approx(curve)
        assert device.cores == cores and device.memory_bytes == memory_gib * 2**30


def test_power_curves_are_monotone_and_interpolation_is_exact(catalog):
    for device in catalog.values():
        curve = np.array(device.power_curve_w)
        assert np.all(np.diff(curve) >= 0), device.name
        for utilisation, watts in zip(UTILISATION_GRID, curve):
            assert device.power_w(float(utilisation)) == pytest.approx(watts, abs=1e-12)
        assert device.power_w(0.25) == pytest.approx(0.5 * (curve[2] + curve[3]))


def test_idle_busy_devices_get_a_linear_curve(catalog):
    spec = SHIPPED["devices"]["raspberry_pi_4_4gb"]["power"]
    curve = catalog["raspberry_pi_4_4gb"].power_curve_w
    assert curve[0] == pytest.approx(spec["idle_w"]["value"])
    assert curve[-1] == pytest.approx(spec["busy_w"]["value"])
    assert np.allclose(np.diff(curve), np.diff(curve)[0])


@pytest.mark.parametrize("utilisation", [-0.01, 1.01, float("nan")])
def test_power_outside_unit_interval_raises(catalog, utilisation):
    with pytest.raises(ValueError, match="utilisation"):
        catalog["jetson_nano"].power_w(utilisation)


def test_headroom_rule_switches_at_4000_mb():
    below = HEADROOM_THRESHOLD_BYTES - 1
    assert HEADROOM_THRESHOLD_BYTES == 4000 * 10**6
    assert usable_memory_bytes(below) == int(0.6 * below)
    assert usable_memory_bytes(HEADROOM_THRESHOLD_BYTES) == int(0.8 * HEADROOM_THRESHOLD_BYTES)
    assert usable_memory_bytes(2 * 2**30) == int(0.6 * 2 * 2**30)
    with pytest.raises(ValueError):
        usable_memory_bytes(-1)


def test_loaded_devices_apply_the_headroom_rule(catalog):
    for device in catalog.values():
        assert device.usable_memory_bytes == usable_memory_bytes(device.memory_bytes)


def test_speed_factor_is_reference_over_published_latency(catalog):
    for name, spec in SHIPPED["devices"].items():
        speed = spec["speed"]
        if "published_latency" in speed:
            published = speed["published_latency"]
            expected = FAKE_REFERENCE_LATENCY_S[published["model"]] / published["latency_s"]
        else:
            expected = speed["speed_factor"]["value"]
        assert catalog[name].speed_factor == pytest.approx(expected), name


@pytest.mark.skipif(not SHIPPED_PROFILES_PRESENT, reason=f"shipped profiles {CALIBRATION_MODELS} not generated yet")
def test_shipped_speed_factors_use_the_shipped_profiles():
    catalog = load_device_catalog()
    for name, spec in SHIPPED["devices"].items():
        published = spec["speed"].get("published_latency")
        if published is None:
            continue
        reference_s = layer_latency_sum_s(load_profile(published["model"]))
        assert catalog[name].speed_factor == pytest.approx(reference_s / published["latency_s"]), name
        assert published["model"] in catalog[name].sources["speed_factor"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(colour="blue"), r"device 'node': unknown key\(s\) \['colour'\]"),
        (lambda d: d.pop("cores"), r"device 'node': missing key\(s\) \['cores'\]"),
        (lambda d: d["cores"].update(unit="vCPU"), r"device 'node': unknown key\(s\) \['unit'\] in cores"),
        (lambda d: d["memory_gib"].pop("source"), r"device 'node': missing key\(s\) \['source'\] in memory_gib"),
        (lambda d: d["power"].update(idle_w={"value": 1, "source": "x"}), r"unknown key\(s\) \['idle_w'\] in power"),
        (lambda d: d.update(power={"idle_w": {"value": 1, "source": "x"}}), r"missing key\(s\) \['busy_w'\] in power"),
        (lambda d: d.update(power={}), "power must have the keys of one of"),
        (lambda d: d["power"]["curve_w"].update(value=[1.0] * 10), "needs 11 points"),
        (lambda d: d["power"]["curve_w"].update(value=[5.0] + [1.0] * 10), "must not decrease"),
        (lambda d: d["cores"].update(value=2.5), "whole number"),
        (lambda d: d["cores"].update(value=0), "cores.value must be a finite number > 0"),
        (lambda d: d["cores"].update(source="  "), "cores.source must be a non-empty string"),
        (lambda d: d["speed"]["speed_factor"].update(value=-1), "speed_factor.value must be"),
    ],
)
def test_invalid_entries_name_the_device_and_key(tmp_path, fake_profile_dir, edit, message):
    device = _valid_device()
    edit(device)
    with pytest.raises(ValueError, match=message):
        load_device_catalog(_write_catalog(tmp_path, {"node": device}), profile_directory=fake_profile_dir)


def test_calibration_model_must_be_a_shipped_profile(tmp_path, fake_profile_dir):
    device = _valid_device()
    device["speed"] = {"published_latency": {"model": "alexnet", "latency_s": 0.01, "source": "x"}}
    with pytest.raises(ValueError, match=r"'alexnet' is not a shipped profile; available: \['resnet18', 'resnet50'\]"):
        load_device_catalog(_write_catalog(tmp_path, {"node": device}), profile_directory=fake_profile_dir)


def test_catalog_top_level_is_checked(tmp_path):
    path = tmp_path / "devices.yaml"
    path.write_text(yaml.safe_dump({"schema_version": 2, "devices": {"node": _valid_device()}}))
    with pytest.raises(ValueError, match="schema_version"):
        load_device_catalog(str(path))
    path.write_text(yaml.safe_dump({"devices": {"node": _valid_device()}, "extra": 1}))
    with pytest.raises(ValueError, match="top level"):
        load_device_catalog(str(path))
