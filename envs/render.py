"""Views of an EdgeSplit environment: ``render_mode="ansi"`` (text: the clock and job counts, the job
waiting for a decision, how the last step's jobs ended, and the busiest nodes as a table) and
``"rgb_array"`` (an image: the busiest nodes' queued work and link backlogs as bars, for video
recorders such as Gymnasium's ``RecordVideo`` or SB3's ``VecVideoRecorder``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from envs.sim.types import ClusterSnapshot, Job, JobOutcome

NODE_ROWS = 12
"""Nodes listed at most: those with the most queued work (ties: lower node number first)."""

IMAGE_NODES = 40
"""Nodes drawn at most in the image (the busiest, as for the text)."""

IMAGE_SIZE_PX = (640, 360)
"""Width and height of the image, pixels."""

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
    lines = [_headline(scenario_name, snapshot, counters) + f"  energy {energy_j:.4g} J"]
    if job is None:
        lines.append("waiting: no job (episode over)")
    else:
        kind = f", training x{job.iterations} mini-batches" if job.training else ""
        lines.append(f"waiting: job {job.job_id}, app {job.app}, {job.items} items{kind}, "
                     f"deadline {job.deadline_s:.1f} s, origin node {job.origin}")
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


def render_image(scenario_name: str, snapshot: ClusterSnapshot, counters: dict[str, int]) -> np.ndarray:
    """The busiest nodes' queued work and uplink / downlink backlogs (seconds) as grouped bars, as an
    ``(height, width, 3)`` uint8 RGB array of :data:`IMAGE_SIZE_PX`; down nodes' labels in red."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # imported on first use: slow to import
    from matplotlib.figure import Figure

    width_px, height_px = IMAGE_SIZE_PX
    figure = Figure(figsize=(width_px / 100, height_px / 100), dpi=100)
    canvas = FigureCanvasAgg(figure)
    axes = figure.subplots()
    nodes = busiest_nodes(snapshot.queued_work_s, IMAGE_NODES)
    positions = np.arange(len(nodes))
    for offset, (label, values) in zip((-0.27, 0.0, 0.27), (("queued work", snapshot.queued_work_s),
                                                            ("uplink backlog", snapshot.uplink_backlog_s),
                                                            ("downlink backlog", snapshot.downlink_backlog_s))):
        axes.bar(positions + offset, values[nodes], width=0.27, label=label)
    axes.set_xticks(positions, [str(node) for node in nodes], fontsize=7, rotation=90 if len(nodes) > 12 else 0)
    for tick, node in zip(axes.get_xticklabels(), nodes):
        if not snapshot.up[node]:
            tick.set_color("red")
    axes.set_xlabel(f"node ({len(nodes)} of {len(snapshot.up)} with the most queued work; red: down)", fontsize=8)
    axes.set_ylabel("seconds", fontsize=8)
    axes.set_title(_headline(scenario_name, snapshot, counters), fontsize=8)
    axes.legend(fontsize=7, loc="upper right")
    figure.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _headline(scenario_name: str, snapshot: ClusterSnapshot, counters: dict[str, int]) -> str:
    return (f"EdgeSplit {scenario_name}  t={snapshot.time_s:.1f} s  arrived {counters['arrived']}  "
            f"finished {counters['finished']}  failed {counters['failed']} (infeasible {counters['infeasible']})  "
            f"in flight {counters['in_flight']}")
