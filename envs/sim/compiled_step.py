"""The simulator's half of a compiled step: submit the awaiting job with a library plan, advance to the next arrival.

These run on a :class:`~envs.sim.world.World` and are composed with the action
decoding and the observation into one compiled call per environment step
(:mod:`envs.compiled_step`); :class:`~envs.sim.engine.ClusterSimulator` uses
:func:`advance_to` for its own time advance too.  What compiled code cannot do
(grow an array, sample more background load or failure times, draw early exits)
it reports with a status before changing anything, and the simulator does it and
calls again (:meth:`~envs.sim.engine.ClusterSimulator.run_compiled`).
"""

from __future__ import annotations

import math

import numba

from envs.sim.memory import release_due
from envs.sim.outcomes import (ARRIVED, BACKGROUND_ENERGY_J, PENDING, RESOLVED, TIME_S, file_reserved, resolve_due,
                               resolve_infeasible)
from envs.sim.schedule import DONE, DOES_NOT_FIT, NEEDS_FAILURE_TIMES, placement_fits, reserve_job
from envs.sim.types import (JOB_APP, JOB_ARRIVAL_S, JOB_DEADLINE_S, JOB_ID, JOB_ITEMS, JOB_ITERATIONS,
                            JOB_ORIGIN)
from envs.sim.world import (CONSTANT_POWER_W, EXITS, FAMILY, FINISH_START, FRAGMENTS, FREE_MEMORY_ROW, INDEX_END,
                            INDEX_START, UPLINK_ROW, VALUES_END, VALUES_START)

NEEDS_ROOM, NEEDS_EXITS, INVALID = 5, 6, 7
"""Statuses beyond those of :func:`~envs.sim.schedule.reserve_job`: an array must grow first; the early exits of
the plan (returned beside) must be drawn first; the arguments were refused (nothing changed)."""

SUBMIT, ADVANCE = 1, 2
"""Phases of a compiled step (bits): submit the awaiting job; advance to the next arrival."""


@numba.njit(cache=True)
def has_room(world, fragments):
    """Whether one more outcome can be filed (and every pending one resolved) and ``fragments`` releases pushed."""
    tallies = world.tallies
    return (tallies[PENDING] + 1 <= world.pending.shape[0]
            and tallies[RESOLVED] + tallies[PENDING] + 1 <= world.resolved.shape[0]
            and world.release_count[0] + fragments <= world.releases.shape[1])


@numba.njit(cache=True)
def reject_current(world, family):
    """Resolve the awaiting job (``World.current``) as infeasible, under family code ``family``."""
    current = world.current
    resolve_infeasible(world.resolved, world.tallies, world.clock, current[JOB_ID], current[JOB_APP], family,
                       current[JOB_ARRIVAL_S], current[JOB_DEADLINE_S])


@numba.njit(cache=True)
def submit_current(world, plan, placement, reach):
    """Submit the awaiting job (``World.current``) with library plan ``plan``, fragment ``i`` on ``placement[i]``:
    reserve it and file its outcome, or reject it as infeasible if it does not fit.  ``reach``: the items that reach
    each fragment, empty for all (a plan with early exits needs them drawn: ``NEEDS_EXITS``, once it is known to
    fit).  Returns ``(status, rejected)``; unless ``status`` is ``DONE`` nothing changed (there must be room:
    :func:`has_room`)."""
    layout, current, clock = world.library_layout[plan], world.current, world.clock
    values = world.library_values[layout[VALUES_START]: layout[VALUES_END]]
    now_s = clock[TIME_S]
    exits = layout[EXITS] != 0
    if exits:  # checked before the exits are drawn (drawn only for jobs that run)
        status = placement_fits(world.state[FREE_MEMORY_ROW], world.change_s, world.change_count, values, placement,
                                now_s)
        if status == NEEDS_FAILURE_TIMES:
            return status, False
        if status == DOES_NOT_FIT:
            reject_current(world, layout[FAMILY])
            return DONE, True
        if reach.size == 0:
            return NEEDS_EXITS, False
    runs = world.runs if world.change_count.size > 0 else world.runs[:0]
    status, completion_s, failure_s, energy_j, _ = reserve_job(
        world, world.library_index[layout[INDEX_START]: layout[INDEX_END]], values,
        world.library_finish_s[layout[FINISH_START]: layout[FINISH_START] + layout[FRAGMENTS]], runs, placement,
        int(current[JOB_ORIGIN]), now_s, int(current[JOB_ITEMS]), reach, int(current[JOB_ITERATIONS]), not exits,
        True, True)
    if status == DOES_NOT_FIT:
        reject_current(world, layout[FAMILY])
        return DONE, True
    if status != DONE:
        return status, False
    file_reserved(world.pending, world.tallies, current[JOB_ID], current[JOB_APP], layout[FAMILY],
                  current[JOB_ARRIVAL_S], current[JOB_DEADLINE_S], completion_s, failure_s, world.library_accuracy[plan],
                  energy_j)
    return DONE, False


@numba.njit(cache=True)
def advance_to(world, time_s, job_row):
    """Move the clock to ``time_s`` (seconds; a constant background load's energy added), release the memory and
    resolve the outcomes due by then; then, for ``job_row`` >= 0, the upcoming job of that row arrives: it becomes
    ``World.current`` and the state takes the link bandwidths of its step."""
    clock, params, state, tallies = world.clock, world.params, world.state, world.tallies
    now_s = clock[TIME_S]
    if time_s > now_s:
        power_w = params[CONSTANT_POWER_W]
        if not math.isnan(power_w):
            clock[BACKGROUND_ENERGY_J] += power_w * (time_s - now_s)
        clock[TIME_S] = time_s
    release_due(world.releases, world.release_count, state[FREE_MEMORY_ROW], time_s)
    resolve_due(world.pending, world.resolved, tallies, clock, time_s)
    if job_row >= 0:
        tallies[ARRIVED] += 1
        world.current[:] = world.upcoming[job_row]
        bandwidth, nodes = world.upcoming_bandwidth[world.upcoming_rows[job_row]], state.shape[1]
        for entry in range(bandwidth.size):  # uplinks, then downlinks
            state[UPLINK_ROW + entry // nodes, entry % nodes] = bandwidth[entry]
