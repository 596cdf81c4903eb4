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
from itertools import repeat

import numpy as np

from envs.sim.types import AppConfig, ArrivalConfig, Job, WorkloadConfig
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


class JobStream:
    """The jobs of one episode in arrival order, drawn from ``rng`` in batches."""

    def __init__(self, config: WorkloadConfig, horizon_s: float, rng: np.random.Generator):
        self.config = config
        self._rng = rng
        self._arrivals = ArrivalTimes(config.arrivals, horizon_s, rng)
        apps = config.apps
        weights = np.array([app.weight for app in apps])
        self._cumulative_weight = np.cumsum(weights) / weights.sum()
        self._steps = np.array([app.deadline_step_s for app in apps])
        stepped = self._steps > 0
        safe_steps = np.where(stepped, self._steps, 1.0)
        # stepped apps: deadline = step * (low + floor(u * count)); continuous ones: low + u * width
        self._low = np.where(stepped, np.ceil(np.array([a.deadline_min_s for a in apps]) / safe_steps - 1e-9),
                             [a.deadline_min_s for a in apps])
        high = np.where(stepped, np.floor(np.array([a.deadline_max_s for a in apps]) / safe_steps + 1e-9),
                        [a.deadline_max_s for a in apps])
        self._width = np.where(stepped, high - self._low + 1, high - self._low)
        self._stepped = stepped
        self._origins = np.asarray(config.origin_nodes)
        # per app, the fields of a Job that follow from its app
        self._app_names = np.array([app.name for app in apps], dtype=object)
        self._app_input_bytes = np.array([app.input_bytes for app in apps])
        self._app_items = np.array([app.items for app in apps])
        self._app_iterations = np.array([app.iterations for app in apps])
        self._batch_apps = self._batch_deadlines_s = self._batch_origins = np.empty(0, dtype=np.int64)  # drawn jobs
        self._position = 0
        self._next_id = 0

    def _draw_batch(self) -> None:
        rng = self._rng
        app = np.searchsorted(self._cumulative_weight, rng.uniform(0.0, 1.0, BATCH), side="right")
        app = np.minimum(app, len(self.config.apps) - 1)
        spread = rng.uniform(0.0, 1.0, BATCH) * self._width[app]
        self._batch_deadlines_s = np.where(self._stepped[app], (self._low[app] + np.floor(spread)) * self._steps[app],
                                           self._low[app] + spread)
        self._batch_origins = self._origins[rng.integers(0, len(self._origins), BATCH)]
        self._batch_apps = app
        self._position = 0

    def next_job(self) -> Job | None:
        """The next job, or ``None`` once arrivals pass the horizon."""
        jobs = self.next_jobs(1)
        return jobs[0] if jobs else None

    def next_jobs(self, count: int) -> list[Job]:
        """The next ``count`` jobs (fewer once arrivals pass the horizon): the same jobs, from the same
        draws, as ``count`` calls of :meth:`next_job`, built a batch at a time."""
        jobs: list[Job] = []
        while len(jobs) < count:
            left = len(self._batch_apps) - self._position
            arrivals_s = self._arrivals.take(min(count - len(jobs), left if left else BATCH))
            if not arrivals_s:
                break
            if not left:  # drawn after the arrival times, as next_job does
                self._draw_batch()
            start, end = self._position, self._position + len(arrivals_s)
            ids = range(self._next_id, self._next_id + len(arrivals_s))
            self._position, self._next_id = end, ids.stop
            app = self._batch_apps[start:end]
            fields = zip(ids, self._app_names[app].tolist(), arrivals_s, self._batch_deadlines_s[start:end].tolist(),
                         self._app_input_bytes[app].tolist(), self._batch_origins[start:end].tolist(),
                         self._app_items[app].tolist(), self._app_iterations[app].tolist(), repeat(False))
            jobs += map(tuple.__new__, repeat(Job), fields)  # Job(*fields), made in C
        return jobs
