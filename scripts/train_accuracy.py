"""Measure the accuracy profile of the SplitPlace MNIST app on scikit-learn's digits.

Trains, on the CPU and from a fixed seed, SplitPlace's MNIST layer net, its
5-branch semantic split, exit heads for an early-exit variant, activation
autoencoders between its fragments and a half-width stand-in model, evaluates
them on a held-out test split, and writes every figure with its measurement
record to ``envs/profiles/accuracy/splitplace_mnist_layer.json``.
How the numbers are made: ``docs/accuracy.md``.

    python scripts/train_accuracy.py --seed 0 --epochs 20
"""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from envs.dnn.accuracy import (
    ACCURACY_DIR,
    AccuracyProfile,
    CompressedModel,
    EarlyExitProfile,
    write_accuracy,
)
from envs.dnn.digits import DigitsSplit, load_digits_split
from envs.dnn.fragments import layer_latency_sum_s
from envs.dnn.models.early_exit import EarlyExitNet, exit_policy, split_chain
from envs.dnn.models.splitplace import APPS, ConvStack, SemanticNet, layer_net
from envs.dnn.profiler import machine_description, profile_module

APP = "mnist"
PROFILE_NAME = "splitplace_mnist_layer"
EXIT_AFTER = ("relu1", "pool")
"""Layer-net vertices followed by an exit head: after the first conv block and after the pool."""
EXIT_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
COMPRESSION_AFTER = "pool"
"""Layer-net vertex whose activation (64 x 12 x 12) the autoencoders compress."""
COMPRESSION_RATIOS = (2, 4, 8)
HALF_WIDTH = 0.5
"""Width multiplier of the compressed stand-in model relative to the layer net."""
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
TEST_FRACTION = 0.3
PROFILE_REPEATS = 30

SPLITPLACE_PAPER = (
    "Tuli, Casale, Jennings, 'SplitPlace: AI Augmented Splitting and Placement of Large-Scale Neural Networks "
    "in Mobile Edge Environments', IEEE Transactions on Mobile Computing, 2022 (arXiv 2205.10635)"
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the data split, initialisation and batching")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs of every network")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads for training (results are reproducible for a fixed thread count)")
    parser.add_argument("--output", type=Path, default=ACCURACY_DIR / f"{PROFILE_NAME}.json",
                        help="where to write the accuracy profile JSON")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    return args


def train(parameters: Iterable[nn.Parameter], batch_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
          images: torch.Tensor, labels: torch.Tensor, epochs: int, seed: int, description: str) -> None:
    """Minimise ``batch_loss(images, labels)`` with Adam over seeded shuffled mini-batches."""
    optimiser = torch.optim.Adam(parameters, lr=LEARNING_RATE)
    generator = torch.Generator().manual_seed(seed)
    for _epoch in tqdm(range(epochs), desc=description, unit="epoch"):
        for batch in torch.randperm(len(labels), generator=generator).split(BATCH_SIZE):
            optimiser.zero_grad()
            batch_loss(images[batch], labels[batch]).backward()
            optimiser.step()


