"""Named scenarios: YAML settings -> the simulator configuration, split plans, reward and observation scales.

A scenario is a YAML file in this folder (its name is the file stem) or any path
to a YAML file.  Its settings override :data:`DEFAULT_SETTINGS` (or, with
``extends: <scenario>``, that scenario's settings) shallowly, and
the caller's overrides (``EdgeSplitEnv(config=...)``) override the scenario the
same way: a key's value is replaced, except that the mapping-valued sections
(``arrivals``, ``background``, ``failures``, ``reward``, ``observation``) are
merged key by key, and so is ``training_jobs`` when both are mappings (``null``
turns training jobs off).  An unknown key anywhere is a ``ValueError`` that names
the key and the allowed ones.

Training jobs (``training_jobs``, see :data:`TRAINING_JOB_DEFAULTS`): each trained
model becomes an app ``<model>_training`` (:data:`TRAINING_APP_SUFFIX`) whose plans
are the training plans (:mod:`envs.sim.training_plans`) of the model's unsplit and
layer-chain plans in the allowed families.

Links: node ``k`` of the cluster gets the traces ``pool[2k mod P]`` (uplink) and
``pool[2k+1 mod P]`` (downlink) of its group's pool, the sorted traces of
``trace_split`` of the kinds in ``trace_kinds`` ("hsdpa", "fcc"); the
simulator starts each link at its own random offset.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envs.cluster.devices import DeviceType, load_device_catalog
from envs.cluster.traces import SPLITS, TRACE_KINDS, BandwidthTrace, list_traces, load_trace
from envs.dnn.plan import FAMILIES, SplitPlan
from envs.dnn.planner import SplitPlanner, check_planner_options
from envs.dnn.profile_io import list_profiles, load_profile
from envs.mappings import read_yaml_mapping
from envs.observation import ObservationScales
from envs.reward import RewardWeights
from envs.sim.types import (
    AppConfig,
    ArrivalConfig,
    BackgroundConfig,
    FailureConfig,
    LinkConfig,
    NodeConfig,
    SimulatorConfig,
    TrainingJobsConfig,
    WorkloadConfig,
)
from envs.sim.training_plans import trainable, training_plan

SCENARIO_DIR = Path(__file__).resolve().parent
"""Folder of the named scenarios (``<name>.yaml``)."""

DEFAULT_SCENARIO = "splitplace"

DEFAULT_SETTINGS: dict[str, Any] = {
    "description": "",  # free text: what the scenario stands for
    "nodes": None,  # required: groups of identical nodes in node order, see NODE_GROUP_DEFAULTS
    "trace_split": "train",  # bandwidth traces of envs/profiles/traces/<split>: "train" or "test"
    "trace_kinds": ["hsdpa", "fcc"],  # kinds of trace links use: Norway HSDPA (3G) commutes, FCC fixed broadband
    "bandwidth_scale": 1.0,  # multiplies every trace (the traces are 3G-era: ~1.3 Mbit/s mean)
    "link_latency_s": 0.0,  # one-way latency of each access link, seconds
    "apps": None,  # required: the applications, see APP_DEFAULTS
    "arrivals": {},  # arrival process: keys of envs.sim.types.ArrivalConfig
    "horizon_s": 3600.0,  # simulated duration of an episode, seconds (then truncation)
    "background": {},  # background load: keys of envs.sim.types.BackgroundConfig
    "failures": {},  # node failures: keys of envs.sim.types.FailureConfig
    "bandwidth_step_s": 1.0,  # the simulator averages traces over steps of this length, seconds
    "families": list(FAMILIES),  # split families the agent may choose (others are masked)
    "max_layer_fragments": 4,  # longest layer chain the planner offers
    "cut_candidates": 5,  # layer boundaries the planner combines into chains
    "reward": {},  # reward weights: keys of envs.reward.RewardWeights
    "observation": {},  # normalisation: keys of envs.observation.ObservationScales
    "training_jobs": None,  # split-learning jobs beside the inference jobs, see TRAINING_JOB_DEFAULTS; null: none
}
"""Every scenario key with its default; units and meaning in the comments."""

EXTENDS_KEY = "extends"
"""A scenario file's optional key naming the scenario (name or path) whose settings it starts from
instead of :data:`DEFAULT_SETTINGS`; its own keys then apply as overrides do."""

NODE_GROUP_DEFAULTS: dict[str, Any] = {
    "device": None,  # required: device type in envs/profiles/devices.yaml
    "count": 1,  # number of nodes of this group
    "trace_kinds": None,  # this group's trace kinds (None: the scenario's trace_kinds)
    "bandwidth_scale": None,  # this group's trace multiplier (None: the scenario's bandwidth_scale)
    "link_latency_s": None,  # this group's link latency, seconds (None: the scenario's link_latency_s)
    "origin": False,  # jobs come from (and return to) the nodes of this group, uniformly; at least one group
}

APP_DEFAULTS: dict[str, Any] = {
    "name": None,  # required: application name (Job.app)
    "model": None,  # required: base model profile whose split plans serve the app
    "weight": None,  # required: share of arrivals (normalised over apps)
    "deadline_min_s": None,  # required: smallest deadline, seconds after arrival
    "deadline_max_s": None,  # required: largest deadline, seconds after arrival
    "deadline_step_s": 0.0,  # > 0: deadlines are whole multiples of it; 0: continuous
    "items": 1,  # inputs per job (compute and transfers scale with it)
}

TRAINING_JOB_DEFAULTS: dict[str, Any] = {
    "models": None,  # required: {profile name: share of the training arrivals}, e.g. {resnet18: 1.0}
    "rate_per_s": None,  # required: training-job arrivals per second (Poisson), on top of the inference arrivals
    "samples": [256, 1024],  # smallest and largest training samples of a job (inclusive, uniform)
    "epochs": [1, 3],  # smallest and largest epochs of a job (inclusive, uniform)
    "batch_size": 32,  # samples per mini-batch; a job runs epochs x ceil(samples / batch_size) iterations
    "deadline_s": None,  # [smallest, largest] response-time budget, seconds after arrival (uniform); null: none
}
"""Keys of the ``training_jobs`` section with their defaults (envs.sim.types.TrainingJobsConfig)."""

TRAINING_APP_SUFFIX = "_training"
"""The app of a training job of model ``m`` is ``m + TRAINING_APP_SUFFIX`` (Job.app)."""

REQUIRED = {"nodes", "apps", "device", "name", "model", "weight", "deadline_min_s", "deadline_max_s", "models",
            "rate_per_s"}
"""Keys without a default: a scenario, node group, app or training_jobs section must set them."""

SECTIONS: dict[str, type] = {
    "arrivals": ArrivalConfig,
    "background": BackgroundConfig,
    "failures": FailureConfig,
    "reward": RewardWeights,
    "observation": ObservationScales,
}
"""Mapping-valued settings, merged key by key, and the dataclass each becomes."""


@dataclass(frozen=True)
class Scenario:
    """A scenario turned into the objects the environment needs."""

    name: str
    settings: Mapping[str, Any]  # the merged settings it was built from (plain YAML data)
    simulator: SimulatorConfig
    plans: Mapping[str, tuple[SplitPlan, ...]]  # app name -> its split plans (allowed families only)
    reward: RewardWeights
    observation: ObservationScales


def list_scenarios() -> list[str]:
    """Names of the shipped scenarios, sorted."""
    return sorted(path.stem for path in SCENARIO_DIR.glob("*.yaml"))


def scenario_settings(scenario: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then the scenario (a name or a YAML path; first the scenario it ``extends``, if any),
    then ``overrides``; keys checked."""
    return _merged(_file_settings(scenario, ()), overrides or {}, "config")


