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
The ``constant`` process needs no chunks: its per-node values are kept as plain
lists (:attr:`BackgroundLoad.constant_load`, :attr:`BackgroundLoad.constant_power_w`) for the hot paths.
"""

from __future__ import annotations

import numpy as np

from envs.cluster.energy import PowerModel
from envs.sim.types import BackgroundConfig

CHUNK_VALUES = 512
"""Node-intervals sampled at once: a chunk covers ``max(16, CHUNK_VALUES // nodes)`` intervals of all nodes."""


class _Chunk:
    """A run of sampled intervals, in the forms the simulator reads."""

    __slots__ = ("utilisation", "slowdown", "extra_power_w", "total_power_w")

    def __init__(self, utilisation: np.ndarray, power: PowerModel):
        power_w = power.power_w(utilisation)
        self.utilisation = utilisation  # (intervals, nodes), read-only
        self.utilisation.flags.writeable = False
        self.slowdown = (1.0 / (1.0 - utilisation)).tolist()  # [interval][node]: 1 / (1 - u)
        self.extra_power_w = (np.asarray(power.full_power_w) - power_w).tolist()  # [interval][node]: P(1) - P(u)
        self.total_power_w = power_w.sum(axis=1).tolist()  # [interval]: whole cluster at background load


class BackgroundLoad:
    """Lazily sampled background utilisation of every node, and the power it draws."""

    def __init__(self, config: BackgroundConfig, power: PowerModel, node_count: int):
        self.config = config
        self._power = power
        self._node_count = node_count
        self._interval_s = config.interval_s
        self._chunk_intervals = max(16, CHUNK_VALUES // node_count)
        self._chunk_span_s = config.interval_s * self._chunk_intervals
        self.constant_load: tuple[list[float], list[float]] | None = None
        """``constant`` process: per node (slowdown ``1 / (1 - u)``, extra watts ``P(1) - P(u)``); else None."""
        self.constant_power_w: float | None = None
        """``constant`` process: watts the whole cluster draws at its background load; else None."""
        self._constant: _Chunk | None = None  # ``constant`` process: its only interval

    def reset(self, rng: np.random.Generator) -> None:
        """Start a fresh realisation drawn from ``rng`` (used by this object only from now on)."""
        config, nodes = self.config, self._node_count
        self._rng = rng
        spread = rng.uniform(-config.node_spread, config.node_spread, nodes)
        self._node_mean = np.clip(config.mean_utilisation + spread, 0.0, config.max_utilisation)
        if config.process == "constant":  # one interval for all time (kept if the means did not change)
            if self._constant is None or not np.array_equal(self._constant.utilisation[0], self._node_mean):
                self._constant = _Chunk(self._node_mean[None, :].copy(), self._power)
                self.constant_load = (self._constant.slowdown[0], self._constant.extra_power_w[0])
                self.constant_power_w = self._constant.total_power_w[0]
            return
        stationary_std = config.ar1_noise / np.sqrt(1.0 - config.ar1_coefficient**2)
        self._ar1_state = rng.normal(0.0, 1.0, nodes) * stationary_std
        self._phase_s = rng.uniform(0.0, config.period_s, nodes)
        self._chunks: dict[int, _Chunk] = {}
        self._next_chunk = 0
        self._oldest_chunk = 0
        self._last_index = -1  # the chunk asked for last, and that chunk
        self._last_chunk: _Chunk | None = None

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

    def _chunk(self, index: int) -> _Chunk:
        if index == self._last_index:
            return self._last_chunk
        chunk = self._chunks.get(index)
        if chunk is None:
            if index < self._oldest_chunk:
                raise ValueError(f"background load before {self._oldest_chunk * self._chunk_span_s} s was forgotten")
            while self._next_chunk <= index:
                utilisation = self._sample(self._next_chunk * self._chunk_intervals)
                self._chunks[self._next_chunk] = _Chunk(utilisation, self._power)
                self._next_chunk += 1
            chunk = self._chunks[index]
        self._last_index, self._last_chunk = index, chunk
        return chunk

    def load(self, node: int, time_s: float) -> tuple[float, float]:
        """(slowdown ``1 / (1 - u)``, extra watts ``P(1) - P(u)`` of running a fragment) of ``node`` at ``time_s``."""
        if self._constant is not None:
            return self.constant_load[0][node], self.constant_load[1][node]
        chunk_index, row = divmod(int(time_s / self._interval_s), self._chunk_intervals)
        chunk = self._last_chunk if chunk_index == self._last_index else self._chunk(chunk_index)
        return chunk.slowdown[row][node], chunk.extra_power_w[row][node]

    def utilisation_vector(self, time_s: float) -> np.ndarray:
        """Background utilisation of every node at ``time_s`` (read-only: a view of internal state)."""
        if self._constant is not None:
            return self._constant.utilisation[0]
        chunk_index, row = divmod(int(time_s / self._interval_s), self._chunk_intervals)
        return self._chunk(chunk_index).utilisation[row]

    def energy_j(self, start_s: float, end_s: float) -> float:
        """Joules the whole cluster draws at its background utilisation over ``[start_s, end_s]``."""
        if self._constant is not None:
            return self.constant_power_w * (end_s - start_s)
        interval_s = self._interval_s
        first, last = int(start_s / interval_s), int(end_s / interval_s)
        if first == last:
            chunk_index, row = divmod(first, self._chunk_intervals)
            return self._chunk(chunk_index).total_power_w[row] * (end_s - start_s)
        energy_j = 0.0
        for interval in range(first, last + 1):
            overlap_s = min(end_s, (interval + 1) * interval_s) - max(start_s, interval * interval_s)
            if overlap_s > 0.0:
                chunk_index, row = divmod(interval, self._chunk_intervals)
                energy_j += self._chunk(chunk_index).total_power_w[row] * overlap_s
        return energy_j

    def forget_before(self, time_s: float) -> None:
        """Drop the chunks that end before ``time_s`` (no later query may ask about them)."""
        if self._constant is not None:
            return
        current = int(time_s / self._chunk_span_s)
        while self._oldest_chunk < current:
            self._chunks.pop(self._oldest_chunk, None)
            self._oldest_chunk += 1
