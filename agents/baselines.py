"""Baselines of the source papers, as split selectors (paired with a placement) or whole agents.

* :class:`RandomAgent`: a random plan of the job's app, random nodes with room.
* :class:`FixedFamily`: always one family (SplitPlace's L+G layer-only and
  S+G semantic-only baselines with a placement heuristic).
* :class:`MinCutAgent`: the optimal device/server cut at the *current*
  bandwidth (minimum s-t cut, Li et al. 2025 / DADS), the device being the job's
  origin and the server the fastest up node with room.
* :class:`DeadlineAwareFamily`: the most accurate plan of a family whose
  estimated completion meets the deadline, else the fastest; with
  ``family="early_exit"`` it is MDI-Exit's threshold adaptation to load
  (Colocrese et al. 2024: lower thresholds, more early exits, when queues grow).
* :class:`ParaDiSSwitch`: the ParaDiS width switch with as many sub-networks as
  there are free devices (Ozerov et al. 2021), capped by the largest switch.
* :class:`GillisLike`: layer partitioning for latency under a deadline, after
  Yu et al., "Gillis: Serving Large Neural Networks in Serverless Functions with
  Automatic Model Partitioning", ICDCS 2021: among the unsplit model and the
  layer chains, the one with the fewest fragments (fewest functions, so least
  cost) estimated to meet the deadline, else the one of least estimated latency.
* :class:`CompressedModel`: SplitPlace's MC baseline, one compressed model on
  one node with its lower accuracy (the planner's ``none``/``compressed`` plan).

"Estimated" always means the simulator's ``estimate_completion_s`` with the
fastest-finish placement.  A family that the job's app does not offer falls
back to the unsplit model.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from agents.env_access import EnvView
from agents.placement import RandomPlacement, fastest_finish_placement, fastest_plan
from agents.protocol import Agent, SplitSelector, SplitThenPlace
from envs.dnn.cut_points import input_vertex
from envs.dnn.mincut import CutProblem, DelayModel
from envs.dnn.plan import SplitPlan
from envs.dnn.profile_io import load_profile

COMPRESSED_VARIANT = "compressed"
"""Variant name of the MC baseline's plan within the ``none`` family."""


def plans_of_family(view: EnvView, family: str) -> list[SplitPlan]:
    """The job's app's plans of ``family``, or its unsplit plan(s) if it has none."""
    plans = [plan for plan in view.plans() if plan.family == family]
    return plans or [plan for plan in view.plans() if plan.family == "none"]


def estimated_completion_s(view: EnvView, plan: SplitPlan) -> float:
    """Simulated time at which ``plan`` would complete with the fastest-finish placement, seconds."""
    return view.estimate_completion_s(plan, fastest_finish_placement(view, plan))


def _within_deadline(view: EnvView, plan: SplitPlan) -> bool:
    job = view.job
    return estimated_completion_s(view, plan) <= job.arrival_s + job.deadline_s


