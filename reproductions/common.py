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

import yaml
from pydantic import Field, ValidationError, model_validator

from agents.config import ConfigError, StrictModel, _format_errors, apply_override, read_yaml_mapping
from agents.evaluation import mean_ci95, write_csv

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


