"""The event-driven simulator of a heterogeneous edge cluster that runs split DNN jobs.

One call per arriving job: :meth:`ClusterSimulator.advance_to_next_arrival`
moves time to the next arrival (resolving what finished meanwhile), then
:meth:`ClusterSimulator.submit` reserves the job's fragments and transfers at
once (:mod:`envs.sim.schedule`) and files its outcome under the time it
resolves.  No event loop runs per fragment.  The model and its approximations
are described in ``docs/simulator.md``.  The same happens in one compiled call per
job through :meth:`ClusterSimulator.step_compiled` (what the environment's step
uses): the per-job work is numba-compiled code on the arrays of a
:class:`~envs.sim.world.World` (:mod:`envs.sim.compiled_step`), and Python does
only what compiled code asks for (drawing jobs ahead, sampling more background
load or failure times, early exits, training continuations).

Conservation holds at every instant: ``arrived == finished + failed + in_flight``
(a job rejected at submission counts as failed, reason ``"infeasible"``).
Nothing grows with the number of finished jobs: outcomes are array rows
(:mod:`envs.sim.outcomes`) handed out by :meth:`ClusterSimulator.pop_outcomes`, totals
are running sums.

For speed, the per-node values an observation needs live in one preallocated
``(len(NODE_VALUES), nodes)`` array: the busy-until times of nodes and links (as
absolute times) and free memory, whose rows are the very arrays the scheduler and the
network reserve in, are kept up to date as jobs are submitted and finish; bandwidth,
background load and node state are brought to the current time when values are asked for
(:meth:`ClusterSimulator.synced_state`, which the observation reads).  Jobs are drawn
:data:`PREFETCH_JOBS` at a time (the workload does not depend on the actions) as rows of
:data:`~envs.sim.types.JOB_FIELDS`, with the link bandwidths of the steps they arrive in;
a :class:`Job` is made only for the awaiting job, when asked for.

Training jobs (``WorkloadConfig.training``) arrive from their own random stream
(:mod:`envs.workload.training_jobs`) and run a training plan
(:mod:`envs.sim.training_plans`) one mini-batch at a time: ``submit`` reserves the
first; each later one is a *continuation*, reserved when the previous one's result is
back at the origin (filed in a heap by that time and run by the time advance, before
the next arrival is handed out), so jobs submitted in between queue ahead of it.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from envs.cluster.background import BackgroundLoad
from envs.cluster.energy import PowerModel
from envs.cluster.failures import FailureProcess
from envs.cluster.network import Network
from envs.dnn.plan import Fragment, SplitPlan
from envs.sim.compiled_plan import ALL_ITEMS, RUN_FIELDS, CompiledPlan
from envs.sim.compiled_step import ADVANCE, INVALID, NEEDS_EXITS, NEEDS_ROOM, SUBMIT, advance_to
from envs.sim.outcomes import (ARRIVED, BACKGROUND_ENERGY_J, FAILED_JOBS, FAMILY_CODES, FINISHED_JOBS,
                               INFEASIBLE_JOBS, JOB_ENERGY_J, RESOLVED, TIME_S, OutcomeTable, file_reserved,
                               resolve_infeasible)
from envs.sim.plan_library import PlanLibrary
from envs.sim.schedule import DONE, NO_FAILURES, Scheduler
from envs.sim.types import (JOB_APP, JOB_ARRIVAL_S, JOB_FIELDS, JOB_ITEMS, NODE_VALUES, ClusterSnapshot, Job,
                            JobOutcome, SimulatorConfig, job_of_row)
from envs.sim.world import (BACKGROUND_ROW, COMPANION_FIELDS, CONSTANT_POWER_W, DOWNLINK_BACKLOG_ROW, DOWNLINK_ROW,
                            EMPTY_COMPANION, FIRST_INTERVAL, FREE_MEMORY_ROW, INTERVAL_S, MAX_RETRIES, PARAMS, STEP_S,
                            UP_ROW, UPLINK_BACKLOG_ROW, UPLINK_ROW, WorldKeeper)
from envs.workload.apps import JobStream
from envs.workload.training_jobs import MergedJobStream, TrainingJobStream

PLAN_CACHE_SIZE = 4096
"""Compiled plans kept (by plan object); the cache is emptied when it is full."""

STREAMS = ("workload", "background", "failures", "network", "exits", "training")
"""Independent random streams of an episode, each seeded from the generator given to ``reset``; the last only
when training jobs are on (the others are seeded as without them)."""

_TIMES = UPLINK_ROW  # rows [0, _TIMES) hold busy-until times in the state, seconds from now in node_values()

_FAMILY_CODE = {family: code for code, family in enumerate(FAMILY_CODES)}
"""Outcome family code of each split family name ("" for no plan)."""


PREFETCH_JOBS = 64
"""Jobs drawn ahead of time, with the link bandwidths of the steps they arrive in (one vector computation)."""


@dataclass(slots=True)
class _TrainingRun:
    """A submitted training job that has mini-batches left: what reserving the next one needs."""

    job: Job
    plan: SplitPlan  # the training plan it runs (its family goes into the outcome)
    compiled: CompiledPlan
    placement: np.ndarray  # node of each fragment (int64)
    batches_left: int  # mini-batches not yet reserved
    energy_j: float  # energy of its mini-batches reserved so far, joules


def _reseed(generators: list[np.random.Generator], rng: np.random.Generator) -> None:
    """Give each PCG64 generator a random 128-bit state and stream increment drawn from ``rng`` (independent
    streams, like children of a ``SeedSequence``, at a twentieth of the cost of seeding one)."""
    words = rng.bit_generator.random_raw(4 * len(generators)).tolist()
    for index, generator in enumerate(generators):
        high_state, low_state, high_stream, low_stream = words[4 * index: 4 * index + 4]
        generator.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": high_state << 64 | low_state, "inc": (high_stream << 64 | low_stream) | 1},
            "has_uint32": 0,
            "uinteger": 0,
        }


class ClusterSimulator:
    """Nodes, links, queues, background load, failures and energy of one cluster, driven job by job."""

    def __init__(self, config: SimulatorConfig, rng: np.random.Generator):
        self.config = config
        self.node_count = len(config.nodes)
        devices = [node.device for node in config.nodes]
        self._usable_memory_bytes = [device.usable_memory_bytes for device in devices]
        self._power = PowerModel(devices)
        self._state = np.zeros((len(NODE_VALUES), self.node_count))
        """The rows of node_values(), busy-until times as absolute times (see the module docstring)."""
        self._network = Network([node.link for node in config.nodes], config.bandwidth_step_s,
                                self._state[UPLINK_BACKLOG_ROW: DOWNLINK_BACKLOG_ROW + 1])
        self._background = BackgroundLoad(config.background, self._power, self.node_count)
        self._failures = FailureProcess(config.failures, self.node_count) if config.failures.enabled else None
        workload = config.workload
        self._apps = tuple(app.name for app in workload.apps) + (
            workload.training.apps if workload.training is not None else ())
        self._app_code = {app: code for code, app in enumerate(self._apps)}
        self._outcomes = OutcomeTable(self._apps)
        self._params = np.zeros(len(PARAMS))
        self._params[STEP_S] = self._network.step_s
        self._params[MAX_RETRIES] = config.failures.max_retries if config.failures.policy == "retry" else 0
        self._seconds_per_reference_s = 1.0 / np.array([device.speed_factor for device in devices], dtype=float)
        self._companion = EMPTY_COMPANION
        self._world = WorldKeeper(self._world_arrays)
        self._scheduler = Scheduler(self._network, self._background, self._failures, self._state[FREE_MEMORY_ROW],
                                    self._world)
        self._compiled: dict[int, CompiledPlan] = {}
        self._library = PlanLibrary()
        self._library_runs = np.zeros((0, RUN_FIELDS))  # scratch for the fragment runs of a library plan's job
        self._current = np.zeros(len(JOB_FIELDS))  # the awaiting job as JOB_FIELDS (written by advance_to)
        # the jobs drawn ahead (the first _upcoming_count rows), the link bandwidths of the steps they arrive in (one
        # row per step) and per job the row of its step
        self._upcoming_table = np.zeros((PREFETCH_JOBS, len(JOB_FIELDS)))
        self._upcoming_bandwidth = np.zeros((PREFETCH_JOBS, 2 * self.node_count))
        self._upcoming_rows = np.zeros(PREFETCH_JOBS, dtype=np.int64)
        stream_count = len(STREAMS) - (config.workload.training is None)
        self._streams = [np.random.Generator(np.random.PCG64(0)) for _ in range(stream_count)]
        self._bind_views()
        self._start(rng)

    _VIEWS = ("_free_row", "_bandwidth_rows", "_free_memory_view", "_state_view")

    def _bind_views(self) -> None:
        """Views of the state and scratch arrays that the hot paths write through (made once: cheaper), and the
        scheduler's free memory and the network's busy-until times as rows of the state."""
        state = self._state
        self._scheduler.free_memory_bytes = state[FREE_MEMORY_ROW]
        self._network.link_busy_until_s = state[UPLINK_BACKLOG_ROW: DOWNLINK_BACKLOG_ROW + 1]
        self._free_row = state[FREE_MEMORY_ROW]
        self._bandwidth_rows = state[UPLINK_ROW: DOWNLINK_ROW + 1].reshape(-1)  # a view: uplinks, then downlinks
        self._state_view = state.view()
        self._state_view.flags.writeable = False
        self._free_memory_view = state[FREE_MEMORY_ROW].view()
        self._free_memory_view.flags.writeable = False

    def __getstate__(self) -> dict:
        return {key: value for key, value in self.__dict__.items() if key not in self._VIEWS}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._bind_views()  # pickling copies views (the scheduler's and network's rows too): point them at the state
        self._world.stale()

    def attach(self, companion: dict) -> None:
        """Hand the arrays of the code on top (one per name of :data:`~envs.sim.world.COMPANION_FIELDS`) to
        compiled code through the world: what a :meth:`step_compiled` kernel reads beside the simulator's own."""
        if set(companion) != set(COMPANION_FIELDS):
            raise ValueError(f"attach: needs exactly the fields {COMPANION_FIELDS}, got {sorted(companion)}")
        self._companion = dict(companion)
        self._world.stale()

    def _world_arrays(self) -> dict[str, np.ndarray]:
        """The arrays a world (:mod:`envs.sim.world`) of this simulator refers to now."""
        load, first_interval, interval_s = self._background.load_table
        self._params[FIRST_INTERVAL], self._params[INTERVAL_S] = first_interval, interval_s
        change_s, change_count = self._failures.change_table if self._failures is not None else NO_FAILURES
        steps_mbps, cumulative_mbit, link_index, latency_s = self._network.link_tables
        releases, outcomes, library = self._scheduler.releases, self._outcomes, self._library
        return {
            "state": self._state, "steps_mbps": steps_mbps, "cumulative_mbit": cumulative_mbit,
            "link_index": link_index, "latency_s": latency_s, "seconds_per_reference_s": self._seconds_per_reference_s,
            "load": load, "change_s": change_s, "change_count": change_count, "releases": releases.releases,
            "release_count": releases.count, "pending": outcomes.pending, "resolved": outcomes.resolved,
            "tallies": outcomes.tallies, "clock": outcomes.clock, "params": self._params,
            "library_index": library.index, "library_values": library.values,
            "library_finish_s": library.finish_s, "library_layout": library.layout,
            "library_accuracy": library.accuracy, "runs": self._library_runs, "upcoming": self._upcoming_table,
            "upcoming_bandwidth": self._upcoming_bandwidth, "upcoming_rows": self._upcoming_rows,
            "current": self._current, **self._companion,
        }

    # ------------------------------------------------------------------ episode

    def _start(self, rng: np.random.Generator) -> None:
        """Empty, idle cluster at time 0; every random process gets its own stream drawn from ``rng``."""
        _reseed(self._streams, rng)
        workload_rng, background_rng, failure_rng, network_rng, exit_rng, *training_rng = self._streams
        workload, horizon_s = self.config.workload, self.config.horizon_s
        self._jobs = JobStream(workload, horizon_s, workload_rng)
        if training_rng:
            self._jobs = MergedJobStream(self._apps, self._jobs,
                                         TrainingJobStream(workload, horizon_s, training_rng[0]))
        replaced = self._background.reset(background_rng) or self._failures is not None  # an array of the world
        self._constant_power_w = self._background.constant_power_w  # None unless the load is constant
        if self._failures is not None:
            self._failures.reset(failure_rng)
        self._network.reset(network_rng)
        self._exit_rng = exit_rng
        self._scheduler.reset()
        self._outcomes.clear()
        self._params[CONSTANT_POWER_W] = math.nan if self._constant_power_w is None else self._constant_power_w
        self._simple = self._constant_power_w is not None and self._failures is None and training_rng == []
        """Whether a step is one compiled call (:meth:`step_compiled`): nothing of the advance is left to Python."""
        if replaced:
            self._world.stale()
        state = self._state
        state.fill(0.0)
        state[FREE_MEMORY_ROW] = self._usable_memory_bytes
        state[UP_ROW] = 1.0
        state[BACKGROUND_ROW] = self._background.utilisation_vector(0.0)
        self._background_interval = 0  # background interval the state's row holds
        self._upcoming_count = 0
        self._arrivals_s: list[float] = []  # their arrival times
        self._next_upcoming = 0
        self._bandwidth_stale = True  # the state's bandwidth rows are not those of now (computed when asked for)
        self._continuations: list[tuple[float, int, _TrainingRun]] = []  # heap of (start_s, job_id, run)
        self._awaits = False  # a job arrived and was not submitted yet (the current row)
        self._awaiting_job: Job | None = None  # that job, once built

    def reset(self, rng: np.random.Generator) -> Job | None:
        """Start a new episode from ``rng``; returns the first job (``None`` if none arrives within the horizon)."""
        self._start(rng)
        return self.advance_to_next_arrival()

    def advance_to_next_arrival(self) -> Job | None:
        """Move time to the next arrival and return that job; ``None`` (time = horizon) once past the horizon.

        The job returned before must have been submitted.
        """
        if self._awaits:
            raise RuntimeError(f"job {self.awaiting.job_id} arrived but was not submitted; submit it first")
        row, time_s = self._peek_arrival()
        self._before_advance(time_s)
        advance_to(self._world.get(), time_s, row)
        self._take_arrival(row)
        return self.awaiting

    def _peek_arrival(self) -> tuple[int, float]:
        """The row in the upcoming table of the next job (drawn ahead when none is left) and its arrival time
        (seconds); ``(-1, horizon)`` past the horizon."""
        row = self._next_upcoming
        if row == self._upcoming_count:
            self._prefetch()
            row = 0
            if not self._upcoming_count:
                return -1, self.config.horizon_s
        return row, self._arrivals_s[row]

    def _take_arrival(self, row: int) -> None:
        """The job of upcoming row ``row`` (from :meth:`_peek_arrival`) arrived, :func:`advance_to` wrote it into
        the current row and the state's bandwidth rows: it awaits a decision.  -1: none (the horizon; the
        bandwidth rows are then stale)."""
        self._awaiting_job = None
        self._awaits = row >= 0
        if row >= 0:
            self._next_upcoming = row + 1
        self._bandwidth_stale = row < 0

    def _prefetch(self) -> None:
        """Draw the next jobs of the (action-independent) workload and the link bandwidths of the steps they
        arrive in: one vector computation for many arrivals."""
        table = self._jobs.next_table(PREFETCH_JOBS)
        count = self._upcoming_count = len(table)
        self._next_upcoming = 0
        if count:  # into the arrays of fixed size the world refers to
            self._upcoming_table[:count] = table
            arrivals_s = table[:, JOB_ARRIVAL_S]
            self._arrivals_s = arrivals_s.tolist()
            steps = (arrivals_s / self._network.step_s).astype(np.int64)  # arrivals are in time order
            new_step = np.empty(count, dtype=bool)
            new_step[0] = True
            np.not_equal(steps[1:], steps[:-1], out=new_step[1:])
            bandwidth = self._network.bandwidth_mbps(arrivals_s[new_step])  # one row per step
            self._upcoming_bandwidth[: len(bandwidth)] = bandwidth
            np.cumsum(new_step, out=self._upcoming_rows[:count])
            self._upcoming_rows[:count] -= 1  # per job: the row of its step

    def _before_advance(self, time_s: float) -> None:
        """What a move of the clock to ``time_s`` (seconds) needs before the compiled part (:func:`advance_to`):
        run the continuations due by then; for a varying background load add its energy and move the clock; let
        the failure process drop the past."""
        if self._continuations:  # before the background and failure samples of the past are dropped
            self._run_continuations(time_s)
        now_s = self.time_s
        if time_s > now_s:
            if self._constant_power_w is None:
                clock = self._outcomes.clock
                clock[BACKGROUND_ENERGY_J] += self._background.energy_j(now_s, time_s)
                clock[TIME_S] = time_s
                if self._background.forget_before(time_s):
                    self._world.stale()
            if self._failures is not None:
                self._failures.forget_before(time_s)

    def plan_ids(self, plans: Sequence[SplitPlan]) -> list[int]:
        """The ids of ``plans`` in the plan library that :meth:`step_compiled` reserves from (added if new)."""
        ids = self._library.add(plans)
        runs = self._library.largest_fragment_count * max(app.iterations for app in self.config.workload.apps)
        if self._library_runs.shape[0] < runs:
            self._library_runs = np.zeros((runs, RUN_FIELDS))
        self._world.stale()
        return ids

    def step_compiled(self, kernel, arguments: tuple, submitted: bool = False) -> tuple[bool, tuple]:
        """Decide the awaiting job and move time to the next arrival through compiled code: ``kernel(world, phase,
        reach, job_row, time_s, *arguments)`` (e.g. :func:`envs.step_kernel.step_kernel`).

        ``phase`` is ``SUBMIT`` (submit the awaiting job, :func:`~envs.sim.compiled_step.submit_current`),
        ``ADVANCE`` (:func:`~envs.sim.compiled_step.advance_to` ``time_s``, where the job of upcoming row
        ``job_row`` arrives; -1: none, the horizon) or both.  One call does both unless the cluster has a varying
        background load, failures or training jobs: then the Python parts of the advance run between two calls.
        The kernel returns a tuple ``(status, plan, rejected, ...)``: ``status`` (:mod:`envs.sim.compiled_step`)
        asks for what compiled code cannot do (more room, samples, the early exits of library plan ``plan``, drawn
        into ``reach``), after which it is called again; ``INVALID`` (its arguments were refused) returns at once,
        nothing changed.  With ``submitted`` the awaiting job was already submitted (:meth:`submit`,
        :meth:`reject`) and only the advance runs.  Returns ``(rejected, the last call's result)``.
        """
        row = self._next_upcoming
        if self._simple and self._awaits and not submitted and row < self._upcoming_count:
            # the common case, in short: one call, and the next job is drawn already
            time_s = self._arrivals_s[row]
            result = kernel(self._world.get(), SUBMIT | ADVANCE, ALL_ITEMS, row, time_s, *arguments)
            if result[0] != DONE:
                result = self._run_compiled(kernel, SUBMIT | ADVANCE, row, time_s, arguments, result)
                if result[0] == INVALID:
                    return False, result
            self._awaiting_job = None
            self._next_upcoming = row + 1
            return result[2], result
        if not (submitted or self._awaits):
            raise RuntimeError("no job awaits a decision")
        row, time_s = self._peek_arrival()
        if row < 0:
            self._bandwidth_rows[:] = self._network.bandwidth_mbps(time_s)
        rejected = False
        if not submitted:
            phase = SUBMIT | ADVANCE if self._simple else SUBMIT
            result = kernel(self._world.get(), phase, ALL_ITEMS, row, time_s, *arguments)
            if result[0] != DONE:
                result = self._run_compiled(kernel, phase, row, time_s, arguments, result)
                if result[0] == INVALID:
                    self._bandwidth_stale = True  # the rows of now, should the horizon's have been written
                    return False, result
            if self._simple:
                self._take_arrival(row)
                return result[2], result
            rejected = result[2]
        self._awaits = False
        self._before_advance(time_s)
        self._sync_background_and_up(time_s)
        result = kernel(self._world.get(), ADVANCE, ALL_ITEMS, row, time_s, *arguments)
        self._take_arrival(row)
        return rejected, result

    def _run_compiled(self, kernel, phase: int, row: int, time_s: float, arguments: tuple, result: tuple) -> tuple:
        """Call ``kernel`` again until it is done, given what the last call returned (see :meth:`step_compiled`)."""
        reach = ALL_ITEMS
        while result[0] != DONE and result[0] != INVALID:
            status = result[0]
            if status == NEEDS_ROOM:
                self._make_outcome_room()
                self._scheduler.make_room(self._library.largest_fragment_count)
            elif status == NEEDS_EXITS:
                reach = self._library.compiled[result[1]].sampled_reach(int(self._current[JOB_ITEMS]), self._exit_rng)
            else:
                self._scheduler.sample_more(status, self.time_s)
            result = kernel(self._world.get(), phase, reach, row, time_s, *arguments)
        return result

    def _run_continuations(self, time_s: float) -> None:
        """Reserve the mini-batches of training jobs whose previous mini-batch is back by ``time_s`` (seconds),
        in time order, including those whose previous one completes within this very loop.

        Continuations read no free memory and no counters, so running all of them before the memory releases
        and outcomes due by ``time_s`` (which they only add to) is the same as interleaving them in time order.
        """
        continuations = self._continuations
        while continuations and continuations[0][0] <= time_s:
            start_s, _, run = heapq.heappop(continuations)
            self._run_mini_batch(run, start_s)

    # ------------------------------------------------------------------ decisions

    def fits(self, fragment: Fragment, node: int) -> bool:
        """Whether ``node`` is up and has ``fragment.memory_bytes`` free now."""
        return fragment.memory_bytes <= self._free_row[node] and (
            self._failures is None or self._failures.is_up(node, self.time_s))

    def _compile(self, plan: SplitPlan, placement: Sequence[int]) -> tuple[CompiledPlan, np.ndarray]:
        """The plan compiled (cached by plan object) and the placement as an int64 array, checked."""
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
        return cached, np.array(placement, dtype=np.int64)

    def reject(self, job: Job, family: str = "") -> None:
        """Refuse the arrived ``job`` without running it: it fails at once with reason ``"infeasible"``
        (outcome family ``family``, by default ``""``: no plan)."""
        self._take_awaiting(job)
        self._resolve_infeasible(job, family)

    def _take_awaiting(self, job: Job) -> None:
        if job is None or job is not self.awaiting:
            raise RuntimeError(f"{job!r} is not the job awaiting a decision")
        self._awaits = False
        self._awaiting_job = None

    def _resolve_infeasible(self, job: Job, family: str) -> None:
        outcomes = self._outcomes
        self._make_outcome_room()
        resolve_infeasible(outcomes.resolved, outcomes.tallies, outcomes.clock, job.job_id, self._app_code[job.app],
                           _FAMILY_CODE[family], job.arrival_s, job.deadline_s)

    def _make_outcome_room(self) -> None:
        if self._outcomes.make_room():
            self._world.stale()

    def submit(self, job: Job, plan: SplitPlan, placement: Sequence[int]) -> bool:
        """Run the arrived ``job`` with ``plan``, fragment ``i`` on node ``placement[i]``; returns whether
        it runs.

        A placement that does not fit (memory, or a node that is down) is rejected:
        the job fails at once with reason ``"infeasible"`` (and ``False`` is returned).
        A malformed placement (wrong length, unknown node) raises ``ValueError``.
        A training job (``job.training``) runs a training plan (:mod:`envs.sim.training_plans`) one
        mini-batch of ``items`` samples at a time (only the first is reserved now) and holds its
        fragments' memory until its last mini-batch completes.
        """
        compiled, nodes = self._compile(plan, placement)
        self._take_awaiting(job)
        scheduler = self._scheduler
        # checked here for a training job (which books its memory itself) and an early-exit plan (whose exits
        # are drawn only for jobs that run), by the reservation for the others
        checked = job.training or compiled.chain is not None
        if checked and not scheduler.fits(compiled, nodes, self.time_s):
            self._resolve_infeasible(job, plan.family)
            return False
        if job.training:
            self._start_training(_TrainingRun(job, plan, compiled, nodes, job.iterations, 0.0))
            return True
        reach = compiled.sampled_reach(job.items, self._exit_rng)
        fits, completion_s, failure_s, energy_j = scheduler.reserve(compiled, nodes, job.origin, self.time_s,
                                                                    job.items, reach, job.iterations, True, True,
                                                                    check_fits=not checked)
        if not fits:
            self._resolve_infeasible(job, plan.family)
            return False
        self._file_outcome(job, plan, completion_s, failure_s, energy_j)
        return True

    def _file_outcome(self, job: Job, plan: SplitPlan, completion_s: float, failure_s: float,
                      energy_j: float) -> None:
        """File ``job``'s outcome under the time it resolves: ``completion_s`` (seconds), or ``failure_s`` if a
        node failure killed it (``math.inf``: none); ``energy_j`` joules."""
        outcomes = self._outcomes
        self._make_outcome_room()
        file_reserved(outcomes.pending, outcomes.tallies, job.job_id, self._app_code[job.app],
                      _FAMILY_CODE[plan.family], job.arrival_s, job.deadline_s, completion_s, failure_s, plan.accuracy,
                      energy_j)

    def _start_training(self, run: _TrainingRun) -> None:
        """Take the memory of a training job's fragments (its weights and optimizer state stay there until its
        last mini-batch completes) and reserve its first mini-batch now."""
        free = self._free_row
        for node, fragment_bytes in zip(run.placement.tolist(), run.compiled.memory_bytes):
            free[node] -= fragment_bytes
        self._run_mini_batch(run, self.time_s)

    def _run_mini_batch(self, run: _TrainingRun, start_s: float) -> None:
        """Reserve ``run``'s next mini-batch, its input at the origin at ``start_s`` (seconds).  Then file the
        following one as a continuation at this one's completion; or, after the last mini-batch or a node
        failure, release the job's memory and file its outcome (energy: all its mini-batches)."""
        job, compiled, placement = run.job, run.compiled, run.placement
        _, completion_s, failure_s, energy_j = self._scheduler.reserve(compiled, placement, job.origin, start_s,
                                                                       job.items, ALL_ITEMS, 1, True, False,
                                                                       check_fits=False)
        run.energy_j += energy_j
        run.batches_left -= 1
        if run.batches_left and failure_s == math.inf:
            heapq.heappush(self._continuations, (completion_s, job.job_id, run))
            return
        release_s = min(completion_s, failure_s)
        for node, fragment_bytes in zip(placement.tolist(), compiled.memory_bytes):
            self._scheduler.release_later(release_s, node, fragment_bytes)
        self._file_outcome(job, run.plan, completion_s, failure_s, run.energy_j)

    def estimate_completion_s(self, job: Job, plan: SplitPlan, placement: Sequence[int]) -> float:
        """When ``job`` would complete with this plan and placement if submitted now (seconds; ``math.inf`` if
        it does not fit).  Same reservation computation as :meth:`submit`, nothing reserved; future
        failures are not foreseen and early exits count with their mean.  A training job's mini-batches
        are estimated back to back, as if no job submitted meanwhile came between them."""
        compiled, nodes = self._compile(plan, placement)
        fits, completion_s, _, _ = self._scheduler.reserve(compiled, nodes, job.origin, self.time_s, job.items,
                                                           compiled.expected_reach(job.items), job.iterations,
                                                           commit=False, book=False)
        return completion_s if fits else math.inf

    # ------------------------------------------------------------------ observation

    def pop_outcomes(self) -> list[JobOutcome]:
        """Outcomes resolved since the last call (or :meth:`step_compiled`), in resolution order."""
        return self._outcomes.pop()

    def resolved_outcomes(self) -> list[JobOutcome]:
        """What :meth:`pop_outcomes` would return, left in place."""
        return self._outcomes.outcomes(self._outcomes.rows())

    def drop_outcomes(self) -> None:
        """Forget the outcomes resolved and not popped yet."""
        self._outcomes.tallies[RESOLVED] = 0

    @property
    def apps(self) -> tuple[str, ...]:
        """The workload's app names (training apps last), in the order of their codes."""
        return self._apps

    @property
    def awaits(self) -> bool:
        """Whether a job arrived and awaits a decision."""
        return self._awaits

    @property
    def awaiting_app(self) -> str | None:
        """The app of the job awaiting a decision (None: none)."""
        return self._apps[int(self._current[JOB_APP])] if self._awaits else None

    @property
    def awaiting(self) -> Job | None:
        """The job that arrived and awaits a decision (None: none)."""
        if not self._awaits:
            return None
        if self._awaiting_job is None:  # built when first asked for
            self._awaiting_job = job_of_row(self._current.tolist(), self._apps)
        return self._awaiting_job

    def running_totals(self) -> tuple[int, int, int, int, float, float]:
        """(arrived, finished, failed, infeasible, energy_j, time_s) at once: the running counts, the cluster's
        energy so far (J) and the time (s)."""
        _, _, arrived, finished, failed, infeasible = self._outcomes.tallies.tolist()
        time_s, background_energy_j, job_energy_j = self._outcomes.clock.tolist()
        return arrived, finished, failed, infeasible, background_energy_j + job_energy_j, time_s

    def _sync_state(self) -> None:
        """Bring the state's rows that follow time (bandwidth, background load, up) to now."""
        if self._bandwidth_stale:
            self._bandwidth_rows[:] = self._network.bandwidth_mbps(self.time_s)
            self._bandwidth_stale = False
        self._sync_background_and_up(self.time_s)

    def _sync_background_and_up(self, time_s: float) -> None:
        """Bring the state's background load and up rows to ``time_s`` (seconds)."""
        if not self._background.is_constant:
            interval = int(time_s / self.config.background.interval_s)
            if interval != self._background_interval:
                self._state[BACKGROUND_ROW] = self._background.utilisation_vector(time_s)
                self._background_interval = interval
        if self._failures is not None:
            self._state[UP_ROW] = self._failures.up_vector(time_s)

    def synced_state(self) -> np.ndarray:
        """The node values now with busy-until times as absolute times (not yet seconds from now, nor floored):
        a read-only view of the simulator's own ``(len(NODE_VALUES), nodes)`` array, valid until it moves on."""
        self._sync_state()
        return self._state_view

    def node_values(self) -> np.ndarray:
        """The cluster now as a fresh ``(len(NODE_VALUES), nodes)`` float64 array, rows
        :data:`~envs.sim.types.NODE_VALUES` (the fields of :class:`ClusterSnapshot`; ``up`` as 1.0 / 0.0)."""
        values = self.synced_state().copy()
        times_s = values[:_TIMES]
        times_s -= self.time_s
        np.maximum(times_s, 0.0, out=times_s)  # busy-until times that passed: nothing queued
        return values

    @property
    def free_memory_bytes(self) -> np.ndarray:
        """Free memory of each node now, bytes (a read-only view that follows the simulation)."""
        return self._free_memory_view

    def up_nodes(self) -> np.ndarray | None:
        """Whether each node is up now (a fresh bool array); None when failures are off (all up)."""
        if self._failures is None:
            return None
        return self._failures.up_vector(self.time_s)

    def snapshot(self) -> ClusterSnapshot:
        """The cluster now, as fresh arrays (rows of one :meth:`node_values` array)."""
        return ClusterSnapshot.of(self.time_s, self.node_values())

    @property
    def time_s(self) -> float:
        """Simulated time now, seconds."""
        return float(self._outcomes.clock[TIME_S])

    @property
    def arrived(self) -> int:
        """Jobs that arrived this episode."""
        return int(self._outcomes.tallies[ARRIVED])

    @property
    def finished(self) -> int:
        """Jobs whose result reached the origin."""
        return int(self._outcomes.tallies[FINISHED_JOBS])

    @property
    def failed(self) -> int:
        """Jobs that failed (infeasible ones included)."""
        return int(self._outcomes.tallies[FAILED_JOBS])

    @property
    def infeasible(self) -> int:
        """Jobs rejected at submission."""
        return int(self._outcomes.tallies[INFEASIBLE_JOBS])

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
        clock = self._outcomes.clock
        return float(clock[BACKGROUND_ENERGY_J] + clock[JOB_ENERGY_J])
