"""The jobs of an episode: app mix, deadlines, batch sizes, origins; SplitPlace's workload.

A job picks its app with probability proportional to ``AppConfig.weight``, a
deadline uniformly in ``[deadline_min_s, deadline_max_s]`` (or uniformly among
the whole multiples of ``deadline_step_s`` in that range), and an origin node
uniformly among ``WorkloadConfig.origin_nodes``.

SplitPlace (Tuli et al., IEEE TMC 2022; figures read from its public code):
apps MNIST / FashionMNIST / CIFAR100 with shares 0.5 / 0.25 / 0.25, deadlines
uniform in {2..11}, {2..15}, {2..25} intervals, and ``int(gauss(1, 0.5))`` new
tasks per 300 s interval for 10 hosts (``gauss(5, 0.5)`` for 50 hosts).  The
helpers below take the interval length as an argument: a scenario whose jobs are
shorter than SplitPlace's real containers scales the interval down (and says so).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from envs.sim.types import (JOB_APP, JOB_ARRIVAL_S, JOB_DEADLINE_S, JOB_FIELDS, JOB_ID, JOB_INPUT_BYTES, JOB_ITEMS,
                            JOB_ITERATIONS, JOB_ORIGIN, JOB_TRAINING, AppConfig, ArrivalConfig, Job, WorkloadConfig,
                            job_of_row)
from envs.workload.arrivals import BATCH, ArrivalTimes

SPLITPLACE_INTERVAL_S = 300.0
"""Length of SplitPlace's scheduling interval, seconds."""

SPLITPLACE_APP_WEIGHTS = {"mnist": 0.5, "fashionmnist": 0.25, "cifar100": 0.25}
"""Share of arrivals per SplitPlace app."""

SPLITPLACE_DEADLINE_INTERVALS = {"mnist": (2, 11), "fashionmnist": (2, 15), "cifar100": (2, 25)}
"""Smallest and largest deadline per SplitPlace app, in intervals (uniform over the integers)."""

SPLITPLACE_ARRIVALS_PER_INTERVAL = {10: (1.0, 0.5), 50: (5.0, 0.5)}
"""Hosts -> (mean, std) of SplitPlace's Gaussian count of new tasks per interval."""


def splitplace_apps(input_bytes: Mapping[str, int], items: Mapping[str, int],
                    interval_s: float = SPLITPLACE_INTERVAL_S) -> tuple[AppConfig, ...]:
    """SplitPlace's three apps with their shares and deadline ranges, one interval = ``interval_s``.

    ``input_bytes`` and ``items`` map each app name (``"mnist"``, ``"fashionmnist"``,
    ``"cifar100"``) to one item's input size and the number of items per job.
    """
    missing = sorted(set(SPLITPLACE_APP_WEIGHTS) - set(input_bytes) | set(SPLITPLACE_APP_WEIGHTS) - set(items))
    if missing:
        raise ValueError(f"splitplace_apps: input_bytes and items need every app of {sorted(SPLITPLACE_APP_WEIGHTS)}; "
                         f"missing {missing}")
    return tuple(
        AppConfig(name=name, weight=weight, input_bytes=input_bytes[name],
                  deadline_min_s=SPLITPLACE_DEADLINE_INTERVALS[name][0] * interval_s,
                  deadline_max_s=SPLITPLACE_DEADLINE_INTERVALS[name][1] * interval_s,
                  deadline_step_s=interval_s, items=items[name])
        for name, weight in SPLITPLACE_APP_WEIGHTS.items()
    )


def splitplace_arrivals(hosts: int, interval_s: float = SPLITPLACE_INTERVAL_S) -> ArrivalConfig:
    """SplitPlace's per-interval Gaussian arrivals for a cluster of ``hosts`` (10 or 50)."""
    if hosts not in SPLITPLACE_ARRIVALS_PER_INTERVAL:
        raise ValueError(f"splitplace_arrivals: hosts must be one of {sorted(SPLITPLACE_ARRIVALS_PER_INTERVAL)}, "
                         f"got {hosts}")
    mean, std = SPLITPLACE_ARRIVALS_PER_INTERVAL[hosts]
    return ArrivalConfig(process="interval_gaussian", interval_s=interval_s, mean_per_interval=mean,
                         std_per_interval=std)


