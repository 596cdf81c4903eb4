"""What heuristic and two-stage agents read from an EdgeSplit environment, in one place.

:class:`EnvView` wraps ``env.unwrapped`` (an ``envs.edge_split.EdgeSplitEnv``)
and offers the waiting job, its plans, the cluster snapshot, the simulator's
completion estimate, action encoding, and the outcomes (with per-job rewards)
of the jobs resolved during the last step.  Agents never touch the
environment's internals elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.dnn.plan import FAMILIES, Fragment, SplitPlan
from envs.observation import NODE_FEATURES
from envs.reward import reward_parts


@dataclass(frozen=True)
class JobOutcomes:
    """Jobs resolved during one step, column-wise, with each job's own reward."""

    job_ids: tuple[int, ...]
    apps: tuple[str, ...]
    families: tuple[str, ...]
    finished: tuple[bool, ...]
    met_deadline: tuple[bool, ...]
    response_time_s: tuple[float, ...]
    accuracy: tuple[float, ...]
    energy_j: tuple[float, ...]
    rewards: tuple[float, ...]

    @property
    def count(self) -> int:
        return len(self.job_ids)


class EnvView:
    """Read access to an EdgeSplit environment for agents (see the module docstring).

    Args:
        env: the environment, possibly wrapped.
        observation: the latest observation (for the feature methods).
    """

    def __init__(self, env, observation: np.ndarray | None = None):
        self.env = env.unwrapped
        self.observation = observation
        self._snapshot = None

    # -- the job and its plans -------------------------------------------------------------------

    @property
    def job(self):
        """The job waiting for a decision (``envs.sim.types.Job``)."""
        return self.env.job

    def plans(self) -> tuple[SplitPlan, ...]:
        """Plans of the waiting job's app, in action order."""
        return self.env.plans()

    def encode(self, plan: SplitPlan, placement: list[int]) -> np.ndarray:
        """The action running ``plan`` with one node per fragment."""
        return self.env.encode_action(plan, placement)

    def plan_index(self, plan: SplitPlan) -> tuple[int, int]:
        """(family index, variant index) of ``plan`` in the action."""
        action = self.encode(plan, [0] * len(plan.fragments))
        return int(action[0]), int(action[1])

    # -- the cluster ------------------------------------------------------------------------------

    def snapshot(self):
        """The cluster now (``envs.sim.types.ClusterSnapshot``); taken once per view, do not modify."""
        if self._snapshot is None:
            self._snapshot = self.env.simulator.snapshot()
        return self._snapshot

    def speed_factors(self) -> np.ndarray:
        """Reference-CPU time / node time, per node."""
        return np.array([node.device.speed_factor for node in self.env.scenario.simulator.nodes])

    def fitting_nodes(self, fragment: Fragment, used_bytes: np.ndarray | None = None) -> np.ndarray:
        """Per node: up and with room for ``fragment`` now, after ``used_bytes`` (per node) more are taken."""
        snapshot = self.snapshot()
        free_bytes = snapshot.free_memory_bytes if used_bytes is None else snapshot.free_memory_bytes - used_bytes
        return snapshot.up & (free_bytes >= fragment.memory_bytes)

    def estimate_completion_s(self, plan: SplitPlan, placement: list[int]) -> float:
        """Simulated time at which the waiting job would complete with ``plan`` and ``placement``."""
        return float(self.env.simulator.estimate_completion_s(self.job, plan, placement))

    # -- sizes and the observation ------------------------------------------------------------------

    @property
    def node_count(self) -> int:
        return self.env.actions.node_count

    @property
    def slot_count(self) -> int:
        return self.env.actions.fragment_slots

    @property
    def variant_count(self) -> int:
        return self.env.actions.variant_count

    family_count = len(FAMILIES)

    NODE_FEATURE_COUNT = len(NODE_FEATURES) + 1
    """Columns of :meth:`node_features`."""
    FRAGMENT_FEATURE_COUNT = 5
    """Columns of :meth:`fragment_features`."""

    def node_features(self) -> np.ndarray:
        """(nodes, NODE_FEATURE_COUNT) float32: the observation's per-node blocks, then speed / fastest speed."""
        observation = np.asarray(self.observation, dtype=np.float32)
        blocks = [observation[self.env.observations.node_slice(feature)] for feature in NODE_FEATURES]
        speed = self.speed_factors()
        return np.stack(blocks + [(speed / speed.max()).astype(np.float32)], axis=1)

    @property
    def job_feature_count(self) -> int:
        """Length of :meth:`job_features`."""
        return self.env.observations.job_size

    def job_features(self) -> np.ndarray:
        """The observation's job part (app one-hot, deadline, items, input size, slack; with training jobs
        on, also kind and iterations), float32."""
        return np.asarray(self.observation, dtype=np.float32)[len(NODE_FEATURES) * self.node_count:]

    def fragment_features(self, plan: SplitPlan) -> np.ndarray:
        """(slots, FRAGMENT_FEATURE_COUNT) float32, one row per fragment slot (zeros past the plan):
        compute time of the job's items (x iterations) on the fastest node, memory / largest usable memory,
        input and output transfer time of the job's items (x iterations) at the nominal bandwidth (times in
        units of the scenario's ``time_scale_s``, clipped), and 1 for a used slot."""
        scales = self.env.scenario.observation
        items = self.job.total_items  # a training job: every mini-batch (envs.sim.training_plans)
        seconds_per_byte = 8.0 / (scales.bandwidth_scale_mbps * 1e6)
        largest_memory = max(node.device.usable_memory_bytes for node in self.env.scenario.simulator.nodes)
        fastest = float(self.speed_factors().max())
        features = np.zeros((self.slot_count, self.FRAGMENT_FEATURE_COUNT), dtype=np.float32)
        for index, fragment in enumerate(plan.fragments):
            in_bytes = sum(t.bytes for t in plan.inputs_of(index))
            out_bytes = sum(t.bytes for t in plan.outputs_of(index))
            times_s = np.array([items * fragment.reference_latency_s / fastest,
                                items * in_bytes * seconds_per_byte, items * out_bytes * seconds_per_byte])
            features[index, [0, 2, 3]] = np.clip(times_s / scales.time_scale_s, 0.0, scales.clip)
            features[index, 1] = fragment.memory_bytes / largest_memory
            features[index, 4] = 1.0
        return features

    @property
    def app_names(self) -> tuple[str, ...]:
        return self.env.actions.apps

    def deadline_step_s(self, app: str) -> float:
        """The app's deadline granularity, seconds (SplitPlace: one scheduling interval; 0 if continuous)."""
        for config in self.env.scenario.simulator.workload.apps:
            if config.name == app:
                return float(config.deadline_step_s)
        raise KeyError(f"unknown app {app!r}; apps: {list(self.app_names)}")

    # -- feedback ---------------------------------------------------------------------------------

    def last_outcomes(self) -> JobOutcomes:
        """Jobs resolved during the last ``step``, with each job's reward under the scenario's weights."""
        outcomes = self.env.last_outcomes
        weights = self.env.scenario.reward
        return JobOutcomes(
            job_ids=tuple(o.job_id for o in outcomes),
            apps=tuple(o.app for o in outcomes),
            families=tuple(o.family for o in outcomes),
            finished=tuple(o.finished for o in outcomes),
            met_deadline=tuple(o.met_deadline for o in outcomes),
            response_time_s=tuple(o.response_time_s for o in outcomes),
            accuracy=tuple(o.accuracy for o in outcomes),
            energy_j=tuple(o.energy_j for o in outcomes),
            rewards=tuple(reward_parts([o], weights).total for o in outcomes),
        )
