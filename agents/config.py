"""Experiment configuration: a YAML file validated by pydantic models.

Every model forbids unknown keys, so a mistyped key is an error that names it.
Each agent's ``params`` are validated by that agent's own parameter model from
:mod:`agents.registry`.  An entry of ``agents`` may be the name of a preset in
``configs/agents/`` instead of a mapping.  Command-line overrides have the form
``key.sub=value`` (list items by index, e.g. ``agents.0.params.epsilon=0.5``);
the value is parsed as YAML, so ``3``, ``0.5``, ``true``, ``[1, 2]`` keep their
types.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from envs import mappings


def _distinct_seeds(seeds: list[int]) -> list[int]:
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    return seeds


DistinctSeeds = Annotated[list[int], Field(min_length=1), AfterValidator(_distinct_seeds)]
"""A non-empty list of distinct seeds (a config error names the key that holds it)."""


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class EnvConfig(StrictModel):
    """Which environment to build.

    Attributes:
        id: Gymnasium id, e.g. ``"EdgeSplit-v0"``.
        scenario: named scenario (``envs/scenarios``) or path to a scenario YAML file.
        config: overrides of the scenario's settings (the env's ``config=`` keyword,
            checked by the scenario loader), e.g. ``{horizon_s: 1800}``.
    """

    id: str = "EdgeSplit-v0"
    scenario: str = "splitplace"
    config: dict[str, Any] = Field(default_factory=dict)

    def make_kwargs(self, extra_config: dict[str, Any] | None = None) -> dict[str, Any]:
        """Keywords of ``gymnasium.make``; ``extra_config`` overrides ``config`` key by key."""
        return {"scenario": self.scenario, "config": {**self.config, **(extra_config or {})}}


class AgentConfig(StrictModel):
    """One agent of an experiment.

    Attributes:
        label: unique name of the agent in tables, logs and checkpoint folders.
        name: registry name (see ``agents.registry.agent_names()``).
        params: the agent's own parameters, validated by its registry entry.
        train_steps: environment steps of training (0 = not trained, e.g. heuristics).
    """

    label: str
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    train_steps: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _validate_params(self) -> AgentConfig:
        from agents.registry import validate_params

        self.params = validate_params(self.name, self.params)
        return self


class TrainConfig(StrictModel):
    """Training loop settings (steps are environment steps = job decisions).

    Attributes:
        seed: seed of the first training episode (episode ``k`` uses ``seed + k``).
        eval_every_steps: periodic evaluation interval (0 = never).
        eval_episodes: episodes of each periodic evaluation, seeds ``validation_seed``, ``+1``, ...
        validation_seed: first seed of the periodic evaluations (apart from training and test seeds).
        checkpoint_every_steps: checkpoint interval (0 = only at the end).
        progress_bar: show a tqdm progress bar.
    """

    seed: int = 0
    eval_every_steps: int = Field(default=0, ge=0)
    eval_episodes: int = Field(default=2, ge=1)
    validation_seed: int = 10_000
    checkpoint_every_steps: int = Field(default=0, ge=0)
    progress_bar: bool = True


class EvaluationConfig(StrictModel):
    """Held-out evaluation.

    Attributes:
        seeds: episode seeds, disjoint from the training seeds.
        scenario_overrides: scenario settings for evaluation only, on top of
            ``env.config``; by default the held-out test bandwidth traces.
        online_updates: keep updating online agents during evaluation (SplitPlace's
            fine-tuning); every seed restarts from the trained checkpoint.
        max_steps: cap on steps per episode (None = until the episode ends).
    """

    seeds: DistinctSeeds = Field(default_factory=lambda: list(range(1000, 1005)))
    scenario_overrides: dict[str, Any] = Field(default_factory=lambda: {"trace_split": "test"})
    online_updates: bool = True
    max_steps: int | None = Field(default=None, ge=1)


class WandbConfig(StrictModel):
    """Weights & Biases logging; offline unless ``mode: online`` is asked for.

    Attributes:
        mode: ``offline`` (default, no account or network), ``online`` or ``disabled``.
        project, entity, group, tags: passed to ``wandb.init``.
        dir: parent folder of the ``wandb/`` run folders (default: the run's output dir).
    """

    mode: Literal["offline", "online", "disabled"] = "offline"
    project: str = "edgesplit"
    entity: str | None = None
    group: str | None = None
    tags: list[str] = Field(default_factory=list)
    dir: str | None = None


class ExperimentConfig(StrictModel):
    """A whole experiment: environment, agents, training, evaluation, logging.

    Attributes:
        name: experiment name; outputs go to ``output_dir``.
        output_dir: folder for checkpoints, tables and W&B runs (default ``runs/<name>``).
        torch_threads: intra-op threads of torch; the agents' networks are small, and one
            thread is fastest on a small or busy machine.
        plugins: your own Python modules (dotted names) or ``.py`` files (paths from the working directory),
            imported before the agents are validated: agents they register with
            ``agents.registry.register_agent`` can then be named in ``agents`` (:mod:`agents.plugins`).
    """

    name: str
    output_dir: str | None = None
    plugins: list[str] = Field(default_factory=list)
    torch_threads: int = Field(default=1, ge=1)
    env: EnvConfig = Field(default_factory=EnvConfig)
    agents: list[AgentConfig] = Field(min_length=1)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    wandb: WandbConfig = Field(default_factory=WandbConfig)

    @model_validator(mode="after")
    def _unique_labels(self) -> ExperimentConfig:
        labels = [agent.label for agent in self.agents]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ValueError(f"agent labels must be unique, repeated: {duplicates}")
        return self

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir or f"runs/{self.name}")

    def agent(self, label: str) -> AgentConfig:
        """The agent with this label; ConfigError naming the labels there are."""
        for agent in self.agents:
            if agent.label == label:
                return agent
        raise ConfigError(f"no agent labelled {label!r}; labels: {[a.label for a in self.agents]}")


class ConfigError(ValueError):
    """A config file or override that does not validate; the message names the key."""


def apply_override(tree: dict[str, Any], override: str) -> None:
    """Set ``key.sub=value`` in a nested dict/list tree (in place); value parsed as YAML."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} must look like key.sub=value")
    dotted, raw_value = override.split("=", 1)
    keys = dotted.strip().split(".")
    if not all(keys):
        raise ConfigError(f"override {override!r} has an empty key")
    node: Any = tree
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        where = ".".join(keys[: depth + 1])
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ConfigError(f"override {override!r}: {where} is not an index below {len(node)}")
            key = int(key)
        elif not isinstance(node, dict):
            raise ConfigError(f"override {override!r}: {'.'.join(keys[:depth])} is not a mapping or list")
        if last:
            node[key] = yaml.safe_load(raw_value)
        else:
            if isinstance(node, dict) and key not in node:
                node[key] = {}
            node = node[key]


