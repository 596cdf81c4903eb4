"""The optimal device/server cut of a layer graph, as a minimum s-t cut.

A partition puts every vertex of a layer graph either on the *device* (where
the input is) or on the *server*. It must be *closed*: no tensor flows from the
server back to the device, so the device runs a down-set of the DAG. Its delay
(Fast AI Model Splitting, Li et al. 2025, with the construction of DADS, Hu et
al., INFOCOM 2019) is::

    delay = device compute + server compute
            + transfer time of every tensor made on the device and read on the server

where a tensor read by several server-side vertices is sent once; the result
sent back to the device is not counted. :class:`DelayModel` says how seconds
follow from the profile (speed factors, bandwidth, inference or split-learning
training). The least-delay closed partition is a minimum s-t cut of this flow
network (source = device, sink = server):

* ``source -> v`` with v's server time (cut when v runs on the server),
* ``v -> sink`` with v's device time (cut when v runs on the device),
* ``u -> v`` with the transfer time of u's output or, when several vertices read
  it, ``u -> aux_u`` with that time and ``aux_u -> v`` unbounded (paid once),
* ``v -> u`` unbounded for every tensor edge (closure), ``source -> input``
  unbounded (the input stays on the device).

The *block-wise* variant solves the same problem on the graph in which every
``block`` (a residual or inverted-residual block, a semantic branch) is one
vertex, so each block runs whole on one side.

Before the max-flow, units (vertices or blocks) are merged where the optimum
does not need to separate them (:func:`_mergeable_pairs` gives the two rules
and why they are exact); for the shipped profiles that leaves 11 of
ResNet-50's 176 vertices and 6 of MobileNetV2's 154. :class:`CutProblem` can also enumerate every closed
partition (the down-sets of the DAG that contain the input) for brute-force
checks; there are a few hundred for ResNet-50 or MobileNetV2 vertex by vertex,
but 10^5 for a five-branch SplitPlace semantic net.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import cached_property

import networkx as nx
import numpy as np
from networkx.algorithms.flow import build_residual_network, preflow_push

from envs.dnn.cut_points import execution_order, input_vertex

OBJECTIVES = ("inference", "training")
"""What a cut minimises: one forward pass, or one split-learning training step."""

BITS_PER_BYTE = 8
BITS_PER_MEGABIT = 1e6
PICOSECONDS_PER_SECOND = 1e12
"""Unit of the integer flow capacities (networkx's max-flow is exact on integers only)."""

_SOURCE = "__device__"
_SINK = "__server__"
_AUXILIARY = "__tensor__"
"""Tag of the auxiliary vertex of a tensor read by several units: ``(_AUXILIARY, tensor number)``."""


@dataclass(frozen=True)
class DelayModel:
    """How a device/server partition of a layer graph turns into seconds.

    Attributes:
        device_speed_factor: reference-CPU time / device time (> 0).
        server_speed_factor: reference-CPU time / server time (> 0).
        bandwidth_mbps: device-server link rate, megabits per second (> 0).
        objective: ``"inference"`` (forward pass) or ``"training"`` (one
            split-learning step: forward and backward on both sides, the cut
            activations sent up and their gradients, of the same size, sent down;
            raw input data sent up has no gradient to send back).
        batch_size: items per pass (a mini-batch for training); compute time and
            bytes are taken to grow linearly with it.
        backward_factor: backward time / forward time of a vertex (training only);
            2 by the usual rule that a backward pass costs about two forward passes.
    """

    device_speed_factor: float
    server_speed_factor: float
    bandwidth_mbps: float
    objective: str = "inference"
    batch_size: int = 1
    backward_factor: float = 2.0

    def __post_init__(self) -> None:
        for name in ("device_speed_factor", "server_speed_factor", "bandwidth_mbps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise ValueError(f"{name}={value!r} must be a finite number > 0")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective={self.objective!r}; allowed: {list(OBJECTIVES)}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size!r} must be an integer >= 1")
        if not (math.isfinite(self.backward_factor) and self.backward_factor >= 0):
            raise ValueError(f"backward_factor={self.backward_factor!r} must be a finite number >= 0")

    @property
    def compute_multiplier(self) -> float:
        """Reference-CPU forward seconds of one item -> reference-CPU seconds of one step."""
        passes = 1.0 + self.backward_factor if self.objective == "training" else 1.0
        return passes * self.batch_size

    def device_time_s(self, latency_s: np.ndarray | float) -> np.ndarray | float:
        """Device seconds of a step for reference-CPU forward latency ``latency_s`` of one item."""
        return latency_s * self.compute_multiplier / self.device_speed_factor

    def server_time_s(self, latency_s: np.ndarray | float) -> np.ndarray | float:
        """Server seconds of a step for reference-CPU forward latency ``latency_s`` of one item."""
        return latency_s * self.compute_multiplier / self.server_speed_factor

    def transfer_time_s(self, tensor_bytes: np.ndarray | float,
                        gradient_bytes: np.ndarray | float | None = None) -> np.ndarray | float:
        """Link seconds of a step for cut tensors of ``tensor_bytes`` per item sent up.

        When training, ``gradient_bytes`` per item come back down (default: as many as went up,
        i.e. every cut tensor is an activation; the raw input has none).
        """
        link_bytes = tensor_bytes
        if self.objective == "training":
            link_bytes = link_bytes + (tensor_bytes if gradient_bytes is None else gradient_bytes)
        return link_bytes * self.batch_size * BITS_PER_BYTE / (self.bandwidth_mbps * BITS_PER_MEGABIT)


@dataclass(frozen=True)
class CutResult:
    """A closed device/server partition and its delay under one :class:`DelayModel`.

    Attributes:
        device_vertices: layer-graph vertices run on the device (the input among them).
        server_vertices: the others.
        delay_s: ``device_compute_s + server_compute_s + transfer_s``.
        device_compute_s: device seconds (of a step, for training).
        server_compute_s: server seconds.
        transfer_s: link seconds.
        cut_bytes: bytes of one item's tensors sent from device to server, each once.
        gradient_bytes: of those, the bytes whose gradients come back when training (the
            activations; the raw input has none).
    """

    device_vertices: frozenset[str]
    server_vertices: frozenset[str]
    delay_s: float
    device_compute_s: float
    server_compute_s: float
    transfer_s: float
    cut_bytes: int
    gradient_bytes: int


@dataclass(frozen=True)
class _Tensor:
    """The output of one unit that other units read (block-wise: all of them, bytes summed)."""

    producer: int
    consumers: tuple[int, ...]
    bytes: int
    gradient_bytes: int
    """Bytes whose gradient goes back when training: all of them, except the raw input's."""


@dataclass(frozen=True)
class _UnitGraph:
    """A layer graph coarsened into units (vertices, blocks, or merged groups of them)."""

    members: tuple[tuple[str, ...], ...]
    """Layer-graph vertices of each unit, in execution order; units in execution order."""
    latency_s: np.ndarray
    """Reference-CPU latency of each unit, one item."""
    tensors: tuple[_Tensor, ...]
    input_unit: int

    def coarsened(self, group_of: Sequence[int]) -> _UnitGraph:
        """The unit graph in which units with the same ``group_of`` value are one unit."""
        index = _dense_index(group_of)
        members = [[] for _ in range(max(index) + 1)]
        latency_s = np.zeros(len(members))
        for unit, group in enumerate(index):
            members[group] += self.members[unit]
            latency_s[group] += self.latency_s[unit]
        merged: dict[tuple[int, tuple[int, ...]], tuple[int, int]] = {}
        for tensor in self.tensors:
            producer = index[tensor.producer]
            consumers = tuple(sorted({index[c] for c in tensor.consumers} - {producer}))
            if consumers:
                size, gradient = merged.get((producer, consumers), (0, 0))
                merged[producer, consumers] = (size + tensor.bytes, gradient + tensor.gradient_bytes)
        return _UnitGraph(
            members=tuple(tuple(m) for m in members),
            latency_s=latency_s,
            tensors=tuple(_Tensor(p, c, size, gradient) for (p, c), (size, gradient) in merged.items()),
            input_unit=index[self.input_unit],
        )

    @cached_property
    def incidence(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per tensor: its producer unit, where its readers start in the flat reader list, its bytes,
        its gradient bytes; and the flat list of the readers of all tensors."""
        producers = np.array([tensor.producer for tensor in self.tensors], dtype=np.int64)
        reader_counts = [len(tensor.consumers) for tensor in self.tensors]
        starts = np.concatenate([[0], np.cumsum(reader_counts)[:-1]]).astype(np.int64)
        readers = np.array([c for tensor in self.tensors for c in tensor.consumers], dtype=np.int64)
        sizes = np.array([tensor.bytes for tensor in self.tensors], dtype=np.int64)
        gradients = np.array([tensor.gradient_bytes for tensor in self.tensors], dtype=np.int64)
        return producers, starts, sizes, gradients, readers

    def check_acyclic(self) -> None:
        """Raise if the units depend on each other in a cycle (blocks not contiguous in execution order)."""
        dependencies = nx.DiGraph((t.producer, c) for t in self.tensors for c in t.consumers)
        if not nx.is_directed_acyclic_graph(dependencies):
            cycle = [self.members[u][0] for u, _ in nx.find_cycle(dependencies)]
            raise ValueError(f"the blocks of vertices {cycle} depend on each other in a cycle; block-wise cuts "
                             f"need blocks that are contiguous in execution order")


def _vertex_unit_graph(graph: nx.DiGraph) -> _UnitGraph:
    """One unit per layer-graph vertex, units in execution order."""
    vertices = execution_order(graph)
    index = {vertex: i for i, vertex in enumerate(vertices)}
    raw_input = input_vertex(graph)
    tensors = tuple(
        _Tensor(index[v], tuple(sorted(index[c] for c in graph.successors(v))), graph.nodes[v]["output_bytes"],
                0 if v == raw_input else graph.nodes[v]["output_bytes"])
        for v in vertices if graph.out_degree(v)
    )
    return _UnitGraph(
        members=tuple((v,) for v in vertices),
        latency_s=np.array([graph.nodes[v]["latency_s"] for v in vertices], dtype=float),
        tensors=tensors,
        input_unit=index[raw_input],
    )


class CutProblem:
    """The device/server partition problem of one layer graph.

    Args:
        graph: a layer graph (see the profile contract).
        blockwise: partition whole blocks (each ``block`` one unit) instead of vertices.

    The flow network is built once; each :meth:`solve` only sets its
    capacities, so one problem serves many delay models.
    """

    def __init__(self, graph: nx.DiGraph, blockwise: bool = False):
        self.graph = graph
        self.blockwise = blockwise
        units = _vertex_unit_graph(graph)
        if blockwise:
            units = units.coarsened([graph.nodes[unit[0]]["block"] for unit in units.members])
        units.check_acyclic()
        self._units = units
        merged_units, self._merged_unit = _merged(units)
        """The unit of the flow network that each unit was merged into."""
        self._solver = _FlowSolver(merged_units)
        self._all_server = np.arange(self.unit_count) == units.input_unit

    @property
    def unit_count(self) -> int:
        """Number of vertices (block-wise: blocks) the problem partitions."""
        return len(self._units.members)

    @property
    def flow_unit_count(self) -> int:
        """Number of units left in the flow network once never-separated ones are merged."""
        return len(self._solver.units.members)

    def evaluate(self, device_vertices: Collection[str], delay: DelayModel) -> CutResult:
        """The delay of running ``device_vertices`` on the device and every other vertex on the server.

        Raises:
            ValueError: a vertex is unknown, the input is not on the device, the
                partition is not closed, or (block-wise) it splits a block.
        """
        return self._result(self._device_mask(device_vertices), delay)

    def solve(self, delay: DelayModel, flow_func: Callable = preflow_push) -> CutResult:
        """The closed partition of least delay: the better of a minimum s-t cut of the merged
        units (see :func:`_mergeable_pairs`) and the all-server partition.

        ``flow_func`` is a networkx max-flow function that accepts a prebuilt
        ``residual`` network (preflow_push, shortest_augmenting_path, edmonds_karp,
        dinitz, boykov_kolmogorov).
        """
        candidates = np.stack([self._solver.device_mask(delay, flow_func)[self._merged_unit], self._all_server])
        device_s, server_s, transfer_s, *_ = self._delays(candidates, delay)
        return self._result(candidates[int(np.argmin(device_s + server_s + transfer_s))], delay)

    @cached_property
    def closed_partitions(self) -> np.ndarray:
        """Every closed partition as a boolean row (True = unit on the device), by size then bits."""
        needed = [0] * self.unit_count
        for tensor in self._units.tensors:
            for consumer in tensor.consumers:
                needed[consumer] |= 1 << tensor.producer
        start = 1 << self._units.input_unit
        seen = {start}
        frontier = [start]
        while frontier:
            grown = []
            for down_set in frontier:
                for unit, predecessors in enumerate(needed):
                    larger = down_set | 1 << unit
                    if larger != down_set and predecessors & down_set == predecessors and larger not in seen:
                        seen.add(larger)
                        grown.append(larger)
            frontier = grown
        ordered = sorted(seen, key=lambda down_set: (down_set.bit_count(), down_set))
        return np.array([[down_set >> unit & 1 for unit in range(self.unit_count)] for down_set in ordered],
                        dtype=bool)

    def brute_force(self, delay: DelayModel) -> CutResult:
        """The closed partition of least delay, by evaluating every one of :attr:`closed_partitions`."""
        masks = self.closed_partitions
        device_s, server_s, transfer_s, *_ = self._delays(masks, delay)
        return self._result(masks[int(np.argmin(device_s + server_s + transfer_s))], delay)

    def _device_mask(self, device_vertices: Collection[str]) -> np.ndarray:
        device = set(device_vertices)
        unknown = sorted(device - set(self.graph.nodes))
        if unknown:
            raise ValueError(f"unknown vertex {unknown[0]!r}: not in profile {self.graph.graph.get('model')!r}")
        mask = np.zeros(self.unit_count, dtype=bool)
        for unit, members in enumerate(self._units.members):
            on_device = [v in device for v in members]
            if any(on_device) != all(on_device):
                raise ValueError(f"block {self.graph.nodes[members[0]]['block']!r} is split; a block-wise "
                                 f"partition keeps {list(members)} together")
            mask[unit] = on_device[0]
        if not mask[self._units.input_unit]:
            raise ValueError(f"the input {self._units.members[self._units.input_unit][0]!r} must be on the device")
        for tensor in self._units.tensors:
            if not mask[tensor.producer] and mask[list(tensor.consumers)].any():
                raise ValueError(f"partition is not closed: {self._units.members[tensor.producer][-1]!r} runs on "
                                 f"the server but a vertex that reads it runs on the device")
        return mask

    def _delays(self, device_masks: np.ndarray, delay: DelayModel) -> tuple[np.ndarray, ...]:
        """Device, server and transfer seconds, cut bytes and gradient bytes of each row of ``device_masks``."""
        latency_s = self._units.latency_s
        device_s = device_masks @ delay.device_time_s(latency_s)
        server_s = ~device_masks @ delay.server_time_s(latency_s)
        producers, starts, tensor_bytes, gradient_bytes, readers = self._units.incidence
        if not len(producers):
            nothing = np.zeros(len(device_masks), dtype=np.int64)
            return device_s, server_s, np.zeros(len(device_masks)), nothing, nothing
        read_on_server = np.logical_or.reduceat(~device_masks[:, readers], starts, axis=1)
        cut = device_masks[:, producers] & read_on_server
        cut_bytes, cut_gradient_bytes = cut @ tensor_bytes, cut @ gradient_bytes
        return device_s, server_s, delay.transfer_time_s(cut_bytes, cut_gradient_bytes), cut_bytes, cut_gradient_bytes

    def _result(self, mask: np.ndarray, delay: DelayModel) -> CutResult:
        device_s, server_s, transfer_s, cut_bytes, gradient_bytes = (
            x[0].item() for x in self._delays(mask[None, :], delay))
        device_vertices = frozenset(v for unit in np.flatnonzero(mask) for v in self._units.members[unit])
        return CutResult(
            device_vertices=device_vertices,
            server_vertices=frozenset(self.graph.nodes) - device_vertices,
            delay_s=device_s + server_s + transfer_s,
            device_compute_s=device_s,
            server_compute_s=server_s,
            transfer_s=transfer_s,
            cut_bytes=cut_bytes,
            gradient_bytes=gradient_bytes,
        )


def _mergeable_pairs(units: _UnitGraph, all_server_bytes: int) -> list[tuple[int, int]]:
    """Pairs of units that some optimal closed partition keeps on the same side, or else that
    is beaten by the *all-server* partition (only the input unit on the device).

    Two rules, for a server at least as fast as the device:

    1. A unit v (not the input) read by one unit w only, where v reads no more
       bytes than it makes: (v, w). A partition with v on the device and w on
       the server gets no worse by moving v to the server: v computes no slower
       there, its output stops crossing, and at most its inputs start crossing.
       Such moves all go one way, so repeating them ends in a partition as good
       that separates no such pair.
    2. A tensor of at least ``all_server_bytes`` (what the input sends when all
       else runs on the server): (producer, reader) for each reader. A
       partition sending it costs at least as much as the all-server one, which
       computes everything no slower and sends no more bytes.

    So the best partition that separates no pair, or the all-server one, is
    optimal (moves of rule 1 never make a partition worse, so never make it
    lose to the all-server one). The same holds again for the graph of merged
    units, with the same ``all_server_bytes``. When the device is faster,
    running everything on the device is optimal and separates no pair.
    """
    readers = [set() for _ in units.members]
    in_bytes = [0] * len(units.members)
    out_bytes = [0] * len(units.members)
    for tensor in units.tensors:
        out_bytes[tensor.producer] += tensor.bytes
        readers[tensor.producer].update(tensor.consumers)
        for consumer in tensor.consumers:
            in_bytes[consumer] += tensor.bytes
    single_reader = [(v, next(iter(readers[v]))) for v in range(len(units.members))
                     if v != units.input_unit and len(readers[v]) == 1 and in_bytes[v] <= out_bytes[v]]
    too_large = [(tensor.producer, reader) for tensor in units.tensors
                 if tensor.bytes >= all_server_bytes for reader in tensor.consumers]
    return single_reader + too_large


def _merged(units: _UnitGraph) -> tuple[_UnitGraph, list[int]]:
    """Merge the pairs of :func:`_mergeable_pairs`, then those of the merged graph, until none are
    left; returns the merged graph and, for each unit of ``units``, its merged unit."""
    merged_unit = list(range(len(units.members)))
    all_server_bytes = sum(tensor.bytes for tensor in units.tensors if tensor.producer == units.input_unit)
    while pairs := _mergeable_pairs(units, all_server_bytes):
        groups = nx.utils.UnionFind(range(len(units.members)))
        for pair in pairs:
            groups.union(*pair)
        representative = [groups[unit] for unit in range(len(units.members))]
        units = units.coarsened(representative)
        new_index = _dense_index(representative)
        merged_unit = [new_index[unit] for unit in merged_unit]
    return units, merged_unit


def _dense_index(group_of: Sequence[int]) -> list[int]:
    """Group labels renumbered 0, 1, ... in order of first appearance."""
    position = {group: i for i, group in enumerate(dict.fromkeys(group_of))}
    return [position[group] for group in group_of]


class _FlowSolver:
    """The DADS flow network of one unit graph, built once; :meth:`device_mask` sets capacities and cuts."""

    def __init__(self, units: _UnitGraph):
        self.units = units
        unit_range = range(len(units.members))
        self._served_units = [unit for unit in unit_range if unit != units.input_unit]
        self._tensor_bytes = np.array([tensor.bytes for tensor in units.tensors], dtype=float)
        self._gradient_bytes = np.array([tensor.gradient_bytes for tensor in units.tensors], dtype=float)
        bounded = [(unit, _SINK) for unit in unit_range] + [(_SOURCE, unit) for unit in self._served_units]
        unbounded = [(_SOURCE, units.input_unit)]
        for number, tensor in enumerate(units.tensors):
            head = tensor.consumers[0] if len(tensor.consumers) == 1 else (_AUXILIARY, number)
            bounded.append((tensor.producer, head))
            if head not in tensor.consumers:
                unbounded += [(head, consumer) for consumer in tensor.consumers]
            unbounded += [(consumer, tensor.producer) for consumer in tensor.consumers]
        self._network = nx.DiGraph()
        self._network.add_edges_from(bounded, capacity=1)
        self._network.add_edges_from(unbounded)
        self._residual = build_residual_network(self._network, "capacity")
        self._bounded_edges = bounded
        self._unbounded_edges = list(dict.fromkeys(unbounded))

    def device_mask(self, delay: DelayModel, flow_func: Callable) -> np.ndarray:
        """True for each unit on the device side of a minimum cut (the largest such side).

        Each unit cuts exactly one of its source and sink edges, so both drop the
        smaller of their two capacities (a constant) before the flow is computed.
        Capacities are whole picoseconds, as Python integers.
        """
        device_s = delay.device_time_s(self.units.latency_s)
        server_s = delay.server_time_s(self.units.latency_s)
        common_s = np.minimum(device_s, server_s)
        seconds = np.concatenate([(device_s - common_s), (server_s - common_s)[self._served_units],
                                  delay.transfer_time_s(self._tensor_bytes, self._gradient_bytes)])
        capacities_ps = [round(value) for value in (seconds * PICOSECONDS_PER_SECOND).tolist()]
        residual = self._residual
        for (u, v), capacity_ps in zip(self._bounded_edges, capacities_ps):
            residual[u][v]["capacity"] = capacity_ps
        unbounded_ps = 3 * sum(capacities_ps) + 1
        residual.graph["inf"] = unbounded_ps
        for u, v in self._unbounded_edges:
            residual[u][v]["capacity"] = unbounded_ps
        flow_func(self._network, _SOURCE, _SINK, residual=residual, value_only=True)
        server_side = _reaching_sink(residual)
        return np.array([unit not in server_side for unit in range(len(self.units.members))])


def _reaching_sink(residual: nx.DiGraph) -> set:
    """Vertices with a path of unsaturated edges to the sink: the smallest sink side of a minimum cut."""
    reached = {_SINK}
    stack = [_SINK]
    while stack:
        vertex = stack.pop()
        for predecessor, edge in residual.pred[vertex].items():
            if predecessor not in reached and edge["flow"] < edge["capacity"]:
                reached.add(predecessor)
                stack.append(predecessor)
    return reached


def optimal_cut(graph: nx.DiGraph, delay: DelayModel, blockwise: bool = False) -> CutResult:
    """The least-delay closed device/server partition of ``graph``, by a minimum s-t cut."""
    return CutProblem(graph, blockwise).solve(delay)


def partition_delay(graph: nx.DiGraph, device_vertices: Collection[str], delay: DelayModel) -> CutResult:
    """The delay of running ``device_vertices`` on the device and the rest on the server."""
    return CutProblem(graph).evaluate(device_vertices, delay)


def brute_force_cut(graph: nx.DiGraph, delay: DelayModel, blockwise: bool = False) -> CutResult:
    """The least-delay closed partition by evaluating every closed partition (small graphs only)."""
    return CutProblem(graph, blockwise).brute_force(delay)
