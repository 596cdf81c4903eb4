"""Per-node access links whose bandwidth follows real traces, and transfer times over them.

Each node has an uplink and a downlink to the cluster's switch, each following a
:class:`~envs.cluster.traces.BandwidthTrace` times the link's ``bandwidth_scale``.
For speed every trace is averaged over steps of ``step_s`` seconds (the time-mean
of its piecewise-constant samples over each step, so the data a link carries per
step is kept; the period becomes the trace duration rounded up to whole steps),
and each link starts at its own random whole-step offset drawn at reset.

A transfer of ``b`` bytes from node ``i`` to node ``j`` that may start at ``t``:
it starts at ``t``, or at the first later step in which both links carry data
(a 0 Mbit/s sample is a stalled link), and occupies ``i``'s uplink and ``j``'s
downlink for ``8 b / (min(up_i, down_j) * 1e6)`` seconds, with both bandwidths
read at its start step; the data arrives one latency (``latency_i + latency_j``)
after that.  A transfer queues (FIFO) behind earlier ones on both links: each
link keeps the time until which it is reserved.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from envs.cluster.traces import BandwidthTrace
from envs.sim.types import LinkConfig


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
        self._links = list(zip(self._steps_mbps, offsets.tolist(), self._length))  # (step means, offset, length)
        self._cached_step = -1
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
        if transfer_bytes > 0:
            step_s = self.step_s
            up_steps, up_offset, up_length = self._links[sender]
            down_steps, down_offset, down_length = self._links[self.node_count + receiver]
            step = int(start_s / step_s)
            while True:
                up_mbps = up_steps[(step + up_offset) % up_length]
                down_mbps = down_steps[(step + down_offset) % down_length]
                mbps = up_mbps if up_mbps < down_mbps else down_mbps
                if mbps > 0.0:
                    break
                step += 1
                start_s = step * step_s
            start_s += transfer_bytes * 8e-6 / mbps
        uplink_busy[sender] = start_s
        downlink_busy[receiver] = start_s
        latency_s = self.latency_s
        return start_s + latency_s[sender] + latency_s[receiver]

    def bandwidth_mbps(self, time_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(uplink, downlink) bandwidth of every node at ``time_s``, Mbit/s (fresh arrays)."""
        step = int(time_s / self.step_s)
        if step != self._cached_step:
            self._cached_mbps = self._flat_table.take(self._link_start + (step + self._offset_array) % self._length_array)
            self._cached_step = step
        both = self._cached_mbps.copy()
        return both[: self.node_count], both[self.node_count:]
