"""MDI-Exit (Colocrese, Koyuncu, Seferoglu, arXiv 2408.05247): model-distributed inference with early exits.

On the ``mdi-jetson`` scenario (four Jetson Nanos, MobileNetV2 and ResNet-50
jobs of 10 frames each), four arms play EdgeSplit-v0 with fixed policies, each
restricted to the planner's early-exit chains (cut at the exits, one fragment
per board) of one kind:

* **MDI**: threshold 1.0 (no item leaves early; the heads still run), no compression;
* **MDI + compression**: the same, activations between boards compressed;
* **MDI-Exit**: exit thresholds below 1.0 allowed, no compression;
* **MDI-Exit + compression**: both.

Two comparisons, over seeds and arrival rates (Poisson, jobs per second):

1. *Items per second at a fixed accuracy*: each arm serves each app with one
   fixed plan, the one with the most early exits whose top-1 stays within
   ``accuracy_drop`` of the unsplit model (compression's drop included), placed
   by the ``mdi`` preset's placement; items of finished jobs (and of jobs that
   met their deadline) per second, swept over ``arrival_rates_per_s``.
2. *Accuracy at a fixed arrival rate*: the ``mdi`` agent preset (most accurate
   plan estimated to meet the deadline, MDI-Exit's threshold adaptation to load)
   restricted to each arm's plans, at ``fixed_rate_per_s``: top-1 of finished
   items, and the "timely" top-1 in which a late job's items count as wrong.

The early-exit and compression figures of the ImageNet models are documented
assumptions (``docs/accuracy.md``), so the numbers test the mechanism, not the
paper's accuracies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import gymnasium
import matplotlib.pyplot as plt
import yaml
from pydantic import Field, field_validator, model_validator
from tqdm import tqdm

from agents.config import AGENT_PRESET_DIR, agent_presets
from agents.env_access import EnvView
from agents.protocol import SplitSelector, SplitThenPlace
from agents.registry import build_agent
from agents.plots import bar_chart_with_ci, save_figure
from envs.dnn.plan import SplitPlan
from envs.registration import register_envs
from envs.scenarios import list_scenarios
from reproductions.common import ReproductionConfig, write_tables

PAPER = ("Colocrese, Koyuncu, Seferoglu, 'Early-Exit meets Model-Distributed Inference at Edge Networks', "
         "arXiv 2408.05247")
PAPER_CLAIM = ("MDI-Exit processes more data when accuracy is fixed and results in higher accuracy for the fixed "
               "data rate (abstract; NVIDIA Jetson Nano testbed, MobileNetV2 and ResNet-50)")
COMPRESSION_MARK = "compression="
"""The planner's early-exit variants with compressed activations contain this (``...,compression=4.37``)."""


@dataclass(frozen=True)
class Arm:
    """One kind of early-exit chain: with or without early exits, with or without compression."""

    label: str
    early_exits: bool
    compression: bool

    def offers(self, plan: SplitPlan) -> bool:
        """Whether ``plan`` is an early-exit chain of this kind (an arm with early exits may also choose
        threshold 1.0, no early exit)."""
        if plan.family != "early_exit" or (COMPRESSION_MARK in plan.variant) != self.compression:
            return False
        return self.early_exits or not any(probability > 0.0 for probability in plan.exit_probability[:-1])


ARMS = (Arm("MDI", False, False), Arm("MDI + compression", False, True),
        Arm("MDI-Exit", True, False), Arm("MDI-Exit + compression", True, True))

THROUGHPUT_METRICS = {
    "items_per_s": "items finished per s",
    "on_time_items_per_s": "items on time per s",
    "accuracy": "top-1 of finished items",
}
ACCURACY_METRICS = {
    "accuracy": "top-1 of finished items",
    "timely_accuracy": "timely top-1 (late = wrong)",
    "violation_rate": "deadline-violation rate",
    "items_per_s": "items finished per s",
}


