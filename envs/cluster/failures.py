"""Node failures: alternating exponential up-times (mean MTBF) and repair times (mean MTTR).

Every node starts up at time 0.  Its failure and repair times are sampled
lazily, :data:`CHUNK_CYCLES` up/down cycles for all nodes at a time, so a node's
history does not depend on the order in which it is queried.  Cycles that ended
before :meth:`FailureProcess.forget_before` are dropped when the next chunk is drawn.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right

import numpy as np

from envs.sim.types import FailureConfig

CHUNK_CYCLES = 16
"""Up/down cycles drawn per node at a time."""


class FailureProcess:
    """When each node is down."""

    def __init__(self, config: FailureConfig, node_count: int):
        self.config = config
        self._node_count = node_count

    def reset(self, rng: np.random.Generator) -> None:
        """Start a fresh realisation drawn from ``rng`` (used by this object only from now on)."""
        self._rng = rng
        # per node: sorted times at which it changes state: failure, repair, failure, repair, ...
        self._changes_s: list[list[float]] = [[] for _ in range(self._node_count)]
        self._last_change_s = np.zeros(self._node_count)
        self._forget_s = 0.0
        self._extend()
        # up_vector's cache: each node's state and the next time it may change
        self._up = np.ones(self._node_count, dtype=bool)
        self._valid_until_s = np.zeros(self._node_count)

    def _extend(self) -> None:
        """Draw one more chunk of cycles for every node (and drop cycles that ended before ``forget_before``)."""
        nodes = self._node_count
        durations_s = np.empty((nodes, 2 * CHUNK_CYCLES))
        durations_s[:, 0::2] = self._rng.exponential(self.config.mtbf_s, (nodes, CHUNK_CYCLES))
        durations_s[:, 1::2] = self._rng.exponential(self.config.mttr_s, (nodes, CHUNK_CYCLES))
        changes_s = self._last_change_s[:, None] + np.cumsum(durations_s, axis=1)
        self._last_change_s = changes_s[:, -1].copy()
        for node, new_changes in enumerate(changes_s.tolist()):
            changes = self._changes_s[node]
            ended = bisect_left(changes, self._forget_s)
            del changes[: ended - ended % 2]
            changes.extend(new_changes)

    def _changes_covering(self, node: int, time_s: float) -> list[float]:
        """The node's change times, sampled at least past ``time_s``."""
        changes = self._changes_s[node]
        while changes[-1] <= time_s:
            self._extend()
        return changes

    def first_failure_s(self, node: int, start_s: float, end_s: float) -> float:
        """Earliest time in ``[start_s, end_s)`` at which ``node`` is down (``start_s`` if it is
        down then); ``math.inf`` if it stays up throughout."""
        changes = self._changes_covering(node, end_s)
        index = bisect_right(changes, start_s)
        if index % 2:
            return start_s
        return changes[index] if changes[index] < end_s else math.inf

    def repair_s(self, node: int, time_s: float) -> float:
        """When ``node``, down at ``time_s``, is up again (``time_s`` itself if it is up)."""
        changes = self._changes_covering(node, time_s)
        index = bisect_right(changes, time_s)
        return changes[index] if index % 2 else time_s

    def is_up(self, node: int, time_s: float) -> bool:
        return bisect_right(self._changes_covering(node, time_s), time_s) % 2 == 0

    def up_vector(self, time_s: float) -> np.ndarray:
        """Whether each node is up at ``time_s`` (a fresh array); only nodes whose state may have
        changed since the last call are looked up."""
        for node in np.flatnonzero(self._valid_until_s <= time_s).tolist():
            changes = self._changes_covering(node, time_s)
            index = bisect_right(changes, time_s)
            self._up[node] = index % 2 == 0
            self._valid_until_s[node] = changes[index]
        return self._up.copy()

    def forget_before(self, time_s: float) -> None:
        """No later query asks about times before ``time_s``."""
        self._forget_s = time_s
