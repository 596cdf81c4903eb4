"""Placement heuristics: a node for every fragment of a chosen split plan.

* :class:`LeastLoaded`: fragment by fragment, the up node with room for it
  that has the least queued work in seconds, counting the work of the job's
  earlier fragments already put there (so parallel branches spread out).
* :class:`FastestFinish`: starts from the least-loaded placement and moves
  each fragment in turn to the node, among the few least-loaded ones with room,
  that gives the earliest estimated completion of the whole job (the
  simulator's ``estimate_completion_s``, the same reservation computation as a
  real submission, without reserving).
* :class:`EstimatedFinish`: fragment by fragment, the node with room where the
  agent's own estimate (:mod:`agents.finish_estimate`, from the snapshot, no
  simulator call) says it finishes first: the mode of the decision-aware
  placement's prior, without the network.

A fragment that fits nowhere goes to the node of most free memory; the
environment then rejects the job as infeasible, as it would any such action.
"""

from __future__ import annotations

import numpy as np

from agents.env_access import EnvView
from agents.finish_estimate import place_slot_by_slot
from agents.protocol import Placement
from envs.dnn.plan import SplitPlan


def least_loaded_placement(view: EnvView, plan: SplitPlan) -> list[int]:
    """Least queued work (seconds, incl. this job's own earlier fragments, all its iterations) among the nodes
    with room (counting the memory of this job's earlier fragments)."""
    snapshot = view.snapshot()
    load_s = snapshot.queued_work_s.astype(np.float64)
    used_bytes = np.zeros(view.node_count, dtype=np.int64)
    speed = view.speed_factors()
    items = view.job.total_items
    placement = []
    for fragment in plan.fragments:
        fitting = view.fitting_nodes(fragment, used_bytes)
        if fitting.any():
            node = int(np.flatnonzero(fitting)[np.argmin(load_s[fitting])])
        else:
            node = int(np.argmax(snapshot.free_memory_bytes - used_bytes))
        load_s[node] += items * fragment.reference_latency_s / speed[node]
        used_bytes[node] += fragment.memory_bytes
        placement.append(node)
    return placement


def estimated_finish_placement(view: EnvView, plan: SplitPlan) -> list[int]:
    """Slot after slot, the node with room (counting this job's earlier fragments) of earliest estimated
    finish (:class:`~agents.finish_estimate.FinishEstimate`)."""

    def earliest(slot: int, fitting: np.ndarray, finish_s: np.ndarray, chosen: np.ndarray,
                 free_bytes: np.ndarray) -> int:
        if fitting.any():
            return int(np.argmin(np.where(fitting, finish_s, np.inf)))
        return int(np.argmax(free_bytes))

    return place_slot_by_slot(view, plan, earliest)


CANDIDATE_NODES = 8
"""Nodes :func:`fastest_finish_placement` tries per fragment: the least loaded ones with room."""


def _candidates(view: EnvView, fragment, count: int) -> np.ndarray:
    """The ``count`` nodes with room for ``fragment`` that have the least queued work."""
    fitting = np.flatnonzero(view.fitting_nodes(fragment))
    if fitting.size <= count:
        return fitting
    queued_s = view.snapshot().queued_work_s[fitting]
    return fitting[np.argpartition(queued_s, count - 1)[:count]]


def fastest_finish_placement(view: EnvView, plan: SplitPlan, candidate_nodes: int = CANDIDATE_NODES) -> list[int]:
    """One pass of coordinate descent on the estimated completion time, from least-loaded; each fragment
    tries the ``candidate_nodes`` least-loaded nodes with room (all of them on small clusters)."""
    placement = least_loaded_placement(view, plan)
    best_s = view.estimate_completion_s(plan, placement)
    for index, fragment in enumerate(plan.fragments):
        for node in _candidates(view, fragment, candidate_nodes):
            if node == placement[index]:
                continue
            trial = placement.copy()
            trial[index] = int(node)
            completion_s = view.estimate_completion_s(plan, trial)
            if completion_s < best_s:
                placement, best_s = trial, completion_s
    return placement


def fastest_plan(view: EnvView, plans: list[SplitPlan]) -> SplitPlan:
    """The plan of earliest estimated completion, each placed least-loaded (one estimate per plan)."""
    if len(plans) == 1:
        return plans[0]
    return min(plans, key=lambda plan: view.estimate_completion_s(plan, least_loaded_placement(view, plan)))


class LeastLoaded(Placement):
    """:func:`least_loaded_placement` as a placement policy."""

    def place(self, view: EnvView, plan: SplitPlan) -> list[int]:
        return least_loaded_placement(view, plan)


class FastestFinish(Placement):
    """:func:`fastest_finish_placement` as a placement policy."""

    def place(self, view: EnvView, plan: SplitPlan) -> list[int]:
        return fastest_finish_placement(view, plan)


class EstimatedFinish(Placement):
    """:func:`estimated_finish_placement` as a placement policy."""

    def place(self, view: EnvView, plan: SplitPlan) -> list[int]:
        return estimated_finish_placement(view, plan)


class RandomPlacement(Placement):
    """A uniformly random node with room for each fragment (any node if none has room)."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def start_episode(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def place(self, view: EnvView, plan: SplitPlan) -> list[int]:
        placement = []
        for fragment in plan.fragments:
            fitting = np.flatnonzero(view.fitting_nodes(fragment))
            candidates = fitting if fitting.size else np.arange(view.node_count)
            placement.append(int(self.rng.choice(candidates)))
        return placement


PLACEMENTS = {"least_loaded": LeastLoaded, "fastest_finish": FastestFinish, "estimated_finish": EstimatedFinish,
              "random": RandomPlacement}
"""Heuristic placements by config name (the learned one is in :mod:`agents.decision_aware`)."""
