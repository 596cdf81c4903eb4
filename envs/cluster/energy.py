"""Power draw of the nodes as a function of utilisation (their devices' power curves).

Energy bookkeeping of the simulator (documented in ``docs/simulator.md``):
every node draws ``P(u_background(t))`` at all times; while it runs one of our
fragments it is at utilisation 1, so a fragment of duration ``d`` that starts
when the background is ``u`` adds ``d * (P(1) - P(u))`` joules.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from envs.cluster.devices import DeviceType


class PowerModel:
    """Piecewise-linear power curves of ``devices`` (node i = devices[i]), vectorised over nodes."""

    def __init__(self, devices: Sequence[DeviceType]):
        curves = [device.power_curve_w for device in devices]
        lengths = {len(curve) for curve in curves}
        if len(lengths) != 1 or min(lengths) < 2:
            raise ValueError(f"power curves must all have the same number (>= 2) of points, got lengths {lengths}")
        self._curves_w = np.array(curves, dtype=np.float64)  # (nodes, points), points equally spaced over [0, 1]
        self._segments = self._curves_w.shape[1] - 1
        self._nodes = np.arange(len(curves))
        self.full_power_w: list[float] = self._curves_w[:, -1].tolist()
        """Draw of each node at utilisation 1, watts."""

    def power_w(self, utilisation: np.ndarray) -> np.ndarray:
        """Watts of every node at ``utilisation`` (shape ``(..., nodes)``, values in [0, 1])."""
        position = np.clip(utilisation, 0.0, 1.0) * self._segments
        lower = np.minimum(position.astype(np.int64), self._segments - 1)
        below = self._curves_w[self._nodes, lower]
        above = self._curves_w[self._nodes, lower + 1]
        return below + (position - lower) * (above - below)
