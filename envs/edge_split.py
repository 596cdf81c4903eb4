"""EdgeSplit: split a DNN and place its fragments on a simulated heterogeneous edge cluster."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from envs.dnn.plan import FAMILIES, SplitPlan
from envs.observation import ActionTable, ObservationBuilder
from envs.render import render_image, render_text
from envs.reward import TOTALS, parts_of_totals
from envs.scenarios import DEFAULT_SCENARIO, Scenario, load_scenario
from envs.sim.compiled_step import INVALID
from envs.sim.engine import ClusterSimulator
from envs.sim.types import ClusterSnapshot
from envs.step_kernel import StepArrays, step_kernel


class EdgeSplitEnv(gym.Env):
    """One decision per arriving DNN job: how to split the model and where to run each fragment.

    **Step = one decision for one arriving job** (event-driven).  ``step(action)``
    submits the waiting job with the split plan and placement the action names,
    then the simulator runs until the next job arrives.  The reward of a step is
    what the jobs that finished or failed since the previous step earned
    (:mod:`envs.reward`; SplitPlace's ``0.5 [met deadline] + 0.5 * 10 * max(0,
    accuracy - 0.9)`` per job by default).  Episodes never terminate; they are
    truncated once simulated time passes the scenario's ``horizon_s`` (the last
    observation then has zero job entries).

    Observation: a flat ``float32`` Box, per-node load, link backlogs, memory,
    state and bandwidth followed by the job (layout:
    :class:`envs.observation.ObservationBuilder`).
    Action: ``MultiDiscrete([5 families, variants, nodes x fragment slots])``
    (:class:`envs.observation.ActionTable`); :meth:`action_masks` gives the flat
    mask sb3-contrib's MaskablePPO takes; :meth:`decode_action` and
    :meth:`encode_action` translate between actions and (plan, placement).

    An action that cannot run (a family without plans for the app, a fragment
    on a down node or where its memory does not fit) is not a crash: the job is
    rejected at once (``ClusterSimulator.reject`` resp. ``submit``), counted as
    failed with reason ``"infeasible"``, and costs ``reward.infeasible_penalty``
    in the same step.

    ``info`` holds only plain scalars: the reward parts (``reward_sla``,
    ``reward_accuracy``, ``reward_energy``, ``reward_penalty``), the jobs
    resolved this step (``jobs_finished``, ``jobs_failed``, ``jobs_met_deadline``,
    ``jobs_infeasible``), whether this step's action was rejected
    (``action_infeasible``), the episode's running counts (``arrived``, ``finished``,
    ``failed``, ``in_flight``, ``infeasible``; arrived = finished + failed + in_flight),
    ``energy_j`` (cluster energy so far, joules) and ``time_s`` (simulated time).

    With training jobs on (the scenario's ``training_jobs``), split-learning jobs
    arrive beside the inference jobs and are decided with the same action (their
    app ``<model>_training`` offers the model's unsplit and layer-chain training
    plans); the observation gains the job's kind and iterations, and ``info``
    the training jobs resolved this step (``training_jobs_finished``,
    ``training_jobs_failed``).  A training job earns no accuracy bonus
    (its plans have accuracy 0), only the SLA part.

    Args:
        scenario: a name from ``envs/scenarios`` or a path to a scenario YAML file.
        config: overrides of the scenario's settings (see :mod:`envs.scenarios`).
        render_mode: None; ``"ansi"``: :meth:`render` returns a text view of the cluster (clock, job
            counts, the waiting job, the last step's outcomes and the busiest nodes); ``"rgb_array"``:
            an image of the busiest nodes' queues and link backlogs (:mod:`envs.render`).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}  # fps: for video recorders

    def __init__(self, scenario: str = DEFAULT_SCENARIO, config: Mapping[str, Any] | None = None,
                 render_mode: str | None = None):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode: {render_mode!r} is not supported; allowed: None or "
                             f"{self.metadata['render_modes']}")
        self.render_mode = render_mode
        self.scenario: Scenario = load_scenario(scenario, config)
        self.simulator = ClusterSimulator(self.scenario.simulator, np.random.default_rng(0))
        nodes = self.scenario.simulator.nodes
        self.actions = ActionTable(self.scenario.plans, len(nodes))
        workload = self.scenario.simulator.workload
        training = workload.training
        item_sizes = {app.name: (app.items, app.input_bytes) for app in workload.apps}  # (items, bytes per item)
        if training is not None:
            item_sizes.update((app, (training.batch_size, sample_bytes))
                              for app, sample_bytes in zip(training.apps, training.sample_bytes))
        self._training_apps = frozenset(training.apps if training is not None else ())
        apps = self.actions.apps
        self.observations = ObservationBuilder(
            apps=apps,
            app_serial_latency_s=[
                min(sum(f.reference_latency_s for f in p.fragments) for p in self.scenario.plans[app]) for app in apps
            ],
            app_items=[item_sizes[app][0] for app in apps],
            app_input_bytes=[item_sizes[app][1] for app in apps],
            node_usable_memory_bytes=np.array([node.device.usable_memory_bytes for node in nodes]),
            fastest_speed_factor=max(node.device.speed_factor for node in nodes),
            scales=self.scenario.observation,
            training=training is not None,
        )
        self.observation_space = self.observations.space
        self.action_space = self.actions.space
        self._reward_weights = self.scenario.reward
        self._masks = np.zeros(self.actions.space.nvec.sum(), dtype=bool)  # of the awaiting job, when ready
        self._masks_ready = False  # whether the last step wrote them
        self.simulator.attach(self._arrays_of_step()._asdict())
        self._snapshot = None  # taken when asked for

    def _arrays_of_step(self) -> StepArrays:
        """The arrays the compiled step reads (:mod:`envs.step_kernel`): the plan of each (app, family, variant) by
        library id, the action's dimensions, the observation's constants."""
        simulator, actions, observations = self.simulator, self.actions, self.observations
        plan_table = np.zeros((len(simulator.apps), len(FAMILIES), 1 + actions.variant_count), dtype=np.int64)
        for code, app in enumerate(simulator.apps):
            for family, group in enumerate(actions.plan_groups(app)):
                plan_table[code, family, 0] = len(group)
                plan_table[code, family, 1: 1 + len(group)] = simulator.plan_ids(group)
        masks = actions.mask_tables
        return StepArrays(plan_table=plan_table, nvec=np.array(actions.space.nvec, dtype=np.int64),
                          app_index=np.array([actions.apps.index(app) for app in simulator.apps], dtype=np.int64),
                          accuracy_floor=float(self._reward_weights.accuracy_floor),
                          node_factor=observations.node_factor, observation_scalars=observations.scalars,
                          fastest_latency_s=observations.fastest_latency_s, job_entries=observations.job_entries,
                          mask_heads=masks.heads, mask_thresholds=masks.thresholds,
                          mask_slot_min_bytes=masks.slot_min_bytes, mask_forced=masks.forced,
                          mask_largest_slot_min_bytes=masks.largest_slot_min_bytes,
                          mask_largest_fragment_bytes=masks.largest_fragment_bytes, mask_all_fit=masks.all_fit,
                          masks=self._masks)

    # -- Gymnasium API ----------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        job = self.simulator.reset(self.np_random)
        self._snapshot = None
        self._masks_ready = False
        info = self._info(parts_of_totals([0.0] * len(TOTALS), self._reward_weights), False,
                          self.simulator.running_totals())
        return self.observations.build(self.simulator, job), info

    def step(self, action):
        simulator = self.simulator
        if not simulator.awaits:
            self._waiting_job()  # raises
        action = self.actions.as_array(action)
        observation = np.empty(self.observations.size, dtype=np.float32)
        arguments = (action, observation)
        if self._training_apps and simulator.awaiting.training:
            # its mini-batches are reserved one at a time, by the simulator's Python part
            simulator.drop_outcomes()
            rejected = self._submit(simulator.awaiting, action)
            _, result = simulator.step_compiled(step_kernel, arguments, submitted=True)
        else:
            rejected, result = simulator.step_compiled(step_kernel, arguments)
            if result[0] == INVALID:
                self.actions.decode(action, simulator.awaiting_app)  # raises the ValueError that names the action
        self._snapshot = None  # taken when asked for: nothing changes until the next step
        self._masks_ready = simulator.awaits  # the step wrote the arriving job's masks
        parts = parts_of_totals(result[3:9], self._reward_weights)
        return observation, parts.total, False, not simulator.awaits, self._info(parts, rejected, result[9:])

    def _submit(self, job, action: np.ndarray) -> bool:
        """Submit ``job`` as ``action`` says through the simulator's Python part; returns whether it was rejected."""
        plan, placement = self.actions.decode(action, job.app)
        if plan is None:  # the app has no plan in the chosen family
            self.simulator.reject(job, FAMILIES[int(action[0])])
            return True
        return not self.simulator.submit(job, plan, placement)

    def render(self) -> str | np.ndarray | None:
        """The cluster now: text (``"ansi"``, :func:`envs.render.render_text`), an RGB array (``"rgb_array"``,
        :func:`envs.render.render_image`), or None without a render mode."""
        if self.render_mode is None:
            gym.logger.warn("render() was called without a render_mode; make the env with render_mode='ansi' "
                            "or 'rgb_array'")
            return None
        simulator = self.simulator
        if self.render_mode == "rgb_array":
            return render_image(self.scenario.name, self.snapshot, simulator.counters)
        device_names = [node.device.name for node in self.scenario.simulator.nodes]
        return render_text(self.scenario.name, device_names, self.snapshot, simulator.counters,
                           simulator.energy_j, simulator.awaiting, self.last_outcomes)

    def action_masks(self) -> np.ndarray:
        """Flat boolean mask for the waiting job: families, then variants, then nodes per fragment slot."""
        if self._masks_ready:
            return self._masks.copy()
        simulator = self.simulator
        if not simulator.awaits:
            self._waiting_job()  # raises
        return self.actions.masks(simulator.awaiting_app, simulator.free_memory_bytes, simulator.up_nodes())

    # -- helpers for heuristic agents -------------------------------------------------------------

    @property
    def job(self):
        """The job waiting for a decision (``envs.sim.types.Job``), None once the episode is over."""
        return self.simulator.awaiting

    @property
    def snapshot(self) -> ClusterSnapshot:
        """The cluster when the waiting job arrived (``envs.sim.types.ClusterSnapshot``)."""
        if self._snapshot is None:
            self._snapshot = self.simulator.snapshot()
        return self._snapshot

    @property
    def last_outcomes(self) -> tuple:
        """How the jobs resolved during the last step ended (``envs.sim.types.JobOutcome``), in order."""
        return tuple(self.simulator.resolved_outcomes())

    def plans(self) -> tuple[SplitPlan, ...]:
        """The split plans the waiting job may run with, in action order."""
        return self.actions.plans(self._waiting_job().app)

    def decode_action(self, action) -> tuple[SplitPlan | None, tuple[int, ...]]:
        """(plan, node per fragment) that ``action`` names for the waiting job (plan None: no such family)."""
        return self.actions.decode(action, self._waiting_job().app)

    def encode_action(self, plan: SplitPlan, placement: Sequence[int]) -> np.ndarray:
        """The action that runs the waiting job with ``plan`` and ``placement`` (one node per fragment)."""
        return self.actions.encode(plan, placement, self._waiting_job().app)

    # -- internals --------------------------------------------------------------------------------

    def _waiting_job(self):
        job = self.simulator.awaiting
        if job is None:
            if self.simulator.arrived == 0 and self.simulator.time_s > 0:
                raise RuntimeError(f"no job arrived within this episode's horizon_s={self.scenario.simulator.horizon_s} "
                                   "s, so it has no decision to make: raise horizon_s or the arrival rate")
            raise RuntimeError("no job is waiting for a decision: the episode is over (truncated) or not started; "
                               "call reset()")
        return job

    def _info(self, parts, rejected: bool, running: Sequence) -> dict[str, Any]:
        """The step's info: the reward ``parts``, whether the action was ``rejected``, and the ``running``
        (arrived, finished, failed, infeasible, energy_j, time_s) of the episode."""
        arrived, finished, failed, infeasible, energy_j, time_s = running
        sla, accuracy, energy, penalty, jobs_finished, jobs_failed, jobs_met_deadline, jobs_infeasible = parts
        info = {
            "reward_sla": sla,
            "reward_accuracy": accuracy,
            "reward_energy": energy,
            "reward_penalty": penalty,
            "jobs_finished": jobs_finished,
            "jobs_failed": jobs_failed,
            "jobs_met_deadline": jobs_met_deadline,
            "jobs_infeasible": jobs_infeasible,
            "action_infeasible": rejected,
            "arrived": arrived,
            "finished": finished,
            "failed": failed,
            "in_flight": arrived - finished - failed,
            "infeasible": infeasible,
            "energy_j": energy_j,
            "time_s": time_s,
        }
        if self._training_apps:
            training = [outcome.finished for outcome in self.last_outcomes if outcome.app in self._training_apps]
            info["training_jobs_finished"] = sum(training)
            info["training_jobs_failed"] = len(training) - info["training_jobs_finished"]
        return info
