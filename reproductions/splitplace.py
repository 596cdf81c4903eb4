"""SplitPlace's comparison (Tuli, Casale, Jennings, IEEE TMC 2022): M+D against its baselines.

For every scenario variant of the config, each agent preset is trained with
:func:`scripts.train.train_agent` (if it trains at all) and evaluated with
:func:`agents.evaluation.evaluate_agent` on held-out seeds and the held-out
test traces.  Writes, per variant, ``comparison_<variant>.{csv,md}`` (mean and
95 % CI over seeds per agent and metric), ``comparison_<variant>_seeds.csv``
and ``comparison_<variant>.png``; across variants ``headline.{csv,md}``: the
paper's headline percentages beside the same percentages measured here.

An agent with a random seed of its own (``params.seed``: bandits, the decision-aware placement, SB3,
random) is trained and evaluated once per entry of ``agent_seeds``, and its row for an evaluation seed
is the mean over those runs: a learning agent's result can hang on its initial weights and its own
draws as much as on the scenario, and one agent seed would report that luck as the agent's merit.

Each (variant, agent) result is also kept in ``<variant>/episodes/<preset>.json``
with a fingerprint of everything that decides it (agent entry, scenario,
training and evaluation settings); a later run with the same fingerprint reuses
it (``reuse: false`` recomputes).  So a full run can be split per agent,
``agents=[ppo]`` etc., into the same output folder, and a final run with every
agent only assembles the tables.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator
from tqdm import tqdm

from agents.config import (
    AgentConfig,
    DistinctSeeds,
    ExperimentConfig,
    StrictModel,
    _expand_presets,
    agent_presets,
    config_from_dict,
)
from agents.evaluation import evaluate_agent, mean_ci95, write_csv
from agents.plots import bar_chart_with_ci, save_figure
from envs.mappings import deep_merged
from reproductions.common import ReproductionConfig, write_tables

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from train import train_agent  # noqa: E402

PAPER = "Tuli, Casale, Jennings, 'SplitPlace', IEEE Transactions on Mobile Computing 2022 (arXiv 2205.10635)"

PAPER_LABELS: dict[str, str] = {
    "decision_aware": "M+D",
    "bandit": "M+G",
    "bandit_estimated_finish": "M+E",
    "random_split_decision_aware": "R+D",
    "layer_only": "L+G",
    "semantic_only": "S+G",
    "gillis": "Gillis",
    "mc": "MC",
    "ppo": "PPO",
    "maskable_ppo": "MaskablePPO",
}
"""Agent preset -> the label the paper's plots use (presets not listed keep their name)."""

METRIC_LABELS: dict[str, str] = {
    "response_time_s": "response time (s)",
    "violation_rate": "deadline-violation rate",
    "accuracy": "accuracy",
    "average_reward": "average reward",
    "energy_j": "energy per job (J)",
    "decision_time_ms": "decision time (ms)",
    "jobs": "jobs resolved",
}
"""The table's columns (fields of :class:`agents.evaluation.EpisodeMetrics`) and their labels.

Rates and means are over the jobs resolved (finished or failed) within an episode; jobs
still in flight at truncation count nowhere, so ``jobs`` shows how much of the load each
agent got through.
"""

LOWER_IS_BETTER = frozenset({"response_time_s", "violation_rate", "energy_j", "decision_time_ms"})

PAPER_HEADLINE: dict[str, tuple[float, str]] = {
    "response_time_s": (46.0, "lower"),
    "violation_rate": (69.0, "fewer"),
    "accuracy": (3.0, "higher"),
    "average_reward": (12.0, "higher"),
}
"""The abstract's claim for SplitPlace against the best baseline: 'up to' this many percent, per metric."""


class Variant(StrictModel):
    """One scenario the comparison runs on.

    Attributes:
        label: short name used in file names and tables (lower case, digits, ``-``, ``_``).
        description: what the variant stands for and why it is there.
        scenario: a named scenario (``envs/scenarios``) or a path to a scenario YAML file.
        config: scenario overrides (the env's ``config=``), for training and evaluation alike.
    """

    label: str = Field(pattern=r"^[a-z0-9_-]+$")
    description: str = ""
    scenario: str = "splitplace"
    config: dict[str, Any] = Field(default_factory=dict)


