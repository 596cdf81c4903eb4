"""The shipped profiles (envs/profiles/models/*.json): structure, and figures against published ones.

These tests read the JSON files only; they need neither torchvision nor re-profiling.
"""

from __future__ import annotations

import networkx as nx
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from envs.dnn.models.mobilenet_v1 import MobileNetV1
from envs.dnn.profile_io import SCHEMA_VERSION, list_profiles, load_profile

SPLITPLACE_APPS = ("mnist", "fashionmnist", "cifar100")
SHIPPED = tuple(f"splitplace_{app}_{kind}" for app in SPLITPLACE_APPS for kind in ("layer", "semantic")) + (
    "resnet18", "resnet50", "mobilenet_v2", "mobilenet_v1", "vgg16")

TORCHVISION_GIGA_MACS = {"resnet18": 1.81, "resnet50": 4.09, "mobilenet_v2": 0.30, "vgg16": 15.47}
"""The "GFLOPS" column of torchvision's classification model table (which counts multiply-accumulates),
https://pytorch.org/vision/stable/models.html; also the ``_ops`` field of each weights enum's ``meta``."""

MOBILENET_V1_MEGA_MACS = {1.0: 569, 0.75: 325}
MOBILENET_V1_MEGA_PARAMS = {1.0: 4.2, 0.75: 2.6}
"""Howard et al. 2017, arXiv 1704.04861, Table 6 (width multiplier -> million mult-adds / parameters, 224x224)."""

SPLITPLACE_MEGA_PARAMS = {"mnist": (1.20, 0.15), "fashionmnist": (4.80, 0.60), "cifar100": (6.52, 0.81)}
"""(layer net, one semantic branch) parameters in millions, SplitPlace (Tuli et al., IEEE TMC 2022) code;
see shared/reference/seeds-digest.md.  The shipped semantic profile has 5 branches."""

PUBLISHED_TOLERANCE = 0.02
ROUNDED_TOLERANCE = 0.01
"""Relative tolerance for figures published to two decimals in millions (e.g. 0.15 M)."""


@pytest.fixture(scope="module", params=SHIPPED)
def profile(request) -> nx.DiGraph:
    return load_profile(request.param)


def test_every_contract_profile_is_shipped():
    assert set(SHIPPED) <= set(list_profiles())


def test_profile_is_a_dag_in_topological_order(profile):
    assert nx.is_directed_acyclic_graph(profile)
    order = nx.get_node_attributes(profile, "order")
    assert sorted(order.values()) == list(range(profile.number_of_nodes()))
    assert all(order[u] < order[v] for u, v in profile.edges)
    assert profile.graph["schema_version"] == SCHEMA_VERSION


def test_profile_has_positive_latencies_and_one_input_one_output(profile):
    inputs = [v for v, op in profile.nodes(data="op") if op == "input"]
    assert len(inputs) == 1 and profile.nodes[inputs[0]]["order"] == 0
    assert profile.nodes[inputs[0]]["output_shape"] == profile.graph["input_shape"]
    assert all(latency > 0 for vertex, latency in profile.nodes(data="latency_s") if vertex not in inputs)
    assert profile.graph["total_latency_s"] > 0
    sinks = [v for v in profile if profile.out_degree(v) == 0]
    assert sinks == [profile.graph["output_vertex"]]


def test_profile_totals_and_edge_bytes_are_consistent(profile):
    assert profile.graph["total_macs"] == sum(macs for _, macs in profile.nodes(data="macs"))
    assert sum(b for _, b in profile.nodes(data="param_bytes")) == 4 * profile.graph["total_params"]
    for producer, _consumer, edge_bytes in profile.edges(data="bytes"):
        assert edge_bytes == profile.nodes[producer]["output_bytes"]


@pytest.mark.parametrize("name", sorted(TORCHVISION_GIGA_MACS))
def test_imagenet_macs_match_torchvision(name):
    graph = load_profile(name)
    assert graph.graph["input_shape"] == [1, 3, 224, 224]
    assert graph.graph["total_macs"] / 1e9 == pytest.approx(TORCHVISION_GIGA_MACS[name], rel=PUBLISHED_TOLERANCE)


def test_shipped_mobilenet_v1_matches_the_paper():
    graph = load_profile("mobilenet_v1")
    assert graph.graph["total_macs"] / 1e6 == pytest.approx(MOBILENET_V1_MEGA_MACS[1.0], rel=PUBLISHED_TOLERANCE)
    assert graph.graph["total_params"] / 1e6 == pytest.approx(MOBILENET_V1_MEGA_PARAMS[1.0], rel=PUBLISHED_TOLERANCE)


def test_mobilenet_v1_width_multiplier_matches_the_paper():
    model = MobileNetV1(width=0.75).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 224, 224))
    assert counter.get_total_flops() / 2e6 == pytest.approx(MOBILENET_V1_MEGA_MACS[0.75], rel=PUBLISHED_TOLERANCE)
    params = sum(p.numel() for p in model.parameters())
    assert params / 1e6 == pytest.approx(MOBILENET_V1_MEGA_PARAMS[0.75], rel=PUBLISHED_TOLERANCE)


@pytest.mark.parametrize("app", SPLITPLACE_APPS)
def test_splitplace_parameter_counts_match_the_paper(app):
    layer_mega, branch_mega = SPLITPLACE_MEGA_PARAMS[app]
    layer = load_profile(f"splitplace_{app}_layer")
    semantic = load_profile(f"splitplace_{app}_semantic")
    assert layer.graph["total_params"] / 1e6 == pytest.approx(layer_mega, rel=ROUNDED_TOLERANCE)
    assert semantic.graph["total_params"] / 5e6 == pytest.approx(branch_mega, rel=ROUNDED_TOLERANCE)
    assert {semantic.nodes[v]["block"] for v in semantic.predecessors(semantic.graph["output_vertex"])} == {
        f"branches.{index}" for index in range(5)}
