"""Training jobs (re-training, split learning) and the per-sample costs of a model from its profile.

Training cost of one sample on the reference CPU = the profile's forward latency
(the sum of its per-vertex latencies, batch 1, as everywhere in the simulators and in
the device calibration: :func:`envs.dnn.fragments.layer_latency_sum_s`) x
``(1 + BACKWARD_FACTOR)``: the backward pass
computes the gradients of both the activations and the weights, about twice the
multiply-accumulates of the forward pass -- the usual rule of thumb (e.g. Kaplan
et al., "Scaling Laws for Neural Language Models", 2020: training compute ~ 6 N
FLOPs per token against 2 N for the forward pass).  Per-sample cost is taken to
be the same at any mini-batch size (batching gains are not modelled).
Model bytes (sent as gradients and as the updated model) = the sum of the
profile's per-vertex ``param_bytes``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from envs.dnn.fragments import layer_latency_sum_s
from envs.dnn.profile_io import load_profile

BACKWARD_FACTOR = 2.0
"""Backward-pass time / forward-pass time (the ~2x rule, see the module docstring)."""


@dataclass(frozen=True)
class ModelCosts:
    """What a model costs to train, from its profile."""

    model: str
    forward_s: float  # reference-CPU forward latency of one sample, seconds
    param_bytes: int  # bytes of the parameters (one gradient, one model copy)
    sample_bytes: int  # bytes of one training sample (the model's input tensor)
    backward_factor: float = BACKWARD_FACTOR

    @property
    def training_s(self) -> float:
        """Reference-CPU seconds of forward + backward on one sample."""
        return self.forward_s * (1.0 + self.backward_factor)


@functools.lru_cache(maxsize=None)
def model_costs(model: str, backward_factor: float = BACKWARD_FACTOR) -> ModelCosts:
    """:class:`ModelCosts` of the shipped profile ``model``."""
    graph = load_profile(model)
    return ModelCosts(
        model=model,
        forward_s=layer_latency_sum_s(graph),
        param_bytes=int(sum(attributes["param_bytes"] for _, attributes in graph.nodes(data=True))),
        sample_bytes=int(graph.graph["input_bytes"]),
        backward_factor=backward_factor,
    )


def _positive_int(owner: object, key: str) -> None:
    value = getattr(owner, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{type(owner).__name__}.{key} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class RetrainingJob:
    """Re-train ``model`` on ``samples`` samples for ``epochs`` epochs, data-parallel.

    ``deadline_s`` (seconds after the start) or None for no deadline.
    """

    model: str
    samples: int
    epochs: int
    deadline_s: float | None = None

    def __post_init__(self) -> None:
        _positive_int(self, "samples")
        _positive_int(self, "epochs")
        if self.deadline_s is not None and not (math.isfinite(self.deadline_s) and self.deadline_s > 0):
            raise ValueError(f"RetrainingJob.deadline_s must be None or a finite number > 0, got {self.deadline_s!r}")

    @property
    def total_samples(self) -> int:
        """Sample-passes of the whole job: samples x epochs."""
        return self.samples * self.epochs


@dataclass(frozen=True)
class SplitLearningJob:
    """Train ``model`` split between a device and a server on ``samples`` samples for ``epochs`` epochs,
    in mini-batches of ``batch_size``."""

    model: str
    samples: int
    epochs: int
    batch_size: int = 32

    def __post_init__(self) -> None:
        for key in ("samples", "epochs", "batch_size"):
            _positive_int(self, key)

    @property
    def iterations(self) -> int:
        """Mini-batch iterations of the whole job (the last batch of an epoch may be smaller)."""
        return self.epochs * math.ceil(self.samples / self.batch_size)
