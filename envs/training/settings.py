"""Settings of EdgeModelUpdate-v0: the cluster, background tasks, jobs, faults, reward and observation.

A settings file is YAML (``envs/update_scenarios/<name>.yaml`` or any path);
caller overrides (``config={...}``) replace top-level keys, except that mapping
sections are merged key by key.  Unknown keys are errors that name the key and
list the allowed ones (pydantic models with ``extra="forbid"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from envs.mappings import deep_merged, read_yaml_mapping
from envs.training.data_parallel import FAILURE_POLICIES, MODES

UPDATE_SCENARIO_DIR = Path(__file__).resolve().parent.parent / "update_scenarios"
"""Folder of the named settings files."""

DEFAULT_UPDATE_SCENARIO = "deep-edge"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Strict):
    """A closed interval ``[low, high]`` from which a value is drawn uniformly."""

    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self):
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        return self


class DeviceGroup(_Strict):
    device: str  # device type in envs/profiles/devices.yaml
    count: int = Field(default=1, ge=1)  # identical devices of this group


class LinkSettings(_Strict):
    trace_kinds: list[Literal["hsdpa", "fcc"]] = Field(default=["fcc"], min_length=1)  # bandwidth traces used
    bandwidth_scale: float = Field(default=1.0, gt=0)  # multiplies the trace (Mbit/s)
    latency_s: float = Field(default=0.0, ge=0)  # one-way latency, seconds


class ServerSettings(_Strict):
    device: str = "edge_server_t4"  # device type of the server
    link: LinkSettings = LinkSettings()


class BackgroundTaskSettings(_Strict):
    """Per device, latency-critical periodic tasks drawn at reset (envs.training.interference)."""

    tasks_per_device: tuple[int, int] = (1, 3)  # inclusive range of the number of tasks
    period_s: Range = Range(low=0.05, high=1.0)  # release period, seconds
    utilisation: Range = Range(low=0.02, high=0.12)  # execution_s / period_s of one task
    deadline_factor: Range = Range(low=1.5, high=5.0)  # deadline_s / execution_s (capped at the period)


class JobSettings(_Strict):
    """Re-training jobs, one per step, drawn uniformly."""

    models: list[str] = Field(default=["mobilenet_v2", "resnet18"], min_length=1)  # shipped profiles
    samples: tuple[int, int] = (1000, 4000)  # inclusive range of data-set sizes, samples
    epochs: tuple[int, int] = (1, 3)  # inclusive range of epochs
    deadline_s: Range | None = None  # None: no deadline; else drawn from this range, seconds
    interval_s: float = Field(default=600.0, ge=0)  # simulated time between a job's end and the next job


class TrainingSettings(_Strict):
    mode: str = "synchronous"  # one of envs.training.data_parallel.MODES
    failure_policy: str = "redistribute"  # one of envs.training.data_parallel.FAILURE_POLICIES
    rounds_per_epoch: int = Field(default=5, ge=1)  # gradient aggregations per epoch
    detection_s: float = Field(default=1.0, ge=0)  # seconds until the parameter server acts on a failure

    @model_validator(mode="after")
    def _choices(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {self.mode!r}")
        if self.failure_policy not in FAILURE_POLICIES:
            raise ValueError(f"failure_policy must be one of {list(FAILURE_POLICIES)}, got {self.failure_policy!r}")
        return self


class FailureSettings(_Strict):
    """Edge-device failures (the parameter server and the cloud are taken to be reliable)."""

    mode: Literal["none", "injected", "random"] = "none"  # injected: one per job; random: MTBF/MTTR
    injected_fraction: float = Field(default=0.5, gt=0, lt=1)  # injected: the participant with the most
    #   samples fails once it has trained for this fraction of its planned compute time
    mtbf_s: float = Field(default=86_400.0, gt=0)  # random: mean up-time, seconds
    mttr_s: float = Field(default=600.0, gt=0)  # random: mean repair time, seconds


class RewardSettings(_Strict):
    time_scale_s: float = Field(default=300.0, gt=0)  # re-training seconds that cost 1.0
    miss_penalty: float = Field(default=0.001, ge=0)  # per background deadline missed
    deadline_penalty: float = Field(default=1.0, ge=0)  # job finished after its own deadline
    failed_job_penalty: float = Field(default=2.0, ge=0)  # every participant failed: job unfinished
    infeasible_penalty: float = Field(default=2.0, ge=0)  # action with no participant (nothing runs)


class ObservationSettings(_Strict):
    bandwidth_scale_mbps: float = Field(default=100.0, gt=0)  # Mbit/s that map to 1.0
    task_time_scale_s: float = Field(default=1.0, gt=0)  # background deadline / slack seconds that map to 1.0
    samples_scale: float = Field(default=10_000.0, gt=0)  # data-set samples that map to 1.0
    time_scale_s: float = Field(default=600.0, gt=0)  # job deadline seconds that map to 1.0


class UpdateSettings(_Strict):
    """Every key of an EdgeModelUpdate-v0 settings file."""

    description: str = ""
    devices: list[DeviceGroup] = Field(min_length=1)  # edge devices that may train, in node order
    device_link: LinkSettings = LinkSettings()  # every edge device's link to the switch
    parameter_server: ServerSettings = ServerSettings()  # holds the data, aggregates gradients
    cloud: ServerSettings = ServerSettings()  # the cloud training server behind the WAN
    trace_split: Literal["train", "test"] = "train"  # bandwidth traces of envs/profiles/traces/<split>
    bandwidth_step_s: float = Field(default=1.0, gt=0)  # traces averaged over steps of this length, seconds
    background: BackgroundTaskSettings = BackgroundTaskSettings()
    jobs: JobSettings = JobSettings()
    jobs_per_episode: int = Field(default=8, ge=1)  # decisions per episode (then truncation)
    share_levels: int = Field(default=10, ge=1)  # K: a participant's share weight is a level in 1..K
    training: TrainingSettings = TrainingSettings()
    failures: FailureSettings = FailureSettings()
    reward: RewardSettings = RewardSettings()
    observation: ObservationSettings = ObservationSettings()


def list_update_scenarios() -> list[str]:
    return sorted(path.stem for path in UPDATE_SCENARIO_DIR.glob("*.yaml"))


def load_update_settings(scenario: str = DEFAULT_UPDATE_SCENARIO,
                         overrides: Mapping[str, Any] | None = None) -> UpdateSettings:
    """The settings of ``scenario`` (a name or a YAML path) with ``overrides`` merged in, validated."""
    path = Path(scenario) if scenario.endswith((".yaml", ".yml")) else UPDATE_SCENARIO_DIR / f"{scenario}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown update scenario {scenario!r}; allowed: {list_update_scenarios()} or a YAML path")
    tree = read_yaml_mapping(path, f"update scenario {scenario!r}:")
    try:
        return UpdateSettings.model_validate(deep_merged(tree, overrides or {}))
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors())
        raise ValueError(f"update scenario {scenario!r}: {problems}") from None