class MdiConfig(ReproductionConfig):
    """configs/experiments/reproductions/mdi.yaml."""

    scenario: str = Field(default="mdi-jetson", description="named scenario")
    scenario_config: dict = Field(default_factory=dict, description="overrides of the scenario's settings")
    agent: str = Field(default="mdi", description="agent preset (configs/agents) of the adaptive policy")
    arrival_rates_per_s: list[float] = Field(min_length=1, description="jobs per second, comparison 1")
    fixed_rate_per_s: float = Field(gt=0, description="jobs per second, comparison 2")
    accuracy_drop: float = Field(ge=0, lt=1, description="top-1 the fixed plans may lose against the unsplit model")

    @field_validator("scenario")
    @classmethod
    def _known_scenario(cls, scenario: str) -> str:
        if scenario not in list_scenarios():
            raise ValueError(f"unknown scenario {scenario!r}; allowed: {list_scenarios()}")
        return scenario

    @field_validator("agent")
    @classmethod
    def _known_agent(cls, agent: str) -> str:
        if agent not in agent_presets():
            raise ValueError(f"unknown agent preset {agent!r}; allowed: {agent_presets()}")
        return agent

    @field_validator("arrival_rates_per_s")
    @classmethod
    def _positive_rates(cls, rates: list[float]) -> list[float]:
        if any(rate <= 0 for rate in rates):
            raise ValueError(f"arrival rates must be > 0 jobs per second, got {rates}")
        return rates

    @model_validator(mode="after")
    def _no_arrival_override(self):
        if "rate_per_s" in self.scenario_config.get("arrivals", {}):
            raise ValueError("scenario_config.arrivals.rate_per_s is set by arrival_rates_per_s / fixed_rate_per_s")
        return self


class FilteredView(EnvView):
    """An :class:`EnvView` whose job is offered only the plans ``keep`` accepts."""

    def __init__(self, view: EnvView, keep: Callable[[SplitPlan], bool]):
        super().__init__(view.env, view.observation)
        self.keep = keep

    def plans(self) -> tuple[SplitPlan, ...]:
        return tuple(plan for plan in super().plans() if self.keep(plan))


class ArmSplit(SplitSelector):
    """``selector`` choosing among the arm's plans only."""

    def __init__(self, selector: SplitSelector, arm: Arm):
        self.selector = selector
        self.arm = arm

    def select(self, view: EnvView) -> SplitPlan:
        return self.selector.select(FilteredView(view, self.arm.offers))


class FixedPlan(SplitSelector):
    """Always the same plan per app."""

    def __init__(self, plans: dict[str, SplitPlan]):
        self.plans = plans

    def select(self, view: EnvView) -> SplitPlan:
        return self.plans[view.job.app]


def fixed_accuracy_plan(plans: Sequence[SplitPlan], arm: Arm, accuracy_drop: float) -> SplitPlan:
    """The arm's plan with the most early exits (lowest top-1) still within ``accuracy_drop`` of the unsplit model."""
    unsplit = next(plan for plan in plans if plan.family == "none" and plan.variant == "whole")
    floor = unsplit.accuracy - accuracy_drop
    eligible = [plan for plan in plans if arm.offers(plan) and plan.accuracy >= floor - 1e-12]
    if not eligible:
        offered = sorted(round(plan.accuracy, 4) for plan in plans if arm.offers(plan))
        raise ValueError(f"accuracy_drop={accuracy_drop}: arm {arm.label!r} has no {unsplit.model} plan with top-1 "
                         f">= {floor:.4f}; its plans reach {offered}")
    return min(eligible, key=lambda plan: plan.accuracy)


def make_env(config: MdiConfig, rate_per_s: float) -> gymnasium.Env:
    """EdgeSplit-v0 on the configured scenario at ``rate_per_s`` jobs per second."""
    register_envs()
    scenario_config = dict(config.scenario_config)
    scenario_config["arrivals"] = {**scenario_config.get("arrivals", {}), "rate_per_s": rate_per_s}
    return gymnasium.make("EdgeSplit-v0", scenario=config.scenario, config=scenario_config)


