"""Reproduce a source paper's comparison: tables (mean ± 95 % CI over seeds) and figures in results/<name>/.

Usage:
  python scripts/reproduce.py splitplace            # one comparison, full run
  python scripts/reproduce.py --all --quick         # every comparison, few seeds and short runs
  python scripts/reproduce.py fast-split --output /tmp/out seeds=[0,1,2,3,4]

Each comparison reads configs/experiments/reproductions/<module>.yaml (``--config`` to use another);
trailing ``key.sub=value`` overrides apply after ``--quick``'s own.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from agents.config import ConfigError  # noqa: E402
from reproductions.common import load_reproduction_config  # noqa: E402
from reproductions.registry import RESULTS_DIR, reproduction, reproduction_names  # noqa: E402


def run_one(name: str, quick: bool, output_root: Path, config_path: str | None, overrides: list[str]) -> Path:
    """Run the comparison ``name``; return its output folder."""
    entry = reproduction(name)
    module = entry.load_module()
    config = load_reproduction_config(module.CONFIG, config_path or entry.config_path, quick, overrides)
    output = output_root / name
    started = time.perf_counter()
    print(f"[{name}] {entry.summary} -> {output}{' (quick)' if quick else ''}")
    module.run(config, output)
    print(f"[{name}] done in {time.perf_counter() - started:.0f} s")
    return output


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", choices=reproduction_names(), help="which comparison")
    parser.add_argument("--all", action="store_true", help="run every comparison in turn")
    parser.add_argument("--quick", action="store_true", help="few seeds and short runs (checks, not results)")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR, help="root folder (default: results/)")
    parser.add_argument("--config", default=None, help="config file instead of the default (one name only)")
    parser.add_argument("overrides", nargs="*", help="config overrides key.sub=value")
    args = parser.parse_intermixed_args(argv)
    if args.all == (args.name is not None):
        parser.error("give exactly one of NAME or --all")
    if args.all and args.config:
        parser.error("--config needs a single NAME")
    torch.set_num_threads(1)
    names = reproduction_names() if args.all else [args.name]
    try:
        return [run_one(name, args.quick, args.output, args.config, args.overrides) for name in names]
    except ConfigError as error:
        sys.exit(str(error))


if __name__ == "__main__":
    main()
