"""Node failures: alternating exponential up-times (mean MTBF) and repair times (mean MTTR).

Every node starts up at time 0.  Its failure and repair times are sampled
lazily, :data:`CHUNK_CYCLES` up/down cycles for all nodes at a time, so a node's
history does not depend on the order in which it is queried.  Cycles that ended
before :meth:`FailureProcess.forget_before` are dropped when the next chunk is drawn.
The scheduler's compiled pass reads the change times from one padded table
(:attr:`FailureProcess.change_table`) through :func:`find_first_failure_s`, :func:`find_repair_s` and
:func:`find_is_up`.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right

import numba
import numpy as np

from envs.sim.types import FailureConfig

CHUNK_CYCLES = 16
"""Up/down cycles drawn per node at a time."""


@numba.njit(cache=True)
def _covered(change_s, change_count, node, time_s):
    """Whether ``node``'s sampled change times reach past ``time_s``."""
    return change_s[node, change_count[node] - 1] > time_s


@numba.njit(cache=True)
def find_first_failure_s(change_s, change_count, node, start_s, end_s):
    """``(covered, time)``: the earliest time in ``[start_s, end_s)`` at which ``node`` is down (``start_s`` if it
    is down then; ``inf`` if it stays up), from a :attr:`FailureProcess.change_table`; ``covered`` is False
    (and the time meaningless) when the table does not reach past ``end_s``."""
    if not _covered(change_s, change_count, node, end_s):
        return False, 0.0
    changes = change_s[node, : change_count[node]]
    index = np.searchsorted(changes, start_s, side="right")
    if index % 2:
        return True, start_s
    return True, changes[index] if changes[index] < end_s else math.inf


@numba.njit(cache=True)
def find_is_up(change_s, change_count, node, time_s):
    """``(covered, up)``: whether ``node`` is up at ``time_s``, from a :attr:`FailureProcess.change_table`;
    ``covered`` is False when the table does not reach past ``time_s``."""
    if not _covered(change_s, change_count, node, time_s):
        return False, False
    return True, np.searchsorted(change_s[node, : change_count[node]], time_s, side="right") % 2 == 0


@numba.njit(cache=True)
def find_repair_s(change_s, change_count, node, time_s):
    """``(covered, time)``: when ``node``, down at ``time_s``, is up again (``time_s`` itself if it is up), from a
    :attr:`FailureProcess.change_table`; ``covered`` is False when the table does not reach past ``time_s``."""
    if not _covered(change_s, change_count, node, time_s):
        return False, 0.0
    changes = change_s[node, : change_count[node]]
    index = np.searchsorted(changes, time_s, side="right")
    return True, changes[index] if index % 2 else time_s


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
        self.extend()
        # up_vector's cache: each node's state and the next time it may change
        self._up = np.ones(self._node_count, dtype=bool)
        self._valid_until_s = np.zeros(self._node_count)

    def extend(self) -> None:
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
        counts = [len(changes) for changes in self._changes_s]
        table = np.full((nodes, max(counts)), math.inf)
        for node, changes in enumerate(self._changes_s):
            table[node, : counts[node]] = changes
        self.change_table = (table, np.array(counts, dtype=np.int64))
        """What :func:`find_first_failure_s` and :func:`find_repair_s` read: ``(change times, count)``, each node's
        sorted change times (failure, repair, failure, ...) padded with ``inf``, and how many it has.  Call
        :meth:`extend` when they do not reach far enough."""

    def _changes_covering(self, node: int, time_s: float) -> list[float]:
        """The node's change times, sampled at least past ``time_s``."""
        changes = self._changes_s[node]
        while changes[-1] <= time_s:
            self.extend()
        return changes

    def _answer(self, find, node: int, *times_s: float):
        """What ``find`` (:func:`find_first_failure_s`, :func:`find_repair_s` or :func:`find_is_up`) answers about
        ``node`` and ``times_s``, drawing more cycles until the change table covers them."""
        while True:
            covered, answer = find(*self.change_table, node, *times_s)
            if covered:
                return answer
            self.extend()

    def first_failure_s(self, node: int, start_s: float, end_s: float) -> float:
        """Earliest time in ``[start_s, end_s)`` at which ``node`` is down (``start_s`` if it is
        down then); ``math.inf`` if it stays up throughout."""
        return self._answer(find_first_failure_s, node, start_s, end_s)

    def repair_s(self, node: int, time_s: float) -> float:
        """When ``node``, down at ``time_s``, is up again (``time_s`` itself if it is up)."""
        return self._answer(find_repair_s, node, time_s)

    def is_up(self, node: int, time_s: float) -> bool:
        return bool(self._answer(find_is_up, node, time_s))

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
