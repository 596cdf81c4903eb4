"""Reservation (list) scheduling of one job: the computation shared by submit and estimate.

When a job is placed, its fragments are taken in topological order; each input
transfer starts once its data exists and both the sender's uplink and the
receiver's downlink are free (FIFO behind earlier reservations; each link is
reserved for the time its own rate needs, see :mod:`envs.cluster.network`), each
fragment starts once all its inputs have arrived and its node is free.  Per node and per
link only a ``busy_until_s`` time is kept: reservations are appended, never
slotted into earlier gaps, so queues are exact FIFO and one job costs
O(fragments + transfers).

Scaling with a job's ``items``: compute time and transfer bytes are linear in the
number of items a fragment / transfer handles (items are processed one after the
other, whole batch stored and forwarded); memory is not (one item is in flight
per fragment).  For early-exit plans the number of items that reach each
fragment is drawn at submission (one multinomial draw); estimates use its mean.

``iterations`` runs the plan that many times back to back, each pass starting
when the previous result reached the origin.  A split-learning job is reserved one
mini-batch (one pass, ``iterations`` = 1) per call instead, by the engine, when the
previous mini-batch is back (:mod:`envs.sim.engine`); its training plan simply
includes the backward pass and the gradient bytes in its fragments and transfers
(:mod:`envs.sim.training_plans`).

One pass is one call of :func:`reserve_pass`, compiled with numba: the plan, the
busy-until times, the link tables, the background load and the failure times are
all arrays it reads (and the busy-until times ones it writes).  Background
intervals and failure times are sampled lazily; when a pass reaches past what is
sampled it undoes its reservations and reports it, and :class:`Scheduler`
samples more and runs it again (sampling does not depend on the order of queries).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from graphlib import CycleError, TopologicalSorter

import numba
import numpy as np

from envs.cluster.background import LOAD_FORGOTTEN, LOAD_NOT_SAMPLED, BackgroundLoad, load_at
from envs.cluster.failures import FailureProcess, find_first_failure_s, find_repair_s
from envs.cluster.network import Network, reserve_transfer
from envs.dnn.plan import ORIGIN, SplitPlan

DONE, NEEDS_LOAD, NEEDS_FAILURE_TIMES, LOAD_WAS_FORGOTTEN = range(4)
"""How :func:`reserve_pass` ended: reserved; or undone because it needs background intervals, resp. failure
times, not sampled yet; or undone because it asked for a background interval already dropped."""

ALL_ITEMS = np.empty(0)
"""``reach`` meaning that every fragment handles all the job's items (no early exits)."""

NO_FAILURES = (np.full((0, 1), math.inf), np.zeros(0, dtype=np.int64))
"""A change table (:attr:`FailureProcess.change_table`) for passes that ignore failures."""

RUN_FIELDS = 4
"""Columns of the fragment runs a pass records: node, start_s, end_s, energy_j."""

NO_RUNS = np.zeros((0, RUN_FIELDS))
"""``runs`` for passes that record no fragment runs."""


