"""The outcome heap resolves exactly the outcomes due, in (time, job id) order, whatever the order of filing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from envs.sim.outcomes import (FINISHED, INITIAL_CAPACITY, NODE_FAILURE, RESOLVED, TALLIES, OutcomeTable,
                               file_outcome, resolve_due)

filings = st.lists(st.tuples(st.sampled_from([0.5, 1.0, 2.0, 7.5]) | st.floats(0.0, 100.0), st.booleans(),
                             st.floats(0.0, 50.0)),
                   max_size=3 * INITIAL_CAPACITY)  # repeated times test the job-id order; enough to make it grow


@settings(max_examples=100, deadline=None)
@given(filed=filings, checks_s=st.lists(st.floats(0.0, 120.0), min_size=1, max_size=6))
def test_outcomes_resolve_in_time_then_job_order_and_are_counted(filed, checks_s):
    table = OutcomeTable(("a", "b"))
    for job_id, (resolve_s, finished, energy_j) in enumerate(filed):
        table.make_room()
        file_outcome(table.pending, table.tallies, job_id, job_id % 2, 1, finished,
                     FINISHED if finished else NODE_FAILURE, 0.0, resolve_s, 10.0, 0.9 if finished else 0.0, energy_j)
    resolved = []
    for time_s in sorted(checks_s):
        resolve_due(table.pending, table.resolved, table.tallies, table.clock, time_s)
        popped = table.pop()
        assert table.tallies[RESOLVED] == 0
        resolved += popped
        due = sorted((resolve_s, job_id) for job_id, (resolve_s, _, _) in enumerate(filed) if resolve_s <= time_s)
        assert [(o.completion_s, o.job_id) for o in resolved] == due
        assert len(table) == len(filed) - len(due)
    counts = dict(zip(TALLIES, table.tallies.tolist()))
    assert counts["finished"] == sum(o.finished for o in resolved)
    assert counts["failed"] == sum(not o.finished for o in resolved)
    for outcome in resolved:
        finished, energy_j = filed[outcome.job_id][1:]
        assert outcome.app == ("a", "b")[outcome.job_id % 2] and outcome.family == "none"
        assert outcome.failure_reason == ("" if finished else "node_failure") and outcome.energy_j == energy_j
        assert outcome.met_deadline == (finished and outcome.response_time_s <= 10.0)
