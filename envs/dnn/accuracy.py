"""Accuracy profiles: the top-1 accuracy of a model and of each of its split variants.

One JSON file per base profile in ``envs/profiles/accuracy/<model>.json``.  The
simulator reads the accuracy a split plan delivers from here: the unsplit model,
SplitPlace's semantic split, ParaDiS width switches, activation compression,
a compressed stand-in model (the "MC" baseline) and early-exit policies.
Accuracies and fractions are in [0, 1]; every figure carries its source (a
citation or a measurement record) in ``sources``.

File layout (``schema_version`` 1)::

    {"schema_version": 1, "model": str, "full": float,
     "semantic": {"<branches>": float}, "width_switches": {"<devices>": float},
     "compression": {"<ratio>": float},        # absolute accuracy drop, may be < 0
     "compressed_model": null | {"accuracy", "macs_fraction", "param_fraction"},
     "early_exit": null | {"exit_after": [str], "head_macs": [int], "head_latency_s": [float],
                           "head_param_bytes": [int],
                           "policies": [{"threshold", "exit_fraction": [float], "accuracy"}]},
     "sources": {"<section>": str}}
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from envs.dnn.profile_io import SHIPPED_PROFILE_ROOT, profile_roots

ACCURACY_DIR = SHIPPED_PROFILE_ROOT / "accuracy"
"""Where the shipped accuracy profiles live."""

SCHEMA_VERSION = 1
FRACTION_SUM_TOLERANCE = 1e-6
"""How far the exit fractions of one policy may sum away from 1."""

_TOP_LEVEL_KEYS = frozenset(
    {"schema_version", "model", "full", "semantic", "width_switches", "compression",
     "compressed_model", "early_exit", "sources"}
)
_COMPRESSED_KEYS = frozenset({"accuracy", "macs_fraction", "param_fraction"})
_EARLY_EXIT_KEYS = frozenset({"exit_after", "head_macs", "head_latency_s", "head_param_bytes", "policies"})
_POLICY_KEYS = frozenset({"threshold", "exit_fraction", "accuracy"})


class AccuracyProfileError(ValueError):
    """An accuracy profile is malformed; the message names the offending key."""


@dataclass(frozen=True)
class ExitPolicy:
    """One confidence threshold of an early-exit chain."""

    threshold: float
    exit_fraction: tuple[float, ...]
    """Share of all items leaving at each exit, final classifier last; sums to 1."""
    accuracy: float
    """Overall top-1 accuracy at this threshold."""


@dataclass(frozen=True)
class EarlyExitProfile:
    """Exit heads after some vertices of the base layer graph, and the policies they allow."""

    exit_after: tuple[str, ...]
    """Layer-graph vertex names (of the base profile) after which a head sits."""
    head_macs: tuple[int, ...]
    head_latency_s: tuple[float, ...]
    """Median batch-1 latency of each head on the reference CPU."""
    head_param_bytes: tuple[int, ...]
    policies: tuple[ExitPolicy, ...]
    """Sorted by increasing threshold."""


@dataclass(frozen=True)
class CompressedModel:
    """The "MC" baseline: one smaller model on one node."""

    accuracy: float
    macs_fraction: float
    """Its multiply-accumulates over the base model's."""
    param_fraction: float
    """Its parameter count over the base model's."""


@dataclass(frozen=True)
class AccuracyProfile:
    """Top-1 accuracy of a base model and its split variants."""

    model: str
    full: float
    semantic: dict[int, float]
    """Number of semantic branches -> accuracy (SplitPlace apps only)."""
    width_switches: dict[int, float]
    """ParaDiS: number of devices in the switch -> accuracy."""
    compression: dict[float, float]
    """Activation compression ratio -> absolute accuracy drop."""
    compressed_model: CompressedModel | None
    early_exit: EarlyExitProfile | None
    sources: dict[str, str]
    """Section name -> citation or measurement record (seed, data, script)."""


def list_accuracy_profiles() -> list[str]:
    """Names of the accuracy profiles in every folder of :func:`~envs.dnn.profile_io.profile_roots`."""
    return sorted({path.stem for root in profile_roots() for path in (root / "accuracy").glob("*.json")})


def load_accuracy(model: str) -> AccuracyProfile:
    """The accuracy profile of base profile ``model``: ``accuracy/<model>.json`` in the first folder of
    :func:`~envs.dnn.profile_io.profile_roots` that has one (your folders, then the shipped one)."""
    paths = [root / "accuracy" / f"{model}.json" for root in profile_roots()]
    path = next((candidate for candidate in paths if candidate.is_file()), None)
    if path is None:
        raise FileNotFoundError(f"no accuracy profile for model {model!r} (looked for {[str(p) for p in paths]}); "
                                f"available: {list_accuracy_profiles()}")
    profile = read_accuracy(path)
    if profile.model != model:
        raise AccuracyProfileError(f"{path.name}: model is {profile.model!r}, expected {model!r}")
    return profile


