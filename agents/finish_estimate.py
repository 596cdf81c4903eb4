"""An agent's own estimate of when a job's fragment would finish on each node, from the cluster snapshot.

List scheduling on what the snapshot shows, slot after slot: a fragment placed on node ``n`` starts once
``n`` is through its queued work and its inputs have arrived; it then runs the job's items at ``n``'s
speed, slowed by ``n``'s background load.  An input from another node arrives after the sender's earlier
fragment (or, from the job's origin, at once), the backlogs of the sender's uplink and of ``n``'s
downlink, and the bytes at the slower of the two links' current rates.  Unlike the simulator's own
estimate (``EnvView.estimate_completion_s``, what the fastest-finish placement asks) it ignores the
trace's changes and the interplay of transfers within the job; it costs one vector expression per slot.

:func:`place_slot_by_slot` is the walk over a plan's fragments that the placements using the estimate
share (the greedy ``estimated_finish`` heuristic, the decision-aware placement's sampling).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from envs.cluster.network import MEGABITS_PER_BYTE
from envs.dnn.plan import ORIGIN, SplitPlan


class FinishEstimate:
    """Per-slot finish-time estimates of one job's plan; create one per decision.

    Args:
        snapshot: the cluster now (``envs.sim.types.ClusterSnapshot``).
        speed_factors: reference-CPU time / node time, per node.
        origin: node where the job's input is and its results return.
        items: items the job runs through each fragment.
    """

    def __init__(self, snapshot, speed_factors: np.ndarray, origin: int, items: float):
        self._snapshot = snapshot
        self._origin = origin
        self._items = items
        busy_fraction = np.clip(snapshot.background_utilisation, 0.0, 0.99)
        self._seconds_per_reference_s = 1.0 / (speed_factors * (1.0 - busy_fraction))
        self._finish_s: dict[int, float] = {}  # slot -> estimated finish (seconds from now) on its chosen node

    def slot_finish_s(self, plan: SplitPlan, slot: int, chosen: np.ndarray) -> np.ndarray:
        """(nodes,) seconds from now until ``plan``'s fragment ``slot`` would finish on each node, with the
        earlier slots on ``chosen`` (their estimates recorded by :meth:`choose`)."""
        snapshot = self._snapshot
        ready_s = np.zeros_like(snapshot.queued_work_s)
        for transfer in plan.inputs_of(slot):
            if transfer.source == ORIGIN:
                sender, sent_s = self._origin, 0.0
            elif transfer.source in self._finish_s:
                sender, sent_s = int(chosen[transfer.source]), self._finish_s[transfer.source]
            else:
                raise ValueError(f"plan {plan.model}/{plan.variant}: slot {slot} reads fragment {transfer.source}, "
                                 "which has no node yet; slots are placed in index order")
            rate_mbps = np.minimum(snapshot.uplink_mbps[sender], snapshot.downlink_mbps)
            megabits = transfer.bytes * self._items * MEGABITS_PER_BYTE
            transfer_s = np.divide(megabits, rate_mbps, out=np.full_like(rate_mbps, np.inf), where=rate_mbps > 0)
            start_s = np.maximum(max(sent_s, snapshot.uplink_backlog_s[sender]), snapshot.downlink_backlog_s)
            arrival_s = np.where(np.arange(rate_mbps.size) == sender, sent_s, start_s + transfer_s)
            np.maximum(ready_s, arrival_s, out=ready_s)
        work_s = self._items * plan.fragments[slot].reference_latency_s * self._seconds_per_reference_s
        return np.maximum(ready_s, snapshot.queued_work_s) + work_s

    def choose(self, slot: int, finish_s: float) -> None:
        """Record that ``slot`` went to a node where it finishes ``finish_s`` seconds from now."""
        self._finish_s[slot] = finish_s


SlotChoice = Callable[[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray], int]
"""(slot, fitting nodes, estimated finish per node in seconds, nodes chosen so far, free bytes per node after
the job's earlier fragments) -> the slot's node."""


def place_slot_by_slot(view, plan: SplitPlan, choose: SlotChoice) -> list[int]:
    """A node for each of ``plan``'s fragments in index order, from ``choose``, which sees the nodes up with
    room (counting the memory of the job's earlier fragments) and this estimate (``view``: an
    ``agents.env_access.EnvView``)."""
    snapshot = view.snapshot()
    estimate = FinishEstimate(snapshot, view.speed_factors(), view.job.origin, view.job.total_items)
    free_bytes = snapshot.free_memory_bytes
    chosen = np.zeros(view.slot_count, dtype=np.int64)
    used_bytes = np.zeros(view.node_count, dtype=np.int64)
    for slot, fragment in enumerate(plan.fragments):
        fitting = view.fitting_nodes(fragment, used_bytes)
        finish_s = estimate.slot_finish_s(plan, slot, chosen)
        chosen[slot] = choose(slot, fitting, finish_s, chosen, free_bytes - used_bytes)
        estimate.choose(slot, float(finish_s[chosen[slot]]))
        used_bytes[chosen[slot]] += fragment.memory_bytes
    return chosen[:len(plan.fragments)].tolist()
