"""Compiled plans packed into shared arrays, so that compiled code can pick a plan by its id.

The environment adds every plan an action may name (:meth:`PlanLibrary.add`); a
decision then names a plan by id and the compiled step reserves it from slices of
these arrays (:data:`~envs.sim.world.LAYOUT`), with no Python object per plan.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from envs.dnn.plan import SplitPlan
from envs.sim.compiled_plan import CompiledPlan
from envs.sim.outcomes import FAMILY_CODES
from envs.sim.world import EXITS, FAMILY, FRAGMENTS, LAYOUT


class PlanLibrary:
    """Plans by id, and their :class:`CompiledPlan` arrays back to back."""

    def __init__(self):
        self.compiled: list[CompiledPlan] = []
        """Compiled plan of each id."""
        self._ids: dict[int, int] = {}  # id(plan) -> library id
        self._pack()

    def add(self, plans: Sequence[SplitPlan]) -> list[int]:
        """The ids of ``plans``, adding those not in the library yet."""
        added = False
        for plan in plans:
            if id(plan) not in self._ids:
                self._ids[id(plan)] = len(self.compiled)
                self.compiled.append(CompiledPlan(plan))
                added = True
        if added:
            self._pack()
        return [self._ids[id(plan)] for plan in plans]

    @property
    def largest_fragment_count(self) -> int:
        """Fragments of the library's largest plan (0 when empty)."""
        return max((compiled.fragment_count for compiled in self.compiled), default=0)

    def _pack(self) -> None:
        """Lay the compiled plans out in the shared arrays (new arrays: the simulator's world must be rebuilt)."""
        compiled = self.compiled
        self.index = np.concatenate([c.index for c in compiled] or [np.zeros(0, dtype=np.int64)])
        """CompiledPlan.index of every plan, back to back."""
        self.values = np.concatenate([c.values for c in compiled] or [np.zeros(0)])
        """CompiledPlan.values of every plan, back to back."""
        self.finish_s = np.zeros(sum(c.fragment_count for c in compiled))
        """Scratch: the finish times of each plan's fragments (its slice)."""
        self.accuracy = np.array([c.plan.accuracy for c in compiled], dtype=float)
        """Expected accuracy of each plan."""
        self.layout = np.zeros((len(compiled), len(LAYOUT)), dtype=np.int64)
        """Where each plan lies in the arrays (rows of :data:`~envs.sim.world.LAYOUT`)."""
        sizes = np.array([(c.index.size, c.values.size, c.fragment_count) for c in compiled],
                         dtype=np.int64).reshape(-1, 3)
        ends = np.cumsum(sizes, axis=0)
        starts = ends - sizes
        self.layout[:, :5] = np.column_stack((starts[:, 0], ends[:, 0], starts[:, 1], ends[:, 1], starts[:, 2]))
        self.layout[:, FRAGMENTS] = [c.fragment_count for c in compiled]
        self.layout[:, FAMILY] = [FAMILY_CODES.index(c.plan.family) for c in compiled]
        self.layout[:, EXITS] = [c.chain is not None for c in compiled]
