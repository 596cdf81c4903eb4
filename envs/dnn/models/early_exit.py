"""Early-exit variant of a chain network such as the SplitPlace layer net.

As in MDI-Exit (Colocrese, Koyuncu, Seferoglu, arXiv 2408.05247), light
classifier heads sit after some layers of the backbone; at inference an item
leaves at the first head whose confidence (largest softmax probability) reaches
the threshold, and the backbone's own classifier takes every item left.

Heads are attached after layer-graph vertices named as the profiler names them
(torch.fx node names, e.g. ``"relu1"`` and ``"pool"`` of the layer net), so an
:class:`~envs.dnn.accuracy.EarlyExitProfile` refers to vertices of the base
profile directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from envs.dnn.accuracy import ExitPolicy
from envs.dnn.profiler import trace_module

HEAD_POOL_SIDE_PX = 4
"""Spatial side the exit heads average-pool a feature map to before their linear classifier."""


def exit_head(channels: int, classes: int, pool_side_px: int = HEAD_POOL_SIDE_PX) -> nn.Sequential:
    """average-pool to ``pool_side_px`` square - flatten - linear: a light classifier on a (channels, H, W)
    activation."""
    return nn.Sequential(
        nn.AdaptiveAvgPool2d(pool_side_px),
        nn.Flatten(),
        nn.Linear(channels * pool_side_px**2, classes),
    )


class EarlyExitNet(nn.Module):
    """A chain backbone with exit heads; ``forward`` returns the logits of every exit, the backbone's last."""

    def __init__(self, backbone: nn.Module, exit_after: Sequence[str], classes: int, example_input: torch.Tensor):
        super().__init__()
        self.backbone = backbone
        self.stages = chain_stages(backbone)
        names = [name for name, _target in self.stages]
        unknown = [name for name in exit_after if name not in names]
        if unknown:
            raise ValueError(f"exit_after vertex {unknown[0]!r} is not a layer of the backbone; layers: {names}")
        self.exit_after = tuple(sorted(exit_after, key=names.index))
        with torch.no_grad():
            activations = self.exit_activations(example_input)
        for name, activation in activations.items():
            if activation.dim() != 4:
                raise ValueError(f"exit after {name!r} needs a (batch, C, H, W) activation, "
                                 f"got shape {list(activation.shape)}")
        self.heads = nn.ModuleDict({name: exit_head(activations[name].shape[1], classes) for name in self.exit_after})

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        activations, output = self._run_backbone(x)
        return [*(self.heads[name](activations[name]) for name in self.exit_after), output]

    def exit_activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The backbone's activation at every exit vertex (what each head reads)."""
        return self._run_backbone(x)[0]

    def _run_backbone(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        activations = {}
        for name, target in self.stages:
            x = self.backbone.get_submodule(target)(x)
            if name in self.exit_after:
                activations[name] = x
        return activations, x


def chain_stages(backbone: nn.Module) -> list[tuple[str, str]]:
    """(fx vertex name, submodule path) of every layer of a backbone that is a plain chain of submodules."""
    stages = []
    previous = None
    for node in trace_module(backbone).graph.nodes:
        if node.op == "placeholder":
            previous = node
        elif node.op == "call_module" and node.args == (previous,) and not node.kwargs:
            stages.append((node.name, node.target))
            previous = node
        elif node.op != "output":
            raise ValueError(f"backbone vertex {node.name!r} ({node.op}) breaks the chain of submodules; "
                             "early exits need a backbone whose forward calls its submodules one after another")
    return stages


def split_chain(backbone: nn.Module, after: str) -> tuple[nn.Sequential, nn.Sequential]:
    """The backbone's layers up to and including vertex ``after``, and the rest (sharing its parameters)."""
    stages = chain_stages(backbone)
    names = [name for name, _target in stages]
    if after not in names[:-1]:
        raise ValueError(f"cannot cut after {after!r}: choose one of {names[:-1]}")
    cut = names.index(after) + 1
    layers = [backbone.get_submodule(target) for _name, target in stages]
    return nn.Sequential(*layers[:cut]), nn.Sequential(*layers[cut:])


def exit_policy(exit_logits: Sequence[torch.Tensor], labels: torch.Tensor, threshold: float) -> ExitPolicy:
    """Share of items leaving at each exit and overall accuracy when items exit at ``threshold`` confidence."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold={threshold} must lie in [0, 1]")
    items = len(labels)
    remaining = torch.ones(items, dtype=torch.bool)
    exits_taken = torch.full((items,), len(exit_logits) - 1)
    predictions = exit_logits[-1].argmax(dim=1)
    for index, logits in enumerate(exit_logits[:-1]):
        confidence, predicted = logits.softmax(dim=1).max(dim=1)
        leaves = remaining & (confidence >= threshold)
        exits_taken[leaves] = index
        predictions[leaves] = predicted[leaves]
        remaining &= ~leaves
    counts = torch.bincount(exits_taken, minlength=len(exit_logits))
    return ExitPolicy(
        threshold=threshold,
        exit_fraction=tuple(count / items for count in counts.tolist()),
        accuracy=(predictions == labels).sum().item() / items,
    )
