"""Where a layer graph can be cut into a chain of fragments.

A *cut point* is a vertex after which the graph can be cut in execution order:
the vertices up to it (the prefix) and those after it (the suffix) are joined by
exactly one tensor, the cut point's own output (it may be read by several
vertices of the suffix), and no ``block`` has vertices on both sides. In a
residual network that leaves only the gaps between residual blocks (inside a
block, the block's input waits for the addition). The input vertex (nothing to
cut off) and the output vertex (nothing left) are never cut points.

A *layer boundary* is a cut point followed in execution order by a weighted
layer (a vertex with both multiply-accumulates and parameters: a convolution or
a linear layer). It keeps each layer together with the activation, pooling and
normalisation after it, e.g. ``conv1+relu1 | conv2+relu2+pool+flatten | fc1+relu3 | fc2``
for SplitPlace's layer net.
"""

from __future__ import annotations

import networkx as nx


def execution_order(graph: nx.DiGraph) -> list[str]:
    """The vertices of a layer graph sorted by their ``order`` attribute."""
    return sorted(graph.nodes, key=lambda vertex: graph.nodes[vertex]["order"])


def input_vertex(graph: nx.DiGraph) -> str:
    """The vertex of op ``"input"`` (the model's input)."""
    inputs = [vertex for vertex, op in graph.nodes(data="op") if op == "input"]
    if len(inputs) != 1:
        raise ValueError(f"a layer graph needs exactly one vertex with op 'input', found {inputs}")
    return inputs[0]


def valid_cut_points(graph: nx.DiGraph) -> list[str]:
    """The cut points of ``graph`` in execution order (see the module docstring)."""
    order = execution_order(graph)
    last_of_block = {graph.nodes[vertex]["block"]: vertex for vertex in order}
    never = {order[-1], graph.graph["output_vertex"]}
    unread = {}  # prefix vertex -> how many suffix vertices still read its output
    cut_points = []
    for vertex in order:
        for producer in graph.predecessors(vertex):
            unread[producer] -= 1
            if not unread[producer]:
                del unread[producer]
        if graph.out_degree(vertex):
            unread[vertex] = graph.out_degree(vertex)
        ends_block = last_of_block[graph.nodes[vertex]["block"]] == vertex
        if len(unread) == 1 and vertex in unread and ends_block and vertex not in never \
                and graph.nodes[vertex]["op"] != "input":
            cut_points.append(vertex)
    return cut_points


def layer_boundaries(graph: nx.DiGraph) -> list[str]:
    """The cut points of ``graph`` directly followed by a weighted layer, in execution order."""
    order = execution_order(graph)
    following = dict(zip(order, order[1:]))
    return [
        vertex for vertex in valid_cut_points(graph)
        if graph.nodes[following[vertex]]["macs"] > 0 and graph.nodes[following[vertex]]["param_bytes"] > 0
    ]
