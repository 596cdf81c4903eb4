"""The cluster simulator: executes split plans on a simulated heterogeneous edge cluster.

``ClusterSimulator`` is imported on first use: the cluster modules it builds on
import the configuration types from here.
"""

from envs.sim.types import (
    NODE_VALUES,
    AppConfig,
    ArrivalConfig,
    BackgroundConfig,
    ClusterSnapshot,
    FailureConfig,
    Job,
    JobOutcome,
    LinkConfig,
    NodeConfig,
    SimulatorConfig,
    TrainingJobsConfig,
    WorkloadConfig,
)

__all__ = [
    "NODE_VALUES",
    "AppConfig",
    "ArrivalConfig",
    "BackgroundConfig",
    "ClusterSimulator",
    "ClusterSnapshot",
    "FailureConfig",
    "Job",
    "JobOutcome",
    "LinkConfig",
    "NodeConfig",
    "SimulatorConfig",
    "TrainingJobsConfig",
    "WorkloadConfig",
]


def __getattr__(name: str):
    if name == "ClusterSimulator":
        from envs.sim.engine import ClusterSimulator

        return ClusterSimulator
    raise AttributeError(f"module 'envs.sim' has no attribute {name!r}")
