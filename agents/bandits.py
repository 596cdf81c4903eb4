"""Contextual multi-armed bandits that choose the split family of each job.

SplitPlace (Tuli et al., IEEE TMC 2022) picks *layer* or *semantic* split per
task with an epsilon-greedy bandit whose context says whether the task's
deadline is below the running average response time of layer splits for its
app.  :class:`FeedbackEpsilonGreedy` keeps that behaviour (numbers from the
public SplitPlace code, see ``shared/reference/seeds-digest.md``):

* incremental mean reward per (context, arm);
* explore with probability epsilon = 0.95, decayed x0.98 each time the mean
  reward of the newly finished tasks beats a threshold of 0.45, which is then
  raised x1.05;
* context "low"/"high" against an exponential moving average (weight 0.1) of
  the layer-split response time of each app.

SplitPlace checks the feedback rule once per 300 s scheduling interval; here
it is checked once per environment step (one arriving job) with the jobs that
finished during that step, which is about as often, since SplitPlace's
workload brings about one task per interval.  :class:`UCB1` and
:class:`GaussianThompson` are the alternatives.  Contexts other than the
deadline one are options (:data:`CONTEXTS`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from agents.env_access import EnvView, JobOutcomes
from agents.placement import fastest_plan
from agents.protocol import SplitSelector
from envs.dnn.plan import FAMILIES, SplitPlan

LOW, HIGH = 0, 1
"""Deadline context values: the deadline is below / at least the layer-split average."""


class BanditPolicy(ABC):
    """Per-context arm statistics (pull counts and incremental mean rewards)."""

    def __init__(self, context_count: int, arm_count: int, rng: np.random.Generator):
        if context_count < 1 or arm_count < 1:
            raise ValueError(f"need at least one context and one arm, got {context_count}, {arm_count}")
        self.rng = rng
        self.counts = np.zeros((context_count, arm_count), dtype=np.int64)
        self.mean_rewards = np.zeros((context_count, arm_count), dtype=np.float64)

    def update(self, context: int, arm: int, reward: float) -> None:
        """Fold one finished task's reward into the (context, arm) mean."""
        self.counts[context, arm] += 1
        self.mean_rewards[context, arm] += (reward - self.mean_rewards[context, arm]) / self.counts[context, arm]

    def feedback(self, newly_finished_rewards: list[float]) -> None:
        """Hook called once per step with the rewards of the tasks that just finished."""

    @abstractmethod
    def select(self, context: int, allowed: np.ndarray) -> int:
        """Arm to pull in ``context`` among the ``allowed`` (bool per arm) ones."""

    def _best(self, scores: np.ndarray, allowed: np.ndarray) -> int:
        """Allowed arm of highest score; ties broken at random."""
        masked = np.where(allowed, scores, -np.inf)
        best = np.flatnonzero(masked == masked.max())
        return int(self.rng.choice(best))

    def state_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts.tolist(),
            "mean_rewards": self.mean_rewards.tolist(),
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.counts = np.asarray(state["counts"], dtype=np.int64)
        self.mean_rewards = np.asarray(state["mean_rewards"], dtype=np.float64)
        self.rng.bit_generator.state = state["rng"]


class FeedbackEpsilonGreedy(BanditPolicy):
    """SplitPlace's epsilon-greedy with reward-feedback decay of epsilon."""

    def __init__(
        self,
        context_count: int,
        arm_count: int,
        rng: np.random.Generator,
        epsilon: float = 0.95,
        epsilon_decay: float = 0.98,
        reward_threshold: float = 0.45,
        threshold_growth: float = 1.05,
    ):
        super().__init__(context_count, arm_count, rng)
        self.epsilon = epsilon
        self.epsilon_decay = epsilon_decay
        self.reward_threshold = reward_threshold
        self.threshold_growth = threshold_growth

    def select(self, context: int, allowed: np.ndarray) -> int:
        if self.rng.random() < self.epsilon:
            return int(self.rng.choice(np.flatnonzero(allowed)))
        return self._best(self.mean_rewards[context], allowed)

    def feedback(self, newly_finished_rewards: list[float]) -> None:
        if newly_finished_rewards and float(np.mean(newly_finished_rewards)) > self.reward_threshold:
            self.epsilon *= self.epsilon_decay
            self.reward_threshold *= self.threshold_growth

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"epsilon": self.epsilon, "reward_threshold": self.reward_threshold}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.epsilon = float(state["epsilon"])
        self.reward_threshold = float(state["reward_threshold"])


