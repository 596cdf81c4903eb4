"""Stable-Baselines3 / sb3-contrib algorithms, used as they are, behind the agent protocol.

Any algorithm class of ``stable_baselines3`` or ``sb3_contrib`` is chosen by
name (``PPO``, ``A2C``, ``MaskablePPO``, ``TRPO``, ...) with its keyword
arguments from the config.  ``MaskablePPO`` receives the env's
``action_masks()`` while training (sb3-contrib reads them itself) and when
predicting.  An algorithm that does not support the env's action space (e.g.
DQN on ``MultiDiscrete``) is refused with an error naming both.

Training and prediction run with torch.distributions' argument checks off (only within those
calls; the same numbers): SB3 builds one Categorical per action dimension at every step, and
checking their arguments made PPO on ``splitplace`` about 20 % slower.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import sb3_contrib
import stable_baselines3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from torch.distributions import Distribution

from agents.protocol import Agent, StepCallback

_MODULES = (stable_baselines3, sb3_contrib)
_MODEL_FILE = "model.zip"


def algorithm_names() -> list[str]:
    """Names of every SB3 / sb3-contrib algorithm class."""
    return sorted(
        name
        for module in _MODULES
        for name in dir(module)
        if isinstance(getattr(module, name), type) and issubclass(getattr(module, name), BaseAlgorithm)
    )


def algorithm_class(name: str) -> type[BaseAlgorithm]:
    """The algorithm class called ``name``; ValueError listing the names there are."""
    for module in _MODULES:
        candidate = getattr(module, name, None)
        if isinstance(candidate, type) and issubclass(candidate, BaseAlgorithm):
            return candidate
    raise ValueError(f"unknown SB3 algorithm {name!r}; allowed: {algorithm_names()}")


def default_policy(observation_space: gymnasium.Space) -> str:
    """``MultiInputPolicy`` for dict observations, ``MlpPolicy`` otherwise."""
    return "MultiInputPolicy" if isinstance(observation_space, gymnasium.spaces.Dict) else "MlpPolicy"


@contextlib.contextmanager
def _unchecked_distributions() -> Iterator[None]:
    """torch distributions made inside the block skip their argument checks; the default is restored after."""
    previous = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        Distribution.set_default_validate_args(previous)


class _StepBridge(BaseCallback):
    """Forwards SB3's per-step locals (one env) to a :data:`StepCallback`."""

    def __init__(self, callback: StepCallback):
        super().__init__()
        self.callback = callback

    def _on_step(self) -> bool:
        reward, info, done = float(self.locals["rewards"][0]), self.locals["infos"][0], bool(self.locals["dones"][0])
        return self.callback(self.num_timesteps, reward, info, done) is not False


class SB3Agent(Agent):
    """An SB3 algorithm acting on one environment.

    Args:
        env: the training environment (spaces and, for learning, the data).
        algorithm: class name in ``stable_baselines3`` or ``sb3_contrib``.
        policy: SB3 policy name; ``"auto"`` picks from the observation space.
        algorithm_kwargs: passed to the algorithm's constructor (``learning_rate``, ``n_steps``, ...).
        deterministic: greedy actions in :meth:`predict`.
        seed: seed of the algorithm (networks, sampling, the env's first reset).
    """

    def __init__(self, env: gymnasium.Env, algorithm: str = "PPO", policy: str = "auto",
                 algorithm_kwargs: dict[str, Any] | None = None, deterministic: bool = True, seed: int = 0):
        self.algorithm = algorithm_class(algorithm)
        self.uses_masks = issubclass(self.algorithm, sb3_contrib.MaskablePPO)
        self.deterministic = deterministic
        policy = default_policy(env.observation_space) if policy == "auto" else policy
        try:
            self.model = self.algorithm(policy, env, seed=seed, device="cpu", verbose=0, **(algorithm_kwargs or {}))
        except AssertionError as error:  # SB3 asserts the supported action spaces
            raise ValueError(
                f"SB3 algorithm {algorithm!r} does not fit action space {env.action_space}: {error}"
            ) from None

    def predict(self, observation: Any, env) -> np.ndarray:
        extra = {"action_masks": env.unwrapped.action_masks()} if self.uses_masks else {}
        with _unchecked_distributions():
            action, _ = self.model.predict(observation, deterministic=self.deterministic, **extra)
        return action

    def learn(self, env, total_steps: int, seed: int = 0, callback: StepCallback | None = None,
              start_step: int = 0) -> int:
        if self.model.get_env() is None or self.model.get_env().envs[0].unwrapped is not env.unwrapped:
            self.model.set_env(env)
        if start_step == 0:
            self.model.set_random_seed(seed)
        with _unchecked_distributions():
            self.model.learn(
                total_timesteps=total_steps - start_step,
                callback=_StepBridge(callback) if callback is not None else None,
                reset_num_timesteps=start_step == 0,
            )
        return self.model.num_timesteps

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(folder / _MODEL_FILE)

    def load(self, folder: str | Path) -> None:
        self.model = self.algorithm.load(Path(folder) / _MODEL_FILE, env=self.model.get_env(), device="cpu")
