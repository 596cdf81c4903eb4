"""Decision-aware placement (SplitPlace's placement concept), learned online with PyTorch.

The policy scores every (fragment slot, node) pair with one shared MLP whose
input is the node's features (queued work, link backlogs, background load, free memory, state,
bandwidth, speed), the slot's fragment features (compute, memory, transfer
sizes of the job), the job's features, and *the split decision* (family and
variant of the chosen plan, one-hot); a softmax over the nodes with room gives
each fragment's node.  Sharing the scorer across nodes keeps the network small
and the same on 10 or 1,000 nodes.  It learns online from the reward of each
job (advantage actor-critic: the job's reward minus a learned value of the
state and decision), one gradient step every ``batch_jobs`` resolved jobs, and
keeps learning during evaluation when ``online_updates`` is on (SplitPlace's
fine-tuning to volatile conditions).

``decision_aware=False`` is the ablation: the same network with the decision
hidden, i.e. the family/variant one-hot and the fragment features zeroed
(only the slot's position is left), so it places without knowing how the model
was split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from agents.env_access import EnvView, JobOutcomes
from agents.protocol import Placement
from envs.dnn.plan import SplitPlan

_WEIGHTS_FILE = "placement_network.pt"


class PlacementNetwork(nn.Module):
    """A shared (slot, node) scorer and a value head over node-averaged features."""

    def __init__(self, node_size: int, slot_size: int, context_size: int, hidden_units: int = 64):
        super().__init__()
        pair_size = node_size + slot_size + context_size
        self.score = nn.Sequential(
            nn.Linear(pair_size, hidden_units), nn.Tanh(),
            nn.Linear(hidden_units, hidden_units), nn.Tanh(),
            nn.Linear(hidden_units, 1),
        )
        self.value = nn.Sequential(nn.Linear(pair_size, hidden_units), nn.Tanh(), nn.Linear(hidden_units, 1))

    def forward(self, nodes: torch.Tensor, slots: torch.Tensor, context: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """nodes (B, N, Fn), slots (B, S, Fs), context (B, C) -> logits (B, S, N), value (B,)."""
        batch, node_count, slot_count = nodes.shape[0], nodes.shape[1], slots.shape[1]
        pairs = torch.cat([
            nodes[:, None].expand(batch, slot_count, node_count, nodes.shape[2]),
            slots[:, :, None].expand(batch, slot_count, node_count, slots.shape[2]),
            context[:, None, None].expand(batch, slot_count, node_count, context.shape[1]),
        ], dim=-1)
        pooled = torch.cat([nodes.mean(dim=1), slots.mean(dim=1), context], dim=-1)
        return self.score(pairs).squeeze(-1), self.value(pooled).squeeze(-1)


@dataclass
class _Decision:
    """What the policy saw and did for one job, kept until the job's outcome arrives."""

    nodes: np.ndarray  # (N, Fn) node features
    slots: np.ndarray  # (S, Fs) slot features
    context: np.ndarray  # (C,) job features and decision
    node_mask: np.ndarray  # (S, N) bool; unused slots all True
    slot_used: np.ndarray  # (S,) bool
    chosen: np.ndarray  # (S,) int node per slot; 0 on unused slots


def _masked_distribution(logits: torch.Tensor, node_mask: torch.Tensor) -> torch.distributions.Categorical:
    return torch.distributions.Categorical(logits=logits.masked_fill(~node_mask, -1e9))


