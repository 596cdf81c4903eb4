"""scikit-learn's bundled handwritten digits as an MNIST-shaped data set.

``sklearn.datasets.load_digits`` ships 1797 grey 8x8 images (pixel values 0..16)
inside the package, so nothing is downloaded.  They are upsampled bilinearly to
the SplitPlace MNIST app's 28x28x1 input, standardised with the training split's
mean and standard deviation, and split into a stratified, seeded train/test pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

DIGITS_MAX_PIXEL = 16.0
"""Largest pixel value of scikit-learn's digits images."""


@dataclass(frozen=True)
class DigitsSplit:
    """Train and held-out test tensors: images (N, 1, side, side) float32, labels (N,) int64."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    test_fraction: float
    seed: int
    pixel_mean: float
    pixel_std: float

    def describe(self) -> str:
        """One line naming the data, its sizes and how it was split (for accuracy-profile sources)."""
        side = self.train_images.shape[-1]
        return (
            f"scikit-learn load_digits (1797 8x8 images, 10 classes), bilinear upsampling to {side}x{side}x1, "
            f"stratified split test_fraction={self.test_fraction} seed={self.seed}: "
            f"{len(self.train_labels)} train / {len(self.test_labels)} test items, "
            f"standardised with the train mean {self.pixel_mean:.4f} and std {self.pixel_std:.4f}"
        )


def load_digits_split(side_px: int = 28, test_fraction: float = 0.3, seed: int = 0) -> DigitsSplit:
    """The digits upsampled to ``side_px`` square, split stratified by class with ``seed``."""
    if side_px < 8:
        raise ValueError(f"side_px={side_px} must be at least the 8 px of the digits images")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction={test_fraction} must lie strictly between 0 and 1")
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / DIGITS_MAX_PIXEL
    images = F.interpolate(images, size=(side_px, side_px), mode="bilinear", align_corners=False)
    labels = torch.tensor(digits.target, dtype=torch.int64)
    train_index, test_index = train_test_split(
        range(len(labels)), test_size=test_fraction, stratify=digits.target, random_state=seed
    )
    train_images, test_images = images[train_index], images[test_index]
    mean, std = train_images.mean().item(), train_images.std().item()
    return DigitsSplit(
        train_images=(train_images - mean) / std,
        train_labels=labels[train_index],
        test_images=(test_images - mean) / std,
        test_labels=labels[test_index],
        test_fraction=test_fraction,
        seed=seed,
        pixel_mean=mean,
        pixel_std=std,
    )
