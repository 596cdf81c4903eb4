"""The profiler on small modules built here: MACs, bytes, blocks, errors and the JSON round trip."""

from __future__ import annotations

import json

import networkx as nx
import pytest
import torch
from torch import nn

from envs.dnn.profile_io import list_profiles, load_profile, read_profile, save_profile
from envs.dnn.profiler import ProfilingError, profile_module

REPEATS = 2
SIDE_PX = 12


class Chain(nn.Module):
    """conv(pad 1) - relu - conv(stride 2) - flatten - linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 5, stride=2)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.conv2(self.relu(self.conv1(x))), 1))


class Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.relu(self.conv2(self.relu(self.conv1(x))) + x)


class ResidualNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.layers = nn.Sequential(Residual(4), Residual(4))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.layers(self.stem(x)).mean((2, 3)))


class MultiBranch(nn.Module):
    """Three parallel branches on one input, concatenated; the last reuses the first's layer."""

    def __init__(self):
        super().__init__()
        self.branches = nn.ModuleList(nn.Sequential(nn.Conv2d(3, 2, 1), nn.Flatten()) for _ in range(2))
        self.shared = self.branches[0]

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.branches] + [self.shared(x)], dim=1)


class DataDependent(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x


class WrapsDataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.stages = nn.Sequential(nn.ReLU(), DataDependent())

    def forward(self, x):
        return self.stages(x)


def _input(channels: int = 3) -> torch.Tensor:
    return torch.randn(1, channels, SIDE_PX, SIDE_PX, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def chain_profile() -> nx.DiGraph:
    return profile_module(Chain(), _input(), "chain", repeats=REPEATS)


@pytest.fixture(scope="module")
def residual_profile() -> nx.DiGraph:
    return profile_module(ResidualNet(), _input(), "residual", repeats=REPEATS)


def _conv_output_side(side: int, conv: nn.Conv2d) -> int:
    return (side + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1


def test_conv_and_linear_macs_follow_the_textbook_formulas(chain_profile):
    module = Chain()
    side1 = _conv_output_side(SIDE_PX, module.conv1)
    side2 = _conv_output_side(side1, module.conv2)
    assert chain_profile.nodes["conv1"]["macs"] == 3 * 3 * 3 * 8 * side1 * side1
    assert chain_profile.nodes["conv2"]["macs"] == 5 * 5 * 8 * 16 * side2 * side2
    assert chain_profile.nodes["fc"]["macs"] == 16 * 4 * 4 * 10
    assert chain_profile.nodes["relu"]["macs"] == 0
    assert chain_profile.graph["total_macs"] == sum(macs for _, macs in chain_profile.nodes(data="macs"))


def test_shapes_bytes_and_parameters_match_the_module(chain_profile):
    module = Chain()
    output = module(_input())
    last = chain_profile.nodes[chain_profile.graph["output_vertex"]]
    assert last["output_shape"] == list(output.shape)
    assert last["output_bytes"] == output.numel() * output.element_size()
    assert chain_profile.nodes["x"]["output_bytes"] == chain_profile.graph["input_bytes"] == _input().numel() * 4
    assert chain_profile.nodes["conv1"]["param_bytes"] == 4 * (3 * 3 * 3 * 8 + 8)
    assert chain_profile.graph["total_params"] == sum(p.numel() for p in module.parameters())
    assert sum(b for _, b in chain_profile.nodes(data="param_bytes")) == 4 * chain_profile.graph["total_params"]


@pytest.mark.parametrize("profile_fixture", ["chain_profile", "residual_profile"])
def test_edges_carry_the_producer_output_bytes(profile_fixture, request):
    graph = request.getfixturevalue(profile_fixture)
    assert graph.number_of_edges() > 0
    for producer, _consumer, edge_bytes in graph.edges(data="bytes"):
        assert edge_bytes == graph.nodes[producer]["output_bytes"] > 0


@pytest.mark.parametrize("profile_fixture", ["chain_profile", "residual_profile"])
def test_order_is_topological_and_latencies_are_measured(profile_fixture, request):
    graph = request.getfixturevalue(profile_fixture)
    order = nx.get_node_attributes(graph, "order")
    assert sorted(order.values()) == list(range(graph.number_of_nodes()))
    assert all(order[u] < order[v] for u, v in graph.edges)
    first = min(order, key=order.get)
    assert graph.nodes[first]["op"] == "input"
    assert all(latency > 0 for vertex, latency in graph.nodes(data="latency_s") if vertex != first)
    assert graph.graph["total_latency_s"] > 0
    assert graph.graph["torch_threads"] == 1


def test_residual_additions_stay_in_the_block_of_their_convolutions(residual_profile):
    blocks = nx.get_node_attributes(residual_profile, "block")
    additions = [v for v, op in residual_profile.nodes(data="op") if op == "add"]
    assert len(additions) == 2
    for index, addition in enumerate(additions):
        assert blocks[addition] == f"layers.{index}"
        assert blocks[f"layers_{index}_conv1"] == blocks[f"layers_{index}_conv2"] == f"layers.{index}"
    assert blocks["stem"] == "stem"
    assert blocks["mean"] == "mean"


def test_multi_branch_module_fans_out_and_counts_shared_parameters_once():
    module = MultiBranch()
    graph = profile_module(module, _input(), "branches", repeats=REPEATS)
    cat = graph.graph["output_vertex"]
    assert graph.nodes[cat]["op"] == "cat"
    assert graph.in_degree(cat) == 3
    assert graph.out_degree("x") == 3
    assert {graph.nodes[v]["block"] for v in graph.predecessors(cat)} == {"branches.0", "branches.1"}
    assert sum(b for _, b in graph.nodes(data="param_bytes")) == 4 * sum(p.numel() for p in module.parameters())
    assert graph.nodes[cat]["output_shape"] == list(module(_input()).shape)


def test_profiling_restores_threads_and_training_mode():
    module = Chain().train()
    threads = torch.get_num_threads()
    profile_module(module, _input(), "chain", repeats=1)
    assert module.training
    assert torch.get_num_threads() == threads


def test_data_dependent_control_flow_gets_an_error_naming_the_module_and_op():
    with pytest.raises(ProfilingError) as error:
        profile_module(WrapsDataDependent(), _input(), "untraceable", repeats=1)
    message = str(error.value)
    assert isinstance(error.value, ValueError)
    assert "'stages.1' (DataDependent)" in message
    assert "if x.sum() > 0:" in message
    assert "'gt'" in message


def test_an_input_of_the_wrong_shape_gets_an_error_naming_the_vertex():
    with pytest.raises(ProfilingError, match="vertex 'conv1'"):
        profile_module(Chain(), _input(channels=5), "chain", repeats=1)


def test_a_module_returning_several_tensors_is_refused():
    class TwoOutputs(nn.Module):
        def forward(self, x):
            return x, x + 1

    with pytest.raises(ProfilingError, match="single tensor"):
        profile_module(TwoOutputs(), _input(), "two", repeats=1)


def test_json_round_trip_gives_an_identical_graph(chain_profile, tmp_path):
    path = save_profile(chain_profile, tmp_path / "chain.json")
    loaded = read_profile(path)
    assert list(loaded.nodes(data=True)) == list(chain_profile.nodes(data=True))
    assert list(loaded.edges(data=True)) == list(chain_profile.edges(data=True))
    assert loaded.graph == chain_profile.graph
    assert load_profile("chain", tmp_path).graph == chain_profile.graph
    assert list_profiles(tmp_path) == ["chain"]


def test_loading_an_unknown_name_lists_the_available_profiles(chain_profile, tmp_path):
    save_profile(chain_profile, tmp_path / "chain.json")
    with pytest.raises(ValueError, match=r"'resnet1000'.*\['chain'\]"):
        load_profile("resnet1000", tmp_path)


def test_a_file_of_another_schema_version_is_refused(chain_profile, tmp_path):
    path = save_profile(chain_profile, tmp_path / "chain.json")
    document = json.loads(path.read_text())
    document["schema_version"] = 999
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="schema_version=999"):
        read_profile(path)
