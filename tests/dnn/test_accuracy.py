"""Accuracy profiles: shipped files, the loader's validation, early exits and the digits data."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from envs.dnn.accuracy import (
    ACCURACY_DIR,
    AccuracyProfileError,
    accuracy_from_dict,
    accuracy_to_dict,
    list_accuracy_profiles,
    load_accuracy,
    read_accuracy,
    write_accuracy,
)
from envs.dnn.digits import load_digits_split
from envs.dnn.early_exit_assumption import EXITS, head_accuracies, prefix_macs_fractions
from envs.dnn.early_exit_assumption import exit_policy as assumed_exit_policy
from envs.dnn.models.early_exit import EarlyExitNet, exit_policy, split_chain
from envs.dnn.models.splitplace import APPS, SemanticNet, layer_net
from envs.dnn.planner import SplitPlanner
from envs.dnn.profile_io import load_profile
from envs.dnn.profiler import trace_module

REPOSITORY = Path(__file__).resolve().parents[2]
MEASURED = "splitplace_mnist_layer"
SPLITPLACE_APPS = ("splitplace_mnist_layer", "splitplace_fashionmnist_layer", "splitplace_cifar100_layer")
IMAGENET_MODELS = ("resnet18", "resnet50", "mobilenet_v2", "mobilenet_v1", "vgg16")


def measured_dict() -> dict:
    return json.loads((ACCURACY_DIR / f"{MEASURED}.json").read_text())


def test_every_expected_profile_is_shipped():
    assert set(SPLITPLACE_APPS + IMAGENET_MODELS) <= set(list_accuracy_profiles())


@pytest.mark.parametrize("name", list_accuracy_profiles())
def test_shipped_profile_loads_with_values_in_unit_interval(name):
    profile = load_accuracy(name)
    assert profile.model == name
    accuracies = [profile.full, *profile.semantic.values(), *profile.width_switches.values()]
    if profile.compressed_model is not None:
        model = profile.compressed_model
        accuracies += [model.accuracy, model.macs_fraction, model.param_fraction]
        assert model.macs_fraction < 1 and model.param_fraction < 1, "a compressed model must be smaller"
    if profile.early_exit is not None:
        accuracies += [policy.accuracy for policy in profile.early_exit.policies]
    assert all(0.0 <= value <= 1.0 for value in accuracies)
    assert all(ratio > 1 and abs(drop) <= 1 for ratio, drop in profile.compression.items())
    assert profile.sources and all(text.strip() for text in profile.sources.values())


@pytest.mark.parametrize("name", list_accuracy_profiles())
def test_shipped_profile_round_trips(name, tmp_path):
    profile = load_accuracy(name)
    write_accuracy(profile, tmp_path / f"{name}.json")
    assert read_accuracy(tmp_path / f"{name}.json") == profile


@pytest.mark.parametrize("name", list_accuracy_profiles())
def test_early_exit_policies_are_consistent(name):
    early_exit = load_accuracy(name).early_exit
    if early_exit is None:
        pytest.skip(f"{name} has no early-exit profile")
    exits = len(early_exit.exit_after)
    assert len(early_exit.head_macs) == len(early_exit.head_latency_s) == len(early_exit.head_param_bytes) == exits
    assert all(macs > 0 for macs in early_exit.head_macs)
    for policy in early_exit.policies:
        assert len(policy.exit_fraction) == exits + 1
        assert sum(policy.exit_fraction) == pytest.approx(1.0, abs=1e-6)
    strictest = max(early_exit.policies, key=lambda policy: policy.threshold)
    loosest = min(early_exit.policies, key=lambda policy: policy.threshold)
    assert strictest.exit_fraction[-1] == max(policy.exit_fraction[-1] for policy in early_exit.policies)
    assert strictest.exit_fraction[-1] > loosest.exit_fraction[-1]


def test_measured_exit_heads_sit_after_layer_net_vertices():
    vertices = {node.name for node in trace_module(layer_net("mnist")).graph.nodes}
    assert set(load_accuracy(MEASURED).early_exit.exit_after) <= vertices


def test_measured_layer_split_beats_semantic_split():
    """SplitPlace's claim: the layer split keeps accuracy, the semantic split loses some."""
    profile = load_accuracy(MEASURED)
    assert profile.full > profile.semantic[5]


@pytest.mark.parametrize("name", SPLITPLACE_APPS[1:])
def test_published_splitplace_apps_order_layer_above_semantic(name):
    profile = load_accuracy(name)
    assert profile.full > profile.semantic[5]


def test_measured_profile_records_how_it_was_made():
    sources = load_accuracy(MEASURED).sources
    assert "--seed" in sources["run"] and "torch" in sources["run"]
    assert "load_digits" in sources["data"] and "test" in sources["data"]
    assert "97.4" in sources["paper"] and "95.5" in sources["paper"]


def test_unknown_model_lists_shipped_profiles():
    with pytest.raises(FileNotFoundError, match="resnet50"):
        load_accuracy("no_such_model")


