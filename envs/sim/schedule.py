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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from graphlib import CycleError, TopologicalSorter

import numpy as np

from envs.cluster.background import BackgroundLoad
from envs.cluster.failures import FailureProcess
from envs.cluster.network import Network
from envs.dnn.plan import ORIGIN, SplitPlan


class CompiledPlan:
    """A :class:`SplitPlan` in the flat form the scheduler walks (built once per plan object)."""

    __slots__ = ("plan", "fragment_count", "steps", "inputs", "results", "memory_bytes", "exit_probability",
                 "chain", "next_fragment", "reach_share", "exit_share", "finish_s")

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
        self.steps = tuple((fragment, plan.fragments[fragment].reference_latency_s, self.inputs[fragment])
                           for fragment in order)
        """(fragment, reference latency in s, its inputs as (source, bytes)) in topological order."""
        self.results = tuple(results)
        self.memory_bytes = [fragment.memory_bytes for fragment in plan.fragments]
        self.exit_probability = tuple(plan.exit_probability)
        self.chain = self._exit_chain(children) if self.exit_probability else None
        self.next_fragment = None
        if self.chain is not None:
            self.next_fragment = [-1] * count
            for fragment, after in zip(self.chain, self.chain[1:]):
                self.next_fragment[fragment] = after
            leave = np.array([self.exit_probability[fragment] for fragment in self.chain])
            leave[-1] = 1.0  # whatever reaches the end leaves there
            self.reach_share = np.cumprod(np.concatenate(([1.0], 1.0 - leave[:-1])))  # per chain position
            self.exit_share = self.reach_share * leave
        self.finish_s = [0.0] * count  # scratch: when each fragment finished in the pass being scheduled

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

    def sampled_reach(self, items: int, rng: np.random.Generator) -> list[int]:
        """Items that reach each fragment: all of them, or for early exits drawn at once (multinomial
        over the exits: the same law as one binomial draw per exit)."""
        if self.chain is None:
            return [items] * self.fragment_count
        reach = [0] * self.fragment_count
        remaining = items
        for fragment, leaving in zip(self.chain, rng.multinomial(items, self.exit_share).tolist()):
            reach[fragment] = remaining
            remaining -= leaving
        return reach

    def expected_reach(self, items: int) -> list[float]:
        """Mean of :meth:`sampled_reach`."""
        if self.chain is None:
            return [float(items)] * self.fragment_count
        reach = [0.0] * self.fragment_count
        for fragment, share in zip(self.chain, self.reach_share.tolist()):
            reach[fragment] = items * share
        return reach