def read_accuracy(path: str | Path) -> AccuracyProfile:
    """Parse and validate the accuracy-profile JSON file at ``path``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise AccuracyProfileError(f"{path.name}: not valid JSON ({error})") from None
    return accuracy_from_dict(data, where=path.name)


def write_accuracy(profile: AccuracyProfile, path: str | Path) -> None:
    """Write ``profile`` as JSON to ``path`` (validated by reading it back)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = accuracy_to_dict(profile)
    accuracy_from_dict(json.loads(json.dumps(data)), where=path.name)
    path.write_text(json.dumps(data, indent=2) + "\n")


def accuracy_to_dict(profile: AccuracyProfile) -> dict[str, Any]:
    """The JSON-ready form of ``profile`` (mapping keys become strings)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "model": profile.model,
        "full": profile.full,
        "semantic": {str(key): value for key, value in profile.semantic.items()},
        "width_switches": {str(key): value for key, value in profile.width_switches.items()},
        "compression": {str(key): value for key, value in profile.compression.items()},
        "compressed_model": None if profile.compressed_model is None else asdict(profile.compressed_model),
        "early_exit": None if profile.early_exit is None else asdict(profile.early_exit),
        "sources": dict(profile.sources),
    }


def accuracy_from_dict(data: Any, where: str = "accuracy profile") -> AccuracyProfile:
    """Validate the JSON form ``data`` and build the profile; ``where`` prefixes error messages."""
    _check_keys(data, _TOP_LEVEL_KEYS, where)
    if data["schema_version"] != SCHEMA_VERSION:
        raise AccuracyProfileError(
            f"{where}: schema_version is {data['schema_version']!r}, supported: {SCHEMA_VERSION}"
        )
    model = data["model"]
    if not isinstance(model, str) or not model:
        raise AccuracyProfileError(f"{where}: model must be a non-empty string, got {model!r}")
    return AccuracyProfile(
        model=model,
        full=_unit_interval(data["full"], f"{where}: full"),
        semantic=_accuracy_table(data["semantic"], f"{where}: semantic"),
        width_switches=_accuracy_table(data["width_switches"], f"{where}: width_switches"),
        compression=_compression_table(data["compression"], f"{where}: compression"),
        compressed_model=_compressed_model(data["compressed_model"], f"{where}: compressed_model"),
        early_exit=_early_exit(data["early_exit"], f"{where}: early_exit"),
        sources=_sources(data["sources"], f"{where}: sources"),
    )


def _check_keys(data: Any, expected: frozenset[str], where: str) -> None:
    if not isinstance(data, dict):
        raise AccuracyProfileError(f"{where}: must be a JSON object, got {type(data).__name__}")
    missing = sorted(expected - data.keys())
    if missing:
        raise AccuracyProfileError(f"{where}: missing key {missing[0]!r} (required: {sorted(expected)})")
    unknown = sorted(data.keys() - expected)
    if unknown:
        raise AccuracyProfileError(f"{where}: unknown key {unknown[0]!r} (allowed: {sorted(expected)})")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AccuracyProfileError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def _unit_interval(value: Any, where: str) -> float:
    number = _number(value, where)
    if not 0.0 <= number <= 1.0:
        raise AccuracyProfileError(f"{where} is {number}, must lie in [0, 1]")
    return number


def _positive_fraction(value: Any, where: str) -> float:
    number = _number(value, where)
    if not 0.0 < number <= 1.0:
        raise AccuracyProfileError(f"{where} is {number}, must lie in (0, 1]")
    return number


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AccuracyProfileError(f"{where} must be a non-negative integer, got {value!r}")
    return value


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AccuracyProfileError(f"{where} must be a JSON object, got {type(value).__name__}")
    return value


def _accuracy_table(value: Any, where: str) -> dict[int, float]:
    """A table keyed by a count (branches, devices) as a JSON string."""
    table = {}
    for key, accuracy in _mapping(value, where).items():
        try:
            parsed = int(key)
        except ValueError:
            raise AccuracyProfileError(f"{where}: entry {key!r} must be a positive integer") from None
        if parsed < 1:
            raise AccuracyProfileError(f"{where}: entry {key!r} must be a positive integer")
        table[parsed] = _unit_interval(accuracy, f"{where}[{key!r}]")
    return table


def _compression_table(value: Any, where: str) -> dict[float, float]:
    table = {}
    for key, drop in _mapping(value, where).items():
        try:
            ratio = float(key)
        except ValueError:
            raise AccuracyProfileError(f"{where}: entry {key!r} must be a compression ratio > 1") from None
        if not ratio > 1.0:
            raise AccuracyProfileError(f"{where}: entry {key!r} must be a compression ratio > 1")
        drop = _number(drop, f"{where}[{key!r}]")
        if not -1.0 <= drop <= 1.0:
            raise AccuracyProfileError(f"{where}[{key!r}] is {drop}, an accuracy drop must lie in [-1, 1]")
        table[ratio] = drop
    return table


def _compressed_model(value: Any, where: str) -> CompressedModel | None:
    if value is None:
        return None
    _check_keys(value, _COMPRESSED_KEYS, where)
    return CompressedModel(
        accuracy=_unit_interval(value["accuracy"], f"{where}.accuracy"),
        macs_fraction=_positive_fraction(value["macs_fraction"], f"{where}.macs_fraction"),
        param_fraction=_positive_fraction(value["param_fraction"], f"{where}.param_fraction"),
    )


def _early_exit(value: Any, where: str) -> EarlyExitProfile | None:
    if value is None:
        return None
    _check_keys(value, _EARLY_EXIT_KEYS, where)
    exit_after = value["exit_after"]
    if not isinstance(exit_after, list) or not exit_after or not all(isinstance(n, str) for n in exit_after):
        raise AccuracyProfileError(f"{where}.exit_after must be a non-empty list of vertex names")
    exits = len(exit_after)
    head_macs = _per_exit(value, "head_macs", exits, _count, where)
    head_latency_s = _per_exit(value, "head_latency_s", exits, _non_negative, where)
    head_param_bytes = _per_exit(value, "head_param_bytes", exits, _count, where)
    policies = value["policies"]
    if not isinstance(policies, list) or not policies:
        raise AccuracyProfileError(f"{where}.policies must be a non-empty list")
    parsed = tuple(_policy(policy, exits + 1, f"{where}.policies[{i}]") for i, policy in enumerate(policies))
    thresholds = [policy.threshold for policy in parsed]
    if thresholds != sorted(set(thresholds)):
        raise AccuracyProfileError(f"{where}.policies: thresholds {thresholds} must be strictly increasing")
    return EarlyExitProfile(tuple(exit_after), head_macs, head_latency_s, head_param_bytes, parsed)


def _per_exit(value: dict[str, Any], key: str, exits: int, parse: Callable[[Any, str], Any], where: str) -> tuple:
    """``value[key]`` as a tuple of one parsed entry per exit head."""
    items = value[key]
    if not isinstance(items, list) or len(items) != exits:
        raise AccuracyProfileError(f"{where}.{key} must be a list with one entry per exit ({exits})")
    return tuple(parse(item, f"{where}.{key}[{i}]") for i, item in enumerate(items))


def _non_negative(value: Any, where: str) -> float:
    number = _number(value, where)
    if number < 0.0:
        raise AccuracyProfileError(f"{where} is {number}, must be >= 0")
    return number


def _policy(value: Any, outlets: int, where: str) -> ExitPolicy:
    _check_keys(value, _POLICY_KEYS, where)
    fractions = value["exit_fraction"]
    if not isinstance(fractions, list) or len(fractions) != outlets:
        raise AccuracyProfileError(
            f"{where}.exit_fraction must list one share per exit plus the final classifier ({outlets})"
        )
    shares = tuple(_unit_interval(share, f"{where}.exit_fraction[{i}]") for i, share in enumerate(fractions))
    if abs(sum(shares) - 1.0) > FRACTION_SUM_TOLERANCE:
        raise AccuracyProfileError(f"{where}.exit_fraction sums to {sum(shares)}, must sum to 1")
    return ExitPolicy(
        threshold=_unit_interval(value["threshold"], f"{where}.threshold"),
        exit_fraction=shares,
        accuracy=_unit_interval(value["accuracy"], f"{where}.accuracy"),
    )


def _sources(value: Any, where: str) -> dict[str, str]:
    sources = _mapping(value, where)
    if not sources:
        raise AccuracyProfileError(f"{where} must name the source of every figure, got an empty object")
    for section, text in sources.items():
        if not isinstance(text, str) or not text.strip():
            raise AccuracyProfileError(f"{where}[{section!r}] must be a non-empty string")
    return dict(sources)
