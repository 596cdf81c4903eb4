"""ParaDiS (Ozerov, Lambert, Kumaraswamy, arXiv 2110.02724): width-parallel switches against layer pipelines.

A cluster of ``n`` identical devices (1 to 4) of one type classifies one image
that arrives at device 0, in three ways:

* **single device**: the whole model on device 0;
* **layer pipeline**: a chain of ``n`` fragments, fragment ``i`` on device ``i``,
  cut at the planner's candidate layer boundaries; at each probe the chain of
  least latency (an oracle choice of the cut points);
* **ParaDiS switch**: the planner's ``width`` plan with the most sub-networks
  ``k <= n`` that has an accuracy figure, equal widths ``1/k``, sub-network ``i``
  on device ``i`` and the fusion (the classifier) on device 0.

Latency is what :meth:`envs.sim.engine.ClusterSimulator.estimate_completion_s`
gives on an idle cluster: the reservation schedule of fragments and transfers
over the scenario's trace-driven links (latency included). Each seed builds the
cluster anew (random trace offsets of every link) and probes at its first
``probes`` job arrivals, so seeds vary the bandwidth sample. Accuracy is the
plan's accuracy from the accuracy profile; the ParaDiS switch accuracies
shipped there are derived from slimmable-network curves (see their ``sources``),
not taken from the ParaDiS paper.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from pydantic import Field, field_validator
from tqdm import tqdm

from agents.plots import save_figure
from envs.cluster.devices import load_device_catalog
from envs.dnn.accuracy import list_accuracy_profiles, load_accuracy
from envs.dnn.plan import SplitPlan
from envs.dnn.planner import SplitPlanner
from envs.scenarios import list_scenarios, load_scenario, scenario_settings
from envs.sim.engine import ClusterSimulator
from envs.sim.types import Job
from reproductions.common import BandwidthScales, ReproductionConfig, write_tables

PAPER = ("Ozerov, Lambert, Kumaraswamy, 'ParaDiS: Parallelly Distributable Slimmable Neural Networks', "
         "arXiv 2110.02724")
PAPER_CLAIM = ("switches match or beat individually trained distributed models and lose at most about 1 % top-1 "
               "against universally slimmable (non-distributable) networks")

SINGLE = "single device"
PIPELINE = "layer pipeline"
PARADIS = "ParaDiS switch"
METHODS = (SINGLE, PIPELINE, PARADIS)
LINE_STYLES = {SINGLE: "--", PIPELINE: "-", PARADIS: "-"}
RESERVED_SETTINGS = ("nodes", "apps", "bandwidth_scale", "families")
"""Scenario settings this reproduction sets itself."""


class ParadisConfig(ReproductionConfig):
    """configs/experiments/reproductions/paradis.yaml."""

    models: list[str] = Field(min_length=1, description="models with ParaDiS width-switch accuracies")
    device_types: list[str] = Field(min_length=1, description="devices.yaml names; one homogeneous cluster each")
    device_counts: list[int] = Field(min_length=1, description="cluster sizes (devices)")
    scenario: str = Field(description="scenario whose links (traces, scale, latency) the cluster uses")
    scenario_overrides: dict[str, Any] = Field(default_factory=dict, description="scenario settings changed")
    bandwidth_scales: BandwidthScales
    probes: int = Field(ge=1, description="job arrivals per seed at which every method is timed")
    cut_candidates: int = Field(default=5, ge=1, description="layer boundaries the pipelines are cut at")

    @field_validator("models")
    @classmethod
    def _models_with_switches(cls, models: list[str]) -> list[str]:
        with_switches = [name for name in list_accuracy_profiles() if load_accuracy(name).width_switches]
        wrong = [m for m in models if m not in with_switches]
        if wrong:
            raise ValueError(f"model(s) {wrong} have no ParaDiS width-switch accuracies; allowed: {with_switches}")
        return models

    @field_validator("device_types")
    @classmethod
    def _known_devices(cls, names: list[str]) -> list[str]:
        catalog = load_device_catalog()
        unknown = [n for n in names if n not in catalog]
        if unknown:
            raise ValueError(f"unknown device(s) {unknown}; allowed: {sorted(catalog)}")
        return names

    @field_validator("device_counts")
    @classmethod
    def _positive_counts(cls, counts: list[int]) -> list[int]:
        if any(count < 1 for count in counts) or len(set(counts)) != len(counts):
            raise ValueError(f"device_counts={counts}: distinct integers >= 1")
        return sorted(counts)

    @field_validator("scenario")
    @classmethod
    def _known_scenario(cls, name: str) -> str:
        if name not in list_scenarios() and not name.endswith((".yaml", ".yml")):
            raise ValueError(f"unknown scenario {name!r}; allowed: {list_scenarios()} or a YAML path")
        return name

    @field_validator("scenario_overrides")
    @classmethod
    def _not_reserved(cls, overrides: dict[str, Any]) -> dict[str, Any]:
        reserved = [key for key in overrides if key in RESERVED_SETTINGS]
        if reserved:
            raise ValueError(f"{reserved}: set by this reproduction (device_types, device_counts, models, "
                             f"bandwidth_scales)")
        return overrides


CONFIG = ParadisConfig


class ModelPlans:
    """One model's plans: the whole model, its layer chains and ParaDiS switches per number of devices."""

    def __init__(self, model: str, device_counts: list[int], cut_candidates: int):
        planner = SplitPlanner.for_model(model, max(device_counts), cut_candidates)
        self.whole = planner.no_split()
        self.chains = {n: [self.whole] if n == 1 else planner.layer_plans(n) for n in device_counts}
        switches = sorted(planner.accuracy.width_switches)
        self.switches: dict[int, SplitPlan] = {}
        for n in device_counts:
            fitting = [k for k in switches if k <= n]
            if not fitting:
                raise ValueError(f"{model}: no ParaDiS switch fits on {n} device(s); switches: {switches}")
            k = max(fitting)
            self.switches[n] = planner.width_parallel([1.0 / k] * k)


