"""Split plans: the plain data the split planner hands to the simulator.

A plan is a small DAG of *fragments* (pieces of one DNN that run on one node
each) joined by *transfers* (tensors sent from one fragment to another).  The
job's origin (where its input comes from and its result goes back to) is the
pseudo-fragment :data:`ORIGIN`.  Units: seconds, bytes, multiply-accumulates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ORIGIN = -1
"""Fragment index that stands for the job's origin node in :class:`Transfer`."""

FAMILIES = ("none", "layer", "semantic", "early_exit", "width")
"""Split families, in the order the action space enumerates them."""


@dataclass(frozen=True)
class Fragment:
    """One piece of a split model, executed as a whole on one node.

    Attributes:
        name: readable label, e.g. ``"conv1..pool"``.
        macs: multiply-accumulates of one inference (batch 1).
        reference_latency_s: measured time on the reference CPU, batch 1.
        param_bytes: bytes of the weights the node must hold.
        activation_bytes: peak bytes of activations alive while it runs.
        vertices: names of the layer-graph vertices it contains (empty for synthetic ones).
    """

    name: str
    macs: int
    reference_latency_s: float
    param_bytes: int
    activation_bytes: int
    vertices: tuple[str, ...] = ()

    @property
    def memory_bytes(self) -> int:
        """Parameters plus peak activations: what must fit on the node."""
        return self.param_bytes + self.activation_bytes


@dataclass(frozen=True)
class Transfer:
    """A tensor of ``bytes`` sent from fragment ``source`` to fragment ``target``
    (either may be :data:`ORIGIN`)."""

    source: int
    target: int
    bytes: int


@dataclass(frozen=True)
class SplitPlan:
    """A way to run one model: fragments, the tensors between them, and its accuracy.

    Attributes:
        model: profile name, e.g. ``"resnet50"``.
        family: one of :data:`FAMILIES`.
        variant: readable id of the plan within its family, e.g. ``"cuts=layer2,layer3"``.
        fragments: the pieces; fragment ``i`` is referred to by index ``i``.
        transfers: edges of the fragment DAG, including the input from and the
            result to :data:`ORIGIN`.
        accuracy: expected top-1 accuracy in [0, 1] of an item served by this plan.
        exit_probability: for early-exit chains, the probability that an item
            that reached the end of fragment ``i`` leaves there (last entry 1);
            empty for every other family.
    """

    model: str
    family: str
    variant: str
    fragments: tuple[Fragment, ...]
    transfers: tuple[Transfer, ...]
    accuracy: float
    exit_probability: tuple[float, ...] = field(default=())

    @property
    def total_macs(self) -> int:
        return sum(f.macs for f in self.fragments)

    def inputs_of(self, fragment: int) -> tuple[Transfer, ...]:
        """Transfers whose target is ``fragment``."""
        return tuple(t for t in self.transfers if t.target == fragment)

    def outputs_of(self, fragment: int) -> tuple[Transfer, ...]:
        """Transfers whose source is ``fragment``."""
        return tuple(t for t in self.transfers if t.source == fragment)
