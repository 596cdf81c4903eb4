"""Arrival times of jobs: a Poisson process, or SplitPlace's Gaussian count per interval.

``interval_gaussian`` follows SplitPlace's workload generator: at each interval
``max(0, int(gauss(mean, std)))`` new jobs (``int`` truncates towards zero, so
a draw in (-1, 1) gives none); here they arrive at uniformly random times
within their interval (SplitPlace releases them all at the interval's start).
Times are drawn in batches for speed.
"""

from __future__ import annotations

import math
from bisect import bisect_right

import numpy as np

from envs.sim.types import ArrivalConfig

BATCH = 1024
"""Arrivals (or intervals) drawn at once."""


class ArrivalTimes:
    """The increasing arrival times of one episode, up to ``horizon_s``."""

    def __init__(self, config: ArrivalConfig, horizon_s: float, rng: np.random.Generator):
        self.config = config
        self._horizon_s = horizon_s
        self._rng = rng
        self._buffer: list[float] = []
        self._position = 0
        self._drawn_until_s = 0.0  # every arrival before this time is in the buffer or was returned

    def next_s(self) -> float:
        """The next arrival time, or ``math.inf`` once it would fall after the horizon."""
        times_s = self.take(1)
        return times_s[0] if times_s else math.inf

    def take(self, limit: int) -> list[float]:
        """The next arrival times, at most ``limit`` and at most the rest of one drawn batch (a batch is drawn
        first only if the last one is used up); an empty list once arrivals pass the horizon.  A run of
        calls returns (and draws) exactly what as many :meth:`next_s` calls would."""
        while self._position == len(self._buffer):
            if self._drawn_until_s > self._horizon_s:
                return []
            self._buffer = self._draw()
            self._position = 0
        start = self._position
        times_s = self._buffer[start: start + limit]
        if times_s[-1] > self._horizon_s:  # sorted: keep those up to the horizon, and end there
            times_s = times_s[: bisect_right(times_s, self._horizon_s)]
            self._buffer, self._position, self._drawn_until_s = [], 0, math.inf
            return times_s
        self._position = start + len(times_s)
        return times_s

    def _draw(self) -> list[float]:
        """The arrivals of the next batch, sorted; advances ``_drawn_until_s``."""
        config, rng = self.config, self._rng
        if config.process == "poisson":
            times_s = self._drawn_until_s + np.cumsum(rng.exponential(1.0 / config.rate_per_s, BATCH))
            self._drawn_until_s = float(times_s[-1])
            return times_s.tolist()
        first_interval = round(self._drawn_until_s / config.interval_s)
        counts = np.maximum(np.trunc(rng.normal(config.mean_per_interval, config.std_per_interval, BATCH)), 0)
        intervals = first_interval + np.repeat(np.arange(BATCH), counts.astype(np.int64))
        times_s = np.sort((intervals + rng.uniform(0.0, 1.0, intervals.size)) * config.interval_s)
        self._drawn_until_s = (first_interval + BATCH) * config.interval_s
        return times_s.tolist()
