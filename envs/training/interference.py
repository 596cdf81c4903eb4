"""Latency-critical background tasks and how a training job sharing their device slows them down.

Deep-Edge's devices already run periodic latency-critical tasks.  A task is
released every ``period_s`` (first release at ``phase_s``), needs
``execution_s`` of the whole device when it runs alone, and must finish within
``deadline_s`` of its release.  Alone, the tasks of a device are taken to meet
their deadlines (they run one at a time; the generator keeps ``execution_s <=
deadline_s <= period_s``).

Sharing model (generalised processor sharing, documented approximation): while a
task and training are both runnable on a device, the task gets ``1 / (1 + w)``
of the device and training ``w / (1 + w)``, ``w`` = :data:`TRAINING_WEIGHT`
(1: equal shares, an OS scheduler's default for two runnable processes).  So

* a task released while training runs takes ``execution_s * (1 + w)``; it
  misses its deadline exactly when that exceeds ``deadline_s`` -- or when the
  tasks of the device no longer fit at all (``utilisation * (1 + w) > 1``:
  they fall behind without bound);
* training, being work-conserving, gets ``1 - min(u, 1 / (1 + w))`` of the
  device, ``u`` = the tasks' utilisation (sum of ``execution_s / period_s``):
  per-sample time is divided by that fraction.

Every release that falls inside an interval in which training computes on the
device is counted once per missing task; releases outside those intervals meet
their deadlines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TRAINING_WEIGHT = 1.0
"""Training's processor-sharing weight relative to one background task (1 = equal shares)."""


@dataclass(frozen=True)
class BackgroundTask:
    """A periodic latency-critical task of one device (seconds of the device running it alone)."""

    period_s: float
    execution_s: float
    deadline_s: float
    phase_s: float = 0.0  # time of the first release, seconds in [0, period_s)

    def __post_init__(self) -> None:
        for key in ("period_s", "execution_s", "deadline_s"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"BackgroundTask.{key} must be a finite number > 0, got {value!r}")
        if not self.execution_s <= self.deadline_s <= self.period_s:
            raise ValueError(f"BackgroundTask needs execution_s <= deadline_s <= period_s, got "
                             f"{self.execution_s}, {self.deadline_s}, {self.period_s}")
        if not 0.0 <= self.phase_s < self.period_s:
            raise ValueError(f"BackgroundTask.phase_s must be in [0, period_s), got {self.phase_s!r}")

    @property
    def utilisation(self) -> float:
        """Share of the device the task takes alone."""
        return self.execution_s / self.period_s

    @property
    def slack_s(self) -> float:
        """Seconds between finishing alone and the deadline."""
        return self.deadline_s - self.execution_s

    def releases_in(self, start_s: float, end_s: float) -> int:
        """Releases at times in ``[start_s, end_s)``."""
        if end_s <= start_s:
            return 0
        return math.ceil((end_s - self.phase_s) / self.period_s) - math.ceil((start_s - self.phase_s) / self.period_s)


def utilisation(tasks: Sequence[BackgroundTask]) -> float:
    """Share of the device the tasks take when running alone."""
    return sum(task.utilisation for task in tasks)


def training_share(tasks: Sequence[BackgroundTask], weight: float = TRAINING_WEIGHT) -> float:
    """Fraction of the device training gets beside ``tasks``: ``1 - min(u, 1 / (1 + w))``."""
    return 1.0 - min(utilisation(tasks), 1.0 / (1.0 + weight))


def misses_when_shared(tasks: Sequence[BackgroundTask], weight: float = TRAINING_WEIGHT) -> np.ndarray:
    """Per task, whether a release that meets training on the device misses its deadline."""
    overloaded = utilisation(tasks) * (1.0 + weight) > 1.0
    return np.array([overloaded or task.execution_s * (1.0 + weight) > task.deadline_s for task in tasks], dtype=bool)


def count_misses(tasks: Sequence[BackgroundTask], busy_intervals_s: Sequence[tuple[float, float]],
                 weight: float = TRAINING_WEIGHT) -> np.ndarray:
    """Per task, the deadlines it misses while training computes in ``busy_intervals_s`` (disjoint)."""
    missing = misses_when_shared(tasks, weight)
    counts = np.zeros(len(tasks), dtype=np.int64)
    for index, task in enumerate(tasks):
        if missing[index]:
            counts[index] = sum(task.releases_in(start_s, end_s) for start_s, end_s in busy_intervals_s)
    return counts
