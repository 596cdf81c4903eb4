"""What the EdgeSplit agent sees and may do: observation vectors, action masks, action codec.

Observation: one flat ``float32`` vector (layout in :class:`ObservationBuilder`).
Action: ``MultiDiscrete([len(FAMILIES), variants, nodes, nodes, ...])`` =
(split family, variant within the family, one node per fragment slot), see
:class:`ActionTable`.  Both are built from plain arrays so that a step stays cheap.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numba
import numpy as np
from gymnasium import spaces

from envs.dnn.plan import FAMILIES, SplitPlan

NODE_FEATURES = ("queued_work", "uplink_backlog", "downlink_backlog", "uplink", "downlink", "free_memory",
                 "background_utilisation", "up")
"""Per-node blocks of the observation, in order (the rows of ``envs.sim.types.NODE_VALUES``); each block has
one entry per node."""

JOB_FEATURES = ("deadline", "items", "input_size", "slack")
"""Job entries after the app one-hot, in order."""

TRAINING_JOB_FEATURES = ("training", "iterations")
"""Job entries after JOB_FEATURES, only in scenarios with training jobs: the job's kind and its size."""


SCALARS = ("times_size", "clipped_size", "clip", "time_factor", "items_factor", "input_factor", "iterations_factor",
           "training", "app_count")
"""Entries of the float64 array of constants the compiled observation code reads (:attr:`ObservationBuilder.scalars`):
node entries holding busy-until times, node entries clipped, the clip, the factors of the job entries (per
second, item, byte, iteration), whether the training entries exist, and the number of apps."""
(TIMES_SIZE, CLIPPED_SIZE, CLIP, TIME_FACTOR, ITEMS_FACTOR, INPUT_FACTOR, ITERATIONS_FACTOR, TRAINING,
 APP_COUNT) = range(len(SCALARS))


@numba.njit(cache=True)
def write_observation(state, time_s, node_factor, scalars, job_entries, out):
    """Write an observation into ``out`` (float32): the node values ``state`` (a simulator's
    :meth:`~envs.sim.engine.ClusterSimulator.synced_state`, busy-until times as absolute times in its first
    ``times_size`` entries, flattened row after row) as seconds from ``time_s`` floored at 0, times
    ``node_factor``, the first ``clipped_size`` entries clipped at ``clip`` (those three in ``scalars``:
    :data:`SCALARS`); then ``job_entries``."""
    times_size, clipped_size, clip = int(scalars[TIMES_SIZE]), int(scalars[CLIPPED_SIZE]), scalars[CLIP]
    values = state.ravel()
    for entry in range(values.size):
        value = (values[entry] - time_s if entry < times_size else values[entry]) * node_factor[entry]
        if entry < times_size and value < 0.0:  # a busy-until time that passed: nothing queued
            value = 0.0
        if entry < clipped_size and value > clip:
            value = clip
        out[entry] = value
    for entry in range(job_entries.size):
        out[values.size + entry] = job_entries[entry]


@numba.njit(cache=True)
def write_job_entries(entries, app, deadline_s, items, input_bytes, iterations, training, fastest_latency_s,
                      scalars):
    """Write the job entries of an observation (the app's one-hot, then JOB_FEATURES [, TRAINING_JOB_FEATURES])
    into ``entries``: of a job of app ``app`` (an index into the builder's apps; -1: no job, all entries 0) with
    ``deadline_s`` seconds, ``items`` items of ``input_bytes`` bytes, ``iterations`` passes, ``training`` (1 or 0);
    ``fastest_latency_s``: per app, its plans' smallest serial latency on the fastest node for one item."""
    entries[:] = 0.0
    if app < 0:
        return
    app_count, clip, time_factor = int(scalars[APP_COUNT]), scalars[CLIP], scalars[TIME_FACTOR]
    entries[app] = 1.0
    deadline = deadline_s * time_factor
    slack = (deadline_s - items * iterations * fastest_latency_s[app]) * time_factor
    entries[app_count] = deadline if deadline < clip else clip
    entries[app_count + 1] = items * scalars[ITEMS_FACTOR]
    entries[app_count + 2] = items * input_bytes * scalars[INPUT_FACTOR]
    entries[app_count + 3] = -clip if slack < -clip else (slack if slack < clip else clip)
    if scalars[TRAINING]:
        scaled_iterations = iterations * scalars[ITERATIONS_FACTOR]
        entries[app_count + 4] = training
        entries[app_count + 5] = scaled_iterations if scaled_iterations < clip else clip