def _file_settings(scenario: str, extended_by: tuple[str, ...]) -> dict[str, Any]:
    """The defaults with scenario file ``scenario`` applied, over the scenario named by its ``extends`` key."""
    path = Path(scenario) if scenario.endswith((".yaml", ".yml")) else SCENARIO_DIR / f"{scenario}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown scenario {scenario!r}; allowed: {list_scenarios()} or a path to a YAML file")
    if scenario in extended_by:
        raise ValueError(f"scenario {scenario!r} extends itself: {' -> '.join(extended_by + (scenario,))}")
    from_file = read_yaml_mapping(path, f"scenario {scenario!r}:")
    base = from_file.pop(EXTENDS_KEY, None)
    if base is not None and not isinstance(base, str):
        raise ValueError(f"scenario {scenario!r}: {EXTENDS_KEY!r} must be a scenario name or path, got {base!r}")
    start = DEFAULT_SETTINGS if base is None else _file_settings(base, extended_by + (scenario,))
    return _merged(start, from_file, f"scenario {scenario!r}")


def load_scenario(scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None) -> Scenario:
    """Build scenario ``scenario`` (a name or a YAML path) with ``overrides`` applied."""
    settings = scenario_settings(scenario, overrides)
    for key in ("nodes", "apps"):
        if not isinstance(settings[key], list) or not settings[key]:
            raise ValueError(f"scenario {scenario!r}: {key!r} is required (a non-empty list), got {settings[key]!r}")
    if settings["trace_split"] not in SPLITS:
        raise ValueError(f"'trace_split' must be one of {list(SPLITS)}, got {settings['trace_split']!r}")
    check_planner_options(settings["max_layer_fragments"], settings["cut_candidates"])
    families = _families(settings["families"])
    apps = [_with_defaults(app, APP_DEFAULTS, f"apps[{i}]") for i, app in enumerate(settings["apps"])]
    nodes, origins = _cluster(settings)
    training = _training_jobs(settings["training_jobs"])
    simulator = SimulatorConfig(
        nodes=nodes,
        workload=WorkloadConfig(
            apps=tuple(_app_config(app) for app in apps),
            arrivals=_section(settings, "arrivals"),
            origin_nodes=origins,
            training=training,
        ),
        horizon_s=settings["horizon_s"],
        background=_section(settings, "background"),
        failures=_section(settings, "failures"),
        bandwidth_step_s=settings["bandwidth_step_s"],
    )
    planner_options = (settings["max_layer_fragments"], settings["cut_candidates"])
    plans = {}
    for app in apps:
        plans[app["name"]] = tuple(p for p in model_plans(app["model"], *planner_options) if p.family in families)
        if not plans[app["name"]]:
            raise ValueError(f"app {app['name']!r}: model {app['model']!r} has no plan in families {list(families)}")
    if training is not None:
        for name in training.apps:
            model = name.removesuffix(TRAINING_APP_SUFFIX)
            plans[name] = tuple(training_plan(p, training.batch_size) for p in model_plans(model, *planner_options)
                                if p.family in families and trainable(p))
            if not plans[name]:
                raise ValueError(f"training_jobs.models: {model!r} has no unsplit or layer plan in families "
                                 f"{list(families)}")
    return Scenario(
        name=scenario,
        settings=settings,
        simulator=simulator,
        plans=plans,
        reward=_section(settings, "reward"),
        observation=_section(settings, "observation"),
    )


