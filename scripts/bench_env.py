"""Speed and memory benchmark of the EdgeSplit environment.

Steps per second with random valid (masked) actions for every named scenario,
next to Gymnasium's CartPole-v1 with random actions, as ratios.  Two rates per
scenario: ``loop`` (``action_masks`` + drawing a random allowed action + ``step``,
what a rollout with random valid actions pays) and ``step`` (the ``env.step``
calls of that same loop alone).  Both environments are made with
``gymnasium.make`` (wrappers included) and reset when their episode ends.

The machine may be shared with other jobs, so the rates are measured in rounds
that interleave a chunk of CartPole steps with a chunk of scenario steps; each
round gives a ratio, and the median ratio over the rounds is reported (absolute
rates move with the load, the ratios much less).  Then the traced memory
(tracemalloc) of one long ``splitplace`` episode at its start and its end.  The
Python, numpy and gymnasium versions come first: CartPole's speed, hence every
ratio, moves with them.

    python scripts/bench_env.py                       # every scenario
    python scripts/bench_env.py --scenarios splitplace large --rounds 20 --memory-steps 0
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import tracemalloc

import gymnasium as gym
import numpy as np

from envs.registration import register_envs, scenario_env_id
from envs.scenarios import list_scenarios

LONG_HORIZON_S = 1e12
"""Simulated duration of the memory run: long enough that it is never truncated."""


def least_loaded_action(env) -> np.ndarray:
    """The waiting job's unsplit plan (else its first plan) on the up node with room and the least queued work."""
    snapshot, plans = env.snapshot, env.plans()
    plan = next((p for p in plans if p.family == "none"), plans[0])
    room = snapshot.up & (snapshot.free_memory_bytes >= max(f.memory_bytes for f in plan.fragments))
    node = int(np.argmin(np.where(room, snapshot.queued_work_s, np.inf)))
    return env.encode_action(plan, [node] * len(plan.fragments))


class CartPoleRun:
    """CartPole-v1 (``gymnasium.make``) with random actions, stepped chunk by chunk."""

    def __init__(self, seed: int):
        self.env = gym.make("CartPole-v1")
        self.env.reset(seed=seed)
        self.env.action_space.seed(seed)

    def chunk_s(self, steps: int) -> float:
        """Seconds per step over ``steps`` steps."""
        env = self.env
        start = time.perf_counter()
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        return (time.perf_counter() - start) / steps


class ScenarioRun:
    """A scenario with random valid actions, stepped chunk by chunk; counts deadlines met."""

    def __init__(self, scenario: str, seed: int):
        self.env = gym.make(scenario_env_id(scenario))
        self.env.reset(seed=seed)
        self.rng = np.random.default_rng(seed)
        self.met = self.resolved = 0

    def chunk_s(self, steps: int) -> tuple[float, float]:
        """(seconds per step of the whole loop, seconds per step of ``env.step`` alone) over ``steps`` steps."""
        env, unwrapped, rng = self.env, self.env.unwrapped, self.rng
        sample = unwrapped.actions.sample_valid
        clock = time.perf_counter
        step_s = 0.0
        start = clock()
        for _ in range(steps):
            action = sample(unwrapped.action_masks(), rng)
            before = clock()
            _, _, _, truncated, info = env.step(action)
            step_s += clock() - before
            self.met += info["jobs_met_deadline"]
            self.resolved += info["jobs_finished"] + info["jobs_failed"]
            if truncated:
                env.reset()
        return (clock() - start) / steps, step_s / steps


