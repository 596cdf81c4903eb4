"""Device catalog: cores, memory, power curve and speed of each device type.

The catalog lives in ``envs/profiles/devices.yaml`` (format described at its top);
every figure there carries its source. A device's ``speed_factor`` is either given
directly or calibrated at load time from a published batch-1 latency of a shipped
model profile::

    speed_factor = layer_latency_sum_s(profile) / published_latency_s

so that compute time on the device = reference-CPU time / speed_factor, and the
simulated unsplit model (whose time is the sum of its per-vertex reference
latencies, :func:`envs.dnn.fragments.layer_latency_sum_s`) takes exactly the
published latency on the device.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from numbers import Real
from pathlib import Path

import numpy as np
import yaml

from envs.dnn.fragments import layer_latency_sum_s
from envs.dnn.profile_io import PROFILE_DIR, list_profiles, load_profile

CATALOG_PATH = Path(__file__).resolve().parent.parent / "profiles" / "devices.yaml"
"""The shipped device catalog."""

SCHEMA_VERSION = 1
"""Version of the catalog format this module reads."""

UTILISATION_GRID = np.linspace(0.0, 1.0, 11)
"""Utilisation (fraction) of the 11 points of a power curve: 0, 0.1, ..., 1."""

HEADROOM_THRESHOLD_BYTES = 4000 * 10**6
"""SplitPlace's headroom threshold: 4000 MB (SplitPlace counts RAM in MB of 10^6 bytes)."""

SMALL_MEMORY_USABLE_FRACTION = 0.6
"""Usable share of memory below the threshold (SplitPlace)."""

LARGE_MEMORY_USABLE_FRACTION = 0.8
"""Usable share of memory at or above the threshold (SplitPlace)."""

_DEVICE_KEYS = {"description", "cores", "memory_gib", "power", "speed"}
_NUMBER_KEYS = {"value", "source"}
_POWER_FORMS = ({"curve_w"}, {"idle_w", "busy_w"})
_SPEED_FORMS = ({"published_latency"}, {"speed_factor"})
_PUBLISHED_LATENCY_KEYS = {"model", "latency_s", "source"}


def usable_memory_bytes(memory_bytes: int) -> int:
    """Memory a placement may use: 0.6 x capacity below 4000 MB, else 0.8 x (SplitPlace)."""
    if memory_bytes < 0:
        raise ValueError(f"memory_bytes must be >= 0, got {memory_bytes}")
    if memory_bytes < HEADROOM_THRESHOLD_BYTES:
        return int(SMALL_MEMORY_USABLE_FRACTION * memory_bytes)
    return int(LARGE_MEMORY_USABLE_FRACTION * memory_bytes)


@dataclass(frozen=True)
class DeviceType:
    """One kind of device; ``speed_factor`` > 1 means faster than the reference CPU."""

    name: str
    cores: int
    memory_bytes: int
    usable_memory_bytes: int
    speed_factor: float
    power_curve_w: tuple[float, ...]
    sources: dict[str, str]

    def __post_init__(self) -> None:
        curve = self.power_curve_w
        if len(curve) != len(UTILISATION_GRID):
            raise ValueError(
                f"device {self.name!r}: power curve needs {len(UTILISATION_GRID)} points, got {len(curve)}"
            )
        if any(not math.isfinite(watts) or watts < 0 for watts in curve):
            raise ValueError(f"device {self.name!r}: power curve values must be finite and >= 0, got {curve}")
        if any(later < earlier for earlier, later in zip(curve, curve[1:])):
            raise ValueError(f"device {self.name!r}: power curve must not decrease with utilisation, got {curve}")

    def power_w(self, utilisation: float) -> float:
        """Power draw in watts at ``utilisation`` in [0, 1], linear between the curve points."""
        if not 0.0 <= utilisation <= 1.0:
            raise ValueError(f"device {self.name!r}: utilisation must be in [0, 1], got {utilisation}")
        return float(np.interp(utilisation, UTILISATION_GRID, self.power_curve_w))


def _check_keys(mapping: object, allowed: set[str], device: str, where: str) -> dict:
    """``mapping`` as a dict with exactly the keys ``allowed``; errors name the device and key."""
    if not isinstance(mapping, dict):
        raise ValueError(f"device {device!r}: {where} must be a mapping with keys {sorted(allowed)}, got {mapping!r}")
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise ValueError(f"device {device!r}: unknown key(s) {unknown} in {where}; allowed: {sorted(allowed)}")
    missing = sorted(allowed - set(mapping))
    if missing:
        raise ValueError(f"device {device!r}: missing key(s) {missing} in {where}")
    return mapping


def _pick_form(mapping: object, forms: tuple[set[str], ...], device: str, where: str) -> dict:
    """``mapping`` checked against whichever of ``forms`` shares keys with it."""
    keys = set(mapping) if isinstance(mapping, dict) else set()
    for form in forms:
        if keys & form:
            return _check_keys(mapping, form, device, where)
    raise ValueError(f"device {device!r}: {where} must have the keys of one of {[sorted(form) for form in forms]}")


def _source(entry: dict, device: str, where: str) -> str:
    source = entry["source"]
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"device {device!r}: {where}.source must be a non-empty string, got {source!r}")
    return source


def _positive_number(value: object, device: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"device {device!r}: {where} must be a finite number > 0, got {value!r}")
    return float(value)


