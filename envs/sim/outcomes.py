"""Job outcomes as array rows: filed under the time they resolve, resolved in time order, tallied.

A job's outcome is filed when the job is reserved (or rejected) and resolves at its
completion (or failure) time.  Pending outcomes wait in a binary min-heap keyed by
``(resolve_s, job_id)``, one row of :data:`OUTCOME_FIELDS` each, in a float64 array;
resolved ones are appended to a second array until they are handed out
(:meth:`OutcomeTable.pop`) as :class:`~envs.sim.types.JobOutcome` tuples.  Compiled
code files and resolves them, so a step need not build a Python object per job.
The running counts and energy live in two small arrays (:data:`TALLIES`,
:data:`CLOCK`) that compiled code updates as outcomes resolve.  Whole numbers (job
ids, codes) are exact in float64.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from envs.dnn.plan import FAMILIES
from envs.sim.types import JobOutcome

OUTCOME_FIELDS = ("resolve_s", "job_id", "app", "family", "finished", "reason", "arrival_s", "completion_s",
                  "response_time_s", "deadline_s", "met_deadline", "accuracy", "energy_j")
"""Columns of an outcome row: the heap key (resolve time, seconds), then the fields of JobOutcome with app,
family and failure reason as codes (:attr:`OutcomeTable.apps`, :data:`FAMILY_CODES`, :data:`REASONS`)."""
(_RESOLVE_S, _JOB_ID, _APP, _FAMILY, _FINISHED, _REASON, _ARRIVAL_S, _COMPLETION_S, _RESPONSE_S, _DEADLINE_S,
 _MET, _ACCURACY, _ENERGY_J) = range(len(OUTCOME_FIELDS))

REASONS = ("", "infeasible", "node_failure")
"""``JobOutcome.failure_reason`` by code."""
FINISHED, INFEASIBLE, NODE_FAILURE = range(len(REASONS))

FAMILY_CODES = ("", *FAMILIES)
"""``JobOutcome.family`` by code: 0 for no plan, then the split families."""

TALLIES = ("pending", "resolved", "arrived", "finished", "failed", "infeasible")
"""Entries of the int64 tallies array: outcomes in the heap, resolved rows not yet handed out, and the episode's
running job counts."""
(PENDING, RESOLVED, ARRIVED, FINISHED_JOBS, FAILED_JOBS, INFEASIBLE_JOBS) = range(len(TALLIES))

CLOCK = ("time_s", "background_energy_j", "job_energy_j")
"""Entries of the float64 clock array: simulated time (s), the background draw so far and the extra energy of the
resolved jobs (J)."""
(TIME_S, BACKGROUND_ENERGY_J, JOB_ENERGY_J) = range(len(CLOCK))

INITIAL_CAPACITY = 64
"""Rows the heap and the resolved array hold before they first grow (they double when full)."""


@numba.njit(cache=True)
def _earlier(rows, first, second):
    """Whether heap row ``first`` resolves before row ``second``: by time, then by job id."""
    if rows[first, _RESOLVE_S] != rows[second, _RESOLVE_S]:
        return rows[first, _RESOLVE_S] < rows[second, _RESOLVE_S]
    return rows[first, _JOB_ID] < rows[second, _JOB_ID]


@numba.njit(cache=True)
def outcome_row(job_id, app, family, finished, reason, arrival_s, completion_s, deadline_s, accuracy, energy_j,
                row):
    """Write an outcome into ``row`` (:data:`OUTCOME_FIELDS`), resolving at ``completion_s``: the response time
    is ``completion_s - arrival_s``, the deadline met when finished within ``deadline_s`` of arrival."""
    response_s = completion_s - arrival_s
    row[_RESOLVE_S], row[_JOB_ID], row[_APP], row[_FAMILY] = completion_s, job_id, app, family
    row[_FINISHED], row[_REASON], row[_ARRIVAL_S], row[_COMPLETION_S] = finished, reason, arrival_s, completion_s
    row[_RESPONSE_S], row[_DEADLINE_S], row[_MET] = response_s, deadline_s, finished and response_s <= deadline_s
    row[_ACCURACY], row[_ENERGY_J] = accuracy, energy_j


@numba.njit(cache=True)
def file_outcome(pending, tallies, job_id, app, family, finished, reason, arrival_s, completion_s, deadline_s,
                 accuracy, energy_j):
    """Add an outcome resolving at ``completion_s`` to the heap ``pending`` (there must be room:
    :meth:`OutcomeTable.make_room`)."""
    child = tallies[PENDING]
    tallies[PENDING] += 1
    outcome_row(job_id, app, family, finished, reason, arrival_s, completion_s, deadline_s, accuracy, energy_j,
                pending[child])
    while child > 0:  # sift up
        parent = (child - 1) // 2
        if not _earlier(pending, child, parent):
            break
        row = pending[child].copy()
        pending[child] = pending[parent]
        pending[parent] = row
        child = parent


@numba.njit(cache=True)
def file_reserved(pending, tallies, job_id, app, family, arrival_s, deadline_s, completion_s, failure_s, accuracy,
                  energy_j):
    """File the outcome of a reserved job: finished at ``completion_s`` with the plan's ``accuracy``, or, if a node
    failure killed it (``failure_s`` < inf), failed then (see :func:`file_outcome`)."""
    finished = failure_s == math.inf
    file_outcome(pending, tallies, job_id, app, family, finished, FINISHED if finished else NODE_FAILURE, arrival_s,
                 completion_s if finished else failure_s, deadline_s, accuracy if finished else 0.0, energy_j)


@numba.njit(cache=True)
def _tally(row, resolved, tallies, clock):
    """Count an outcome that resolves now and append it to ``resolved``."""
    if row[_FINISHED]:
        tallies[FINISHED_JOBS] += 1
    else:
        tallies[FAILED_JOBS] += 1
        tallies[INFEASIBLE_JOBS] += row[_REASON] == INFEASIBLE
    clock[JOB_ENERGY_J] += row[_ENERGY_J]
    resolved[tallies[RESOLVED]] = row
    tallies[RESOLVED] += 1


@numba.njit(cache=True)
def resolve_infeasible(resolved, tallies, clock, job_id, app, family, arrival_s, deadline_s):
    """Resolve a job rejected now (``clock`` time) as failed, reason ``"infeasible"``."""
    row = np.empty(len(OUTCOME_FIELDS))
    outcome_row(job_id, app, family, False, INFEASIBLE, arrival_s, clock[TIME_S], deadline_s, 0.0, 0.0, row)
    _tally(row, resolved, tallies, clock)


@numba.njit(cache=True)
def resolve_due(pending, resolved, tallies, clock, time_s):
    """Resolve, in time order, every pending outcome due by ``time_s`` (there must be room in ``resolved``)."""
    while tallies[PENDING] > 0 and pending[0, _RESOLVE_S] <= time_s:
        _tally(pending[0], resolved, tallies, clock)
        tallies[PENDING] -= 1
        last = tallies[PENDING]
        parent = 0
        while True:  # sift the last row down from the root
            child = 2 * parent + 1
            if child >= last:
                break
            if child + 1 < last and _earlier(pending, child + 1, child):
                child += 1
            if not _earlier(pending, child, last):
                break
            pending[parent] = pending[child]
            parent = child
        pending[parent] = pending[last]


class OutcomeTable:
    """The outcomes of one episode's jobs (see the module docstring), with the running counts and energy.

    Args:
        apps: app names by code (``JobOutcome.app`` of code ``i`` is ``apps[i]``).
    """

    def __init__(self, apps: tuple[str, ...]):
        self.apps = apps
        self.pending = np.zeros((INITIAL_CAPACITY, len(OUTCOME_FIELDS)))
        """Heap of the outcomes not resolved yet (its first ``tallies[PENDING]`` rows)."""
        self.resolved = np.zeros((INITIAL_CAPACITY, len(OUTCOME_FIELDS)))
        """Outcomes resolved and not handed out yet (its first ``tallies[RESOLVED]`` rows), in resolution order."""
        self.tallies = np.zeros(len(TALLIES), dtype=np.int64)
        self.clock = np.zeros(len(CLOCK))

    def __len__(self) -> int:
        """Outcomes pending (filed, not resolved yet)."""
        return int(self.tallies[PENDING])

    def clear(self) -> None:
        """No outcome, no job, time 0, no energy."""
        self.tallies.fill(0)
        self.clock.fill(0.0)

    def make_room(self) -> bool:
        """Grow the arrays so that one more outcome can be filed and every pending one resolved; returns whether
        an array was replaced."""
        pending, resolved = int(self.tallies[PENDING]), int(self.tallies[RESOLVED])
        grown = False
        if pending + 1 > self.pending.shape[0]:
            self.pending = _grown(self.pending, pending)
            grown = True
        if resolved + pending + 1 > self.resolved.shape[0]:
            self.resolved = _grown(self.resolved, resolved)
            grown = True
        return grown

    def rows(self) -> np.ndarray:
        """The resolved rows not handed out yet (a view)."""
        return self.resolved[: self.tallies[RESOLVED]]

    def outcomes(self, rows: np.ndarray) -> list[JobOutcome]:
        """``rows`` (:data:`OUTCOME_FIELDS`) as JobOutcome tuples."""
        apps, reasons = self.apps, REASONS
        return [JobOutcome(int(job_id), apps[int(app)], FAMILY_CODES[int(family)], bool(finished),
                           reasons[int(reason)], arrival_s, completion_s, response_s, deadline_s, bool(met),
                           accuracy, energy_j)
                for (_, job_id, app, family, finished, reason, arrival_s, completion_s, response_s, deadline_s, met,
                     accuracy, energy_j) in rows.tolist()]

    def pop(self) -> list[JobOutcome]:
        """The outcomes resolved since the last call, in resolution order."""
        outcomes = self.outcomes(self.rows())
        self.tallies[RESOLVED] = 0
        return outcomes


def _grown(rows: np.ndarray, used: int) -> np.ndarray:
    """``rows`` copied into an array twice as long (its first ``used`` rows kept)."""
    grown = np.zeros((2 * rows.shape[0], rows.shape[1]))
    grown[:used] = rows[:used]
    return grown
