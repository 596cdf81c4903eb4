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
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

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


class Network:
    """The access links of all nodes (node i = links[i]).

    Internally link ``i`` is node ``i``'s uplink and link ``nodes + i`` its downlink.
    """

    def __init__(self, links: Sequence[LinkConfig], step_s: float):
        self.step_s = step_s
        self.node_count = len(links)
        self.latency_s: list[float] = [link.latency_s for link in links]
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
        table_lists = [table.tolist() for table in tables]
        self._steps_mbps: list[list[float]] = [table_lists[row] for row in row_of_link]
        # per link: Mbit carried from the start of its period to the start of each step (one extra entry)
        cumulative = [np.concatenate(([0.0], np.cumsum(table) * step_s)).tolist() for table in tables]
        self._cumulative_mbit: list[list[float]] = [cumulative[row] for row in row_of_link]  # lists: bisect is
        # cheaper than numpy's searchsorted on one value, with the same result
        self._length: list[int] = [len(steps) for steps in self._steps_mbps]
        self._length_array = np.asarray(self._length)
        # all links' step means back to back, for the vectorised lookup of bandwidth_mbps
        row_start = np.concatenate(([0], np.cumsum([len(table) for table in tables])[:-1]))
        self._flat_table = np.concatenate(tables)
        self._link_start = row_start[row_of_link]

    def reset(self, rng: np.random.Generator) -> None:
        """Idle links, each starting at an offset (whole steps) drawn from ``rng``."""
        offsets = rng.integers(0, self._length_array)
        self._offset_array = offsets
        # per link: (step means, offset, period in steps, one-way latency of its node)
        links = list(zip(self._steps_mbps, offsets.tolist(), self._length, self.latency_s + self.latency_s,
                         self._cumulative_mbit))
        self._uplinks, self._downlinks = links[: self.node_count], links[self.node_count:]
        self.uplink_busy_until_s = [0.0] * self.node_count
        """Time until which each node's uplink is reserved, seconds."""
        self.downlink_busy_until_s = [0.0] * self.node_count
        """Time until which each node's downlink is reserved, seconds."""

    def send(self, sender: int, receiver: int, ready_s: float, transfer_bytes: float) -> float:
        """Reserve both links for ``transfer_bytes`` whose data exists from ``ready_s`` on; returns
        when the data has arrived at ``receiver`` (see the module docstring)."""
        uplink_busy, downlink_busy = self.uplink_busy_until_s, self.downlink_busy_until_s
        start_s = ready_s
        if uplink_busy[sender] > start_s:
            start_s = uplink_busy[sender]
        if downlink_busy[receiver] > start_s:
            start_s = downlink_busy[receiver]
        up_link, down_link = self._uplinks[sender], self._downlinks[receiver]
        up_steps, up_offset, up_length, up_latency_s, _ = up_link
        down_steps, down_offset, down_length, down_latency_s, _ = down_link
        if transfer_bytes <= 0:
            uplink_busy[sender] = downlink_busy[receiver] = start_s
            return start_s + up_latency_s + down_latency_s
        step = int(start_s / self.step_s)
        up_mbps = up_steps[(step + up_offset) % up_length]
        down_mbps = down_steps[(step + down_offset) % down_length]
        megabits = transfer_bytes * MEGABITS_PER_BYTE
        slower_mbps = up_mbps if up_mbps < down_mbps else down_mbps
        if slower_mbps > 0.0 and start_s + megabits / slower_mbps <= (step + 1) * self.step_s:
            # the common case: both links carry it within the step it starts in
            uplink_busy[sender] = start_s + megabits / up_mbps
            downlink_busy[receiver] = start_s + megabits / down_mbps
            return start_s + megabits / slower_mbps + up_latency_s + down_latency_s
        up_end_s = uplink_busy[sender] = self._carried_by_s(up_link, start_s, megabits)
        down_end_s = downlink_busy[receiver] = self._carried_by_s(down_link, self._opens_s(up_link, start_s),
                                                                  megabits)
        return (up_end_s if up_end_s > down_end_s else down_end_s) + up_latency_s + down_latency_s

    def _opens_s(self, link: tuple, start_s: float) -> float:
        """When ``link`` first carries data at or after ``start_s``."""
        steps_mbps, offset, length, _, cumulative_mbit = link
        step = int(start_s / self.step_s)
        position = (step + offset) % length
        if steps_mbps[position] > 0.0:
            return start_s
        # the first later step with data: where the cumulative sum first grows past its value here
        later = bisect_right(cumulative_mbit, cumulative_mbit[position + 1]) - 1
        if later >= length:  # none before the period ends: the first one of the next period
            later = bisect_right(cumulative_mbit, 0.0) - 1 + length
        return (step + later - position) * self.step_s

    def _carried_by_s(self, link: tuple, start_s: float, megabits: float) -> float:
        """When ``link``, sending from ``start_s`` at its trace's rate step after step, has carried ``megabits``."""
        steps_mbps, offset, length, _, cumulative_mbit = link
        step = int(start_s / self.step_s)
        position = (step + offset) % length
        step_end_s = (step + 1) * self.step_s
        first_mbit = steps_mbps[position] * (step_end_s - start_s)
        if first_mbit >= megabits:
            return start_s + megabits / steps_mbps[position]
        # the rest, counted from the start of the next step along the periodic cumulative sum
        period_mbit = cumulative_mbit[-1]
        periods, rest_mbit = divmod(megabits - first_mbit, period_mbit)
        if rest_mbit <= 0.0:
            periods, rest_mbit = periods - 1, period_mbit
        target_mbit = cumulative_mbit[position + 1] + rest_mbit
        steps_before = -(position + 1)
        if target_mbit > period_mbit:  # wraps into the next period
            target_mbit -= period_mbit
            steps_before += length
        end = bisect_left(cumulative_mbit, target_mbit)  # cumulative[end - 1] < target
        within_s = (target_mbit - cumulative_mbit[end - 1]) / steps_mbps[end - 1]
        return float(step_end_s + (periods * length + steps_before + end - 1) * self.step_s + within_s)

    def bandwidth_mbps(self, times_s: float | np.ndarray) -> np.ndarray:
        """Bandwidth of every link at ``times_s`` (a time or an array of times), Mbit/s: the nodes' uplinks,
        then their downlinks, along the last axis (shape ``(..., 2 nodes)``)."""
        steps = (np.asarray(times_s) / self.step_s).astype(np.int64)  # whole steps since 0 (times >= 0)
        positions = self._link_start + (steps[..., None] + self._offset_array) % self._length_array
        return self._flat_table.take(positions)
