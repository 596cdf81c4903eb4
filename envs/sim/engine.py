"""The event-driven simulator of a heterogeneous edge cluster that runs split DNN jobs.

One call per arriving job: :meth:`ClusterSimulator.advance_to_next_arrival`
moves time to the next arrival (resolving what finished meanwhile), then
:meth:`ClusterSimulator.submit` reserves the job's fragments and transfers at
once (:mod:`envs.sim.schedule`) and files its outcome under the time it
resolves.  No event loop runs per fragment.  The model and its approximations
are described in ``docs/simulator.md``.

Conservation holds at every instant: ``arrived == finished + failed + in_flight``
(a job rejected at submission counts as failed, reason ``"infeasible"``).
Nothing grows with the number of finished jobs: outcomes are handed out by
:meth:`ClusterSimulator.pop_outcomes`, totals are running sums.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import numpy as np

from envs.cluster.background import BackgroundLoad
from envs.cluster.energy import PowerModel
from envs.cluster.failures import FailureProcess
from envs.cluster.network import Network
from envs.dnn.plan import Fragment, SplitPlan
from envs.sim.schedule import CompiledPlan, Scheduler
from envs.sim.types import ClusterSnapshot, Job, JobOutcome, SimulatorConfig
from envs.workload.apps import JobStream

PLAN_CACHE_SIZE = 4096
"""Compiled plans kept (by plan object); the cache is emptied when it is full."""


class ClusterSimulator:
    """Nodes, links, queues, background load, failures and energy of one cluster, driven job by job."""

    def __init__(self, config: SimulatorConfig, rng: np.random.Generator):
        self.config = config
        self.node_count = len(config.nodes)
        devices = [node.device for node in config.nodes]
        self._usable_memory_bytes = [device.usable_memory_bytes for device in devices]
        self._power = PowerModel(devices)
        self._network = Network([node.link for node in config.nodes], config.bandwidth_step_s)
        self._background = BackgroundLoad(config.background, self._power, self.node_count)
        self._failures = FailureProcess(config.failures, self.node_count) if config.failures.enabled else None
        self._scheduler = Scheduler([device.speed_factor for device in devices], self._network, self._background,
                                    self._failures,
                                    config.failures.max_retries if config.failures.policy == "retry" else 0)
        self._compiled: dict[int, CompiledPlan] = {}
        self._all_up = np.ones(self.node_count, dtype=bool)
        self._start(rng)

    # ------------------------------------------------------------------ episode

    def _start(self, rng: np.random.Generator) -> None:
        """Empty, idle cluster at time 0; every random process gets its own stream drawn from ``rng``."""
        workload_rng, background_rng, failure_rng, network_rng, exit_rng = (
            np.random.default_rng(seed) for seed in rng.integers(0, 2**63, size=5))
        self.time_s = 0.0
        self._jobs = JobStream(self.config.workload, self.config.horizon_s, workload_rng)
        self._background.reset(background_rng)
        if self._failures is not None:
            self._failures.reset(failure_rng)
        self._network.reset(network_rng)
        self._exit_rng = exit_rng
        self._scheduler.reset()
        nodes = self.node_count
        self._free_memory_bytes = list(self._usable_memory_bytes)
        self._free_memory_array = np.array(self._usable_memory_bytes, dtype=np.int64)
        self._busy_until_array = np.zeros(nodes)  # mirror of the scheduler's busy_until_s, for snapshots
        self._memory_releases: list[tuple[float, int, int]] = []  # heap of (time_s, node, bytes)
        self._unresolved: list[tuple[float, int, JobOutcome]] = []  # heap of (resolve_s, job_id, outcome)
        self._resolved: list[JobOutcome] = []
        self._awaiting: Job | None = None  # arrived, not yet submitted
        self._background_energy_j = 0.0
        self._job_energy_j = 0.0
        self.arrived = self.finished = self.failed = self.infeasible = 0

    def reset(self, rng: np.random.Generator) -> Job | None:
        """Start a new episode from ``rng``; returns the first job (``None`` if none arrives within the horizon)."""
        self._start(rng)
        return self.advance_to_next_arrival()

    def advance_to_next_arrival(self) -> Job | None:
        """Move time to the next arrival and return that job; ``None`` (time = horizon) once past the horizon.

        The job returned before must have been submitted.
        """
        if self._awaiting is not None:
            raise RuntimeError(f"job {self._awaiting.job_id} arrived but was not submitted; submit it first")
        job = self._jobs.next_job()
        self._advance_time(job.arrival_s if job is not None else self.config.horizon_s)
        if job is not None:
            self.arrived += 1
            self._awaiting = job
        return job

    def _advance_time(self, time_s: float) -> None:
        if time_s > self.time_s:
            self._background_energy_j += self._background.energy_j(self.time_s, time_s)
            self.time_s = time_s
            self._background.forget_before(time_s)
            if self._failures is not None:
                self._failures.forget_before(time_s)
        releases = self._memory_releases
        while releases and releases[0][0] <= time_s:
            _, node, memory_bytes = heapq.heappop(releases)
            self._free_memory_bytes[node] += memory_bytes
            self._free_memory_array[node] = self._free_memory_bytes[node]
        unresolved = self._unresolved
        while unresolved and unresolved[0][0] <= time_s:
            self._resolve(heapq.heappop(unresolved)[2])

    def _resolve(self, outcome: JobOutcome) -> None:
        if outcome.finished:
            self.finished += 1
        else:
            self.failed += 1
            self.infeasible += outcome.failure_reason == "infeasible"
        self._job_energy_j += outcome.energy_j
        self._resolved.append(outcome)

    # ------------------------------------------------------------------ decisions

    def fits(self, fragment: Fragment, node: int) -> bool:
        """Whether ``node`` is up and has ``fragment.memory_bytes`` free now."""
        return fragment.memory_bytes <= self._free_memory_bytes[node] and (
            self._failures is None or self._failures.is_up(node, self.time_s))

    def _compile(self, plan: SplitPlan, placement: Sequence[int]) -> CompiledPlan:
        cached = self._compiled.get(id(plan))
        if cached is None or cached.plan is not plan:
            if len(self._compiled) >= PLAN_CACHE_SIZE:
                self._compiled.clear()
            cached = self._compiled[id(plan)] = CompiledPlan(plan)
        if len(placement) != cached.fragment_count:
            raise ValueError(f"placement has {len(placement)} nodes, plan {plan.model}/{plan.variant} has "
                             f"{cached.fragment_count} fragments")
        if min(placement) < 0 or max(placement) >= self.node_count:
            raise ValueError(f"placement {list(placement)} names a node outside [0, {self.node_count})")
        return cached

    def _placement_fits(self, compiled: CompiledPlan, placement: Sequence[int]) -> bool:
        """Every fragment's node is up and holds the memory of all the job's fragments placed there."""
        needed: dict[int, int] = {}
        free = self._free_memory_bytes
        for node, memory_bytes in zip(placement, compiled.memory_bytes):
            total = needed.get(node, 0) + memory_bytes
            if total > free[node]:
                return False
            needed[node] = total
        return self._failures is None or all(self._failures.is_up(node, self.time_s) for node in needed)

    def reject(self, job: Job) -> None:
        """Refuse the arrived ``job`` without running it: it fails at once with reason ``"infeasible"``
        (family ``""``: no plan)."""
        self._take_awaiting(job)
        self._resolve_infeasible(job, "")

    def _take_awaiting(self, job: Job) -> None:
        if job is None or job is not self._awaiting:
            raise RuntimeError(f"{job!r} is not the job awaiting a decision")
        self._awaiting = None

    def _resolve_infeasible(self, job: Job, family: str) -> None:
        self._resolve(JobOutcome(job.job_id, job.app, family, False, "infeasible", job.arrival_s, self.time_s,
                                 self.time_s - job.arrival_s, job.deadline_s, False, 0.0, 0.0))

    def submit(self, job: Job, plan: SplitPlan, placement: Sequence[int]) -> None:
        """Run the arrived ``job`` with ``plan``, fragment ``i`` on node ``placement[i]``.

        A placement that does not fit (memory, or a node that is down) is rejected:
        the job fails at once with reason ``"infeasible"``.  A malformed placement
        (wrong length, unknown node) raises ``ValueError``.
        """
        compiled = self._compile(plan, placement)
        self._take_awaiting(job)
        now_s = self.time_s
        if not self._placement_fits(compiled, placement):
            self._resolve_infeasible(job, plan.family)
            return
        reach = compiled.sampled_reach(job.items, self._exit_rng)
        completion_s, failure_s = self._scheduler.schedule(compiled, placement, job.origin, now_s, reach,
                                                           job.iterations, commit=True)
        energy_j = self._reserve(compiled, placement, reach, failure_s)
        if failure_s < math.inf:
            outcome = JobOutcome(job.job_id, job.app, plan.family, False, "node_failure", job.arrival_s, failure_s,
                                 failure_s - job.arrival_s, job.deadline_s, False, 0.0, energy_j)
        else:
            response_s = completion_s - job.arrival_s
            outcome = JobOutcome(job.job_id, job.app, plan.family, True, "", job.arrival_s, completion_s, response_s,
                                 job.deadline_s, response_s <= job.deadline_s, plan.accuracy, energy_j)
        heapq.heappush(self._unresolved, (outcome.completion_s, job.job_id, outcome))

    def _reserve(self, compiled: CompiledPlan, placement: Sequence[int], reach: Sequence[int],
                 failure_s: float) -> float:
        """Book the scheduler's runs and the fragments' memory; returns the job's energy in joules."""
        busy_until_s, busy_until_array = self._scheduler.busy_until_s, self._busy_until_array
        for fragment, node in enumerate(placement):
            busy_until_array[node] = busy_until_s[node]
            if reach[fragment]:
                memory_bytes = compiled.memory_bytes[fragment]
                self._free_memory_bytes[node] -= memory_bytes
                self._free_memory_array[node] = self._free_memory_bytes[node]
                release_s = min(compiled.finish_s[fragment], failure_s)
                heapq.heappush(self._memory_releases, (release_s, node, memory_bytes))
        return sum(run[3] for run in self._scheduler.runs)

    def estimate_completion_s(self, job: Job, plan: SplitPlan, placement: Sequence[int]) -> float:
        """When ``job`` would complete with this plan and placement if submitted now (``math.inf`` if it
        does not fit).  Same reservation computation as :meth:`submit`, nothing reserved; future
        failures are not foreseen and early exits count with their mean."""
        compiled = self._compile(plan, placement)
        if not self._placement_fits(compiled, placement):
            return math.inf
        completion_s, _ = self._scheduler.schedule(compiled, placement, job.origin, self.time_s,
                                                   compiled.expected_reach(job.items), job.iterations, commit=False)
        return completion_s

    # ------------------------------------------------------------------ observation

    def pop_outcomes(self) -> list[JobOutcome]:
        """Outcomes resolved since the last call, in resolution order."""
        resolved, self._resolved = self._resolved, []
        return resolved

    def snapshot(self) -> ClusterSnapshot:
        """The cluster now, as fresh arrays."""
        time_s = self.time_s
        queued_work_s = self._busy_until_array - time_s
        np.maximum(queued_work_s, 0.0, out=queued_work_s)
        utilisation = np.maximum(self._background.utilisation_vector(time_s), queued_work_s > 0.0)
        up = self._failures.up_vector(time_s) if self._failures is not None else self._all_up.copy()
        uplink_mbps, downlink_mbps = self._network.bandwidth_mbps(time_s)
        return ClusterSnapshot(time_s, queued_work_s, utilisation, self._free_memory_array.copy(), up,
                               uplink_mbps, downlink_mbps)

    @property
    def in_flight(self) -> int:
        """Jobs that arrived and are neither finished nor failed (including one awaiting submission)."""
        return self.arrived - self.finished - self.failed

    @property
    def counters(self) -> dict[str, int]:
        """arrived, finished, failed (infeasible included), in_flight, infeasible."""
        return {"arrived": self.arrived, "finished": self.finished, "failed": self.failed,
                "in_flight": self.in_flight, "infeasible": self.infeasible}

    @property
    def energy_j(self) -> float:
        """Cluster energy so far, joules: background draw up to now plus the extra of resolved jobs."""
        return self._background_energy_j + self._job_energy_j
