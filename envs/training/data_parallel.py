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

Ordering rule: the links are FIFO queues that serve transfers in the order they
are booked, so every transfer is booked when its data is ready.  The job runs as
a discrete-event simulation: a worker's start, its gradient upload (at the end of
its training), the gradient's arrival, a failure and the PS acting on it are
events run in time order (ties in the order scheduled), and each transfer is
booked by the event at its ready time -- a fast worker's gradient never queues
behind a slow worker's later one.  Exceptions, where the data of a transfer was
ready before the event that books it: a failure while a worker is idle
(between its gradient's arrival and its next start) is found only when it next
starts; and in a synchronous round the PS's model broadcast is booked once the
round's events are done, at the aggregation time.

Faults: a worker that fails (checked without gaps over its whole time in the
job) before its gradient reached the PS loses that work and leaves the job.
Failures come from a failure source (at given wall-clock times) or, to fail a
worker part way through its own work, from ``fail_after_training_s``: the worker
goes down once it has trained for that many seconds in the job (transfers
before and between its rounds do not count).
The PS notices ``detection_s`` later and sends the survivors the failed
worker's data share.  ``failure_policy``:

* ``"redistribute"`` (Deep-Edge): the lost samples are shared out among the
  survivors by weight and trained within the same round (a survivor that has
  already started its own share trains them after it and pushes one more
  gradient); later rounds go to the survivors only.
* ``"retry"`` (synchronous only): the whole round is discarded and run again by
  the survivors once they are all idle.

Samples count when their gradient is aggregated (synchronous: at the round's
end; asynchronous: on arrival) -- :class:`~envs.training.samples.SampleLedger`
checks that each sample of each epoch counts exactly once.  If every worker
fails the job ends unfinished and the samples not yet processed are reported.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from envs.training.jobs import ModelCosts, RetrainingJob
from envs.training.links import NO_FAILURES, FailureSource, Transport
from envs.training.samples import Range, SampleLedger, apportion, sample_count, split_ranges

MODES = ("synchronous", "asynchronous")
FAILURE_POLICIES = ("redistribute", "retry")

Batch = tuple[int, list[Range]]
"""Work for one worker: (epoch, ranges of samples)."""


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
    #   and the failed worker's queued work; synchronous rounds after the failure are simply shared
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
        self.events: list[tuple[float, int, Callable[..., None], tuple]] = []  # (time_s, order scheduled, action, args)
        self.sequence = itertools.count()
        self.queues: dict[int, deque[Batch]] = {node: deque() for node in nodes}  # work not yet started
        self.busy: set[int] = set()  # nodes training or pushing a gradient
        self.done: list[tuple[float, list[Batch]]] = []  # synchronous: this attempt's (arrival_s, batches)
        self.retry_at_s: float | None = None  # synchronous, retry: when the PS acted on this attempt's 1st failure
        self.pulled_s = dict(self.ready_s)  # asynchronous: when each worker got the model it trains on
        self.pushes: list[tuple[float, int, float]] = []  # asynchronous: (arrival at the PS, node, pulled_s)

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

    # -- events: every transfer is booked when its data is ready ------------------------------------

    def _at(self, time_s: float, action: Callable[..., None], *args: object) -> None:
        """Run ``action(time_s, *args)`` once every event before ``time_s`` (seconds) has run."""
        heapq.heappush(self.events, (time_s, next(self.sequence), action, args))

    def _run_events(self) -> None:
        """Run the events in time order (ties in the order they were scheduled) until none is left."""
        while self.events:
            time_s, _, action, args = heapq.heappop(self.events)
            action(time_s, *args)

    def _enqueue(self, node: int, epoch: int, pieces: list[Range]) -> None:
        """Add work to ``node``'s queue; it starts once ``node`` is idle and ``ready_s[node]`` has come."""
        self.queues[node].append((epoch, pieces))
        self._wake(node)

    def _wake(self, node: int) -> None:
        """Schedule ``node``'s next start at ``ready_s[node]`` if it is idle with work queued (call again
        whenever ``ready_s[node]`` moves: a start scheduled earlier than it is ignored)."""
        if node not in self.busy and self.queues[node]:
            self._at(self.ready_s[node], self._start, node)

    def _start(self, time_s: float, node: int) -> None:
        """``node`` takes its queued work at ``time_s`` (seconds) and trains it; its upload, or its failure,
        becomes an event."""
        if node not in self.alive or node in self.busy or not self.queues[node] or time_s < self.ready_s[node]:
            return  # a stale event: a later one was scheduled
        batches = self._take(node)
        end_s = time_s + sum(sample_count(pieces) for _, pieces in batches) * self.workers[node].seconds_per_sample
        failure_s = min(self._survives(node, end_s), self._worn_out_s(node, time_s, end_s))
        self.busy.add(node)
        intervals = self.result.busy_intervals_s[node]
        if failure_s < math.inf:
            if failure_s > time_s:
                intervals.append((time_s, failure_s))
            self._at(failure_s, self._fail, node, batches)
            return
        intervals.append((time_s, end_s))
        self._at(end_s, self._upload, node, batches)

    def _take(self, node: int) -> list[Batch]:
        """The work ``node`` trains in one go: its whole queue in a synchronous round (one gradient for
        all of it), one round's share asynchronously."""
        queue = self.queues[node]
        if self.options.mode == "asynchronous":
            return [queue.popleft()]
        batches = list(queue)
        queue.clear()
        return batches

    def _upload(self, time_s: float, node: int, batches: list[Batch]) -> None:
        """``node`` pushes its gradient, ready at ``time_s``, to the PS."""
        arrival_s = self._send(node, self.server, time_s, self.costs.param_bytes)
        failure_s = self._survives(node, arrival_s)
        if failure_s < math.inf:
            self._at(failure_s, self._fail, node, batches)
        else:
            self._at(arrival_s, self._arrive, node, batches)

    def _arrive(self, time_s: float, node: int, batches: list[Batch]) -> None:
        """``node``'s gradient reached the PS at ``time_s``: synchronous, it waits for the round's barrier;
        asynchronous, the PS applies it and sends the model back.  ``node`` then takes its next work."""
        self.busy.discard(node)
        if self.options.mode == "asynchronous":
            for epoch, pieces in batches:
                self.result.ledger.commit(epoch, pieces)
            self.pushes.append((time_s, node, self.pulled_s[node]))
            self.result.end_s = max(self.result.end_s, time_s)
            self.pulled_s[node] = time_s
            model_s = self._send(self.server, node, time_s, self.costs.param_bytes)
        else:
            self.done.append((time_s, batches))
            model_s = time_s
        self.ready_s[node] = max(self.ready_s[node], model_s)
        self._wake(node)

    def _fail(self, time_s: float, node: int, batches: list[Batch]) -> None:
        """``node`` went down at ``time_s``: it leaves the job; its unpushed work and its queue are lost
        and the PS acts on them ``detection_s`` later."""
        self.busy.discard(node)
        self.alive.remove(node)
        self.result.failed_nodes.append(node)
        self.result.end_s = max(self.result.end_s, time_s)
        lost = batches + list(self.queues.pop(node))
        self._at(time_s + self.options.detection_s, self._reassign, node, lost)

    def _reassign(self, time_s: float, node: int, lost: list[Batch]) -> None:
        """The PS acts at ``time_s`` on ``node``'s failure: it sends the survivors its data share, and
        (``redistribute``) shares the ``lost`` work among them or (``retry``) marks the round to be rerun."""
        if not self.alive:
            return
        for survivor, extra in zip(self.alive, apportion(self.data_samples.pop(node), self._weights(self.alive))):
            self.data_samples[survivor] += extra
            if extra:
                arrival_s = self._send(self.server, survivor, time_s, extra * self.costs.sample_bytes)
                self.ready_s[survivor] = max(self.ready_s[survivor], arrival_s)
                self._wake(survivor)
        if self.options.failure_policy == "retry":
            self.retry_at_s = time_s if self.retry_at_s is None else min(self.retry_at_s, time_s)
            return
        for epoch, pieces in lost:
            self.result.reassigned_samples += sample_count(pieces)
            for survivor, extra in self._share(pieces).items():
                if extra:
                    self.ready_s[survivor] = max(self.ready_s[survivor], time_s)
                    self._enqueue(survivor, epoch, extra)

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
            done, failed_s = self._attempt(epoch, round_range)
            if failed_s is None:
                aggregated_s = max([arrival_s for arrival_s, _ in done], default=max(self.ready_s.values()))
                for _, batches in done:
                    for batch_epoch, pieces in batches:
                        self.result.ledger.commit(batch_epoch, pieces)
                self.result.updates += 1
                self.result.end_s = aggregated_s
                for node in self.alive:
                    self.ready_s[node] = max(self.ready_s[node],
                                             self._send(self.server, node, aggregated_s, self.costs.param_bytes))
                return True
            if not self.alive:
                break
            self.result.reassigned_samples += round_range[1] - round_range[0]  # retry: the whole round again
            restart_s = max([failed_s] + [self.ready_s[node] for node in self.alive])
            for node in self.alive:
                self.ready_s[node] = max(self.ready_s[node], restart_s)
        return False

    def _attempt(self, epoch: int, round_range: Range) -> tuple[list[tuple[float, list[Batch]]], float | None]:
        """Share ``round_range`` among the live workers and run until every piece is pushed or lost.  Returns
        the pushed (arrival at the PS in seconds, batches) and, under ``retry``, when the PS acted on the first
        failure (None if no worker failed; the last failure time if every worker failed)."""
        self.done, self.retry_at_s = [], None
        for node, pieces in self._share([round_range]).items():
            self._enqueue(node, epoch, pieces)
        self._run_events()
        if self.retry_at_s is None and not self.alive:
            self.retry_at_s = self.result.end_s
        return self.done, self.retry_at_s

    # -- asynchronous -------------------------------------------------------------------------------

    def run_asynchronous(self) -> RetrainingResult:
        for epoch in range(self.job.epochs):
            for round_range in self.round_ranges:
                for node, pieces in self._share([round_range]).items():
                    if pieces:
                        self._enqueue(node, epoch, pieces)
        self._run_events()
        self.result.updates = len(self.pushes)
        self.result.staleness = _staleness(self.pushes)
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