def switch_placement(plan: SplitPlan) -> list[int]:
    """Sub-network ``i`` on device ``i``, the fusion fragment (the last) on device 0."""
    return list(range(len(plan.fragments) - 1)) + [0]


def _latencies_s(simulator: ClusterSimulator, job: Job, plans: ModelPlans,
                 n: int) -> dict[str, tuple[float, SplitPlan]]:
    """Each method's latency (seconds from arrival) on devices 0..n-1 and the plan it used."""

    def latency_s(plan: SplitPlan, placement: list[int]) -> float:
        return simulator.estimate_completion_s(job, plan, placement) - job.arrival_s

    chain = min(plans.chains[n], key=lambda plan: latency_s(plan, list(range(len(plan.fragments)))))
    switch = plans.switches[n]
    return {
        SINGLE: (latency_s(plans.whole, [0]), plans.whole),
        PIPELINE: (latency_s(chain, list(range(len(chain.fragments)))), chain),
        PARADIS: (latency_s(switch, switch_placement(switch)), switch),
    }


def cluster(config: ParadisConfig, device: str, bandwidth_scale: float, seed: int) -> ClusterSimulator:
    """The idle cluster of ``max(device_counts)`` devices ``device`` (device 0 the origin) on the scenario's
    links times ``bandwidth_scale``, its random processes seeded by ``seed``."""
    count = max(config.device_counts)
    nodes = [{"device": device, "count": 1, "origin": True}]
    if count > 1:
        nodes.append({"device": device, "count": count - 1})
    apps = [{"name": "probe", "model": config.models[0], "weight": 1.0, "deadline_min_s": 1.0,
             "deadline_max_s": 1.0, "items": 1}]
    scenario = load_scenario(config.scenario, {**config.scenario_overrides, "nodes": nodes, "apps": apps,
                                               "bandwidth_scale": bandwidth_scale, "families": ["none"]})
    return ClusterSimulator(scenario.simulator, np.random.default_rng(seed))


def run(config: ParadisConfig, output: Path) -> None:
    """Latency and accuracy per device type, link regime, model, number of devices and method (mean ± 95 % CI
    over seeds); a latency figure and an accuracy figure."""
    plans = {model: ModelPlans(model, config.device_counts, config.cut_candidates) for model in config.models}
    clusters = [(device, scale) for device in config.device_types for scale in config.bandwidth_scales]
    rows = []
    with tqdm(total=len(config.seeds) * len(clusters), desc="paradis clusters", unit="cluster") as progress:
        for seed in config.seeds:
            for device, scale in clusters:
                where = {"seed": seed, "device": device, "bandwidth_scale": scale}
                rows += [where | row for row in _probe(config, cluster(config, device, scale, seed), plans)]
                progress.update()
    _write(config, output, rows)


