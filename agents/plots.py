"""Figures of evaluation summaries (matplotlib, no display needed): bar panels with 95 % CIs, saved as PNG."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TITLE_WIDTH_CHARS = 40
"""Panel titles longer than this wrap onto further lines."""


def save_figure(figure: plt.Figure, folder: Path, stem: str) -> Path:
    """Save ``figure`` as ``<stem>.png`` (150 dpi) and close it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.png"
    figure.tight_layout()
    figure.savefig(path, dpi=150)
    plt.close(figure)
    return path


def bar_chart_with_ci(summary: Sequence[dict[str, Any]], label_key: str, metrics: dict[str, str],
                      title: str) -> plt.Figure:
    """One panel per metric: a bar per row of ``summary`` (``<metric>`` and ``<metric>_ci95`` keys, as
    :func:`agents.evaluation.summary_rows` gives) with its 95 % CI as the error bar."""
    figure, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.4), squeeze=False)
    labels = [str(row[label_key]) for row in summary]
    for axis, (metric, label) in zip(axes[0], metrics.items()):
        means = [row[metric] for row in summary]
        errors = [0.0 if math.isnan(row[f"{metric}_ci95"]) else row[f"{metric}_ci95"] for row in summary]
        axis.bar(range(len(labels)), means, yerr=errors, capsize=3, color="tab:blue")
        axis.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
        axis.set_title(textwrap.fill(label, TITLE_WIDTH_CHARS), fontsize=9)
    figure.suptitle(title, fontsize=10)
    return figure
