"""Reservation (list) scheduling of one job, and its memory: the computation shared by submit and estimate.

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

A job is one call of :func:`reserve_job`, compiled with numba: it checks that the
placement fits (memory, nodes up), reserves the passes (:func:`reserve_pass`),
cuts them at a failure or undoes them (estimates), and books the fragments'
memory (:mod:`envs.sim.memory`).  The plan, the busy-until times, the link
tables, the background load, the failure times and free memory are all arrays
it reads (and the busy-until times, free memory and releases ones it writes).
Background intervals and failure times are sampled lazily; when a job reaches
past what is sampled it undoes its reservations and reports it, and
:class:`Scheduler` samples more and runs it again (sampling does not depend on
the order of queries).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from envs.cluster.background import LOAD_NOT_SAMPLED, BackgroundLoad, load_at
from envs.cluster.failures import FailureProcess, find_first_failure_s, find_is_up, find_repair_s
from envs.cluster.network import Network, reserve_transfer
from envs.dnn.plan import ORIGIN
from envs.sim.compiled_plan import RUN_FIELDS, CompiledPlan
from envs.sim.memory import MemoryReleases, push_release
from envs.sim.world import (DOWNLINK_BACKLOG_ROW, FIRST_INTERVAL, FREE_MEMORY_ROW, INTERVAL_S, MAX_RETRIES, QUEUED_ROW,
                            STEP_S, UPLINK_BACKLOG_ROW, WorldKeeper)

DONE, NEEDS_LOAD, NEEDS_FAILURE_TIMES, LOAD_WAS_FORGOTTEN, DOES_NOT_FIT = range(5)
"""How :func:`reserve_job` (and :func:`reserve_pass`) ended: reserved; undone because it needs background
intervals, resp. failure times, not sampled yet; undone because it asked for a background interval already
dropped; rejected: the placement does not fit."""

NO_FAILURES = (np.full((0, 1), math.inf), np.zeros(0, dtype=np.int64))
"""The change table (:attr:`FailureProcess.change_table`) of a cluster without failures."""

NO_RUNS = np.zeros((0, RUN_FIELDS))
"""``runs`` for jobs that record no fragment runs."""


@numba.njit(cache=True)
def _busy_times(node_busy_until_s, link_busy_until_s, placement, origin):
    """Busy-until times (rows: node, uplink, downlink) of the job's nodes and then its origin."""
    count = placement.size
    saved = np.empty((3, count + 1))
    for position in range(count + 1):
        node = placement[position] if position < count else origin
        saved[0, position] = node_busy_until_s[node]
        saved[1, position] = link_busy_until_s[0, node]
        saved[2, position] = link_busy_until_s[1, node]
    return saved


@numba.njit(cache=True)
def _restore(node_busy_until_s, link_busy_until_s, placement, origin, saved):
    """Put back the busy-until times :func:`_busy_times` saved."""
    for position in range(placement.size + 1):
        node = placement[position] if position < placement.size else origin
        node_busy_until_s[node] = saved[0, position]
        link_busy_until_s[0, node] = saved[1, position]
        link_busy_until_s[1, node] = saved[2, position]


@numba.njit(cache=True)
def _cut_at(node_busy_until_s, link_busy_until_s, placement, origin, saved, runs, recorded, failure_s):
    """Drop what a failed job would have done after ``failure_s``: its reservations, and the part of its recorded
    ``runs`` after it (cut in place; runs that start after it are dropped).  Returns (runs kept, their energy)."""
    for position in range(placement.size + 1):
        node = placement[position] if position < placement.size else origin
        node_busy_until_s[node] = max(saved[0, position], min(node_busy_until_s[node], failure_s))
        for link in range(2):
            link_busy_until_s[link, node] = max(saved[1 + link, position], min(link_busy_until_s[link, node],
                                                                               failure_s))
    kept, energy_j = 0, 0.0
    for run in range(recorded):
        start_s, end_s = runs[run, 1], runs[run, 2]
        if start_s < failure_s:
            share = (min(end_s, failure_s) - start_s) / (end_s - start_s) if end_s > start_s else 1.0
            runs[kept, 0], runs[kept, 1] = runs[run, 0], start_s
            runs[kept, 2], runs[kept, 3] = min(end_s, failure_s), runs[run, 3] * share
            energy_j += runs[kept, 3]
            kept += 1
    return kept, energy_j


@numba.njit(cache=True)
def placement_fits(free_memory_bytes, change_s, change_count, plan_values, placement, time_s):
    """``DONE`` if every fragment's node holds the memory of all the job's fragments placed there and is up at
    ``time_s`` (per the change table; an empty one: always up), ``DOES_NOT_FIT`` if not, ``NEEDS_FAILURE_TIMES``
    if the table does not reach ``time_s``."""
    count = placement.size
    memory_at = plan_values.size - count
    for fragment in range(count):
        node = placement[fragment]
        needed = 0.0
        for other in range(fragment + 1):
            if placement[other] == node:
                needed += plan_values[memory_at + other]
        if needed > free_memory_bytes[node]:
            return DOES_NOT_FIT
    if change_count.size == 0:
        return DONE
    for fragment in range(count):
        covered, up = find_is_up(change_s, change_count, placement[fragment], time_s)
        if not covered:
            return NEEDS_FAILURE_TIMES
        if not up:
            return DOES_NOT_FIT
    return DONE