class CompiledPlan:
    """A :class:`SplitPlan` in the flat form :func:`reserve_pass` walks (built once per plan object).

    ``index`` (int64) holds, back to back: the fragments in topological order (``n``); per fragment where its
    inputs start in the input lists, plus their end (``n + 1``); the input sources (``m``, in fragment order);
    the sources of the results sent back to the origin (``r``); per fragment the next one of an early-exit
    chain, else -1 (``n``).  ``values`` (float64): per fragment its reference latency in s (``n``), the input
    bytes (``m``), the result bytes (``r``).
    """

    __slots__ = ("plan", "fragment_count", "inputs", "index", "values", "memory_bytes", "exit_probability",
                 "chain", "reach_share", "exit_share", "finish_s", "runs")

    def __init__(self, plan: SplitPlan):
        count = len(plan.fragments)
        if count == 0:
            raise ValueError(f"plan {plan.model}/{plan.variant}: has no fragments")
        inputs: list[list[tuple[int, int]]] = [[] for _ in range(count)]
        results: list[tuple[int, int]] = []
        children: list[list[int]] = [[] for _ in range(count)]
        for transfer in plan.transfers:
            source, target = transfer.source, transfer.target
            if not (ORIGIN <= source < count and ORIGIN <= target < count) or source == target:
                raise ValueError(f"plan {plan.model}/{plan.variant}: transfer {transfer} must join two different "
                                 f"fragments in [0, {count}) or ORIGIN ({ORIGIN})")
            if transfer.bytes < 0:
                raise ValueError(f"plan {plan.model}/{plan.variant}: transfer {transfer} has negative bytes")
            if target == ORIGIN:
                results.append((source, transfer.bytes))
            else:
                inputs[target].append((source, transfer.bytes))
                if source != ORIGIN:
                    children[source].append(target)
        try:
            order = tuple(TopologicalSorter({i: {s for s, _ in inputs[i] if s != ORIGIN}
                                             for i in range(count)}).static_order())
        except CycleError as error:
            raise ValueError(f"plan {plan.model}/{plan.variant}: fragments form a cycle {error.args[1]}") from error
        for fragment in plan.fragments:
            if fragment.reference_latency_s < 0 or fragment.memory_bytes < 0:
                raise ValueError(f"plan {plan.model}/{plan.variant}: fragment {fragment.name!r} has negative "
                                 f"latency or memory")
        self.plan = plan
        self.fragment_count = count
        self.inputs = tuple(tuple(pairs) for pairs in inputs)
        self.memory_bytes = [fragment.memory_bytes for fragment in plan.fragments]
        self.exit_probability = tuple(plan.exit_probability)
        self.chain = self._exit_chain(children) if self.exit_probability else None
        next_fragment = [-1] * count
        if self.chain is not None:
            for fragment, after in zip(self.chain, self.chain[1:]):
                next_fragment[fragment] = after
            leave = np.array([self.exit_probability[fragment] for fragment in self.chain])
            leave[-1] = 1.0  # whatever reaches the end leaves there
            self.reach_share = np.cumprod(np.concatenate(([1.0], 1.0 - leave[:-1])))  # per chain position
            self.exit_share = self.reach_share * leave
        input_start = np.cumsum([0] + [len(pairs) for pairs in inputs]).tolist()
        flat_inputs = [pair for pairs in inputs for pair in pairs]
        self.index = np.array([*order, *input_start, *(source for source, _ in flat_inputs),
                               *(source for source, _ in results), *next_fragment], dtype=np.int64)
        self.values = np.array([*(fragment.reference_latency_s for fragment in plan.fragments),
                                *(size for _, size in flat_inputs), *(size for _, size in results)], dtype=float)
        self.finish_s = np.zeros(count)
        """Scratch: when each fragment finished in the pass reserved last, seconds."""
        self.runs = np.zeros((count, RUN_FIELDS))
        """Scratch: the fragment runs of the pass reserved last, when they are recorded."""

    def _exit_chain(self, children: list[list[int]]) -> list[int]:
        """An early-exit plan's fragments in chain order (it must be one chain)."""
        plan, count = self.plan, self.fragment_count
        if len(self.exit_probability) != count or not all(0.0 <= p <= 1.0 for p in self.exit_probability):
            raise ValueError(f"plan {plan.model}/{plan.variant}: exit_probability needs {count} values in [0, 1], "
                             f"got {self.exit_probability}")
        heads = [i for i in range(count) if not any(s != ORIGIN for s, _ in self.inputs[i])]
        chain = heads[:1]
        while len(heads) == 1 and len(children[chain[-1]]) == 1 and len(chain) <= count:
            chain.append(children[chain[-1]][0])
        if len(heads) != 1 or len(chain) != count or children[chain[-1]]:
            raise ValueError(f"plan {plan.model}/{plan.variant}: an early-exit plan must be a chain of fragments")
        return chain

    def sampled_reach(self, items: int, rng: np.random.Generator) -> np.ndarray:
        """Items that reach each fragment (float64): :data:`ALL_ITEMS` (all of them), or for early exits drawn at
        once (multinomial over the exits: the same law as one binomial draw per exit)."""
        if self.chain is None:
            return ALL_ITEMS
        leaving = rng.multinomial(items, self.exit_share)
        reach = np.empty(self.fragment_count)
        reach[self.chain] = items - np.concatenate(([0], np.cumsum(leaving[:-1])))
        return reach

    def expected_reach(self, items: int) -> np.ndarray:
        """Mean of :meth:`sampled_reach` (:data:`ALL_ITEMS` without early exits)."""
        if self.chain is None:
            return ALL_ITEMS
        reach = np.empty(self.fragment_count)
        reach[self.chain] = items * self.reach_share
        return reach