def _sourced_number(section: dict, key: str, device: str) -> tuple[float, str]:
    entry = _check_keys(section[key], _NUMBER_KEYS, device, key)
    return _positive_number(entry["value"], device, f"{key}.value"), _source(entry, device, key)


@functools.lru_cache(maxsize=None)
def _reference_latency_s(model: str, profile_directory: str) -> tuple[float, str]:
    """Batch-1 latency of a profile on the reference CPU as the simulators count it (sum of per-vertex
    latencies), and that CPU's description."""
    graph = load_profile(model, profile_directory)
    return layer_latency_sum_s(graph), str(graph.graph.get("machine", "reference CPU"))


def _power_curve(power: object, device: str, sources: dict[str, str]) -> tuple[float, ...]:
    power = _pick_form(power, _POWER_FORMS, device, "power")
    if "curve_w" in power:
        entry = _check_keys(power["curve_w"], _NUMBER_KEYS, device, "power.curve_w")
        values = entry["value"]
        if not isinstance(values, list) or any(isinstance(v, bool) or not isinstance(v, Real) for v in values):
            raise ValueError(f"device {device!r}: power.curve_w.value must be a list of numbers, got {values!r}")
        sources["power_curve"] = _source(entry, device, "power.curve_w")
        return tuple(float(watts) for watts in values)
    idle_w, sources["idle_power"] = _sourced_number(power, "idle_w", device)
    busy_w, sources["busy_power"] = _sourced_number(power, "busy_w", device)
    if busy_w < idle_w:
        raise ValueError(f"device {device!r}: power.busy_w ({busy_w}) is below power.idle_w ({idle_w})")
    sources["power_curve"] = "linear between idle_w (0 % utilisation) and busy_w (100 %)"
    return tuple(float(watts) for watts in np.linspace(idle_w, busy_w, len(UTILISATION_GRID)))


def _speed_factor(speed: object, device: str, sources: dict[str, str], profile_directory: Path) -> float:
    speed = _pick_form(speed, _SPEED_FORMS, device, "speed")
    if "speed_factor" in speed:
        factor, sources["speed_factor"] = _sourced_number(speed, "speed_factor", device)
        return factor
    entry = _check_keys(speed["published_latency"], _PUBLISHED_LATENCY_KEYS, device, "speed.published_latency")
    model = entry["model"]
    available = list_profiles(profile_directory)
    if model not in available:
        raise ValueError(
            f"device {device!r}: speed.published_latency.model {model!r} is not a shipped profile; "
            f"available: {available}"
        )
    latency_s = _positive_number(entry["latency_s"], device, "speed.published_latency.latency_s")
    sources["published_latency"] = _source(entry, device, "speed.published_latency")
    reference_s, machine = _reference_latency_s(model, str(profile_directory))
    sources["speed_factor"] = (
        f"reference / published batch-1 latency of {model}: {reference_s:.6g} s (profile's sum of per-vertex latencies, "
        f"{machine}) / {latency_s:.6g} s"
    )
    return reference_s / latency_s


def _device_type(name: str, spec: object, profile_directory: Path) -> DeviceType:
    spec = _check_keys(spec, _DEVICE_KEYS, name, "device entry")
    sources: dict[str, str] = {}
    cores, sources["cores"] = _sourced_number(spec, "cores", name)
    if not cores.is_integer():
        raise ValueError(f"device {name!r}: cores.value must be a whole number, got {cores}")
    memory_gib, sources["memory"] = _sourced_number(spec, "memory_gib", name)
    memory_bytes = round(memory_gib * 2**30)
    power_curve_w = _power_curve(spec["power"], name, sources)
    speed_factor = _speed_factor(spec["speed"], name, sources, profile_directory)
    return DeviceType(
        name=name,
        cores=int(cores),
        memory_bytes=memory_bytes,
        usable_memory_bytes=usable_memory_bytes(memory_bytes),
        speed_factor=speed_factor,
        power_curve_w=power_curve_w,
        sources=sources,
    )


def load_device_catalog(path: str | None = None, profile_directory: str | Path = PROFILE_DIR) -> dict[str, DeviceType]:
    """Device types by name from the catalog at ``path`` (default: the shipped one).

    ``profile_directory`` holds the model profiles used to calibrate speed factors.
    Unknown or missing keys raise ``ValueError`` naming the device and the key.
    """
    catalog_path = Path(path) if path is not None else CATALOG_PATH
    document = yaml.safe_load(catalog_path.read_text())
    if not isinstance(document, dict) or set(document) != {"schema_version", "devices"}:
        found = sorted(document) if isinstance(document, dict) else type(document).__name__
        raise ValueError(
            f"catalog {catalog_path}: top level needs exactly the keys ['devices', 'schema_version'], got {found}"
        )
    if document["schema_version"] != SCHEMA_VERSION:
        raise ValueError(
            f"catalog {catalog_path}: schema_version={document['schema_version']!r}; this code reads {SCHEMA_VERSION}"
        )
    devices = document["devices"]
    if not isinstance(devices, dict) or not devices:
        raise ValueError(f"catalog {catalog_path}: 'devices' must be a non-empty mapping of name -> device entry")
    return {name: _device_type(name, spec, Path(profile_directory)) for name, spec in devices.items()}