@pytest.mark.parametrize("key", ["full", "semantic", "early_exit", "sources"])
def test_missing_top_level_key_is_named(key):
    data = measured_dict()
    del data[key]
    with pytest.raises(AccuracyProfileError, match=f"missing key '{key}'"):
        accuracy_from_dict(data)


def test_unknown_key_is_named():
    data = measured_dict()
    data["accuracy_top5"] = 0.99
    with pytest.raises(AccuracyProfileError, match="unknown key 'accuracy_top5'"):
        accuracy_from_dict(data)


def test_exit_fractions_not_summing_to_one_are_named():
    data = measured_dict()
    data["early_exit"]["policies"][2]["exit_fraction"][0] += 0.1
    with pytest.raises(AccuracyProfileError, match=r"policies\[2\]\.exit_fraction sums to"):
        accuracy_from_dict(data)


def test_missing_policy_key_is_named():
    data = measured_dict()
    del data["early_exit"]["policies"][0]["threshold"]
    with pytest.raises(AccuracyProfileError, match=r"policies\[0\].*missing key 'threshold'"):
        accuracy_from_dict(data)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(full=1.2), "full is 1.2"),
        (lambda d: d["semantic"].update({"five": 0.9}), "semantic: entry 'five'"),
        (lambda d: d["compression"].update({"0.5": 0.1}), "compression: entry '0.5'"),
        (lambda d: d["compressed_model"].update(macs_fraction=0.0), "compressed_model.macs_fraction is 0.0"),
        (lambda d: d["early_exit"]["head_macs"].pop(), "early_exit.head_macs must be a list with one entry per exit"),
        (lambda d: d["early_exit"]["policies"].reverse(), "thresholds .* must be strictly increasing"),
        (lambda d: d["sources"].update(full=""), r"sources\['full'\] must be a non-empty string"),
    ],
)
def test_bad_values_are_named(edit, message):
    data = copy.deepcopy(measured_dict())
    edit(data)
    with pytest.raises(AccuracyProfileError, match=message):
        accuracy_from_dict(data)


def test_to_dict_uses_string_keys_for_json():
    data = accuracy_to_dict(load_accuracy(MEASURED))
    assert all(isinstance(key, str) for table in ("semantic", "compression") for key in data[table])


def test_exit_policy_follows_confidence_threshold():
    labels = torch.tensor([0, 1, 0, 1])
    confident = 4.0  # softmax over two logits [4, 0] gives 0.982 to the first
    head = torch.tensor([[confident, 0.0], [confident, 0.0], [0.0, 0.0], [0.0, 0.0]])
    final = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    strict = exit_policy([head, final], labels, threshold=0.99)
    assert strict.exit_fraction == (0.0, 1.0) and strict.accuracy == 1.0
    loose = exit_policy([head, final], labels, threshold=0.9)
    assert loose.exit_fraction == (0.5, 0.5) and loose.accuracy == 0.75  # item 1 leaves early with the wrong class
    everything = exit_policy([head, final], labels, threshold=0.5)
    assert everything.exit_fraction == (1.0, 0.0) and everything.accuracy == 0.5


def test_exit_policy_rejects_threshold_outside_unit_interval():
    with pytest.raises(ValueError, match="threshold=1.5"):
        exit_policy([torch.zeros(1, 2)], torch.zeros(1, dtype=torch.int64), threshold=1.5)


def test_early_exit_net_returns_every_exit_and_the_unchanged_backbone_output():
    torch.manual_seed(0)
    backbone = layer_net("mnist")
    net = EarlyExitNet(backbone, ["pool", "relu1"], classes=10, example_input=APPS["mnist"].example_input())
    images = torch.randn(3, 1, 28, 28)
    outputs = net(images)
    assert net.exit_after == ("relu1", "pool")
    assert [tuple(output.shape) for output in outputs] == [(3, 10)] * 3
    torch.testing.assert_close(outputs[-1], backbone(images))


def test_early_exit_net_names_an_unknown_vertex():
    with pytest.raises(ValueError, match="'conv9'"):
        EarlyExitNet(layer_net("mnist"), ["conv9"], classes=10, example_input=APPS["mnist"].example_input())


def test_early_exit_net_rejects_a_backbone_that_is_not_a_chain():
    with pytest.raises(ValueError, match="breaks the chain"):
        EarlyExitNet(SemanticNet("mnist"), ["cat"], classes=10, example_input=APPS["mnist"].example_input())


def test_split_chain_halves_compose_to_the_backbone():
    torch.manual_seed(0)
    backbone = layer_net("mnist")
    front, back = split_chain(backbone, "pool")
    images = torch.randn(2, 1, 28, 28)
    assert tuple(front(images).shape) == (2, 64, 12, 12)
    torch.testing.assert_close(back(front(images)), backbone(images))
    with pytest.raises(ValueError, match="cannot cut after 'fc2'"):
        split_chain(backbone, "fc2")


