"""Fast AI model splitting (Li et al., arXiv 2507.01041): split-learning training delay of the min-cut split.

A weak device trains a model together with an edge server (split learning):
per mini-batch the device runs the layers on its side forward and backward,
the cut activations go up and their gradients come down over the current
bandwidth of a held-out trace. Each seed draws one trace and a start point;
every method then trains ``iterations`` mini-batches, each at the bandwidth the
trace has when the iteration starts, so a faster method also reaches other
parts of the trace. Delays come from :class:`envs.dnn.mincut.DelayModel`
(objective ``training``) and :meth:`envs.dnn.mincut.CutProblem.evaluate`.

Methods: the optimal min-cut partition re-solved whenever the bandwidth
changes (full DAG, and block-wise), device-only, server-only, a fixed cut
(optimal at the trace's mean bandwidth, never changed) and a greedy
layer-by-layer search (from server-only, move the cut one cut point later while
the delay falls; re-run when the bandwidth changes).

A second table times the solvers per model: min-cut on the full DAG, block-wise
min-cut, and brute force over every closed partition of the full DAG.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from pydantic import Field, field_validator
from tqdm import tqdm

from agents.plots import save_figure
from envs.cluster.devices import load_device_catalog
from envs.cluster.network import step_means_mbps
from envs.cluster.traces import SPLITS, TRACE_KINDS, BandwidthTrace, list_traces, load_trace
from envs.dnn.cut_points import execution_order, input_vertex, valid_cut_points
from envs.dnn.mincut import CutProblem, CutResult, DelayModel
from envs.dnn.profile_io import list_profiles, load_profile
from reproductions.common import BandwidthScales, ReproductionConfig, write_tables

PAPER = "Li et al., 'Fast AI Model Splitting over Edge Networks', arXiv 2507.01041"
PAPER_DELAY_REDUCTION = "24.62-38.95 % lower training delay than the baselines in dynamic edge networks"
PAPER_SOLVER_SPEEDUP = "optimal split in milliseconds, up to 13x lower solver running time"

PROPOSED = "min-cut (full DAG)"
BLOCKWISE = "min-cut (block-wise)"
BASELINES = ("device-only", "server-only", "fixed cut", "greedy")
METHODS = (PROPOSED, BLOCKWISE) + BASELINES
BEST_BASELINE = "best baseline"


class FastSplitConfig(ReproductionConfig):
    """configs/experiments/reproductions/fast_split.yaml."""

    models: list[str] = Field(min_length=1, description="shipped model profiles")
    device: str = Field(description="the weak device (devices.yaml)")
    server: str = Field(description="the edge server (devices.yaml)")
    trace_split: str = Field(default="test", description="held-out traces by default")
    trace_kinds: list[str] = Field(default_factory=lambda: ["hsdpa"], min_length=1)
    bandwidth_scales: BandwidthScales
    batch_size: int = Field(default=16, ge=1, description="items per mini-batch")
    backward_factor: float = Field(default=2.0, ge=0, description="backward / forward time of a layer")
    iterations: int = Field(default=100, ge=1, description="mini-batches per run")
    timing_bandwidths: int = Field(default=10, ge=1, description="trace samples each solver is timed at, per seed")
    timing_repeats: int = Field(default=5, ge=1, description="solves per bandwidth; the median counts")

    @field_validator("models")
    @classmethod
    def _known_models(cls, models: list[str]) -> list[str]:
        unknown = [m for m in models if m not in list_profiles()]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; allowed: {list_profiles()}")
        return models

    @field_validator("device", "server")
    @classmethod
    def _known_device(cls, name: str) -> str:
        catalog = load_device_catalog()
        if name not in catalog:
            raise ValueError(f"unknown device {name!r}; allowed: {sorted(catalog)}")
        return name

    @field_validator("trace_split")
    @classmethod
    def _known_split(cls, split: str) -> str:
        if split not in SPLITS:
            raise ValueError(f"unknown trace split {split!r}; allowed: {list(SPLITS)}")
        return split

    @field_validator("trace_kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        unknown = [k for k in kinds if k not in TRACE_KINDS]
        if unknown:
            raise ValueError(f"unknown trace kind(s) {unknown}; allowed: {list(TRACE_KINDS)}")
        return kinds


CONFIG = FastSplitConfig

Policy = Callable[[DelayModel], CutResult]
"""A method: the delay model at the current bandwidth -> the partition it runs (as a :class:`CutResult`)."""


def step_s(partition: CutResult, delay: DelayModel) -> float:
    """Seconds of one step of ``partition`` at ``delay``'s bandwidth: its compute seconds (which do not
    depend on the bandwidth, so ``partition`` may come from any bandwidth with the same speeds and batch)
    plus the time its cut bytes (and their gradients) take at ``delay``."""
    return partition.device_compute_s + partition.server_compute_s + delay.transfer_time_s(partition.cut_bytes, partition.gradient_bytes)


class ModelSetup:
    """One model's partition problems and the partitions the baselines use, for one delay setting.

    ``reference`` fixes the speeds, objective and batch; its bandwidth does not matter.
    """

    def __init__(self, model: str, reference: DelayModel):
        graph = load_profile(model)
        self.full = CutProblem(graph)
        self.blockwise = CutProblem(graph, blockwise=True)
        order = execution_order(graph)
        prefixes = [[input_vertex(graph)]] + [order[: order.index(c) + 1] for c in valid_cut_points(graph)] + [order]
        self.prefixes = [self.full.evaluate(prefix, reference) for prefix in prefixes]
        """Partitions the greedy search tries, in its order: cut after the input (server-only), after each
        cut point, after the output (device-only)."""

    def greedy(self, delay: DelayModel) -> CutResult:
        """Move the cut one cut point later while the delay falls (from server-only)."""
        best = self.prefixes[0]
        for prefix in self.prefixes[1:]:
            if step_s(prefix, delay) >= step_s(best, delay):
                break
            best = prefix
        return best

    def policies(self, mean_delay: DelayModel) -> dict[str, Policy]:
        """Every method of :data:`METHODS`; ``mean_delay`` is the delay model at the trace's mean bandwidth."""
        fixed = self.full.solve(mean_delay)
        server_only, device_only = self.prefixes[0], self.prefixes[-1]
        return {
            PROPOSED: _ResolvedOnChange(self.full.solve),
            BLOCKWISE: _ResolvedOnChange(self.blockwise.solve),
            "device-only": lambda delay: device_only,
            "server-only": lambda delay: server_only,
            "fixed cut": lambda delay: fixed,
            "greedy": _ResolvedOnChange(self.greedy),
        }


