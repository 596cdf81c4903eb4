"""Per-node access links whose bandwidth follows real traces, and transfer times over them.

Each node has an uplink and a downlink to the cluster's switch, each following a
:class:`~envs.cluster.traces.BandwidthTrace` times the link's ``bandwidth_scale``.
For speed every trace is averaged over steps of ``step_s`` seconds (the time-mean
of its piecewise-constant samples over each step, so the data a link carries per
step is kept; the period becomes the trace duration rounded up to whole steps),
and each link starts at its own random whole-step offset drawn at reset.

Link model: every link is a FIFO server that keeps the time until which it is
reserved.  A transfer of ``b`` bytes from node ``i`` to node ``j`` whose data
exists from ``t`` on starts once both links are free (at ``t`` or later).  Each
link carries the ``8 b / 1e6`` Mbit at its own trace's rate, step after step
(a 0 Mbit/s step carries nothing: a stalled link waits for the trace to
recover), and is reserved until it has: uplink until ``U``, downlink until
``D``, the downlink starting once the uplink first carries data (the switch
buffers what is ahead).  The data has arrived once both links are through,
plus one latency: ``max(U, D) + latency_i + latency_j``.  With rates that stay constant
over the transfer this is ``8 b / (min(up_i, down_j) * 1e6)`` seconds (the
slower side sets the pace).  So a fast port serves several slow peers at once
(its reservations add up to its capacity over time; the instantaneous sum of
their rates may briefly exceed it, an approximation), while a link as slow as
the transfer is busy for all of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numba
import numpy as np

from envs.cluster.traces import BandwidthTrace
from envs.sim.types import LinkConfig

MEGABITS_PER_BYTE = 8e-6
"""Mbit in one byte."""


def step_means_mbps(trace: BandwidthTrace, step_s: float) -> np.ndarray:
    """Mean bandwidth (Mbit/s) of ``trace`` over each step ``[k step_s, (k+1) step_s)`` of one period.

    The trace repeats after ``trace.duration_s``; the last step may reach into the repeat.
    """
    times_s, bandwidth = trace.times_s, trace.bandwidth_mbps
    period_s = trace.duration_s
    held_s = np.diff(np.append(times_s, period_s))
    cumulative_mbit = np.concatenate(([0.0], np.cumsum(bandwidth * held_s)))

    def integral_mbit(until_s: np.ndarray) -> np.ndarray:
        repeats, within_s = np.divmod(until_s, period_s)
        index = np.searchsorted(times_s, within_s, side="right") - 1
        return repeats * cumulative_mbit[-1] + cumulative_mbit[index] + bandwidth[index] * (within_s - times_s[index])

    steps = max(1, math.ceil(period_s / step_s - 1e-9))
    edges_mbit = integral_mbit(np.arange(steps + 1) * step_s)
    return np.diff(edges_mbit) / step_s


(_FIRST_STEP, _FIRST_CUMULATIVE, _LENGTH, _OFFSET) = range(4)
"""Rows of ``link_index``: per link, where its step means start in ``steps_mbps``, where its cumulative sums
start in ``cumulative_mbit``, its period in steps and its offset in steps (drawn at reset)."""


@numba.njit(cache=True)
def _position(link_index, link, step):
    """Where whole step ``step`` (since time 0) falls in ``link``'s period of step means."""
    return (step + link_index[_OFFSET, link]) % link_index[_LENGTH, link]


@numba.njit(cache=True)
def _opens_s(steps_mbps, cumulative_mbit, link_index, link, start_s, step_s):
    """When ``link`` first carries data at or after ``start_s``."""
    length = link_index[_LENGTH, link]
    step = int(start_s / step_s)
    position = _position(link_index, link, step)
    if steps_mbps[link_index[_FIRST_STEP, link] + position] > 0.0:
        return start_s
    first = link_index[_FIRST_CUMULATIVE, link]
    cumulative = cumulative_mbit[first: first + length + 1]
    # the first later step with data: where the cumulative sum first grows past its value here
    later = np.searchsorted(cumulative, cumulative[position + 1], side="right") - 1
    if later >= length:  # none before the period ends: the first one of the next period
        later = np.searchsorted(cumulative, 0.0, side="right") - 1 + length
    return (step + later - position) * step_s


