"""Names of the reproductions and where their code and configs live."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "experiments" / "reproductions"
RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


@dataclass(frozen=True)
class Reproduction:
    """One paper's comparison: its module (``reproductions.<module>``) and default config."""

    name: str
    module: str
    summary: str

    @property
    def config_path(self) -> Path:
        return CONFIG_DIR / f"{self.module}.yaml"

    def load_module(self) -> ModuleType:
        return importlib.import_module(f"reproductions.{self.module}")


REPRODUCTIONS: dict[str, Reproduction] = {
    entry.name: entry
    for entry in [
        Reproduction("splitplace", "splitplace", "SplitPlace (Tuli et al.): M+D against its baselines"),
        Reproduction("fast-split", "fast_split", "Fast AI model splitting: min-cut split learning"),
        Reproduction("mdi", "mdi", "MDI with early exits on Jetson Nanos"),
        Reproduction("paradis", "paradis", "ParaDiS width-parallel switches"),
        Reproduction("deep-edge", "deep_edge", "Deep-Edge: re-training beside latency-critical tasks"),
    ]
}


def reproduction_names() -> list[str]:
    return list(REPRODUCTIONS)


def reproduction(name: str) -> Reproduction:
    """The reproduction called ``name``; a clear error listing the allowed names otherwise."""
    try:
        return REPRODUCTIONS[name]
    except KeyError:
        raise KeyError(f"unknown reproduction {name!r}; allowed: {reproduction_names()}") from None
