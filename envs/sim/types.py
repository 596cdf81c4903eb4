"""Plain data of the cluster simulator: jobs, their outcomes, snapshots and the configuration.

Records made once per job or per step (:class:`Job`, :class:`JobOutcome`,
:class:`ClusterSnapshot`) are immutable ``NamedTuple``s: they read like frozen
dataclasses (attributes, ``_replace``, ``_asdict``) and cost a fifth as much to build.
Every configuration dataclass checks itself when built: a bad value raises
``ValueError`` naming the class and the key (e.g. ``"BackgroundConfig.process"``)
and what is allowed.  Units are in the names or in the comment of each field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np

from envs.cluster.devices import DeviceType
from envs.cluster.traces import BandwidthTrace

# --------------------------------------------------------------------------- records


class Job(NamedTuple):
    """One request that arrives at the cluster: run ``app`` over ``items`` inputs."""

    job_id: int  # sequence number within the episode, from 0
    app: str  # application name (AppConfig.name); the caller maps it to split plans
    arrival_s: float  # simulated time at which the job arrives, seconds
    deadline_s: float  # response-time budget, seconds after arrival (due at arrival_s + deadline_s)
    input_bytes: int  # bytes of one item's input (the plan's transfers from ORIGIN carry the real bytes)
    origin: int  # node the input comes from and the result goes back to
    items: int = 1  # inputs processed one after another; compute and transfer bytes scale with it
    iterations: int = 1  # times the plan runs back to back (a training job: one mini-batch of `items` per pass)
    training: bool = False  # a split-learning job (TrainingJobsConfig): one mini-batch reserved at a time

    @property
    def total_items(self) -> int:
        """Inputs processed over all passes, ``items x iterations``: for a training job, the samples of all its
        mini-batches (mini-batch size x mini-batches)."""
        return self.items * self.iterations


JOB_FIELDS = ("job_id", "app", "arrival_s", "deadline_s", "input_bytes", "origin", "items", "iterations", "training")
"""A Job as a float64 row (the job streams' tables, the simulator's upcoming jobs): its fields in order, the app as a
code (an index into the workload's app names)."""
(JOB_ID, JOB_APP, JOB_ARRIVAL_S, JOB_DEADLINE_S, JOB_INPUT_BYTES, JOB_ORIGIN, JOB_ITEMS, JOB_ITERATIONS,
 JOB_TRAINING) = range(len(JOB_FIELDS))


def job_of_row(row: list[float], apps: tuple[str, ...]) -> Job:
    """The Job of a row of :data:`JOB_FIELDS` (as a list), its app code an index into ``apps``."""
    job_id, app, arrival_s, deadline_s, input_bytes, origin, items, iterations, training = row
    return Job(int(job_id), apps[int(app)], arrival_s, deadline_s, int(input_bytes), int(origin), int(items),
               int(iterations), bool(training))


class JobOutcome(NamedTuple):
    """How a job ended; produced once per job, when it finishes or fails."""

    job_id: int  # Job.job_id
    app: str  # Job.app
    family: str  # split family of the plan it ran with (envs.dnn.plan.FAMILIES)
    finished: bool  # True: the result reached the origin; False: the job failed
    failure_reason: str  # "" when finished; "infeasible" (rejected at submission) or "node_failure"
    arrival_s: float  # Job.arrival_s, seconds
    completion_s: float  # time the result arrived (or the job failed / was rejected), seconds
    response_time_s: float  # completion_s - arrival_s, seconds
    deadline_s: float  # Job.deadline_s (relative to arrival), seconds
    met_deadline: bool  # finished and response_time_s <= deadline_s
    accuracy: float  # the plan's expected top-1 accuracy in [0, 1]; 0 for a failed job
    energy_j: float  # energy the job's fragments added above the nodes' background draw, joules


NODE_VALUES = ("queued_work_s", "uplink_backlog_s", "downlink_backlog_s", "uplink_mbps", "downlink_mbps",
               "free_memory_bytes", "background_utilisation", "up")
"""Rows of :meth:`ClusterSimulator.node_values` (one column per node), in order; the per-node fields of
:class:`ClusterSnapshot` have the same names and meaning."""


class ClusterSnapshot(NamedTuple):
    """The cluster at one instant, one entry per node.

    Every array but ``up`` is a row of one fresh ``(len(NODE_VALUES), nodes)`` float64
    matrix (:meth:`of`); ``up`` is a fresh bool array.
    """

    time_s: float  # simulated time, seconds
    queued_work_s: np.ndarray  # seconds until the node is through its reserved fragments (FIFO: the earliest
    #                            a fragment placed there now could start, inputs aside)
    uplink_backlog_s: np.ndarray  # seconds until the node's uplink is through its reserved transfers
    downlink_backlog_s: np.ndarray  # seconds until the node's downlink is through its reserved transfers
    uplink_mbps: np.ndarray  # current uplink bandwidth, Mbit/s
    downlink_mbps: np.ndarray  # current downlink bandwidth, Mbit/s
    free_memory_bytes: np.ndarray  # bytes (whole numbers, float64): usable memory minus unfinished reservations
    background_utilisation: np.ndarray  # fraction in [0, 1]: load of work that is not ours (while our fragments
    #                                     run the node is fully busy: queued_work_s > 0)
    up: np.ndarray  # bool: node is up (not failed)

    @classmethod
    def of(cls, time_s: float, values: np.ndarray) -> ClusterSnapshot:
        """The snapshot whose arrays are the rows of ``values`` (rows :data:`NODE_VALUES`, not copied)."""
        *rows, up = values
        return cls(time_s, *rows, up > 0.5)


# --------------------------------------------------------------------------- validation


def _fail(owner: object, key: str, value: object, allowed: str) -> None:
    raise ValueError(f"{type(owner).__name__}.{key} must be {allowed}, got {value!r}")


def _check_number(owner: object, key: str, low: float = -math.inf, high: float = math.inf,
                  low_open: bool = False, high_open: bool = False, integer: bool = False) -> None:
    """``owner.key`` must be a finite (integer) number in the given interval."""
    value = getattr(owner, key)
    kind = Integral if integer else Real
    ok = isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        left, right = ("(" if low_open else "["), (")" if high_open else "]")
        _fail(owner, key, value, f"a finite {'integer' if integer else 'number'} in {left}{low}, {high}{right}")


def _check_range(owner: object, key: str, low: float, low_open: bool = False, integer: bool = False) -> None:
    """``owner.key`` must be a pair ``(smallest, largest)`` of finite (integer) numbers above ``low``."""
    value = getattr(owner, key)
    kind = Integral if integer else Real
    ok = isinstance(value, tuple) and len(value) == 2 and all(
        isinstance(v, kind) and not isinstance(v, bool) and math.isfinite(v) and (v > low if low_open else v >= low)
        for v in value) and value[0] <= value[1]
    if not ok:
        _fail(owner, key, value, f"a pair [smallest, largest] of finite {'integers' if integer else 'numbers'} "
                                 f"{'>' if low_open else '>='} {low} with smallest <= largest")


def _check_choice(owner: object, key: str, choices: tuple[str, ...]) -> None:
    value = getattr(owner, key)
    if value not in choices:
        _fail(owner, key, value, f"one of {choices}")


# --------------------------------------------------------------------------- cluster configuration


@dataclass(frozen=True)
class LinkConfig:
    """A node's access link (one uplink, one downlink) to the cluster's switch."""

    uplink: BandwidthTrace  # bandwidth over time of node -> switch, Mbit/s (wraps around)
    downlink: BandwidthTrace  # bandwidth over time of switch -> node, Mbit/s (wraps around)
    bandwidth_scale: float = 1.0  # multiplies both traces (lets 3G traces stand in for 4G/5G/Wi-Fi)
    latency_s: float = 0.0  # one-way latency of this link, seconds; a transfer pays both ends' latencies

    def __post_init__(self) -> None:
        for key in ("uplink", "downlink"):
            if not isinstance(getattr(self, key), BandwidthTrace):
                _fail(self, key, getattr(self, key), "a BandwidthTrace")
        _check_number(self, "bandwidth_scale", 0.0, low_open=True)
        _check_number(self, "latency_s", 0.0)


@dataclass(frozen=True)
class NodeConfig:
    """One node of the cluster: its hardware and its access link."""

    device: DeviceType  # speed factor, usable memory (bytes) and power curve (W)
    link: LinkConfig

    def __post_init__(self) -> None:
        if not isinstance(self.device, DeviceType):
            _fail(self, "device", self.device, "a DeviceType")
        if not isinstance(self.link, LinkConfig):
            _fail(self, "link", self.link, "a LinkConfig")


BACKGROUND_PROCESSES = ("constant", "ar1", "periodic")
"""Background-load processes: the same value always; AR(1) around the mean; periodic bursts."""


@dataclass(frozen=True)
class BackgroundConfig:
    """Utilisation of each node by work that is not ours (Deep-Edge's latency-critical tasks).

    Piecewise constant over intervals of ``interval_s`` seconds, sampled per node.
    A fragment that starts while its node's background utilisation is ``u`` runs
    ``1 / (1 - u)`` times slower.
    """

    process: str = "constant"  # one of BACKGROUND_PROCESSES
    mean_utilisation: float = 0.0  # long-run mean (constant: the value), fraction in [0, max_utilisation]
    node_spread: float = 0.0  # each node's mean is drawn uniformly from mean +- spread at reset, fraction
    interval_s: float = 60.0  # length of a piecewise-constant interval, seconds
    ar1_coefficient: float = 0.9  # "ar1": persistence phi in [0, 1) of the deviation from the mean
    ar1_noise: float = 0.05  # "ar1": standard deviation of the innovation per interval, fraction
    period_s: float = 600.0  # "periodic": period of the latency-critical task bursts, seconds
    burst_s: float = 60.0  # "periodic": length of a burst within each period, seconds
    burst_utilisation: float = 0.5  # "periodic": utilisation added during a burst, fraction
    max_utilisation: float = 0.9  # cap of the background utilisation, fraction in [0, 1)

    def __post_init__(self) -> None:
        _check_choice(self, "process", BACKGROUND_PROCESSES)
        _check_number(self, "max_utilisation", 0.0, 1.0, high_open=True)
        _check_number(self, "mean_utilisation", 0.0, self.max_utilisation)
        _check_number(self, "node_spread", 0.0, 1.0)
        _check_number(self, "interval_s", 0.0, low_open=True)
        _check_number(self, "ar1_coefficient", 0.0, 1.0, high_open=True)
        _check_number(self, "ar1_noise", 0.0)
        _check_number(self, "period_s", 0.0, low_open=True)
        _check_number(self, "burst_s", 0.0, self.period_s)
        _check_number(self, "burst_utilisation", 0.0, 1.0)


FAILURE_POLICIES = ("fail", "retry")
"""What a node failure does to a fragment running on it: fail the job, or rerun the fragment after repair
(at most ``FailureConfig.max_retries`` times, then the job fails)."""


@dataclass(frozen=True)
class FailureConfig:
    """Node failures: each node alternates exponential up-times and repair times."""

    enabled: bool = False  # off by default (as in the paper scenarios)
    mtbf_s: float = 86_400.0  # mean time between failures (mean up-time), seconds
    mttr_s: float = 600.0  # mean time to repair (mean down-time), seconds
    policy: str = "fail"  # one of FAILURE_POLICIES
    max_retries: int = 3  # "retry": reruns of one fragment before the job fails after all

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            _fail(self, "enabled", self.enabled, "True or False")
        _check_number(self, "mtbf_s", 0.0, low_open=True)
        _check_number(self, "mttr_s", 0.0, low_open=True)
        _check_choice(self, "policy", FAILURE_POLICIES)
        _check_number(self, "max_retries", 0, integer=True)


# --------------------------------------------------------------------------- workload configuration

ARRIVAL_PROCESSES = ("poisson", "interval_gaussian")
"""Poisson arrivals; or SplitPlace's per-interval count max(0, int(gauss(mean, std)))."""


@dataclass(frozen=True)
class ArrivalConfig:
    """When jobs arrive."""

    process: str = "poisson"  # one of ARRIVAL_PROCESSES
    rate_per_s: float = 0.01  # "poisson": mean arrivals per second
    interval_s: float = 300.0  # "interval_gaussian": interval length, seconds (SplitPlace: 300)
    mean_per_interval: float = 1.0  # "interval_gaussian": mean of the Gaussian count (SplitPlace, 10 hosts: 1)
    std_per_interval: float = 0.5  # "interval_gaussian": its standard deviation (SplitPlace: 0.5)

    def __post_init__(self) -> None:
        _check_choice(self, "process", ARRIVAL_PROCESSES)
        _check_number(self, "rate_per_s", 0.0, low_open=True)
        _check_number(self, "interval_s", 0.0, low_open=True)
        _check_number(self, "mean_per_interval", 0.0)
        _check_number(self, "std_per_interval", 0.0)
        if self.process == "interval_gaussian" and self.mean_per_interval + 4 * self.std_per_interval < 1:
            _fail(self, "mean_per_interval", self.mean_per_interval,
                  "such that mean_per_interval + 4 * std_per_interval >= 1 (else no job ever arrives)")


@dataclass(frozen=True)
class AppConfig:
    """One application of the workload: its share of arrivals, batch size and deadlines."""

    name: str  # application name, e.g. "mnist"; Job.app
    weight: float  # share of arrivals, normalised over the apps
    input_bytes: int  # bytes of one item's input (the model's input_bytes)
    deadline_min_s: float  # smallest response-time budget, seconds
    deadline_max_s: float  # largest response-time budget, seconds
    deadline_step_s: float = 0.0  # > 0: deadlines are whole multiples of it (SplitPlace: 1 interval); 0: continuous
    items: int = 1  # inputs per job
    iterations: int = 1  # plan passes per job (> 1 for training jobs)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            _fail(self, "name", self.name, "a non-empty string")
        _check_number(self, "weight", 0.0, low_open=True)
        _check_number(self, "input_bytes", 0, integer=True)
        _check_number(self, "deadline_min_s", 0.0, low_open=True)
        _check_number(self, "deadline_max_s", self.deadline_min_s)
        _check_number(self, "deadline_step_s", 0.0)
        if self.deadline_step_s > 0 and (math.floor(self.deadline_max_s / self.deadline_step_s)
                                         < math.ceil(self.deadline_min_s / self.deadline_step_s)):
            _fail(self, "deadline_step_s", self.deadline_step_s,
                  f"such that a multiple of it lies in [{self.deadline_min_s}, {self.deadline_max_s}]")
        _check_number(self, "items", 1, integer=True)
        _check_number(self, "iterations", 1, integer=True)


@dataclass(frozen=True)
class TrainingJobsConfig:
    """Split-learning jobs that arrive beside the inference jobs (Poisson, at their own rate).

    A job trains one of ``apps`` (chosen by ``weights``) on a number of samples and
    epochs drawn uniformly from the inclusive ranges, in mini-batches of
    ``batch_size``: ``Job.items`` = batch_size, ``Job.iterations`` = epochs x
    ceil(samples / batch_size), ``Job.training`` = True.  It starts at an origin node
    (``WorkloadConfig.origin_nodes``, uniformly): the device that holds the data.
    Scenarios build it from their ``training_jobs`` section (defaults there).
    """

    apps: tuple[str, ...]  # Job.app of each trained model; names unlike the inference apps'
    weights: tuple[float, ...]  # share of the training arrivals per app, normalised
    sample_bytes: tuple[int, ...]  # bytes of one training sample per app (Job.input_bytes)
    rate_per_s: float  # training-job arrivals per second (Poisson), on top of the inference arrivals
    samples: tuple[int, int]  # smallest and largest training samples of a job (inclusive)
    epochs: tuple[int, int]  # smallest and largest epochs of a job (inclusive)
    batch_size: int  # samples per mini-batch (Job.items)
    deadline_s: tuple[float, float] | None  # smallest and largest response-time budget, seconds after arrival
    #                                         (uniform); None: no deadline (Job.deadline_s = inf)

    def __post_init__(self) -> None:
        if not self.apps or not all(isinstance(app, str) and app for app in self.apps) or (
                len(set(self.apps)) != len(self.apps)):
            _fail(self, "apps", self.apps, "a non-empty tuple of distinct non-empty strings")
        for key, kind in (("weights", Real), ("sample_bytes", Integral)):
            values = getattr(self, key)
            if not (isinstance(values, tuple) and len(values) == len(self.apps) and all(
                    isinstance(v, kind) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in values)):
                _fail(self, key, values, f"one number > 0 per app ({len(self.apps)})")
        _check_number(self, "rate_per_s", 0.0, low_open=True)
        _check_range(self, "samples", 1, integer=True)
        _check_range(self, "epochs", 1, integer=True)
        _check_number(self, "batch_size", 1, integer=True)
        if self.deadline_s is not None:
            _check_range(self, "deadline_s", 0.0, low_open=True)


@dataclass(frozen=True)
class WorkloadConfig:
    """The jobs: which apps, when they arrive, where they come from."""

    apps: tuple[AppConfig, ...]  # at least one; names unique
    arrivals: ArrivalConfig = field(default_factory=ArrivalConfig)
    origin_nodes: tuple[int, ...] = (0,)  # nodes jobs come from (uniformly), e.g. a gateway or mobile devices
    training: TrainingJobsConfig | None = None  # split-learning jobs beside the inference jobs; None: none

    def __post_init__(self) -> None:
        if not self.apps or not all(isinstance(app, AppConfig) for app in self.apps):
            _fail(self, "apps", self.apps, "a non-empty tuple of AppConfig")
        if self.training is not None and not isinstance(self.training, TrainingJobsConfig):
            _fail(self, "training", self.training, "None or a TrainingJobsConfig")
        names = [app.name for app in self.apps] + list(self.training.apps if self.training is not None else ())
        if len(set(names)) != len(names):
            _fail(self, "apps", names, "apps with unique names (training apps included)")
        if not isinstance(self.arrivals, ArrivalConfig):
            _fail(self, "arrivals", self.arrivals, "an ArrivalConfig")
        if not self.origin_nodes or not all(isinstance(n, Integral) and n >= 0 for n in self.origin_nodes):
            _fail(self, "origin_nodes", self.origin_nodes, "a non-empty tuple of node indices >= 0")


# --------------------------------------------------------------------------- the whole simulator


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything the simulator needs; scenarios build one."""

    nodes: tuple[NodeConfig, ...]  # the cluster, node i = nodes[i]
    workload: WorkloadConfig
    horizon_s: float  # simulated duration of an episode, seconds
    background: BackgroundConfig = field(default_factory=BackgroundConfig)
    failures: FailureConfig = field(default_factory=FailureConfig)
    bandwidth_step_s: float = 1.0  # traces are averaged over steps of this length, seconds

    def __post_init__(self) -> None:
        if not self.nodes or not all(isinstance(node, NodeConfig) for node in self.nodes):
            _fail(self, "nodes", type(self.nodes).__name__, "a non-empty tuple of NodeConfig")
        if not isinstance(self.workload, WorkloadConfig):
            _fail(self, "workload", self.workload, "a WorkloadConfig")
        if max(self.workload.origin_nodes) >= len(self.nodes):
            _fail(self, "workload.origin_nodes", self.workload.origin_nodes,
                  f"node indices below the node count {len(self.nodes)}")
        _check_number(self, "horizon_s", 0.0, low_open=True)
        if not isinstance(self.background, BackgroundConfig):
            _fail(self, "background", self.background, "a BackgroundConfig")
        if not isinstance(self.failures, FailureConfig):
            _fail(self, "failures", self.failures, "a FailureConfig")
        _check_number(self, "bandwidth_step_s", 0.0, low_open=True)
