"""Profile models into layer-graph JSON files and print a summary table.

    python scripts/profile_models.py                        # every zoo model
    python scripts/profile_models.py --models resnet18 vgg16
    python scripts/profile_models.py --list                 # table of the saved profiles, no profiling
    python scripts/profile_models.py --module torchvision.models:resnet34 --input-shape 1 3 224 224

Profiles are written to ``<output-dir>/<name>.json`` (default: the shipped
``envs/profiles/models``).  The torchvision models need the separate profiling
environment of ``docs/profiling.md``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

import networkx as nx
import torch
from torch import nn
from tqdm import tqdm

from envs.dnn.models.zoo import ZOO, ZooModel, zoo_model
from envs.dnn.profile_io import PROFILE_DIR, list_profiles, load_profile, save_profile
from envs.dnn.profiler import DEFAULT_REPEATS, profile_module

TABLE_COLUMNS = ("name", "vertices", "blocks", "params M", "MACs G", "latency ms")


def main() -> None:
    args = _parse_args()
    if args.list:
        graphs = [load_profile(name, args.output_dir) for name in list_profiles(args.output_dir)]
    else:
        jobs = [_custom_job(args)] if args.module else [_zoo_job(name) for name in args.models or sorted(ZOO)]
        graphs = []
        for name, build in tqdm(jobs, desc="profiling", unit="model"):
            module, example_input, source = build()
            graph = profile_module(module, example_input, name, repeats=args.repeats, source=source)
            path = save_profile(graph, Path(args.output_dir) / f"{name}.json")
            tqdm.write(f"wrote {path}")
            graphs.append(graph)
    print(format_table(graphs))


def format_table(graphs: list[nx.DiGraph]) -> str:
    """One row per profile: name, vertices, blocks, parameters (M), MACs (G), whole-model latency (ms)."""
    rows = [TABLE_COLUMNS] + [
        (
            graph.graph["model"],
            str(graph.number_of_nodes()),
            str(len(set(block for _, block in graph.nodes(data="block")))),
            f"{graph.graph['total_params'] / 1e6:.3f}",
            f"{graph.graph['total_macs'] / 1e9:.3f}",
            f"{graph.graph['total_latency_s'] * 1e3:.2f}",
        )
        for graph in graphs
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(TABLE_COLUMNS))]
    lines = ["  ".join(cell.ljust(width) if column == 0 else cell.rjust(width)
                       for column, (cell, width) in enumerate(zip(row, widths))) for row in rows]
    return "\n".join(lines[:1] + ["-" * len(lines[0])] + lines[1:])


Job = tuple[str, Callable[[], tuple[nn.Module, torch.Tensor, str]]]


def _zoo_job(name: str) -> Job:
    entry = zoo_model(name)
    return name, lambda: (entry.factory(), entry.example_input(), _zoo_source(entry))


def _zoo_source(entry: ZooModel) -> str:
    if not entry.needs_torchvision:
        return entry.source
    import torchvision

    return f"{entry.source}, torchvision {torchvision.__version__}"


def _custom_job(args: argparse.Namespace) -> Job:
    module_path, _, attribute = args.module.partition(":")
    name = args.name or attribute

    def build() -> tuple[nn.Module, torch.Tensor, str]:
        factory = getattr(importlib.import_module(module_path), attribute)
        generator = torch.Generator().manual_seed(0)
        return factory(), torch.randn(args.input_shape, generator=generator), f"{args.module}()"

    return name, build


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=sorted(ZOO), metavar="NAME",
                        help=f"zoo models to profile (default: all): {', '.join(sorted(ZOO))}")
    parser.add_argument("--module", metavar="PACKAGE.MODULE:FACTORY",
                        help="profile any module instead: FACTORY() must return an nn.Module")
    parser.add_argument("--input-shape", nargs="+", type=int, metavar="DIM",
                        help="input shape with --module, batch first, e.g. 1 3 224 224")
    parser.add_argument("--name", help="profile name with --module (default: FACTORY)")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS,
                        help=f"timed runs per vertex and per model, median kept (default {DEFAULT_REPEATS})")
    parser.add_argument("--output-dir", default=str(PROFILE_DIR), help="where profiles are written and listed")
    parser.add_argument("--list", action="store_true", help="print the table of saved profiles and exit")
    args = parser.parse_args()
    if args.module:
        if args.models:
            parser.error("give either --models or --module, not both")
        if ":" not in args.module:
            parser.error(f"--module {args.module!r} must look like package.module:factory")
        if not args.input_shape:
            parser.error("--module needs --input-shape, e.g. --input-shape 1 3 224 224")
    elif not args.list:
        missing = [name for name in args.models or sorted(ZOO) if ZOO[name].needs_torchvision]
        if missing and importlib.util.find_spec("torchvision") is None:
            parser.error(f"{missing} need torchvision, which is not installed here; profile them in the "
                         "environment of docs/profiling.md or leave them out with --models")
    return args


if __name__ == "__main__":
    main()