class SplitPlaceConfig(ReproductionConfig):
    """``configs/experiments/reproductions/splitplace.yaml``.

    Attributes:
        seeds: held-out evaluation seeds (one episode each, every agent on the same seeds).
        agents: agent presets (``configs/agents/<name>.yaml``) or agent entries written out (``label``,
            ``name``, ``params``, ``train_steps``; e.g. your own agent from ``plugins``), one table row each.
        plugins: your own modules or ``.py`` files that register agents (:mod:`agents.plugins`).
        proposed: the label (preset) compared against the best of the others in the headline table.
        variants: the scenarios to run the comparison on.
        train_steps: if set, the training steps of every agent whose preset trains (quick runs).
        agent_settings: per preset (or label of an agent written out), a mapping deep-merged into its entry, e.g.
            ``{ppo: {params: {algorithm_kwargs: {n_steps: 64}}}}`` (ignored for presets not in ``agents``).
        train_seed: seed of the first training episode.
        agent_seeds: values of ``params.seed`` for agents that have one; such an agent runs once per value
            and its per-evaluation-seed rows are the means over them.
        evaluation_overrides: scenario settings of the evaluation only (the held-out test traces).
        online_updates: online agents keep learning during evaluation (SplitPlace's fine-tuning).
        max_steps: cap on decisions per evaluation episode (None: the whole episode).
        wandb_mode: W&B logging of training, ``offline`` or ``disabled`` (never online here).
        train_progress_bar: a progress bar per training run (beside the one over all agents).
        reuse: reuse stored per-agent results whose fingerprint matches.
    """

    agents: list[str | dict[str, Any]] = Field(min_length=1)
    plugins: list[str] = Field(default_factory=list)
    proposed: str = "decision_aware"
    variants: list[Variant] = Field(min_length=1)
    train_steps: int | None = Field(default=None, ge=1)
    agent_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)
    train_seed: int = 0
    agent_seeds: DistinctSeeds = Field(default_factory=lambda: [0])
    evaluation_overrides: dict[str, Any] = Field(default_factory=lambda: {"trace_split": "test"})
    online_updates: bool = True
    max_steps: int | None = Field(default=None, ge=1)
    wandb_mode: Literal["offline", "disabled"] = "offline"
    train_progress_bar: bool = True
    reuse: bool = True

    @field_validator("agents")
    @classmethod
    def _known_distinct_agents(cls, agents: list[str | dict[str, Any]]) -> list[str | dict[str, Any]]:
        unknown = sorted({agent for agent in agents if isinstance(agent, str)} - set(agent_presets()))
        if unknown:
            raise ValueError(f"unknown agent preset(s) {unknown}; allowed: {agent_presets()}")
        unlabelled = [agent for agent in agents if isinstance(agent, dict) and not isinstance(agent.get("label"), str)]
        if unlabelled:
            raise ValueError(f"an agent written out needs a label (its table row), got {unlabelled}")
        labels = _labels(agents)
        if len(set(labels)) != len(labels):
            raise ValueError(f"agents must be distinct, got the labels {labels}")
        return agents

    @property
    def labels(self) -> list[str]:
        """The agents' labels (a preset's label is its name), in table order."""
        return _labels(self.agents)

    @model_validator(mode="after")
    def _consistent(self):
        labels = [variant.label for variant in self.variants]
        if len(set(labels)) != len(labels):
            raise ValueError(f"variants: labels must be distinct, got {labels}")
        allowed = sorted(set(agent_presets()) | set(self.labels))
        unknown = sorted(set(self.agent_settings) - set(allowed))
        if unknown:
            raise ValueError(f"agent_settings: unknown agent preset(s) or label(s) {unknown}; allowed: {allowed}")
        return self


CONFIG = SplitPlaceConfig


def _labels(agents: list[str | dict[str, Any]]) -> list[str]:
    return [agent if isinstance(agent, str) else agent["label"] for agent in agents]


# --------------------------------------------------------------------------- building the experiment


def _agent_entries(config: SplitPlaceConfig) -> list[dict[str, Any]]:
    """The agent entries (presets expanded, label = preset), with ``agent_settings`` and ``train_steps`` applied."""
    tree = {"agents": list(config.agents)}
    _expand_presets(tree)
    entries = []
    for label, entry in zip(config.labels, tree["agents"]):
        entry = deep_merged(entry, config.agent_settings.get(label, {})) | {"label": label}
        if config.train_steps is not None and entry.get("train_steps", 0) > 0:
            entry["train_steps"] = config.train_steps
        entries.append(entry)
    return entries


