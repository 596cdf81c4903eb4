"""The heap of pending memory releases gives back exactly the memory due, whatever the order of pushes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.sim.memory import INITIAL_CAPACITY, MemoryReleases

releases = st.lists(st.tuples(st.floats(0.0, 100.0), st.integers(0, 3), st.integers(1, 10**9)),
                    max_size=3 * INITIAL_CAPACITY)  # enough to make the heap grow


@settings(max_examples=100, deadline=None)
@given(pending=releases, checks_s=st.lists(st.floats(0.0, 120.0), min_size=1, max_size=8))
def test_releases_due_by_each_time_are_given_back_and_no_others(pending, checks_s):
    heap = MemoryReleases()
    for release_s, node, memory_bytes in pending:
        heap.push(release_s, node, memory_bytes)
    free = np.zeros(4)
    for time_s in sorted(checks_s):
        heap.release_until(free, time_s)
        due = np.zeros(4)
        for release_s, node, memory_bytes in pending:
            if release_s <= time_s:
                due[node] += memory_bytes
        assert np.array_equal(free, due)
        assert len(heap) == sum(release_s > time_s for release_s, _, _ in pending)
