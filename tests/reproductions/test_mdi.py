"""MDI-Exit reproduction: its arms, fixed plans, config checks, and the quick run's tables."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from agents.config import ConfigError
from envs.scenarios import load_scenario
from reproductions.common import load_reproduction_config
from reproductions.mdi import ARMS, MdiConfig, fixed_accuracy_plan
from reproductions.registry import reproduction

CONFIG_PATH = reproduction("mdi").config_path


@pytest.fixture(scope="module")
def plans():
    return load_scenario("mdi-jetson").plans


def _read(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_mdi_jetson_offers_every_arm_plans_of_each_app(plans):
    for app_plans in plans.values():
        for arm in ARMS:
            offered = [plan for plan in app_plans if arm.offers(plan)]
            assert offered and all(plan.family == "early_exit" for plan in offered)
            if not arm.early_exits:
                assert len(offered) == 1 and offered[0].exit_probability[:-1] == (0.0,) * 3


def test_compressed_and_plain_arms_split_the_early_exit_plans(plans):
    for app_plans in plans.values():
        early_exit = [plan for plan in app_plans if plan.family == "early_exit"]
        with_exits = [arm for arm in ARMS if arm.early_exits]
        assert sorted(plan.variant for arm in with_exits for plan in early_exit if arm.offers(plan)) == \
            sorted(plan.variant for plan in early_exit)


@pytest.mark.parametrize("arm", ARMS, ids=lambda arm: arm.label)
def test_fixed_plan_is_the_most_exiting_one_within_the_accuracy_drop(plans, arm):
    app_plans = plans["mobilenet_v2"]
    unsplit = next(plan for plan in app_plans if plan.variant == "whole").accuracy
    chosen = fixed_accuracy_plan(app_plans, arm, 0.01)
    assert arm.offers(chosen) and chosen.accuracy >= unsplit - 0.01
    assert all(plan.accuracy >= chosen.accuracy for plan in app_plans
               if arm.offers(plan) and plan.accuracy >= unsplit - 0.01)


def test_an_unreachable_accuracy_names_the_arm_and_the_key(plans):
    compressed = next(arm for arm in ARMS if arm.compression)
    with pytest.raises(ValueError, match="accuracy_drop=0.0: arm 'MDI \\+ compression'"):
        fixed_accuracy_plan(plans["resnet50"], compressed, 0.0)


@pytest.mark.parametrize(("override", "named"), [
    ("scenario=nowhere", "unknown scenario 'nowhere'"),
    ("agent=nobody", "unknown agent preset 'nobody'"),
    ("arrival_rates_per_s=[0.2,-1]", "arrival rates must be > 0"),
    ("scenario_config.arrivals={rate_per_s: 2.0}", "set by arrival_rates_per_s"),
    ("seeds=[1,2]", "at least 5 seeds"),
])
def test_config_errors_name_the_key(override, named):
    with pytest.raises(ConfigError, match=named):
        load_reproduction_config(MdiConfig, CONFIG_PATH, overrides=[override])


def test_quick_run_writes_finite_tables_and_figures(tmp_path):
    import scripts.reproduce as reproduce

    (output,) = reproduce.main(["mdi", "--quick", "--output", str(tmp_path)])
    config = load_reproduction_config(MdiConfig, CONFIG_PATH, quick=True)
    labels = [arm.label for arm in ARMS]
    throughput = _read(output / "throughput_fixed_accuracy.csv")
    assert [(row["arm"], float(row["rate_per_s"])) for row in throughput] == \
        [(label, rate) for rate in config.arrival_rates_per_s for label in labels]
    accuracy = _read(output / "accuracy_fixed_rate.csv")
    assert [row["arm"] for row in accuracy] == labels
    for rows, metrics in ((throughput, ("items_per_s", "on_time_items_per_s", "accuracy")),
                          (accuracy, ("accuracy", "timely_accuracy", "violation_rate", "items_per_s"))):
        for row in rows:
            assert int(row["n"]) == len(config.seeds)
            assert all(math.isfinite(float(row[metric])) for metric in metrics)
            assert 0.0 <= float(row["accuracy"]) <= 1.0
    assert len(_read(output / "fixed_plans.csv")) == len(ARMS) * 2
    for stem in ("throughput_fixed_accuracy", "accuracy_fixed_rate"):
        assert (output / f"{stem}.png").stat().st_size > 0 and (output / f"{stem}.md").read_text().count("|") > 10
