"""What every reproduction shares: its config, per-seed rows summarised as mean ± 95 % CI, tables, figures.

A reproduction config is a YAML mapping validated by a subclass of
:class:`ReproductionConfig`.  Its ``quick`` mapping holds ``key.sub: value``
overrides that ``--quick`` applies (few seeds, short runs) before validation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402
from pydantic import Field, ValidationError, model_validator  # noqa: E402

from agents.config import ConfigError, StrictModel, _format_errors, apply_override, read_yaml_mapping  # noqa: E402
from agents.evaluation import mean_ci95, write_csv  # noqa: E402

MIN_FULL_SEEDS = 5
"""The issue asks for confidence intervals over at least this many seeds in the full runs."""


class ReproductionConfig(StrictModel):
    """Keys every reproduction config has."""

    name: str
    seeds: list[int] = Field(min_length=1)
    quick: dict[str, Any] = Field(default_factory=dict, description="overrides applied by --quick")
    quick_mode: bool = Field(default=False, description="set by --quick; full runs need >= 5 seeds")

    @model_validator(mode="after")
    def _enough_seeds(self):
        if not self.quick_mode and len(self.seeds) < MIN_FULL_SEEDS:
            raise ValueError(f"seeds: a full run needs at least {MIN_FULL_SEEDS} seeds, got {len(self.seeds)}")
        return self


Config = TypeVar("Config", bound=ReproductionConfig)

BandwidthScales = Annotated[list[Annotated[float, Field(gt=0, allow_inf_nan=False)]],
                            Field(min_length=1, description="trace multipliers (finite, > 0), one link regime each")]
"""The ``bandwidth_scales`` key of the reproductions that sweep link regimes."""


def load_reproduction_config(model: type[Config], path: str | Path, quick: bool = False,
                             overrides: Sequence[str] = ()) -> Config:
    """Read ``path``, apply its ``quick`` overrides (if ``quick``) and then ``overrides``, validate with ``model``."""
    tree = read_yaml_mapping(path)
    if quick:
        quick_overrides = tree.get("quick") or {}
        if not isinstance(quick_overrides, dict):
            raise ConfigError(f"config {path}: quick must be a mapping of key.sub: value overrides")
        for key, value in quick_overrides.items():
            apply_override(tree, f"{key}={yaml.safe_dump(value, default_flow_style=True).strip()}")
        tree["quick_mode"] = True
    for override in overrides:
        apply_override(tree, override)
    try:
        return model.model_validate(tree)
    except ValidationError as error:
        raise ConfigError(_format_errors(error, str(path))) from None


def summarise(rows: Sequence[dict[str, Any]], by: Sequence[str], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Group per-seed ``rows`` by the ``by`` columns; per metric the mean and ``<metric>_ci95`` half-width.

    Groups keep the order of first appearance; ``n`` counts the rows of each group.
    """
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[key] for key in by), []).append(row)
    summary = []
    for key, members in groups.items():
        out: dict[str, Any] = dict(zip(by, key)) | {"n": len(members)}
        for metric in metrics:
            values = [float(member[metric]) for member in members if not math.isnan(float(member[metric]))]
            mean, half_width = mean_ci95(values) if values else (math.nan, math.nan)
            out[metric] = mean
            out[f"{metric}_ci95"] = half_width
        summary.append(out)
    return summary


def format_mean_ci(mean: float, half_width: float, digits: int = 3) -> str:
    """``mean ± half-width`` (just the mean where the half-width is NaN)."""
    if math.isnan(mean):
        return "n/a"
    if math.isnan(half_width):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {half_width:.{digits}f}"


def markdown_summary(summary: Sequence[dict[str, Any]], by: Sequence[str], metrics: dict[str, str],
                     digits: int = 3) -> str:
    """A Markdown table: the ``by`` columns, then one ``mean ± CI`` column per metric (header = its label)."""
    header = list(by) + list(metrics.values())
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary:
        cells = [str(row[key]) for key in by]
        cells += [format_mean_ci(row[m], row[f"{m}_ci95"], digits) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(folder: Path, stem: str, per_seed: Sequence[dict[str, Any]], by: Sequence[str],
                 metrics: dict[str, str], digits: int = 3, preamble: str = "") -> list[dict[str, Any]]:
    """Write ``<stem>_seeds.csv`` (raw rows), ``<stem>.csv`` (summary) and ``<stem>.md``; return the summary."""
    folder.mkdir(parents=True, exist_ok=True)
    summary = summarise(per_seed, by, list(metrics))
    write_csv(list(per_seed), folder / f"{stem}_seeds.csv")
    write_csv(summary, folder / f"{stem}.csv")
    table = markdown_summary(summary, by, metrics, digits)
    (folder / f"{stem}.md").write_text((preamble + "\n\n" if preamble else "") + table, encoding="utf-8")
    return summary


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
    """One panel per metric: a bar per row of ``summary`` with its 95 % CI as the error bar."""
    figure, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.4), squeeze=False)
    labels = [str(row[label_key]) for row in summary]
    for axis, (metric, label) in zip(axes[0], metrics.items()):
        means = [row[metric] for row in summary]
        errors = [0.0 if math.isnan(row[f"{metric}_ci95"]) else row[f"{metric}_ci95"] for row in summary]
        axis.bar(range(len(labels)), means, yerr=errors, capsize=3, color="tab:blue")
        axis.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
        axis.set_title(label, fontsize=9)
    figure.suptitle(title, fontsize=10)
    return figure
