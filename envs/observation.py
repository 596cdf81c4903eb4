"""What the EdgeSplit agent sees and may do: observation vectors, action masks, action codec.

Observation: one flat ``float32`` vector (layout in :class:`ObservationBuilder`).
Action: ``MultiDiscrete([len(FAMILIES), variants, nodes, nodes, ...])`` =
(split family, variant within the family, one node per fragment slot), see
:class:`ActionTable`.  Both are built from plain arrays so that a step stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from envs.dnn.plan import FAMILIES, ORIGIN, Fragment, SplitPlan, Transfer

NODE_FEATURES = ("queued_work", "utilisation", "free_memory", "up", "uplink", "downlink")
"""Per-node blocks of the observation, in order; each block has one entry per node."""

JOB_FEATURES = ("deadline", "items", "input_size", "slack")
"""Job entries after the app one-hot, in order."""


@dataclass(frozen=True)
class ObservationScales:
    """How raw quantities are normalised (a scenario's ``observation:`` section)."""

    time_scale_s: float = 60.0
    """seconds that map to 1.0 (queued work, deadline, slack)"""
    bandwidth_scale_mbps: float = 100.0
    """Mbit/s that map to 1.0 (uplink, downlink)"""
    clip: float = 10.0
    """normalised times and bandwidths are clipped to [0, clip] (slack: [-clip, clip])"""

    def __post_init__(self) -> None:
        for name in ("time_scale_s", "bandwidth_scale_mbps", "clip"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"observation.{name} must be a finite number > 0, got {value!r}")


class ObservationBuilder:
    """Builds the flat observation of a cluster snapshot and the job waiting for a decision.

    Layout (``N`` nodes, ``A`` apps), every entry normalised:

    ======================  =====  ===============================================================
    slice                   size   entry
    ======================  =====  ===============================================================
    queued_work             N      seconds of reserved work not yet done / time_scale_s, [0, clip]
    utilisation             N      background + our work, [0, 1]
    free_memory             N      free bytes / largest usable memory of any node, [0, 1]
    up                      N      1 if the node is up, else 0
    uplink, downlink        N, N   current bandwidth (Mbit/s) / bandwidth_scale_mbps, [0, clip]
    app                     A      one-hot of the job's app
    deadline                1      job deadline (s after arrival) / time_scale_s, [0, clip]
    items                   1      items of the job / largest items of any app, [0, 1]
    input_size              1      items x input bytes / largest of any app, [0, 1]
    slack                   1      optimistic slack / time_scale_s, [-clip, clip]
    ======================  =====  ===============================================================

    Optimistic slack (s) = deadline - items x (smallest serial reference latency
    of the app's plans) / fastest speed factor of the cluster: what is left of
    the deadline if the job ran alone on the fastest node with no transfers.
    After the last job (episode truncated) the job entries are 0.
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
    ):
        self.apps = tuple(apps)
        self.node_count = n = len(node_usable_memory_bytes)
        self.scales = scales
        self._app_index = {app: i for i, app in enumerate(self.apps)}
        self._fastest_latency_s = [latency / fastest_speed_factor for latency in app_serial_latency_s]
        self._time_factor = 1.0 / scales.time_scale_s
        self._items_factor = 1.0 / max(app_items)
        self._input_factor = 1.0 / max(max(i * b for i, b in zip(app_items, app_input_bytes)), 1)
        self._one_hot = [[float(i == j) for j in range(len(self.apps))] for i in range(len(self.apps))]
        self._no_job = [0.0] * (len(self.apps) + len(JOB_FEATURES))

        node_factor = {
            "queued_work": self._time_factor,
            "utilisation": 1.0,
            "free_memory": 1.0 / max(float(np.max(node_usable_memory_bytes)), 1.0),
            "up": 1.0,
            "uplink": 1.0 / scales.bandwidth_scale_mbps,
            "downlink": 1.0 / scales.bandwidth_scale_mbps,
        }
        job_size = len(self.apps) + len(JOB_FEATURES)
        self._factor = np.concatenate([np.full(n, node_factor[f]) for f in NODE_FEATURES] + [np.ones(job_size)])
        self._factor = self._factor.astype(np.float32)
        size = self._factor.size
        low = np.zeros(size, dtype=np.float32)
        high = np.ones(size, dtype=np.float32)
        clip = np.float32(scales.clip)
        for feature in ("queued_work", "uplink", "downlink"):
            high[self.node_slice(feature)] = clip
        deadline, _, _, slack = range(size - len(JOB_FEATURES), size)
        high[deadline] = clip
        low[slack], high[slack] = -clip, clip
        self.space = spaces.Box(low=low, high=high, dtype=np.float32)
        self._low, self._high = low, high

    def node_slice(self, feature: str) -> slice:
        """Where the per-node block ``feature`` (one of NODE_FEATURES) lies in the observation."""
        start = NODE_FEATURES.index(feature) * self.node_count
        return slice(start, start + self.node_count)

    def build(self, snapshot, job) -> np.ndarray:
        """A fresh observation for ``snapshot`` (``ClusterSnapshot``) and ``job`` (``Job`` or None)."""
        if job is None:
            job_entries = self._no_job
        else:
            app = self._app_index[job.app]
            time_factor = self._time_factor
            slack_s = job.deadline_s - job.items * self._fastest_latency_s[app]
            job_entries = self._one_hot[app] + [
                job.deadline_s * time_factor,
                job.items * self._items_factor,
                job.items * job.input_bytes * self._input_factor,
                slack_s * time_factor,
            ]
        observation = np.concatenate(
            (snapshot.queued_work_s, snapshot.utilisation, snapshot.free_memory_bytes, snapshot.up,
             snapshot.uplink_mbps, snapshot.downlink_mbps, job_entries),
            dtype=np.float32,
        )
        observation *= self._factor
        return observation.clip(self._low, self._high, out=observation)


@dataclass(frozen=True)
class _AppPlans:
    """The plans of one app, arranged for fast masks and decoding."""

    by_family: tuple[tuple[SplitPlan, ...], ...]  # plans per entry of FAMILIES
    family_min_peak_bytes: np.ndarray  # per family: smallest (over plans) largest fragment memory; inf if none
    plan_counts: np.ndarray  # per family: number of plans
    slot_min_bytes: np.ndarray  # per fragment slot: smallest memory of that fragment over plans; inf if unused
    unused_slots: np.ndarray  # per fragment slot: no plan of the app has this fragment
    largest_fragment_bytes: int  # memory of the app's largest fragment
    all_fit_mask: np.ndarray  # the mask when every node is up with room for every fragment
    index_of: Mapping[tuple[str, str, str], int]  # (model, family, variant) -> position within its family


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
        self._all_up = np.ones(node_count, dtype=bool).tobytes()
        self._variant_positions = np.arange(self.variant_count)
        self._apps = tuple(self._arrange(plans_by_app[app]) for app in self.apps)
        self._app_index = {app: i for i, app in enumerate(self.apps)}
        self._unavailable = tuple(unavailable_plan(family) for family in FAMILIES)

    def _arrange(self, plans: Sequence[SplitPlan]) -> _AppPlans:
        by_family = tuple(tuple(p for p in plans if p.family == family) for family in FAMILIES)
        peak = [min((max(f.memory_bytes for f in p.fragments) for p in group), default=np.inf)
                for group in by_family]
        slot_min = np.full(self.fragment_slots, np.inf)
        for plan in plans:
            memory = np.array([f.memory_bytes for f in plan.fragments], dtype=np.float64)
            slot_min[: memory.size] = np.minimum(slot_min[: memory.size], memory)
        index_of = {(p.model, p.family, p.variant): i for group in by_family for i, p in enumerate(group)}
        if len(index_of) != len(plans):
            raise ValueError(f"model {plans[0].model!r}: two plans share a (model, family, variant) name")
        table = _AppPlans(
            by_family=by_family,
            family_min_peak_bytes=np.array(peak, dtype=np.float64),
            plan_counts=np.array([len(group) for group in by_family]),
            slot_min_bytes=slot_min,
            unused_slots=np.isinf(slot_min),
            largest_fragment_bytes=max(f.memory_bytes for p in plans for f in p.fragments),
            all_fit_mask=np.empty(0, dtype=bool),
            index_of=index_of,
        )
        roomy = np.full(self.node_count, np.inf)
        object.__setattr__(table, "all_fit_mask", self._general_masks(table, roomy, np.ones(self.node_count, bool)))
        return table

    def plans(self, app: str) -> tuple[SplitPlan, ...]:
        """Every plan of ``app`` in action order (family, then variant)."""
        return tuple(p for group in self._apps[self._app_index[app]].by_family for p in group)

    def masks(self, app: str, free_memory_bytes: np.ndarray, up: np.ndarray) -> np.ndarray:
        """Flat boolean mask (family, variant, then node per slot) for a job of ``app``; a fresh array."""
        table = self._apps[self._app_index[app]]
        all_up = up.tobytes() == self._all_up  # cheaper than up.all() for the common case
        if all_up and free_memory_bytes.min() >= table.largest_fragment_bytes:
            return table.all_fit_mask.copy()
        return self._general_masks(table, free_memory_bytes, up)

    def _general_masks(self, table: _AppPlans, free_memory_bytes: np.ndarray, up: np.ndarray) -> np.ndarray:
        free_up = np.where(up, free_memory_bytes, -1.0)
        has_plans = table.plan_counts > 0
        family_ok = has_plans & (table.family_min_peak_bytes <= free_up.max())
        if not family_ok.any():
            family_ok = has_plans
        variant_ok = self._variant_positions < table.plan_counts[family_ok].max()
        nodes_ok = free_up >= table.slot_min_bytes[:, None]
        nodes_ok[table.unused_slots, 0] = True
        empty = ~nodes_ok.any(axis=1)
        if empty.any():
            nodes_ok[empty, int(np.argmax(free_up))] = True
        return np.concatenate((family_ok, variant_ok, nodes_ok.ravel()))

    def sample_valid(self, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A uniformly random action among those ``mask`` (from :meth:`masks`) allows, dimension by dimension."""
        keys = np.where(mask, rng.random(mask.size), -1.0)  # argmax of uniform keys = a uniform allowed pick
        families, head = self._nvec[0], self._nvec[0] + self._nvec[1]
        nodes = keys[head:].reshape(self.fragment_slots, self.node_count).argmax(axis=1).tolist()
        return np.array([keys[:families].argmax(), keys[families:head].argmax(), *nodes], dtype=np.int64)

    def decode(self, action, app: str) -> tuple[SplitPlan | None, tuple[int, ...]]:
        """(plan, node of each fragment) that ``action`` names for a job of ``app``.

        The plan is None when the app has no plan in the chosen family.  An action
        outside the action space raises ``ValueError``.
        """
        return self._decode(self._checked(action), app)

    def submission(self, action, app: str) -> tuple[SplitPlan, tuple[int, ...]]:
        """Like :meth:`decode`, but a family without plans for ``app`` gives :func:`unavailable_plan`
        of that family on slot 0's node: a plan that fits nowhere, so the simulator rejects the job."""
        values = self._checked(action)
        plan, placement = self._decode(values, app)
        if plan is None:
            return self._unavailable[values[0]], (values[2],)
        return plan, placement

    def _decode(self, values: list[int], app: str) -> tuple[SplitPlan | None, tuple[int, ...]]:
        group = self._apps[self._app_index[app]].by_family[values[0]]
        if not group:
            return None, ()
        plan = group[values[1] % len(group)]
        return plan, tuple(values[2 : 2 + len(plan.fragments)])

    def _checked(self, action) -> list[int]:
        """``action`` as a list of ints, or ``ValueError`` if it is not in the action space."""
        values = action.tolist() if isinstance(action, np.ndarray) else list(action)
        if len(values) == len(self._nvec):
            for value, size in zip(values, self._nvec):
                if type(value) is not int or not 0 <= value < size:
                    break
            else:
                return values
        raise ValueError(f"action {values!r} is not in {self.space}")

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


UNAVAILABLE_MEMORY_BYTES = 2**62
"""Memory of the stand-in fragment of :func:`unavailable_plan`: more than any node has."""


def unavailable_plan(family: str) -> SplitPlan:
    """Stand-in for a family an app has no plan in: one fragment too large for any node."""
    fragment = Fragment(name="unavailable", macs=0, reference_latency_s=0.0,
                        param_bytes=UNAVAILABLE_MEMORY_BYTES, activation_bytes=0)
    return SplitPlan(model="unavailable", family=family, variant="unavailable", fragments=(fragment,),
                     transfers=(Transfer(ORIGIN, 0, 0), Transfer(0, ORIGIN, 0)), accuracy=0.0)
