"""Workload of the simulated cluster: which jobs arrive, when, with which deadlines."""

from envs.workload.apps import (
    SPLITPLACE_APP_WEIGHTS,
    SPLITPLACE_ARRIVALS_PER_INTERVAL,
    SPLITPLACE_DEADLINE_INTERVALS,
    SPLITPLACE_INTERVAL_S,
    JobStream,
    splitplace_apps,
    splitplace_arrivals,
)
from envs.workload.arrivals import ArrivalTimes

__all__ = [
    "SPLITPLACE_APP_WEIGHTS",
    "SPLITPLACE_ARRIVALS_PER_INTERVAL",
    "SPLITPLACE_DEADLINE_INTERVALS",
    "SPLITPLACE_INTERVAL_S",
    "ArrivalTimes",
    "JobStream",
    "splitplace_apps",
    "splitplace_arrivals",
]
