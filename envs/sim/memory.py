"""Memory held by reserved fragments until they finish: a min-heap of releases in arrays.

A fragment's memory is taken from its node's free memory when its job is reserved
(:func:`envs.sim.schedule.reserve_job`) and given back when it finishes (or its
job fails).  The releases wait in a binary min-heap by time kept in one
``(3, capacity)`` float64 array (rows: time_s, node, bytes; node and bytes are
whole numbers, exact in float64) and a one-entry int64 array holding how many
there are, so compiled code can push and pop them.  Releases due at the same time
may come out in any order: free memory is a sum of whole bytes, the same in any
order.
"""

from __future__ import annotations

import numba
import numpy as np

INITIAL_CAPACITY = 64
"""Releases the heap holds before it first grows (it doubles when full)."""

(_TIME, _NODE, _BYTES) = range(3)


@numba.njit(cache=True)
def push_release(releases, count, release_s, node, memory_bytes):
    """Add a release of ``memory_bytes`` on ``node`` at ``release_s`` (there must be room: see
    :meth:`MemoryReleases.make_room`)."""
    child = count[0]
    count[0] += 1
    while child > 0:  # sift up
        parent = (child - 1) // 2
        if releases[_TIME, parent] <= release_s:
            break
        releases[:, child] = releases[:, parent]
        child = parent
    releases[_TIME, child], releases[_NODE, child], releases[_BYTES, child] = release_s, node, memory_bytes


@numba.njit(cache=True)
def release_due(releases, count, free_memory_bytes, time_s):
    """Give the memory of every release due by ``time_s`` back to ``free_memory_bytes`` (one entry per node)."""
    while count[0] > 0 and releases[_TIME, 0] <= time_s:
        free_memory_bytes[int(releases[_NODE, 0])] += releases[_BYTES, 0]
        count[0] -= 1
        last = count[0]
        release_s = releases[_TIME, last]
        parent = 0
        while True:  # sift the last release down from the root
            child = 2 * parent + 1
            if child >= last:
                break
            if child + 1 < last and releases[_TIME, child + 1] < releases[_TIME, child]:
                child += 1
            if release_s <= releases[_TIME, child]:
                break
            releases[:, parent] = releases[:, child]
            parent = child
        releases[:, parent] = releases[:, last]


class MemoryReleases:
    """The pending memory releases of a cluster (see the module docstring)."""

    def __init__(self):
        self.releases = np.zeros((3, INITIAL_CAPACITY))
        """Rows time_s, node, bytes; the first :attr:`count` columns are a min-heap by time."""
        self.count = np.zeros(1, dtype=np.int64)
        """How many releases are pending (one entry, written by compiled code)."""

    def __len__(self) -> int:
        return int(self.count[0])

    def clear(self) -> None:
        self.count[0] = 0

    def make_room(self, releases: int) -> bool:
        """Grow the heap so that ``releases`` more fit; returns whether :attr:`releases` was replaced."""
        needed = int(self.count[0]) + releases
        capacity = self.releases.shape[1]
        if needed <= capacity:
            return False
        grown = np.zeros((3, max(needed, 2 * capacity)))
        grown[:, :capacity] = self.releases
        self.releases = grown
        return True

    def push(self, release_s: float, node: int, memory_bytes: int) -> None:
        """Add a release of ``memory_bytes`` on ``node`` at ``release_s``."""
        self.make_room(1)
        push_release(self.releases, self.count, release_s, node, memory_bytes)

    def release_until(self, free_memory_bytes: np.ndarray, time_s: float) -> None:
        """Give the memory of every release due by ``time_s`` back to ``free_memory_bytes``."""
        if self.count[0] and self.releases[_TIME, 0] <= time_s:
            release_due(self.releases, self.count, free_memory_bytes, time_s)