class UCB1(BanditPolicy):
    """UCB1 (Auer et al., 2002): mean + c * sqrt(2 ln n / n_arm); untried arms first."""

    def __init__(self, context_count: int, arm_count: int, rng: np.random.Generator, exploration: float = 1.0):
        super().__init__(context_count, arm_count, rng)
        self.exploration = exploration

    def select(self, context: int, allowed: np.ndarray) -> int:
        counts = self.counts[context]
        untried = allowed & (counts == 0)
        if untried.any():
            return int(self.rng.choice(np.flatnonzero(untried)))
        total = counts[allowed].sum()
        bonus = self.exploration * np.sqrt(2.0 * math.log(total) / np.maximum(counts, 1))
        return self._best(self.mean_rewards[context] + bonus, allowed)


class GaussianThompson(BanditPolicy):
    """Thompson sampling with a Gaussian posterior on each arm's mean reward.

    Prior N(prior_mean, noise_std^2); after n rewards the posterior of the mean
    is N(incremental mean shrunk to the prior, noise_std^2 / (n + 1)).
    """

    def __init__(
        self,
        context_count: int,
        arm_count: int,
        rng: np.random.Generator,
        noise_std: float = 0.5,
        prior_mean: float = 0.5,
    ):
        super().__init__(context_count, arm_count, rng)
        self.noise_std = noise_std
        self.prior_mean = prior_mean

    def select(self, context: int, allowed: np.ndarray) -> int:
        counts = self.counts[context]
        posterior_mean = (self.prior_mean + counts * self.mean_rewards[context]) / (counts + 1)
        samples = self.rng.normal(posterior_mean, self.noise_std / np.sqrt(counts + 1))
        return self._best(samples, allowed)


POLICIES: dict[str, type[BanditPolicy]] = {
    "epsilon_greedy": FeedbackEpsilonGreedy,
    "ucb1": UCB1,
    "thompson": GaussianThompson,
}
"""Bandit policies by config name."""


class LayerResponseAverage:
    """Exponential moving average of the layer-split response time of each app (seconds)."""

    def __init__(self, initial_s: dict[str, float], weight: float = 0.1):
        if not 0.0 < weight <= 1.0:
            raise ValueError(f"EMA weight must be in (0, 1], got {weight}")
        self.average_s = dict(initial_s)
        self.weight = weight

    def observe(self, app: str, response_time_s: float) -> None:
        previous = self.average_s.get(app, response_time_s)
        self.average_s[app] = (1.0 - self.weight) * previous + self.weight * response_time_s

    def deadline_context(self, app: str, deadline_s: float) -> int:
        """LOW if the deadline is below the app's average layer response time, else HIGH.

        An app without any estimate yet counts as HIGH (nothing says layer is too slow).
        """
        average = self.average_s.get(app)
        return LOW if average is not None and deadline_s < average else HIGH


CONTEXTS = ("deadline", "app_deadline", "none")
"""Bandit contexts: SplitPlace's low/high deadline, that per app, or a single context."""


def context_count(kind: str, app_count: int) -> int:
    """Number of context values of a context kind."""
    if kind == "deadline":
        return 2
    if kind == "app_deadline":
        return 2 * app_count
    if kind == "none":
        return 1
    raise ValueError(f"unknown bandit context {kind!r}; allowed: {CONTEXTS}")


def context_index(kind: str, deadline_context: int, app_index: int) -> int:
    """Context value for a job, given its deadline context and its app's index."""
    if kind == "deadline":
        return deadline_context
    if kind == "app_deadline":
        return 2 * app_index + deadline_context
    return 0


SPLITPLACE_INITIAL_LAYER_INTERVALS = {"mnist": 5.0, "fashionmnist": 8.0, "cifar100": 15.0}
"""SplitPlace's initial layer response-time averages, in 300 s scheduling intervals (its public code)."""