def _format_errors(error: ValidationError, source: str) -> str:
    lines = [f"invalid config {source}:"]
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


AGENT_PRESET_DIR = Path(__file__).resolve().parents[1] / "configs" / "agents"
"""Agent presets: ``configs/agents/<name>.yaml``, each one agent entry (label, name, params, train_steps)."""


def agent_presets() -> list[str]:
    return sorted(path.stem for path in AGENT_PRESET_DIR.glob("*.yaml"))


def _expand_presets(tree: dict[str, Any]) -> None:
    """Replace every string in ``agents`` by the agent preset of that name (in place)."""
    agents = tree.get("agents")
    if not isinstance(agents, list):
        return
    for index, entry in enumerate(agents):
        if isinstance(entry, str):
            path = AGENT_PRESET_DIR / f"{entry}.yaml"
            if not path.is_file():
                raise ConfigError(f"agents.{index}: unknown agent preset {entry!r}; allowed: {agent_presets()}")
            agents[index] = read_yaml_mapping(path, "agent preset")


def config_from_dict(tree: dict[str, Any], overrides: list[str] = (), source: str = "<dict>") -> ExperimentConfig:
    """Validate a config tree after expanding agent presets and applying ``key.sub=value`` overrides."""
    tree = copy.deepcopy(tree)
    _expand_presets(tree)
    for override in overrides:
        apply_override(tree, override)
    from agents.plugins import load_plugins

    try:
        load_plugins(tree.get("plugins", []))
    except ImportError as error:
        raise ConfigError(f"invalid config {source}:\n  plugins: {error}") from None
    try:
        return ExperimentConfig.model_validate(tree)
    except ValidationError as error:
        raise ConfigError(_format_errors(error, source)) from None


def read_yaml_mapping(path: str | Path, what: str = "config") -> dict[str, Any]:
    """:func:`envs.mappings.read_yaml_mapping` with its error as a ConfigError (what the scripts turn into usage
    errors)."""
    try:
        return mappings.read_yaml_mapping(path, what)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def load_config(path: str | Path, overrides: list[str] = ()) -> ExperimentConfig:
    """Read a YAML experiment config, apply overrides, validate (ConfigError for a missing or malformed file)."""
    return config_from_dict(read_yaml_mapping(path), overrides, source=str(path))


def dump_config(config: ExperimentConfig, path: str | Path) -> None:
    """Write the full (defaults filled in) config as YAML."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config.model_dump(mode="json"), handle, sort_keys=False)
