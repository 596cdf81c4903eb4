"""Split-learning jobs beside the inference jobs: their own Poisson stream, merged in arrival order.

:class:`TrainingJobStream` draws the training jobs of ``WorkloadConfig.training``
(:class:`~envs.sim.types.TrainingJobsConfig`) from its own random stream, so the
inference jobs of an episode are the same with or without them;
:class:`MergedJobStream` hands out both in arrival order and numbers them from 0.
"""

from __future__ import annotations

import math

import numpy as np

from envs.sim.types import JOB_ARRIVAL_S, JOB_FIELDS, ArrivalConfig, Job, WorkloadConfig
from envs.training.jobs import SplitLearningJob
from envs.workload.arrivals import ArrivalTimes

PENDING_JOBS = 64
"""Jobs :class:`MergedJobStream` draws from a stream at a time."""


class TrainingJobStream:
    """The training jobs of one episode in arrival order, drawn from ``rng`` (job ids from 0)."""

    def __init__(self, workload: WorkloadConfig, horizon_s: float, rng: np.random.Generator):
        config = workload.training
        if config is None:
            raise ValueError("TrainingJobStream needs WorkloadConfig.training (a TrainingJobsConfig), got None")
        self.config = config
        self._rng = rng
        self._arrivals = ArrivalTimes(ArrivalConfig(process="poisson", rate_per_s=config.rate_per_s), horizon_s, rng)
        weights = np.array(config.weights, dtype=float)
        self._cumulative_weight = np.cumsum(weights) / weights.sum()
        self._origins = np.asarray(workload.origin_nodes)
        self._next_id = 0

    def next_jobs(self, count: int) -> list[Job]:
        """The next training jobs, at most ``count`` (fewer at the end of a drawn batch of arrival times);
        an empty list once arrivals pass the horizon."""
        arrivals_s = self._arrivals.take(count)
        size = len(arrivals_s)
        if not size:
            return []
        config, rng = self.config, self._rng
        apps = np.minimum(np.searchsorted(self._cumulative_weight, rng.random(size), side="right"),
                          len(config.apps) - 1).tolist()
        samples = rng.integers(config.samples[0], config.samples[1], size, endpoint=True).tolist()
        epochs = rng.integers(config.epochs[0], config.epochs[1], size, endpoint=True).tolist()
        origins = self._origins[rng.integers(0, len(self._origins), size)].tolist()
        deadlines_s = (rng.uniform(config.deadline_s[0], config.deadline_s[1], size).tolist()
                       if config.deadline_s is not None else [math.inf] * size)
        jobs = []
        for arrival_s, app, job_samples, job_epochs, origin, deadline_s in zip(
                arrivals_s, apps, samples, epochs, origins, deadlines_s):
            name = config.apps[app]
            iterations = SplitLearningJob(name, job_samples, job_epochs, config.batch_size).iterations
            jobs.append(Job(self._next_id, name, arrival_s, deadline_s, config.sample_bytes[app], origin,
                            config.batch_size, iterations, True))
            self._next_id += 1
        return jobs


class MergedJobStream:
    """The jobs of several streams (each with ``next_jobs(count)``) in one arrival order, numbered from 0
    in that order; on equal arrival times the earlier stream goes first."""

    def __init__(self, apps: tuple[str, ...], *streams):
        self._app_code = {app: code for code, app in enumerate(apps)}
        self._streams = streams
        self._pending: list[list[Job]] = [[] for _ in streams]  # drawn, not handed out; the next one last
        self._next_id = 0

    def _head(self, index: int) -> Job | None:
        pending = self._pending[index]
        if not pending:
            pending.extend(reversed(self._streams[index].next_jobs(PENDING_JOBS)))
        return pending[-1] if pending else None

    def next_jobs(self, count: int) -> list[Job]:
        """The next ``count`` jobs (fewer once every stream's arrivals pass the horizon)."""
        jobs: list[Job] = []
        while len(jobs) < count:
            heads = [(job.arrival_s, index) for index in range(len(self._streams))
                     if (job := self._head(index)) is not None]
            if not heads:
                break
            job = self._pending[min(heads)[1]].pop()
            jobs.append(job._replace(job_id=self._next_id))
            self._next_id += 1
        return jobs

    def next_table(self, count: int) -> np.ndarray:
        """The jobs of :meth:`next_jobs` as rows of :data:`~envs.sim.types.JOB_FIELDS`, app codes indices into
        ``apps``."""
        code = self._app_code
        rows = [(job.job_id, code[job.app], *job[JOB_ARRIVAL_S:]) for job in self.next_jobs(count)]
        return np.array(rows, dtype=float).reshape(len(rows), len(JOB_FIELDS))
