"""Weights & Biases logging of training and evaluation runs, offline by default.

A run logs the full experiment config, per-episode metrics and reward parts,
and the evaluation table.  ``wandb.mode`` in the config decides: ``offline``
(the default: no account, no network; ``wandb sync <run dir>`` uploads later),
``online`` (after ``wandb login``) or ``disabled``.  Under a W&B sweep agent
the run joins the sweep as usual.

:func:`read_offline_run` reads an offline run folder back (config, history,
summary) without any network, for tests and quick inspection.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wandb

from agents.config import ExperimentConfig


def start_run(config: ExperimentConfig, job_type: str, name: str | None = None) -> wandb.Run:
    """Open a W&B run that carries the full config; offline unless the config asks otherwise."""
    settings = config.wandb
    run_dir = Path(settings.dir or config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return wandb.init(
        project=settings.project,
        entity=settings.entity,
        group=settings.group or config.name,
        tags=settings.tags,
        dir=str(run_dir),
        mode=settings.mode,
        job_type=job_type,
        name=name,
        config=config.model_dump(mode="json"),
        reinit="create_new",
        settings=wandb.Settings(console="off", x_disable_stats=True),
    )


def log_metrics(run: wandb.Run, metrics: dict[str, float], prefix: str, step: int | None = None) -> None:
    """Log scalars under ``prefix/``, at ``step`` when given."""
    run.log({f"{prefix}/{key}": value for key, value in metrics.items()}, step=step)


def log_table(run: wandb.Run, key: str, rows: list[dict[str, Any]]) -> None:
    """Log a list of same-keyed dicts as a W&B table and as summary scalars per row."""
    if not rows:
        return
    columns = list(rows[0])
    run.log({key: wandb.Table(columns=columns, data=[[row[c] for c in columns] for row in rows])})
    for row in rows:
        label = str(row[columns[0]])
        for column in columns[1:]:
            if isinstance(row[column], (int, float)):
                run.summary[f"{key}/{label}/{column}"] = row[column]


def log_image(run: wandb.Run, key: str, path: Path) -> None:
    """Log the image file at ``path`` (e.g. a PNG figure) under ``key``."""
    run.log({key: wandb.Image(str(path))})


@dataclass
class OfflineRun:
    """What an offline run folder holds: config values, history rows, final summary."""

    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


_BLOCK_BYTES = 32768
_HEADER_BYTES = 7  # file header ":W&B" + magic + version; also each record's crc32 + length + type
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _records(path: Path) -> list[bytes]:
    """Payloads of a ``.wandb`` transaction log (LevelDB-log framing, 32 KiB blocks)."""
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B transaction log")
    payloads, pending, position = [], b"", _HEADER_BYTES
    while position + _HEADER_BYTES <= len(data):
        left_in_block = _BLOCK_BYTES - position % _BLOCK_BYTES
        if left_in_block < _HEADER_BYTES:
            position += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + _HEADER_BYTES])
        if kind == 0:
            break
        chunk = data[position + _HEADER_BYTES : position + _HEADER_BYTES + length]
        position += _HEADER_BYTES + length
        if kind == _FULL:
            payloads.append(chunk)
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            payloads.append(pending + chunk)
    return payloads


def _key(item: Any) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


def _parsed_records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2

    records = []
    for payload in _records(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        records.append(record)
    return records


def read_offline_run(run_folder: str | Path, timeout_s: float = 30.0) -> OfflineRun:
    """Read config, history and summary from an offline run folder (``.../offline-run-*``).

    W&B's service writes the log in the background, also after ``run.finish()``
    has returned, so this waits (up to ``timeout_s``) for the run's exit record.
    """
    folder = Path(run_folder)
    logs = sorted(folder.glob("*.wandb"))
    if not logs:
        raise FileNotFoundError(f"no .wandb log in {folder}")
    deadline = time.monotonic() + timeout_s
    while True:
        records = _parsed_records(logs[0])
        if any(record.WhichOneof("record_type") == "exit" for record in records):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{logs[0]} has no exit record after {timeout_s} s: the run is not finished")
        time.sleep(0.1)
    run = OfflineRun()
    for record in records:
        kind = record.WhichOneof("record_type")
        if kind == "run":
            items = record.run.config.update
        elif kind == "config":
            items = record.config.update
        elif kind == "history":
            run.history.append({_key(item): json.loads(item.value_json) for item in record.history.item})
            continue
        elif kind == "summary":
            run.summary.update({_key(item): json.loads(item.value_json) for item in record.summary.update})
            continue
        else:
            continue
        run.config.update({_key(item): json.loads(item.value_json) for item in items})
    return run


def offline_run_folders(parent: str | Path) -> list[Path]:
    """Offline run folders under ``parent/wandb``, sorted by name (start time to the second, then run id)."""
    return sorted(Path(parent).glob("wandb/offline-run-*"))
