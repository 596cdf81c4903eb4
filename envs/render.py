"""Text view of an EdgeSplit environment (``render_mode="ansi"``): the clock and job counts, the job
waiting for a decision, how the last step's jobs ended, and the busiest nodes as a table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from envs.sim.types import ClusterSnapshot, Job, JobOutcome

NODE_ROWS = 12
"""Nodes listed at most: those with the most queued work (ties: lower node number first)."""

MIB = 2**20
"""Bytes in a mebibyte."""

_COLUMNS = ("node", "device", "up", "queued_s", "uplink_backlog_s", "downlink_backlog_s", "uplink_mbps",
            "downlink_mbps", "free_mib", "background")


def busiest_nodes(queued_work_s: np.ndarray, rows: int = NODE_ROWS) -> list[int]:
    """The ``rows`` nodes with the most queued work, most first (a stable order: ties by node number)."""
    return np.argsort(-queued_work_s, kind="stable")[:rows].tolist()


def render_text(scenario_name: str, device_names: Sequence[str], snapshot: ClusterSnapshot, counters: dict[str, int],
                energy_j: float, job: Job | None, outcomes: Sequence[JobOutcome]) -> str:
    """The text view; ``counters`` as :attr:`envs.sim.engine.ClusterSimulator.counters`, ``outcomes`` the jobs
    resolved during the last step."""
    lines = [f"EdgeSplit {scenario_name}  t={snapshot.time_s:.1f} s  arrived {counters['arrived']}  "
             f"finished {counters['finished']}  failed {counters['failed']} (infeasible {counters['infeasible']})  "
             f"in flight {counters['in_flight']}  energy {energy_j:.4g} J"]
    if job is None:
        lines.append("waiting: no job (episode over)")
    else:
        kind = f", training x{job.iterations} mini-batches" if job.training else ""
        lines.append(f"waiting: job {job.job_id}, app {job.app}, {job.items} items{kind}, deadline {job.deadline_s:.1f} s,"
                     f" origin node {job.origin}")
    met = sum(outcome.met_deadline for outcome in outcomes)
    failed = sum(not outcome.finished for outcome in outcomes)
    lines.append(f"last step: {len(outcomes)} resolved, {met} met the deadline, {failed} failed")
    nodes = busiest_nodes(snapshot.queued_work_s)
    table = [_COLUMNS]
    for node in nodes:
        table.append((str(node), device_names[node], "yes" if snapshot.up[node] else "no",
                      f"{snapshot.queued_work_s[node]:.1f}", f"{snapshot.uplink_backlog_s[node]:.1f}",
                      f"{snapshot.downlink_backlog_s[node]:.1f}", f"{snapshot.uplink_mbps[node]:.1f}",
                      f"{snapshot.downlink_mbps[node]:.1f}", f"{snapshot.free_memory_bytes[node] / MIB:.0f}",
                      f"{snapshot.background_utilisation[node]:.2f}"))
    widths = [max(len(row[column]) for row in table) for column in range(len(_COLUMNS))]
    lines.extend("  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in table)
    if len(device_names) > len(nodes):
        lines.append(f"({len(nodes)} of {len(device_names)} nodes: those with the most queued work)")
    return "\n".join(lines)
