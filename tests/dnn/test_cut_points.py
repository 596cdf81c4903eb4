"""Cut points: one tensor crosses, no block is split; layer boundaries precede a weighted layer."""

from __future__ import annotations

import networkx as nx
import pytest

from envs.dnn.cut_points import execution_order, input_vertex, layer_boundaries, valid_cut_points
from envs.dnn.profile_io import list_profiles, load_profile

MODELS = list_profiles()


def crossing_tensors(graph: nx.DiGraph, prefix: set[str]) -> set[str]:
    """Vertices of ``prefix`` whose output a vertex outside it reads."""
    return {u for u, v in graph.edges if u in prefix and v not in prefix}


@pytest.mark.parametrize("model", MODELS)
def test_cut_points_are_exactly_the_single_tensor_gaps_between_blocks(model):
    graph = load_profile(model)
    order = execution_order(graph)
    expected = []
    for position, vertex in enumerate(order[1:-1], start=1):
        prefix = set(order[: position + 1])
        blocks_before = {graph.nodes[v]["block"] for v in prefix}
        blocks_after = {graph.nodes[v]["block"] for v in order[position + 1:]}
        if crossing_tensors(graph, prefix) == {vertex} and not blocks_before & blocks_after:
            expected.append(vertex)
    assert valid_cut_points(graph) == expected


@pytest.mark.parametrize("model", ["resnet18", "resnet50", "mobilenet_v2"])
def test_residual_nets_are_cut_only_between_blocks(model):
    graph = load_profile(model)
    cut_points = valid_cut_points(graph)
    residual_blocks = {graph.nodes[v]["block"] for v, op in graph.nodes(data="op") if op == "add"}
    assert len(residual_blocks) >= 8
    order = execution_order(graph)
    for vertex in cut_points:
        block = graph.nodes[vertex]["block"]
        assert all(graph.nodes[v]["block"] != block for v in order[order.index(vertex) + 1:])
    # every residual block ends at a cut point unless it is followed only by the classifier head
    ends = {graph.nodes[v]["block"] for v in cut_points}
    assert len(residual_blocks & ends) >= len(residual_blocks) - 1


@pytest.mark.parametrize("app", ["mnist", "fashionmnist", "cifar100"])
def test_splitplace_nets(app):
    chain = load_profile(f"splitplace_{app}_layer")
    order = execution_order(chain)
    assert valid_cut_points(chain) == order[1:-1]  # a chain can be cut after any layer
    # SplitPlace's four fragments: conv1 | conv2 + pool | fc1 | fc2
    assert layer_boundaries(chain) == ["relu1", "flatten", "relu3"]
    assert valid_cut_points(load_profile(f"splitplace_{app}_semantic")) == []  # parallel branches


@pytest.mark.parametrize("model", MODELS)
def test_layer_boundaries_precede_a_weighted_layer(model):
    graph = load_profile(model)
    order = execution_order(graph)
    boundaries = layer_boundaries(graph)
    assert set(boundaries) <= set(valid_cut_points(graph))
    for vertex in boundaries:
        following = graph.nodes[order[order.index(vertex) + 1]]
        assert following["op"] in {"conv2d", "linear"}
    assert input_vertex(graph) == order[0]
