"""The optimal device/server cut: min-cut against brute force, extremes, the cost model, bad input."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from networkx.algorithms import flow

from envs.dnn.cut_points import input_vertex
from envs.dnn.mincut import CutProblem, DelayModel, brute_force_cut, optimal_cut, partition_delay
from envs.dnn.models.splitplace import APPS, SemanticNet
from envs.dnn.profile_io import load_profile
from envs.dnn.profiler import profile_module

BANDWIDTHS_MBPS = (0.1, 1.0, 10.0, 100.0, 1000.0)
SPEED_RATIOS = (0.5, 1.0, 4.0, 20.0)
"""Server speed / device speed."""
OBJECTIVES = (("inference", 1), ("training", 16))
"""(objective, batch size) pairs."""
ABSOLUTE_TOLERANCE_S = 1e-9
"""Min-cut capacities are whole picoseconds; a few of them per unit is the most the rounding can cost."""

# -- hand-built layer graphs with the profile contract's attributes ----------------------------------

CHAIN = [("x", "a"), ("a", "b"), ("b", "c"), ("c", "d"), ("d", "e")]
RESIDUAL = [  # stem, a block with an identity skip, a block with a downsampling skip, classifier
    ("x", "stem"), ("stem", "b1c1"), ("b1c1", "b1c2"), ("b1c2", "b1add"), ("stem", "b1add"), ("b1add", "b1out"),
    ("b1out", "b2c1"), ("b2c1", "b2c2"), ("b2c2", "b2add"), ("b1out", "b2down"), ("b2down", "b2add"),
    ("b2add", "b2out"), ("b2out", "fc"),
]
RESIDUAL_BLOCKS = {"b1c1": "b1", "b1c2": "b1", "b1add": "b1", "b1out": "b1",
                   "b2c1": "b2", "b2c2": "b2", "b2down": "b2", "b2add": "b2", "b2out": "b2"}
MULTI_BRANCH = [  # three branches read the input, a concatenation gathers them
    ("x", "p1"), ("p1", "q1"), ("q1", "r1"), ("x", "p2"), ("p2", "q2"), ("x", "p3"), ("p3", "q3"), ("q3", "r3"),
    ("r1", "cat"), ("q2", "cat"), ("r3", "cat"), ("cat", "fc"),
]
MULTI_BRANCH_BLOCKS = {"p1": "br1", "q1": "br1", "r1": "br1", "p2": "br2", "q2": "br2", "p3": "br3", "q3": "br3",
                       "r3": "br3"}
SHORTCUT = [("x", "shrink"), ("shrink", "heavy"), ("heavy", "join"), ("x", "wide"), ("wide", "join")]
"""Two paths from the input to the output; offloading ``heavy`` alone would send its output back."""
TOPOLOGIES = {"chain": (CHAIN, {}), "residual": (RESIDUAL, RESIDUAL_BLOCKS),
              "multi-branch": (MULTI_BRANCH, MULTI_BRANCH_BLOCKS), "shortcut": (SHORTCUT, {})}


def layer_graph(topology: str, latency_s, output_bytes) -> nx.DiGraph:
    """A layer graph of one of :data:`TOPOLOGIES`; vertex i in execution order gets ``latency_s[i]``
    (the input: 0) and ``output_bytes[i]``."""
    edges, blocks = TOPOLOGIES[topology]
    graph = nx.DiGraph(edges)
    first_seen = {vertex: i for i, vertex in reversed(list(enumerate(itertools.chain(*edges))))}
    order = list(nx.lexicographical_topological_sort(graph, key=first_seen.get))
    for number, vertex in enumerate(order):
        graph.add_node(vertex, op="input" if number == 0 else "conv2d", target=vertex, macs=0 if number == 0 else 1,
                       param_bytes=0, output_shape=[output_bytes[number] // 4],
                       output_bytes=output_bytes[number], latency_s=0.0 if number == 0 else latency_s[number],
                       block=blocks.get(vertex, vertex), order=number)
    for u, v in graph.edges:
        graph.edges[u, v]["bytes"] = graph.nodes[u]["output_bytes"]
    graph.graph.update(model="hand-built", output_vertex=order[-1], input_bytes=output_bytes[0])
    return graph


def vertex_count(topology: str) -> int:
    return len(set(itertools.chain(*TOPOLOGIES[topology][0])))


def random_layer_graphs(topology: str):
    count = vertex_count(topology)
    return st.builds(
        lambda latency_s, output_bytes: layer_graph(topology, latency_s, output_bytes),
        st.lists(st.floats(1e-6, 1e-2), min_size=count, max_size=count),
        st.lists(st.integers(4, 4_000_000), min_size=count, max_size=count),
    )


delay_models = st.builds(
    DelayModel,
    device_speed_factor=st.floats(0.1, 10.0),
    server_speed_factor=st.floats(0.1, 100.0),
    bandwidth_mbps=st.floats(0.01, 10_000.0),
    objective=st.sampled_from(["inference", "training"]),
    batch_size=st.integers(1, 64),
)


def assert_optimal(problem: CutProblem, delay: DelayModel) -> None:
    """The min-cut partition is closed and as good as the best of all closed partitions."""
    cut = problem.solve(delay)
    best = problem.brute_force(delay)
    assert cut.delay_s == pytest.approx(best.delay_s, rel=1e-9, abs=ABSOLUTE_TOLERANCE_S)
    assert problem.evaluate(cut.device_vertices, delay).delay_s == pytest.approx(cut.delay_s)


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_min_cut_equals_brute_force_on_hand_built_graphs(topology, data):
    graph = data.draw(random_layer_graphs(topology))
    delay = data.draw(delay_models)
    for blockwise in (False, True):
        assert_optimal(CutProblem(graph, blockwise), delay)


# -- shipped and freshly profiled models --------------------------------------------------------------


@pytest.fixture(scope="module")
def two_branch_semantic_net() -> nx.DiGraph:
    """A SplitPlace semantic net with two branches (100 closed partitions), profiled here."""
    return profile_module(SemanticNet("mnist", branches=2), APPS["mnist"].example_input(), "semantic2", repeats=1)


MODELS = ["splitplace_mnist_layer", "resnet18", "resnet50", "mobilenet_v2", "splitplace_cifar100_semantic"]
"""A chain, residual nets, an inverted-residual net and a multi-branch net (block-wise: its full
DAG has 10^5 closed partitions, see the slow test)."""


@pytest.mark.parametrize("model", MODELS + ["two-branch semantic"])
def test_min_cut_equals_brute_force_on_models(model, two_branch_semantic_net):
    graph = two_branch_semantic_net if model == "two-branch semantic" else load_profile(model)
    problems = [CutProblem(graph, blockwise=True)]
    if not model.endswith("_semantic"):
        problems.append(CutProblem(graph))
    for problem, speed_ratio, bandwidth_mbps, (objective, batch_size) in itertools.product(
            problems, SPEED_RATIOS, BANDWIDTHS_MBPS, OBJECTIVES):
        assert_optimal(problem, DelayModel(1.0, speed_ratio, bandwidth_mbps, objective, batch_size))


@pytest.mark.slow
def test_min_cut_equals_brute_force_on_five_branch_semantic_net():
    problem = CutProblem(load_profile("splitplace_mnist_semantic"))
    for speed_ratio, bandwidth_mbps in itertools.product(SPEED_RATIOS, BANDWIDTHS_MBPS):
        assert_optimal(problem, DelayModel(1.0, speed_ratio, bandwidth_mbps))


@pytest.mark.parametrize("model", ["resnet50", "mobilenet_v2"])
def test_block_wise_cut_is_the_best_partition_of_whole_blocks(model):
    graph = load_profile(model)
    full, blockwise = CutProblem(graph), CutProblem(graph, blockwise=True)
    order = sorted(graph, key=lambda v: graph.nodes[v]["order"])
    block_of = dict(graph.nodes(data="block"))
    whole_block_device_sets = []
    for partition in full.closed_partitions:
        device = {v for v, on_device in zip(order, partition) if on_device}
        if not {block_of[v] for v in device} & {block_of[v] for v in graph if v not in device}:
            whole_block_device_sets.append(device)
    assert len(whole_block_device_sets) == len(blockwise.closed_partitions)
    for speed_ratio, bandwidth_mbps in itertools.product(SPEED_RATIOS, BANDWIDTHS_MBPS):
        delay = DelayModel(1.0, speed_ratio, bandwidth_mbps)
        cut = blockwise.solve(delay)
        best_s = min(full.evaluate(device, delay).delay_s for device in whole_block_device_sets)
        assert cut.delay_s == pytest.approx(best_s, rel=1e-9, abs=ABSOLUTE_TOLERANCE_S)
        assert {block_of[v] for v in cut.device_vertices}.isdisjoint(block_of[v] for v in cut.server_vertices)
        assert cut.delay_s >= full.solve(delay).delay_s - ABSOLUTE_TOLERANCE_S


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("blockwise", [False, True])
def test_extreme_bandwidths(model, blockwise):
    graph = load_profile(model)
    problem = CutProblem(graph, blockwise)
    stalled = problem.solve(DelayModel(1.0, 100.0, bandwidth_mbps=1e-9))
    assert stalled.device_vertices == set(graph.nodes) and stalled.cut_bytes == 0
    flooded = problem.solve(DelayModel(1.0, 100.0, bandwidth_mbps=1e12))
    assert flooded.device_vertices == {input_vertex(graph)}
    assert flooded.cut_bytes == graph.graph["input_bytes"]


def test_every_networkx_flow_function_finds_the_same_delay():
    problem = CutProblem(load_profile("resnet18"))
    delay = DelayModel(1.0, 8.0, 20.0, "training", 32)
    delays = [problem.solve(delay, flow_func).delay_s for flow_func in (
        flow.preflow_push, flow.edmonds_karp, flow.shortest_augmenting_path, flow.dinitz, flow.boykov_kolmogorov)]
    assert delays == pytest.approx([problem.brute_force(delay).delay_s] * len(delays), abs=ABSOLUTE_TOLERANCE_S)


# -- the cost model ---------------------------------------------------------------------------------


def test_delay_of_a_partition_follows_the_documented_cost_model():
    graph = load_profile("resnet18")
    order = sorted(graph, key=lambda v: graph.nodes[v]["order"])
    device = set(order[: len(order) // 2])
    device |= {u for v in device for u in nx.ancestors(graph, v)}
    latency = {v: graph.nodes[v]["latency_s"] for v in graph}
    sent = {u for u in device if any(v not in device for v in graph.successors(u))}
    inference = partition_delay(graph, device, DelayModel(2.0, 10.0, 80.0))
    assert inference.device_compute_s == pytest.approx(sum(latency[v] for v in device) / 2.0)
    assert inference.server_compute_s == pytest.approx(sum(latency[v] for v in graph if v not in device) / 10.0)
    assert inference.cut_bytes == sum(graph.nodes[u]["output_bytes"] for u in sent)
    assert inference.transfer_s == pytest.approx(inference.cut_bytes * 8 / 80e6)
    training = partition_delay(graph, device, DelayModel(2.0, 10.0, 80.0, "training", 8, backward_factor=2.0))
    assert training.device_compute_s == pytest.approx(3 * 8 * inference.device_compute_s)
    assert training.server_compute_s == pytest.approx(3 * 8 * inference.server_compute_s)
    assert training.transfer_s == pytest.approx(2 * 8 * inference.transfer_s)
    assert training.delay_s == pytest.approx(training.device_compute_s + training.server_compute_s
                                             + training.transfer_s)


@pytest.mark.parametrize("model", ["resnet18", "splitplace_mnist_layer"])
def test_raw_input_sent_for_training_has_no_gradient_coming_back(model):
    graph = load_profile(model)
    raw_input = input_vertex(graph)
    upload_s = graph.nodes[raw_input]["output_bytes"] * 4 * 8 / 20e6
    training = DelayModel(1.0, 50.0, 20.0, "training", 4)
    all_server = partition_delay(graph, {raw_input}, training)
    assert all_server.gradient_bytes == 0
    assert all_server.transfer_s == pytest.approx(upload_s)
    one_layer = {raw_input, *graph.successors(raw_input)}
    one_layer |= {u for v in one_layer for u in nx.ancestors(graph, v)}
    split = partition_delay(graph, one_layer, training)
    assert split.gradient_bytes == split.cut_bytes > 0
    assert split.transfer_s == pytest.approx(2 * split.cut_bytes * 4 * 8 / 20e6)
    for blockwise in (False, True):
        assert optimal_cut(graph, training, blockwise=blockwise).delay_s == pytest.approx(
            brute_force_cut(graph, training, blockwise=blockwise).delay_s)


def test_a_tensor_read_by_several_server_vertices_is_paid_once():
    count = vertex_count("multi-branch")
    graph = layer_graph("multi-branch", [1e-3] * count, [1000] + [10] * (count - 1))
    cut = partition_delay(graph, {"x"}, DelayModel(1.0, 1.0, 1.0))
    assert cut.cut_bytes == 1000
    assert optimal_cut(graph, DelayModel(1.0, 1e3, 1e6)).device_vertices == {"x"}


def test_the_cut_never_sends_a_tensor_back_to_the_device():
    # x, shrink, heavy, wide, join: ignoring closure, offloading only ``heavy`` would cost 0.1 s;
    # every closed partition that offloads it also ships 100 MB, so all stays on the device (1 s).
    graph = layer_graph("shortcut", [0.0, 1e-4, 1.0, 1e-4, 1e-4], [10**8, 1000, 10, 10**8, 10])
    cut = optimal_cut(graph, DelayModel(1.0, 10.0, 10.0))
    assert cut.device_vertices == set(graph.nodes)
    assert cut.delay_s == pytest.approx(1.0003)


def test_function_forms_agree_with_the_problem_object():
    graph = load_profile("mobilenet_v2")
    delay = DelayModel(1.5, 6.0, 30.0)
    assert optimal_cut(graph, delay, blockwise=True) == CutProblem(graph, True).solve(delay)
    assert brute_force_cut(graph, delay).delay_s == pytest.approx(optimal_cut(graph, delay).delay_s,
                                                                  abs=ABSOLUTE_TOLERANCE_S)


# -- bad input -------------------------------------------------------------------------------------


def test_partitions_that_break_the_rules_are_refused():
    count = vertex_count("residual")
    graph = layer_graph("residual", [1e-3] * count, [100] * count)
    delay = DelayModel(1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="'nope'"):
        partition_delay(graph, {"x", "nope"}, delay)
    with pytest.raises(ValueError, match="input 'x' must be on the device"):
        partition_delay(graph, {"stem"}, delay)
    with pytest.raises(ValueError, match="not closed"):
        partition_delay(graph, {"x", "b1c1"}, delay)
    with pytest.raises(ValueError, match="block 'b1' is split"):
        CutProblem(graph, blockwise=True).evaluate({"x", "stem", "b1c1"}, delay)


@pytest.mark.parametrize(("arguments", "message"), [
    ({"objective": "testing"}, r"allowed: \['inference', 'training'\]"),
    ({"bandwidth_mbps": 0.0}, "bandwidth_mbps=0.0 must be a finite number > 0"),
    ({"device_speed_factor": float("inf")}, "device_speed_factor"),
    ({"batch_size": 0}, "batch_size=0"),
    ({"backward_factor": -1.0}, "backward_factor=-1.0"),
])
def test_delay_model_rejects_bad_settings(arguments, message):
    settings_ = {"device_speed_factor": 1.0, "server_speed_factor": 2.0, "bandwidth_mbps": 10.0, **arguments}
    with pytest.raises(ValueError, match=message):
        DelayModel(**settings_)
