"""Early-exit figures for ImageNet models that nobody measured here: an explicit, documented assumption.

No published set of per-threshold exit shares and accuracies for exit heads on
MobileNetV2 or ResNet-50 could be found and verified, and ImageNet cannot be
downloaded or trained on here.  So the ``early_exit`` section of those accuracy
profiles comes from this model, anchored only on the published top-1 of the
full model (``AccuracyProfile.full``).  Its two assumptions:

1. **Head accuracy grows with depth**: a head after a prefix holding a fraction
   ``d`` of the model's multiply-accumulates classifies
   ``full * d ** HEAD_ACCURACY_EXPONENT`` of the items correctly on its own.
2. **Confidence**: every item has a difficulty ``z ~ N(0, 1)`` shared by all
   heads (hard items stay hard), and head ``k`` is right with probability
   ``c_k(z) = Phi((q_k - z) / NOISE_SD)``, the head's (calibrated) confidence;
   ``q_k`` is set so that the head's accuracy over all items is its assumed
   accuracy.  An item leaves at the first head with ``c_k(z) >= T``.

Then the items with ``z <= z_k = q_k - NOISE_SD * Phi^-1(T)`` (and not already
gone) leave at head ``k``; a policy's exit shares and overall accuracy are
integrals over ``z`` (``scipy.integrate.quad``).  Heads are global average
pooling plus a linear classifier (the backbone's own classifier form); their
multiply-accumulates, latency and parameter bytes are measured with
:func:`envs.dnn.profiler.profile_module` like every other profile.

Rewrite the sections with ``python -m envs.dnn.early_exit_assumption``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Sequence

import torch
from scipy import integrate, stats

from envs.dnn.accuracy import ACCURACY_DIR, EarlyExitProfile, ExitPolicy, load_accuracy, write_accuracy
from envs.dnn.cut_points import execution_order
from envs.dnn.fragments import layer_latency_sum_s
from envs.dnn.models.early_exit import exit_head
from envs.dnn.profile_io import load_profile
from envs.dnn.profiler import profile_module

HEAD_ACCURACY_EXPONENT = 0.5
"""Head accuracy = full * (prefix MACs fraction) ** this (assumption 1)."""
NOISE_SD = 1.0
"""Spread of a head's own errors around the shared item difficulty (assumption 2), in difficulty units."""
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
"""Confidence thresholds; 1.0 never exits early (the chain without early exits, heads still run)."""
IMAGENET_CLASSES = 1000
HEAD_POOL_SIDE_PX = 1
"""The ImageNet heads pool globally, like the backbones' own classifiers."""
PROFILE_REPEATS = 30

EXITS: dict[str, tuple[str, ...]] = {
    "mobilenet_v2": ("add", "add_5", "add_7"),
    "resnet50": ("layer1_2_relu_2", "layer2_3_relu_2", "layer3_5_relu_2"),
}
"""Exit vertices: the ends of the stages whose prefix MACs lie nearest to 1/4, 1/2 and 3/4 of the model's
(MobileNetV2: the 24-, 64- and 96-channel stages; ResNet-50: layer1, layer2, layer3), so a 4-board chain
holds one exit at the end of each of its first three fragments."""


def prefix_macs_fractions(model: str, vertices: Sequence[str]) -> list[float]:
    """Share of the model's multiply-accumulates done up to and including each of ``vertices``."""
    graph = load_profile(model)
    done, fractions = 0, {}
    for vertex in execution_order(graph):
        done += graph.nodes[vertex]["macs"]
        fractions[vertex] = done / graph.graph["total_macs"]
    return [fractions[vertex] for vertex in vertices]


def head_accuracies(full: float, depth_fractions: Sequence[float]) -> list[float]:
    """Assumption 1: each head's own top-1 at its prefix MACs fraction."""
    return [full * fraction**HEAD_ACCURACY_EXPONENT for fraction in depth_fractions]


def exit_policy(accuracies: Sequence[float], threshold: float) -> ExitPolicy:
    """Assumption 2: exit shares and overall accuracy at ``threshold`` for heads of ``accuracies``
    (the final classifier last; increasing)."""
    scale = math.sqrt(1.0 + NOISE_SD**2)
    centres = [scale * stats.norm.ppf(accuracy) for accuracy in accuracies]
    if threshold >= 1.0:
        bounds = [-math.inf] * (len(centres) - 1)
    else:
        bounds = [centre - NOISE_SD * stats.norm.ppf(threshold) for centre in centres[:-1]]
    bounds = [max(bounds[:k + 1]) for k in range(len(bounds))] + [math.inf]
    shares, correct, lower = [], 0.0, -math.inf
    for centre, upper in zip(centres, bounds):
        upper = max(upper, lower)
        shares.append(float(stats.norm.cdf(upper) - stats.norm.cdf(lower)))
        if upper > lower:
            correct += integrate.quad(
                lambda z, c=centre: stats.norm.cdf((c - z) / NOISE_SD) * stats.norm.pdf(z), lower, upper)[0]
        lower = upper
    return ExitPolicy(threshold=threshold, exit_fraction=tuple(shares), accuracy=correct)


