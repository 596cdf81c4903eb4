"""The models whose profiles the project ships: profile name -> how to build the module and its input.

torchvision is imported only when one of its models is built; it is not a
dependency of the project (see ``docs/profiling.md`` for the separate
environment that generates those profiles).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from envs.dnn.models.mobilenet_v1 import MobileNetV1
from envs.dnn.models.splitplace import APPS, SemanticNet, layer_net

IMAGENET_INPUT_SHAPE = (1, 3, 224, 224)
"""Batch-1 ImageNet input, 224x224 RGB."""

EXAMPLE_INPUT_SEED = 0
"""Seed of the random example input (values do not change MACs or shapes)."""


@dataclass(frozen=True)
class ZooModel:
    """How to build one profiled model.

    Attributes:
        factory: builds the module (untrained weights).
        input_shape: batch-1 input shape (N, C, H, W).
        source: how the module is built, stored in the profile.
        needs_torchvision: whether ``factory`` imports torchvision.
    """

    factory: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    source: str
    needs_torchvision: bool = False

    def example_input(self) -> torch.Tensor:
        """A reproducible standard-normal input of :attr:`input_shape`."""
        generator = torch.Generator().manual_seed(EXAMPLE_INPUT_SEED)
        return torch.randn(self.input_shape, generator=generator)


def _torchvision_model(name: str) -> nn.Module:
    try:
        models = importlib.import_module("torchvision.models")
    except ImportError as error:
        raise ImportError(f"profiling {name!r} needs torchvision, which the project does not install; "
                          "use the profiling environment described in docs/profiling.md") from error
    return getattr(models, name)(weights=None)


def _splitplace_models() -> dict[str, ZooModel]:
    models = {}
    for app, spec in APPS.items():
        shape = (1, spec.channels, spec.side_px, spec.side_px)
        models[f"splitplace_{app}_layer"] = ZooModel(
            partial(layer_net, app), shape, f"envs.dnn.models.splitplace.layer_net({app!r})")
        models[f"splitplace_{app}_semantic"] = ZooModel(
            partial(SemanticNet, app), shape, f"envs.dnn.models.splitplace.SemanticNet({app!r})")
    return models


def _imagenet_models() -> dict[str, ZooModel]:
    models = {
        name: ZooModel(partial(_torchvision_model, name), IMAGENET_INPUT_SHAPE,
                       f"torchvision.models.{name}(weights=None)", needs_torchvision=True)
        for name in ("resnet18", "resnet50", "mobilenet_v2", "vgg16")
    }
    models["mobilenet_v1"] = ZooModel(MobileNetV1, IMAGENET_INPUT_SHAPE,
                                      "envs.dnn.models.mobilenet_v1.MobileNetV1(width=1.0)")
    return models


ZOO: dict[str, ZooModel] = {**_splitplace_models(), **_imagenet_models()}
"""Every shipped profile name and how its module is built."""


def zoo_model(name: str) -> ZooModel:
    """The :class:`ZooModel` called ``name``."""
    try:
        return ZOO[name]
    except KeyError:
        raise ValueError(f"unknown zoo model {name!r}; allowed: {sorted(ZOO)}") from None
