"""Split learning: a model cut between a device (which holds the data) and a server.

The cut is the one that minimises the delay of one training step under
:mod:`envs.dnn.mincut`'s ``"training"`` objective (Fast AI Model Splitting, Li
et al. 2025): forward and backward on both sides, the cut activations sent up
and their gradients (same size; none for raw input) sent down, at the bandwidth seen when the job
starts.  Each mini-batch iteration then runs

    device forward -> activations up -> server forward + backward -> gradients down -> device backward

with the transfers going through the transport at the bandwidth of the moment
(link queues included).  Device compute is slowed by its background tasks (the
caller passes the device's effective speed).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

from envs.dnn.mincut import CutProblem, CutResult, DelayModel
from envs.dnn.profile_io import load_profile
from envs.training.jobs import BACKWARD_FACTOR, SplitLearningJob
from envs.training.links import Transport


@functools.lru_cache(maxsize=None)
def _cut_problem(model: str) -> CutProblem:
    return CutProblem(load_profile(model))


def split_learning_cut(job: SplitLearningJob, device_speed_factor: float, server_speed_factor: float,
                       bandwidth_mbps: float) -> CutResult:
    """The device/server partition of least split-learning step delay (a minimum s-t cut)."""
    delay = DelayModel(device_speed_factor=device_speed_factor, server_speed_factor=server_speed_factor,
                       bandwidth_mbps=bandwidth_mbps, objective="training", batch_size=job.batch_size,
                       backward_factor=BACKWARD_FACTOR)
    return _cut_problem(job.model).solve(delay)


@dataclass
class SplitLearningResult:
    """How a split-learning job went."""

    cut: CutResult  # the partition used (cut_bytes: activation bytes of one sample)
    start_s: float
    end_s: float = 0.0
    iterations: int = 0
    bytes_sent: float = 0.0  # activations up plus gradients down
    device_busy_intervals_s: list[tuple[float, float]] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def run_split_learning(job: SplitLearningJob, transport: Transport, device: int, server: int,
                       device_speed_factor: float, server_speed_factor: float, bandwidth_mbps: float,
                       start_s: float = 0.0) -> SplitLearningResult:
    """Run ``job`` between ``device`` and ``server`` (transport nodes) from ``start_s``.

    ``device_speed_factor`` is the device's effective speed (background slowdown included);
    ``bandwidth_mbps`` the device-server rate the cut is chosen for.
    """
    cut = split_learning_cut(job, device_speed_factor, server_speed_factor, bandwidth_mbps)
    graph = _cut_problem(job.model).graph
    device_forward_s = sum(graph.nodes[v]["latency_s"] for v in cut.device_vertices) / device_speed_factor
    server_step_s = (sum(graph.nodes[v]["latency_s"] for v in cut.server_vertices) * (1.0 + BACKWARD_FACTOR)
                     / server_speed_factor)
    result = SplitLearningResult(cut=cut, start_s=start_s)
    time_s = start_s
    batches_per_epoch = math.ceil(job.samples / job.batch_size)
    for _ in range(job.epochs):
        for batch in range(batches_per_epoch):
            size = min(job.batch_size, job.samples - batch * job.batch_size)
            forward_end_s = time_s + size * device_forward_s
            result.device_busy_intervals_s.append((time_s, forward_end_s))
            tensor_bytes, gradient_bytes = size * cut.cut_bytes, size * cut.gradient_bytes
            at_server_s = transport.send(device, server, forward_end_s, tensor_bytes)
            back_s = transport.send(server, device, at_server_s + size * server_step_s, gradient_bytes)
            time_s = back_s + size * device_forward_s * BACKWARD_FACTOR
            result.device_busy_intervals_s.append((back_s, time_s))
            result.bytes_sent += tensor_bytes + gradient_bytes
            result.iterations += 1
    result.end_s = time_s
    return result