def experiment_config(config: SplitPlaceConfig, variant: Variant, output: Path) -> ExperimentConfig:
    """The :class:`ExperimentConfig` of one variant; checkpoints under ``output/<variant>/runs``."""
    tree = {
        "name": f"reproduce-splitplace-{variant.label}",
        "output_dir": str(output / variant.label / "runs"),
        "plugins": config.plugins,
        "env": {"scenario": variant.scenario, "config": variant.config},
        "agents": _agent_entries(config),
        "train": {"seed": config.train_seed, "checkpoint_every_steps": 0,
                  "progress_bar": config.train_progress_bar},
        "evaluation": {"seeds": config.seeds, "scenario_overrides": config.evaluation_overrides,
                       "online_updates": config.online_updates, "max_steps": config.max_steps},
        "wandb": {"mode": config.wandb_mode},
    }
    return config_from_dict(tree, source=f"splitplace reproduction variant {variant.label!r}")


# --------------------------------------------------------------------------- running one agent


def _fingerprint(experiment: ExperimentConfig, agent: AgentConfig, agent_seeds: list[int]) -> dict[str, Any]:
    """Everything that decides an agent's result on a variant."""
    return {
        "agent": agent.model_dump(mode="json"),
        "env": experiment.env.model_dump(mode="json"),
        "train": experiment.train.model_dump(mode="json", exclude={"progress_bar"}),
        "evaluation": experiment.evaluation.model_dump(mode="json"),
        "agent_seeds": agent_seeds if "seed" in agent.params else None,
    }


def _seeded_agents(agent: AgentConfig, agent_seeds: list[int]) -> list[AgentConfig]:
    """``agent`` once per agent seed (label ``<label>-seed<k>``: its own checkpoint folder); itself if it has no
    seed of its own."""
    if "seed" not in agent.params:
        return [agent]
    return [agent.model_copy(update={"params": agent.params | {"seed": seed}, "label": f"{agent.label}-seed{seed}"})
            for seed in agent_seeds]


def _evaluated_metrics(experiment: ExperimentConfig, agent: AgentConfig) -> list[dict[str, float]]:
    """One agent trained (if it trains) then evaluated: its metrics per evaluation seed."""
    checkpoint = train_agent(experiment, agent, resume=False) if agent.train_steps > 0 else None
    evaluation = experiment.evaluation
    episodes = evaluate_agent(experiment, agent, checkpoint, evaluation.seeds, evaluation.scenario_overrides,
                              evaluation.online_updates, evaluation.max_steps)
    return [{metric: getattr(episode, metric) for metric in METRIC_LABELS} for episode in episodes]


