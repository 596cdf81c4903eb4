"""Settings files: reading one YAML mapping, and merging nested settings (scenario, update-scenario and
experiment files)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


def read_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """The YAML mapping in file ``path`` (an empty file: ``{}``); ValueError naming ``what`` and ``path`` when the
    file is missing, is not valid YAML or holds something other than a mapping."""
    try:
        with open(path, encoding="utf-8") as handle:
            tree = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ValueError(f"{what} file {path} not found") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{what} file {path} is not valid YAML: {error}") from None
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ValueError(f"{what} file {path} must be a mapping at the top level, got {type(tree).__name__}")
    return tree


def deep_merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied: where both hold a mapping under a key, the two are merged the same
    way; any other value of ``overrides`` replaces ``base``'s.  A fresh tree (neither argument changes)."""
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merged(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