@numba.njit(cache=True)
def reserve_pass(node_busy_until_s, link_busy_until_s, steps_mbps, cumulative_mbit, link_index, latency_s, step_s,
                 seconds_per_reference_s, load, first_interval, interval_s, change_s, change_count, max_retries,
                 plan_index, plan_values, finish_s, runs, placement, origin, start_s, items, reach):
    """Reserve one pass of a compiled plan whose input is at the origin at ``start_s``.

    Returns ``(status, completion_s, failure_s, energy_j, runs recorded)``.  Arguments: the nodes' and links'
    busy-until times (written), the network's :attr:`~envs.cluster.network.Network.link_tables` and
    ``step_s``, seconds per reference second of each node, the background's
    :attr:`~envs.cluster.background.BackgroundLoad.load_table`, a failure change table (:data:`NO_FAILURES`:
    ignore failures) and the retries allowed, the :class:`CompiledPlan`'s ``index``, ``values``,
    ``finish_s`` (written) and ``runs`` (written; :data:`NO_RUNS`: not recorded), and the job: ``placement``
    (int64 node per fragment), ``origin``, ``start_s``, ``items`` and ``reach`` (:data:`ALL_ITEMS` or the
    items reaching each fragment).  Unless ``status`` is ``DONE`` every busy-until time is as before.
    """
    count = finish_s.size
    inputs_at = count + count + 1
    input_count = plan_index[inputs_at - 1]
    results_at = inputs_at + input_count
    result_count = plan_values.size - count - input_count
    next_at = results_at + result_count
    all_items = reach.size == 0
    failures_on = change_count.size > 0
    saved = np.empty((3, count + 1))  # busy-until times of the nodes the job touches, to undo the pass
    for position in range(count + 1):
        node = placement[position] if position < count else origin
        saved[0, position] = node_busy_until_s[node]
        saved[1, position] = link_busy_until_s[0, node]
        saved[2, position] = link_busy_until_s[1, node]
    status = DONE
    completion_s, failure_s, total_energy_j, recorded = start_s, math.inf, 0.0, 0
    for step in range(count):
        fragment = plan_index[step]
        fragment_items = items if all_items else reach[fragment]
        if fragment_items == 0:
            continue
        node = placement[fragment]
        ready_s = start_s
        for entry in range(plan_index[count + fragment], plan_index[count + fragment + 1]):
            source = plan_index[inputs_at + entry]
            if source == ORIGIN:
                sender, sent_s = origin, start_s
            else:
                sender, sent_s = placement[source], finish_s[source]
            if sender != node:
                sent_s = reserve_transfer(link_busy_until_s, steps_mbps, cumulative_mbit, link_index, latency_s,
                                          step_s, sender, node, sent_s,
                                          plan_values[count + entry] * fragment_items)
            if sent_s > ready_s:
                ready_s = sent_s
        begin_s = node_busy_until_s[node] if node_busy_until_s[node] > ready_s else ready_s
        found, slowdown, extra_power_w = load_at(load, first_interval, interval_s, node, begin_s)
        if found != 0:
            status = NEEDS_LOAD if found == LOAD_NOT_SAMPLED else LOAD_WAS_FORGOTTEN
            break
        work_s = fragment_items * plan_values[fragment] * seconds_per_reference_s[node] * slowdown
        end_s = begin_s + work_s
        energy_j = work_s * extra_power_w
        if failures_on:
            covered, down_s = find_first_failure_s(change_s, change_count, node, begin_s, end_s)
            if not covered:
                status = NEEDS_FAILURE_TIMES
                break
            # retries: start again once the node is repaired; the lost work's energy counts, its unrun rest not
            reference_s = fragment_items * plan_values[fragment]
            retries = max_retries if down_s < math.inf else 0
            for _ in range(retries):
                covered, restart_s = find_repair_s(change_s, change_count, node, down_s)
                if not covered:
                    status = NEEDS_FAILURE_TIMES
                    break
                found, slowdown, rerun_power_w = load_at(load, first_interval, interval_s, node, restart_s)
                if found != 0:
                    status = NEEDS_LOAD if found == LOAD_NOT_SAMPLED else LOAD_WAS_FORGOTTEN
                    break
                rerun_s = reference_s * seconds_per_reference_s[node] * slowdown
                energy_j += rerun_s * rerun_power_w - (end_s - down_s) * extra_power_w
                extra_power_w = rerun_power_w
                end_s = restart_s + rerun_s
                covered, down_s = find_first_failure_s(change_s, change_count, node, restart_s, end_s)
                if not covered:
                    status = NEEDS_FAILURE_TIMES
                    break
                if down_s == math.inf:
                    break
            if status != DONE:
                break
            if down_s < failure_s:
                failure_s = down_s
        node_busy_until_s[node] = end_s
        finish_s[fragment] = end_s
        if recorded < runs.shape[0]:
            runs[recorded, 0], runs[recorded, 1], runs[recorded, 2], runs[recorded, 3] = node, begin_s, end_s, energy_j
            recorded += 1
        total_energy_j += energy_j
        if end_s > completion_s:
            completion_s = end_s
    if status != DONE:
        for position in range(count, -1, -1):
            node = placement[position] if position < count else origin
            node_busy_until_s[node] = saved[0, position]
            link_busy_until_s[0, node] = saved[1, position]
            link_busy_until_s[1, node] = saved[2, position]
        return status, completion_s, failure_s, total_energy_j, 0
    for entry in range(result_count):
        source = plan_index[results_at + entry]
        source_items = items if all_items else reach[source]
        after = plan_index[next_at + source]
        if after >= 0:
            source_items -= items if all_items else reach[after]  # only the items that exit here go back
        if source_items == 0:
            continue
        sender, sent_s = placement[source], finish_s[source]
        if sender != origin:
            sent_s = reserve_transfer(link_busy_until_s, steps_mbps, cumulative_mbit, link_index, latency_s, step_s,
                                      sender, origin, sent_s, plan_values[count + input_count + entry] * source_items)
        if sent_s > completion_s:
            completion_s = sent_s
    return status, completion_s, failure_s, total_energy_j, recorded


