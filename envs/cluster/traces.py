"""Real link-bandwidth traces: loading, wrap-around lookup and scaling.

The shipped traces (``envs/profiles/traces/{train,test}``, cited in
``envs/profiles/traces/SOURCES.md``) are text files with one sample a line:
``time_s  throughput_Mbit_per_s`` (whitespace-separated, about one sample a second).

Rules applied to every file, so that odd files behave predictably:

* blank lines and lines starting with ``#`` are skipped;
* times must be strictly increasing, otherwise the file is rejected with a
  ``ValueError`` naming the file and the first offending row (a log whose clock
  runs backwards is corrupt; we do not guess an order);
* times are shifted so that the first sample is at 0 s;
* throughputs must be finite and non-negative; **zeros are kept**: they are real
  outages (52 samples in 15 FCC files of ``train``) and mean "nothing gets through
  until the next sample", so a consumer must treat 0 Mbit/s as a stalled link;
* at least two samples are needed; the last sample is held for one more sampling
  interval (``t[-1] - t[-2]``), after which the trace repeats from the start.

Bandwidth is piecewise constant: at time ``t`` it is the last sample at or before
``t`` (modulo the trace duration).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TRACE_DIR = Path(__file__).resolve().parent.parent / "profiles" / "traces"
"""Directory of the shipped traces, one sub-folder per split."""

SPLITS = ("train", "test")
"""Allowed split names."""


def _read_only_float_array(values) -> np.ndarray:
    """``values`` as a float64 array that cannot be written to (no copy if it already is one)."""
    array = np.asarray(values, dtype=np.float64)
    if array.flags.writeable:
        array = array.copy()
        array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class BandwidthTrace:
    """A bandwidth time series in Mbit/s that repeats after ``duration_s``.

    ``times_s`` and ``bandwidth_mbps`` are read-only float64 arrays of equal
    length; times start at 0 and increase strictly.
    """

    name: str
    split: str
    times_s: np.ndarray
    bandwidth_mbps: np.ndarray

    def __post_init__(self) -> None:
        times = _read_only_float_array(self.times_s)
        bandwidth = _read_only_float_array(self.bandwidth_mbps)
        if times.ndim != 1 or times.shape != bandwidth.shape:
            raise ValueError(
                f"trace {self.name!r}: times_s and bandwidth_mbps must be 1-D arrays of equal length, "
                f"got shapes {times.shape} and {bandwidth.shape}"
            )
        if times.size < 2:
            raise ValueError(f"trace {self.name!r}: needs at least 2 samples, got {times.size}")
        if not np.all(np.isfinite(times)) or times[0] != 0.0:
            raise ValueError(f"trace {self.name!r}: times_s must be finite and start at 0, got first {times[0]}")
        steps = np.diff(times)
        if np.any(steps <= 0):
            row = int(np.argmax(steps <= 0)) + 1
            raise ValueError(
                f"trace {self.name!r}: times_s must increase strictly; row {row} has time {times[row]} "
                f"after {times[row - 1]}"
            )
        if not np.all(np.isfinite(bandwidth)) or np.any(bandwidth < 0):
            row = int(np.argmax(~np.isfinite(bandwidth) | (bandwidth < 0)))
            raise ValueError(
                f"trace {self.name!r}: bandwidth_mbps must be finite and >= 0; row {row} is {bandwidth[row]}"
            )
        object.__setattr__(self, "times_s", times)
        object.__setattr__(self, "bandwidth_mbps", bandwidth)

    @property
    def duration_s(self) -> float:
        """Period of the trace: last sample time plus the last sampling interval."""
        return float(2.0 * self.times_s[-1] - self.times_s[-2])

    def bandwidth_at(self, time_s: float) -> float:
        """Bandwidth (Mbit/s) at ``time_s`` >= 0; past the end the trace wraps around."""
        if not np.isfinite(time_s) or time_s < 0:
            raise ValueError(f"trace {self.name!r}: time_s must be finite and >= 0, got {time_s}")
        position_s = float(time_s) % self.duration_s
        index = int(np.searchsorted(self.times_s, position_s, side="right")) - 1
        return float(self.bandwidth_mbps[index])

    def scaled(self, factor: float) -> "BandwidthTrace":
        """The same trace with every bandwidth multiplied by ``factor`` > 0.

        Used to let the 3G-era traces stand in for faster links (4G, 5G, Wi-Fi);
        the copy is named ``"<name> x<factor>"``.
        """
        if not np.isfinite(factor) or factor <= 0:
            raise ValueError(f"trace {self.name!r}: scale factor must be finite and > 0, got {factor}")
        return BandwidthTrace(
            name=f"{self.name} x{factor:g}",
            split=self.split,
            times_s=self.times_s,
            bandwidth_mbps=self.bandwidth_mbps * factor,
        )


def _split_dir(split: str, directory: str | Path) -> Path:
    if split not in SPLITS:
        raise ValueError(f"unknown trace split {split!r}; allowed: {list(SPLITS)}")
    return Path(directory) / split


TRACE_KINDS = ("hsdpa", "fcc")
"""Kinds of trace: Norway HSDPA (3G) commutes, FCC fixed broadband (file names ``trace_*``)."""


def trace_kind(name: str) -> str:
    """``"fcc"`` for an FCC fixed-broadband trace (file name ``trace_*``), else ``"hsdpa"``."""
    return "fcc" if name.startswith("trace_") else "hsdpa"


def list_traces(
    split: str = "train", directory: str | Path = TRACE_DIR, kinds: tuple[str, ...] | list[str] = TRACE_KINDS
) -> list[str]:
    """Names (file names) of the traces of the given ``kinds`` in ``split``, sorted."""
    unknown = [kind for kind in kinds if kind not in TRACE_KINDS]
    if unknown or isinstance(kinds, str):
        raise ValueError(f"unknown trace kinds {kinds!r}; allowed: a list drawn from {list(TRACE_KINDS)}")
    return sorted(
        path.name
        for path in _split_dir(split, directory).iterdir()
        if path.is_file() and trace_kind(path.name) in kinds
    )


@functools.lru_cache(maxsize=None)
def _read_columns(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Times (shifted to start at 0) and bandwidths of one trace file, as read-only arrays."""
    try:
        table = np.loadtxt(path, dtype=np.float64, comments="#", ndmin=2)
    except ValueError as error:
        raise ValueError(f"trace file {path}: not two numeric columns ({error})") from error
    if table.size == 0:
        raise ValueError(f"trace file {path}: no samples")
    if table.shape[1] != 2:
        raise ValueError(f"trace file {path}: expected 2 columns (time_s, Mbit/s), got {table.shape[1]}")
    return _read_only_float_array(table[:, 0] - table[0, 0]), _read_only_float_array(table[:, 1])


def load_trace(name: str, split: str = "train", directory: str | Path = TRACE_DIR) -> BandwidthTrace:
    """The trace file ``name`` of ``split``; files are parsed once and cached."""
    folder = _split_dir(split, directory)
    path = folder / name
    if not path.is_file():
        raise ValueError(f"unknown trace {name!r} in split {split!r}; allowed: {list_traces(split, directory)}")
    times, bandwidth = _read_columns(path.resolve())
    try:
        return BandwidthTrace(name=name, split=split, times_s=times, bandwidth_mbps=bandwidth)
    except ValueError as error:
        raise ValueError(f"trace file {path}: {error}") from error
