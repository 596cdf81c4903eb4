"""Turn groups of layer-graph vertices into the fragments and transfers of a split plan.

The input vertex of a layer graph stands for the job's origin
(:data:`~envs.dnn.plan.ORIGIN`): the fragments that read the input receive it
from the origin, and the fragment holding the graph's ``output_vertex`` sends
its output back there.

Costs of a fragment are sums over its vertices: multiply-accumulates, the
per-vertex reference latencies (so the fragments of any split add up to the
same total; the whole-model ``total_latency_s`` of a profile is a separate,
usually smaller, measurement) and parameter bytes. Its peak activation memory
comes from a liveness sweep in execution order: a tensor is alive from the
moment it is produced (or received) until its last reader in the fragment has
run, or to the end of the fragment when it is sent on. Views and in-place ops
are counted as new tensors, which errs on the safe side.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import networkx as nx

from envs.dnn.cut_points import execution_order, input_vertex
from envs.dnn.plan import ORIGIN, Fragment, Transfer


def layer_latency_sum_s(graph: nx.DiGraph) -> float:
    """Reference-CPU seconds of the whole model as the simulators count it: the sum of the per-vertex
    latencies (what the fragments of any split of ``graph`` add up to)."""
    return float(sum(latency_s for _vertex, latency_s in graph.nodes(data="latency_s")))


def make_fragment(graph: nx.DiGraph, vertices: Collection[str], name: str | None = None) -> Fragment:
    """The fragment running ``vertices`` of ``graph`` (named ``first..last`` vertex unless ``name`` is given)."""
    wanted = set(vertices)
    unknown = sorted(wanted - set(graph.nodes))
    if unknown or not wanted:
        raise ValueError(f"a fragment needs known vertices; unknown: {unknown}" if unknown else
                         "a fragment needs at least one vertex")
    ordered = [vertex for vertex in execution_order(graph) if vertex in wanted]
    attributes = [graph.nodes[vertex] for vertex in ordered]
    return Fragment(
        name=name or (ordered[0] if len(ordered) == 1 else f"{ordered[0]}..{ordered[-1]}"),
        macs=sum(a["macs"] for a in attributes),
        reference_latency_s=sum(a["latency_s"] for a in attributes),
        param_bytes=sum(a["param_bytes"] for a in attributes),
        activation_bytes=peak_activation_bytes(graph, ordered),
        vertices=tuple(ordered),
    )


def peak_activation_bytes(graph: nx.DiGraph, vertices: Collection[str]) -> int:
    """Largest total of tensors alive at once while ``vertices`` run in execution order.

    Received tensors are alive from the start; a tensor made here lives until its
    last reader here, or to the end if it leaves the fragment (or is the model output).
    """
    inside = set(vertices)
    ordered = [vertex for vertex in execution_order(graph) if vertex in inside]
    step = {vertex: i for i, vertex in enumerate(ordered)}
    end = len(ordered)
    freed_after: dict[int, int] = {}  # step -> bytes that die once it has run
    alive_bytes = 0
    for producer in {p for v in ordered for p in graph.predecessors(v)} - inside:
        alive_bytes += graph.nodes[producer]["output_bytes"]
        last = max(step[v] for v in graph.successors(producer) if v in inside)
        freed_after[last] = freed_after.get(last, 0) + graph.nodes[producer]["output_bytes"]
    output_vertex = graph.graph["output_vertex"]
    peak = alive_bytes
    for i, vertex in enumerate(ordered):
        size = graph.nodes[vertex]["output_bytes"]
        alive_bytes += size
        peak = max(peak, alive_bytes)
        readers = list(graph.successors(vertex))
        leaves = vertex == output_vertex or any(reader not in inside for reader in readers)
        last = end if leaves else max((step[reader] for reader in readers), default=i)
        freed_after[last] = freed_after.get(last, 0) + size
        alive_bytes -= freed_after.pop(i, 0)
    return peak


def partition_fragments(
    graph: nx.DiGraph, groups: Sequence[Collection[str]], names: Sequence[str] | None = None
) -> tuple[tuple[Fragment, ...], tuple[Transfer, ...]]:
    """Fragments of ``groups`` (which cover every vertex but the input, once) and the transfers between them.

    Each tensor is sent once to every other fragment that reads it; the
    transfers from one fragment to another are summed into one. Transfers are
    sorted by (source, target), the origin first.

    Raises:
        ValueError: groups overlap, miss a vertex, contain the input or an
            unknown vertex, or depend on each other in a cycle.
    """
    source_vertex = input_vertex(graph)
    fragment_of: dict[str, int] = {}
    for number, group in enumerate(groups):
        for vertex in group:
            if vertex in fragment_of:
                raise ValueError(f"vertex {vertex!r} is in fragments {fragment_of[vertex]} and {number}")
            fragment_of[vertex] = number
    expected = set(graph.nodes) - {source_vertex}
    if set(fragment_of) != expected:
        odd = sorted(set(fragment_of) ^ expected)
        raise ValueError(f"fragments must cover every vertex except the input {source_vertex!r} exactly once; "
                         f"wrong: {odd[:5]}")
    fragment_of[source_vertex] = ORIGIN
    transfer_bytes: dict[tuple[int, int], int] = {}
    for producer in graph.nodes:
        targets = {fragment_of[reader] for reader in graph.successors(producer)} - {fragment_of[producer]}
        for target in targets:
            key = (fragment_of[producer], target)
            transfer_bytes[key] = transfer_bytes.get(key, 0) + graph.nodes[producer]["output_bytes"]
    output_vertex = graph.graph["output_vertex"]
    transfer_bytes[fragment_of[output_vertex], ORIGIN] = graph.nodes[output_vertex]["output_bytes"]
    fragment_graph = nx.DiGraph(key for key in transfer_bytes if ORIGIN not in key)
    if not nx.is_directed_acyclic_graph(fragment_graph):
        raise ValueError(f"fragments depend on each other in a cycle: {nx.find_cycle(fragment_graph)}")
    fragments = tuple(
        make_fragment(graph, group, None if names is None else names[number]) for number, group in enumerate(groups)
    )
    transfers = tuple(Transfer(source, target, size) for (source, target), size in sorted(transfer_bytes.items()))
    return fragments, transfers
