"""Hand-built devices, traces, plans and configs for the simulator tests (no shipped data needed)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from envs.cluster.devices import DeviceType
from envs.cluster.traces import BandwidthTrace
from envs.dnn.plan import ORIGIN, Fragment, SplitPlan, Transfer
from envs.sim.types import (
    AppConfig,
    ArrivalConfig,
    BackgroundConfig,
    FailureConfig,
    LinkConfig,
    NodeConfig,
    SimulatorConfig,
    WorkloadConfig,
)


class Kit:
    """Builders shared by the simulator tests."""

    @staticmethod
    def device(speed_factor: float = 1.0, usable_memory_bytes: int = 10**9, idle_w: float = 10.0,
               busy_w: float = 20.0) -> DeviceType:
        return DeviceType(name=f"test-{speed_factor}", cores=1, memory_bytes=2 * usable_memory_bytes,
                          usable_memory_bytes=usable_memory_bytes, speed_factor=speed_factor,
                          power_curve_w=tuple(np.linspace(idle_w, busy_w, 11)), sources={})

    @staticmethod
    def trace(*bandwidth_mbps: float, sample_s: float = 1.0) -> BandwidthTrace:
        """A trace with one sample per ``sample_s``; a single value gives a constant link."""
        values = list(bandwidth_mbps) if len(bandwidth_mbps) > 1 else [bandwidth_mbps[0]] * 2
        return BandwidthTrace(name="test", split="train", times_s=np.arange(len(values)) * sample_s,
                              bandwidth_mbps=np.array(values, dtype=float))

    @staticmethod
    def node(speed_factor: float = 1.0, mbps: float = 8.0, latency_s: float = 0.0,
             usable_memory_bytes: int = 10**9, idle_w: float = 10.0, busy_w: float = 20.0) -> NodeConfig:
        trace = Kit.trace(mbps)
        return NodeConfig(Kit.device(speed_factor, usable_memory_bytes, idle_w, busy_w),
                          LinkConfig(trace, trace, latency_s=latency_s))

    @staticmethod
    def chain(latencies_s: tuple[float, ...], hop_bytes: int = 1000, input_bytes: int = 1000,
              result_bytes: int = 100, memory_bytes: int = 1000, accuracy: float = 0.9,
              exit_probability: tuple[float, ...] = ()) -> SplitPlan:
        """Fragments in a chain: ORIGIN -> 0 -> 1 -> ... -> last -> ORIGIN (early exits: each -> ORIGIN)."""
        count = len(latencies_s)
        fragments = tuple(Fragment(f"f{i}", 1, latency_s, memory_bytes, 0) for i, latency_s in enumerate(latencies_s))
        transfers = [Transfer(ORIGIN, 0, input_bytes)] + [Transfer(i, i + 1, hop_bytes) for i in range(count - 1)]
        exits = range(count) if exit_probability else [count - 1]
        transfers += [Transfer(i, ORIGIN, result_bytes) for i in exits]
        family = "early_exit" if exit_probability else "layer"
        return SplitPlan("test", family, f"chain{count}", fragments, tuple(transfers), accuracy, exit_probability)

    @staticmethod
    def config(nodes: tuple[NodeConfig, ...], rate_per_s: float = 0.01, horizon_s: float = 1e4,
               items: int = 1, iterations: int = 1, origin_nodes: tuple[int, ...] = (0,),
               background: BackgroundConfig | None = None, failures: FailureConfig | None = None,
               deadline_s: tuple[float, float] = (1.0, 10.0)) -> SimulatorConfig:
        app = AppConfig("app", 1.0, 1000, deadline_s[0], deadline_s[1], items=items, iterations=iterations)
        workload = WorkloadConfig((app,), ArrivalConfig("poisson", rate_per_s=rate_per_s), origin_nodes)
        return SimulatorConfig(nodes, workload, horizon_s, background or BackgroundConfig(),
                               failures or FailureConfig())

    @staticmethod
    def idle_lower_bound_s(plan: SplitPlan, placement, origin: int, config: SimulatorConfig, items: int) -> float:
        """Critical path of one pass on an idle cluster without background load, each transfer at
        the fastest bandwidth its two links ever have: no job can be faster."""
        from envs.cluster.network import step_means_mbps

        nodes = config.nodes
        peak_up = [step_means_mbps(n.link.uplink, config.bandwidth_step_s).max() * n.link.bandwidth_scale
                   for n in nodes]
        peak_down = [step_means_mbps(n.link.downlink, config.bandwidth_step_s).max() * n.link.bandwidth_scale
                     for n in nodes]
        graph = nx.DiGraph()

        def where(end: int) -> int:
            return origin if end == ORIGIN else placement[end]

        for i, fragment in enumerate(plan.fragments):
            graph.add_edge(("in", i), ("out", i),
                           weight=items * fragment.reference_latency_s / nodes[placement[i]].device.speed_factor)
        for transfer in plan.transfers:
            sender, receiver = where(transfer.source), where(transfer.target)
            seconds = 0.0
            if sender != receiver:
                seconds = (nodes[sender].link.latency_s + nodes[receiver].link.latency_s
                           + items * transfer.bytes * 8e-6 / min(peak_up[sender], peak_down[receiver]))
            source = "start" if transfer.source == ORIGIN else ("out", transfer.source)
            target = "end" if transfer.target == ORIGIN else ("in", transfer.target)
            graph.add_edge(source, target, weight=seconds)
        return nx.dag_longest_path_length(graph)


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit
