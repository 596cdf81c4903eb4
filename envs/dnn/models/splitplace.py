"""The small CNN apps of SplitPlace (Tuli et al., IEEE TMC 2022), rebuilt as torch modules.

Architecture as described in the SplitPlace paper and its public code (see
``shared/reference/seeds-digest.md``):

* layer net: conv3x3(32m) - conv3x3(64m) - maxpool2 - fc(128m) - fc(classes)
* semantic branch: conv3x3(8m) - conv3x3(16m) - maxpool2 - fc(64m) - fc(classes / branches)

with width multiplier ``m = 1`` for MNIST and ``m = 2`` for FashionMNIST and
CIFAR100.  Parameter counts (checked in the tests): layer 1.20M / 4.80M / 6.52M,
one semantic branch 0.15M / 0.60M / 0.81M.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class AppSpec:
    """Input geometry and width of one SplitPlace app."""

    name: str
    channels: int
    side_px: int
    classes: int
    width_multiplier: int

    def example_input(self, batch: int = 1) -> torch.Tensor:
        """A zero input tensor of the app's shape (batch, C, H, W)."""
        return torch.zeros(batch, self.channels, self.side_px, self.side_px)


APPS: dict[str, AppSpec] = {
    "mnist": AppSpec("mnist", channels=1, side_px=28, classes=10, width_multiplier=1),
    "fashionmnist": AppSpec("fashionmnist", channels=1, side_px=28, classes=10, width_multiplier=2),
    "cifar100": AppSpec("cifar100", channels=3, side_px=32, classes=100, width_multiplier=2),
}

SEMANTIC_BRANCHES = 5
"""Number of parallel class-subset branches of SplitPlace's semantic split."""


def _feature_side(side_px: int) -> int:
    """Spatial side after two valid 3x3 convolutions and a 2x2 max-pool."""
    return (side_px - 4) // 2


class ConvStack(nn.Module):
    """conv3x3 - relu - conv3x3 - relu - maxpool2 - flatten - fc - relu - fc."""

    def __init__(self, channels: int, side_px: int, conv1: int, conv2: int, hidden: int, outputs: int):
        super().__init__()
        flat = conv2 * _feature_side(side_px) ** 2
        self.conv1 = nn.Conv2d(channels, conv1, 3)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(conv1, conv2, 3)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(flat, hidden)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.conv1(x))
        x = self.pool(self.relu2(self.conv2(x)))
        x = self.relu3(self.fc1(self.flatten(x)))
        return self.fc2(x)


def layer_net(app: str) -> ConvStack:
    """SplitPlace's layer-split network for ``app`` (one of :data:`APPS`)."""
    spec = _spec(app)
    m = spec.width_multiplier
    return ConvStack(spec.channels, spec.side_px, 32 * m, 64 * m, 128 * m, spec.classes)


def semantic_branch(app: str, branches: int = SEMANTIC_BRANCHES) -> ConvStack:
    """One branch of SplitPlace's semantic split: predicts ``classes / branches`` classes."""
    spec = _spec(app)
    if spec.classes % branches:
        raise ValueError(f"branches={branches} must divide the {spec.classes} classes of app {app!r}")
    m = spec.width_multiplier
    return ConvStack(spec.channels, spec.side_px, 8 * m, 16 * m, 64 * m, spec.classes // branches)


class SemanticNet(nn.Module):
    """``branches`` disjoint class-subset branches run side by side, logits concatenated."""

    def __init__(self, app: str, branches: int = SEMANTIC_BRANCHES):
        super().__init__()
        self.branches = nn.ModuleList(semantic_branch(app, branches) for _ in range(branches))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


def _spec(app: str) -> AppSpec:
    try:
        return APPS[app]
    except KeyError:
        raise ValueError(f"unknown SplitPlace app {app!r}; allowed: {sorted(APPS)}") from None