class _ResolvedOnChange:
    """A policy that calls ``choose`` again only when the bandwidth differs from the last call's."""

    def __init__(self, choose: Policy):
        self._choose = choose
        self._bandwidth_mbps: float | None = None
        self._choice: CutResult | None = None

    def __call__(self, delay: DelayModel) -> CutResult:
        if delay.bandwidth_mbps != self._bandwidth_mbps:
            self._bandwidth_mbps, self._choice = delay.bandwidth_mbps, self._choose(delay)
        return self._choice


def _trace_pool(config: FastSplitConfig) -> list[BandwidthTrace]:
    """The traces seeds draw from; a trace with an outage (0 Mbit/s) is an error."""
    names = list_traces(config.trace_split, kinds=tuple(config.trace_kinds))
    traces = [load_trace(name, config.trace_split) for name in names]
    if not traces:
        raise ValueError(f"trace_split {config.trace_split!r} has no trace of the kinds {config.trace_kinds}")
    stalled = [trace.name for trace in traces if trace.bandwidth_mbps.min() <= 0]
    if stalled:
        raise ValueError(f"traces {stalled[:3]} (and {max(0, len(stalled) - 3)} more) have 0 Mbit/s samples; a "
                         f"training step needs a positive bandwidth: choose trace_kinds without outages "
                         f"(the HSDPA traces have none)")
    return traces


def train_run(policy: Policy, trace: BandwidthTrace, start_s: float, delay_at: Callable[[float], DelayModel],
              iterations: int) -> tuple[float, int]:
    """Train ``iterations`` mini-batches from ``start_s`` on ``trace``; each takes the delay of the
    partition ``policy`` picks at the bandwidth when it starts. Returns (seconds, partition changes)."""
    time_s, changes, previous = start_s, 0, None
    for _ in range(iterations):
        delay = delay_at(trace.bandwidth_at(time_s))
        partition = policy(delay)
        changes += previous is not None and partition.device_vertices != previous.device_vertices
        previous = partition
        time_s += step_s(partition, delay)
    return time_s - start_s, changes


def _median_ms(solve: Callable[[], object], repeats: int) -> float:
    times_s = []
    for _ in range(repeats):
        started = time.perf_counter()
        solve()
        times_s.append(time.perf_counter() - started)
    return 1e3 * float(np.median(times_s))


