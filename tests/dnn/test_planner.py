"""Split plans: conservation of work and bytes, accuracy from the profiles, every family, bad input."""

from __future__ import annotations

import dataclasses
import math

import networkx as nx
import pytest

from envs.dnn.accuracy import load_accuracy
from envs.dnn.cut_points import input_vertex
from envs.dnn.fragments import peak_activation_bytes
from envs.dnn.mincut import CutProblem, DelayModel
from envs.dnn.plan import FAMILIES, ORIGIN, SplitPlan
from envs.dnn.planner import SplitPlanner
from envs.dnn.profile_io import list_profiles, load_profile

BASE_MODELS = [name for name in list_profiles() if not name.endswith("_semantic")]
SPLITPLACE_APPS = ["splitplace_mnist_layer", "splitplace_fashionmnist_layer", "splitplace_cifar100_layer"]


@pytest.fixture(scope="module", params=BASE_MODELS)
def planner(request) -> SplitPlanner:
    return SplitPlanner.for_model(request.param)


def vertex_sum(graph: nx.DiGraph, attribute: str) -> float:
    return sum(value for _, value in graph.nodes(data=attribute))


def assert_bytes_flow(plan: SplitPlan, graph: nx.DiGraph) -> None:
    """Every fragment receives something, the origin feeds the plan and gets exactly one result back,
    and every fragment's work reaches the origin."""
    fragments = range(len(plan.fragments))
    assert all(t.bytes > 0 for t in plan.transfers)
    assert all(plan.inputs_of(number) for number in fragments)
    results = plan.inputs_of(ORIGIN)
    assert len(results) == 1 and results[0].bytes == graph.nodes[graph.graph["output_vertex"]]["output_bytes"]
    flow = nx.DiGraph((t.source, t.target) for t in plan.transfers)
    assert all(nx.has_path(flow, number, ORIGIN) for number in fragments)
    assert sum(t.bytes for t in plan.transfers) == sum(
        sum(t.bytes for t in plan.outputs_of(number)) for number in [ORIGIN, *fragments])


def assert_vertex_partition(plan: SplitPlan, graph: nx.DiGraph) -> None:
    """Fragments cover every vertex but the input once; each sends every tensor another fragment reads, once."""
    fragment_of = {v: number for number, f in enumerate(plan.fragments) for v in f.vertices}
    assert sum(len(f.vertices) for f in plan.fragments) == len(fragment_of) == len(graph) - 1
    fragment_of[input_vertex(graph)] = ORIGIN
    for transfer in plan.transfers:
        if transfer.target != ORIGIN:
            tensors = {u for u, v in graph.edges
                       if fragment_of[u] == transfer.source and fragment_of[v] == transfer.target}
            assert transfer.bytes == sum(graph.nodes[u]["output_bytes"] for u in tensors)


# -- every plan of every model --------------------------------------------------------------------


def test_all_plans_are_stable_and_well_formed(planner):
    plans = planner.all_plans()
    again = SplitPlanner.for_model(planner.model).all_plans()
    assert plans == again
    assert len({(p.family, p.variant) for p in plans}) == len(plans) <= 100
    assert [FAMILIES.index(p.family) for p in plans] == sorted(FAMILIES.index(p.family) for p in plans)
    for plan in plans:
        assert plan.model == planner.model and 0.0 <= plan.accuracy <= 1.0
        graph = planner.semantic_graph if plan.family == "semantic" else planner.graph
        assert_bytes_flow(plan, graph)


def test_layer_plans_conserve_work_and_send_each_tensor_once(planner):
    graph = planner.graph
    chains = [planner.no_split()] + [p for p in planner.all_plans() if p.family == "layer"]
    assert len(chains) > 1
    for plan in chains:
        assert plan.total_macs == graph.graph["total_macs"] == vertex_sum(graph, "macs")
        assert sum(f.param_bytes for f in plan.fragments) == vertex_sum(graph, "param_bytes")
        assert sum(f.reference_latency_s for f in plan.fragments) == pytest.approx(vertex_sum(graph, "latency_s"))
        assert plan.accuracy == load_accuracy(planner.model).full
        assert_vertex_partition(plan, graph)
        for number, fragment in enumerate(plan.fragments):
            made = [graph.nodes[v]["output_bytes"] for v in fragment.vertices]
            received = sum(t.bytes for t in plan.inputs_of(number))
            assert max(made) <= fragment.activation_bytes <= sum(made) + received


