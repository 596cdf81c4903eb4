"""The local sweep runner expands W&B's sweep format like W&B's agent does."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import sweep  # noqa: E402


def test_grid_is_the_cartesian_product():
    combinations = sweep.grid({"a": {"values": [1, 2, 3]}, "b": {"value": "x"}, "c": {"values": [True, False]}})
    assert len(combinations) == 6
    assert {"a": 3, "b": "x", "c": False} in combinations


def test_random_draws_stay_in_range_and_are_seeded():
    parameters = {"lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2},
                  "k": {"distribution": "int_uniform", "min": 2, "max": 4}, "m": {"values": ["p", "q"]}}
    draws = sweep.random_draws(parameters, 50, seed=1)
    assert draws == sweep.random_draws(parameters, 50, seed=1)
    assert all(1e-4 <= d["lr"] <= 1e-2 and d["k"] in (2, 3, 4) and d["m"] in ("p", "q") for d in draws)


def test_command_macros_expand_like_wandb():
    definition = {"program": "scripts/train.py",
                  "command": ["${env}", "${interpreter}", "${program}", "--config", "c.yaml", "${args_no_hyphens}"]}
    command = sweep.command_line(definition, {"train.seed": 2}, ["output_dir=o"])
    assert command == [sys.executable, "scripts/train.py", "--config", "c.yaml", "train.seed=2", "output_dir=o"]
    default = sweep.command_line({"program": "p.py"}, {"x": 1}, [])
    assert default == [sys.executable, "p.py", "--x=1"]
