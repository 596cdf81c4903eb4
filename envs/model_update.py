"""EdgeModelUpdate: choose which edge devices re-train a model, and the share of the data each gets.

Deep-Edge (Bhattacharjee et al., IEEE ICFEC 2020) re-trains models on the edge
devices themselves, which already run latency-critical periodic tasks.  Here
**a step is one decision for one re-training job**: the action names each
device's share level, the job runs to its end in the training simulator
(:mod:`envs.training.data_parallel`: synchronous rounds, a parameter server,
transfers over trace-driven links, device failures), and the reward is what
that job cost.  Episodes hold ``jobs_per_episode`` jobs (then truncation);
simulated time moves on by the job's duration plus ``jobs.interval_s``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.training.cluster import TrainingCluster
from envs.training.data_parallel import DataParallelOptions, RetrainingResult, Worker, run_data_parallel
from envs.training.interference import count_misses
from envs.training.jobs import RetrainingJob, model_costs
from envs.training.links import NO_FAILURES
from envs.training.samples import apportion
from envs.training.settings import DEFAULT_UPDATE_SCENARIO, load_update_settings

DEVICE_FEATURES = ("speed", "background_utilisation", "tightest_deadline", "least_slack", "least_slack_ratio",
                   "uplink", "downlink", "up")
"""Per-device blocks of the observation, in order (one entry per edge device each)."""

CLIP = 10.0
"""Normalised observation entries are clipped to [0, CLIP]."""


class EdgeModelUpdateEnv(gym.Env):
    """One decision per re-training job: which devices take part and the share of the data each gets.

    Observation (flat ``float32``, ``8 N + 2 + M + 4`` entries, ``N`` edge devices, ``M`` models), each
    normalised and clipped to [0, 10]: per device (blocks of :data:`DEVICE_FEATURES`) its speed factor /
    the fastest device's, background utilisation, its tightest background deadline and least slack
    (deadline - execution) / ``observation.task_time_scale_s``, least slack / execution, uplink and
    downlink bandwidth / ``observation.bandwidth_scale_mbps``, up (0/1); then the WAN (parameter-server
    uplink, cloud downlink); then the job: model one-hot, samples / ``samples_scale``, epochs / the
    largest epochs, has a deadline (0/1), deadline / ``observation.time_scale_s``.

    Action: ``MultiDiscrete([K + 1] * (N + 1))``: a share level per edge device, then one for the
    cloud server (0 = not taking part; data is divided in proportion to the levels).  ``action_masks()``
    (the flat per-dimension mask MaskablePPO takes) allows only level 0 for a device that is down.  A
    level chosen for a down device anyway is dropped (``info["dropped_choices"]``); an action with no
    participant runs nothing and costs ``reward.infeasible_penalty``.

    Reward: ``-duration / reward.time_scale_s - miss_penalty * background deadlines missed
    - deadline_penalty * [finished after the job's deadline] - failed_job_penalty * [unfinished]``;
    each part and the job's measurements are in ``info`` (plain scalars).

    Args:
        scenario: a name in ``envs/update_scenarios`` or a YAML path.
        config: overrides of its settings (sections merged key by key; unknown keys raise).
    """

    metadata = {"render_modes": []}

    def __init__(self, scenario: str = DEFAULT_UPDATE_SCENARIO, config: Mapping[str, Any] | None = None):
        self.settings = load_update_settings(scenario, config)
        self.cluster = TrainingCluster(self.settings)
        self.models = list(self.settings.jobs.models)
        for model in self.models:
            model_costs(model)  # an unknown model fails here, naming the shipped ones
        self.options = DataParallelOptions(**self.settings.training.model_dump())
        devices = self.cluster.edge_count
        self.share_levels = self.settings.share_levels
        self.action_space = spaces.MultiDiscrete([self.share_levels + 1] * (devices + 1))
        size = len(DEVICE_FEATURES) * devices + 2 + len(self.models) + 4
        self.observation_space = spaces.Box(0.0, CLIP, shape=(size,), dtype=np.float32)
        self._fastest_speed = max(device.speed_factor for device in self.cluster.devices)
        self.job: RetrainingJob | None = None
        self.time_s = 0.0
        self._jobs_done = 0

    # -- Gymnasium API ----------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.cluster.reset(self.np_random)
        self.time_s = 0.0
        self._jobs_done = 0
        self.job = self._draw_job()
        return self._observation(), self._info({}, None, dropped=0)

    def step(self, action):
        if self.job is None:
            raise RuntimeError("the episode is over (truncated): call reset() first")
        levels = np.asarray(action, dtype=np.int64).reshape(-1)
        if levels.shape != self.action_space.shape or np.any(levels < 0) or np.any(levels > self.share_levels):
            raise ValueError(f"action must be {self.action_space.shape[0]} share levels in 0..{self.share_levels}, "
                             f"got {levels.tolist()}")
        up = self.cluster.up(self.time_s)
        dropped = int(np.sum((levels[:-1] > 0) & ~up))
        levels[:-1] = np.where(up, levels[:-1], 0)
        result = self.run_job(self.job, levels) if levels.any() else None
        parts = self._reward_parts(result)
        self.time_s = (result.end_s if result is not None else self.time_s) + self.settings.jobs.interval_s
        self._jobs_done += 1
        info = self._info(parts, result, dropped)
        self.job = self._draw_job() if self._jobs_done < self.settings.jobs_per_episode else None
        reward = -(parts["time"] + parts["misses"] + parts["deadline"] + parts["penalty"])
        return self._observation(), float(reward), False, self.job is None, info

    def action_masks(self) -> np.ndarray:
        """Per dimension ``K + 1`` booleans (level 0 first), concatenated: down devices may only take 0."""
        levels = self.share_levels + 1
        masks = np.ones((self.cluster.edge_count + 1, levels), dtype=bool)
        masks[:-1][~self.cluster.up(self.time_s), 1:] = False
        return masks.reshape(-1)

    # -- the job ----------------------------------------------------------------------------------

    def run_job(self, job: RetrainingJob, levels: np.ndarray) -> RetrainingResult:
        """Run ``job`` from the current time with share ``levels`` (one per device, then the cloud)."""
        costs = model_costs(job.model)
        cluster = self.cluster
        node_of_dimension = list(range(cluster.edge_count)) + [cluster.cloud]
        workers = [Worker(node=node, seconds_per_sample=cluster.seconds_per_sample(node, costs), weight=float(level))
                   for node, level in zip(node_of_dimension, levels.tolist()) if level > 0]
        injected = self._injected_failure(job, workers) if self.settings.failures.mode == "injected" else {}
        result = run_data_parallel(job, costs, workers, cluster.network, cluster.parameter_server, self.time_s,
                                   cluster.failures or NO_FAILURES, self.options, fail_after_training_s=injected)
        result.background_misses = sum(
            int(count_misses(cluster.tasks[node], intervals).sum())
            for node, intervals in result.busy_intervals_s.items() if node < cluster.edge_count
        )
        return result

    def _injected_failure(self, job: RetrainingJob, workers: list[Worker]) -> dict[int, float]:
        """{node: training seconds}: the edge participant with the most samples fails once it has trained for
        ``injected_fraction`` of its planned compute (its own progress, not wall-clock time from the job's
        start, which on a slow link can pass before it has received its data); {} if no edge device takes part."""
        shares = apportion(job.samples, [worker.weight for worker in workers])
        edge = [(share, worker) for share, worker in zip(shares, workers) if worker.node < self.cluster.edge_count]
        if not edge:
            return {}
        share, worker = max(edge, key=lambda pair: (pair[0], -pair[1].node))
        compute_s = share * job.epochs * worker.seconds_per_sample
        return {worker.node: self.settings.failures.injected_fraction * compute_s}

    def _draw_job(self) -> RetrainingJob:
        jobs, rng = self.settings.jobs, self.np_random
        deadline_s = None if jobs.deadline_s is None else float(rng.uniform(jobs.deadline_s.low, jobs.deadline_s.high))
        return RetrainingJob(model=self.models[int(rng.integers(len(self.models)))],
                             samples=int(rng.integers(jobs.samples[0], jobs.samples[1] + 1)),
                             epochs=int(rng.integers(jobs.epochs[0], jobs.epochs[1] + 1)),
                             deadline_s=deadline_s)

    # -- reward, observation, info ----------------------------------------------------------------

    def _reward_parts(self, result: RetrainingResult | None) -> dict[str, float]:
        weights = self.settings.reward
        if result is None:
            return {"time": 0.0, "misses": 0.0, "deadline": 0.0, "penalty": weights.infeasible_penalty}
        late = result.finished and self.job.deadline_s is not None and result.duration_s > self.job.deadline_s
        return {"time": result.duration_s / weights.time_scale_s,
                "misses": weights.miss_penalty * result.background_misses,
                "deadline": weights.deadline_penalty * late,
                "penalty": 0.0 if result.finished else weights.failed_job_penalty}

    def _observation(self) -> np.ndarray:
        cluster, scales = self.cluster, self.settings.observation
        devices = cluster.edge_count
        tasks = cluster.tasks
        bandwidth = cluster.network.bandwidth_mbps(self.time_s) / scales.bandwidth_scale_mbps
        uplink, downlink = bandwidth[:devices], bandwidth[cluster.network.node_count:][:devices]
        blocks = [
            [device.speed_factor / self._fastest_speed for device in cluster.devices],
            cluster.background_utilisation(),
            [min((t.deadline_s for t in ts), default=0.0) / scales.task_time_scale_s for ts in tasks],
            [min((t.slack_s for t in ts), default=0.0) / scales.task_time_scale_s for ts in tasks],
            [min((t.slack_s / t.execution_s for t in ts), default=CLIP) for ts in tasks],
            uplink,
            downlink,
            cluster.up(self.time_s).astype(float),
            [bandwidth[cluster.parameter_server], bandwidth[cluster.network.node_count + cluster.cloud]],
        ]
        job = np.zeros(len(self.models) + 4)
        if self.job is not None:
            jobs = self.settings.jobs
            job[self.models.index(self.job.model)] = 1.0
            job[len(self.models):] = [self.job.samples / scales.samples_scale, self.job.epochs / jobs.epochs[1],
                                      float(self.job.deadline_s is not None),
                                      (self.job.deadline_s or 0.0) / scales.time_scale_s]
        flat = np.concatenate([np.asarray(block, dtype=float) for block in blocks] + [job])
        return np.clip(flat, 0.0, CLIP).astype(np.float32)

    def _info(self, parts: Mapping[str, float], result: RetrainingResult | None, dropped: int) -> dict[str, Any]:
        finished = result is not None and result.finished
        return {
            "reward_time": -parts.get("time", 0.0),
            "reward_misses": -parts.get("misses", 0.0),
            "reward_deadline": -parts.get("deadline", 0.0),
            "reward_penalty": -parts.get("penalty", 0.0),
            "training_time_s": result.duration_s if result is not None else 0.0,
            "background_misses": result.background_misses if result is not None else 0,
            "participants": len(result.busy_intervals_s) if result is not None else 0,
            "finished": finished,
            "infeasible": bool(parts) and result is None,
            "failed_workers": len(result.failed_nodes) if result is not None else 0,
            "reassigned_samples": result.reassigned_samples if result is not None else 0,
            "unprocessed_samples": result.unprocessed_samples if result is not None else 0,
            "updates": result.updates if result is not None else 0,
            "staleness_mean": float(np.mean(result.staleness)) if result is not None and result.staleness else 0.0,
            "gigabytes_sent": result.bytes_sent / 1e9 if result is not None else 0.0,
            "dropped_choices": dropped,
            "time_s": self.time_s,
        }