def preset_agent(config: MdiConfig, env: gymnasium.Env) -> SplitThenPlace:
    """The agent preset (a split-then-place agent, e.g. ``mdi``)."""
    preset = yaml.safe_load((AGENT_PRESET_DIR / f"{config.agent}.yaml").read_text(encoding="utf-8"))
    agent = build_agent(preset["name"], preset.get("params", {}), env)
    if not isinstance(agent, SplitThenPlace):
        raise ValueError(f"agent preset {config.agent!r} must be a split-then-place agent to restrict its plans")
    return agent


def play_episode(agent: SplitThenPlace, env: gymnasium.Env, seed: int) -> dict[str, float]:
    """One episode: items per second (finished, on time), top-1 of finished items, timely top-1 (items of
    late or failed jobs count as wrong) and the deadline-violation rate, over the jobs resolved in it."""
    view = EnvView(env)
    items = {app.name: app.items for app in view.env.scenario.simulator.workload.apps}
    observation, _ = env.reset(seed=seed)
    agent.start_episode(seed)
    resolved_items = finished_items = on_time_items = jobs = late_jobs = 0
    correct_items = on_time_correct_items = 0.0
    while True:
        observation, _, terminated, truncated, _ = env.step(agent.predict(observation, env))
        outcomes = view.last_outcomes()
        for app, done, met, accuracy in zip(outcomes.apps, outcomes.finished, outcomes.met_deadline,
                                            outcomes.accuracy):
            jobs += 1
            late_jobs += not met
            resolved_items += items[app]
            finished_items += items[app] * done
            correct_items += items[app] * accuracy * done
            on_time_items += items[app] * met
            on_time_correct_items += items[app] * accuracy * met
        if terminated or truncated:
            break
    horizon_s = view.env.scenario.simulator.horizon_s
    return {
        "items_per_s": finished_items / horizon_s,
        "on_time_items_per_s": on_time_items / horizon_s,
        "accuracy": correct_items / finished_items if finished_items else math.nan,
        "timely_accuracy": on_time_correct_items / resolved_items if resolved_items else math.nan,
        "violation_rate": late_jobs / jobs if jobs else math.nan,
    }


def throughput_rows(config: MdiConfig, progress: tqdm) -> list[dict]:
    """Comparison 1: per seed, arrival rate and arm, the fixed plans at the fixed accuracy."""
    rows = []
    for rate_per_s in config.arrival_rates_per_s:
        env = make_env(config, rate_per_s)
        scenario = env.unwrapped.scenario
        for arm in ARMS:
            plans = {app: fixed_accuracy_plan(app_plans, arm, config.accuracy_drop)
                     for app, app_plans in scenario.plans.items()}
            agent = preset_agent(config, env)
            agent = SplitThenPlace(FixedPlan(plans), agent.placement)
            for seed in config.seeds:
                rows.append({"arm": arm.label, "rate_per_s": rate_per_s, "seed": seed}
                            | play_episode(agent, env, seed))
                progress.update()
        env.close()
    return rows


def accuracy_rows(config: MdiConfig, progress: tqdm) -> list[dict]:
    """Comparison 2: per seed and arm, the adaptive preset at the fixed arrival rate."""
    rows = []
    env = make_env(config, config.fixed_rate_per_s)
    for arm in ARMS:
        agent = preset_agent(config, env)
        agent.splitter = ArmSplit(agent.splitter, arm)
        for seed in config.seeds:
            rows.append({"arm": arm.label, "seed": seed} | play_episode(agent, env, seed))
            progress.update()
    env.close()
    return rows


def fixed_plan_rows(config: MdiConfig) -> list[dict]:
    """The plan each arm plays per app in comparison 1, its top-1 and the fragments an item runs on average."""
    env = make_env(config, config.arrival_rates_per_s[0])
    rows = []
    for arm in ARMS:
        for app, plans in env.unwrapped.scenario.plans.items():
            plan = fixed_accuracy_plan(plans, arm, config.accuracy_drop)
            rows.append({"arm": arm.label, "app": app, "plan": plan.variant, "top1": round(plan.accuracy, 4),
                         "mean_fragments_run": round(_expected_fragments(plan), 3)})
    env.close()
    return rows


