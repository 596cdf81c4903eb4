"""Decision-aware placement (SplitPlace's placement concept), learned online with PyTorch.

The policy places a job's fragments one slot after the other.  One shared MLP scores every
(fragment slot, node) pair; its input is

* the node's features (queued work, link backlogs, background load, free memory, state,
  bandwidth, speed), each also standardised across the nodes (:func:`standardise_across_nodes`):
  the scorer compares nodes, and the raw features differ between nodes by a few hundredths of
  their unit (300 s of queue in units of 3,000 s) while varying by whole units over an episode;
* where the job already is (:meth:`DecisionAwarePlacement.placed_features`): whether the node is
  the job's origin, the share of the slot's input that comes from the node (the origin, or the
  nodes chosen for earlier fragments) and the share of the job's compute already placed there.
  With these a layer chain can follow its earlier fragments (no activation transfer) and a
  semantic split can spread out; without them every slot was drawn independently of the others;
* the agent's own estimate of when the slot's fragment would finish on the node
  (:mod:`agents.finish_estimate`: queue, inputs' transfers and compute at the node's speed and
  background load, from the snapshot), as :func:`finish_ratio` (ln of the estimate over the best
  node's);
* the slot's fragment features (compute, memory, transfer sizes), the job's features, and
  *the split decision* (family and variant of the chosen plan, one-hot).

A softmax over the nodes with room (counting the job's earlier fragments) of the scores minus
``finish_prior`` x the finish ratio gives each slot's node.  That fixed prior makes the untrained
policy a soft earliest-finish placement (with the default ``finish_prior`` 12, a node estimated to
finish 10 % later than the best is drawn 0.32 times as often, one twice as late almost never) that the
network learns to correct.  Without it
an untrained policy places uniformly, and under load its first exploring placements saturate the
cluster before it has learnt anything: once every queue is long, every job is late whatever its
placement and the reward stops telling placements apart.
Sharing the scorer across nodes keeps the network small and the same on 10 or 1,000 nodes.

It learns online from each job's outcome with an advantage actor-critic, one update every
``batch_jobs`` resolved jobs, and keeps learning during evaluation when ``online_updates`` is on
(SplitPlace's fine-tuning to volatile conditions).  Two departures from a plain actor-critic on
SplitPlace's reward, both because that reward stops telling placements apart once queues build up
(every job late: reward 0.5 x 0 plus an accuracy bonus that only the split decides):

* the learning signal is the job's reward minus ``lateness_weight`` x ln(response time /
  deadline) for a late job (:func:`placement_signal`), so a job 10 % late counts as better than one
  10 times late; on-time jobs keep SplitPlace's reward;
* an update takes ``update_epochs`` gradient steps on PPO's clipped surrogate (ratio to the policy
  before the update, clipped to 1 ± ``clip_range``) with advantages standardised over the batch,
  so that the few hundred resolved jobs of an episode move the policy; one plain step per 16 jobs
  left it uniform.

``decision_aware=False`` is the ablation: the same network with the decision
hidden, i.e. the family/variant one-hot, the fragment features, the placed features and the
finish ratio zeroed (only the slot's position is left; the prior then adds nothing), so it places
without knowing how the model was split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import numpy as np
import torch
from torch import nn

from agents.env_access import EnvView, JobOutcomes
from agents.finish_estimate import place_slot_by_slot
from agents.protocol import Exploration, Placement
from envs.dnn.plan import ORIGIN, SplitPlan

_WEIGHTS_FILE = "placement_network.pt"

MIN_NODE_SPREAD = 1e-3
"""Standard deviation across nodes (in the feature's unit) below which a feature counts as equal on all nodes."""

PLACED_FEATURE_COUNT = 3
"""Columns of :meth:`DecisionAwarePlacement.placed_features`."""

FINISH_RATIO_CLIP = 10.0
"""Largest value of the finish column (:func:`finish_ratio`): e^10 times the best node's estimate."""


def finish_ratio(finish_s: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """(nodes,) float32: ln(estimated finish on the node / the smallest over the ``allowed`` nodes), in
    [0, FINISH_RATIO_CLIP]: 0 on the node estimated to finish first, 0.69 on one estimated to take twice as
    long.  Estimates below a millisecond count as a millisecond."""
    floored = np.maximum(finish_s, 1e-3)
    best = floored[allowed].min() if allowed.any() else floored.min()
    return np.clip(np.log(floored / best), 0.0, FINISH_RATIO_CLIP).astype(np.float32)


def standardise_across_nodes(features: np.ndarray) -> np.ndarray:
    """(nodes, F) -> (nodes, F) float32: each column minus its mean over the nodes, divided by its standard
    deviation over the nodes; 0 in a column whose spread is below :data:`MIN_NODE_SPREAD`."""
    centred = features - features.mean(axis=0)
    spread = features.std(axis=0)
    scaled = np.divide(centred, spread, out=np.zeros_like(centred), where=spread >= MIN_NODE_SPREAD)
    return scaled.astype(np.float32)


def placement_signal(reward: float, response_time_s: float, deadline_s: float, lateness_weight: float) -> float:
    """What the placement learns from one job: its reward minus ``lateness_weight`` x ln(response time /
    deadline) if it was late (times in seconds; no lateness term without a positive, finite deadline)."""
    if not (0.0 < deadline_s < math.inf) or response_time_s <= deadline_s:
        return reward
    return reward - lateness_weight * math.log(response_time_s / deadline_s)


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
        """nodes (B, S, N, Fn) per slot, slots (B, S, Fs), context (B, C) -> logits (B, S, N), value (B,)."""
        pooled = torch.cat([nodes[:, 0].mean(dim=1), slots.mean(dim=1), context], dim=-1)
        return self.scores(nodes, slots, context), self.value(pooled).squeeze(-1)

    def scores(self, nodes: torch.Tensor, slots: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """The logits of :meth:`forward` alone (acting needs no value)."""
        batch, slot_count, node_count = nodes.shape[:3]
        pairs = torch.cat([
            nodes,
            slots[:, :, None].expand(batch, slot_count, node_count, slots.shape[2]),
            context[:, None, None].expand(batch, slot_count, node_count, context.shape[1]),
        ], dim=-1)
        return self.score(pairs).squeeze(-1)


@dataclass
class _Decision:
    """What the policy saw and did for one job, kept until the job's outcome arrives."""

    nodes: np.ndarray  # (S, N, Fn) node features as each slot saw them
    slots: np.ndarray  # (S, Fs) slot features
    context: np.ndarray  # (C,) job features and decision
    node_mask: np.ndarray  # (S, N) bool; unused slots all True
    slot_used: np.ndarray  # (S,) bool
    chosen: np.ndarray  # (S,) int node per slot; 0 on unused slots
    deadline_s: float  # the job's deadline, seconds after arrival


def _masked_logits(logits: torch.Tensor, node_mask: torch.Tensor) -> torch.Tensor:
    """``logits`` with the refused nodes at -1e9 (probability 0)."""
    return logits.masked_fill(~node_mask, -1e9)


def _masked_distribution(logits: torch.Tensor, node_mask: torch.Tensor) -> torch.distributions.Categorical:
    """Categorical over the allowed nodes; without torch's argument checks (the same numbers, 13 % faster
    training: the logits are finite by construction)."""
    return torch.distributions.Categorical(logits=_masked_logits(logits, node_mask), validate_args=False)


def _masked_probabilities(logits: torch.Tensor, node_mask: torch.Tensor) -> torch.Tensor:
    """``_masked_distribution(logits, node_mask).probs`` computed as Categorical does (normalised logits, then
    softmax: the same numbers) without building the distribution."""
    masked = _masked_logits(logits, node_mask)
    return torch.softmax(masked - masked.logsumexp(dim=-1, keepdim=True), dim=-1)


class DecisionAwarePlacement(Placement):
    """Online actor-critic placement over node choices per fragment slot (see the module docstring).

    Args:
        view: the environment (sizes of the features and of the action).
        decision_aware: feed the split decision to the network (False: hidden, the ablation).
        hidden_units: width of the MLPs.
        learning_rate: Adam step size.
        batch_jobs: resolved jobs per update.
        value_coefficient, entropy_coefficient: weights of the critic loss and entropy bonus.
        exploration: when each slot's node is sampled from the policy rather than taken as its most likely
            node: ``"training"`` only while the agent trains (evaluation, online fine-tuning included, takes the
            mode, as SB3 agents predict deterministically), ``"always"``, or ``"never"``.
        lateness_weight: weight of ln(response time / deadline) of a late job in the learning signal
            (0: SplitPlace's reward alone).
        update_epochs: gradient steps per update on the same batch.
        clip_range: PPO clip of the probability ratio to the policy before the update.
        finish_prior: logit penalty per unit of :func:`finish_ratio` (0: no prior, a uniform start).
        seed: seed of the initial weights and of the node sampling.
    """

    def __init__(self, view: EnvView, decision_aware: bool = True, hidden_units: int = 64,
                 learning_rate: float = 1e-3, batch_jobs: int = 16, value_coefficient: float = 0.5,
                 entropy_coefficient: float = 0.01, exploration: Exploration = "training",
                 lateness_weight: float = 0.25, update_epochs: int = 4, clip_range: float = 0.2,
                 finish_prior: float = 12.0, seed: int = 0):
        self.decision_aware = decision_aware
        self.batch_jobs = batch_jobs
        self.value_coefficient = value_coefficient
        self.entropy_coefficient = entropy_coefficient
        if exploration not in get_args(Exploration):
            raise ValueError(f"exploration: {exploration!r} is not one of {get_args(Exploration)}")
        self.exploration = exploration
        self.lateness_weight = lateness_weight
        self.update_epochs = update_epochs
        self.clip_range = clip_range
        self.finish_prior = finish_prior
        self.family_count, self.variant_count = view.family_count, view.variant_count
        self.slot_count, self.node_count = view.slot_count, view.node_count
        torch.manual_seed(seed)
        self.network = PlacementNetwork(
            node_size=2 * view.NODE_FEATURE_COUNT + PLACED_FEATURE_COUNT + 1,  # last: finish_ratio
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

    def placed_features(self, view: EnvView, plan: SplitPlan, slot: int, chosen: np.ndarray) -> np.ndarray:
        """(nodes, PLACED_FEATURE_COUNT) float32 for ``slot`` once the earlier slots are on ``chosen`` (nodes):
        1 on the job's origin; share of the slot's input bytes that come from the node; share of the job's
        reference compute (s) already placed on the node.  (Not given in the ablation: they reveal the plan.)"""
        features = np.zeros((self.node_count, PLACED_FEATURE_COUNT), dtype=np.float32)
        origin = view.job.origin
        features[origin, 0] = 1.0
        inputs = plan.inputs_of(slot)
        input_bytes = sum(transfer.bytes for transfer in inputs)
        for transfer in inputs:
            source = origin if transfer.source == ORIGIN else chosen[transfer.source]
            features[source, 1] += transfer.bytes / max(input_bytes, 1)
        total_s = sum(fragment.reference_latency_s for fragment in plan.fragments)
        for earlier in range(slot):
            features[chosen[earlier], 2] += plan.fragments[earlier].reference_latency_s / max(total_s, 1e-12)
        return features

    def place(self, view: EnvView, plan: SplitPlan) -> list[int]:
        base = view.node_features()
        base = np.concatenate([base, standardise_across_nodes(base)], axis=1)
        slots, context = self._inputs(view, plan)
        nodes = np.zeros((self.slot_count, self.node_count, base.shape[1] + PLACED_FEATURE_COUNT + 1),
                         dtype=np.float32)
        node_mask = np.ones((self.slot_count, self.node_count), dtype=bool)

        def sampled(slot: int, fitting: np.ndarray, finish_s: np.ndarray, chosen: np.ndarray, _free) -> int:
            node_mask[slot] = fitting if fitting.any() else True
            nodes[slot, :, :base.shape[1]] = base
            if self.decision_aware:  # the estimate reveals the fragment's size
                nodes[slot, :, base.shape[1]:-1] = self.placed_features(view, plan, slot, chosen)
                nodes[slot, :, -1] = finish_ratio(finish_s, node_mask[slot])
            return self._choose(nodes[slot], slots[slot], context, node_mask[slot])

        placement = place_slot_by_slot(view, plan, sampled)
        chosen = np.zeros(self.slot_count, dtype=np.int64)
        chosen[:len(placement)] = placement
        slot_used = np.arange(self.slot_count) < len(placement)
        self.pending[view.job.job_id] = _Decision(nodes, slots, context, node_mask, slot_used, chosen,
                                                  float(view.job.deadline_s))
        return placement

    def _choose(self, nodes: np.ndarray, slot: np.ndarray, context: np.ndarray, node_mask: np.ndarray) -> int:
        """The node of one slot: sampled from (or, not exploring, the mode of) the masked softmax of its scores."""
        with torch.inference_mode():
            node_tensor = torch.from_numpy(nodes)
            logits = self.network.scores(node_tensor[None, None], torch.from_numpy(slot)[None, None],
                                         torch.from_numpy(context)[None])
            probabilities = _masked_probabilities(self._with_prior(logits[0, 0], node_tensor),
                                                  torch.from_numpy(node_mask))
            if not self.exploring:
                return int(probabilities.argmax())
            return int(torch.multinomial(probabilities, 1, generator=self.generator))

    @property
    def exploring(self) -> bool:
        """Whether nodes are sampled now (``exploration``, and whether the agent is training)."""
        return self.exploration == "always" or (self.exploration == "training" and self.training)

    def _with_prior(self, logits: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
        """The network's scores (..., N) minus ``finish_prior`` x the finish ratio (last node feature)."""
        return logits - self.finish_prior * nodes[..., -1]

    def observe(self, outcomes: JobOutcomes) -> None:
        for job_id, reward, response_time_s in zip(outcomes.job_ids, outcomes.rewards, outcomes.response_time_s):
            decision = self.pending.pop(int(job_id), None)
            if decision is not None:
                signal = placement_signal(float(reward), float(response_time_s), decision.deadline_s,
                                          self.lateness_weight)
                self.batch.append((decision, signal))
        if len(self.batch) >= self.batch_jobs:
            self._update()
            self.batch.clear()

    def _update(self) -> None:
        """``update_epochs`` gradient steps of the clipped actor-critic loss on the batch."""
        decisions = [decision for decision, _ in self.batch]

        def stack(name: str) -> torch.Tensor:
            return torch.from_numpy(np.stack([getattr(decision, name) for decision in decisions]))

        inputs = (stack("nodes"), stack("slots"), stack("context"))
        node_mask, chosen, slot_used = stack("node_mask"), stack("chosen"), stack("slot_used").float()
        signals = torch.tensor([signal for _, signal in self.batch], dtype=torch.float32)

        def log_probability_and_entropy(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            distribution = _masked_distribution(logits, node_mask)
            return ((distribution.log_prob(chosen) * slot_used).sum(dim=-1),
                    (distribution.entropy() * slot_used).sum(dim=-1))

        with torch.no_grad():
            logits, values = self.network(*inputs)
            logits = self._with_prior(logits, inputs[0])
            old_log_probability, _ = log_probability_and_entropy(logits)
            advantage = signals - values
            if len(decisions) > 1:
                advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        for _ in range(self.update_epochs):
            logits, values = self.network(*inputs)
            logits = self._with_prior(logits, inputs[0])
            log_probability, entropy = log_probability_and_entropy(logits)
            ratio = torch.exp(log_probability - old_log_probability)
            clipped = torch.clamp(ratio, 1.0 - self.clip_range, 1.0 + self.clip_range)
            loss = (-torch.min(ratio * advantage, clipped * advantage).mean()
                    + self.value_coefficient * (signals - values).pow(2).mean()
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
