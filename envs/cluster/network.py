"""Per-node access links whose bandwidth follows real traces, and transfer times over them.

Each node has an uplink and a downlink to the cluster's switch, each following a
:class:`~envs.cluster.traces.BandwidthTrace` times the link's ``bandwidth_scale``.
For speed every trace is averaged over steps of ``step_s`` seconds (the time-mean
of its piecewise-constant samples over each step, so the data a link carries per
step is kept; the period becomes the trace duration rounded up to whole steps),
and each link starts at its own random whole-step offset drawn at reset.

Link model: every link is a FIFO server that keeps the time until which it is
reserved.  A transfer of ``b`` bytes from node ``i`` to node ``j`` whose data
exists from ``t`` on starts once both links are free (at ``t`` or later), or at
the first later step in which both carry data (a 0 Mbit/s sample is a stalled
link); with both bandwidths read at its start step, it lasts
``8 b / (min(up_i, down_j) * 1e6)`` seconds (the slower side sets the pace), and
its data arrives one latency (``latency_i + latency_j``) after that.  Each link
is reserved only for the time its own rate needs: ``8 b / (up_i * 1e6)`` on the
uplink, ``8 b / (down_j * 1e6)`` on the downlink.  So a fast port serves several
slow peers at once (its reservations add up to its capacity over time; the
instantaneous sum of their rates may briefly exceed it, an approximation), while
a link as slow as the transfer is busy for all of it.  Two links whose open
steps never coincide (outage-heavy traces) have the switch relay the data
(:meth:`Network._send_after_stall`).
"""

from __future__ import annotations

import math
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
        links = list(zip(self._steps_mbps, offsets.tolist(), self._length, self.latency_s + self.latency_s))
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
        up_steps, up_offset, up_length, up_latency_s = self._uplinks[sender]
        down_steps, down_offset, down_length, down_latency_s = self._downlinks[receiver]
        if transfer_bytes <= 0:
            uplink_busy[sender] = downlink_busy[receiver] = start_s
            return start_s + up_latency_s + down_latency_s
        step = int(start_s / self.step_s)
        up_mbps = up_steps[(step + up_offset) % up_length]
        down_mbps = down_steps[(step + down_offset) % down_length]
        megabits = transfer_bytes * MEGABITS_PER_BYTE
        if up_mbps <= 0.0 or down_mbps <= 0.0:
            return self._send_after_stall(sender, receiver, start_s, megabits) + up_latency_s + down_latency_s
        uplink_busy[sender] = start_s + megabits / up_mbps
        downlink_busy[receiver] = start_s + megabits / down_mbps
        return start_s + megabits / (up_mbps if up_mbps < down_mbps else down_mbps) + up_latency_s + down_latency_s

    def _send_after_stall(self, sender: int, receiver: int, start_s: float, megabits: float) -> float:
        """A transfer that would start at ``start_s``, while one of its links is stalled: it starts at
        the first later step in which both carry data.  If they never do (their outages and periods keep
        them apart), the switch relays it: up at the uplink's next open step, down at the downlink's
        first open step after that, each at its own rate.  Returns when the data is through (latency aside)."""
        up_steps, up_offset, up_length, _ = self._uplinks[sender]
        down_steps, down_offset, down_length, _ = self._downlinks[receiver]
        step = int(start_s / self.step_s)
        for later in range(step + 1, step + 1 + up_length * down_length):  # both periods passed: never together
            up_mbps = up_steps[(later + up_offset) % up_length]
            down_mbps = down_steps[(later + down_offset) % down_length]
            if up_mbps > 0.0 and down_mbps > 0.0:
                start_s = later * self.step_s
                self.uplink_busy_until_s[sender] = start_s + megabits / up_mbps
                self.downlink_busy_until_s[receiver] = start_s + megabits / down_mbps
                return start_s + megabits / min(up_mbps, down_mbps)
        up_step = next(s for s in range(step, step + up_length) if up_steps[(s + up_offset) % up_length] > 0.0)
        down_step = next(s for s in range(up_step, up_step + down_length)
                         if down_steps[(s + down_offset) % down_length] > 0.0)
        up_end_s = max(start_s, up_step * self.step_s) + megabits / up_steps[(up_step + up_offset) % up_length]
        down_end_s = down_step * self.step_s + megabits / down_steps[(down_step + down_offset) % down_length]
        self.uplink_busy_until_s[sender] = up_end_s
        self.downlink_busy_until_s[receiver] = down_end_s
        return max(up_end_s, down_end_s)

    def bandwidth_mbps(self, times_s: float | np.ndarray) -> np.ndarray:
        """Bandwidth of every link at ``times_s`` (a time or an array of times), Mbit/s: the nodes' uplinks,
        then their downlinks, along the last axis (shape ``(..., 2 nodes)``)."""
        steps = (np.asarray(times_s) / self.step_s).astype(np.int64)  # whole steps since 0 (times >= 0)
        positions = self._link_start + (steps[..., None] + self._offset_array) % self._length_array
        return self._flat_table.take(positions)