def _mean_over_runs(runs: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    """Per evaluation seed, each metric's mean over the runs (NaN runs left out; NaN if every run is NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: the mean is NaN, as it should be
        return [{metric: float(np.nanmean([run[index][metric] for run in runs])) for metric in METRIC_LABELS}
                for index in range(len(runs[0]))]


def agent_rows(experiment: ExperimentConfig, agent: AgentConfig, variant: str, store: Path,
               reuse: bool, agent_seeds: list[int]) -> list[dict[str, Any]]:
    """Per-seed rows of one agent: trained (if it trains) then evaluated, once per agent seed if it has a seed
    (rows: the means over them); reused from ``store`` if it matches."""
    fingerprint = _fingerprint(experiment, agent, agent_seeds)
    if reuse and store.is_file():
        stored = json.loads(store.read_text(encoding="utf-8"))
        if stored["fingerprint"] == fingerprint:
            return stored["rows"]
    runs = [_evaluated_metrics(experiment, seeded) for seeded in _seeded_agents(agent, agent_seeds)]
    rows = [
        {"variant": variant, "agent": PAPER_LABELS.get(agent.label, agent.label), "preset": agent.label,
         "seed": seed} | metrics
        for seed, metrics in zip(experiment.evaluation.seeds, _mean_over_runs(runs))
    ]
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(json.dumps({"fingerprint": fingerprint, "rows": rows, "runs_by_agent_seed": runs}, indent=1),
                     encoding="utf-8")
    return rows


# --------------------------------------------------------------------------- the headline table


def improvement_percent(metric: str, proposed: float, reference: float) -> float:
    """How much better ``proposed`` is than ``reference``, percent of ``reference`` (negative: worse).

    Lower-is-better metrics count a decrease as an improvement.  NaN where the
    reference is 0 and the two differ (no relative change is defined).
    """
    if reference == 0:
        return 0.0 if proposed == 0 else math.nan
    change = (proposed - reference) / abs(reference) * 100.0
    return -change if metric in LOWER_IS_BETTER else change


def headline_rows(per_seed: list[dict[str, Any]], summary: list[dict[str, Any]], proposed: str,
                  variant: str) -> list[dict[str, Any]]:
    """Per headline metric: the paper's claim, the best other agent, and the measured improvement.

    The best other agent is the one with the best mean on that metric.  The
    difference ``proposed - best`` has a paired 95 % CI over the seeds.
    """
    mine = next(row for row in summary if row["preset"] == proposed)
    others = [row for row in summary if row["preset"] != proposed]
    rows = []
    for metric, (paper_percent, direction) in PAPER_HEADLINE.items():
        candidates = [row for row in others if not math.isnan(row[metric])]
        best = (min if metric in LOWER_IS_BETTER else max)(candidates, key=lambda row: row[metric])
        by_seed = {(row["preset"], row["seed"]): row[metric] for row in per_seed}
        differences = [value - by_seed[(best["preset"], seed)]
                       for (preset, seed), value in by_seed.items() if preset == proposed]
        differences = [value for value in differences if not math.isnan(value)]
        difference, difference_ci95 = mean_ci95(differences) if differences else (math.nan, math.nan)
        rows.append({
            "variant": variant,
            "metric": metric,
            "paper_claim": f"up to {paper_percent:g} % {direction}",
            "best_baseline": best["agent"],
            "proposed_mean": mine[metric],
            "baseline_mean": best[metric],
            "measured_improvement_percent": improvement_percent(metric, mine[metric], best[metric]),
            "difference": difference,
            "difference_ci95": difference_ci95,
        })
    return rows


def headline_markdown(rows: list[dict[str, Any]], proposed_label: str) -> str:
    header = ["variant", "metric", f"paper ({proposed_label} vs best baseline)", "best other agent here",
              proposed_label, "that agent", "measured improvement", f"{proposed_label} - that agent (95 % CI)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        improvement = row["measured_improvement_percent"]
        lines.append("| " + " | ".join([
            row["variant"], METRIC_LABELS[row["metric"]], row["paper_claim"], row["best_baseline"],
            f"{row['proposed_mean']:.4g}", f"{row['baseline_mean']:.4g}",
            "n/a" if math.isnan(improvement) else f"{improvement:+.1f} %",
            f"{row['difference']:+.4g} ± {row['difference_ci95']:.3g}",
        ]) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the whole run


def run(config: SplitPlaceConfig, output: Path) -> None:
    """Train and evaluate every agent on every variant; write tables, figures and the headline."""
    output.mkdir(parents=True, exist_ok=True)
    experiments = {variant.label: experiment_config(config, variant, output) for variant in config.variants}
    jobs = [(variant, agent) for variant in config.variants for agent in experiments[variant.label].agents]
    per_seed: dict[str, list[dict[str, Any]]] = {variant.label: [] for variant in config.variants}
    for variant, agent in tqdm(jobs, desc="splitplace (variant, agent)", dynamic_ncols=True):
        store = output / variant.label / "episodes" / f"{agent.label}.json"
        per_seed[variant.label] += agent_rows(experiments[variant.label], agent, variant.label, store, config.reuse,
                                              config.agent_seeds)
    headline = []
    for variant in config.variants:
        preamble = (f"SplitPlace comparison, variant `{variant.label}` ({variant.description.strip()}): "
                    f"mean ± 95 % CI over {len(config.seeds)} held-out seeds; rows as in {PAPER}. Agents with a "
                    f"seed of their own: per held-out seed, the mean over agent seeds {config.agent_seeds}.")
        summary = write_tables(output, f"comparison_{variant.label}", per_seed[variant.label], ["agent", "preset"],
                               METRIC_LABELS, digits=3, preamble=preamble)
        figure = bar_chart_with_ci(summary, "agent", METRIC_LABELS,
                                   f"SplitPlace comparison ({variant.label}), 95 % CI over {len(config.seeds)} seeds")
        save_figure(figure, output, f"comparison_{variant.label}")
        if config.proposed in config.labels and len(config.agents) > 1:
            headline += headline_rows(per_seed[variant.label], summary, config.proposed, variant.label)
    if not headline:
        print(f"[splitplace] no headline table: it needs {config.proposed!r} and at least one other agent")
        return
    write_csv(headline, output / "headline.csv")
    proposed_label = PAPER_LABELS.get(config.proposed, config.proposed)
    preamble = (f"Headline of {PAPER}: 'up to 46 % lower response time, 69 % fewer deadline violations, 3 % higher "
                "accuracy and 12 % higher reward' for SplitPlace (M+D) than the best baseline. "
                f"Measured: {proposed_label} against the best other agent per metric (positive = {proposed_label} "
                "better); the difference has a paired 95 % CI over seeds.")
    (output / "headline.md").write_text(preamble + "\n\n" + headline_markdown(headline, proposed_label),
                                        encoding="utf-8")
    print((output / "headline.md").read_text(encoding="utf-8"))

