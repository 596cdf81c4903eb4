"""Evaluate the agents of an experiment on held-out seeds and the held-out test traces.

    python scripts/evaluate.py --config configs/experiments/default.yaml [--agent LABEL ...] \
        [--output DIR] [key.sub=value ...]

Each agent (trained ones from their newest checkpoint under ``<output_dir>/<label>``,
heuristics as they are) plays one episode per seed of ``evaluation.seeds`` on the
scenario with ``evaluation.scenario_overrides`` (by default the test bandwidth
traces), restarting from its checkpoint for every seed; online agents keep
learning within the episode when ``evaluation.online_updates`` is on.  Writes
``evaluation.csv`` (mean and 95 % CI half-width per metric), ``episodes.csv``
(one row per agent and seed), ``evaluation.md`` and ``evaluation.png`` (a bar panel per
metric with the CIs) to ``--output`` (default:
the experiment's output dir), prints the Markdown table, and logs the tables and the
figure to W&B (offline by default).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from agents import wandb_logging  # noqa: E402
from agents.config import ConfigError, load_config  # noqa: E402
from agents.evaluation import (  # noqa: E402
    METRICS,
    episode_rows,
    evaluate_agent,
    latest_checkpoint,
    markdown_table,
    summary_rows,
    write_csv,
)
from agents.plots import bar_chart_with_ci, save_figure  # noqa: E402


def _checkpoint(config, agent_config) -> Path | None:
    """The agent's newest checkpoint; None for agents that need none (untrained ones say so)."""
    latest = latest_checkpoint(config, agent_config.label)
    if latest is not None:
        return latest[1]
    if agent_config.train_steps > 0:
        print(f"[{agent_config.label}] no checkpoint under {config.run_dir / agent_config.label}: "
              f"evaluating it untrained (run scripts/train.py first)")
    return None


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="experiment YAML file")
    parser.add_argument("--agent", action="append", default=None, help="label of an agent to evaluate (repeatable)")
    parser.add_argument("--output", default=None, help="folder of the tables (default: the output dir)")
    parser.add_argument("overrides", nargs="*", help="config overrides key.sub=value")
    args = parser.parse_args(argv)
    try:  # a bad file, override or label stops here, before any evaluation
        config = load_config(args.config, args.overrides)
        agents = [config.agent(label) for label in args.agent] if args.agent else config.agents
    except ConfigError as error:
        parser.error(str(error))
    torch.set_num_threads(config.torch_threads)
    evaluation = config.evaluation
    results = {}
    for agent_config in agents:
        label = agent_config.label
        print(f"[{label}] evaluating on seeds {evaluation.seeds}")
        results[label] = evaluate_agent(config, agent_config, _checkpoint(config, agent_config), evaluation.seeds,
                                        evaluation.scenario_overrides, evaluation.online_updates,
                                        evaluation.max_steps)
    rows = summary_rows(results)
    output = Path(args.output) if args.output else config.run_dir
    write_csv(rows, output / "evaluation.csv")
    write_csv(episode_rows(results, evaluation.seeds), output / "episodes.csv")
    table = markdown_table(rows)
    (output / "evaluation.md").write_text(table, encoding="utf-8")
    figure = bar_chart_with_ci(rows, "agent", METRICS, f"{config.name}: mean and 95 % CI over "
                                                       f"{len(evaluation.seeds)} held-out seeds")
    figure_path = save_figure(figure, output, "evaluation")
    print(table)
    run = wandb_logging.start_run(config, job_type="evaluate", name="evaluation")
    try:
        wandb_logging.log_table(run, "evaluation", rows)
        wandb_logging.log_table(run, "episodes", episode_rows(results, evaluation.seeds))
        wandb_logging.log_image(run, "evaluation_figure", figure_path)
    finally:
        run.finish()
    return rows


if __name__ == "__main__":
    main()
