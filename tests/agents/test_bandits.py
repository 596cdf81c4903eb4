"""Bandit policies and the split bandit on constructed rewards (no environment needed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from agents.bandits import (
    HIGH,
    LOW,
    POLICIES,
    BanditSplit,
    FeedbackEpsilonGreedy,
    LayerResponseAverage,
    context_count,
)
from agents.env_access import JobOutcomes
from envs.dnn.plan import ORIGIN, Fragment, SplitPlan, Transfer


def _plan(family: str) -> SplitPlan:
    fragment = Fragment("whole", macs=1, reference_latency_s=0.1, param_bytes=1, activation_bytes=1)
    return SplitPlan("m", family, "only", (fragment,), (Transfer(ORIGIN, 0, 1), Transfer(0, ORIGIN, 1)), 0.9)


@dataclass
class _Job:
    job_id: int
    app: str
    deadline_s: float


class _FakeView:
    """The few EnvView members BanditSplit reads."""

    app_names = ("app",)

    def __init__(self):
        self.job = None
        self._plans = (_plan("none"), _plan("layer"), _plan("semantic"))

    def plans(self):
        return self._plans

    def deadline_step_s(self, app):
        return 0.0


# reward of (context, family): semantic is clearly better with tight deadlines, layer with loose ones
REWARD = {(LOW, "layer"): 0.1, (LOW, "semantic"): 0.8, (HIGH, "layer"): 0.9, (HIGH, "semantic"): 0.5}
LAYER_AVERAGE_S = 10.0


def _outcome(job: _Job, family: str, reward: float) -> JobOutcomes:
    return JobOutcomes((job.job_id,), (job.app,), (family,), (True,), (True,), (LAYER_AVERAGE_S,), (0.9,),
                       (1.0,), (reward,))


def _train(selector: BanditSplit, jobs: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    view = _FakeView()
    for job_id in range(jobs):
        context = int(rng.integers(2))
        view.job = _Job(job_id, "app", 5.0 if context == LOW else 15.0)
        plan = selector.select(view)
        noisy_reward = REWARD[(context, plan.family)] + rng.normal(0.0, 0.05)
        selector.observe(_outcome(view.job, plan.family, noisy_reward))


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_bandit_learns_the_better_split_per_context(policy):
    selector = BanditSplit(_FakeView(), policy=policy, initial_layer_response_s={"app": LAYER_AVERAGE_S}, seed=3)
    _train(selector, jobs=600, seed=4)
    arms = selector.arms
    stats = selector.policy
    for context in (LOW, HIGH):
        best = max(arms, key=lambda family: REWARD[(context, family)])
        assert arms[int(np.argmax(stats.mean_rewards[context]))] == best
        assert arms[int(np.argmax(stats.counts[context]))] == best, f"{policy} pulled the worse arm most in {context}"


def test_splitplace_epsilon_decays_only_when_new_rewards_beat_the_rising_threshold():
    policy = FeedbackEpsilonGreedy(2, 2, np.random.default_rng(0))
    assert (policy.epsilon, policy.reward_threshold) == (0.95, 0.45)
    policy.feedback([0.2, 0.6])  # mean 0.4 <= 0.45: nothing changes
    policy.feedback([])  # no finished task: nothing changes
    assert (policy.epsilon, policy.reward_threshold) == (0.95, 0.45)
    policy.feedback([0.5])
    assert policy.epsilon == pytest.approx(0.95 * 0.98)
    assert policy.reward_threshold == pytest.approx(0.45 * 1.05)
    policy.feedback([0.46])  # beat 0.45 but not the raised 0.4725
    assert policy.epsilon == pytest.approx(0.95 * 0.98)


def test_incremental_mean_matches_the_average_of_rewards():
    policy = FeedbackEpsilonGreedy(1, 2, np.random.default_rng(0))
    rewards = [0.3, 0.9, 0.1, 0.5]
    for reward in rewards:
        policy.update(0, 1, reward)
    assert policy.mean_rewards[0, 1] == pytest.approx(np.mean(rewards))
    assert policy.counts[0].tolist() == [0, 4]


def test_layer_average_is_an_ema_with_weight_one_tenth_and_sets_the_context():
    average = LayerResponseAverage({"mnist": 1500.0}, weight=0.1)
    assert average.deadline_context("mnist", 1200.0) == LOW
    assert average.deadline_context("mnist", 1500.0) == HIGH
    average.observe("mnist", 500.0)
    assert average.average_s["mnist"] == pytest.approx(0.9 * 1500.0 + 0.1 * 500.0)
    assert average.deadline_context("cifar100", 1.0) == HIGH  # no estimate yet


def test_selection_respects_allowed_arms():
    for name, policy_class in POLICIES.items():
        policy = policy_class(1, 3, np.random.default_rng(1))
        for _ in range(50):
            arm = policy.select(0, np.array([False, True, False]))
            assert arm == 1, name
            policy.update(0, arm, 0.5)


def test_state_round_trip_gives_identical_choices():
    first = BanditSplit(_FakeView(), initial_layer_response_s={"app": LAYER_AVERAGE_S}, seed=5)
    _train(first, jobs=50, seed=6)
    second = BanditSplit(_FakeView(), initial_layer_response_s={"app": LAYER_AVERAGE_S}, seed=99)
    second.load_state_dict(first.state_dict())
    view = _FakeView()
    for job_id in range(100, 140):
        view.job = _Job(job_id, "app", 5.0 + job_id % 20)
        assert first.select(view).family == second.select(view).family


def test_unknown_context_and_arms_are_refused():
    with pytest.raises(ValueError, match="unknown bandit context"):
        context_count("weekday", 3)
    with pytest.raises(ValueError, match="unknown families"):
        BanditSplit(_FakeView(), arms=("layer", "sideways"))