def _expected_fragments(plan: SplitPlan) -> float:
    """Fragments an item runs on average (items leave at each exit with the plan's probabilities)."""
    reach, total = 1.0, 0.0
    for leave in plan.exit_probability:
        total += reach
        reach *= 1.0 - leave
    return total


def throughput_figure(summary: list[dict], rates: Sequence[float]) -> plt.Figure:
    """Items per second (finished, on time) against the arrival rate, one line per arm with its 95 % CI."""
    figure, axes = plt.subplots(1, 2, figsize=(9.0, 3.6), sharey=True)
    for axis, metric in zip(axes, ("items_per_s", "on_time_items_per_s")):
        for arm in ARMS:
            rows = [row for row in summary if row["arm"] == arm.label]
            means = [row[metric] for row in rows]
            errors = [0.0 if math.isnan(row[f"{metric}_ci95"]) else row[f"{metric}_ci95"] for row in rows]
            axis.errorbar([row["rate_per_s"] for row in rows], means, yerr=errors, marker="o", capsize=3,
                          label=arm.label)
        offered = [10 * rate for rate in rates]
        axis.plot(rates, offered, color="grey", linestyle=":", label="offered (10 items per job)")
        axis.set_xlabel("arrival rate, jobs per s")
        axis.set_title(THROUGHPUT_METRICS[metric], fontsize=9)
    axes[0].set_ylabel("items per s")
    axes[0].legend(fontsize=7)
    figure.suptitle("mdi-jetson at a fixed accuracy: throughput against load (mean, 95 % CI)", fontsize=10)
    return figure


def preamble(config: MdiConfig, what: str) -> str:
    seeds = ", ".join(str(seed) for seed in config.seeds)
    return (f"{what} Scenario `{config.scenario}` (overrides {config.scenario_config or 'none'}), seeds {seeds}; "
            f"mean ± 95 % t-interval half-width over seeds.\n\nPaper ({PAPER}): {PAPER_CLAIM}. Its per-figure "
            "numbers are not reproduced here; the early-exit and compression accuracies of the ImageNet models "
            "are documented assumptions (docs/accuracy.md).")


def run(config: MdiConfig, output: Path) -> None:
    """Write the two comparisons' tables (CSV + Markdown) and figures into ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    plan_rows = fixed_plan_rows(config)
    episodes = len(config.seeds) * len(ARMS) * (len(config.arrival_rates_per_s) + 1)
    with tqdm(total=episodes, desc="mdi episodes", unit="episode") as progress:
        throughput = throughput_rows(config, progress)
        accuracy = accuracy_rows(config, progress)
    write_tables(output, "fixed_plans", plan_rows, ["arm", "app", "plan", "top1", "mean_fragments_run"], {},
                 preamble=f"Plans of comparison 1 (top-1 within {config.accuracy_drop} of the unsplit model).")
    summary = write_tables(output, "throughput_fixed_accuracy", throughput, ["arm", "rate_per_s"],
                           THROUGHPUT_METRICS,
                           preamble=preamble(config, "Items per second at a fixed accuracy (fixed plans)."))
    save_figure(throughput_figure(summary, config.arrival_rates_per_s), output, "throughput_fixed_accuracy")
    summary = write_tables(output, "accuracy_fixed_rate", accuracy, ["arm"], ACCURACY_METRICS,
                           preamble=preamble(config, f"Accuracy at {config.fixed_rate_per_s} jobs per s "
                                                     f"(the `{config.agent}` preset, adaptive thresholds)."))
    save_figure(bar_chart_with_ci(summary, "arm", ACCURACY_METRICS,
                                  f"mdi-jetson at {config.fixed_rate_per_s} jobs/s: {config.agent} preset per arm"),
                output, "accuracy_fixed_rate")


CONFIG = MdiConfig