class DecisionAwarePlacement(Placement):
    """Online actor-critic placement over node choices per fragment slot.

    Args:
        view: the environment (sizes of the features and of the action).
        decision_aware: feed the split decision to the network (False: hidden, the ablation).
        hidden_units: width of the MLPs.
        learning_rate: Adam step size.
        batch_jobs: resolved jobs per gradient step.
        value_coefficient, entropy_coefficient: weights of the critic loss and entropy bonus.
        greedy: place with the most likely node instead of sampling (no exploration).
        seed: seed of the initial weights and of the node sampling.
    """

    trainable = True

    def __init__(self, view: EnvView, decision_aware: bool = True, hidden_units: int = 64,
                 learning_rate: float = 1e-3, batch_jobs: int = 16, value_coefficient: float = 0.5,
                 entropy_coefficient: float = 0.01, greedy: bool = False, seed: int = 0):
        self.decision_aware = decision_aware
        self.batch_jobs = batch_jobs
        self.value_coefficient = value_coefficient
        self.entropy_coefficient = entropy_coefficient
        self.greedy = greedy
        self.family_count, self.variant_count = view.family_count, view.variant_count
        self.slot_count, self.node_count = view.slot_count, view.node_count
        torch.manual_seed(seed)
        self.network = PlacementNetwork(
            node_size=view.NODE_FEATURE_COUNT,
            slot_size=view.FRAGMENT_FEATURE_COUNT + self.slot_count,
            context_size=view.job_feature_count + self.family_count + self.variant_count,
            hidden_units=hidden_units,
        )
        self.optimiser = torch.optim.Adam(self.network.parameters(), lr=learning_rate)
        self.generator = torch.Generator().manual_seed(seed)
        self.pending: dict[int, _Decision] = {}
        self.batch: list[tuple[_Decision, float]] = []

    def start_episode(self, seed: int) -> None:
        self.generator.manual_seed(seed)
        self.pending.clear()

    def _inputs(self, view: EnvView, plan: SplitPlan) -> tuple[np.ndarray, np.ndarray]:
        """Slot features (fragment features, slot one-hot) and context (job features, decision one-hot)."""
        decision = np.zeros(self.family_count + self.variant_count, dtype=np.float32)
        fragments = view.fragment_features(plan)
        if self.decision_aware:
            family_index, variant_index = view.plan_index(plan)
            decision[[family_index, self.family_count + variant_index]] = 1.0
        else:
            fragments[:] = 0.0
        slots = np.concatenate([fragments, np.eye(self.slot_count, dtype=np.float32)], axis=1)
        return slots, np.concatenate([view.job_features(), decision])

    def place(self, view: EnvView, plan: SplitPlan) -> list[int]:
        fragment_count = len(plan.fragments)
        node_mask = np.ones((self.slot_count, self.node_count), dtype=bool)
        for slot, fragment in enumerate(plan.fragments):
            fitting = view.fitting_nodes(fragment)
            node_mask[slot] = fitting if fitting.any() else True
        slot_used = np.arange(self.slot_count) < fragment_count
        nodes = view.node_features()
        slots, context = self._inputs(view, plan)
        with torch.no_grad():
            logits, _ = self.network(torch.from_numpy(nodes)[None], torch.from_numpy(slots)[None],
                                     torch.from_numpy(context)[None])
            distribution = _masked_distribution(logits[0], torch.from_numpy(node_mask))
            if self.greedy:
                chosen = distribution.probs.argmax(dim=-1)
            else:
                chosen = torch.multinomial(distribution.probs, 1, generator=self.generator).squeeze(-1)
        chosen = np.where(slot_used, chosen.numpy(), 0)
        self.pending[view.job.job_id] = _Decision(nodes, slots, context, node_mask, slot_used, chosen)
        return chosen[:fragment_count].tolist()

    def observe(self, outcomes: JobOutcomes) -> None:
        for job_id, reward in zip(outcomes.job_ids, outcomes.rewards):
            decision = self.pending.pop(int(job_id), None)
            if decision is not None:
                self.batch.append((decision, float(reward)))
        if len(self.batch) >= self.batch_jobs:
            self._gradient_step()
            self.batch.clear()

    def _gradient_step(self) -> None:
        decisions = [decision for decision, _ in self.batch]

        def stack(name: str) -> torch.Tensor:
            return torch.from_numpy(np.stack([getattr(decision, name) for decision in decisions]))

        rewards = torch.tensor([reward for _, reward in self.batch], dtype=torch.float32)
        logits, values = self.network(stack("nodes"), stack("slots"), stack("context"))
        distribution = _masked_distribution(logits, stack("node_mask"))
        slot_used = stack("slot_used").float()
        log_probability = (distribution.log_prob(stack("chosen")) * slot_used).sum(dim=-1)
        entropy = (distribution.entropy() * slot_used).sum(dim=-1)
        advantage = (rewards - values).detach()
        loss = (-(advantage * log_probability).mean()
                + self.value_coefficient * (rewards - values).pow(2).mean()
                - self.entropy_coefficient * entropy.mean())
        self.optimiser.zero_grad()
        loss.backward()
        self.optimiser.step()

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state().tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(torch.tensor(state["generator"], dtype=torch.uint8))

    def save_extra(self, folder: Path) -> None:
        torch.save({"network": self.network.state_dict(), "optimiser": self.optimiser.state_dict()},
                   folder / _WEIGHTS_FILE)

    def load_extra(self, folder: Path) -> None:
        saved = torch.load(folder / _WEIGHTS_FILE, weights_only=True)
        self.network.load_state_dict(saved["network"])
        self.optimiser.load_state_dict(saved["optimiser"])