def test_digits_split_is_stratified_seeded_and_mnist_shaped():
    data = load_digits_split(side_px=28, test_fraction=0.3, seed=0)
    assert data.train_images.shape[1:] == (1, 28, 28) and data.test_images.shape[1:] == (1, 28, 28)
    assert len(data.train_labels) + len(data.test_labels) == 1797
    assert len(data.test_labels) == pytest.approx(0.3 * 1797, abs=1)
    test_share = torch.bincount(data.test_labels) / torch.bincount(torch.cat([data.train_labels, data.test_labels]))
    assert torch.all((test_share - 0.3).abs() < 0.02)
    assert data.train_images.mean().item() == pytest.approx(0.0, abs=1e-4)
    assert data.train_images.std().item() == pytest.approx(1.0, abs=1e-4)
    again = load_digits_split(seed=0)
    torch.testing.assert_close(again.test_images, data.test_images)
    assert not torch.equal(load_digits_split(seed=1).test_labels, data.test_labels)


def test_digits_split_rejects_bad_fraction():
    with pytest.raises(ValueError, match="test_fraction=1.0"):
        load_digits_split(test_fraction=1.0)


@pytest.mark.slow
def test_training_script_writes_a_complete_profile(tmp_path):
    output = tmp_path / f"{MEASURED}.json"
    subprocess.run(
        [sys.executable, str(REPOSITORY / "scripts" / "train_accuracy.py"), "--epochs", "1", "--seed", "3",
         "--output", str(output)],
        check=True, capture_output=True, cwd=tmp_path,
    )
    profile = read_accuracy(output)
    shipped = load_accuracy(MEASURED)
    assert profile.model == MEASURED and set(profile.semantic) == {5}
    assert set(profile.compression) == set(shipped.compression)
    assert profile.early_exit.exit_after == shipped.early_exit.exit_after
    assert [p.threshold for p in profile.early_exit.policies] == [p.threshold for p in shipped.early_exit.policies]
    assert "--seed 3 --epochs 1" in profile.sources["run"]


@pytest.mark.parametrize("name", sorted(EXITS))
def test_assumed_imagenet_exits_follow_the_documented_model(name):
    profile = load_accuracy(name)
    assert profile.sources["early_exit"].startswith("assumption:")
    assert profile.early_exit.exit_after == EXITS[name]
    accuracies = head_accuracies(profile.full, prefix_macs_fractions(name, EXITS[name]) + [1.0])
    for policy in profile.early_exit.policies:
        expected = assumed_exit_policy(accuracies, policy.threshold)
        assert policy.exit_fraction == pytest.approx(expected.exit_fraction, abs=1e-9)
        assert policy.accuracy == pytest.approx(expected.accuracy, abs=1e-9)
    graph = load_profile(name)
    channels = [graph.nodes[vertex]["output_shape"][1] for vertex in EXITS[name]]
    assert list(profile.early_exit.head_macs) == [1000 * c for c in channels]
    assert list(profile.early_exit.head_param_bytes) == [4 * (1000 * c + 1000) for c in channels]


@pytest.mark.parametrize("name", sorted(EXITS))
def test_assumed_policies_trade_accuracy_for_early_exits(name):
    profile = load_accuracy(name)
    policies = profile.early_exit.policies
    accuracies = [policy.accuracy for policy in policies]
    early_shares = [1.0 - policy.exit_fraction[-1] for policy in policies]
    assert accuracies == sorted(accuracies) and len(set(accuracies)) == len(accuracies)
    assert early_shares == sorted(early_shares, reverse=True) and early_shares[-1] == 0.0
    assert accuracies[-1] == pytest.approx(profile.full) and max(accuracies) <= profile.full + 1e-12


def test_assumed_exit_policy_of_a_lone_classifier_is_its_accuracy():
    policy = assumed_exit_policy([0.7], 0.9)
    assert policy.exit_fraction == (1.0,) and policy.accuracy == pytest.approx(0.7)


def test_confident_early_exits_are_more_accurate_than_their_head():
    """Calibrated heads: the items leaving at a head at threshold T are right with probability >= T."""
    policy = assumed_exit_policy([0.4, 0.7], 0.8)
    share, _ = policy.exit_fraction
    assert 0.0 < share < 0.4
    final_only = policy.accuracy - 0.8 * share
    assert final_only < 0.7 * (1.0 - share), "the items left to the final classifier are the harder ones"


@pytest.mark.parametrize("name", sorted(EXITS))
def test_imagenet_models_offer_early_exit_chains_with_and_without_compression(name):
    plans = [plan for plan in SplitPlanner.for_model(name).all_plans() if plan.family == "early_exit"]
    thresholds = load_accuracy(name).early_exit.policies
    assert len(plans) == 2 * len(thresholds)
    assert sum("compression=" in plan.variant for plan in plans) == len(thresholds)