class RandomSplit(SplitSelector):
    """A uniformly random plan among those of the job's app."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def start_episode(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def select(self, view: EnvView) -> SplitPlan:
        plans = view.plans()
        return plans[int(self.rng.integers(len(plans)))]


class RandomAgent(SplitThenPlace):
    """Random plan, random nodes with room: the floor every agent must beat."""

    def __init__(self, seed: int = 0):
        super().__init__(RandomSplit(seed), RandomPlacement(seed + 1))


class FixedFamily(SplitSelector):
    """Always ``family``; its plan of earliest estimated completion when ``fastest_variant``, else the first."""

    def __init__(self, family: str, fastest_variant: bool = True):
        self.family = family
        self.fastest_variant = fastest_variant

    def select(self, view: EnvView) -> SplitPlan:
        plans = plans_of_family(view, self.family)
        return fastest_plan(view, plans) if self.fastest_variant else plans[0]


class DeadlineAwareFamily(SplitSelector):
    """The most accurate plan of ``family`` estimated to meet the deadline, else the fastest one."""

    def __init__(self, family: str):
        self.family = family

    def select(self, view: EnvView) -> SplitPlan:
        plans = sorted(plans_of_family(view, self.family), key=lambda plan: -plan.accuracy)
        for plan in plans:
            if _within_deadline(view, plan):
                return plan
        return min(plans, key=lambda plan: estimated_completion_s(view, plan))


class GillisLike(SplitSelector):
    """Fewest fragments that meet the deadline among unsplit and layer plans, else least latency."""

    def select(self, view: EnvView) -> SplitPlan:
        plans = sorted((p for p in view.plans() if p.family in ("none", "layer")), key=lambda p: len(p.fragments))
        for plan in plans:
            if _within_deadline(view, plan):
                return plan
        return min(plans, key=lambda plan: estimated_completion_s(view, plan))


class ParaDiSSwitch(SplitSelector):
    """The width switch whose sub-network count is the largest not above the number of free devices.

    A device is free when it is up and has no queued work; with fewer free
    devices than the smallest switch needs, the smallest switch is used.
    """

    def select(self, view: EnvView) -> SplitPlan:
        snapshot = view.snapshot()
        free_devices = int(np.count_nonzero(snapshot.up & (snapshot.queued_work_s <= 0.0)))
        switches = sorted(plans_of_family(view, "width"), key=lambda plan: len(plan.fragments))
        fitting = [plan for plan in switches if len(plan.fragments) - 1 <= free_devices]
        return fitting[-1] if fitting else switches[0]


class CompressedModel(SplitSelector):
    """SplitPlace's MC baseline: the compressed model, unsplit, on one node (the full model for
    an app whose accuracy profile has no compressed model)."""

    def select(self, view: EnvView) -> SplitPlan:
        unsplit = [plan for plan in view.plans() if plan.family == "none"]
        compressed = [plan for plan in unsplit if plan.variant == COMPRESSED_VARIANT]
        return (compressed or unsplit)[0]


@lru_cache(maxsize=None)
def _cut_problem(model: str) -> CutProblem:
    return CutProblem(load_profile(model))


class MinCutAgent(Agent):
    """Optimal device/server cut at the current bandwidth, device = origin, server = fastest node with room.

    The cut is solved on the job's model (``envs.dnn.mincut``) for the
    bandwidth the origin's uplink and the server's downlink have now.  The
    environment offers a fixed set of plans, so the agent plays the offered one
    (unsplit on the server or on the origin, or a two-fragment layer chain from
    the origin to the server) whose device part equals the optimal cut's, or, if
    the optimum is not offered, the offered one of least delay under the same
    delay model.
    """

    def predict(self, observation, env) -> np.ndarray:
        view = EnvView(env, observation)
        job, snapshot, speed = view.job, view.snapshot(), view.speed_factors()
        plans = view.plans()
        whole = next(plan for plan in plans if plan.family == "none")
        problem = _cut_problem(whole.model)
        source = input_vertex(problem.graph)
        server = self._server(view, whole, speed)
        candidates = [(whole, [server], frozenset({source})),
                      (whole, [job.origin], frozenset(problem.graph.nodes))]
        candidates += [(plan, [job.origin, server], frozenset(plan.fragments[0].vertices) | {source})
                       for plan in plans if plan.family == "layer" and len(plan.fragments) == 2]
        bandwidth_mbps = max(float(min(snapshot.uplink_mbps[job.origin], snapshot.downlink_mbps[server])), 1e-6)
        delay = DelayModel(device_speed_factor=float(speed[job.origin]), server_speed_factor=float(speed[server]),
                           bandwidth_mbps=bandwidth_mbps, batch_size=job.items)
        optimum = problem.solve(delay).device_vertices
        plan, placement, _ = min(candidates, key=lambda c: (c[2] != optimum, problem.evaluate(c[2], delay).delay_s))
        return view.encode(plan, placement)

    @staticmethod
    def _server(view: EnvView, whole: SplitPlan, speed: np.ndarray) -> int:
        """The fastest up node other than the origin with room for the whole model (the origin if none)."""
        fitting = view.fitting_nodes(whole.fragments[0])
        fitting[view.job.origin] = False
        if not fitting.any():
            return view.job.origin
        return int(np.flatnonzero(fitting)[np.argmax(speed[fitting])])