@dataclass(frozen=True)
class ObservationScales:
    """How raw quantities are normalised (a scenario's ``observation:`` section)."""

    time_scale_s: float = 60.0
    """seconds that map to 1.0 (queued work, link backlogs, deadline, slack)"""
    bandwidth_scale_mbps: float = 100.0
    """Mbit/s that map to 1.0 (uplink, downlink)"""
    clip: float = 10.0
    """normalised times and bandwidths are clipped to [0, clip] (slack: [-clip, clip])"""
    iterations_scale: float = 100.0
    """mini-batch iterations that map to 1.0, clipped to [0, clip] (the job size; only with training jobs)"""

    def __post_init__(self) -> None:
        for name in ("time_scale_s", "bandwidth_scale_mbps", "clip", "iterations_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"observation.{name} must be a finite number > 0, got {value!r}")


class ObservationBuilder:
    """Builds the flat observation of the cluster's node values and the job waiting for a decision.

    Layout (``N`` nodes, ``A`` apps), every entry normalised:

    ======================  =====  ===============================================================
    slice                   size   entry
    ======================  =====  ===============================================================
    queued_work             N      seconds of reserved work not yet done / time_scale_s, [0, clip]
    uplink_backlog          N      seconds until the uplink is through its reserved transfers
                                   / time_scale_s, [0, clip]
    downlink_backlog        N      the same for the downlink
    uplink, downlink        N, N   current bandwidth (Mbit/s) / bandwidth_scale_mbps, [0, clip]
    free_memory             N      free bytes / largest usable memory of any node, [0, 1]
    background_utilisation  N      load of work that is not ours, [0, 1] (while ours runs, queued_work > 0)
    up                      N      1 if the node is up, else 0
    app                     A      one-hot of the job's app
    deadline                1      job deadline (s after arrival) / time_scale_s, [0, clip]
    items                   1      items of the job / largest items of any app, [0, 1]
    input_size              1      items x input bytes / largest of any app, [0, 1]
    slack                   1      optimistic slack / time_scale_s, [-clip, clip]
    training                1      with ``training``: 1 for a training job, 0 for an inference job
    iterations              1      with ``training``: the job's iterations / iterations_scale, [0, clip]
    ======================  =====  ===============================================================

    Optimistic slack (s) = deadline - items x iterations x (smallest serial
    reference latency of the app's plans) / fastest speed factor of the cluster:
    what is left of the deadline if the job ran alone on the fastest node with
    no transfers (a training job: its plans' latencies include the backward
    pass; no deadline: ``clip``).  The last two entries exist only when
    ``training`` is set (a scenario with training jobs); an inference job has 1
    iteration.  After the last job (episode truncated) the job entries are 0.
    """

    def __init__(
        self,
        apps: Sequence[str],
        app_serial_latency_s: Sequence[float],
        app_items: Sequence[int],
        app_input_bytes: Sequence[int],
        node_usable_memory_bytes: np.ndarray,
        fastest_speed_factor: float,
        scales: ObservationScales,
        training: bool = False,
    ):
        self.apps = tuple(apps)
        self.training = training
        self.node_count = n = len(node_usable_memory_bytes)
        self.scales = scales
        self._app_index = {app: i for i, app in enumerate(self.apps)}
        self.fastest_latency_s = np.array([latency / fastest_speed_factor for latency in app_serial_latency_s])
        """Per app: the smallest serial reference latency of its plans on the fastest node, seconds."""
        time_factor = 1.0 / scales.time_scale_s

        node_factor = {
            "queued_work": time_factor,
            "uplink_backlog": time_factor,
            "downlink_backlog": time_factor,
            "uplink": 1.0 / scales.bandwidth_scale_mbps,
            "downlink": 1.0 / scales.bandwidth_scale_mbps,
            "free_memory": 1.0 / max(float(np.max(node_usable_memory_bytes)), 1.0),
            "background_utilisation": 1.0,
            "up": 1.0,
        }
        self._node_size = len(NODE_FEATURES) * n
        self.node_factor = np.repeat([node_factor[f] for f in NODE_FEATURES], n)
        """Per node entry, the factor that normalises it (float64)."""
        self.job_size = len(self.apps) + len(JOB_FEATURES) + (len(TRAINING_JOB_FEATURES) if training else 0)
        """Entries of the job part (after the per-node blocks)."""
        self.size = self._node_size + self.job_size
        """Entries of an observation."""
        clipped_size = NODE_FEATURES.index("free_memory") * n  # times and bandwidths, clipped to `clip`
        self.scalars = np.zeros(len(SCALARS))
        """The constants of the compiled observation code (:data:`SCALARS`)."""
        self.scalars[[TIMES_SIZE, CLIPPED_SIZE, CLIP, TIME_FACTOR, ITEMS_FACTOR, INPUT_FACTOR, ITERATIONS_FACTOR,
                      TRAINING, APP_COUNT]] = (
            NODE_FEATURES.index("uplink") * n,  # queued work and link backlogs: floored at 0
            clipped_size, scales.clip, time_factor, 1.0 / max(app_items),
            1.0 / max(max(i * b for i, b in zip(app_items, app_input_bytes)), 1), 1.0 / scales.iterations_scale,
            training, len(self.apps))
        self.job_entries = np.zeros(self.job_size)
        """Scratch for the job entries (float64)."""
        low = np.zeros(self.size, dtype=np.float32)
        high = np.ones(self.size, dtype=np.float32)
        clip = np.float32(scales.clip)
        high[: clipped_size] = clip
        deadline = self._node_size + len(self.apps)
        slack = deadline + len(JOB_FEATURES) - 1
        high[deadline] = clip
        low[slack], high[slack] = -clip, clip
        if training:
            high[slack + 2] = clip  # iterations
        self.space = spaces.Box(low=low, high=high, dtype=np.float32)

    def node_slice(self, feature: str) -> slice:
        """Where the per-node block ``feature`` (one of NODE_FEATURES) lies in the observation."""
        start = NODE_FEATURES.index(feature) * self.node_count
        return slice(start, start + self.node_count)

    def build(self, simulator, job) -> np.ndarray:
        """A fresh observation of ``simulator`` (``envs.sim.engine.ClusterSimulator``: its node values now)
        and ``job`` (``Job`` or None)."""
        entries = self.job_entries
        if job is None:
            write_job_entries(entries, -1, 0.0, 1, 0, 1, False, self.fastest_latency_s, self.scalars)
        else:
            write_job_entries(entries, self._app_index[job.app], job.deadline_s, job.items, job.input_bytes,
                              job.iterations, job.training, self.fastest_latency_s, self.scalars)
        observation = np.empty(self.size, dtype=np.float32)
        write_observation(simulator.synced_state(), simulator.time_s, self.node_factor, self.scalars, entries,
                          observation)
        return observation


_ALL_UP = np.zeros(0, dtype=bool)
"""``up`` of :func:`write_masks` when every node is up."""

KEYED_SAMPLING_MAX_ENTRIES = 512
"""ActionTable.sample_valid: masks up to this size draw one random key per entry, larger ones draw per dimension."""


@numba.njit(cache=True)
def _largest_keys(keys, mask, key_rows, action):
    """Per action dimension (a row of ``key_rows``: indices into ``keys``), the position of its largest key, with
    1 added to the keys ``mask`` allows (indices past the mask: padding, key -1), into ``action``."""
    for dimension in range(key_rows.shape[0]):
        best, best_key = 0, -np.inf
        for position in range(key_rows.shape[1]):
            entry = key_rows[dimension, position]
            key = keys[entry] + mask[entry] if entry < mask.size else -1.0
            if key > best_key:  # the first largest, as argmax
                best, best_key = position, key
        action[dimension] = best


@numba.njit(cache=True)
def write_masks(app, free_memory_bytes, up, heads, thresholds, slot_min_bytes, forced, largest_slot_min_bytes,
                largest_fragment_bytes, all_fit, out):
    """Write the flat mask of :meth:`ActionTable.masks` for a job of app ``app`` (its index) into ``out``, from the
    nodes' free memory and ``up`` (nonzero: up; empty: every node is up) and the table's :class:`MaskTables` (the
    other arguments, indexed by app)."""
    nodes, slots, head_size = free_memory_bytes.size, slot_min_bytes.shape[1], heads.shape[2]
    if up.size == 0 and free_memory_bytes.min() >= largest_fragment_bytes[app]:
        out[:] = all_fit[app]  # the common case: every node has room for anything
        return
    roomiest_node, roomiest = 0, -np.inf
    for node in range(nodes):
        free = free_memory_bytes[node] if up.size == 0 or up[node] else -1.0
        if free > roomiest:  # the first largest, as argmax
            roomiest_node, roomiest = node, free
    level = 0  # thresholds at or below the roomiest node's free memory (they are sorted, padded with inf)
    while level < thresholds.shape[1] and thresholds[app, level] <= roomiest:
        level += 1
    out[:head_size] = heads[app, level]
    for slot in range(slots):
        start, allowed_any = head_size + slot * nodes, False
        for node in range(nodes):
            free = free_memory_bytes[node] if up.size == 0 or up[node] else -1.0
            allowed = free >= slot_min_bytes[app, slot] or forced[app, slot, node]
            out[start + node] = allowed
            allowed_any |= allowed
        if not allowed_any and roomiest < largest_slot_min_bytes[app]:  # fits nowhere: offer the roomiest up node
            out[start + roomiest_node] = True


class MaskTables(NamedTuple):
    """What :func:`write_masks` reads, one entry per app (padded to the largest app)."""

    heads: np.ndarray  # (apps, levels, families + variants) bool: the family and variant mask per level
    thresholds: np.ndarray  # (apps, levels - 1): sorted distinct family peaks (smallest over a family's plans of
    #                         its largest fragment, bytes); the level is how many the roomiest node holds; inf: pad
    slot_min_bytes: np.ndarray  # (apps, slots): smallest memory of that fragment slot over plans; inf if unused
    forced: np.ndarray  # (apps, slots, nodes) bool: node 0 of each slot no plan of the app uses
    largest_slot_min_bytes: np.ndarray  # (apps,): largest slot_min_bytes over used slots
    largest_fragment_bytes: np.ndarray  # (apps,): memory of the app's largest fragment, bytes
    all_fit: np.ndarray  # (apps, mask size) bool: the mask when every node is up with room for every fragment


@dataclass(frozen=True)
class _AppPlans:
    """The plans of one app, arranged for decoding, with its rows of the :class:`MaskTables`."""

    by_family: tuple[tuple[SplitPlan, ...], ...]  # plans per entry of FAMILIES
    index_of: Mapping[tuple[str, str, str], int]  # (model, family, variant) -> position within its family
    heads: np.ndarray  # (levels, families + variants)
    thresholds: np.ndarray  # (levels - 1,)
    slot_min_bytes: np.ndarray  # (slots,)
    forced: np.ndarray  # (slots, nodes)
    all_fit: np.ndarray  # (mask size,)


class ActionTable:
    """The action space, its masks, and decoding/encoding of actions.

    Action = ``[family, variant, node_0, ..., node_{F-1}]`` with ``family`` an
    index into ``FAMILIES``, ``variant`` an index into the job's app's plans of
    that family (taken modulo their number, so every variant index names a
    plan), and ``node_i`` the node of fragment ``i`` (slots past the plan's
    fragment count are ignored).

    Masks (what MaskablePPO takes: the per-dimension masks concatenated) are a
    per-dimension relaxation of feasibility, since MultiDiscrete masks cannot
    express combinations: a family is allowed when one of its plans has every
    fragment fitting on some up node; a variant index when it is below the plan
    count of an allowed family; a node for slot ``i`` when it is up and has free
    memory for the smallest fragment ``i`` among the app's plans.  A slot no
    plan of the app uses allows only node 0; a slot where nothing fits allows
    the up node with the most free memory.  If no family fits anywhere, every
    family with plans is allowed (the job will be rejected as infeasible).
    """

    def __init__(self, plans_by_app: Mapping[str, Sequence[SplitPlan]], node_count: int):
        if not plans_by_app:
            raise ValueError("ActionTable needs at least one app with plans")
        for app, plans in plans_by_app.items():
            if not plans:
                raise ValueError(f"app {app!r} has no split plans")
            unknown = sorted({p.family for p in plans} - set(FAMILIES))
            if unknown:
                raise ValueError(f"app {app!r}: unknown split families {unknown}; allowed: {list(FAMILIES)}")
        self.apps = tuple(plans_by_app)
        self.node_count = node_count
        self.fragment_slots = max(len(p.fragments) for plans in plans_by_app.values() for p in plans)
        self.variant_count = max(
            sum(p.family == family for p in plans) for plans in plans_by_app.values() for family in FAMILIES
        )
        self.space = spaces.MultiDiscrete(
            [len(FAMILIES), self.variant_count] + [node_count] * self.fragment_slots, dtype=np.int64
        )
        self._nvec = self.space.nvec.tolist()
        self._shape = (len(self._nvec),)
        self._head_size = len(FAMILIES) + self.variant_count
        self._mask_size = self._head_size + self.fragment_slots * node_count
        self._dimensions = len(self._nvec)
        self._nvec_array = np.array(self._nvec)
        self._offsets = np.concatenate(([0], np.cumsum(self._nvec)[:-1])).astype(np.int32)  # dimension starts
        # sample_valid: one key per mask entry; the keys laid out as one row per action dimension, padded with
        # the index past the mask (key -1)
        self._keys = np.zeros(self._mask_size)
        self._key_rows = np.full((self._dimensions, max(self._nvec)), self._mask_size)
        for row, (start, size) in enumerate(zip(self._offsets.tolist(), self._nvec)):
            self._key_rows[row, :size] = np.arange(start, start + size)
        self._offsets_list = self._offsets.tolist()
        self._apps = tuple(self._arrange(plans_by_app[app]) for app in self.apps)
        self._app_index = {app: i for i, app in enumerate(self.apps)}
        self._by_family = {app: table.by_family for app, table in zip(self.apps, self._apps)}
        self.mask_tables = self._mask_tables()
        """The masks' tables (:class:`MaskTables`)."""

    def _mask_tables(self) -> MaskTables:
        apps, levels = self._apps, max(len(table.heads) for table in self._apps)
        heads = np.zeros((len(apps), levels, self._head_size), dtype=bool)
        thresholds = np.full((len(apps), levels - 1), np.inf)
        for index, table in enumerate(apps):
            heads[index, : len(table.heads)] = table.heads
            thresholds[index, : table.thresholds.size] = table.thresholds
        slot_min = np.array([table.slot_min_bytes for table in apps])
        return MaskTables(heads=heads, thresholds=thresholds, slot_min_bytes=slot_min,
                          forced=np.array([table.forced for table in apps]),
                          largest_slot_min_bytes=np.where(np.isinf(slot_min), -np.inf, slot_min).max(axis=1),
                          largest_fragment_bytes=np.array([max(f.memory_bytes for group in table.by_family
                                                               for p in group for f in p.fragments)
                                                           for table in apps], dtype=float),
                          all_fit=np.array([table.all_fit for table in apps]))

    def _arrange(self, plans: Sequence[SplitPlan]) -> _AppPlans:
        by_family = tuple(tuple(p for p in plans if p.family == family) for family in FAMILIES)
        peaks = np.array([min((max(f.memory_bytes for f in p.fragments) for p in group), default=np.inf)
                          for group in by_family])
        counts = np.array([len(group) for group in by_family])
        thresholds = tuple(sorted(set(peaks[np.isfinite(peaks)].tolist())))
        heads = tuple(self._head(peaks, counts, roomiest) for roomiest in (-np.inf, *thresholds))
        slot_min = np.full(self.fragment_slots, np.inf)
        for plan in plans:
            memory = np.array([f.memory_bytes for f in plan.fragments], dtype=np.float64)
            slot_min[: memory.size] = np.minimum(slot_min[: memory.size], memory)
        forced = np.zeros((self.fragment_slots, self.node_count), dtype=bool)
        forced[np.isinf(slot_min), 0] = True
        index_of = {(p.model, p.family, p.variant): i for group in by_family for i, p in enumerate(group)}
        if len(index_of) != len(plans):
            raise ValueError(f"model {plans[0].model!r}: two plans share a (model, family, variant) name")
        all_fit = np.concatenate((heads[-1], forced.ravel() | np.isfinite(slot_min).repeat(self.node_count)))
        return _AppPlans(by_family=by_family, index_of=index_of, heads=np.array(heads),
                         thresholds=np.array(thresholds, dtype=float), slot_min_bytes=slot_min, forced=forced,
                         all_fit=all_fit)

    def _head(self, peaks: np.ndarray, counts: np.ndarray, roomiest: float) -> np.ndarray:
        """Family and variant mask when the up node with the most free memory has ``roomiest`` bytes."""
        has_plans = counts > 0
        family_ok = has_plans & (peaks <= roomiest)
        if not family_ok.any():
            family_ok = has_plans
        variant_ok = np.arange(self.variant_count) < counts[family_ok].max()
        return np.concatenate((family_ok, variant_ok))

    def plans(self, app: str) -> tuple[SplitPlan, ...]:
        """Every plan of ``app`` in action order (family, then variant)."""
        return tuple(p for group in self._apps[self._app_index[app]].by_family for p in group)

    def masks(self, app: str, free_memory_bytes: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
        """Flat boolean mask (family, variant, then node per slot) for a job of ``app``; a fresh array.

        ``free_memory_bytes`` and ``up`` (bool; None: every node is up) have one entry per node.
        """
        mask = np.empty(self._mask_size, dtype=bool)
        write_masks(self._app_index[app], free_memory_bytes, _ALL_UP if up is None else up, *self.mask_tables, mask)
        return mask

    def sample_valid(self, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A uniformly random action among those ``mask`` (from :meth:`masks`) allows, dimension by dimension
        (a dimension that allows nothing: uniform over all its values).

        Small masks draw one key per entry and take the largest allowed one per dimension.  Large ones (many
        nodes) draw each dimension uniformly over all its values and keep the draws that are allowed; a
        dimension whose draw is not draws again among its allowed values only (among all if none is), which
        gives every allowed value the chance ``1/n + (1 - a/n) / a = 1/a`` (``a`` allowed of ``n``).
        """
        if mask.size <= KEYED_SAMPLING_MAX_ENTRIES:
            rng.random(out=self._keys)
            action = np.empty(self._dimensions, dtype=np.int64)
            # allowed values draw from [1, 2), the others from [0, 1): the largest is uniform among the allowed ones
            _largest_keys(self._keys, mask, self._key_rows, action)
            return action
        action = (rng.random(self._dimensions) * self._nvec_array).astype(np.int64)  # floor(u n): 0..n-1
        refused = np.flatnonzero(~mask.take(self._offsets + action)).tolist()
        if refused:
            offsets, nvec = self._offsets_list, self._nvec
            for dimension, draw in zip(refused, rng.random(len(refused)).tolist()):
                allowed = mask[offsets[dimension]: offsets[dimension] + nvec[dimension]].nonzero()[0]
                action[dimension] = allowed[int(draw * allowed.size)] if allowed.size else int(draw * nvec[dimension])
        return action

    def as_array(self, action) -> np.ndarray:
        """``action`` as a C-contiguous int64 array of one entry per dimension (itself if it is one); a sequence of
        another length or of values that are not integers raises ``ValueError`` (values out of range are
        checked where it is decoded)."""
        if (type(action) is np.ndarray and action.dtype == np.int64 and action.shape == self._shape
                and action.flags.c_contiguous):
            return action
        return np.array(self._checked_values(action), dtype=np.int64)

    def _checked_values(self, action) -> list[int]:
        """``action`` as a list of ints, each in its dimension's range (else ``ValueError``)."""
        values = action.tolist() if isinstance(action, np.ndarray) else list(action)
        if (len(values) != len(self._nvec) or set(map(type, values)) != {int} or min(values) < 0
                or not all(map(operator.lt, values, self._nvec))):  # checks in C: cheaper than a loop
            raise ValueError(f"action {values!r} is not in {self.space}")
        return values

    def plan_groups(self, app: str) -> tuple[tuple[SplitPlan, ...], ...]:
        """The plans of ``app`` per entry of FAMILIES, in variant order."""
        return self._by_family[app]

    def decode(self, action, app: str) -> tuple[SplitPlan | None, tuple[int, ...]]:
        """(plan, node of each fragment) that ``action`` names for a job of ``app``.

        The plan is None (and the placement empty) when the app has no plan in the
        chosen family.  An action outside the action space raises ``ValueError``.
        """
        values = self._checked_values(action)
        group = self._by_family[app][values[0]]
        if not group:
            return None, ()
        plan = group[values[1] % len(group)]
        return plan, tuple(values[2: 2 + len(plan.fragments)])

    def encode(self, plan: SplitPlan, placement: Sequence[int], app: str) -> np.ndarray:
        """The action that runs ``plan`` (one of ``app``'s plans) with ``placement`` (one node per fragment).

        Slots past the plan's fragments are set to node 0.
        """
        table = self._apps[self._app_index[app]]
        key = (plan.model, plan.family, plan.variant)
        if key not in table.index_of:
            raise ValueError(f"plan {key} is not a plan of app {app!r}")
        if len(placement) != len(plan.fragments):
            raise ValueError(f"placement needs {len(plan.fragments)} nodes (one per fragment), got {len(placement)}")
        if any(not 0 <= node < self.node_count for node in placement):
            raise ValueError(f"placement {tuple(placement)} has a node outside 0..{self.node_count - 1}")
        padding = [0] * (self.fragment_slots - len(placement))
        return np.array([FAMILIES.index(plan.family), table.index_of[key], *placement, *padding], dtype=np.int64)