class Scheduler:
    """Per-node ``busy_until_s`` times and the reservation of one job at a time (links: :class:`Network`).

    ``node_busy_until_s``: where to keep the nodes' busy-until times, a float64 array of one entry per node
    (e.g. a row of a larger state array); by default an array of its own.
    """

    def __init__(self, speed_factors: Sequence[float], network: Network, background: BackgroundLoad,
                 failures: FailureProcess | None, max_retries: int, node_busy_until_s: np.ndarray | None = None):
        self._seconds_per_reference_s = 1.0 / np.asarray(speed_factors, dtype=float)
        self._network = network
        self._background = background
        self._failures = failures
        self._max_retries = max_retries
        self.node_count = len(speed_factors)
        self.busy_until_s = np.zeros(self.node_count) if node_busy_until_s is None else node_busy_until_s
        """Time until which each node is reserved, seconds."""
        self.reset()

    def reset(self) -> None:
        """All nodes idle (the network resets its links itself)."""
        self.busy_until_s.fill(0.0)
        self.runs: list[tuple[int, float, float, float]] = []
        """With failures on: the fragment runs of the last :meth:`schedule` (cut at a failure), as
        (node, start_s, end_s, energy_j)."""

    def schedule(self, compiled: CompiledPlan, placement: np.ndarray, origin: int, now_s: float, items: int,
                 reach: np.ndarray, iterations: int, commit: bool) -> tuple[float, float, float]:
        """Reserve the job's transfers and fragments; returns ``(completion_s, failure_s, energy_j)``.

        ``placement``: int64 node of each fragment; ``reach``: :data:`ALL_ITEMS` or the items that reach each
        fragment.  ``failure_s`` is ``math.inf`` unless a node failure kills the job (only when
        ``commit``: estimates ignore future failures); ``energy_j`` is what the job's
        fragments add to the nodes' background draw (up to the failure).  With
        ``commit`` the reservations stay (cut at ``failure_s``); without, every
        busy-until time is restored.
        """
        if commit and iterations == 1 and self._failures is None:  # the common case, kept short
            return self._pass(compiled, placement, origin, now_s, items, reach, False, False)
        record = self._failures is not None
        saved = self._busy_times(placement, origin)
        self.runs = []
        completion_s, failure_s, energy_j = now_s, math.inf, 0.0
        for _ in range(iterations):
            completion_s, failure_s, pass_energy_j = self._pass(compiled, placement, origin, completion_s, items,
                                                                reach, commit and record, record)
            energy_j += pass_energy_j
            if failure_s < math.inf:
                break
        if not commit:
            self._restore(saved)
        elif failure_s < math.inf:
            self._cut_at(failure_s, saved)
            energy_j = sum(run[3] for run in self.runs)
        return completion_s, failure_s, energy_j

    def _pass(self, compiled: CompiledPlan, placement: np.ndarray, origin: int, start_s: float, items: int,
              reach: np.ndarray, failures: bool, record: bool) -> tuple[float, float, float]:
        """One pass of the plan (:func:`reserve_pass`), sampling background and failure times until they reach
        far enough; ``failures``: failures cut it short; ``record``: its fragment runs are added to :attr:`runs`."""
        steps_mbps, cumulative_mbit, link_index, latency_s = self._network.link_tables
        runs = compiled.runs if record else NO_RUNS
        while True:
            load, first_interval, interval_s = self._background.load_table
            change_s, change_count = self._failures.change_table if failures else NO_FAILURES
            status, completion_s, failure_s, energy_j, recorded = reserve_pass(
                self.busy_until_s, self._network.link_busy_until_s, steps_mbps, cumulative_mbit, link_index,
                latency_s, self._network.step_s, self._seconds_per_reference_s, load, first_interval, interval_s,
                change_s, change_count, self._max_retries, compiled.index, compiled.values, compiled.finish_s, runs,
                placement, origin, start_s, items, reach)
            if status == DONE:
                break
            if status == NEEDS_LOAD:
                self._background.sample_chunk()
            elif status == NEEDS_FAILURE_TIMES:
                self._failures.extend()
            else:
                raise ValueError(f"a pass from {start_s} s asked for background load that was already forgotten")
        if recorded:
            self.runs += [(int(node), start, end, energy) for node, start, end, energy in runs[:recorded].tolist()]
        return completion_s, failure_s, energy_j

    def _busy_times(self, placement: np.ndarray, origin: int) -> list[tuple[int, float, float, float]]:
        """(node, busy until, uplink busy until, downlink busy until) of every node the job may touch."""
        busy = self.busy_until_s
        uplink, downlink = self._network.uplink_busy_until_s, self._network.downlink_busy_until_s
        touched = set(placement.tolist())
        touched.add(origin)
        return [(node, busy[node], uplink[node], downlink[node]) for node in touched]

    def _restore(self, saved: list[tuple[int, float, float, float]]) -> None:
        busy = self.busy_until_s
        uplink, downlink = self._network.uplink_busy_until_s, self._network.downlink_busy_until_s
        for node, node_busy, node_up, node_down in saved:
            busy[node], uplink[node], downlink[node] = node_busy, node_up, node_down

    def _cut_at(self, failure_s: float, saved: list[tuple[int, float, float, float]]) -> None:
        """Drop what the failed job would have done after ``failure_s``."""
        busy = self.busy_until_s
        uplink, downlink = self._network.uplink_busy_until_s, self._network.downlink_busy_until_s
        for node, node_busy, node_up, node_down in saved:
            busy[node] = max(node_busy, min(busy[node], failure_s))
            uplink[node] = max(node_up, min(uplink[node], failure_s))
            downlink[node] = max(node_down, min(downlink[node], failure_s))
        kept = []
        for node, start_s, end_s, energy_j in self.runs:
            if start_s < failure_s:
                share = (min(end_s, failure_s) - start_s) / (end_s - start_s) if end_s > start_s else 1.0
                kept.append((node, start_s, min(end_s, failure_s), energy_j * share))
        self.runs = kept
