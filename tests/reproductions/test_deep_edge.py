"""Deep-Edge's comparison: the quick run writes a finite table (failure case x scheduler) and a figure."""

import csv
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import reproduce  # noqa: E402


def test_quick_deep_edge_writes_a_finite_table_and_a_figure(tmp_path):
    [folder] = reproduce.main(["deep-edge", "--quick", "--output", str(tmp_path)])
    with open(folder / "deep_edge.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    schedulers = {"all_equal", "all_proportional", "deep_edge", "deep_edge_links", "cloud_only", "ppo"}
    assert {(row["failure"], row["scheduler"]) for row in rows} == {(f, s) for f in ("none", "injected")
                                                                     for s in schedulers}
    for row in rows:
        for metric in ("training_time_s", "background_misses", "reward", "reassigned_samples"):
            assert math.isfinite(float(row[metric])), (row["scheduler"], metric)
        assert float(row["training_time_s"]) > 0
    deep_edge = [row for row in rows if row["scheduler"] in ("deep_edge", "deep_edge_links")]
    assert all(float(row["background_misses"]) == 0 for row in deep_edge)
    assert (folder / "deep_edge.png").stat().st_size > 0
    assert (folder / "deep_edge.md").read_text().count("\n| ") == 13  # header + 2 failure cases x 6 schedulers
