"""Speed and memory benchmark of the EdgeSplit environment.

Steps per second with random valid (masked) actions for every named scenario,
next to Gymnasium's CartPole-v1 with random actions in the same run, and the
ratio.  Two rates per scenario: ``loop`` (action_masks + sampling + step, what
an agent's rollout pays) and ``step`` (env.step alone).  Then the traced memory
(tracemalloc) of one long ``splitplace`` episode at its start and its end.

    python scripts/bench_env.py                       # every scenario, 20,000 steps each
    python scripts/bench_env.py --scenarios splitplace large --steps 5000 --memory-steps 100000
"""

from __future__ import annotations

import argparse
import json
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


def bench_cartpole(steps: int, seed: int) -> float:
    """Steps per second of CartPole-v1 (gymnasium.make) with random actions."""
    env = gym.make("CartPole-v1")
    env.reset(seed=seed)
    env.action_space.seed(seed)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def bench_scenario(scenario: str, steps: int, seed: int) -> dict[str, float]:
    """Loop and step rates of one scenario, and the deadline-violation rate of the random actions."""
    env = gym.make(scenario_env_id(scenario))
    env.reset(seed=seed)
    unwrapped = env.unwrapped
    sample, rng = unwrapped.actions.sample_valid, np.random.default_rng(seed)
    step_s = 0.0
    met = resolved = 0
    start = time.perf_counter()
    for _ in range(steps):
        action = sample(unwrapped.action_masks(), rng)
        before = time.perf_counter()
        _, _, _, truncated, info = env.step(action)
        step_s += time.perf_counter() - before
        met += info["jobs_met_deadline"]
        resolved += info["jobs_finished"] + info["jobs_failed"]
        if truncated:
            env.reset()
    loop_s = time.perf_counter() - start
    return {
        "loop_steps_per_s": steps / loop_s,
        "step_steps_per_s": steps / step_s,
        "violation_rate": 1.0 - met / resolved if resolved else float("nan"),
        "nodes": unwrapped.simulator.node_count,
        "observation_size": int(env.observation_space.shape[0]),
        "mask_size": int(sum(env.action_space.nvec)),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", nargs="+", default=list_scenarios(), choices=list_scenarios())
    parser.add_argument("--steps", type=int, default=20_000, help="timed steps per scenario (and for CartPole)")
    parser.add_argument("--memory-steps", type=int, default=100_000, help="length of the memory run (0: skip)")
    parser.add_argument("--memory-window", type=int, default=10_000, help="steps per memory window")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    register_envs()

    cartpole = bench_cartpole(args.steps, args.seed)
    print(f"CartPole-v1: {cartpole:,.0f} steps/s (random actions)")
    print(f"{'scenario':12s} {'nodes':>6s} {'loop/s':>9s} {'x CartPole':>10s} {'step/s':>9s} "
          f"{'x CartPole':>10s} {'violations':>10s}")
    results = {"cartpole_steps_per_s": cartpole, "scenarios": {}}
    for scenario in args.scenarios:
        figures = bench_scenario(scenario, args.steps, args.seed)
        figures["loop_ratio"] = figures["loop_steps_per_s"] / cartpole
        figures["step_ratio"] = figures["step_steps_per_s"] / cartpole
        results["scenarios"][scenario] = figures
        print(f"{scenario:12s} {figures['nodes']:6d} {figures['loop_steps_per_s']:9,.0f} {figures['loop_ratio']:10.3f} "
              f"{figures['step_steps_per_s']:9,.0f} {figures['step_ratio']:10.3f} {figures['violation_rate']:10.1%}")
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