@numba.njit(cache=True)
def reserve_pass(node_busy_until_s, link_busy_until_s, steps_mbps, cumulative_mbit, link_index, latency_s, step_s,
                 seconds_per_reference_s, load, first_interval, interval_s, change_s, change_count, failures_cut,
                 max_retries, plan_index, plan_values, finish_s, runs, placement, origin, start_s, items, reach):
    """Reserve one pass of a compiled plan whose input is at the origin at ``start_s``.

    Returns ``(status, completion_s, failure_s, energy_j, runs recorded)``.  Arguments: the nodes' and links'
    busy-until times (written), the network's :attr:`~envs.cluster.network.Network.link_tables` and
    ``step_s``, seconds per reference second of each node, the background's
    :attr:`~envs.cluster.background.BackgroundLoad.load_table`, the failure change table, whether failures
    cut the pass (and the retries allowed), the :class:`CompiledPlan`'s ``index``, ``values``,
    ``finish_s`` (written) and ``runs`` (written; :data:`NO_RUNS`: not recorded), and the job:
    ``placement`` (int64 node per fragment), ``origin``, ``start_s``, ``items`` and ``reach``
    (:data:`~envs.sim.compiled_plan.ALL_ITEMS` or the items reaching each fragment).  Unless ``status`` is
    ``DONE`` every busy-until time is as before.
    """
    count = finish_s.size
    inputs_at = count + count + 1
    input_count = plan_index[inputs_at - 1]
    results_at = inputs_at + input_count
    result_count = plan_values.size - 2 * count - input_count
    next_at = results_at + result_count
    all_items = reach.size == 0
    saved = _busy_times(node_busy_until_s, link_busy_until_s, placement, origin)  # to undo the pass
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
        if failures_cut:
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
        _restore(node_busy_until_s, link_busy_until_s, placement, origin, saved)
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


@numba.njit(cache=True)
def reserve_job(world, plan_index, plan_values, finish_s, runs, placement, origin, now_s, items, reach, iterations,
                check_fits, commit, book):
    """Reserve a job: check that its placement fits (``check_fits``), reserve ``iterations`` passes back to
    back (each from when the previous result is back), cut them at a node failure, and book its fragments'
    memory until each finishes (``book``; the heap of releases must have room for one per fragment).  Without
    ``commit`` (an estimate) failures are ignored and every busy-until time is put back.

    Returns ``(status, completion_s, failure_s, energy_j, runs recorded)``; ``failure_s`` is ``inf`` unless
    a failure kills the job; with failures on (a non-empty change table) the fragment runs go to ``runs``
    (room for every pass: :meth:`CompiledPlan.runs_for`).  Unless ``status`` is ``DONE`` nothing changed.
    ``world`` (:mod:`envs.sim.world`) holds the cluster's arrays; the others are those of :func:`reserve_pass`.
    """
    state, params, change_s, change_count = world.state, world.params, world.change_s, world.change_count
    node_busy_until_s, link_busy_until_s = state[QUEUED_ROW], state[UPLINK_BACKLOG_ROW: DOWNLINK_BACKLOG_ROW + 1]
    free_memory_bytes = state[FREE_MEMORY_ROW]
    if check_fits:
        status = placement_fits(free_memory_bytes, change_s, change_count, plan_values, placement, now_s)
        if status != DONE:
            return status, now_s, math.inf, 0.0, 0
    failures_cut = commit and change_count.size > 0
    saved = _busy_times(node_busy_until_s, link_busy_until_s, placement, origin)
    completion_s, failure_s, energy_j, recorded = now_s, math.inf, 0.0, 0
    for _ in range(iterations):
        status, completion_s, failure_s, pass_energy_j, pass_runs = reserve_pass(
            node_busy_until_s, link_busy_until_s, world.steps_mbps, world.cumulative_mbit, world.link_index,
            world.latency_s, params[STEP_S], world.seconds_per_reference_s, world.load, int(params[FIRST_INTERVAL]),
            params[INTERVAL_S], change_s, change_count, failures_cut, int(params[MAX_RETRIES]), plan_index,
            plan_values, finish_s, runs[recorded:], placement, origin, completion_s, items, reach)
        if status != DONE:
            _restore(node_busy_until_s, link_busy_until_s, placement, origin, saved)
            return status, now_s, math.inf, 0.0, 0
        energy_j += pass_energy_j
        recorded += pass_runs
        if failure_s < math.inf:
            break
    if not commit:
        _restore(node_busy_until_s, link_busy_until_s, placement, origin, saved)
        return DONE, completion_s, failure_s, energy_j, recorded
    if failure_s < math.inf:
        recorded, energy_j = _cut_at(node_busy_until_s, link_busy_until_s, placement, origin, saved, runs, recorded,
                                     failure_s)
    if book:
        count = finish_s.size
        memory_at = plan_values.size - count
        for fragment in range(count):
            fragment_bytes = plan_values[memory_at + fragment]
            reached = items if reach.size == 0 else reach[fragment]
            if fragment_bytes and reached:
                node = placement[fragment]
                free_memory_bytes[node] -= fragment_bytes
                release_s = finish_s[fragment] if finish_s[fragment] < failure_s else failure_s
                push_release(world.releases, world.release_count, release_s, node, fragment_bytes)
    return DONE, completion_s, failure_s, energy_j, recorded