def measured_heads(model: str, vertices: Sequence[str]) -> tuple[list[int], list[float], list[int]]:
    """(MACs, latency in seconds, parameter bytes) of a pooled linear head after each of ``vertices``."""
    graph = load_profile(model)
    macs, latency_s, param_bytes = [], [], []
    for vertex in vertices:
        _batch, channels, height, width = graph.nodes[vertex]["output_shape"]
        head = exit_head(channels, IMAGENET_CLASSES, pool_side_px=HEAD_POOL_SIDE_PX)
        head_graph = profile_module(head, torch.randn(1, channels, height, width), name=f"{model}_exit_{vertex}",
                                    repeats=PROFILE_REPEATS)
        macs.append(head_graph.graph["total_macs"])
        latency_s.append(layer_latency_sum_s(head_graph))
        param_bytes.append(4 * head_graph.graph["total_params"])
    return macs, latency_s, param_bytes


def assumed_early_exit(model: str) -> EarlyExitProfile:
    """The early-exit section of ``model`` under this module's assumptions."""
    vertices = EXITS[model]
    accuracies = head_accuracies(load_accuracy(model).full, prefix_macs_fractions(model, vertices) + [1.0])
    macs, latency_s, param_bytes = measured_heads(model, vertices)
    policies = tuple(exit_policy(accuracies, threshold) for threshold in THRESHOLDS)
    return EarlyExitProfile(tuple(vertices), tuple(macs), tuple(latency_s), tuple(param_bytes), policies)


def source_text(model: str) -> str:
    """The ``sources["early_exit"]`` record of ``model``."""
    fractions = prefix_macs_fractions(model, EXITS[model])
    accuracies = head_accuracies(load_accuracy(model).full, fractions)
    heads = ", ".join(f"{vertex} (MACs fraction {fraction:.3f}): {accuracy:.3f}"
                      for vertex, fraction, accuracy in zip(EXITS[model], fractions, accuracies))
    return (
        "assumption: no published per-threshold exit shares and accuracies for exit heads on this ImageNet model "
        "could be found and verified, neither from MDI-Exit (Colocrese, Koyuncu, Seferoglu, arXiv 2408.05247) nor "
        "from another early-exit paper, and ImageNet cannot be used here. Model "
        f"(envs/dnn/early_exit_assumption.py): head accuracy = full top-1 x (prefix MACs fraction)^"
        f"{HEAD_ACCURACY_EXPONENT:g}, giving {heads}; item difficulty z ~ N(0,1) shared by all heads, head k right "
        f"with calibrated probability Phi((q_k - z)/{NOISE_SD:g}), q_k matching the head accuracy; an item leaves at "
        "the first head whose confidence reaches the threshold (1.0: never early). Heads = global average pool + "
        "linear to 1000 classes; MACs, parameter bytes and latency (batch 1, median of "
        f"{PROFILE_REPEATS} runs, 1 thread) from envs.dnn.profiler.profile_module. The numbers are illustrative; "
        "replace them with measured ones before drawing conclusions about early-exit accuracy"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Rewrite the assumed early-exit sections of the ImageNet profiles")
    parser.add_argument("models", nargs="*", help=f"some of {sorted(EXITS)} (default: all of them)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.models) - set(EXITS))
    if unknown:
        parser.error(f"no assumed exits for {unknown}; allowed: {sorted(EXITS)}")
    for model in args.models or sorted(EXITS):
        profile = load_accuracy(model)
        updated = dataclasses.replace(profile, early_exit=assumed_early_exit(model),
                                      sources={**profile.sources, "early_exit": source_text(model)})
        write_accuracy(updated, ACCURACY_DIR / f"{model}.json")
        print(f"{model}: " + "; ".join(f"T={p.threshold:g} exits {[round(s, 3) for s in p.exit_fraction]} "
                                       f"top-1 {p.accuracy:.4f}" for p in updated.early_exit.policies))


if __name__ == "__main__":
    main()