@numba.njit(cache=True)
def _carried_by_s(steps_mbps, cumulative_mbit, link_index, link, start_s, megabits, step_s):
    """When ``link``, sending from ``start_s`` at its trace's rate step after step, has carried ``megabits``."""
    length = link_index[_LENGTH, link]
    steps = steps_mbps[link_index[_FIRST_STEP, link]: link_index[_FIRST_STEP, link] + length]
    first = link_index[_FIRST_CUMULATIVE, link]
    cumulative = cumulative_mbit[first: first + length + 1]
    step = int(start_s / step_s)
    position = _position(link_index, link, step)
    step_end_s = (step + 1) * step_s
    first_mbit = steps[position] * (step_end_s - start_s)
    if first_mbit >= megabits:
        return start_s + megabits / steps[position]
    # the rest, counted from the start of the next step along the periodic cumulative sum
    period_mbit = cumulative[length]
    periods, rest_mbit = divmod(megabits - first_mbit, period_mbit)
    if rest_mbit <= 0.0:
        periods, rest_mbit = periods - 1, period_mbit
    target_mbit = cumulative[position + 1] + rest_mbit
    steps_before = -(position + 1)
    if target_mbit > period_mbit:  # wraps into the next period
        target_mbit -= period_mbit
        steps_before += length
    end = np.searchsorted(cumulative, target_mbit, side="left")  # cumulative[end - 1] < target
    within_s = (target_mbit - cumulative[end - 1]) / steps[end - 1]
    return step_end_s + (periods * length + steps_before + end - 1) * step_s + within_s


@numba.njit(cache=True)
def reserve_transfer(link_busy_until_s, steps_mbps, cumulative_mbit, link_index, latency_s, step_s, sender, receiver,
                     ready_s, transfer_bytes):
    """Reserve ``sender``'s uplink and ``receiver``'s downlink (rows 0 and 1 of ``link_busy_until_s``) for
    ``transfer_bytes`` whose data exists from ``ready_s`` on; returns when the data has arrived at
    ``receiver`` (see the module docstring).  The other arguments are :attr:`Network.link_tables`."""
    start_s = ready_s
    if link_busy_until_s[0, sender] > start_s:
        start_s = link_busy_until_s[0, sender]
    if link_busy_until_s[1, receiver] > start_s:
        start_s = link_busy_until_s[1, receiver]
    uplink, downlink = sender, latency_s.size + receiver
    if transfer_bytes <= 0:
        link_busy_until_s[0, sender] = link_busy_until_s[1, receiver] = start_s
        return start_s + latency_s[sender] + latency_s[receiver]
    step = int(start_s / step_s)
    up_mbps = steps_mbps[link_index[_FIRST_STEP, uplink] + _position(link_index, uplink, step)]
    down_mbps = steps_mbps[link_index[_FIRST_STEP, downlink] + _position(link_index, downlink, step)]
    megabits = transfer_bytes * MEGABITS_PER_BYTE
    slower_mbps = up_mbps if up_mbps < down_mbps else down_mbps
    if slower_mbps > 0.0 and start_s + megabits / slower_mbps <= (step + 1) * step_s:
        # the common case: both links carry it within the step it starts in
        link_busy_until_s[0, sender] = start_s + megabits / up_mbps
        link_busy_until_s[1, receiver] = start_s + megabits / down_mbps
        return start_s + megabits / slower_mbps + latency_s[sender] + latency_s[receiver]
    up_end_s = _carried_by_s(steps_mbps, cumulative_mbit, link_index, uplink, start_s, megabits, step_s)
    down_end_s = _carried_by_s(steps_mbps, cumulative_mbit, link_index, downlink,
                               _opens_s(steps_mbps, cumulative_mbit, link_index, uplink, start_s, step_s), megabits,
                               step_s)
    link_busy_until_s[0, sender], link_busy_until_s[1, receiver] = up_end_s, down_end_s
    return (up_end_s if up_end_s > down_end_s else down_end_s) + latency_s[sender] + latency_s[receiver]


