"""The cluster a model update runs on: edge devices with background tasks, a parameter server, a cloud server.

Nodes of the transport: ``0 .. N-1`` the edge devices (in settings order), ``N`` the
parameter server (holds the training data, aggregates), ``N + 1`` the cloud server
(reached over its WAN link).  Node ``k``'s uplink and downlink follow traces
``pool[2k mod P]`` and ``pool[2k + 1 mod P]`` of its pool (the sorted traces of its
kinds), times its ``bandwidth_scale``; :class:`envs.cluster.network.Network`
starts each link at its own random offset.
"""

from __future__ import annotations

import math

import numpy as np

from envs.cluster.devices import DeviceType, load_device_catalog
from envs.cluster.failures import FailureProcess
from envs.cluster.network import Network
from envs.cluster.traces import list_traces, load_trace
from envs.sim.types import FailureConfig, LinkConfig
from envs.training.interference import BackgroundTask, misses_when_shared, training_share, utilisation
from envs.training.jobs import ModelCosts
from envs.training.settings import BackgroundTaskSettings, LinkSettings, UpdateSettings


def _device(catalog: dict[str, DeviceType], name: str, where: str) -> DeviceType:
    if name not in catalog:
        raise ValueError(f"{where}: unknown device {name!r}; allowed: {sorted(catalog)}")
    return catalog[name]


def draw_tasks(settings: BackgroundTaskSettings, rng: np.random.Generator) -> list[BackgroundTask]:
    """One device's background tasks: count, period, utilisation and deadline factor drawn uniformly."""
    low, high = settings.tasks_per_device
    tasks = []
    for _ in range(int(rng.integers(low, high + 1))):
        period_s = rng.uniform(settings.period_s.low, settings.period_s.high)
        execution_s = period_s * rng.uniform(settings.utilisation.low, settings.utilisation.high)
        deadline_s = min(period_s, execution_s * rng.uniform(settings.deadline_factor.low,
                                                              settings.deadline_factor.high))
        tasks.append(BackgroundTask(period_s=period_s, execution_s=execution_s, deadline_s=deadline_s,
                                    phase_s=rng.uniform(0.0, period_s)))
    return tasks


class _EdgeFailures:
    """MTBF/MTTR failures of the edge devices only (nodes ``< edge_count``)."""

    def __init__(self, process: FailureProcess, edge_count: int):
        self.process, self.edge_count = process, edge_count

    def first_failure_s(self, node: int, start_s: float, end_s: float) -> float:
        return self.process.first_failure_s(node, start_s, end_s) if node < self.edge_count else math.inf

    def is_up(self, node: int, time_s: float) -> bool:
        return node >= self.edge_count or self.process.is_up(node, time_s)


class TrainingCluster:
    """Devices, links and background tasks of one :class:`UpdateSettings`; :meth:`reset` draws an episode."""

    def __init__(self, settings: UpdateSettings):
        self.settings = settings
        catalog = load_device_catalog()
        self.devices: list[DeviceType] = [
            _device(catalog, group.device, f"devices[{number}].device")
            for number, group in enumerate(settings.devices) for _ in range(group.count)
        ]
        self.parameter_server = len(self.devices)
        self.cloud = len(self.devices) + 1
        self.cloud_device = _device(catalog, settings.cloud.device, "cloud.device")
        _device(catalog, settings.parameter_server.device, "parameter_server.device")
        link_settings = [settings.device_link] * len(self.devices)
        link_settings += [settings.parameter_server.link, settings.cloud.link]
        self.network = Network([self._link(node, link) for node, link in enumerate(link_settings)],
                               settings.bandwidth_step_s)
        self.tasks: list[list[BackgroundTask]] = [[] for _ in self.devices]
        self.failures = None

    @property
    def edge_count(self) -> int:
        return len(self.devices)

    def _link(self, node: int, link: LinkSettings) -> LinkConfig:
        pool = list_traces(self.settings.trace_split, kinds=tuple(link.trace_kinds))
        uplink, downlink = (load_trace(pool[i % len(pool)], self.settings.trace_split) for i in (2 * node, 2 * node + 1))
        return LinkConfig(uplink=uplink, downlink=downlink, bandwidth_scale=link.bandwidth_scale,
                          latency_s=link.latency_s)

    def reset(self, rng: np.random.Generator) -> None:
        """Draw link offsets, each device's background tasks and (random mode) the failure history."""
        self.network.reset(rng)
        self.tasks = [draw_tasks(self.settings.background, rng) for _ in self.devices]
        failures = self.settings.failures
        if failures.mode == "random":
            process = FailureProcess(FailureConfig(enabled=True, mtbf_s=failures.mtbf_s, mttr_s=failures.mttr_s),
                                     self.edge_count)
            process.reset(np.random.default_rng(rng.integers(2**63)))
            self.failures = _EdgeFailures(process, self.edge_count)
        else:
            self.failures = None

    # -- per-device quantities --------------------------------------------------------------------

    def effective_speed(self, device: int) -> float:
        """Speed factor of ``device`` left to training beside its background tasks."""
        return self.devices[device].speed_factor * training_share(self.tasks[device])

    def seconds_per_sample(self, node: int, costs: ModelCosts) -> float:
        """Training seconds of one sample on ``node`` (edge device or cloud)."""
        speed = self.cloud_device.speed_factor if node == self.cloud else self.effective_speed(node)
        return costs.training_s / speed

    def would_miss(self, device: int) -> bool:
        """Whether some background task of ``device`` misses its deadlines while training shares it."""
        return bool(misses_when_shared(self.tasks[device]).any())

    def background_utilisation(self) -> np.ndarray:
        return np.array([utilisation(tasks) for tasks in self.tasks])

    def up(self, time_s: float) -> np.ndarray:
        """Whether each edge device is up at ``time_s``."""
        if self.failures is None:
            return np.ones(self.edge_count, dtype=bool)
        return np.array([self.failures.is_up(node, time_s) for node in range(self.edge_count)])
