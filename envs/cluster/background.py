"""Background load: utilisation of each node by work that is not ours.

Deep-Edge's devices already run latency-critical tasks; here that load is a
per-node utilisation ``u`` in ``[0, max_utilisation]``, piecewise constant over
intervals of ``BackgroundConfig.interval_s`` on a grid shared by all nodes.
Processes (``BackgroundConfig.process``):

* ``constant``: ``u`` = the node's mean;
* ``ar1``: ``u_k = clip(mean + x_k)``, ``x_k = phi x_(k-1) + noise * N(0, 1)``,
  started from its stationary distribution;
* ``periodic``: the node's mean, plus ``burst_utilisation`` during the first
  ``burst_s`` of every ``period_s`` (each node with its own random phase),
  judged at the middle of each interval.

Node means are ``mean_utilisation`` plus a uniform draw in ``+-node_spread``.
Intervals are sampled lazily, a chunk of intervals (:data:`CHUNK_VALUES`) for
all nodes at a time, so the values do not depend on the order of queries;
chunks wholly in the past are dropped (:meth:`BackgroundLoad.forget_before`).
The sampled intervals are kept as one table, which the scheduler's compiled pass
reads through :func:`load_at` (:attr:`BackgroundLoad.load_table`); the
``constant`` process has a table of one row for all time.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from envs.cluster.energy import PowerModel
from envs.sim.types import BackgroundConfig

CHUNK_VALUES = 512
"""Node-intervals sampled at once: a chunk covers ``max(16, CHUNK_VALUES // nodes)`` intervals of all nodes."""

LOAD_SAMPLED, LOAD_NOT_SAMPLED, LOAD_FORGOTTEN = range(3)
"""What :func:`load_at` found: the interval's values, an interval not sampled yet, one already dropped."""


@numba.njit(cache=True)
def load_at(load, first_interval, interval_s, node, time_s):
    """``(LOAD_SAMPLED, slowdown 1 / (1 - u), extra watts P(1) - P(u))`` of ``node`` at ``time_s`` from a
    :attr:`BackgroundLoad.load_table` ``(load, first_interval, interval_s)``; ``(LOAD_NOT_SAMPLED | LOAD_FORGOTTEN,
    0, 0)`` when the table does not hold that interval."""
    row = int(time_s / interval_s) - first_interval
    if row < 0:
        return LOAD_FORGOTTEN, 0.0, 0.0
    if row >= load.shape[1]:
        return LOAD_NOT_SAMPLED, 0.0, 0.0
    return LOAD_SAMPLED, load[0, row, node], load[1, row, node]


class BackgroundLoad:
    """Lazily sampled background utilisation of every node, and the power it draws."""

    def __init__(self, config: BackgroundConfig, power: PowerModel, node_count: int):
        self.config = config
        self._power = power
        self._node_count = node_count
        self._interval_s = config.interval_s
        self._chunk_intervals = max(16, CHUNK_VALUES // node_count)
        self._chunk_span_s = config.interval_s * self._chunk_intervals
        self.is_constant = config.process == "constant"
        """Whether the load is the same at all times (the ``constant`` process)."""
        self.constant_power_w: float | None = None
        """``constant`` process: watts the whole cluster draws at its background load; else None."""

    def reset(self, rng: np.random.Generator) -> bool:
        """Start a fresh realisation drawn from ``rng`` (used by this object only from now on); returns whether the
        :attr:`load_table` was replaced."""
        config, nodes = self.config, self._node_count
        self._rng = rng
        spread = rng.uniform(-config.node_spread, config.node_spread, nodes)
        self._node_mean = np.clip(config.mean_utilisation + spread, 0.0, config.max_utilisation)
        if self.is_constant:  # one interval for all time (kept if the means did not change)
            if self.constant_power_w is None or not np.array_equal(self._utilisation[0], self._node_mean):
                self._clear()
                self._append(self._node_mean[None, :].copy())
                self.constant_power_w = self._total_power_w[0]
                return True
            return False
        self._clear()
        stationary_std = config.ar1_noise / np.sqrt(1.0 - config.ar1_coefficient**2)
        self._ar1_state = rng.normal(0.0, 1.0, nodes) * stationary_std
        self._phase_s = rng.uniform(0.0, config.period_s, nodes)
        return True

    def _clear(self) -> None:
        """No interval sampled."""
        nodes = self._node_count
        self._utilisation = np.empty((0, nodes))  # (intervals, nodes): the sampled intervals from _first_interval on
        self._load = np.empty((2, 0, nodes))  # [0]: slowdown 1 / (1 - u), [1]: extra watts P(1) - P(u)
        self._total_power_w: list[float] = []  # per interval: the whole cluster at background load, watts
        self._first_interval = self._next_interval = 0

    @property
    def load_table(self) -> tuple[np.ndarray, int, float]:
        """What :func:`load_at` reads: ``(load, first interval, interval_s)``, ``load`` of shape ``(2, intervals,
        nodes)`` (slowdowns, then extra watts) for the sampled intervals from the first on (``constant``: one row
        and an infinite interval).  Call :meth:`sample_chunk` when it does not reach far enough."""
        return self._load, self._first_interval, math.inf if self.is_constant else self._interval_s

    def _sample(self, first_interval: int) -> np.ndarray:
        """Utilisation of the intervals of the next chunk, shape (intervals, nodes)."""
        config = self.config
        if config.process == "ar1":
            from scipy.signal import lfilter  # imported on first use: costs 1-3 s in a fresh worker process

            noise = self._rng.normal(0.0, config.ar1_noise, (self._chunk_intervals, self._node_count))
            phi = config.ar1_coefficient
            deviation, _ = lfilter([1.0], [1.0, -phi], noise, axis=0, zi=(phi * self._ar1_state)[None, :])
            self._ar1_state = deviation[-1]
            values = self._node_mean + deviation
        else:
            middles_s = (first_interval + np.arange(self._chunk_intervals) + 0.5) * config.interval_s
            in_burst = np.mod(middles_s[:, None] + self._phase_s[None, :], config.period_s) < config.burst_s
            values = self._node_mean + config.burst_utilisation * in_burst
        return np.clip(values, 0.0, config.max_utilisation)

    def _append(self, utilisation: np.ndarray) -> None:
        """Add sampled intervals ``(intervals, nodes)`` after the last sampled one."""
        power_w = self._power.power_w(utilisation)
        load = np.stack((1.0 / (1.0 - utilisation), np.asarray(self._power.full_power_w) - power_w))
        self._utilisation = np.concatenate((self._utilisation, utilisation))
        self._utilisation.flags.writeable = False
        self._load = np.concatenate((self._load, load), axis=1)
        self._total_power_w += power_w.sum(axis=1).tolist()
        self._next_interval += len(utilisation)

    def sample_chunk(self) -> None:
        """Sample the next chunk of intervals (a no-op for the ``constant`` process)."""
        if not self.is_constant:
            self._append(self._sample(self._next_interval))

    def _row(self, interval: int) -> int:
        """The table row of ``interval``, sampling chunks up to it."""
        if self.is_constant:
            return 0
        if interval < self._first_interval:
            raise ValueError(f"background load before {self._first_interval * self._interval_s} s was forgotten")
        while interval >= self._next_interval:
            self.sample_chunk()
        return interval - self._first_interval

    def utilisation_vector(self, time_s: float) -> np.ndarray:
        """Background utilisation of every node at ``time_s`` (read-only: a view of internal state)."""
        row = self._row(int(time_s / self._interval_s))  # may sample: before the table is read
        return self._utilisation[row]

    def energy_j(self, start_s: float, end_s: float) -> float:
        """Joules the whole cluster draws at its background utilisation over ``[start_s, end_s]``."""
        if self.is_constant:
            return self.constant_power_w * (end_s - start_s)
        interval_s = self._interval_s
        first, last = int(start_s / interval_s), int(end_s / interval_s)
        if first == last:
            row = self._row(first)
            return self._total_power_w[row] * (end_s - start_s)
        energy_j = 0.0
        for interval in range(first, last + 1):
            overlap_s = min(end_s, (interval + 1) * interval_s) - max(start_s, interval * interval_s)
            if overlap_s > 0.0:
                row = self._row(interval)
                energy_j += self._total_power_w[row] * overlap_s
        return energy_j

    @property
    def sampled_intervals(self) -> int:
        """Intervals held in memory (sampled and not yet dropped)."""
        return self._next_interval - self._first_interval

    def forget_before(self, time_s: float) -> bool:
        """Drop the chunks that end before ``time_s`` (no later query may ask about them); returns whether the
        :attr:`load_table` changed."""
        if self.is_constant:
            return False
        first = min(int(time_s / self._chunk_span_s) * self._chunk_intervals, self._next_interval)
        if first <= self._first_interval:
            return False
        drop = first - self._first_interval
        self._utilisation, self._load = self._utilisation[drop:], self._load[:, drop:].copy()  # contiguous
        del self._total_power_w[:drop]
        self._first_interval = first
        return True
