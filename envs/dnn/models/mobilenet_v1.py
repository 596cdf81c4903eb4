"""MobileNet v1 (Howard et al., "MobileNets: Efficient Convolutional Neural Networks for
Mobile Vision Applications", arXiv 1704.04861, 2017), written from the paper's Table 1.

A 3x3 stride-2 convolution with 32 filters, then 13 depthwise-separable layers
(3x3 depthwise convolution + 1x1 pointwise convolution, each followed by batch
norm and ReLU), global average pooling and one fully connected layer.  Table 1
lists the 14th layer (the second ``Conv dw 3x3x1024``) as stride 2, but its
input and output are both 7x7, so it is stride 1 here as in every public
implementation.  The paper reports 569 M multiply-adds and 4.2 M parameters
for width 1.0 at 224x224 (Table 2), checked in the tests.
"""

from __future__ import annotations

import torch
from torch import nn

STEM_CHANNELS = 32
"""Filters of the first (full) 3x3 stride-2 convolution (Table 1)."""

SEPARABLE_LAYERS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
)
"""(output channels, depthwise stride) of the 13 depthwise-separable layers (Table 1)."""


class ConvBatchNormReLU(nn.Sequential):
    """Convolution without bias, batch norm, ReLU ("same" padding)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, groups: int = 1):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2,
                      groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class DepthwiseSeparable(nn.Sequential):
    """A 3x3 depthwise convolution then a 1x1 pointwise convolution, each with batch norm and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.depthwise = ConvBatchNormReLU(in_channels, in_channels, 3, stride, groups=in_channels)
        self.pointwise = ConvBatchNormReLU(in_channels, out_channels, 1, 1)


class MobileNetV1(nn.Module):
    """MobileNet v1 with width multiplier ``width`` (the paper's alpha) for ``classes`` classes."""

    def __init__(self, width: float = 1.0, classes: int = 1000):
        super().__init__()
        if width <= 0:
            raise ValueError(f"width={width} must be positive")
        channels = int(STEM_CHANNELS * width)
        layers: list[nn.Module] = [ConvBatchNormReLU(3, channels, 3, 2)]
        for out_channels, stride in SEPARABLE_LAYERS:
            layers.append(DepthwiseSeparable(channels, int(out_channels * width), stride))
            channels = int(out_channels * width)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
