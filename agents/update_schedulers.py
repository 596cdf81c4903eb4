"""Schedulers for EdgeModelUpdate-v0: which devices re-train a model and the share of the data each gets.

Each heuristic maps the (unwrapped) environment to an action: a share level per
edge device, then one for the cloud (see :class:`envs.model_update.EdgeModelUpdateEnv`).
Weights become levels by :func:`share_levels` (the largest weight gets level K).

* ``all_equal``: every device that is up, equal shares;
* ``all_proportional``: every device that is up, shares in proportion to its speed factor;
* ``deep_edge``: Deep-Edge's scheduler (Bhattacharjee et al., IEEE ICFEC 2020): leave out the
  devices whose background tasks would miss deadlines while training shares them, and give the
  rest shares in proportion to the speed left to training beside their background load; if no
  device is safe, train in the cloud;
* ``deep_edge_links``: the same safe devices, with shares that also count each device's links
  (:func:`link_aware_shares`): Deep-Edge's goal, least total re-training time, when every
  worker also receives its data and the model and pushes a gradient every round; a device
  whose link alone takes longer than the others need for the whole job is left out;
* ``cloud_only``: upload the data over the WAN and train on the cloud server.

:func:`train_ppo` trains sb3-contrib's MaskablePPO on the environment (via
:class:`agents.sb3_agents.SB3Agent`, used as it is).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from agents.sb3_agents import SB3Agent
from envs.cluster.network import MEGABITS_PER_BYTE
from envs.model_update import EdgeModelUpdateEnv
from envs.training.jobs import model_costs

Scheduler = Callable[[EdgeModelUpdateEnv], np.ndarray]


def share_levels(weights: Sequence[float], levels: int) -> np.ndarray:
    """Weights (>= 0) as whole levels 0..``levels``: ``round(levels * w / max w)``, at least 1 where w > 0."""
    weights = np.asarray(weights, dtype=float)
    if not np.any(weights > 0):
        return np.zeros(len(weights), dtype=np.int64)
    scaled = np.rint(levels * weights / weights.max()).astype(np.int64)
    return np.where(weights > 0, np.maximum(scaled, 1), 0)


def _action(env: EdgeModelUpdateEnv, device_weights: Sequence[float], cloud_weight: float = 0.0) -> np.ndarray:
    return share_levels(list(device_weights) + [cloud_weight], env.share_levels)


def all_equal(env: EdgeModelUpdateEnv) -> np.ndarray:
    return _action(env, env.cluster.up(env.time_s).astype(float))


def all_proportional(env: EdgeModelUpdateEnv) -> np.ndarray:
    speeds = np.array([device.speed_factor for device in env.cluster.devices])
    return _action(env, speeds * env.cluster.up(env.time_s))


def _safe_devices(env: EdgeModelUpdateEnv) -> np.ndarray:
    """Per edge device: up, and no background task of it would miss deadlines while training shares it."""
    cluster = env.cluster
    return cluster.up(env.time_s) & ~np.array([cluster.would_miss(device) for device in range(cluster.edge_count)])


def deep_edge(env: EdgeModelUpdateEnv) -> np.ndarray:
    cluster = env.cluster
    safe = _safe_devices(env)
    if not safe.any():
        return cloud_only(env)
    return _action(env, [cluster.effective_speed(device) if safe[device] else 0.0
                         for device in range(cluster.edge_count)])


def link_aware_shares(fixed_s: Sequence[float], seconds_per_share: Sequence[float]) -> np.ndarray:
    """Shares (summing to 1) that minimise the largest ``fixed_s[i] + share[i] * seconds_per_share[i]``.

    Water filling: all participants finish together at ``T = (1 + sum f/a) / sum 1/a`` over the
    participants, and a worker whose fixed time is at least ``T`` takes no share (dropped one at a time,
    the largest fixed time first, and ``T`` recomputed).  ``seconds_per_share`` must be > 0.
    """
    fixed, slope = np.asarray(fixed_s, dtype=float), np.asarray(seconds_per_share, dtype=float)
    if fixed.shape != slope.shape or fixed.ndim != 1 or fixed.size == 0 or not np.all(slope > 0):
        raise ValueError(f"need equal-length non-empty fixed_s and seconds_per_share > 0, got {fixed_s}, "
                         f"{seconds_per_share}")
    taking = np.ones(fixed.size, dtype=bool)
    for worker in np.argsort(-fixed, kind="stable"):
        finish_s = (1.0 + np.sum(fixed[taking] / slope[taking])) / np.sum(1.0 / slope[taking])
        if fixed[worker] < finish_s or taking.sum() == 1:
            break
        taking[worker] = False
    finish_s = (1.0 + np.sum(fixed[taking] / slope[taking])) / np.sum(1.0 / slope[taking])
    return np.where(taking, (finish_s - fixed) / slope, 0.0)


def deep_edge_links(env: EdgeModelUpdateEnv) -> np.ndarray:
    """Deep-Edge's safe devices with link-aware shares: for device ``i`` at the current link rates (the slower
    end of each path to and from the parameter server), fixed time = the model sent once plus, every round of
    every epoch, a model down and a gradient up; time per unit share = its whole share of the data sent once
    plus training all of it (``epochs`` passes at the speed left beside its background tasks)."""
    cluster, job = env.cluster, env.job
    safe = _safe_devices(env)
    if not safe.any():
        return cloud_only(env)
    costs = model_costs(job.model)
    network, server = cluster.network, cluster.parameter_server
    rates_mbps = np.maximum(network.bandwidth_mbps(env.time_s), 1e-6)  # uplinks, then downlinks; a stalled link: slow
    uplink_mbps, downlink_mbps = rates_mbps[:network.node_count], rates_mbps[network.node_count:]
    devices = np.flatnonzero(safe)
    down_mbps = np.minimum(uplink_mbps[server], downlink_mbps[devices])
    up_mbps = np.minimum(uplink_mbps[devices], downlink_mbps[server])
    rounds = job.epochs * env.options.rounds_per_epoch
    model_mbit = costs.param_bytes * MEGABITS_PER_BYTE
    fixed_s = model_mbit / down_mbps + rounds * (model_mbit / down_mbps + model_mbit / up_mbps)
    per_share_s = (job.samples * costs.sample_bytes * MEGABITS_PER_BYTE / down_mbps
                   + job.samples * job.epochs * np.array([cluster.seconds_per_sample(d, costs) for d in devices]))
    weights = np.zeros(cluster.edge_count)
    weights[devices] = link_aware_shares(fixed_s, per_share_s)
    return _action(env, weights)


def cloud_only(env: EdgeModelUpdateEnv) -> np.ndarray:
    return _action(env, [0.0] * env.cluster.edge_count, cloud_weight=1.0)


SCHEDULERS: dict[str, Scheduler] = {
    "all_equal": all_equal,
    "all_proportional": all_proportional,
    "deep_edge": deep_edge,
    "deep_edge_links": deep_edge_links,
    "cloud_only": cloud_only,
}
"""The heuristic schedulers by name."""


def scheduler(name: str) -> Scheduler:
    """The heuristic called ``name``; a clear error listing the names otherwise."""
    try:
        return SCHEDULERS[name]
    except KeyError:
        raise KeyError(f"unknown update scheduler {name!r}; allowed: {sorted(SCHEDULERS)}") from None


def train_ppo(env: EdgeModelUpdateEnv, total_steps: int, seed: int = 0,
              algorithm_kwargs: dict | None = None) -> SB3Agent:
    """MaskablePPO trained for ``total_steps`` decisions on ``env`` (its action masks used)."""
    agent = SB3Agent(env, algorithm="MaskablePPO", algorithm_kwargs=algorithm_kwargs, seed=seed)
    agent.learn(env, total_steps, seed=seed)
    return agent