class Scheduler:
    """The reservation of one job at a time on a cluster's nodes, links and memory.

    Args:
        network, background, failures (None: off): the cluster's links and processes.
        free_memory_bytes: the nodes' free memory, bytes (the world's state row).
        world: the simulator's :class:`~envs.sim.world.WorldKeeper`; told when sampling more background load or
            failure times, or growing the releases, replaced an array.
    """

    def __init__(self, network: Network, background: BackgroundLoad, failures: FailureProcess | None,
                 free_memory_bytes: np.ndarray, world: WorldKeeper):
        self._network = network
        self._background = background
        self._failures = failures
        self.free_memory_bytes = free_memory_bytes
        self._world = world
        self.releases = MemoryReleases()
        self._runs = NO_RUNS
        self._run_count = 0

    def reset(self) -> None:
        """No memory held (the busy-until times and free memory are the caller's)."""
        self.releases.clear()
        self._run_count = 0

    @property
    def runs(self) -> list[tuple[int, float, float, float]]:
        """With failures on: the fragment runs of the last reserved job (cut at its failure), as (node, start_s,
        end_s, energy_j)."""
        return [(int(node), start_s, end_s, energy_j)
                for node, start_s, end_s, energy_j in self._runs[: self._run_count].tolist()]

    def fits(self, compiled: CompiledPlan, placement: np.ndarray, time_s: float) -> bool:
        """Whether every fragment's node is up at ``time_s`` and holds the memory of all the job's fragments
        placed there."""
        while True:
            change_s, change_count = self._failures.change_table if self._failures is not None else NO_FAILURES
            status = placement_fits(self.free_memory_bytes, change_s, change_count, compiled.values, placement,
                                    time_s)
            if status != NEEDS_FAILURE_TIMES:
                return status == DONE
            self._failures.extend()
            self._world.stale()

    def sample_more(self, status: int, now_s: float) -> None:
        """Sample what a compiled reservation that ended with ``status`` (``NEEDS_LOAD`` or ``NEEDS_FAILURE_TIMES``)
        asked for; the world is rebuilt.  ``LOAD_WAS_FORGOTTEN`` (a job reserved at ``now_s`` in the past) raises."""
        if status == NEEDS_LOAD:
            self._background.sample_chunk()
        elif status == NEEDS_FAILURE_TIMES:
            self._failures.extend()
        else:
            raise ValueError(f"a job reserved at {now_s} s asked for background load that was already forgotten")
        self._world.stale()

    def make_room(self, releases: int) -> None:
        """Grow the heap of memory releases so that ``releases`` more fit."""
        if self.releases.make_room(releases):
            self._world.stale()

    def release_later(self, release_s: float, node: int, memory_bytes: int) -> None:
        """Give ``memory_bytes`` back to ``node`` at ``release_s`` (seconds)."""
        self.make_room(1)
        self.releases.push(release_s, node, memory_bytes)

    def reserve(self, compiled: CompiledPlan, placement: np.ndarray, origin: int, now_s: float, items: int,
                reach: np.ndarray, iterations: int, commit: bool, book: bool,
                check_fits: bool = True) -> tuple[bool, float, float, float]:
        """Reserve the job (:func:`reserve_job`); returns ``(fits, completion_s, failure_s, energy_j)``.

        ``placement``: int64 node of each fragment; ``reach``: :data:`~envs.sim.compiled_plan.ALL_ITEMS` or the
        items that reach each fragment.  ``failure_s`` is ``math.inf`` unless a node failure kills the job
        (only when ``commit``: estimates ignore future failures); ``energy_j`` is what the job's fragments add
        to the nodes' background draw (up to the failure).  With ``commit`` the reservations stay (cut at
        ``failure_s``) and, with ``book``, the fragments' memory is booked until each finishes; without,
        nothing changes.  A placement that does not fit reserves nothing (``fits`` False); ``check_fits``
        False skips that check (a training job's later mini-batches, whose memory the job already holds).
        """
        runs = compiled.runs_for(iterations) if self._failures is not None else NO_RUNS
        if book:
            self.make_room(compiled.fragment_count)
        while True:
            status, completion_s, failure_s, energy_j, recorded = reserve_job(
                self._world.get(), compiled.index, compiled.values, compiled.finish_s, runs, placement, origin, now_s,
                items, reach, iterations, check_fits, commit, book)
            if status == DONE or status == DOES_NOT_FIT:
                break
            self.sample_more(status, now_s)
        self._runs, self._run_count = runs, recorded
        return status == DONE, completion_s, failure_s, energy_j
