"""Solve time of the optimal device/server cut: min-cut (full and block-wise) against brute force.

For each model, every delay model of a grid (server speed ratios x bandwidths)
is solved ``--repeats`` times; the table shows the median milliseconds per
solve. Brute force evaluates every closed partition (enumerated once per model
beforehand; the enumeration time is shown apart). Usage::

    python scripts/bench_mincut.py [--models resnet50 mobilenet_v2] [--repeats 20] [--flow preflow_push]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

from networkx.algorithms import flow

from envs.dnn.mincut import CutProblem, DelayModel
from envs.dnn.profile_io import load_profile

SERVER_SPEED_RATIOS = (2.0, 10.0)
BANDWIDTHS_MBPS = (1.0, 10.0, 100.0, 1000.0)
FLOW_FUNCTIONS = ("preflow_push", "boykov_kolmogorov", "edmonds_karp", "dinitz", "shortest_augmenting_path")


def median_ms(run: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``run()`` over ``repeats`` calls, milliseconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def bench(model: str, blockwise: bool, repeats: int, flow_func: Callable) -> dict[str, float]:
    """Median min-cut and brute-force ms over the grid, plus problem sizes; checks both agree."""
    problem = CutProblem(load_profile(model), blockwise)
    start = time.perf_counter()
    partitions = len(problem.closed_partitions)
    enumeration_ms = 1e3 * (time.perf_counter() - start)
    min_cut_ms, brute_force_ms = [], []
    for ratio in SERVER_SPEED_RATIOS:
        for bandwidth_mbps in BANDWIDTHS_MBPS:
            delay = DelayModel(1.0, ratio, bandwidth_mbps)
            cut, best = problem.solve(delay, flow_func), problem.brute_force(delay)
            if abs(cut.delay_s - best.delay_s) > 1e-9 + 1e-9 * best.delay_s:
                raise AssertionError(f"{model}: min-cut {cut.delay_s} s != brute force {best.delay_s} s at {delay}")
            min_cut_ms.append(median_ms(lambda: problem.solve(delay, flow_func), repeats))
            brute_force_ms.append(median_ms(lambda: problem.brute_force(delay), repeats))
    return {
        "units": problem.unit_count,
        "flow_units": problem.flow_unit_count,
        "partitions": partitions,
        "min_cut_ms": statistics.median(min_cut_ms),
        "brute_force_ms": statistics.median(brute_force_ms),
        "enumeration_ms": enumeration_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet50", "mobilenet_v2"])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--flow", choices=FLOW_FUNCTIONS, default="preflow_push", help="networkx max-flow function")
    arguments = parser.parse_args()
    flow_func = getattr(flow, arguments.flow)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}; flow function {arguments.flow}; grid: server/device speed "
          f"{SERVER_SPEED_RATIOS} x bandwidth {BANDWIDTHS_MBPS} Mbps; median of {arguments.repeats} repeats")
    header = ("model", "graph", "units", "flow units", "closed partitions", "min-cut ms", "brute force ms",
              "brute/min-cut", "enumeration ms")
    print(" | ".join(header))
    for model in arguments.models:
        for blockwise in (False, True):
            row = bench(model, blockwise, arguments.repeats, flow_func)
            print(" | ".join([
                model, "block-wise" if blockwise else "full", str(row["units"]), str(row["flow_units"]),
                str(row["partitions"]), f"{row['min_cut_ms']:.2f}", f"{row['brute_force_ms']:.2f}",
                f"{row['brute_force_ms'] / row['min_cut_ms']:.2f}", f"{row['enumeration_ms']:.1f}",
            ]))


if __name__ == "__main__":
    main()
