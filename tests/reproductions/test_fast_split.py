"""Fast AI model splitting reproduction: its delay pieces, baselines, config checks and the quick run's tables."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from agents.config import ConfigError
from envs.cluster.traces import BandwidthTrace
from envs.dnn.mincut import DelayModel
from reproductions.common import load_reproduction_config
from reproductions.fast_split import (
    BASELINES,
    BEST_BASELINE,
    METHODS,
    PROPOSED,
    FastSplitConfig,
    ModelSetup,
    step_s,
    train_run,
)
from reproductions.registry import reproduction

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import reproduce  # noqa: E402

CONFIG_PATH = reproduction("fast-split").config_path


def _delay(bandwidth_mbps: float) -> DelayModel:
    return DelayModel(0.3, 200.0, bandwidth_mbps, "training", 16)


def _read(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def mobilenet():
    return ModelSetup("mobilenet_v2", _delay(1.0))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("reproduce")
    (output,) = reproduce.main(["fast-split", "--quick", "--output", str(root)])
    return output, load_reproduction_config(FastSplitConfig, CONFIG_PATH, quick=True)


def test_a_partitions_step_at_another_bandwidth_is_its_evaluated_delay(mobilenet):
    middle = mobilenet.prefixes[len(mobilenet.prefixes) // 2]
    for bandwidth_mbps in (0.5, 7.0, 300.0):
        expected = mobilenet.full.evaluate(middle.device_vertices, _delay(bandwidth_mbps)).delay_s
        assert step_s(middle, _delay(bandwidth_mbps)) == pytest.approx(expected, rel=1e-12)


def test_greedy_stops_at_the_first_prefix_whose_successor_is_no_faster(mobilenet):
    for bandwidth_mbps in (0.5, 5.0, 50.0, 500.0):
        delay = _delay(bandwidth_mbps)
        chosen = mobilenet.greedy(delay)
        index = next(i for i, prefix in enumerate(mobilenet.prefixes) if prefix is chosen)
        steps = [step_s(prefix, delay) for prefix in mobilenet.prefixes[: index + 2]]
        assert all(later < earlier for earlier, later in zip(steps[:index], steps[1: index + 1]))
        assert index + 1 == len(mobilenet.prefixes) or steps[index + 1] >= steps[index]


def test_at_a_constant_bandwidth_the_full_min_cut_is_never_slower_than_any_method(mobilenet):
    for bandwidth_mbps in (1.0, 8.0, 80.0):
        trace = BandwidthTrace("constant", "test", np.array([0.0, 1.0]), np.full(2, bandwidth_mbps))
        policies = mobilenet.policies(_delay(bandwidth_mbps))
        totals = {method: train_run(policy, trace, 0.0, _delay, 5)[0] for method, policy in policies.items()}
        assert set(totals) == set(METHODS)
        assert all(totals[PROPOSED] <= total * (1 + 1e-12) for total in totals.values())
        assert totals[PROPOSED] == pytest.approx(totals["fixed cut"])  # the mean is the constant


def test_the_policy_re_solves_and_counts_a_change_when_the_bandwidth_changes(mobilenet):
    trace = BandwidthTrace("two levels", "test", np.array([0.0, 1000.0]), np.array([0.5, 500.0]))
    policy = mobilenet.policies(_delay(1.0))[PROPOSED]
    total_s, changes = train_run(policy, trace, 999.0, _delay, 3)
    slow = mobilenet.full.solve(_delay(0.5))
    assert changes == 1 and total_s > step_s(slow, _delay(0.5))


@pytest.mark.parametrize("override, named", [
    ("bandwidth_scales=[0.0]", "bandwidth_scales"),
    ("device=pi5", "raspberry_pi_4_4gb"),
    ("models=[alexnet]", "resnet50"),
    ("trace_kinds=[lte]", "hsdpa"),
    ("iterations=0", "iterations"),
])
def test_config_errors_name_the_key_or_the_allowed_values(override, named):
    with pytest.raises(ConfigError, match=named):
        load_reproduction_config(FastSplitConfig, CONFIG_PATH, quick=True, overrides=[override])


def test_traces_with_outages_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="0 Mbit/s"):
        reproduce.main(["fast-split", "trace_kinds=[fcc]", "--quick", "--output", str(tmp_path)])


def test_quick_tables_have_a_row_per_scale_model_and_method_with_finite_numbers(quick_run):
    output, config = quick_run
    cells = len(config.bandwidth_scales) * len(config.models)
    delay = _read(output / "training_delay.csv")
    assert [(row["model"], row["method"]) for row in delay[: len(METHODS)]] == \
        [(config.models[0], method) for method in METHODS]
    assert len(delay) == cells * len(METHODS)
    reduction = _read(output / "delay_reduction.csv")
    assert len(reduction) == cells * (len(BASELINES) + 1)
    solver = _read(output / "solver_time.csv")
    assert [row["model"] for row in solver] == config.models
    for row in delay + reduction + solver:
        assert all(math.isfinite(float(row[key])) for key in row if key.endswith(("_s", "_pct", "_ms")))
    assert all(int(row["n"]) == len(config.seeds) for row in delay + reduction + solver)
    for stem in ("training_delay", "solver_time"):
        assert (output / f"{stem}.png").stat().st_size > 0
    assert "24.62-38.95 %" in (output / "delay_reduction.md").read_text()


def test_per_seed_reduction_against_the_best_baseline_is_the_smallest_one(quick_run):
    output, _ = quick_run
    groups: dict[tuple, dict[str, float]] = {}
    for row in _read(output / "delay_reduction_seeds.csv"):
        groups.setdefault((row["seed"], row["bandwidth_scale"], row["model"]), {})[row["versus"]] = \
            float(row["reduction_pct"])
    for reductions in groups.values():
        assert reductions[BEST_BASELINE] == pytest.approx(min(reductions[b] for b in BASELINES))


def test_block_wise_min_cut_is_never_faster_than_the_full_one(mobilenet):
    for bandwidth_mbps in (0.5, 5.0, 50.0, 500.0):
        delay = _delay(bandwidth_mbps)
        assert mobilenet.blockwise.solve(delay).delay_s >= mobilenet.full.solve(delay).delay_s * (1 - 1e-12)


def test_solver_table_sizes_follow_the_graphs(quick_run):
    output, _ = quick_run
    for row in _read(output / "solver_time_seeds.csv"):
        assert int(row["blocks"]) <= int(row["vertices"]) <= int(row["closed_partitions"])
        assert int(row["flow_units"]) <= int(row["vertices"])
