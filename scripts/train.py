"""Train the agents of an experiment config.

    python scripts/train.py --config configs/experiments/default.yaml [--agent LABEL ...] [--resume] \
        [key.sub=value ...]

Every agent with ``train_steps > 0`` (or only the ``--agent`` labels) is trained
on the configured scenario (training traces; episode seeds ``train.seed``, ``+1``,
..., or ``train.seed + k``, ... after resuming from step ``k``), with a progress
bar, a checkpoint every ``train.checkpoint_every_steps`` and at the end
(``<output_dir>/<label>/checkpoints``), and an evaluation of the checkpoint on
validation seeds every ``train.eval_every_steps``.  ``--resume``
continues from the newest checkpoint.  Each agent's run logs its config,
per-episode metrics and reward parts, and the training steps per second so far, to W&B (offline by
default).
Overrides use the config's dotted keys, e.g. ``agents.0.train_steps=500``;
under a W&B sweep agent, ``${args_no_hyphens}`` passes them in this form.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from agents import wandb_logging  # noqa: E402
from agents.config import AgentConfig, ConfigError, ExperimentConfig, dump_config, load_config  # noqa: E402
from agents.evaluation import (  # noqa: E402
    evaluate_agent,
    latest_checkpoint,
    make_env,
    save_checkpoint,
    summary_rows,
)
from agents.registry import build_agent  # noqa: E402

INFO_REWARD_PARTS = ("reward_sla", "reward_accuracy", "reward_energy", "reward_penalty")
INFO_JOB_COUNTS = ("jobs_finished", "jobs_failed", "jobs_met_deadline", "jobs_infeasible")


class EpisodeLogger:
    """Sums one training episode from the step infos and logs it when the episode ends, with the training
    throughput so far (``steps_per_s``: steps since this logger started per wall-clock second, checkpoints and
    validations included)."""

    def __init__(self, run, progress: tqdm):
        self.run, self.progress = run, progress
        self._first_step, self._started_s = progress.n, time.perf_counter()
        self._clear()

    def _clear(self) -> None:
        self.sums = dict.fromkeys(("reward", *INFO_REWARD_PARTS, *INFO_JOB_COUNTS), 0.0)
        self.steps = 0

    def __call__(self, step: int, reward: float, info: dict, done: bool) -> None:
        self.sums["reward"] += reward
        for key in INFO_REWARD_PARTS + INFO_JOB_COUNTS:
            self.sums[key] += float(info.get(key, 0.0))
        self.steps += 1
        self.progress.update(step - self.progress.n)
        if done:
            self._log(step)

    def _log(self, step: int) -> None:
        jobs = self.sums["jobs_finished"] + self.sums["jobs_failed"]
        metrics = {"episode_reward": self.sums["reward"], "episode_steps": self.steps,
                   "jobs": jobs, **{key: self.sums[key] for key in INFO_REWARD_PARTS},
                   "steps_per_s": (step - self._first_step) / max(time.perf_counter() - self._started_s, 1e-9)}
        if jobs:
            metrics["average_reward"] = self.sums["reward"] / jobs
            metrics["violation_rate"] = 1.0 - self.sums["jobs_met_deadline"] / jobs
        wandb_logging.log_metrics(self.run, metrics, "train", step=step)
        self.progress.set_postfix(reward=f"{metrics.get('average_reward', float('nan')):.3f}")
        self._clear()


def train_agent(config: ExperimentConfig, agent_config: AgentConfig, resume: bool) -> Path:
    """Train one agent; returns its final checkpoint folder."""
    label, train = agent_config.label, config.train
    env = make_env(config)
    agent = build_agent(agent_config.name, agent_config.params, env)
    start_step = 0
    if resume and (latest := latest_checkpoint(config, label)) is not None:
        start_step, folder = latest
        agent.load(folder)
        print(f"[{label}] resuming from step {start_step} ({folder})")
    run = wandb_logging.start_run(config, job_type="train", name=label)
    progress = tqdm(total=agent_config.train_steps, initial=start_step, desc=label,
                    disable=not train.progress_bar, dynamic_ncols=True)
    log_episode = EpisodeLogger(run, progress)
    intervals = [every for every in (train.checkpoint_every_steps, train.eval_every_steps) if every > 0]
    step = start_step
    try:
        while step < agent_config.train_steps:
            target = min([agent_config.train_steps] + [(step // every + 1) * every for every in intervals])
            # learn in chunks up to the next checkpoint; the episode goes on from chunk to chunk
            step = agent.learn(env, target, seed=train.seed + start_step, callback=log_episode, start_step=step)
            folder = save_checkpoint(agent, config, label, step)
            if train.eval_every_steps and step % train.eval_every_steps == 0:
                seeds = range(train.validation_seed, train.validation_seed + train.eval_episodes)
                episodes = evaluate_agent(config, agent_config, folder, seeds, {}, online_updates=False,
                                          max_steps=config.evaluation.max_steps)
                row = summary_rows({label: episodes})[0]
                wandb_logging.log_metrics(run, {k: v for k, v in row.items() if isinstance(v, float)}, "validation",
                                          step=step)
                progress.write(f"[{label}] step {step}: validation average reward {row['average_reward']:.3f}")
        return save_checkpoint(agent, config, label, step)
    finally:
        progress.close()
        run.finish()
        env.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="experiment YAML file")
    parser.add_argument("--agent", action="append", default=None, help="label of an agent to train (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoints")
    parser.add_argument("overrides", nargs="*", help="config overrides key.sub=value")
    args = parser.parse_args(argv)
    try:  # a bad file, override or label stops here, before anything is written
        config = load_config(args.config, args.overrides)
        agents = ([config.agent(label) for label in args.agent] if args.agent
                  else [agent for agent in config.agents if agent.train_steps > 0])
    except ConfigError as error:
        parser.error(str(error))
    torch.set_num_threads(config.torch_threads)
    if os.environ.get("WANDB_SWEEP_ID") and config.output_dir is None:
        config.output_dir = str(config.run_dir / f"sweep-{os.environ['WANDB_SWEEP_ID']}-{os.getpid()}")
    dump_config(config, config.run_dir / "config.yaml")
    if not agents:
        print(f"nothing to train: no agent of {args.config} has train_steps > 0 (evaluate.py runs them as they are)")
    for agent_config in agents:
        folder = train_agent(config, agent_config, args.resume)
        print(f"[{agent_config.label}] final checkpoint: {folder}")


if __name__ == "__main__":
    main()
