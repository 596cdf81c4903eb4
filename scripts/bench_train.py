"""PPO training speed on EdgeSplit and on CartPole-v1, side by side in one run.

    python scripts/bench_train.py [--steps 4096] [--scenario splitplace] [--repeats 1]

Trains stable-baselines3 PPO (MlpPolicy, CPU, the same hyper-parameters for
both) for ``--steps`` environment steps on each environment and prints
training steps per second (environment steps, including PPO's updates), the
share of that training time spent in the environment's ``step`` (what a faster
environment could save at most), and the raw environment step rate with random
actions for comparison; rates per wall-clock second and per CPU second of the
process (the latter is steadier on a shared machine).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium  # noqa: E402
import torch  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402

from envs.registration import register_envs  # noqa: E402

PPO_KWARGS = {"n_steps": 512, "batch_size": 64, "n_epochs": 4, "device": "cpu", "verbose": 0}


def _rates(steps: int, wall_s: float, cpu_s: float) -> tuple[float, float]:
    return steps / wall_s, steps / cpu_s


class StepTimer(gymnasium.Wrapper):
    """Adds up the wall-clock seconds spent in the wrapped environment's ``step``."""

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        self.step_s = 0.0

    def step(self, action):
        start = time.perf_counter()
        result = self.env.step(action)
        self.step_s += time.perf_counter() - start
        return result


def ppo_steps_per_s(env: gymnasium.Env, steps: int, seed: int) -> tuple[float, float, float]:
    """(per wall-clock second, per CPU second of this process, share of the wall-clock time in ``env.step``)."""
    timed = StepTimer(env)
    model = PPO("MlpPolicy", timed, seed=seed, **PPO_KWARGS)
    wall, cpu = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=steps)
    wall_s = time.perf_counter() - wall
    return (*_rates(model.num_timesteps, wall_s, time.process_time() - cpu), timed.step_s / wall_s)


WARM_UP_STEPS = 200
"""Random steps taken before anything is timed: one-off start-up costs (numba loading its compiled code, about
0.25 s in a fresh process) are not the environment's speed."""


def warm_up(env: gymnasium.Env, seed: int) -> None:
    """Take :data:`WARM_UP_STEPS` random steps."""
    random_steps_per_s(env, WARM_UP_STEPS, seed)


def random_steps_per_s(env: gymnasium.Env, steps: int, seed: int) -> tuple[float, float]:
    """(per wall-clock second, per CPU second of this process)."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    return _rates(steps, time.perf_counter() - wall, time.process_time() - cpu)


def main(argv: list[str] | None = None) -> dict[str, tuple[tuple[float, float, float], tuple[float, float]]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4096, help="PPO training steps per environment")
    parser.add_argument("--scenario", default="splitplace", help="EdgeSplit scenario")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    register_envs()
    environments = {
        f"EdgeSplit-v0 ({args.scenario})": lambda: gymnasium.make("EdgeSplit-v0", scenario=args.scenario),
        "CartPole-v1": lambda: gymnasium.make("CartPole-v1"),
    }
    results = {}
    for name, make in environments.items():
        env = make()
        warm_up(env, args.seed)
        results[name] = (ppo_steps_per_s(env, args.steps, args.seed), random_steps_per_s(env, args.steps, args.seed))
        env.close()
    print(f"PPO (MlpPolicy, {PPO_KWARGS['n_steps']} steps/rollout, {PPO_KWARGS['n_epochs']} epochs), "
          f"{args.steps} steps, torch threads 1")
    print("| environment | PPO training steps/s (wall / CPU) | time in env.step | env steps/s, random actions "
          "(wall / CPU) |")
    print("|---|---|---|---|")
    for name, ((ppo_wall, ppo_cpu, step_share), (env_wall, env_cpu)) in results.items():
        print(f"| {name} | {ppo_wall:,.0f} / {ppo_cpu:,.0f} | {step_share:.1%} | {env_wall:,.0f} / {env_cpu:,.0f} |")
    return results


if __name__ == "__main__":
    main()
