"""Agents by name: each name has a pydantic parameter model (unknown keys are errors) and a factory.

``build_agent(name, params, env)`` makes an agent for an environment;
``validate_params(name, params)`` checks a config's ``params`` and fills in the
defaults.  Names (SplitPlace's labels in brackets):

========================  ===============================================================
``random``                random plan, random nodes with room
``layer_only``            layer split + placement heuristic [L+G]
``semantic_only``         semantic split + placement heuristic [S+G]
``bandit``                contextual bandit over split families + heuristic placement [M+G]
``decision_aware``        bandit (or random) split + decision-aware learned placement [M+D, R+D]
``min_cut``               optimal device/server cut at the current bandwidth
``mdi``                   MDI early exit adapted to the deadline, least-loaded chain
``paradis``               ParaDiS width switch sized to the free devices
``gillis``                Gillis-like layer partitioning under the deadline
``mc``                    compressed model on one node [MC]
``ppo``, ``maskable_ppo`` SB3 PPO / sb3-contrib MaskablePPO
``sb3``                   any SB3 / sb3-contrib algorithm by class name
========================  ===============================================================
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from agents.config import StrictModel
from agents.protocol import Exploration

HeuristicName = Literal["least_loaded", "fastest_finish", "estimated_finish", "random"]
FamilyName = Literal["none", "layer", "semantic", "early_exit", "width"]


class HeuristicPlacementParams(StrictModel):
    """A placement heuristic (see ``agents.placement``)."""

    kind: HeuristicName = "least_loaded"


class LearnedPlacementParams(StrictModel):
    """The decision-aware placement network (see ``agents.decision_aware``)."""

    kind: Literal["decision_aware"] = "decision_aware"
    decision_aware: bool = True  # False: the ablation, decision input zeroed
    hidden_units: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0)
    batch_jobs: int = Field(default=16, ge=1)
    value_coefficient: float = Field(default=0.5, ge=0)
    entropy_coefficient: float = Field(default=0.01, ge=0)
    exploration: Exploration = "training"  # when nodes are sampled (else the most likely ones are taken)
    lateness_weight: float = Field(default=0.25, ge=0)  # x ln(response / deadline) of a late job; 0: reward only
    update_epochs: int = Field(default=4, ge=1, le=50)  # gradient steps per batch of resolved jobs
    clip_range: float = Field(default=0.2, gt=0, le=1)  # PPO clip of the probability ratio
    finish_prior: float = Field(default=12.0, ge=0)  # logit penalty per e-fold of estimated finish; 0: uniform start

    @model_validator(mode="before")
    @classmethod
    def _replaced_greedy(cls, data: Any) -> Any:
        if isinstance(data, dict) and "greedy" in data:
            raise ValueError("greedy was replaced by exploration (2026-12-05): greedy: true is exploration: never; "
                             "greedy: false sampled in evaluation too, which is exploration: always (the default, "
                             "training, samples only while training)")
        return data


PlacementParams = Annotated[HeuristicPlacementParams | LearnedPlacementParams, Field(discriminator="kind")]


class BanditParams(StrictModel):
    """A contextual bandit over split families (see ``agents.bandits.BanditSplit``)."""

    policy: Literal["epsilon_greedy", "ucb1", "thompson"] = "epsilon_greedy"
    arms: list[FamilyName] = Field(default_factory=lambda: ["layer", "semantic"], min_length=1)
    context: Literal["deadline", "app_deadline", "none"] = "deadline"
    ema_weight: float = Field(default=0.1, gt=0, le=1)
    initial_layer_response_s: dict[str, float] | None = None
    fastest_variant: bool = True
    policy_kwargs: dict[str, float] = Field(default_factory=dict)

    @field_validator("policy_kwargs")
    @classmethod
    def _known_kwargs(cls, kwargs: dict[str, float], info) -> dict[str, float]:
        from agents.bandits import POLICIES

        policy = POLICIES[info.data.get("policy", "epsilon_greedy")]
        allowed = [name for name in inspect.signature(policy).parameters
                   if name not in ("context_count", "arm_count", "rng")]
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise ValueError(f"unknown keys {unknown} for policy {policy.__name__}; allowed: {allowed}")
        return kwargs


class RandomParams(StrictModel):
    seed: int = 0


class FixedFamilyParams(StrictModel):
    placement: HeuristicPlacementParams = Field(default_factory=HeuristicPlacementParams)
    fastest_variant: bool = True


class HeuristicParams(StrictModel):
    placement: HeuristicPlacementParams = Field(default_factory=HeuristicPlacementParams)


class FastestFinishParams(StrictModel):
    placement: HeuristicPlacementParams = Field(
        default_factory=lambda: HeuristicPlacementParams(kind="fastest_finish"))


class NoParams(StrictModel):
    pass


class BanditAgentParams(StrictModel):
    """A split selector followed by a placement (SplitPlace's two stages)."""

    split: Literal["bandit", "random"] = "bandit"
    bandit: BanditParams = Field(default_factory=BanditParams)
    placement: PlacementParams = Field(default_factory=HeuristicPlacementParams)
    seed: int = 0


class DecisionAwareParams(BanditAgentParams):
    placement: PlacementParams = Field(default_factory=LearnedPlacementParams)


class SB3Params(StrictModel):
    """An SB3 algorithm (see ``agents.sb3_agents.SB3Agent``)."""

    algorithm: str = "PPO"
    policy: str = "auto"
    algorithm_kwargs: dict[str, Any] = Field(default_factory=dict)
    deterministic: bool = True
    seed: int = 0

    @field_validator("algorithm")
    @classmethod
    def _known_algorithm(cls, algorithm: str) -> str:
        from agents.sb3_agents import algorithm_class

        algorithm_class(algorithm)
        return algorithm


class MaskablePPOParams(SB3Params):
    algorithm: str = "MaskablePPO"


@dataclass(frozen=True)
class Entry:
    """A registered agent: its parameter model and how to build it."""

    params: type[BaseModel]
    factory: Callable[[Any, Any], Any]  # (validated params, env) -> Agent
    description: str


def _placement(params, view, seed: int):
    from agents.decision_aware import DecisionAwarePlacement
    from agents.placement import PLACEMENTS, RandomPlacement

    if params.kind == "decision_aware":
        return DecisionAwarePlacement(view, seed=seed, **params.model_dump(exclude={"kind"}))
    if params.kind == "random":
        return RandomPlacement(seed)
    return PLACEMENTS[params.kind]()


def _split_then_place(selector_factory):
    """Factory of a SplitThenPlace agent whose selector is ``selector_factory(params, view)``."""

    def build(params, env):
        from agents.env_access import EnvView
        from agents.protocol import SplitThenPlace

        view = EnvView(env)
        seed = getattr(params, "seed", 0)
        return SplitThenPlace(selector_factory(params, view), _placement(params.placement, view, seed + 1))

    return build


def _bandit_selector(params, view):
    from agents.bandits import BanditSplit
    from agents.baselines import RandomSplit

    if params.split == "random":
        return RandomSplit(params.seed)
    return BanditSplit(view, seed=params.seed, **params.bandit.model_dump())


def _baseline(class_name: str, **kwargs):
    def make(params, view):
        import agents.baselines

        extra = {"fastest_variant": params.fastest_variant} if hasattr(params, "fastest_variant") else {}
        return getattr(agents.baselines, class_name)(**kwargs, **extra)

    return make


def _random(params, env):
    from agents.baselines import RandomAgent

    return RandomAgent(params.seed)


def _min_cut(params, env):
    from agents.baselines import MinCutAgent

    return MinCutAgent()


def _sb3(params, env):
    from agents.sb3_agents import SB3Agent

    return SB3Agent(env, **params.model_dump())


REGISTRY: dict[str, Entry] = {
    "random": Entry(RandomParams, _random, "random plan, random nodes with room"),
    "layer_only": Entry(FixedFamilyParams, _split_then_place(_baseline("FixedFamily", family="layer")),
                        "layer split + placement heuristic (SplitPlace L+G)"),
    "semantic_only": Entry(FixedFamilyParams, _split_then_place(_baseline("FixedFamily", family="semantic")),
                           "semantic split + placement heuristic (SplitPlace S+G)"),
    "bandit": Entry(BanditAgentParams, _split_then_place(_bandit_selector),
                    "bandit split + heuristic placement (SplitPlace M+G)"),
    "decision_aware": Entry(DecisionAwareParams, _split_then_place(_bandit_selector),
                            "bandit or random split + decision-aware placement (SplitPlace M+D, R+D)"),
    "min_cut": Entry(NoParams, _min_cut, "optimal device/server cut at the current bandwidth"),
    "mdi": Entry(HeuristicParams, _split_then_place(_baseline("DeadlineAwareFamily", family="early_exit")),
                 "MDI early exit adapted to the deadline"),
    "paradis": Entry(HeuristicParams, _split_then_place(_baseline("ParaDiSSwitch")),
                     "ParaDiS width switch sized to the free devices"),
    "gillis": Entry(FastestFinishParams, _split_then_place(_baseline("GillisLike")),
                    "Gillis-like layer partitioning under the deadline (Yu et al., ICDCS 2021)"),
    "mc": Entry(HeuristicParams, _split_then_place(_baseline("CompressedModel")),
                "compressed model on one node (SplitPlace MC)"),
    "ppo": Entry(SB3Params, _sb3, "stable-baselines3 PPO"),
    "maskable_ppo": Entry(MaskablePPOParams, _sb3, "sb3-contrib MaskablePPO with the env's action masks"),
    "sb3": Entry(SB3Params, _sb3, "any SB3 / sb3-contrib algorithm by class name"),
}


def register_agent(name: str, params: type[BaseModel], factory: Callable[[Any, Any], Any], description: str) -> None:
    """Make agent ``name`` available to configs and :func:`build_agent` (your own agents: ``docs/agents.md``).

    ``params`` is the pydantic model of its ``params`` (derive from ``agents.config.StrictModel`` so that a
    mistyped key is an error), ``factory(validated params, env)`` returns the agent.  ValueError if the name
    is taken or an argument is of the wrong kind.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_agent: name must be a non-empty string, got {name!r}")
    if name in REGISTRY:
        raise ValueError(f"register_agent: agent {name!r} is already registered; taken: {agent_names()}")
    if not (isinstance(params, type) and issubclass(params, BaseModel)):
        raise ValueError(f"register_agent({name!r}): params must be a pydantic model class, got {params!r}")
    if not callable(factory):
        raise ValueError(f"register_agent({name!r}): factory must be callable (params, env) -> agent, got {factory!r}")
    REGISTRY[name] = Entry(params, factory, description)


def agent_names() -> list[str]:
    return sorted(REGISTRY)


def _entry(name: str) -> Entry:
    if name not in REGISTRY:
        raise ValueError(f"unknown agent {name!r}; allowed: {agent_names()}")
    return REGISTRY[name]


def validate_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` checked against agent ``name``'s model, defaults filled in; ValueError naming bad keys."""
    try:
        model = _entry(name).params.model_validate(params)
    except ValidationError as error:
        problems = "; ".join(
            f"params.{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()
        )
        raise ValueError(f"agent {name!r}: {problems}") from None
    return model.model_dump(mode="json")


def build_agent(name: str, params: dict[str, Any], env):
    """A new agent ``name`` with ``params`` for ``env``."""
    entry = _entry(name)
    return entry.factory(entry.params.model_validate(params), env)