def bench_scenario(scenario: str, rounds: int, steps: int, seed: int) -> dict[str, float]:
    """Median per-round ratios to CartPole (loop and step alone), median rates, and the violation rate."""
    cartpole, run = CartPoleRun(seed), ScenarioRun(scenario, seed)
    run.chunk_s(steps // 4)  # warm up both
    cartpole.chunk_s(steps // 4)
    cartpole_s, loop_s, step_s = [], [], []
    for _ in range(rounds):
        cartpole_s.append(cartpole.chunk_s(steps))
        loop, step = run.chunk_s(steps)
        loop_s.append(loop)
        step_s.append(step)
    unwrapped = run.env.unwrapped
    return {
        "nodes": unwrapped.simulator.node_count,
        "cartpole_steps_per_s": 1.0 / statistics.median(cartpole_s),
        "loop_steps_per_s": 1.0 / statistics.median(loop_s),
        "step_steps_per_s": 1.0 / statistics.median(step_s),
        "loop_ratio": statistics.median(c / s for c, s in zip(cartpole_s, loop_s)),
        "step_ratio": statistics.median(c / s for c, s in zip(cartpole_s, step_s)),
        "violation_rate": 1.0 - run.met / run.resolved if run.resolved else float("nan"),
        "observation_size": int(run.env.observation_space.shape[0]),
        "mask_size": int(sum(run.env.action_space.nvec)),
    }


def bench_memory(steps: int, seed: int, window: int) -> dict[str, float]:
    """Traced memory (MiB) of one ``splitplace`` episode of ``steps`` steps: peak over the first and the
    last ``window`` steps.  Actions: :func:`least_loaded_action`, which keeps the jobs in flight few
    (random actions let them pile up in bursts, and memory rightly grows with jobs in flight), so
    that any growth would come from the jobs that finished."""
    env = gym.make(scenario_env_id("splitplace"), config={"horizon_s": LONG_HORIZON_S})
    env.reset(seed=seed)
    unwrapped = env.unwrapped
    tracemalloc.start()
    peaks = {}
    for step in range(steps):
        if step in (0, steps - window):
            tracemalloc.reset_peak()
        _, _, _, truncated, info = env.step(least_loaded_action(unwrapped))
        if truncated:
            raise RuntimeError("the memory run was truncated; raise LONG_HORIZON_S")
        if step in (window - 1, steps - 1):
            peaks["start" if step == window - 1 else "end"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {
        "steps": steps,
        "peak_mib_first_window": peaks["start"],
        "peak_mib_last_window": peaks["end"],
        "finished": info["finished"],
        "in_flight_at_end": info["in_flight"],
    }


def versions() -> dict[str, str]:
    """Python, numpy and gymnasium versions: CartPole's own speed moves with them (so do the ratios)."""
    return {"python": platform.python_version(), "numpy": np.__version__, "gymnasium": gym.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", nargs="+", default=list_scenarios(), choices=list_scenarios())
    parser.add_argument("--rounds", type=int, default=15, help="interleaved CartPole / scenario rounds per scenario")
    parser.add_argument("--steps", type=int, default=1000, help="steps per chunk (one CartPole and one scenario "
                                                                "chunk per round)")
    parser.add_argument("--memory-steps", type=int, default=100_000, help="length of the memory run (0: skip)")
    parser.add_argument("--memory-window", type=int, default=10_000, help="steps per memory window")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    register_envs()

    print(", ".join(f"{name} {version}" for name, version in versions().items()))
    print(f"{'scenario':12s} {'nodes':>6s} {'CartPole/s':>10s} {'loop/s':>9s} {'x CartPole':>10s} {'step/s':>9s} "
          f"{'x CartPole':>10s} {'violations':>10s}")
    results = {"versions": versions(), "rounds": args.rounds, "steps_per_chunk": args.steps, "scenarios": {}}
    for scenario in args.scenarios:
        figures = bench_scenario(scenario, args.rounds, args.steps, args.seed)
        results["scenarios"][scenario] = figures
        print(f"{scenario:12s} {figures['nodes']:6d} {figures['cartpole_steps_per_s']:10,.0f} "
              f"{figures['loop_steps_per_s']:9,.0f} {figures['loop_ratio']:10.3f} {figures['step_steps_per_s']:9,.0f} "
              f"{figures['step_ratio']:10.3f} {figures['violation_rate']:10.1%}")
    if args.memory_steps:
        memory = bench_memory(args.memory_steps, args.seed, min(args.memory_window, args.memory_steps // 2))
        results["memory"] = memory
        print(f"splitplace, {memory['steps']:,} steps in one episode: traced peak "
              f"{memory['peak_mib_first_window']:.2f} MiB over the first window, "
              f"{memory['peak_mib_last_window']:.2f} MiB over the last; {memory['finished']:,} jobs finished, "
              f"{memory['in_flight_at_end']} in flight at the end")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(results, stream, indent=2)


if __name__ == "__main__":
    main()
