"""The one small protocol every agent follows, and the two-stage split-then-place agent.

Scripts treat every agent alike:

* ``predict(observation, env) -> action``: one decision for the arriving job;
* ``update(reward, info, env)``: learn online from the step that followed the
  last decision (a no-op for fixed policies and for SB3 agents, which learn in
  ``learn``);
* ``learn(env, total_steps, ...)``: train; the default plays episodes and
  calls ``predict``/``update``;
* ``start_episode(seed)``: reseed exploration and forget pending jobs;
* ``save(folder)`` / ``load(folder)``: everything needed to act identically
  after a reload.

Two-stage agents (SplitPlace's structure) combine a :class:`SplitSelector`
that picks the split plan of the job with a :class:`Placement` that picks a
node for every fragment; :class:`SplitThenPlace` glues them and routes job
outcomes back to both.  While it trains (``learn``) the placement's ``training``
flag is up, so a learned placement explores then and acts with its most likely
nodes in evaluation (as SB3 agents predict deterministically).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from envs.dnn.plan import SplitPlan
from agents.env_access import EnvView, JobOutcomes

StepCallback = Callable[[int, float, dict, bool], bool]
"""Called after every training step as ``callback(step, reward, info, episode_done)``;
returning False stops training."""


class Agent(ABC):
    """Base of all agents; see the module docstring for the protocol."""

    def start_episode(self, seed: int) -> None:
        """Called after every ``env.reset``; reseeds exploration, drops pending jobs."""

    @abstractmethod
    def predict(self, observation: Any, env) -> np.ndarray:
        """The action for the job that is waiting in ``env``."""

    def update(self, reward: float, info: dict, env) -> None:
        """Learn from the step that followed the last :meth:`predict` (default: nothing)."""

    def learn(self, env, total_steps: int, seed: int = 0, callback: StepCallback | None = None,
              start_step: int = 0) -> int:
        """Play episodes (seeds ``seed``, ``seed + 1``, ...) with online updates until step
        ``total_steps``; returns the step count reached.  A later call on the same env
        continues the episode this one stopped in (training in chunks between checkpoints)."""
        live = getattr(self, "_live_episode", None)
        if live is not None and live[0] is env:
            _, observation, episode = live
        else:
            episode = 0
            observation, _ = env.reset(seed=seed)
            self.start_episode(seed)
        step = start_step
        while step < total_steps:
            action = self.predict(observation, env)
            observation, reward, terminated, truncated, info = env.step(action)
            self.update(reward, info, env)
            step += 1
            done = terminated or truncated
            if callback is not None and callback(step, float(reward), info, done) is False:
                break
            if done:
                episode += 1
                observation, _ = env.reset(seed=seed + episode)
                self.start_episode(seed + episode)
        self._live_episode = (env, observation, episode)
        return step

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state (default: none)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""

    def save(self, folder: str | Path) -> None:
        """Write the agent's state under ``folder`` (created if needed)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "agent_state.json").write_text(json.dumps(self.state_dict()), encoding="utf-8")

    def load(self, folder: str | Path) -> None:
        """Restore what :meth:`save` wrote."""
        self.load_state_dict(json.loads((Path(folder) / "agent_state.json").read_text(encoding="utf-8")))


class SplitSelector(ABC):
    """Chooses the split plan of the waiting job (the first stage)."""

    def start_episode(self, seed: int) -> None:
        """Reseed and forget pending jobs."""

    @abstractmethod
    def select(self, view: EnvView) -> SplitPlan:
        """The plan for ``view.job``, among ``view.plans()``."""

    def observe(self, outcomes: JobOutcomes) -> None:
        """Jobs resolved during the last step (with their rewards)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


Exploration = Literal["training", "always", "never"]
"""When a learned placement samples its nodes rather than taking the most likely ones: only while the agent
trains (:attr:`Placement.training`), always, or never."""


class Placement(ABC):
    """Chooses a node for every fragment of a chosen plan (the second stage)."""

    training: bool = False
    """True while the agent trains (:meth:`SplitThenPlace.learn`); a learned placement may explore only then."""

    def start_episode(self, seed: int) -> None:
        """Reseed and forget pending jobs."""

    @abstractmethod
    def place(self, view: EnvView, plan: SplitPlan) -> list[int]:
        """One node index per fragment of ``plan``."""

    def observe(self, outcomes: JobOutcomes) -> None:
        """Jobs resolved during the last step (with their rewards)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""

    def save_extra(self, folder: Path) -> None:
        """Write state that is not JSON (e.g. network weights)."""

    def load_extra(self, folder: Path) -> None:
        """Read what :meth:`save_extra` wrote."""


class SplitThenPlace(Agent):
    """A split selector followed by a placement; both learn from job outcomes."""

    def __init__(self, splitter: SplitSelector, placement: Placement):
        self.splitter = splitter
        self.placement = placement

    def start_episode(self, seed: int) -> None:
        self.splitter.start_episode(seed)
        self.placement.start_episode(seed + 1)

    def predict(self, observation: Any, env) -> np.ndarray:
        view = EnvView(env, observation)
        plan = self.splitter.select(view)
        return view.encode(plan, self.placement.place(view, plan))

    def learn(self, env, total_steps: int, seed: int = 0, callback: StepCallback | None = None,
              start_step: int = 0) -> int:
        """:meth:`Agent.learn` with the placement's ``training`` flag up (evaluation, online updates included, runs
        with it down)."""
        self.placement.training = True
        try:
            return super().learn(env, total_steps, seed, callback, start_step)
        finally:
            self.placement.training = False

    def update(self, reward: float, info: dict, env) -> None:
        outcomes = EnvView(env).last_outcomes()
        if outcomes.count:
            self.splitter.observe(outcomes)
            self.placement.observe(outcomes)

    def state_dict(self) -> dict[str, Any]:
        return {"splitter": self.splitter.state_dict(), "placement": self.placement.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.splitter.load_state_dict(state["splitter"])
        self.placement.load_state_dict(state["placement"])

    def save(self, folder: str | Path) -> None:
        super().save(folder)
        self.placement.save_extra(Path(folder))

    def load(self, folder: str | Path) -> None:
        super().load(folder)
        self.placement.load_extra(Path(folder))
