"""The compiled body of :meth:`EdgeSplitEnv.step`: decode the action, submit the job, advance, observe, total.

One call of :func:`step_kernel` does what the environment's step would do in
Python (:meth:`~envs.observation.ActionTable.decode`,
:meth:`~envs.sim.engine.ClusterSimulator.submit` / ``reject``, the advance to the
next arrival, :meth:`~envs.observation.ObservationBuilder.build` and the reward
totals of :func:`~envs.reward.reward_parts`), from the same compiled parts,
through :meth:`~envs.sim.engine.ClusterSimulator.step_compiled`.  The arrays it
reads besides the simulator's are the environment's (:class:`StepArrays`), attached
to the simulator's world (:meth:`~envs.sim.engine.ClusterSimulator.attach`).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from envs.observation import write_job_entries, write_masks, write_observation
from envs.reward import TOTALS, add_outcome
from envs.sim.compiled_step import (ADVANCE, INVALID, NEEDS_ROOM, SUBMIT, advance_to, has_room, reject_current,
                                    submit_current)
from envs.sim.outcomes import (ARRIVED, BACKGROUND_ENERGY_J, FAILED_JOBS, FINISHED_JOBS, INFEASIBLE, INFEASIBLE_JOBS,
                               JOB_ENERGY_J, OUTCOME_FIELDS, RESOLVED, TIME_S)
from envs.sim.schedule import DONE
from envs.sim.types import (JOB_APP, JOB_DEADLINE_S, JOB_INPUT_BYTES, JOB_ITEMS, JOB_ITERATIONS,
                            JOB_TRAINING)
from envs.sim.world import FRAGMENTS, FREE_MEMORY_ROW, UP_ROW

_FINISHED, _REASON, _MET, _ACCURACY, _ENERGY_J = (OUTCOME_FIELDS.index(name) for name in (
    "finished", "reason", "met_deadline", "accuracy", "energy_j"))
"""Columns of an outcome row the totals read."""


class StepArrays(NamedTuple):
    """The environment's arrays :func:`step_kernel` reads (the companion fields of the simulator's world,
    :data:`~envs.sim.world.COMPANION_FIELDS`)."""

    plan_table: np.ndarray  # int64 (simulator apps, families, 1 + variants): per family its plan count, then the
    #                         library id of each variant
    nvec: np.ndarray  # int64: the size of each action dimension
    app_index: np.ndarray  # int64: per simulator app code, its index among the observation's apps
    accuracy_floor: float  # RewardWeights.accuracy_floor
    node_factor: np.ndarray  # ObservationBuilder.node_factor
    observation_scalars: np.ndarray  # ObservationBuilder.scalars
    fastest_latency_s: np.ndarray  # ObservationBuilder.fastest_latency_s
    job_entries: np.ndarray  # ObservationBuilder.job_entries (scratch)
    mask_heads: np.ndarray  # ActionTable.mask_tables, field by field
    mask_thresholds: np.ndarray
    mask_slot_min_bytes: np.ndarray
    mask_forced: np.ndarray
    mask_largest_slot_min_bytes: np.ndarray
    mask_largest_fragment_bytes: np.ndarray
    mask_all_fit: np.ndarray
    masks: np.ndarray  # bool: the action masks of the job that arrived (written)


@numba.njit(cache=True)
def step_kernel(world, phase, reach, job_row, time_s, action, out):
    """One environment step on ``world`` (see :meth:`~envs.sim.engine.ClusterSimulator.step_compiled` for the first
    five arguments), the environment's :class:`StepArrays` attached: with ``SUBMIT``, run the awaiting job as
    ``action`` says (a family without plans for its app: rejected; the variant taken modulo the family's plan
    count); with ``ADVANCE``, move to the next arrival and write the observation into ``out`` and, when a job
    arrived, its action masks into ``world.masks``.

    Returns ``(status, plan, rejected, *totals, *running)``: ``INVALID`` if ``action`` is outside the action space;
    the reward totals (:data:`~envs.reward.TOTALS`) of the outcomes resolved since ``SUBMIT``; and the running
    ``(arrived, finished, failed, infeasible, energy_j, time_s)`` of the episode.
    """
    plan_table, nvec, scalars = world.plan_table, world.nvec, world.observation_scalars
    rejected = False
    tallies = world.tallies
    if phase & SUBMIT:
        for dimension in range(nvec.size):
            if action[dimension] < 0 or action[dimension] >= nvec[dimension]:
                return _refused(INVALID, -1)
        app, family = int(world.current[JOB_APP]), action[0]
        plans = plan_table[app, family, 0]
        plan = plan_table[app, family, 1 + action[1] % plans] if plans else -1
        fragments = world.library_layout[plan, FRAGMENTS] if plans else 0
        if not has_room(world, fragments):
            return _refused(NEEDS_ROOM, plan)
        tallies[RESOLVED] = 0
        if plans:
            status, rejected = submit_current(world, plan, action[2: 2 + fragments], reach)
            if status != DONE:
                return _refused(status, plan)
        else:
            reject_current(world, family + 1)  # FAMILY_CODES: no plan, then FAMILIES
            rejected = True
    if phase & ADVANCE:
        advance_to(world, time_s, job_row)
        current = world.current
        app = world.app_index[int(current[JOB_APP])] if job_row >= 0 else -1  # -1: no job (entries 0, no masks)
        write_job_entries(world.job_entries, app, current[JOB_DEADLINE_S], current[JOB_ITEMS],
                          current[JOB_INPUT_BYTES], current[JOB_ITERATIONS], current[JOB_TRAINING],
                          world.fastest_latency_s, scalars)
        write_observation(world.state, world.clock[TIME_S], world.node_factor, scalars, world.job_entries, out)
        if app >= 0:
            up = world.state[UP_ROW]
            write_masks(app, world.state[FREE_MEMORY_ROW],
                        up if world.change_count.size > 0 else up[:0], world.mask_heads, world.mask_thresholds,
                        world.mask_slot_min_bytes, world.mask_forced, world.mask_largest_slot_min_bytes,
                        world.mask_largest_fragment_bytes, world.mask_all_fit, world.masks)
    totals = np.zeros(len(TOTALS))
    resolved = world.resolved
    for row in range(tallies[RESOLVED]):
        add_outcome(totals, resolved[row, _FINISHED] != 0.0, resolved[row, _MET], resolved[row, _ACCURACY],
                    resolved[row, _ENERGY_J], resolved[row, _REASON] == INFEASIBLE, world.accuracy_floor)
    clock = world.clock
    return (DONE, -1, rejected, totals[0], totals[1], totals[2], totals[3], totals[4], totals[5], tallies[ARRIVED],
            tallies[FINISHED_JOBS], tallies[FAILED_JOBS], tallies[INFEASIBLE_JOBS],
            clock[BACKGROUND_ENERGY_J] + clock[JOB_ENERGY_J], clock[TIME_S])


@numba.njit(cache=True)
def _refused(status, plan):
    """What :func:`step_kernel` returns when it did nothing: ``status`` and the plan it concerns."""
    return status, plan, False, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0, 0, 0.0, 0.0
