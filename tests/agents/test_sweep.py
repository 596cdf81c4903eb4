"""The local sweep runner expands W&B's sweep format like W&B's agent does."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("content, message", [
    (None, "not found"),
    ("program: x\nparameters: [1, 2\n", "not valid YAML"),
    ("parameters: {a: {values: [1]}}\n", "needs a 'program'"),
    ("program: x\nparameters: {a: 3}\n", "'parameters' must map"),
    ("program: x\nmethod: bayes\nparameters: {a: {values: [1]}}\n", "method 'bayes'.*allowed: grid, random"),
    ("program: x\nmethod: random\nparameters: {a: {distribution: uniform}}\n", "parameter 'a'.*'min' and 'max'"),
    ("program: x\nparameters: {a: {min: 1, max: 2}}\n", "grid sweeps need 'value' or 'values'.*'a'"),
])
def test_a_bad_sweep_file_is_a_usage_error_naming_the_problem(content, message, tmp_path, capsys):
    path = tmp_path / "sweep.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as stopped:
        sweep.main([str(path), "--dry-run"])
    assert stopped.value.code == 2
    assert re.search(message, capsys.readouterr().err)