def test_chain_transfers_carry_the_cut_tensor(planner):
    cuts = planner.layer_cut_candidates[:3]
    plan = planner.layer_chain(list(reversed(cuts)))
    assert len(plan.fragments) == len(cuts) + 1
    assert [f.vertices[-1] for f in plan.fragments[:-1]] == list(cuts)
    for number, cut in enumerate(cuts):
        (transfer,) = plan.outputs_of(number)
        assert (transfer.target, transfer.bytes) == (number + 1, planner.graph.nodes[cut]["output_bytes"])


def test_layer_plans_cover_every_combination_of_candidates(planner):
    for fragments in range(2, planner.max_layer_fragments + 1):
        plans = planner.layer_plans(fragments)
        assert len(plans) == math.comb(len(planner.layer_cut_candidates), fragments - 1)
        assert all(len(p.fragments) == fragments for p in plans)


@pytest.mark.parametrize("model", SPLITPLACE_APPS)
def test_splitplace_four_fragment_chain_is_offered(model):
    plans = SplitPlanner.for_model(model).all_plans()
    chain = [[v for v in f.vertices] for p in plans if p.family == "layer" and len(p.fragments) == 4
             for f in p.fragments]
    assert chain == [["conv1", "relu1"], ["conv2", "relu2", "pool", "flatten"], ["fc1", "relu3"], ["fc2"]]


# -- semantic -----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", SPLITPLACE_APPS)
def test_semantic_split(model):
    planner = SplitPlanner.for_model(model)
    plan = planner.semantic()
    graph = planner.semantic_graph
    assert plan.accuracy == load_accuracy(model).semantic[5]
    assert len(plan.fragments) == 6 and plan.fragments[-1].macs == 0
    assert plan.total_macs == vertex_sum(graph, "macs")
    assert sum(f.param_bytes for f in plan.fragments) == vertex_sum(graph, "param_bytes")
    assert {t.target for t in plan.outputs_of(ORIGIN)} == set(range(5))
    assert all(t.bytes == graph.graph["input_bytes"] for t in plan.outputs_of(ORIGIN))
    assert sum(t.bytes for t in plan.inputs_of(5)) == sum(
        graph.nodes[u]["output_bytes"] for u in graph.predecessors(graph.graph["output_vertex"]))
    assert_vertex_partition(plan, graph)
    with pytest.raises(ValueError, match=r"allowed: \[5\]"):
        planner.semantic(branches=3)


# -- compressed model (SplitPlace's "MC" baseline) ------------------------------------------------


@pytest.mark.parametrize("model", ["splitplace_mnist_layer", "resnet50", "mobilenet_v1"])
def test_compressed_model_plan(model):
    planner = SplitPlanner.for_model(model)
    compressed = load_accuracy(model).compressed_model
    plan = planner.compressed_model()
    assert plan in planner.all_plans()
    assert (plan.family, plan.variant, plan.accuracy) == ("none", "compressed", compressed.accuracy)
    (whole,), (fragment,) = planner.no_split().fragments, plan.fragments
    assert fragment.macs == pytest.approx(whole.macs * compressed.macs_fraction, abs=1)
    assert fragment.param_bytes == pytest.approx(whole.param_bytes * compressed.param_fraction, abs=1)
    assert plan.transfers == planner.no_split().transfers
    with pytest.raises(ValueError, match="no compressed model; models with one: .*resnet50"):
        SplitPlanner.for_model("resnet18").compressed_model()


# -- early exit ---------------------------------------------------------------------------------


