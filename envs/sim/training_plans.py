"""Split-learning jobs on the scheduler: a model's split plan turned into its per-sample training plan.

A training job (``Job.training``) runs its plan once per mini-batch, ``Job.iterations``
times back to back: forward on each fragment with the activations sent on, then the
backward pass (``BACKWARD_FACTOR`` x the forward time) with gradients as large as the
activations sent back; the raw input sent from the origin gets no gradient, and the
loss is computed on the last fragment (the labels travel with the input, as in
:mod:`envs.training.split_learning`).  The simulator reserves one pass of this plan
over a mini-batch of ``items`` samples at a time, the next when the previous one's
result is back at the origin (:meth:`ClusterSimulator.submit
<envs.sim.engine.ClusterSimulator.submit>`; the approximations are described in
``docs/simulator.md``), so the plan carries per-sample costs:

* fragment compute: reference latency (and MACs) x ``(1 + BACKWARD_FACTOR)``;
* a transfer between two fragments: bytes x 2 (activations forward, gradients back);
  the input from the origin and the output sent back to it: bytes x 1;
* fragment memory: its weights, ``TRAINING_STATE_COPIES`` x the weights (gradients and
  Adam's two moment estimates), and ``batch_size`` x the outputs of all its layers (kept
  for the backward pass), as ``param_bytes`` + ``activation_bytes``;
* accuracy 0: a training job earns no accuracy bonus.

Trainable plans: the unsplit model and its layer chains (:func:`trainable`).
"""

from __future__ import annotations

import dataclasses
import functools

from envs.dnn.plan import ORIGIN, Fragment, SplitPlan
from envs.dnn.profile_io import load_profile
from envs.training.jobs import BACKWARD_FACTOR

TRAINING_STATE_COPIES = 3
"""Copies of a fragment's weights that training keeps beside them: the gradients and the first and second
moment estimates of Adam (Kingma and Ba, ICLR 2015)."""

GRADIENT_FACTOR = 2
"""Bytes sent per activation byte between two fragments: the activations forward and their gradients back."""

UNSPLIT_VARIANT = "whole"
"""Variant of the unsplit model in the ``none`` family (the other, ``compressed``, is a different model)."""


def trainable(plan: SplitPlan) -> bool:
    """Whether ``plan`` can run a training job: the unsplit model or a layer chain."""
    return plan.family == "layer" or (plan.family == "none" and plan.variant == UNSPLIT_VARIANT)


@functools.lru_cache(maxsize=None)
def _output_bytes(model: str) -> dict[str, int]:
    """Bytes of one sample's output of each layer-graph vertex of ``model``."""
    return {vertex: int(attributes["output_bytes"]) for vertex, attributes in load_profile(model).nodes(data=True)}


def _training_fragment(fragment: Fragment, output_bytes: dict[str, int], batch_size: int) -> Fragment:
    kept_bytes = sum(output_bytes[vertex] for vertex in fragment.vertices)
    return dataclasses.replace(
        fragment,
        macs=round(fragment.macs * (1.0 + BACKWARD_FACTOR)),
        reference_latency_s=fragment.reference_latency_s * (1.0 + BACKWARD_FACTOR),
        activation_bytes=TRAINING_STATE_COPIES * fragment.param_bytes + batch_size * kept_bytes,
    )


def training_plan(plan: SplitPlan, batch_size: int) -> SplitPlan:
    """The per-sample training plan of ``plan`` (a :func:`trainable` one) for mini-batches of ``batch_size``."""
    if not trainable(plan):
        raise ValueError(f"plan {plan.model}/{plan.family}/{plan.variant} cannot train: only the unsplit model "
                         f"and layer chains can")
    output_bytes = _output_bytes(plan.model)
    return dataclasses.replace(
        plan,
        fragments=tuple(_training_fragment(fragment, output_bytes, batch_size) for fragment in plan.fragments),
        transfers=tuple(transfer if ORIGIN in (transfer.source, transfer.target)
                        else dataclasses.replace(transfer, bytes=GRADIENT_FACTOR * transfer.bytes)
                        for transfer in plan.transfers),
        accuracy=0.0,
    )
