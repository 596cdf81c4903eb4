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
* ``cloud_only``: upload the data over the WAN and train on the cloud server.

:func:`train_ppo` trains sb3-contrib's MaskablePPO on the environment (via
:class:`agents.sb3_agents.SB3Agent`, used as it is).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from agents.sb3_agents import SB3Agent
from envs.model_update import EdgeModelUpdateEnv

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


def deep_edge(env: EdgeModelUpdateEnv) -> np.ndarray:
    cluster = env.cluster
    safe = cluster.up(env.time_s) & ~np.array([cluster.would_miss(device) for device in range(cluster.edge_count)])
    if not safe.any():
        return cloud_only(env)
    return _action(env, [cluster.effective_speed(device) if safe[device] else 0.0
                         for device in range(cluster.edge_count)])


def cloud_only(env: EdgeModelUpdateEnv) -> np.ndarray:
    return _action(env, [0.0] * env.cluster.edge_count, cloud_weight=1.0)


SCHEDULERS: dict[str, Scheduler] = {
    "all_equal": all_equal,
    "all_proportional": all_proportional,
    "deep_edge": deep_edge,
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
