"""Reward of EdgeSplit: what the jobs that finished or failed since the last step earned.

Per job (SplitPlace's per-task reward by default, Tuli et al., IEEE TMC 2022):

    sla_weight * [finished and response_time_s <= deadline_s]
  + accuracy_weight * accuracy_scale * max(0, accuracy - accuracy_floor)   (finished jobs only)
  - energy_weight * energy_j / energy_scale_j
  - infeasible_penalty * [failed with reason "infeasible"]

With the defaults (0.5, 0.5, 10, 0.9, 0, -, 0) this is
``0.5 * [met deadline] + 0.5 * 10 * max(0, accuracy - 0.9)``.  A step's reward is
the sum over the jobs resolved during that step; each part is reported in ``info``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields
from functools import partial
from typing import NamedTuple

import numba
import numpy as np

INFEASIBLE = "infeasible"
"""``JobOutcome.failure_reason`` of a job rejected because its action could not be run."""

TOTALS = ("finished", "failed", "met_deadline", "infeasible", "accuracy_above_floor", "energy_j")
"""Entries of the float64 totals of a step's outcomes (:func:`add_outcome`): job counts, the summed accuracy above
the floor of the finished jobs, the summed energy (J)."""
(_FINISHED, _FAILED, _MET, _INFEASIBLE, _ACCURACY, _ENERGY_J) = range(len(TOTALS))


@numba.njit(cache=True)
def add_outcome(totals, finished, met_deadline, accuracy, energy_j, infeasible, accuracy_floor):
    """Add one job's outcome to ``totals`` (:data:`TOTALS`)."""
    totals[_ENERGY_J] += energy_j
    if finished:
        totals[_FINISHED] += 1
        totals[_MET] += met_deadline
        totals[_ACCURACY] += max(0.0, accuracy - accuracy_floor)
    else:
        totals[_FAILED] += 1
        totals[_INFEASIBLE] += infeasible


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the reward parts (a scenario's ``reward:`` section)."""

    sla_weight: float = 0.5
    """reward of a job that finished within its deadline"""
    accuracy_weight: float = 0.5
    """weight of the accuracy bonus of a finished job"""
    accuracy_scale: float = 10.0
    """multiplier of the accuracy above the floor (SplitPlace: 10)"""
    accuracy_floor: float = 0.9
    """top-1 accuracy (fraction) below which a job earns no accuracy bonus"""
    energy_weight: float = 0.0
    """cost per ``energy_scale_j`` joules of the job's own energy (0: ignore energy)"""
    energy_scale_j: float = 1.0
    """joules that count as one unit of energy cost"""
    infeasible_penalty: float = 0.0
    """subtracted once per job rejected as infeasible (its SLA and accuracy parts are 0 anyway)"""

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"reward.{field.name} must be a finite number, got {value!r}")
        for name in ("sla_weight", "accuracy_weight", "accuracy_scale", "energy_weight", "infeasible_penalty"):
            if getattr(self, name) < 0:
                raise ValueError(f"reward.{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.accuracy_floor <= 1.0:
            raise ValueError(f"reward.accuracy_floor must be in [0, 1], got {self.accuracy_floor!r}")
        if self.energy_scale_j <= 0:
            raise ValueError(f"reward.energy_scale_j must be > 0, got {self.energy_scale_j!r}")


class RewardParts(NamedTuple):
    """The reward of one step, split into its parts, with the job counts behind it (a ``NamedTuple``:
    built every step, it costs a fraction of a frozen dataclass)."""

    sla: float = 0.0
    accuracy: float = 0.0
    energy: float = 0.0
    penalty: float = 0.0
    jobs_finished: int = 0
    jobs_failed: int = 0
    jobs_met_deadline: int = 0
    jobs_infeasible: int = 0

    @property
    def total(self) -> float:
        """sla + accuracy - energy - penalty."""
        return self.sla + self.accuracy - self.energy - self.penalty


def reward_parts(outcomes: Iterable, weights: RewardWeights) -> RewardParts:
    """Sum the reward parts over ``outcomes`` (``envs.sim`` JobOutcome objects)."""
    totals = np.zeros(len(TOTALS))
    for outcome in outcomes:
        add_outcome(totals, outcome.finished, outcome.met_deadline, outcome.accuracy, outcome.energy_j,
                    outcome.failure_reason == INFEASIBLE, weights.accuracy_floor)
    return parts_of_totals(totals.tolist(), weights)


def parts_of_totals(totals: list[float], weights: RewardWeights) -> RewardParts:
    """The reward parts of a step whose outcomes add up to ``totals`` (:data:`TOTALS`, as a list)."""
    finished, failed, met, infeasible, accuracy, energy_j = totals
    if finished == failed == 0:
        return _NOTHING
    return _new_parts((weights.sla_weight * met,  # RewardParts(sla, accuracy, energy, penalty, jobs_...)
                       weights.accuracy_weight * weights.accuracy_scale * accuracy,
                       weights.energy_weight * energy_j / weights.energy_scale_j,
                       weights.infeasible_penalty * infeasible,
                       int(finished), int(failed), int(met), int(infeasible)))


_NOTHING = RewardParts()
_new_parts = partial(tuple.__new__, RewardParts)
"""``_new_parts((sla, accuracy, ...))`` is ``RewardParts(sla, accuracy, ...)`` made in C (no Python ``__new__``)."""