def test_early_exit_chains_follow_the_exit_policy():
    planner = SplitPlanner.for_model("splitplace_mnist_layer")
    profile = load_accuracy("splitplace_mnist_layer")
    early_exit = profile.early_exit
    graph = planner.graph
    for policy in early_exit.policies:
        plan = planner.early_exit(policy.threshold)
        assert plan.accuracy == pytest.approx(policy.accuracy)
        assert [f.vertices[-1] for f in plan.fragments[:-1]] == list(early_exit.exit_after)
        assert plan.total_macs == graph.graph["total_macs"] + sum(early_exit.head_macs)
        assert sum(f.param_bytes for f in plan.fragments) == vertex_sum(graph, "param_bytes") + sum(
            early_exit.head_param_bytes)
        reach = 1.0
        for probability, share in zip(plan.exit_probability, policy.exit_fraction):
            assert reach * probability == pytest.approx(share)
            reach *= 1.0 - probability
        assert plan.exit_probability[-1] == 1.0


def test_early_exit_with_compression_and_extra_cuts():
    planner = SplitPlanner.for_model("splitplace_mnist_layer")
    profile = load_accuracy("splitplace_mnist_layer")
    threshold = planner.exit_thresholds[0]
    plain = planner.early_exit(threshold)
    for ratio, drop in profile.compression.items():
        compressed = planner.early_exit(threshold, compression_ratio=ratio)
        assert compressed.accuracy == pytest.approx(min(1.0, plain.accuracy - drop))
        assert compressed.fragments == plain.fragments
        for before, after in zip(plain.transfers, compressed.transfers):
            inside = ORIGIN not in (before.source, before.target)
            assert after.bytes == (math.ceil(before.bytes / ratio) if inside else before.bytes)
    longer = planner.early_exit(threshold, cuts=[*profile.early_exit.exit_after, "relu3"])
    assert len(longer.fragments) == len(plain.fragments) + 1
    assert longer.exit_probability[-2] == 0.0
    with pytest.raises(ValueError, match="must include every exit vertex"):
        planner.early_exit(threshold, cuts=["relu3"])
    with pytest.raises(ValueError, match=r"allowed: \[0.5"):
        planner.early_exit(0.55)
    with pytest.raises(ValueError, match=r"allowed: \[2.0, 4.0, 8.0\] or None"):
        planner.early_exit(threshold, compression_ratio=3.0)


# -- width-parallel -----------------------------------------------------------------------------


@pytest.mark.parametrize("widths", [(0.5, 0.5), (0.25, 0.25, 0.25, 0.25), (0.7, 0.3)])
def test_width_switch_scales_work_with_the_square_of_the_width(widths):
    planner = SplitPlanner.for_model("resnet50")
    graph = planner.graph
    plan = planner.width_parallel(widths)
    classifier = graph.nodes[graph.graph["output_vertex"]]
    body_macs = graph.graph["total_macs"] - classifier["macs"]
    assert plan.accuracy == load_accuracy("resnet50").width_switches[len(widths)]
    expected_macs = body_macs * sum(w * w for w in widths) + classifier["macs"]
    assert plan.total_macs == pytest.approx(expected_macs, abs=len(widths))
    assert plan.fragments[-1].param_bytes == classifier["param_bytes"]
    features = next(graph.predecessors(graph.graph["output_vertex"]))
    assert sum(t.bytes for t in plan.inputs_of(len(widths))) == pytest.approx(
        graph.nodes[features]["output_bytes"], abs=len(widths))
    assert [t.bytes for t in plan.outputs_of(ORIGIN)] == [graph.graph["input_bytes"]] * len(widths)


def test_width_switch_rejects_bad_widths():
    planner = SplitPlanner.for_model("resnet50")
    with pytest.raises(ValueError, match="sum to 1"):
        planner.width_parallel([0.5, 0.4])
    with pytest.raises(ValueError, match=r"allowed numbers of widths: \[1, 2, 4\]"):
        planner.width_parallel([0.4, 0.3, 0.3])
    with pytest.raises(ValueError, match="no ParaDiS width-switch accuracies"):
        SplitPlanner.for_model("vgg16").width_parallel([0.5, 0.5])


# -- optimal cut as a plan ----------------------------------------------------------------------