def _probe(config: ParadisConfig, simulator: ClusterSimulator, plans: dict[str, ModelPlans]) -> list[dict]:
    """One row per model, number of devices and method: its median and mean latency over the first ``probes``
    arrivals (the median is the headline: a rare link outage of the FCC traces, tens of seconds, swamps a mean)."""
    latencies: dict[tuple, list[float]] = {}
    used: dict[tuple, SplitPlan] = {}
    for probe in range(config.probes):
        job = simulator.advance_to_next_arrival()
        if job is None:
            raise ValueError(f"scenario {config.scenario!r}: only {probe} arrivals within its horizon; lower "
                             f"probes={config.probes} or raise horizon_s / the arrival rate")
        for model, model_plans in plans.items():
            for n in config.device_counts:
                for method, (latency_s, plan) in _latencies_s(simulator, job, model_plans, n).items():
                    latencies.setdefault((model, n, method), []).append(latency_s)
                    used[model, n, method] = plan
        simulator.reject(job)
    rows = []
    for (model, n, method), values_s in latencies.items():
        latency_ms = 1e3 * float(np.median(values_s))
        rows.append({"model": model, "devices": n, "method": method,
                     "fragments": len(used[model, n, method].fragments), "latency_ms": latency_ms,
                     "mean_latency_ms": 1e3 * float(np.mean(values_s)),
                     "speedup": 1e3 * float(np.median(latencies[model, n, SINGLE])) / latency_ms,
                     "accuracy_pct": 100.0 * used[model, n, method].accuracy})
    return rows


def _write(config: ParadisConfig, output: Path, rows: list[dict]) -> None:
    link = scenario_settings(config.scenario, config.scenario_overrides)
    summary = write_tables(
        output, "paradis", rows, ["device", "bandwidth_scale", "model", "devices", "method"],
        {"latency_ms": "median latency (ms)", "mean_latency_ms": "mean latency (ms)",
         "speedup": "speed-up vs single device", "accuracy_pct": "top-1 (%)"},
        digits=2,
        preamble=(f"# ParaDiS switches against layer pipelines and a single device\n\n"
                  f"One image arriving at device 0 of an idle cluster of identical devices; links of scenario "
                  f"{config.scenario!r} ({link['trace_split']} traces {link['trace_kinds']}, every sample "
                  f"multiplied by bandwidth_scale, {1e3 * link['link_latency_s']:g} ms per link); median (and mean) "
                  f"over {config.probes} arrivals per seed, speed-up = single-device median / median; "
                  f"mean over {len(config.seeds)} seeds ± 95 % CI. ParaDiS on n devices "
                  f"uses the switch with the most sub-networks <= n that has an accuracy figure (so 3 devices use "
                  f"the 2-way switch). Its top-1 is *derived* (slimmable-network curves minus 1 point, see "
                  f"envs/profiles/accuracy/*.json), not the paper's; the paper states that {PAPER_CLAIM} "
                  f"({PAPER}, abstract)."))
    clusters = list(dict.fromkeys((row["device"], row["bandwidth_scale"]) for row in summary))
    figure, axes = plt.subplots(len(clusters), len(config.models), figsize=(3.6 * len(config.models),
                                2.6 * len(clusters)), squeeze=False, sharex=True)
    for (device, scale), axis_row in zip(clusters, axes):
        for model, axis in zip(config.models, axis_row):
            _lines(axis, [row for row in summary if (row["device"], row["bandwidth_scale"], row["model"]) ==
                          (device, scale, model)], "latency_ms")
            axis.set_title(f"{model}, {device}, links x{scale:g}", fontsize=8)
            axis.set_ylabel("median latency (ms)")
    _finish(axes, config.device_counts)
    save_figure(figure, output, "paradis_latency")
    figure, axes = plt.subplots(1, len(config.models), figsize=(3.6 * len(config.models), 3.0), squeeze=False)
    first_cluster = clusters[0]
    for model, axis in zip(config.models, axes[0]):
        _lines(axis, [row for row in summary if (row["device"], row["bandwidth_scale"]) == first_cluster
                      and row["model"] == model], "accuracy_pct")
        axis.set_title(model, fontsize=9)
        axis.set_ylabel("top-1 (%)")
    _finish(axes, config.device_counts)
    save_figure(figure, output, "paradis_accuracy")


def _lines(axis: plt.Axes, summary: list[dict], metric: str) -> None:
    """One line per method of ``metric`` against the number of devices, with 95 % CI error bars."""
    for method in METHODS:
        points = [row for row in summary if row["method"] == method]
        errors = [0.0 if math.isnan(row[f"{metric}_ci95"]) else row[f"{metric}_ci95"] for row in points]
        axis.errorbar([row["devices"] for row in points], [row[metric] for row in points], yerr=errors,
                      marker="o", capsize=3, linestyle=LINE_STYLES[method], label=method)


def _finish(axes: np.ndarray, device_counts: list[int]) -> None:
    for axis in axes[-1]:
        axis.set_xlabel("devices")
        axis.set_xticks(device_counts)
    axes[0][0].legend(fontsize=7)
