"""An agent of your own, used from an experiment config (see docs/agents.md, "Your own agent").

Round robin: the waiting job's plan of one split family (its first plan if it has none in that family), with
every fragment on the next node in turn that is up and has room for the plan's largest fragment.

    # in an experiment config
    plugins: [docs/examples/round_robin_agent.py]
    agents:
      - {label: round_robin, name: round_robin, params: {family: layer}}
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from agents.config import StrictModel
from agents.protocol import Agent
from agents.registry import register_agent


class RoundRobinParams(StrictModel):
    """The agent's ``params`` (a mistyped key is an error naming it)."""

    family: Literal["none", "layer", "semantic", "early_exit", "width"] = "none"


class RoundRobinAgent(Agent):
    """Nodes in turn; no learning (``update`` and ``learn`` keep the protocol's defaults)."""

    def __init__(self, family: str):
        self.family = family
        self.next_node = 0

    def start_episode(self, seed: int) -> None:
        self.next_node = 0

    def predict(self, observation, env) -> np.ndarray:
        unwrapped = env.unwrapped
        plans = unwrapped.plans()
        plan = next((plan for plan in plans if plan.family == self.family), plans[0])
        snapshot = unwrapped.snapshot
        largest_bytes = max(fragment.memory_bytes for fragment in plan.fragments)
        candidates = np.flatnonzero(snapshot.up & (snapshot.free_memory_bytes >= largest_bytes))
        if candidates.size == 0:  # nowhere fits: the job will be rejected whatever the node
            candidates = np.arange(len(snapshot.up))
        node = int(candidates[np.searchsorted(candidates, self.next_node) % candidates.size])
        self.next_node = node + 1
        return unwrapped.encode_action(plan, [node] * len(plan.fragments))


register_agent("round_robin", RoundRobinParams, lambda params, env: RoundRobinAgent(params.family),
               "example of your own agent: one family, nodes in turn (docs/examples/round_robin_agent.py)")
