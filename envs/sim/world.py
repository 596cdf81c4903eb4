"""The simulator's arrays bundled into one object that compiled code takes as a single argument.

Handing numba forty arrays costs about 2.3 us per call, a fifth of a whole step;
handing it one :class:`World` (a numba ``StructRef`` holding the same arrays, not
copies) costs about 0.6 us.  A world only *refers* to arrays that the simulator's
parts own (node state, link tables, background load, failure times, memory
releases, outcomes, upcoming jobs, compiled plans) and the arrays the code on top
attached (:data:`COMPANION_FIELDS`): whatever compiled code writes through it is
what the parts see, and vice versa.  When a part replaces an array (it grew, or
sampled more), the simulator builds a new world (:func:`make_world`, a few
microseconds; :class:`WorldKeeper` builds it when next asked for).
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import numba
import numpy as np
from numba.core import types
from numba.experimental import structref

from envs.sim.types import NODE_VALUES

WORLD_FIELDS = (
    "state",  # (len(NODE_VALUES), nodes) float64: the node values, busy-until times absolute (envs.sim.engine)
    "steps_mbps", "cumulative_mbit", "link_index", "latency_s",  # Network.link_tables
    "seconds_per_reference_s",  # per node: 1 / speed factor
    "load",  # BackgroundLoad.load_table[0]
    "change_s", "change_count",  # FailureProcess.change_table (empty: no failures)
    "releases", "release_count",  # MemoryReleases
    "pending", "resolved", "tallies", "clock",  # OutcomeTable
    "params",  # float64 constants and slowly changing values: see PARAMS
    "library_index", "library_values", "library_finish_s", "library_layout", "library_accuracy",  # PlanLibrary
    "runs",  # (rows, RUN_FIELDS) scratch for the fragment runs of a library plan's job
    "upcoming", "upcoming_bandwidth", "upcoming_rows",  # jobs drawn ahead (rows of types.JOB_FIELDS), bandwidths
    "current",  # (len(JOB_FIELDS),) the job awaiting a decision
)
"""Fields of a :class:`World` that hold the simulator's arrays."""

_NO_FLAGS = np.zeros(0, dtype=bool)
EMPTY_COMPANION = {"plan_table": np.zeros((0, 0, 0), dtype=np.int64), "nvec": np.zeros(0, dtype=np.int64),
                   "app_index": np.zeros(0, dtype=np.int64), "accuracy_floor": 0.0, "node_factor": np.zeros(0),
                   "observation_scalars": np.zeros(0), "fastest_latency_s": np.zeros(0), "job_entries": np.zeros(0),
                   "mask_heads": np.zeros((0, 0, 0), dtype=bool), "mask_thresholds": np.zeros((0, 0)),
                   "mask_slot_min_bytes": np.zeros((0, 0)), "mask_forced": np.zeros((0, 0, 0), dtype=bool),
                   "mask_largest_slot_min_bytes": np.zeros(0), "mask_largest_fragment_bytes": np.zeros(0),
                   "mask_all_fit": np.zeros((0, 0), dtype=bool), "masks": _NO_FLAGS}
"""The companion fields of a bare simulator (:data:`COMPANION_FIELDS`)."""

COMPANION_FIELDS = tuple(EMPTY_COMPANION)
"""Fields of a :class:`World` that the code on top of the simulator fills (``ClusterSimulator.attach``): the
environment's action table, reward floor, observation constants and action-mask tables
(:class:`envs.step_kernel.StepArrays`).  A bare simulator's world has them empty, of the same types, so compiled
code is compiled once for both."""

PARAMS = ("step_s", "first_interval", "interval_s", "max_retries", "constant_power_w")
"""Entries of ``World.params``: the bandwidth step (s), the background table's first interval and interval length
(s), retries after a failure, the cluster's background draw when constant (W; NaN when it varies)."""
(STEP_S, FIRST_INTERVAL, INTERVAL_S, MAX_RETRIES, CONSTANT_POWER_W) = range(len(PARAMS))

LAYOUT = ("index_start", "index_end", "values_start", "values_end", "finish_start", "fragments", "family", "exits")
"""Columns of ``World.library_layout``, one row per library plan: where its CompiledPlan.index and .values lie in
the library's arrays, where its finish-time scratch starts, its fragment count, family code (FAMILY_CODES) and
whether it has early exits."""
(INDEX_START, INDEX_END, VALUES_START, VALUES_END, FINISH_START, FRAGMENTS, FAMILY, EXITS) = range(len(LAYOUT))

(QUEUED_ROW, UPLINK_BACKLOG_ROW, DOWNLINK_BACKLOG_ROW, UPLINK_ROW, DOWNLINK_ROW, FREE_MEMORY_ROW, BACKGROUND_ROW,
 UP_ROW) = range(len(NODE_VALUES))
"""Rows of ``World.state`` (:data:`~envs.sim.types.NODE_VALUES`)."""


@structref.register
class WorldType(types.StructRef):
    """The numba type of a :class:`World` (each field typed by the value it is built with)."""

    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(kind)) for name, kind in fields)


class World(structref.StructRefProxy):
    """The simulator's arrays as one argument for compiled code (see the module docstring)."""


structref.define_proxy(World, WorldType, list(WORLD_FIELDS + COMPANION_FIELDS))


@numba.njit(cache=True)
def _new_world(fields):
    """A world of ``fields`` (a tuple in field order), built by compiled code that is cached (``World(...)`` from
    Python would compile its constructor again in every process)."""
    return World(*fields)


def make_world(arrays: dict) -> World:
    """A world referring to ``arrays`` (one per name of :data:`WORLD_FIELDS` and :data:`COMPANION_FIELDS`); with
    ``NUMBA_DISABLE_JIT=1`` (the compiled functions run as plain Python) a plain namespace of them."""
    fields = WORLD_FIELDS + COMPANION_FIELDS
    if numba.config.DISABLE_JIT:
        return SimpleNamespace(**{name: arrays[name] for name in fields})
    return _new_world(tuple(arrays[name] for name in fields))


class WorldKeeper:
    """The current world of a simulator: built from ``arrays()`` when first asked for after :meth:`stale`."""

    def __init__(self, arrays: Callable[[], dict]):
        self._arrays = arrays
        self._world = None

    def __getstate__(self) -> dict:
        return {"_arrays": self._arrays, "_world": None}  # a world does not pickle; it is rebuilt when asked for

    def stale(self) -> None:
        """Some array was replaced: build a new world when next asked."""
        self._world = None

    def get(self) -> World:
        """The current world."""
        if self._world is None:
            self._world = make_world(self._arrays())
        return self._world
