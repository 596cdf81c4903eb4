"""Confidence intervals and the evaluation table."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from agents.evaluation import METRICS, EpisodeMetrics, markdown_table, mean_ci95, summary_rows, write_csv


def test_ci_is_the_student_t_interval():
    values = [0.61, 0.58, 0.66, 0.63, 0.59]
    mean, half_width = mean_ci95(values)
    sample = np.array(values)
    expected = stats.t.ppf(0.975, df=4) * sample.std(ddof=1) / math.sqrt(5)
    assert mean == pytest.approx(sample.mean())
    assert half_width == pytest.approx(expected)


def test_ci_edge_cases():
    assert math.isnan(mean_ci95([0.4])[1])
    assert mean_ci95([0.4, 0.4, 0.4]) == (pytest.approx(0.4), pytest.approx(0.0, abs=1e-12))
    with pytest.raises(ValueError):
        mean_ci95([])


def _episode(reward: float) -> EpisodeMetrics:
    return EpisodeMetrics(reward, 0.2, 30.0, 0.95, 12.0, 0.5, jobs=40)


def test_summary_rows_and_tables(tmp_path):
    rows = summary_rows({"a": [_episode(0.5), _episode(0.7)], "b": [_episode(0.2), _episode(0.2)]})
    assert [row["agent"] for row in rows] == ["a", "b"]
    assert rows[0]["average_reward"] == pytest.approx(0.6)
    assert rows[1]["average_reward_ci95"] == 0.0
    table = markdown_table(rows)
    assert table.count("\n") == 4  # header, rule, two agents
    assert "0.600 ±" in table
    for description in METRICS.values():
        assert description in table
    write_csv(rows, tmp_path / "t.csv")
    header = (tmp_path / "t.csv").read_text().splitlines()[0].split(",")
    assert {"average_reward", "average_reward_ci95", "decision_time_ms"} <= set(header)
