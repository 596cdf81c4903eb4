"""Run a W&B sweep definition locally, in parallel processes.

    python scripts/sweep.py configs/sweeps/bandit_policies.yaml [--workers 2] [--count N] [--dry-run]

The file is in W&B's own sweep format, so the same file also works with W&B's
agent on any number of machines (``wandb sweep <file>``, then ``wandb agent
<sweep id>``).  Here, ``method: grid`` runs every combination of the
``parameters`` (``value`` or ``values``); ``method: random`` draws ``--count``
combinations (``values`` uniformly, ``distribution: uniform | int_uniform |
log_uniform_values`` with ``min``/``max``), seeded by ``--seed``.  Each run
executes the sweep's ``command`` with W&B's macros expanded (``${env}``,
``${interpreter}``, ``${program}``, ``${args}``, ``${args_no_hyphens}``) and,
for ``scripts/train.py``-style programs, its own ``output_dir`` so runs do not
overwrite each other.  Logs go to ``<output>/run-<i>.log``.
"""

from __future__ import annotations

import argparse
import itertools
import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from agents.config import read_yaml_mapping

DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]
"""W&B's default sweep command."""


LOCAL_METHODS = ("grid", "random")
"""Sweep methods run here (W&B's ``bayes`` needs its agent)."""


def load_sweep(path: str) -> dict:
    """The sweep file as a dict; ValueError naming what is missing or malformed."""
    sweep = read_yaml_mapping(path, "sweep")
    for key in ("program", "parameters"):
        if key not in sweep:
            raise ValueError(f"sweep file {path} needs a {key!r} entry")
    parameters = sweep["parameters"]
    if not isinstance(parameters, dict) or not all(isinstance(spec, dict) for spec in parameters.values()):
        raise ValueError(f"sweep file {path}: 'parameters' must map each name to a mapping (value, values, ...)")
    method = sweep.get("method", "grid")
    if method not in LOCAL_METHODS:
        raise ValueError(f"method {method!r} is not run locally; allowed: {', '.join(LOCAL_METHODS)} "
                         f"(use W&B's agent for bayes)")
    return sweep


def grid(parameters: dict) -> list[dict]:
    """Every combination of the parameters' ``value``/``values``."""
    names, choices = [], []
    for name, spec in parameters.items():
        if "values" in spec:
            choices.append(list(spec["values"]))
        elif "value" in spec:
            choices.append([spec["value"]])
        else:
            raise ValueError(f"grid sweeps need 'value' or 'values' for parameter {name!r}, got {sorted(spec)}")
        names.append(name)
    return [dict(zip(names, combination)) for combination in itertools.product(*choices)]


def _draw(name: str, spec: dict, rng: np.random.Generator):
    if "values" in spec:
        return spec["values"][int(rng.integers(len(spec["values"])))]
    if "value" in spec:
        return spec["value"]
    distribution = spec.get("distribution", "uniform")
    if "min" not in spec or "max" not in spec:
        raise ValueError(f"parameter {name!r}: give 'values', 'value', or 'min' and 'max', got {sorted(spec)}")
    low, high = spec["min"], spec["max"]
    if distribution == "uniform":
        return float(rng.uniform(low, high))
    if distribution == "int_uniform":
        return int(rng.integers(low, high + 1))
    if distribution == "log_uniform_values":
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    raise ValueError(f"parameter {name!r}: distribution {distribution!r} is not supported locally; "
                     f"allowed: uniform, int_uniform, log_uniform_values")


def random_draws(parameters: dict, count: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{name: _draw(name, spec, rng) for name, spec in parameters.items()} for _ in range(count)]


def command_line(sweep: dict, values: dict, extra_args: list[str]) -> list[str]:
    """The sweep's command with W&B's macros expanded for one combination of values."""
    args = [f"--{name}={value}" for name, value in values.items()] + [f"--{a}" for a in extra_args]
    args_no_hyphens = [f"{name}={value}" for name, value in values.items()] + extra_args
    macros = {"${env}": [], "${interpreter}": [sys.executable], "${program}": [sweep["program"]],
              "${args}": args, "${args_no_hyphens}": args_no_hyphens}
    expanded = []
    for part in sweep.get("command", DEFAULT_COMMAND):
        expanded += macros.get(part, [part])
    return expanded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", help="sweep YAML in W&B's format")
    parser.add_argument("--workers", type=int, default=2, help="parallel processes")
    parser.add_argument("--count", type=int, default=None, help="runs (random method; caps grid runs)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random method's draws")
    parser.add_argument("--output", default=None, help="folder of run outputs and logs (default runs/sweeps/<name>)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    try:
        sweep = load_sweep(args.sweep)
        if sweep.get("method", "grid") == "grid":
            combinations = grid(sweep["parameters"])[: args.count]
        else:
            combinations = random_draws(sweep["parameters"], args.count or 10, args.seed)
    except ValueError as error:
        parser.error(str(error))
    output = Path(args.output or f"runs/sweeps/{sweep.get('name', Path(args.sweep).stem)}")
    commands = [command_line(sweep, values, [f"output_dir={output / f'run-{i}'}"])
                for i, values in enumerate(combinations)]
    if args.dry_run:
        print("\n".join(" ".join(command) for command in commands))
        return 0
    output.mkdir(parents=True, exist_ok=True)

    def run(index: int) -> int:
        with open(output / f"run-{index}.log", "w", encoding="utf-8") as log:
            return subprocess.run(commands[index], stdout=log, stderr=subprocess.STDOUT, check=False).returncode

    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        codes = list(pool.map(run, range(len(commands))))
    for index, (values, code) in enumerate(zip(combinations, codes)):
        print(f"run-{index} {'ok' if code == 0 else f'FAILED ({code})'}: {values}")
    return max(codes, default=0)


if __name__ == "__main__":
    sys.exit(main())
