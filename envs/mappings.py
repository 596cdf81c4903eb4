"""Merging nested settings (YAML trees of scenario, update-scenario and experiment files)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


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