def _timed(build: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    built = build()
    return built, 1e3 * (time.perf_counter() - started)


def solver_times(model: str, delays: Sequence[DelayModel], repeats: int) -> dict[str, float]:
    """Setup and median solve milliseconds of the three solvers at ``delays``; checks min-cut = brute force."""
    graph = load_profile(model)
    full, full_setup_ms = _timed(lambda: CutProblem(graph))
    blockwise, blockwise_setup_ms = _timed(lambda: CutProblem(graph, blockwise=True))
    partitions, brute_setup_ms = _timed(lambda: full.closed_partitions)
    solve_ms = {"full": [], "blockwise": [], "brute": []}
    for delay in delays:
        cut, best = full.solve(delay), full.brute_force(delay)
        if not math.isclose(cut.delay_s, best.delay_s, rel_tol=1e-9, abs_tol=1e-9):
            raise AssertionError(f"{model}: min-cut {cut.delay_s} s != brute force {best.delay_s} s at {delay}")
        solve_ms["full"].append(_median_ms(lambda: full.solve(delay), repeats))
        solve_ms["blockwise"].append(_median_ms(lambda: blockwise.solve(delay), repeats))
        solve_ms["brute"].append(_median_ms(lambda: full.brute_force(delay), repeats))
    full_ms, blockwise_ms, brute_ms = (float(np.median(solve_ms[key])) for key in ("full", "blockwise", "brute"))
    return {
        "vertices": full.unit_count, "blocks": blockwise.unit_count, "flow_units": full.flow_unit_count,
        "blockwise_flow_units": blockwise.flow_unit_count, "closed_partitions": len(partitions),
        "full_setup_ms": full_setup_ms, "full_solve_ms": full_ms,
        "blockwise_setup_ms": blockwise_setup_ms, "blockwise_solve_ms": blockwise_ms,
        "brute_setup_ms": brute_setup_ms, "brute_solve_ms": brute_ms,
        "full_over_blockwise": full_ms / blockwise_ms, "brute_over_full": brute_ms / full_ms,
        "brute_over_blockwise": brute_ms / blockwise_ms,
    }


def run(config: FastSplitConfig, output: Path) -> None:
    """Training-delay, reduction and solver-time tables (mean ± 95 % CI over seeds) and two figures."""
    catalog = load_device_catalog()
    device_speed, server_speed = catalog[config.device].speed_factor, catalog[config.server].speed_factor
    pool = _trace_pool(config)

    def delay_at(bandwidth_mbps: float) -> DelayModel:
        return DelayModel(device_speed, server_speed, bandwidth_mbps, "training", config.batch_size,
                          config.backward_factor)

    setups = {model: ModelSetup(model, delay_at(1.0)) for model in tqdm(config.models, desc="fast-split setup")}
    delay_rows, reduction_rows, solver_rows = [], [], []
    for seed in tqdm(config.seeds, desc="fast-split seeds", unit="seed"):
        rng = np.random.default_rng(seed)
        unscaled = pool[int(rng.integers(len(pool)))]
        start_s = float(rng.uniform(0.0, unscaled.duration_s))
        timing_delays = []
        for scale in config.bandwidth_scales:
            trace = unscaled.scaled(scale)
            timing_delays += [delay_at(trace.bandwidth_at(start_s + k)) for k in range(config.timing_bandwidths)]
            where = {"seed": seed, "trace": unscaled.name, "start_s": start_s, "bandwidth_scale": scale}
            mean_delay = delay_at(float(step_means_mbps(trace, trace.duration_s)[0]))
            for model, setup in setups.items():
                total_s = {}
                for method, policy in setup.policies(mean_delay).items():
                    total_s[method], changes = train_run(policy, trace, start_s, delay_at, config.iterations)
                    delay_rows.append(where | {"model": model, "method": method,
                                               "iteration_s": total_s[method] / config.iterations,
                                               "total_s": total_s[method], "partition_changes": changes})
                versus = {b: total_s[b] for b in BASELINES} | {BEST_BASELINE: min(total_s[b] for b in BASELINES)}
                for baseline, baseline_s in versus.items():
                    reduction_rows.append(where | {"model": model, "versus": baseline, "reduction_pct":
                                                   100.0 * (baseline_s - total_s[PROPOSED]) / baseline_s})
        for model in config.models:
            solver_rows.append({"seed": seed, "model": model}
                               | solver_times(model, timing_delays, config.timing_repeats))
    _write(config, output, delay_rows, reduction_rows, solver_rows, device_speed, server_speed)


def _write(config: FastSplitConfig, output: Path, delay_rows: list[dict], reduction_rows: list[dict],
           solver_rows: list[dict], device_speed: float, server_speed: float) -> None:
    setting = (f"Split learning of a batch of {config.batch_size} on {config.device} (speed factor "
               f"{device_speed:.3g}) with {config.server} ({server_speed:.3g}); {config.iterations} iterations "
               f"per run over one {config.trace_split} trace ({', '.join(config.trace_kinds)}, every sample "
               f"multiplied by bandwidth_scale) and start point per seed; {len(config.seeds)} seeds; "
               f"mean ± 95 % CI.")
    delay_summary = write_tables(
        output, "training_delay", delay_rows, ["bandwidth_scale", "model", "method"],
        {"iteration_s": "delay per iteration (s)", "total_s": "total delay (s)",
         "partition_changes": "partition changes"},
        preamble=f"# Training delay per method\n\n{setting}")
    write_tables(
        output, "delay_reduction", reduction_rows, ["bandwidth_scale", "model", "versus"],
        {"reduction_pct": f"reduction of {PROPOSED} (%)"}, digits=2,
        preamble=f"# Delay reduction of the min-cut split\n\n{setting}\n\n100 x (baseline - min-cut) / baseline "
                 f"of the total delay, per seed. Paper: {PAPER_DELAY_REDUCTION} ({PAPER}, abstract).")
    model_columns = ["model", "vertices", "blocks", "flow_units", "blockwise_flow_units", "closed_partitions"]
    solver_summary = write_tables(
        output, "solver_time", solver_rows, model_columns,
        {"full_setup_ms": "full-DAG setup (ms)", "full_solve_ms": "full-DAG min-cut (ms)",
         "blockwise_setup_ms": "block-wise setup (ms)", "blockwise_solve_ms": "block-wise min-cut (ms)",
         "brute_setup_ms": "enumeration (ms)", "brute_solve_ms": "brute force (ms)",
         "full_over_blockwise": "full / block-wise", "brute_over_full": "brute / full-DAG",
         "brute_over_blockwise": "brute / block-wise"},
        preamble=f"# Solver time\n\nMedian milliseconds per solve at the first {config.timing_bandwidths} samples "
                 f"(1 s apart) of each seed's trace at every bandwidth scale ({config.timing_repeats} repeats "
                 f"each); setup = building the problem (flow network, merging of never-separated units) or "
                 f"enumerating every closed partition of the full DAG "
                 f"(brute force evaluates all of them, vectorised). Min-cut and brute force give the same delay "
                 f"(checked at every bandwidth). Paper: {PAPER_SOLVER_SPEEDUP} ({PAPER}, abstract).")
    scales = list(dict.fromkeys(row["bandwidth_scale"] for row in delay_summary))
    figure, axes = plt.subplots(1, len(scales), figsize=(4.4 * len(scales), 3.8), squeeze=False)
    for axis, scale in zip(axes[0], scales):
        _grouped_bars(axis, [row for row in delay_summary if row["bandwidth_scale"] == scale], "iteration_s",
                      "method", METHODS, log=False)
        axis.set_title(f"bandwidth x{scale:g}", fontsize=9)
    axes[0][0].set_ylabel("training delay per iteration (s)")
    save_figure(figure, output, "training_delay")
    solvers = {"full_solve_ms": "full-DAG min-cut", "blockwise_solve_ms": "block-wise min-cut",
               "brute_solve_ms": "brute force"}
    rows = [{"model": row["model"], "solver": label, "ms": row[key], "ms_ci95": row[f"{key}_ci95"]}
            for row in solver_summary for key, label in solvers.items()]
    figure, axis = plt.subplots(figsize=(5.0, 3.6))
    _grouped_bars(axis, rows, "ms", "solver", tuple(solvers.values()), log=True)
    axis.set_ylabel("solve time (ms, log scale)")
    save_figure(figure, output, "solver_time")


def _grouped_bars(axis: plt.Axes, summary: Sequence[dict], metric: str, series_key: str, series: Sequence[str],
                  log: bool) -> None:
    """Bars of ``metric`` per model (groups) and ``series_key`` value (colours) with their 95 % CI."""
    models = list(dict.fromkeys(row["model"] for row in summary))
    by_key = {(row["model"], row[series_key]): row for row in summary}
    width = 0.8 / len(series)
    for number, name in enumerate(series):
        rows = [by_key[model, name] for model in models]
        errors = [0.0 if math.isnan(row[f"{metric}_ci95"]) else row[f"{metric}_ci95"] for row in rows]
        axis.bar(np.arange(len(models)) + (number - (len(series) - 1) / 2) * width, [row[metric] for row in rows],
                 width, yerr=errors, capsize=2, label=name)
    axis.set_xticks(range(len(models)), models)
    if log:
        axis.set_yscale("log")
    axis.legend(fontsize=7)