@dataclass(frozen=True)
class _AppTables:
    """Per app, what a drawn job's fields follow from (built once per workload configuration)."""

    cumulative_weight: np.ndarray  # normalised cumulative shares
    steps_s: np.ndarray  # deadline step, 0 for continuous deadlines
    stepped: np.ndarray  # bool: deadlines are whole multiples of the step
    low: np.ndarray  # stepped: the smallest multiple; else the smallest deadline
    width: np.ndarray  # stepped: the number of multiples; else the width of the deadline range
    input_bytes: np.ndarray
    items: np.ndarray
    iterations: np.ndarray

    @classmethod
    @lru_cache(maxsize=64)
    def of(cls, apps: tuple[AppConfig, ...]) -> _AppTables:
        """The tables of ``apps`` (cached: every episode of a configuration shares them; they are not written)."""
        weights = np.array([app.weight for app in apps])
        steps = np.array([app.deadline_step_s for app in apps])
        stepped = steps > 0
        safe_steps = np.where(stepped, steps, 1.0)
        # stepped apps: deadline = step * (low + floor(u * count)); continuous ones: low + u * width
        low = np.where(stepped, np.ceil(np.array([a.deadline_min_s for a in apps]) / safe_steps - 1e-9),
                       [a.deadline_min_s for a in apps])
        high = np.where(stepped, np.floor(np.array([a.deadline_max_s for a in apps]) / safe_steps + 1e-9),
                        [a.deadline_max_s for a in apps])
        return cls(cumulative_weight=np.cumsum(weights) / weights.sum(), steps_s=steps, stepped=stepped, low=low,
                   width=np.where(stepped, high - low + 1, high - low),
                   input_bytes=np.array([app.input_bytes for app in apps], dtype=float),
                   items=np.array([app.items for app in apps], dtype=float),
                   iterations=np.array([app.iterations for app in apps], dtype=float))


class JobStream:
    """The jobs of one episode in arrival order, drawn from ``rng`` in batches (their random draws a batch at a
    time, the jobs built as they are asked for)."""

    def __init__(self, config: WorkloadConfig, horizon_s: float, rng: np.random.Generator):
        self.config = config
        self._rng = rng
        self._arrivals = ArrivalTimes(config.arrivals, horizon_s, rng)
        self._tables = _AppTables.of(config.apps)
        self._origins = np.asarray(config.origin_nodes, dtype=float)
        self._app_names = tuple(app.name for app in config.apps)
        self._app_draws = self._deadline_draws = self._origin_draws = np.empty(0)  # of the drawn batch
        self._position = 0
        self._next_id = 0

    def _draw_batch(self) -> None:
        rng = self._rng
        self._app_draws = rng.uniform(0.0, 1.0, BATCH)
        self._deadline_draws = rng.uniform(0.0, 1.0, BATCH)
        self._origin_draws = rng.integers(0, len(self._origins), BATCH)
        self._position = 0

    def next_job(self) -> Job | None:
        """The next job, or ``None`` once arrivals pass the horizon."""
        jobs = self.next_jobs(1)
        return jobs[0] if jobs else None

    def next_jobs(self, count: int) -> list[Job]:
        """The next ``count`` jobs (fewer once arrivals pass the horizon): the same jobs, from the same
        draws, as ``count`` calls of :meth:`next_job`."""
        return [job_of_row(row, self._app_names) for row in self.next_table(count).tolist()]

    def next_table(self, count: int) -> np.ndarray:
        """The jobs of :meth:`next_jobs` as rows of :data:`~envs.sim.types.JOB_FIELDS` (app codes: indices into the
        workload's apps)."""
        chunks: list[np.ndarray] = []
        taken = 0
        while taken < count:
            left = len(self._app_draws) - self._position
            arrivals_s = self._arrivals.take(min(count - taken, left if left else BATCH))
            if not arrivals_s:
                break
            if not left:  # drawn after the arrival times, as next_job does
                self._draw_batch()
            chunks.append(self._chunk(arrivals_s))
            taken += len(arrivals_s)
        return np.concatenate(chunks) if len(chunks) > 1 else (chunks[0] if chunks else _NO_JOBS)

    def _chunk(self, arrivals_s: list[float]) -> np.ndarray:
        """The next jobs of the drawn batch, arriving at ``arrivals_s``, as rows of JOB_FIELDS."""
        tables, count = self._tables, len(arrivals_s)
        start, end = self._position, self._position + count
        app = np.searchsorted(tables.cumulative_weight, self._app_draws[start:end], side="right")
        app = np.minimum(app, len(self._app_names) - 1)
        spread = self._deadline_draws[start:end] * tables.width[app]
        rows = np.empty((count, len(JOB_FIELDS)))
        rows[:, JOB_ID] = np.arange(self._next_id, self._next_id + count)
        rows[:, JOB_APP] = app
        rows[:, JOB_ARRIVAL_S] = arrivals_s
        rows[:, JOB_DEADLINE_S] = np.where(tables.stepped[app],
                                           (tables.low[app] + np.floor(spread)) * tables.steps_s[app],
                                           tables.low[app] + spread)
        rows[:, JOB_INPUT_BYTES] = tables.input_bytes[app]
        rows[:, JOB_ORIGIN] = self._origins[self._origin_draws[start:end]]
        rows[:, JOB_ITEMS] = tables.items[app]
        rows[:, JOB_ITERATIONS] = tables.iterations[app]
        rows[:, JOB_TRAINING] = 0.0
        self._position, self._next_id = end, self._next_id + count
        return rows


_NO_JOBS = np.zeros((0, len(JOB_FIELDS)))