def initial_layer_averages_s(view: EnvView, given: dict[str, float] | None) -> dict[str, float]:
    """``given`` (seconds per app), or SplitPlace's initial averages for SplitPlace's apps
    (``mnist``, ``fashionmnist``, ``cifar100``), whose deadline step is one SplitPlace interval."""
    if given is not None:
        return dict(given)
    return {
        app: SPLITPLACE_INITIAL_LAYER_INTERVALS[app] * view.deadline_step_s(app)
        for app in view.app_names
        if app in SPLITPLACE_INITIAL_LAYER_INTERVALS and view.deadline_step_s(app) > 0
    }


class BanditSplit(SplitSelector):
    """A contextual bandit over split families, learning from each job's reward.

    Args:
        view: the environment (apps and their deadline steps).
        policy: one of :data:`POLICIES` (``epsilon_greedy`` is SplitPlace's).
        arms: split families to choose among (SplitPlace: layer and semantic).
        context: one of :data:`CONTEXTS`.
        ema_weight: weight of a new layer response time in the running average.
        initial_layer_response_s: starting averages per app, seconds (default: SplitPlace's).
        fastest_variant: within the family, the plan of earliest estimated completion
            (:func:`agents.placement.fastest_plan`); else the family's first plan.
        policy_kwargs: keywords of the policy class (``epsilon``, ``exploration``, ...).
        seed: seed of the policy's random draws.
    """

    def __init__(self, view: EnvView, policy: str = "epsilon_greedy", arms: tuple[str, ...] = ("layer", "semantic"),
                 context: str = "deadline", ema_weight: float = 0.1,
                 initial_layer_response_s: dict[str, float] | None = None, fastest_variant: bool = True,
                 policy_kwargs: dict[str, Any] | None = None, seed: int = 0):
        if policy not in POLICIES:
            raise ValueError(f"unknown bandit policy {policy!r}; allowed: {sorted(POLICIES)}")
        unknown = [arm for arm in arms if arm not in FAMILIES]
        if unknown or not arms:
            raise ValueError(f"bandit arms {list(arms)}: unknown families {unknown}; allowed: {list(FAMILIES)}")
        self.arms = tuple(arms)
        self.context = context
        self.apps = tuple(view.app_names)
        self.policy = POLICIES[policy](context_count(context, len(self.apps)), len(self.arms),
                                       np.random.default_rng(seed), **(policy_kwargs or {}))
        self.layer_average = LayerResponseAverage(initial_layer_averages_s(view, initial_layer_response_s),
                                                  ema_weight)
        self.fastest_variant = fastest_variant
        self.pending: dict[int, tuple[int, int]] = {}

    def start_episode(self, seed: int) -> None:
        self.pending.clear()

    def job_context(self, view: EnvView) -> int:
        job = view.job
        deadline_context = self.layer_average.deadline_context(job.app, job.deadline_s)
        return context_index(self.context, deadline_context, self.apps.index(job.app))

    def select(self, view: EnvView) -> SplitPlan:
        by_arm = [[plan for plan in view.plans() if plan.family == family] for family in self.arms]
        allowed = np.array([bool(plans) for plans in by_arm])
        if not allowed.any():
            return view.plans()[0]
        context = self.job_context(view)
        arm = self.policy.select(context, allowed)
        self.pending[view.job.job_id] = (context, arm)
        return fastest_plan(view, by_arm[arm]) if self.fastest_variant else by_arm[arm][0]

    def observe(self, outcomes: JobOutcomes) -> None:
        rewards = []
        for index, job_id in enumerate(outcomes.job_ids):
            if outcomes.families[index] == "layer" and outcomes.finished[index]:
                self.layer_average.observe(outcomes.apps[index], float(outcomes.response_time_s[index]))
            chosen = self.pending.pop(int(job_id), None)
            if chosen is not None:
                self.policy.update(*chosen, float(outcomes.rewards[index]))
                rewards.append(float(outcomes.rewards[index]))
        self.policy.feedback(rewards)

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "layer_average_s": self.layer_average.average_s}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.layer_average.average_s = dict(state["layer_average_s"])