class Network:
    """The access links of all nodes (node i = links[i]).

    Internally link ``i`` is node ``i``'s uplink and link ``nodes + i`` its downlink.

    Args:
        links: one per node.
        step_s: the traces are averaged over steps of this many seconds.
        link_busy_until_s: where to keep the links' busy-until times, a ``(2, nodes)`` float64 array (rows:
            uplinks, downlinks), e.g. rows of a larger state array; by default an array of its own.
    """

    def __init__(self, links: Sequence[LinkConfig], step_s: float, link_busy_until_s: np.ndarray | None = None):
        self.step_s = step_s
        self.node_count = len(links)
        if link_busy_until_s is None:
            link_busy_until_s = np.zeros((2, self.node_count))
        if link_busy_until_s.shape != (2, self.node_count) or link_busy_until_s.dtype != np.float64:
            raise ValueError(f"link_busy_until_s must be a (2, {self.node_count}) float64 array, got "
                             f"{link_busy_until_s.shape} {link_busy_until_s.dtype}")
        self.link_busy_until_s = link_busy_until_s
        """Time until which each node's uplink (row 0) and downlink (row 1) is reserved, seconds."""
        self.latency_s = np.array([link.latency_s for link in links], dtype=float)
        """One-way latency of each node's link, seconds."""
        traces = [(link.uplink, link.bandwidth_scale, f"NodeConfig[{node}].link.uplink")
                  for node, link in enumerate(links)]
        traces += [(link.downlink, link.bandwidth_scale, f"NodeConfig[{node}].link.downlink")
                   for node, link in enumerate(links)]
        rows: dict[tuple[int, float], int] = {}
        tables: list[np.ndarray] = []
        row_of_link: list[int] = []
        for trace, scale, key in traces:
            row = rows.get((id(trace), scale))
            if row is None:
                means = step_means_mbps(trace, step_s) * scale
                if not np.any(means > 0):
                    raise ValueError(f"{key}: trace {trace.name!r} never carries data")
                row = rows[(id(trace), scale)] = len(tables)
                tables.append(means)
            row_of_link.append(row)
        lengths = np.array([len(table) for table in tables])
        # all distinct step tables back to back, and per table the Mbit carried from the start of its period to
        # the start of each step (one extra entry), back to back
        self._steps_mbps = np.concatenate(tables)
        self._cumulative_mbit = np.concatenate([np.concatenate(([0.0], np.cumsum(table) * step_s))
                                                for table in tables])
        self._link_index = np.zeros((4, 2 * self.node_count), dtype=np.int64)  # rows: see _FIRST_STEP ...
        self._link_index[_FIRST_STEP] = np.concatenate(([0], np.cumsum(lengths)[:-1]))[row_of_link]
        self._link_index[_FIRST_CUMULATIVE] = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))[row_of_link]
        self._link_index[_LENGTH] = lengths[row_of_link]

    @property
    def link_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What :func:`reserve_transfer` reads after ``link_busy_until_s``: (step means, cumulative Mbit, link index,
        latency), arrays that stay the same objects for the network's life."""
        return self._steps_mbps, self._cumulative_mbit, self._link_index, self.latency_s

    @property
    def uplink_busy_until_s(self) -> np.ndarray:
        """Time until which each node's uplink is reserved, seconds (a view)."""
        return self.link_busy_until_s[0]

    @property
    def downlink_busy_until_s(self) -> np.ndarray:
        """Time until which each node's downlink is reserved, seconds (a view)."""
        return self.link_busy_until_s[1]

    def reset(self, rng: np.random.Generator) -> None:
        """Idle links, each starting at an offset (whole steps) drawn from ``rng``."""
        self._link_index[_OFFSET] = rng.integers(0, self._link_index[_LENGTH])
        self.link_busy_until_s.fill(0.0)

    def send(self, sender: int, receiver: int, ready_s: float, transfer_bytes: float) -> float:
        """Reserve both links for ``transfer_bytes`` whose data exists from ``ready_s`` on; returns
        when the data has arrived at ``receiver`` (:func:`reserve_transfer`)."""
        return reserve_transfer(self.link_busy_until_s, self._steps_mbps, self._cumulative_mbit, self._link_index,
                                self.latency_s, self.step_s, sender, receiver, ready_s, transfer_bytes)

    def bandwidth_mbps(self, times_s: float | np.ndarray) -> np.ndarray:
        """Bandwidth of every link at ``times_s`` (a time or an array of times), Mbit/s: the nodes' uplinks,
        then their downlinks, along the last axis (shape ``(..., 2 nodes)``)."""
        steps = (np.asarray(times_s) / self.step_s).astype(np.int64)  # whole steps since 0 (times >= 0)
        index = self._link_index
        positions = index[_FIRST_STEP] + (steps[..., None] + index[_OFFSET]) % index[_LENGTH]
        return self._steps_mbps.take(positions)
