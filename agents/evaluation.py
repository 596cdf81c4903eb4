"""Evaluation: run agents on held-out seeds, summarise with 95 % confidence intervals.

The interval of a metric over seeds is Student's t interval of the mean
(``scipy.stats.t.interval``), the usual choice for a handful of independent
runs; with one seed the half-width is NaN (no spread to estimate).
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium
import numpy as np
from scipy import stats

from agents.config import AgentConfig, ExperimentConfig
from agents.env_access import EnvView, JobOutcomes
from agents.protocol import Agent

LATEST_FILE = "latest.json"
"""Per agent, the pointer to its newest checkpoint (step and folder)."""

METRICS: dict[str, str] = {
    "average_reward": "average reward per job",
    "violation_rate": "deadline-violation rate (failed jobs count as violations)",
    "response_time_s": "mean response time of finished jobs, s",
    "accuracy": "mean accuracy of finished jobs",
    "energy_j": "mean energy per job, J",
    "decision_time_ms": "mean wall time of one agent decision, ms",
}
"""Columns of the evaluation table and their meaning."""


@dataclass(frozen=True)
class EpisodeMetrics:
    """Per-job averages of one evaluation episode (see :data:`METRICS`)."""

    average_reward: float
    violation_rate: float
    response_time_s: float
    accuracy: float
    energy_j: float
    decision_time_ms: float
    jobs: int


class EpisodeTally:
    """Running sums over the jobs resolved in one episode."""

    def __init__(self):
        self.jobs = self.finished = self.met = 0
        self.reward = self.response_time_s = self.accuracy = self.energy_j = 0.0

    def add(self, outcomes: JobOutcomes) -> None:
        self.jobs += outcomes.count
        self.finished += sum(outcomes.finished)
        self.met += sum(outcomes.met_deadline)
        self.reward += sum(outcomes.rewards)
        self.response_time_s += sum(t for t, done in zip(outcomes.response_time_s, outcomes.finished) if done)
        self.accuracy += sum(a for a, done in zip(outcomes.accuracy, outcomes.finished) if done)
        self.energy_j += sum(outcomes.energy_j)

    def metrics(self, decision_time_ms: float) -> EpisodeMetrics:
        """Per-job averages; NaN where no job (or no finished job) is there to average."""
        per_job = (lambda total: total / self.jobs) if self.jobs else (lambda total: math.nan)
        per_finished = (lambda total: total / self.finished) if self.finished else (lambda total: math.nan)
        return EpisodeMetrics(
            average_reward=per_job(self.reward),
            violation_rate=per_job(self.jobs - self.met),
            response_time_s=per_finished(self.response_time_s),
            accuracy=per_finished(self.accuracy),
            energy_j=per_job(self.energy_j),
            decision_time_ms=decision_time_ms,
            jobs=self.jobs,
        )


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of the 95 % t confidence interval (NaN half-width for one value)."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        raise ValueError("mean_ci95 needs at least one value")
    mean = float(array.mean())
    if array.size == 1:
        return mean, math.nan
    standard_error = stats.sem(array)
    if standard_error == 0:
        return mean, 0.0
    low, _ = stats.t.interval(0.95, df=array.size - 1, loc=mean, scale=standard_error)
    return mean, mean - float(low)


def run_episode(
    agent: Agent,
    env,
    seed: int,
    online_updates: bool,
    max_steps: int | None = None,
) -> EpisodeMetrics:
    """Play one episode from ``reset(seed=seed)``; the agent learns online if asked."""
    view = EnvView(env)
    observation, info = env.reset(seed=seed)
    agent.start_episode(seed)
    decision_s = 0.0
    steps = 0
    tally = EpisodeTally()
    while True:
        started = time.perf_counter()
        action = agent.predict(observation, env)
        decision_s += time.perf_counter() - started
        observation, reward, terminated, truncated, info = env.step(action)
        steps += 1
        tally.add(view.last_outcomes())
        if online_updates:
            agent.update(reward, info, env)
        if terminated or truncated or (max_steps is not None and steps >= max_steps):
            break
    return tally.metrics(decision_time_ms=1000.0 * decision_s / steps)


def summary_rows(results: dict[str, list[EpisodeMetrics]]) -> list[dict[str, float | str | int]]:
    """One row per agent: ``<metric>`` mean and ``<metric>_ci95`` half-width over episodes."""
    rows = []
    for label, episodes in results.items():
        row: dict[str, float | str | int] = {"agent": label, "episodes": len(episodes)}
        for metric in METRICS:
            mean, half_width = mean_ci95([getattr(episode, metric) for episode in episodes])
            row[metric] = mean
            row[f"{metric}_ci95"] = half_width
        rows.append(row)
    return rows


def write_csv(rows: list[dict], path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _format(mean: float, half_width: float) -> str:
    digits = 3 if abs(mean) < 100 else 1
    if math.isnan(half_width):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {half_width:.{digits}f}"


def markdown_table(rows: list[dict]) -> str:
    """A Markdown table of mean ± 95 % CI half-width per agent and metric."""
    header = ["agent"] + [METRICS[m] for m in METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(row["agent"])] + [_format(row[m], row[f"{m}_ci95"]) for m in METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def episode_rows(results: dict[str, list[EpisodeMetrics]], seeds: Sequence[int]) -> list[dict]:
    """Raw per-episode rows (agent, seed, metrics), for the CSV beside the summary."""
    return [
        {"agent": label, "seed": seed} | asdict(episode)
        for label, episodes in results.items()
        for seed, episode in zip(seeds, episodes)
    ]


def make_env(config: ExperimentConfig, scenario_overrides: dict | None = None) -> gymnasium.Env:
    """The experiment's environment, with extra scenario settings (e.g. the test traces)."""
    from envs.registration import register_envs

    register_envs()

    return gymnasium.make(config.env.id, **config.env.make_kwargs(scenario_overrides))


def latest_checkpoint(config: ExperimentConfig, label: str) -> tuple[int, Path] | None:
    """(step, folder) of the agent's newest checkpoint, or None if it has none."""
    pointer = config.run_dir / label / LATEST_FILE
    if not pointer.exists():
        return None
    latest = json.loads(pointer.read_text(encoding="utf-8"))
    return int(latest["step"]), config.run_dir / label / latest["folder"]


def save_checkpoint(agent: Agent, config: ExperimentConfig, label: str, step: int) -> Path:
    """Save the agent under ``<run dir>/<label>/checkpoints/step-<step>`` and point ``latest.json`` at it."""
    relative = Path("checkpoints") / f"step-{step:09d}"
    agent.save(config.run_dir / label / relative)
    (config.run_dir / label / LATEST_FILE).write_text(json.dumps({"step": step, "folder": str(relative)}),
                                                     encoding="utf-8")
    return config.run_dir / label / relative


def evaluate_agent(config: ExperimentConfig, agent_config: AgentConfig, checkpoint: Path | None,
                   seeds: Sequence[int], scenario_overrides: dict, online_updates: bool,
                   max_steps: int | None = None) -> list[EpisodeMetrics]:
    """One episode per seed; the agent restarts from ``checkpoint`` (or fresh) for every seed."""
    from agents.registry import build_agent

    env = make_env(config, scenario_overrides)
    try:
        results = []
        for seed in seeds:
            agent = build_agent(agent_config.name, agent_config.params, env)
            if checkpoint is not None:
                agent.load(checkpoint)
            results.append(run_episode(agent, env, seed, online_updates, max_steps))
        return results
    finally:
        env.close()
