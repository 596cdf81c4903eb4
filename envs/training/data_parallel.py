"""Data-parallel re-training on chosen devices with a parameter server (Deep-Edge's execution model).

The parameter server (PS) holds the training data and the model.  At the start it
sends each worker its share of the data (samples x ``sample_bytes``) and the model
(``param_bytes``).  Each epoch is cut into ``rounds_per_epoch`` rounds of
consecutive samples; in a round every worker trains on its share of the round's
samples (:func:`~envs.training.samples.apportion` by its weight), then pushes its
gradient (``param_bytes``) to the PS.

* **synchronous** (default): the PS aggregates once every worker's gradient of
  the round has arrived, then sends the new model to every worker; a worker starts
  the next round when the model reaches it.
* **asynchronous**: no barrier; a worker pushes, the PS applies the gradient at
  once and sends the current model back, and the worker goes on with its next
  round.  A push's *staleness* is the number of other workers' updates the PS
  applied between the model the worker trained on and its push.

Work on a device takes ``samples x seconds_per_sample`` (background slowdown
included by the caller); transfers go through the transport (real trace
bandwidth and link queues, see :mod:`envs.training.links`).

Faults: a worker that fails (checked without gaps over its whole time in the
job) before its gradient reached the PS loses that work and leaves the job.
Failures come from a failure source (at given wall-clock times) or, to fail a
worker part way through its own work, from ``fail_after_training_s``: the worker
goes down once it has trained for that many seconds in the job (transfers
before and between its rounds do not count).
The PS notices ``detection_s`` later and sends the survivors the failed
worker's data share.  ``failure_policy``:

* ``"redistribute"`` (Deep-Edge): the lost samples are shared out among the
  survivors by weight and trained within the same round; later rounds go to the
  survivors only.
* ``"retry"`` (synchronous only): the whole round is discarded and run again by
  the survivors once they are all idle.

Samples count when their gradient is aggregated (synchronous: at the round's
end; asynchronous: on arrival) -- :class:`~envs.training.samples.SampleLedger`
checks that each sample of each epoch counts exactly once.  If every worker
fails the job ends unfinished and the samples not yet processed are reported.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from envs.training.jobs import ModelCosts, RetrainingJob
from envs.training.links import NO_FAILURES, FailureSource, Transport
from envs.training.samples import Range, SampleLedger, apportion, sample_count, split_ranges

MODES = ("synchronous", "asynchronous")
FAILURE_POLICIES = ("redistribute", "retry")


@dataclass(frozen=True)
class DataParallelOptions:
    """How the data-parallel job runs (see the module docstring)."""

    mode: str = "synchronous"  # one of MODES
    failure_policy: str = "redistribute"  # one of FAILURE_POLICIES
    rounds_per_epoch: int = 5  # gradient pushes per worker and epoch
    detection_s: float = 1.0  # seconds from a worker's failure until the PS acts on it

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"DataParallelOptions.mode must be one of {MODES}, got {self.mode!r}")
        if self.failure_policy not in FAILURE_POLICIES:
            raise ValueError(f"DataParallelOptions.failure_policy must be one of {FAILURE_POLICIES}, "
                             f"got {self.failure_policy!r}")
        if self.mode == "asynchronous" and self.failure_policy != "redistribute":
            raise ValueError("DataParallelOptions.failure_policy must be 'redistribute' in asynchronous mode "
                             "(there is no round to retry)")
        if isinstance(self.rounds_per_epoch, bool) or not isinstance(self.rounds_per_epoch, int) \
                or self.rounds_per_epoch < 1:
            raise ValueError(f"DataParallelOptions.rounds_per_epoch must be an integer >= 1, "
                             f"got {self.rounds_per_epoch!r}")
        if not (math.isfinite(self.detection_s) and self.detection_s >= 0):
            raise ValueError(f"DataParallelOptions.detection_s must be a finite number >= 0, got {self.detection_s!r}")


@dataclass(frozen=True)
class Worker:
    """A device taking part: its node in the transport, its training speed and its share weight (> 0)."""

    node: int
    seconds_per_sample: float
    weight: float


@dataclass
class RetrainingResult:
    """How a data-parallel job went."""

    finished: bool  # every sample of every epoch was processed
    start_s: float
    end_s: float  # when the last gradient was aggregated (or the last worker failed), seconds
    updates: int = 0  # synchronous: aggregated rounds; asynchronous: gradient pushes applied
    failed_nodes: list[int] = field(default_factory=list)
    reassigned_samples: int = 0  # sample-passes of work a failure interrupted, redone by other workers (or re-run),
    #   and (asynchronous) the failed worker's queued work; synchronous rounds after the failure are simply shared
    #   among the survivors and not counted
    unprocessed_samples: int = 0  # sample-passes never processed (the job failed)
    bytes_sent: float = 0.0
    busy_intervals_s: dict[int, list[tuple[float, float]]] = field(default_factory=dict)  # per node: training
    staleness: list[int] = field(default_factory=list)  # asynchronous: per push
    background_misses: int = 0  # filled in by the caller, who knows the devices' background tasks
    ledger: SampleLedger | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class _Run:
    """State of one data-parallel job while it runs."""

    def __init__(self, job: RetrainingJob, costs: ModelCosts, workers: Sequence[Worker], transport: Transport,
                 parameter_server: int, start_s: float, failures: FailureSource, options: DataParallelOptions,
                 fail_after_training_s: Mapping[int, float]):
        if not workers:
            raise ValueError("a data-parallel job needs at least one worker")
        nodes = [worker.node for worker in workers]
        if len(set(nodes)) != len(nodes) or parameter_server in nodes:
            raise ValueError(f"workers must be distinct nodes other than the parameter server "
                             f"{parameter_server}, got {nodes}")
        if any(not (worker.weight > 0 and worker.seconds_per_sample > 0) for worker in workers):
            raise ValueError("every worker needs weight > 0 and seconds_per_sample > 0")
        self.job, self.costs, self.transport, self.failures, self.options = job, costs, transport, failures, options
        self.fail_after_training_s = dict(fail_after_training_s)
        self.server = parameter_server
        self.workers = {worker.node: worker for worker in workers}
        self.alive = list(nodes)
        self.result = RetrainingResult(finished=False, start_s=start_s, end_s=start_s,
                                       busy_intervals_s={node: [] for node in nodes},
                                       ledger=SampleLedger(job.epochs, job.samples))
        self.checked_until_s = dict.fromkeys(nodes, start_s)
        self.data_samples = dict(zip(nodes, apportion(job.samples, self._weights(nodes))))
        self.ready_s = {node: self._send(self.server, node, start_s,
                                         self.data_samples[node] * costs.sample_bytes + costs.param_bytes)
                        for node in nodes}
        round_sizes = apportion(job.samples, [1.0] * options.rounds_per_epoch)
        self.round_ranges = [(start, start + size) for start, size in zip(_offsets(round_sizes), round_sizes) if size]

    # -- helpers ------------------------------------------------------------------------------------

    def _weights(self, nodes: Sequence[int]) -> list[float]:
        return [self.workers[node].weight for node in nodes]

    def _send(self, sender: int, receiver: int, ready_s: float, transfer_bytes: float) -> float:
        self.result.bytes_sent += transfer_bytes
        return self.transport.send(sender, receiver, ready_s, transfer_bytes)

    def _survives(self, node: int, until_s: float) -> float:
        """``math.inf`` if ``node`` stays up until ``until_s`` (checked from where the last check ended),
        else its failure time."""
        failure_s = self.failures.first_failure_s(node, self.checked_until_s[node], until_s)
        self.checked_until_s[node] = max(self.checked_until_s[node], until_s)
        return failure_s

    def _trained_s(self, node: int) -> float:
        """Seconds ``node`` has trained so far in the job."""
        return sum(end_s - start_s for start_s, end_s in self.result.busy_intervals_s[node])

    def _worn_out_s(self, node: int, start_s: float, end_s: float) -> float:
        """When ``node``, training from ``start_s`` to ``end_s``, reaches its ``fail_after_training_s``
        (seconds); ``math.inf`` if it does not."""
        left_s = max(self.fail_after_training_s.get(node, math.inf) - self._trained_s(node), 0.0)
        return start_s + left_s if start_s + left_s <= end_s else math.inf

    def _train(self, node: int, start_s: float, samples: int) -> tuple[float, float]:
        """Train ``samples`` on ``node`` from ``start_s`` and push the gradient.  Returns (arrival at the PS,
        failure time); the failure time is ``math.inf`` if the gradient arrived."""
        end_s = start_s + samples * self.workers[node].seconds_per_sample
        failure_s = min(self._survives(node, end_s), self._worn_out_s(node, start_s, end_s))
        busy = self.result.busy_intervals_s[node]
        if failure_s < math.inf:
            if failure_s > start_s:
                busy.append((start_s, failure_s))
            return math.inf, failure_s
        busy.append((start_s, end_s))
        arrival_s = self._send(node, self.server, end_s, self.costs.param_bytes)
        return arrival_s, self._survives(node, arrival_s)

    def _drop(self, node: int, failure_s: float) -> float:
        """Remove a failed worker; send its data share to the survivors.  Returns when the PS acts."""
        self.alive.remove(node)
        self.result.failed_nodes.append(node)
        self.result.end_s = max(self.result.end_s, failure_s)
        acted_s = failure_s + self.options.detection_s
        if self.alive:
            for survivor, extra in zip(self.alive, apportion(self.data_samples.pop(node), self._weights(self.alive))):
                self.data_samples[survivor] += extra
                if extra:
                    arrival_s = self._send(self.server, survivor, acted_s, extra * self.costs.sample_bytes)
                    self.ready_s[survivor] = max(self.ready_s[survivor], arrival_s)
        return acted_s

    def _share(self, ranges: Sequence[Range]) -> dict[int, list[Range]]:
        """``ranges`` divided among the live workers by weight."""
        pieces = split_ranges(ranges, apportion(sample_count(ranges), self._weights(self.alive)))
        return dict(zip(self.alive, pieces))

    def _give_up(self) -> RetrainingResult:
        self.result.unprocessed_samples = self.job.total_samples - self.result.ledger.processed_samples
        return self.result

    # -- synchronous --------------------------------------------------------------------------------

    def run_synchronous(self) -> RetrainingResult:
        for epoch in range(self.job.epochs):
            for round_range in self.round_ranges:
                if not self._synchronous_round(epoch, round_range):
                    return self._give_up()
        self.result.finished = True
        return self.result

    def _synchronous_round(self, epoch: int, round_range: Range) -> bool:
        """Run one round until its gradients are aggregated; False if every worker failed."""
        while self.alive:
            queues = {node: [pieces] for node, pieces in self._share([round_range]).items()}
            done, failed_s = self._attempt(queues)
            if failed_s is None:
                aggregated_s = max([arrival_s for arrival_s, _ in done], default=max(self.ready_s.values()))
                for _, pieces in done:
                    self.result.ledger.commit(epoch, pieces)
                self.result.updates += 1
                self.result.end_s = aggregated_s
                for node in self.alive:
                    self.ready_s[node] = self._send(self.server, node, aggregated_s, self.costs.param_bytes)
                return True
            if not self.alive:
                break
            self.result.reassigned_samples += round_range[1] - round_range[0]  # retry: the whole round again
            restart_s = max([failed_s] + [self.ready_s[node] for node in self.alive])
            for node in self.alive:
                self.ready_s[node] = max(self.ready_s[node], restart_s)
        return False

    def _attempt(self, queues: dict[int, list[list[Range]]]) -> tuple[list[tuple[float, list[Range]]], float | None]:
        """Work through ``queues`` (per node: pieces of ranges).  Returns the pushed (arrival, ranges) and,
        under ``retry``, the time the PS acted on the first failure (None if no worker failed)."""
        done: list[tuple[float, list[Range]]] = []
        retry_at_s: float | None = None
        heap = [(self.ready_s[node], node) for node in queues]
        heapq.heapify(heap)
        while heap:
            _, node = heapq.heappop(heap)
            if node not in self.alive or not queues.get(node):
                continue
            pieces = [piece for batch in queues.pop(node) for piece in batch]
            arrival_s, failure_s = self._train(node, self.ready_s[node], sample_count(pieces))
            if failure_s == math.inf:
                done.append((arrival_s, pieces))
                self.ready_s[node] = arrival_s
                continue
            acted_s = self._drop(node, failure_s)
            if self.options.failure_policy == "retry":
                retry_at_s = acted_s if retry_at_s is None else min(retry_at_s, acted_s)
            elif self.alive:
                self.result.reassigned_samples += sample_count(pieces)
                for survivor, extra in self._share(pieces).items():
                    if extra:
                        queues.setdefault(survivor, []).append(extra)
                        self.ready_s[survivor] = max(self.ready_s[survivor], acted_s)
                        heapq.heappush(heap, (self.ready_s[survivor], survivor))
        if retry_at_s is None and not self.alive:
            retry_at_s = self.result.end_s
        return done, retry_at_s

    # -- asynchronous -------------------------------------------------------------------------------

    def run_asynchronous(self) -> RetrainingResult:
        queues: dict[int, deque[tuple[int, list[Range]]]] = {node: deque() for node in self.alive}
        for epoch in range(self.job.epochs):
            for round_range in self.round_ranges:
                for node, pieces in self._share([round_range]).items():
                    if pieces:
                        queues[node].append((epoch, pieces))
        pulled_s = dict(self.ready_s)  # when each worker got the model it trains on
        pushes: list[tuple[float, int, float]] = []  # (arrival at the PS, node, pulled_s)
        heap = [(self.ready_s[node], node) for node in self.alive]
        heapq.heapify(heap)
        while heap:
            _, node = heapq.heappop(heap)
            if node not in self.alive or not queues[node]:
                continue
            epoch, pieces = queues[node].popleft()
            arrival_s, failure_s = self._train(node, self.ready_s[node], sample_count(pieces))
            if failure_s < math.inf:
                acted_s = self._drop(node, failure_s)
                if not self.alive:
                    break
                for lost_epoch, lost in [(epoch, pieces), *queues.pop(node)]:
                    self.result.reassigned_samples += sample_count(lost)
                    for survivor, extra in self._share(lost).items():
                        if extra:
                            queues[survivor].append((lost_epoch, extra))
                            self.ready_s[survivor] = max(self.ready_s[survivor], acted_s)
                            heapq.heappush(heap, (self.ready_s[survivor], survivor))
                continue
            self.result.ledger.commit(epoch, pieces)
            pushes.append((arrival_s, node, pulled_s[node]))
            self.result.end_s = max(self.result.end_s, arrival_s)
            pulled_s[node] = arrival_s
            self.ready_s[node] = self._send(self.server, node, arrival_s, self.costs.param_bytes)
            if queues[node]:
                heapq.heappush(heap, (self.ready_s[node], node))
        self.result.updates = len(pushes)
        self.result.staleness = _staleness(pushes)
        if not self.alive:
            return self._give_up()
        self.result.finished = True
        return self.result


def _offsets(sizes: Sequence[int]) -> list[int]:
    """Start of each of consecutive blocks of ``sizes``."""
    starts, total = [], 0
    for size in sizes:
        starts.append(total)
        total += size
    return starts


def _staleness(pushes: Sequence[tuple[float, int, float]]) -> list[int]:
    """Per push, the updates of other workers that arrived after its model was pulled and before it."""
    arrivals = sorted(arrival_s for arrival_s, _, _ in pushes)
    return [sum(1 for other_s in arrivals if pulled_s < other_s < arrival_s) for arrival_s, _, pulled_s in pushes]


def run_data_parallel(job: RetrainingJob, costs: ModelCosts, workers: Sequence[Worker], transport: Transport,
                      parameter_server: int, start_s: float = 0.0, failures: FailureSource = NO_FAILURES,
                      options: DataParallelOptions = DataParallelOptions(),
                      fail_after_training_s: Mapping[int, float] | None = None) -> RetrainingResult:
    """Run ``job`` on ``workers`` (see the module docstring) from ``start_s``; return how it went.

    ``failures`` fail nodes at wall-clock times; ``fail_after_training_s`` (node -> seconds) fails a node
    once it has trained that long in the job."""
    run = _Run(job, costs, workers, transport, parameter_server, start_s, failures, options,
               fail_after_training_s or {})
    return run.run_synchronous() if options.mode == "synchronous" else run.run_asynchronous()