class Scheduler:
    """Per-node ``busy_until_s`` times and the reservation of one job at a time (links: :class:`Network`)."""

    def __init__(self, speed_factors: Sequence[float], network: Network, background: BackgroundLoad,
                 failures: FailureProcess | None, max_retries: int):
        self._seconds_per_reference_s = [1.0 / factor for factor in speed_factors]
        self._network = network
        self._background = background
        self._failures = failures
        self._max_retries = max_retries
        self.node_count = len(speed_factors)
        self.reset()

    def reset(self) -> None:
        """All nodes idle (the network resets its links itself)."""
        self.busy_until_s = [0.0] * self.node_count
        self.runs: list[tuple[int, float, float, float]] = []
        """With failures on: the fragment runs of the last :meth:`schedule` (cut at a failure), as
        (node, start_s, end_s, energy_j)."""

    def schedule(self, compiled: CompiledPlan, placement: Sequence[int], origin: int, now_s: float,
                 reach: Sequence[float], iterations: int, commit: bool) -> tuple[float, float, float]:
        """Reserve the job's transfers and fragments; returns ``(completion_s, failure_s, energy_j)``.

        ``failure_s`` is ``math.inf`` unless a node failure kills the job (only when
        ``commit``: estimates ignore future failures); ``energy_j`` is what the job's
        fragments add to the nodes' background draw (up to the failure).  With
        ``commit`` the reservations stay (cut at ``failure_s``); without, every
        busy-until time is restored.
        """
        if commit and iterations == 1 and self._failures is None:  # the common case, kept short
            return self._schedule_pass(compiled, placement, origin, now_s, reach, None, None)
        failures = self._failures if commit else None
        saved = self._busy_times(placement, origin)
        runs = self.runs = [] if self._failures is not None else None
        completion_s, failure_s, energy_j = now_s, math.inf, 0.0
        for _ in range(iterations):
            completion_s, failure_s, pass_energy_j = self._schedule_pass(compiled, placement, origin, completion_s,
                                                                         reach, failures, runs)
            energy_j += pass_energy_j
            if failure_s < math.inf:
                break
        if not commit:
            self._restore(saved)
        elif failure_s < math.inf:
            self._cut_at(failure_s, saved)
            energy_j = sum(run[3] for run in self.runs)
        return completion_s, failure_s, energy_j

    def _busy_times(self, placement: Sequence[int], origin: int) -> list[tuple[int, float, float, float]]:
        """(node, busy until, uplink busy until, downlink busy until) of every node the job may touch."""
        busy = self.busy_until_s
        uplink, downlink = self._network.uplink_busy_until_s, self._network.downlink_busy_until_s
        touched = set(placement)
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

    def _rerun(self, failures: FailureProcess, node: int, reference_s: float, down_s: float, end_s: float,
               energy_j: float, extra_power_w: float) -> tuple[float, float, float]:
        """Retry policy: a fragment hit by a failure at ``down_s`` starts again once its node is repaired,
        at most ``max_retries`` times.  Returns its new ``(end_s, energy_j, failure_s)``, energy including
        the lost work, ``failure_s`` = ``math.inf`` or the failure after the last retry."""
        for _ in range(self._max_retries):
            restart_s = failures.repair_s(node, down_s)
            slowdown, rerun_power_w = self._background.load(node, restart_s)
            rerun_s = reference_s * self._seconds_per_reference_s[node] * slowdown
            energy_j += rerun_s * rerun_power_w - (end_s - down_s) * extra_power_w  # the unfinished part never ran
            extra_power_w = rerun_power_w
            end_s = restart_s + rerun_s
            down_s = failures.first_failure_s(node, restart_s, end_s)
            if down_s == math.inf:
                break
        return end_s, energy_j, down_s

    def _schedule_pass(self, compiled: CompiledPlan, placement: Sequence[int], origin: int, start_s: float,
                       reach: Sequence[float], failures: FailureProcess | None,
                       runs: list | None) -> tuple[float, float, float]:
        """One pass of the plan whose input is at the origin at ``start_s``; (completion_s, failure_s, energy_j).
        Fragment runs are appended to ``runs`` unless it is None."""
        busy = self.busy_until_s
        finish_s = compiled.finish_s
        seconds_per_reference_s = self._seconds_per_reference_s
        constant_load = self._background.constant_load
        slowdowns, extra_powers_w = constant_load if constant_load is not None else (None, None)
        send = self._network.send
        completion_s, failure_s, total_energy_j = start_s, math.inf, 0.0
        for fragment, latency_s, inputs in compiled.steps:
            items = reach[fragment]
            if not items:
                continue
            node = placement[fragment]
            ready_s = start_s
            for source, transfer_bytes in inputs:
                if source == ORIGIN:
                    sender, sent_s = origin, start_s
                else:
                    sender, sent_s = placement[source], finish_s[source]
                if sender != node:
                    sent_s = send(sender, node, sent_s, transfer_bytes * items)
                if sent_s > ready_s:
                    ready_s = sent_s
            begin_s = busy[node] if busy[node] > ready_s else ready_s
            if slowdowns is None:
                slowdown, extra_power_w = self._background.load(node, begin_s)
            else:
                slowdown, extra_power_w = slowdowns[node], extra_powers_w[node]
            work_s = items * latency_s * seconds_per_reference_s[node] * slowdown
            end_s = begin_s + work_s
            energy_j = work_s * extra_power_w
            if failures is not None:
                down_s = failures.first_failure_s(node, begin_s, end_s)
                if down_s < math.inf and self._max_retries:
                    end_s, energy_j, down_s = self._rerun(failures, node, items * latency_s, down_s, end_s, energy_j,
                                                          extra_power_w)
                if down_s < failure_s:
                    failure_s = down_s
            busy[node] = finish_s[fragment] = end_s
            if runs is not None:
                runs.append((node, begin_s, end_s, energy_j))
            total_energy_j += energy_j
            if end_s > completion_s:
                completion_s = end_s
        next_fragment = compiled.next_fragment
        for source, transfer_bytes in compiled.results:
            items = reach[source]
            if next_fragment is not None and next_fragment[source] >= 0:
                items -= reach[next_fragment[source]]  # only the items that exit here go back
            if not items:
                continue
            sender, sent_s = placement[source], finish_s[source]
            if sender != origin:
                sent_s = send(sender, origin, sent_s, transfer_bytes * items)
            if sent_s > completion_s:
                completion_s = sent_s
        return completion_s, failure_s, total_energy_j