@functools.lru_cache(maxsize=None)
def model_plans(model: str, max_layer_fragments: int, cut_candidates: int) -> tuple[SplitPlan, ...]:
    """Every split plan of ``model`` (cached: plans are immutable)."""
    return tuple(SplitPlanner.for_model(model, max_layer_fragments, cut_candidates).all_plans())


# --------------------------------------------------------------------------- merging and checking


def _merged(base: Mapping[str, Any], overrides: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``base`` with ``overrides`` applied (a setting that is a mapping on both sides is merged key by key: the
    sections always, ``training_jobs`` unless either side is null); unknown keys raise."""
    if not isinstance(overrides, Mapping):
        raise ValueError(f"{where} must be a mapping of settings, got {overrides!r}")
    unknown = sorted(set(overrides) - set(DEFAULT_SETTINGS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(DEFAULT_SETTINGS)}")
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if key in SECTIONS:
            if not isinstance(value, Mapping):
                raise ValueError(f"{where}: {key!r} must be a mapping, got {value!r}")
            _check_section_keys(key, value)
        if isinstance(value, Mapping) and isinstance(merged[key], Mapping):  # sections; training_jobs unless null
            merged[key] = {**merged[key], **copy.deepcopy(dict(value))}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _check_section_keys(section: str, values: Mapping[str, Any]) -> None:
    allowed = [f.name for f in dataclasses.fields(SECTIONS[section])]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(f"unknown key(s) {[f'{section}.{k}' for k in unknown]}; allowed in {section!r}: {allowed}")


def _section(settings: Mapping[str, Any], key: str):
    return SECTIONS[key](**settings[key])


def _with_defaults(entry: object, defaults: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``entry`` (a mapping) completed with ``defaults``; unknown or missing required keys raise."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where} must be a mapping with keys {sorted(defaults)}, got {entry!r}")
    unknown = sorted(set(entry) - set(defaults))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(defaults)}")
    completed = {**defaults, **entry}
    missing = sorted(key for key, value in completed.items() if value is None and key in REQUIRED)
    if missing:
        raise ValueError(f"{where}: missing required key(s) {missing}")
    return completed


def _families(families: object) -> tuple[str, ...]:
    if isinstance(families, str) or not isinstance(families, Sequence) or not families:
        raise ValueError(f"'families' must be a non-empty list out of {list(FAMILIES)}, got {families!r}")
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"'families': unknown {unknown}; allowed: {list(FAMILIES)}")
    return tuple(families)


# --------------------------------------------------------------------------- building the parts


def _cluster(settings: Mapping[str, Any]) -> tuple[tuple[NodeConfig, ...], tuple[int, ...]]:
    """The nodes of the ``nodes`` groups, and the indices of those in groups marked ``origin: true``."""
    catalog = load_device_catalog()
    origins: list[int] = []
    traces: dict[str, BandwidthTrace] = {}  # one object per trace, so the simulator can share its tables
    nodes: list[NodeConfig] = []
    for number, raw_group in enumerate(settings["nodes"]):
        where = f"nodes[{number}]"
        group = _with_defaults(raw_group, NODE_GROUP_DEFAULTS, where)
        device = _device(catalog, group["device"], where)
        count = group["count"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"{where}.count must be an integer >= 1, got {count!r}")
        pool = _trace_pool(settings["trace_split"], _group_value(group, settings, "trace_kinds"), where)
        scale = _group_value(group, settings, "bandwidth_scale")
        latency_s = _group_value(group, settings, "link_latency_s")
        for key, value, smallest_ok in (("bandwidth_scale", scale, False), ("link_latency_s", latency_s, True)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not (
                    value >= 0 if smallest_ok else value > 0):
                raise ValueError(f"{where}: {key} (the group's, else the scenario's) must be a finite number "
                                 f"{'>=' if smallest_ok else '>'} 0, got {value!r}")
        if not isinstance(group["origin"], bool):
            raise ValueError(f"{where}.origin must be true or false, got {group['origin']!r}")
        if group["origin"]:
            origins.extend(range(len(nodes), len(nodes) + count))
        for _ in range(count):
            k = len(nodes)
            uplink, downlink = (_trace(traces, pool[i % len(pool)], settings["trace_split"]) for i in (2 * k, 2 * k + 1))
            link = LinkConfig(uplink=uplink, downlink=downlink, bandwidth_scale=scale, latency_s=latency_s)
            nodes.append(NodeConfig(device=device, link=link))
    if not origins:
        raise ValueError("'nodes': mark at least one group 'origin: true' (the nodes jobs come from)")
    return tuple(nodes), tuple(origins)


def _group_value(group: Mapping[str, Any], settings: Mapping[str, Any], key: str):
    return settings[key] if group[key] is None else group[key]


def _device(catalog: Mapping[str, DeviceType], name: object, where: str) -> DeviceType:
    if not isinstance(name, str) or name not in catalog:
        raise ValueError(f"{where}.device: unknown device {name!r}; allowed: {sorted(catalog)}")
    return catalog[name]


def _trace_pool(split: str, kinds: object, where: str) -> list[str]:
    if isinstance(kinds, str) or not isinstance(kinds, Sequence) or not kinds or set(kinds) - set(TRACE_KINDS):
        raise ValueError(f"{where}: trace_kinds must be a non-empty list drawn from {list(TRACE_KINDS)}, got {kinds!r}")
    pool = list_traces(split, kinds=tuple(kinds))
    if not pool:
        raise ValueError(f"{where}: split {split!r} has no trace of the kinds {list(kinds)}")
    return pool


def _trace(cache: dict[str, BandwidthTrace], name: str, split: str) -> BandwidthTrace:
    if name not in cache:
        cache[name] = load_trace(name, split)
    return cache[name]


def _training_jobs(section: object) -> TrainingJobsConfig | None:
    """The ``training_jobs`` section as a TrainingJobsConfig (None when it is null)."""
    if section is None:
        return None
    settings = _with_defaults(section, TRAINING_JOB_DEFAULTS, "training_jobs")
    models = settings["models"]
    if not isinstance(models, Mapping) or not models:
        raise ValueError(f"training_jobs.models must be a non-empty mapping {{profile name: share}}, got {models!r}")
    unknown = sorted(set(models) - set(list_profiles()))
    if unknown:
        raise ValueError(f"training_jobs.models: unknown model(s) {unknown}; allowed: {list_profiles()}")
    return TrainingJobsConfig(
        apps=tuple(f"{model}{TRAINING_APP_SUFFIX}" for model in models),
        weights=tuple(models.values()),
        sample_bytes=tuple(int(load_profile(model).graph["input_bytes"]) for model in models),
        rate_per_s=settings["rate_per_s"],
        samples=_pair(settings["samples"]),
        epochs=_pair(settings["epochs"]),
        batch_size=settings["batch_size"],
        deadline_s=_pair(settings["deadline_s"]),
    )


def _pair(value: object) -> object:
    """A YAML list as a tuple; anything else as it is (the configuration dataclass checks it)."""
    return tuple(value) if isinstance(value, list) else value


def _app_config(app: Mapping[str, Any]) -> AppConfig:
    graph = load_profile(app["model"])
    return AppConfig(
        name=app["name"],
        weight=app["weight"],
        input_bytes=int(graph.graph["input_bytes"]),
        deadline_min_s=app["deadline_min_s"],
        deadline_max_s=app["deadline_max_s"],
        deadline_step_s=app["deadline_step_s"],
        items=app["items"],
    )