def accuracy_of(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of items whose highest logit is their label (exact count ratio)."""
    return (logits.argmax(dim=1) == labels).sum().item() / len(labels)


def evaluate(model: nn.Module, images: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
    """``model(images)`` in eval mode without gradients."""
    model.eval()
    with torch.no_grad():
        return model(images)


def train_classifier(model: nn.Module, data: DigitsSplit, epochs: int, seed: int, description: str) -> float:
    """Train ``model`` with cross-entropy; its test top-1 accuracy."""
    model.train()
    train(model.parameters(), lambda x, y: F.cross_entropy(model(x), y),
          data.train_images, data.train_labels, epochs, seed, description)
    return accuracy_of(evaluate(model, data.test_images), data.test_labels)


def train_exit_heads(backbone: ConvStack, data: DigitsSplit, epochs: int, seed: int) -> EarlyExitNet:
    """Exit heads after :data:`EXIT_AFTER`, trained with cross-entropy on the frozen trained backbone."""
    torch.manual_seed(seed)
    net = EarlyExitNet(backbone, EXIT_AFTER, APPS[APP].classes, APPS[APP].example_input())
    backbone.requires_grad_(False)
    net.train()
    backbone.eval()

    def heads_loss(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return sum(F.cross_entropy(logits, labels) for logits in net(images)[:-1])

    train(net.heads.parameters(), heads_loss, data.train_images, data.train_labels, epochs, seed, "exit heads")
    backbone.requires_grad_(True)
    return net


def early_exit_profile(net: EarlyExitNet, data: DigitsSplit) -> EarlyExitProfile:
    """Head costs from the profiler and the exit policy at every threshold on the test split."""
    exit_logits = evaluate(net, data.test_images)
    with torch.no_grad():
        activations = net.exit_activations(APPS[APP].example_input())
    head_graphs = [profile_module(net.heads[name], activations[name], f"exit_head_{name}", PROFILE_REPEATS)
                   for name in net.exit_after]
    return EarlyExitProfile(
        exit_after=net.exit_after,
        head_macs=tuple(graph.graph["total_macs"] for graph in head_graphs),
        head_latency_s=tuple(layer_latency_sum_s(graph) for graph in head_graphs),  # as the planner counts
        head_param_bytes=tuple(sum(bytes_ for _, bytes_ in graph.nodes(data="param_bytes")) for graph in head_graphs),
        policies=tuple(exit_policy(exit_logits, data.test_labels, threshold) for threshold in EXIT_THRESHOLDS),
    )


class ChannelAutoencoder(nn.Module):
    """1x1-conv encoder to ``channels / ratio`` channels and 1x1-conv + ReLU decoder back (MDI-style)."""

    def __init__(self, channels: int, ratio: int):
        super().__init__()
        if channels % ratio:
            raise ValueError(f"ratio={ratio} must divide the {channels} channels of the activation")
        self.encoder = nn.Conv2d(channels, channels // ratio, 1)
        self.decoder = nn.Sequential(nn.Conv2d(channels // ratio, channels, 1), nn.ReLU())

    def forward(self, activation: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(activation))


def compression_drops(backbone: ConvStack, full_accuracy: float, data: DigitsSplit, epochs: int,
                      seed: int) -> dict[float, float]:
    """Ratio -> test accuracy lost when the activation after :data:`COMPRESSION_AFTER` is auto-encoded."""
    front, back = split_chain(backbone, COMPRESSION_AFTER)
    train_activations = evaluate(front, data.train_images)
    test_activations = evaluate(front, data.test_images)
    drops = {}
    for ratio in COMPRESSION_RATIOS:
        torch.manual_seed(seed)
        autoencoder = ChannelAutoencoder(train_activations.shape[1], ratio)
        train(autoencoder.parameters(), lambda x, _y: F.mse_loss(autoencoder(x), x),
              train_activations, data.train_labels, epochs, seed, f"autoencoder x{ratio}")
        reconstructed = evaluate(autoencoder, test_activations)
        drops[float(ratio)] = full_accuracy - accuracy_of(evaluate(back, reconstructed), data.test_labels)
    return drops


def half_width_layer_net() -> ConvStack:
    """The MNIST layer net with every hidden width scaled by :data:`HALF_WIDTH`."""
    spec = APPS[APP]
    m = spec.width_multiplier * HALF_WIDTH
    return ConvStack(spec.channels, spec.side_px, int(32 * m), int(64 * m), int(128 * m), spec.classes)


def compressed_model(model: ConvStack, accuracy: float, base: ConvStack) -> CompressedModel:
    """Accuracy, MAC and parameter fractions of ``model`` against ``base`` (MACs counted by the profiler)."""
    example = APPS[APP].example_input()
    macs = [profile_module(net, example, name, repeats=1).graph["total_macs"]
            for net, name in ((model, "compressed"), (base, "base"))]
    params = [sum(p.numel() for p in net.parameters()) for net in (model, base)]
    return CompressedModel(accuracy=accuracy, macs_fraction=macs[0] / macs[1], param_fraction=params[0] / params[1])


def percent(value: float) -> str:
    return f"{100 * value:.2f} %"


def main(argv: list[str] | None = None) -> AccuracyProfile:
    args = parse_args(argv)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(args.threads)
    data = load_digits_split(APPS[APP].side_px, TEST_FRACTION, args.seed)
    training = f"Adam lr {LEARNING_RATE}, batch {BATCH_SIZE}, {args.epochs} epochs, seed {args.seed}"

    torch.manual_seed(args.seed)
    layer = layer_net(APP)
    full = train_classifier(layer, data, args.epochs, args.seed, "layer net")
    torch.manual_seed(args.seed)
    semantic = train_classifier(SemanticNet(APP), data, args.epochs, args.seed, "semantic net")
    torch.manual_seed(args.seed)
    small = half_width_layer_net()
    small_accuracy = train_classifier(small, data, args.epochs, args.seed, "half-width net")
    early_exit = early_exit_profile(train_exit_heads(layer, data, args.epochs, args.seed), data)
    drops = compression_drops(layer, full, data, args.epochs, args.seed)

    profile = AccuracyProfile(
        model=PROFILE_NAME,
        full=full,
        semantic={5: semantic},
        width_switches={},
        compression=drops,
        compressed_model=compressed_model(small, small_accuracy, layer),
        early_exit=early_exit,
        sources={
            "full": f"measured: test top-1 of layer_net('{APP}') trained with cross-entropy ({training})",
            "semantic": (
                f"measured: test top-1 of SemanticNet('{APP}'), 5 independent branches, branch i scoring digits "
                "2i and 2i+1; the branch logits are concatenated and trained jointly with one 10-class "
                "cross-entropy, and the prediction is the argmax of the concatenation (SplitPlace's code applies "
                f"a log-softmax over the concatenated branch outputs) ({training})"
            ),
            "width_switches": "not applicable: ParaDiS width switches are profiled for the ImageNet models only",
            "compression": (
                f"measured: autoencoder on the activation after vertex '{COMPRESSION_AFTER}' (64x12x12) of the "
                "trained, frozen layer net: 1x1-conv encoder to 64/ratio channels, 1x1-conv + ReLU decoder, "
                f"trained on the train activations with MSE ({training}); drop = test top-1 of the layer net minus "
                "test top-1 with the reconstructed activation (negative = reconstruction helped)"
            ),
            "compressed_model": (
                f"measured: layer net at {HALF_WIDTH}x width (conv 16-32, fc 64) trained like the layer net "
                f"({training}); macs_fraction from profile_module total_macs, param_fraction from parameter counts"
            ),
            "early_exit": (
                f"measured: exit heads (adaptive avg-pool to 4x4, flatten, linear) after vertices {list(EXIT_AFTER)} "
                f"trained with cross-entropy on the frozen trained layer net ({training}); an item leaves at the "
                "first head whose largest softmax probability is >= the threshold; exit fractions and accuracy on "
                "the test split; head MACs, latency and parameter bytes from envs.dnn.profiler.profile_module "
                f"(batch 1, median of {PROFILE_REPEATS} runs, 1 thread)"
            ),
            "data": data.describe(),
            "run": (
                f"scripts/train_accuracy.py --seed {args.seed} --epochs {args.epochs} --threads {args.threads}; "
                f"torch {torch.__version__} (deterministic algorithms); {machine_description()}; "
                f"{datetime.date.today().isoformat()}"
            ),
            "paper": (
                "for comparison, SplitPlace's MNIST app on MNIST itself: layer split ~97.4 %, semantic split "
                f"~95.5 % ({SPLITPLACE_PAPER}; figures as summarised in the project's seeds digest, "
                "table/figure number not verified). Here on digits: "
                f"layer {percent(full)}, semantic {percent(semantic)}"
            ),
        },
    )
    write_accuracy(profile, args.output)
    print(f"layer {percent(full)}  semantic {percent(semantic)}  half-width {percent(small_accuracy)}")
    print("compression drop: " + ", ".join(f"x{ratio:g} {percent(drop)}" for ratio, drop in drops.items()))
    for policy in early_exit.policies:
        shares = " / ".join(percent(share) for share in policy.exit_fraction)
        print(f"threshold {policy.threshold:.2f}: exits {shares}, accuracy {percent(policy.accuracy)}")
    print(f"wrote {args.output}")
    return profile


if __name__ == "__main__":
    main()
