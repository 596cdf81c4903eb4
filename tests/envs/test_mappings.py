"""deep_merged: nested settings merged key by key, inputs untouched."""

from __future__ import annotations

import copy

from envs.mappings import deep_merged


def test_mappings_merge_key_by_key_at_every_depth_and_other_values_replace():
    base = {"a": {"b": {"c": 1, "d": 2}, "e": [1, 2]}, "f": 3}
    overrides = {"a": {"b": {"d": 20, "g": 4}, "e": [9]}, "f": {"h": 5}}
    assert deep_merged(base, overrides) == {"a": {"b": {"c": 1, "d": 20, "g": 4}, "e": [9]}, "f": {"h": 5}}


def test_neither_input_changes_and_the_result_shares_nothing_with_them():
    base, overrides = {"a": {"b": [1]}}, {"c": {"d": [2]}}
    before = copy.deepcopy((base, overrides))
    merged = deep_merged(base, overrides)
    merged["a"]["b"].append(3)
    merged["c"]["d"].append(4)
    assert (base, overrides) == before
