"""The decision-aware placement learns: on a two-node toy it moves towards the less loaded node; its finish
prior starts it near the earliest-finish node; its input normalisation and learning signal do what their
docstrings say."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from agents.decision_aware import (
    DecisionAwarePlacement,
    PlacementNetwork,
    _masked_distribution,
    _masked_probabilities,
    finish_ratio,
    placement_signal,
    standardise_across_nodes,
)
from agents.env_access import EnvView, JobOutcomes
from envs.dnn.plan import ORIGIN, Fragment, SplitPlan, Transfer
from envs.sim.types import ClusterSnapshot

_PLAN = SplitPlan(model="toy", family="none", variant="whole",
                  fragments=(Fragment("all", macs=1, reference_latency_s=1.0, param_bytes=1, activation_bytes=1),),
                  transfers=(Transfer(ORIGIN, 0, 10), Transfer(0, ORIGIN, 1)), accuracy=0.9)


class _TwoNodeView:
    """What DecisionAwarePlacement reads, for a two-node cluster where one node (drawn per job) is loaded."""

    family_count, variant_count, slot_count, node_count = 1, 1, 1, 2
    NODE_FEATURE_COUNT, FRAGMENT_FEATURE_COUNT = EnvView.NODE_FEATURE_COUNT, EnvView.FRAGMENT_FEATURE_COUNT
    job_feature_count = 2

    def __init__(self, rng: np.random.Generator, snapshot_queue_s: tuple[float, float] = (0.0, 0.0)):
        self.rng = rng
        self.job = None
        self.loaded = 0
        self.snapshot_queue_s = snapshot_queue_s  # queued work the snapshot shows on (loaded, idle) node

    def next_job(self, job_id: int) -> None:
        """A new job from a random origin, and a random node loaded with 2 units of queued work (0.1 elsewhere)."""
        self.loaded = int(self.rng.integers(2))
        self.job = SimpleNamespace(job_id=job_id, origin=int(self.rng.integers(2)), deadline_s=100.0, total_items=1)

    def snapshot(self) -> ClusterSnapshot:
        """Both links at 80 Mbit/s; the queues of ``snapshot_queue_s`` (by default none: the finish estimate
        cannot tell the nodes apart, only the node features can)."""
        queue_s = np.full(2, self.snapshot_queue_s[1])
        queue_s[self.loaded] = self.snapshot_queue_s[0]
        zeros, rates = np.zeros(2), np.full(2, 80.0)
        return ClusterSnapshot(0.0, queue_s, zeros, zeros, rates, rates, np.full(2, 1e9), zeros, np.ones(2, bool))

    def speed_factors(self) -> np.ndarray:
        return np.ones(2)

    def node_features(self) -> np.ndarray:
        features = np.full((2, self.NODE_FEATURE_COUNT), 0.5, dtype=np.float32)
        features[:, 0] = 0.1
        features[self.loaded, 0] = 2.0
        return features

    def fragment_features(self, plan: SplitPlan) -> np.ndarray:
        return np.ones((1, self.FRAGMENT_FEATURE_COUNT), dtype=np.float32)

    def job_features(self) -> np.ndarray:
        return np.ones(2, dtype=np.float32)

    def plan_index(self, plan: SplitPlan) -> tuple[int, int]:
        return 0, 0

    def fitting_nodes(self, fragment: Fragment, used_bytes: np.ndarray | None = None) -> np.ndarray:
        return np.ones(2, dtype=bool)


def _outcome(job_id: int, response_time_s: float, reward: float) -> JobOutcomes:
    return JobOutcomes((job_id,), ("toy",), ("none",), (True,), (reward > 0,), (response_time_s,), (0.9,), (0.0,),
                       (reward,))


def _probability_of_idle_node(placement: DecisionAwarePlacement, view: _TwoNodeView, jobs: int = 200) -> float:
    """Share of sampled placements that go to the idle node, over fresh jobs (nothing learnt from them)."""
    hits = 0
    for job_id in range(jobs):
        view.next_job(10_000 + job_id)
        hits += placement.place(view, _PLAN)[0] != view.loaded
    placement.pending.clear()
    return hits / jobs


def _train(placement: DecisionAwarePlacement, view: _TwoNodeView, jobs: int, response_s: dict[bool, float]) -> None:
    """Place ``jobs`` jobs; each resolves at once with ``response_s[on the loaded node]`` (SplitPlace reward)."""
    for job_id in range(jobs):
        view.next_job(job_id)
        node = placement.place(view, _PLAN)[0]
        response = response_s[node == view.loaded]
        placement.observe(_outcome(job_id, response, 0.5 if response <= view.job.deadline_s else 0.0))


@pytest.mark.parametrize("response_s", [{False: 50.0, True: 300.0}, {False: 200.0, True: 2000.0}],
                         ids=["idle node meets the deadline", "every job late"])
def test_placement_learns_to_avoid_the_loaded_node(response_s):
    view = _TwoNodeView(np.random.default_rng(0))
    placement = DecisionAwarePlacement(view, hidden_units=16, learning_rate=3e-3, exploration="always", seed=0)
    before = _probability_of_idle_node(placement, view)
    _train(placement, view, jobs=400, response_s=response_s)
    after = _probability_of_idle_node(placement, view)
    assert 0.35 < before < 0.65
    assert after > 0.85


def test_without_the_lateness_term_all_late_jobs_teach_nothing():
    view = _TwoNodeView(np.random.default_rng(0))
    placement = DecisionAwarePlacement(view, hidden_units=16, learning_rate=3e-3, lateness_weight=0.0,
                                       exploration="always", seed=0)
    _train(placement, view, jobs=400, response_s={False: 200.0, True: 2000.0})
    assert _probability_of_idle_node(placement, view) < 0.75


def test_by_default_nodes_are_sampled_only_while_training_and_otherwise_the_mode_is_taken():
    view = _TwoNodeView(np.random.default_rng(0))
    placement = DecisionAwarePlacement(view, hidden_units=16, seed=0)
    assert _probability_of_idle_node(placement, view) in (0.0, 1.0)  # the most likely node, every time
    placement.training = True
    assert 0.35 < _probability_of_idle_node(placement, view) < 0.65  # untrained: near even
    never = DecisionAwarePlacement(view, hidden_units=16, exploration="never", seed=0)
    never.training = True
    assert _probability_of_idle_node(never, view) in (0.0, 1.0)


def test_an_unknown_exploration_is_named():
    with pytest.raises(ValueError, match="exploration: 'sometimes'"):
        DecisionAwarePlacement(_TwoNodeView(np.random.default_rng(0)), exploration="sometimes")


def test_standardise_across_nodes_compares_nodes_and_zeroes_equal_columns():
    features = np.array([[0.1, 3.0, 1.0], [0.2, 3.0, 0.0], [0.3, 3.0, 1.0]], dtype=np.float32)
    scaled = standardise_across_nodes(features)
    np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(scaled[:, [0, 2]].std(axis=0), 1.0, atol=1e-5)
    assert not scaled[:, 1].any()  # equal on every node
    np.testing.assert_allclose(scaled[:, 0], [-math.sqrt(1.5), 0.0, math.sqrt(1.5)], atol=1e-5)  # scale-free


def test_placement_signal_adds_log_lateness_only_for_late_jobs():
    assert placement_signal(0.5, 90.0, 100.0, lateness_weight=1.0) == 0.5
    assert placement_signal(0.0, 1000.0, 100.0, lateness_weight=0.5) == pytest.approx(-0.5 * math.log(10.0))
    assert placement_signal(0.2, 1000.0, math.inf, lateness_weight=0.5) == 0.2


def test_finish_ratio_is_log_of_the_estimate_over_the_best_allowed_node():
    ratio = finish_ratio(np.array([10.0, 20.0, 5.0, 1e9]), allowed=np.array([True, True, False, True]))
    np.testing.assert_allclose(ratio, [0.0, math.log(2.0), 0.0, 10.0], atol=1e-6)  # below the best: 0; clipped


@pytest.mark.parametrize("finish_prior, low, high", [(0.0, 0.35, 0.65), (12.0, 0.95, 1.0)])
def test_finish_prior_starts_near_the_earliest_finish_node(finish_prior, low, high):
    """Untrained, with the snapshot showing the loaded node's queue (estimate 31 s against 1.1 s on the idle
    node): the prior sends nearly every job to the idle node; without it, the choice is a coin flip."""
    view = _TwoNodeView(np.random.default_rng(0), snapshot_queue_s=(30.0, 0.0))
    placement = DecisionAwarePlacement(view, hidden_units=16, finish_prior=finish_prior, exploration="always", seed=0)
    assert low < _probability_of_idle_node(placement, view) <= high


def test_acting_computes_the_same_probabilities_as_training():
    """Acting takes the scores without the value head and the softmax without a Categorical: the numbers
    must be those the update's distribution gives, bit for bit (else trained agents would act differently)."""
    torch.manual_seed(0)
    network = PlacementNetwork(node_size=5, slot_size=4, context_size=3, hidden_units=16)
    nodes, slots, context = torch.randn(2, 3, 7, 5), torch.randn(2, 3, 4), torch.randn(2, 3)
    logits, _ = network(nodes, slots, context)
    assert torch.equal(network.scores(nodes, slots, context), logits)
    node_mask = torch.rand(2, 3, 7) < 0.6
    node_mask[..., 0] = True
    probabilities = _masked_probabilities(logits, node_mask)
    assert torch.equal(probabilities, _masked_distribution(logits, node_mask).probs)
    assert torch.all(probabilities[~node_mask] == 0.0)