def test_optimal_cut_plan_runs_the_min_cut_partition():
    planner = SplitPlanner.for_model("mobilenet_v2")
    problem = CutProblem(planner.graph)
    split_seen = False
    for bandwidth_mbps in (1e-9, 100.0, 1e6):
        delay = DelayModel(1.0, 2.0, bandwidth_mbps)
        cut = problem.solve(delay)
        plan = planner.optimal_cut(delay)
        sides = [cut.device_vertices - {input_vertex(planner.graph)}, cut.server_vertices]
        assert [set(f.vertices) for f in plan.fragments] == [side for side in sides if side]
        assert_vertex_partition(plan, planner.graph)
        if len(plan.fragments) == 2:
            split_seen = True
            assert sum(t.bytes for t in plan.outputs_of(0) if t.target != ORIGIN) == cut.cut_bytes
    assert split_seen


# -- accuracy comes from the profile ------------------------------------------------------------


def test_accuracy_follows_the_accuracy_profile():
    model = "splitplace_mnist_layer"
    profile = load_accuracy(model)
    changed = dataclasses.replace(
        profile, full=0.123, semantic={5: 0.234},
        compressed_model=dataclasses.replace(profile.compressed_model, accuracy=0.456),
        early_exit=dataclasses.replace(profile.early_exit, policies=tuple(
            dataclasses.replace(policy, accuracy=0.345) for policy in profile.early_exit.policies)))
    planner = SplitPlanner(load_profile(model), changed, load_profile("splitplace_mnist_semantic"))
    accuracies = {(plan.family, plan.variant == "compressed"): plan.accuracy
                  for plan in planner.all_plans() if "compression" not in plan.variant}
    assert accuracies == {("none", False): 0.123, ("none", True): 0.456, ("layer", False): 0.123,
                          ("semantic", False): 0.234, ("early_exit", False): 0.345}


# -- bad input ----------------------------------------------------------------------------------


def test_bad_input_names_what_is_allowed():
    with pytest.raises(ValueError, match=r"unknown model 'resnet51'; allowed: \[.*'resnet50'"):
        SplitPlanner.for_model("resnet51")
    planner = SplitPlanner.for_model("resnet18")
    with pytest.raises(ValueError, match=r"allowed: \[2, 3, 4\]"):
        planner.layer_plans(5)
    with pytest.raises(ValueError, match=r"not valid cut points of 'resnet18'; allowed: \['conv1'"):
        planner.layer_chain(["layer1_0_conv1"])
    with pytest.raises(ValueError, match="repeat"):
        planner.layer_chain(["maxpool", "maxpool"])
    with pytest.raises(ValueError, match="no semantic-net profile"):
        planner.semantic()
    with pytest.raises(ValueError, match="no early-exit profile; models with one: .*splitplace_mnist_layer"):
        planner.early_exit(0.5)
    with pytest.raises(ValueError, match="max_layer_fragments=0"):
        SplitPlanner.for_model("resnet18", max_layer_fragments=0)
    with pytest.raises(ValueError, match="accuracy profile is for 'resnet50'"):
        SplitPlanner(load_profile("resnet18"), load_accuracy("resnet50"))


# -- fragment bookkeeping -------------------------------------------------------------------------


def test_peak_activation_counts_received_tensors_until_their_last_reader():
    # x (100 B) -> a (10 B) -> b (1000 B) -> c (1 B), and x is read again by c
    graph = nx.DiGraph([("x", "a"), ("a", "b"), ("b", "c"), ("x", "c")], output_vertex="c")
    for order, (vertex, size) in enumerate([("x", 100), ("a", 10), ("b", 1000), ("c", 1)]):
        graph.add_node(vertex, order=order, output_bytes=size)
    assert peak_activation_bytes(graph, ["a", "b", "c"]) == 100 + 10 + 1000
    assert peak_activation_bytes(graph, ["a"]) == 100 + 10
    graph.remove_edge("x", "c")
    assert peak_activation_bytes(graph, ["a", "b", "c"]) == 10 + 1000
