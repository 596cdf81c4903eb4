"""SplitPlace's comparison: the quick run's tables, headline and figures; the improvement's sign; config errors."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import reproduce  # noqa: E402

from agents.config import ConfigError  # noqa: E402
from reproductions.common import load_reproduction_config  # noqa: E402
from reproductions.registry import reproduction  # noqa: E402
from reproductions.splitplace import (  # noqa: E402
    CONFIG,
    METRIC_LABELS,
    PAPER_HEADLINE,
    PAPER_LABELS,
    improvement_percent,
)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[Path, CONFIG]:
    """The quick variant, run once for the tests of this module: (its output folder, its config)."""
    root = tmp_path_factory.mktemp("reproduce")
    reproduce.main(["splitplace", "--quick", "--output", str(root)])
    config = load_reproduction_config(CONFIG, reproduction("splitplace").config_path, quick=True)
    return root / "splitplace", config


def test_quick_tables_have_one_row_per_agent_and_finite_means_and_intervals(quick_run):
    output, config = quick_run
    expected_columns = ["agent", "preset", "n"] + [c for m in METRIC_LABELS for c in (m, f"{m}_ci95")]
    for variant in config.variants:
        rows = _read_csv(output / f"comparison_{variant.label}.csv")
        assert [row["preset"] for row in rows] == config.agents
        assert [row["agent"] for row in rows] == [PAPER_LABELS.get(a, a) for a in config.agents]
        assert list(rows[0]) == expected_columns
        for row in rows:
            assert int(row["n"]) == len(config.seeds)
            assert all(math.isfinite(float(row[column])) for column in expected_columns[3:]), row
        seeds = _read_csv(output / f"comparison_{variant.label}_seeds.csv")
        assert len(seeds) == len(config.agents) * len(config.seeds)
        markdown = (output / f"comparison_{variant.label}.md").read_text(encoding="utf-8")
        assert all(f"| {PAPER_LABELS.get(a, a)} | {a} |" in markdown for a in config.agents)
        assert (output / f"comparison_{variant.label}.png").stat().st_size > 10_000


def test_quick_headline_compares_the_proposed_agent_with_the_best_other_one(quick_run):
    output, config = quick_run
    rows = _read_csv(output / "headline.csv")
    assert [(row["variant"], row["metric"]) for row in rows] == [
        (variant.label, metric) for variant in config.variants for metric in PAPER_HEADLINE
    ]
    labels = {PAPER_LABELS.get(a, a) for a in config.agents}
    for row in rows:
        assert row["best_baseline"] in labels - {PAPER_LABELS[config.proposed]}
        comparison = {r["agent"]: r for r in _read_csv(output / f"comparison_{row['variant']}.csv")}
        assert float(row["baseline_mean"]) == pytest.approx(float(comparison[row["best_baseline"]][row["metric"]]))
        assert math.isfinite(float(row["difference"]))
    assert "up to 46 % lower" in (output / "headline.md").read_text(encoding="utf-8")


def test_a_result_is_reproduced_under_its_seed_and_reused_when_nothing_changed(quick_run, tmp_path):
    output, config = quick_run
    stored = json.loads((output / "plain" / "episodes" / "mc.json").read_text(encoding="utf-8"))
    reproduce.main(["splitplace", "agents=[mc]", "--quick", "--output", str(tmp_path)])  # overrides before options
    again = json.loads((tmp_path / "splitplace" / "plain" / "episodes" / "mc.json").read_text(encoding="utf-8"))
    strip = lambda rows: [{k: v for k, v in row.items() if k != "decision_time_ms"} for row in rows]  # noqa: E731
    assert strip(again["rows"]) == strip(stored["rows"])
    assert not (tmp_path / "splitplace" / "headline.csv").exists()  # no proposed agent, no headline
    store = tmp_path / "splitplace" / "tight" / "episodes" / "mc.json"
    written_ns = store.stat().st_mtime_ns
    reproduce.main(["splitplace", "agents=[mc]", "--quick", "--output", str(tmp_path)])
    assert store.stat().st_mtime_ns == written_ns  # same fingerprint: reused, not recomputed
    reproduce.main(["splitplace", "agents=[mc]", "reuse=false", "--quick", "--output", str(tmp_path)])
    assert store.stat().st_mtime_ns > written_ns


def test_an_agent_with_a_seed_runs_once_per_agent_seed_and_reports_their_mean(tmp_path):
    """random (has a seed) and mc (has none), agent seeds 0 and 1: random's rows are the per-evaluation-seed
    means of its two runs, which are the runs of agent seeds 0 and 1 alone; mc runs once."""
    common = ["--quick", "agents=[random, mc]", "max_steps=12", "wandb_mode=disabled"]
    reproduce.main(["splitplace", *common, "agent_seeds=[0, 1]", "--output", str(tmp_path / "both")])
    stored = json.loads((tmp_path / "both" / "splitplace" / "plain" / "episodes" / "random.json").read_text())
    runs = stored["runs_by_agent_seed"]
    assert len(runs) == 2 and runs[0] != runs[1]  # two agent seeds, different draws
    for index, row in enumerate(stored["rows"]):
        for metric in ("violation_rate", "average_reward", "energy_j"):
            assert row[metric] == pytest.approx((runs[0][index][metric] + runs[1][index][metric]) / 2)
    for seed in (0, 1):
        reproduce.main(["splitplace", *common, f"agent_seeds=[{seed}]", "--output", str(tmp_path / f"s{seed}")])
        alone = json.loads((tmp_path / f"s{seed}" / "splitplace" / "plain" / "episodes" / "random.json").read_text())
        assert [row["average_reward"] for row in alone["rows"]] == [run["average_reward"] for run in runs[seed]]
    mc = json.loads((tmp_path / "both" / "splitplace" / "plain" / "episodes" / "mc.json").read_text())
    assert len(mc["runs_by_agent_seed"]) == 1


@pytest.mark.parametrize(
    ("metric", "proposed", "reference", "expected"),
    [
        ("response_time_s", 54.0, 100.0, 46.0),  # lower is better: 46 % lower
        ("violation_rate", 0.62, 0.2, -210.0),  # more violations: negative
        ("accuracy", 0.927, 0.9, 3.0),  # higher is better
        ("average_reward", 0.44, 0.5, -12.0),
        ("violation_rate", 0.0, 0.0, 0.0),
    ],
)
def test_improvement_percent_is_positive_when_the_proposed_agent_is_better(metric, proposed, reference, expected):
    assert improvement_percent(metric, proposed, reference) == pytest.approx(expected)


def test_improvement_over_a_zero_reference_is_undefined():
    assert math.isnan(improvement_percent("violation_rate", 0.1, 0.0))


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("agent_settings.nope={train_steps: 1}", "agent_settings"),
        ("agents=[bandit, no_such_preset]", "no_such_preset"),
        ("agents=[bandit, bandit]", "agents"),
        ("variants.1.label=plain", "variants"),
        ("seeds=[1000, 1001]", "seeds"),
        ("agent_seeds=[0, 0]", "agent_seeds"),
        ("agent_seeds=[]", "agent_seeds"),
    ],
)
def test_bad_settings_are_errors_that_name_the_key(override, named):
    with pytest.raises(ConfigError, match=named):
        load_reproduction_config(CONFIG, reproduction("splitplace").config_path, overrides=[override])
