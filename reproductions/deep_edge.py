"""Deep-Edge (Bhattacharjee et al., IEEE ICFEC 2020): re-training beside latency-critical background tasks.

Each seed is one EdgeModelUpdate-v0 episode (``jobs_per_episode`` re-training
jobs on 3 Raspberry Pi 4, 3 Jetson Nano and 2 Intel NUC devices, each running
1-3 periodic latency-critical tasks).  Every scheduler decides every job of the
same episode; per job we record the re-training time and the background deadlines
missed, and per seed their means.  Failure cases: ``none``, and ``injected``
(per job, the participant with the most samples fails half way through its
planned compute; its share goes to the survivors, Deep-Edge's fault tolerance).

Schedulers (``agents/update_schedulers.py``): all devices with equal shares, all
devices with shares proportional to speed, Deep-Edge's (leave out devices whose
tasks would miss, proportional to the speed left on the rest), the same with
link-aware shares (``deep_edge_links``, our extension), cloud-only, and
MaskablePPO trained per seed and failure case on episodes of other seeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field
from tqdm import tqdm

from agents.update_schedulers import SCHEDULERS, train_ppo
from agents.config import StrictModel
from agents.plots import bar_chart_with_ci, save_figure
from envs.model_update import EdgeModelUpdateEnv
from reproductions.common import ReproductionConfig, write_tables

PAPER = "Bhattacharjee et al., 'Deep-Edge: An Efficient Framework for Deep Learning Model Update on Heterogeneous " \
        "Edge', IEEE ICFEC 2020 (arXiv 2004.05740)"

METRICS = {
    "training_time_s": "re-training time per job, s",
    "background_misses": "background deadlines missed per job",
    "reward": "reward per job",
    "reassigned_samples": "sample-passes of interrupted work redone by others per job",
}


class PPOSettings(StrictModel):
    total_steps: int = Field(default=2048, ge=1, description="training decisions")
    n_steps: int = Field(default=256, ge=2, description="rollout length per update")
    batch_size: int = Field(default=64, ge=2, description="minibatch size")
    training_seed_offset: int = Field(default=10_000, ge=1, description="training seeds = seed + offset")


class DeepEdgeConfig(ReproductionConfig):
    """configs/experiments/reproductions/deep_edge.yaml."""

    scenario: str = Field(default="deep-edge", description="envs/update_scenarios/<scenario>.yaml")
    jobs_per_episode: int = Field(default=8, ge=1)
    schedulers: list[Literal["all_equal", "all_proportional", "deep_edge", "deep_edge_links", "cloud_only",
                             "ppo"]] = Field(min_length=1)
    failure_cases: list[Literal["none", "injected"]] = Field(min_length=1)
    ppo: PPOSettings = PPOSettings()


CONFIG = DeepEdgeConfig


def _env(config: DeepEdgeConfig, failure: str) -> EdgeModelUpdateEnv:
    return EdgeModelUpdateEnv(config.scenario, {"jobs_per_episode": config.jobs_per_episode,
                                                "failures": {"mode": failure}})


def _policy(config: DeepEdgeConfig, name: str, failure: str, seed: int):
    """A function env, observation -> action for scheduler ``name``."""
    if name != "ppo":
        heuristic = SCHEDULERS[name]
        return lambda env, observation: heuristic(env)
    training_env = _env(config, failure)
    agent = train_ppo(training_env, config.ppo.total_steps, seed=seed + config.ppo.training_seed_offset,
                      algorithm_kwargs={"n_steps": config.ppo.n_steps, "batch_size": config.ppo.batch_size})
    return lambda env, observation: agent.predict(observation, env)


def _episode(env: EdgeModelUpdateEnv, policy, seed: int) -> dict[str, float]:
    """Per-job means of one episode."""
    observation, _ = env.reset(seed=seed)
    rows = []
    truncated = False
    while not truncated:
        observation, reward, _, truncated, info = env.step(policy(env, observation))
        rows.append({"training_time_s": info["training_time_s"], "background_misses": info["background_misses"],
                     "reward": reward, "reassigned_samples": info["reassigned_samples"],
                     "finished": float(info["finished"])})
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}


def run(config: DeepEdgeConfig, output: Path) -> None:
    cases = [(failure, name, seed) for failure in config.failure_cases for name in config.schedulers
             for seed in config.seeds]
    per_seed = []
    for failure, name, seed in tqdm(cases, desc="deep-edge episodes", unit="episode"):
        env = _env(config, failure)
        per_seed.append({"failure": failure, "scheduler": name, "seed": seed,
                         **_episode(env, _policy(config, name, failure, seed), seed)})
    preamble = (
        f"Re-training per job (mean ± 95 % CI over {len(config.seeds)} seeds, {config.jobs_per_episode} jobs each), "
        f"measured by `python scripts/reproduce.py deep-edge`.  Deep-Edge's claim ({PAPER}): scheduling "
        "re-training on the edge devices, leaving out those whose latency-critical tasks would miss deadlines, "
        "keeps the background tasks on time while re-training faster than uploading the data to the cloud, and "
        "survives a device dropping out by redistributing its share."
    )
    summary = write_tables(output, "deep_edge", per_seed, ["failure", "scheduler"], METRICS, digits=2,
                           preamble=preamble)
    for row in summary:
        row["case"] = f"{row['scheduler']} ({row['failure']})"
    plotted = {key: METRICS[key] for key in ("training_time_s", "background_misses")}
    save_figure(bar_chart_with_ci(summary, "case", plotted, "Deep-Edge: re-training beside latency-critical tasks"),
                output, "deep_edge")
