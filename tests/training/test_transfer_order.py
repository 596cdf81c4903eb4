"""Transfers are booked on the links in the order their data is ready, not in the order the simulator
happens to work out the workers: a fast worker's gradient does not queue behind a slow worker's later one."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.cluster.network import Network
from envs.cluster.traces import BandwidthTrace
from envs.sim.types import LinkConfig
from envs.training.data_parallel import DataParallelOptions, Worker, run_data_parallel
from envs.training.jobs import ModelCosts, RetrainingJob

COSTS = ModelCosts(model="toy", forward_s=0.01, param_bytes=1_000_000, sample_bytes=0)  # a model: 1 s at 8 Mbit/s
SERVER = 2


class RecordingTransport:
    """Passes sends on to ``inner`` and records each as (sender, receiver, ready_s, arrival_s)."""

    def __init__(self, inner):
        self.inner, self.sends = inner, []

    def send(self, sender, receiver, ready_s, transfer_bytes):
        arrival_s = self.inner.send(sender, receiver, ready_s, transfer_bytes)
        self.sends.append((sender, receiver, ready_s, arrival_s))
        return arrival_s


def _network(nodes: int) -> RecordingTransport:
    """``nodes`` nodes on constant 8 Mbit/s links (1 MB/s), no latency: FIFO links of the real link model."""
    trace = BandwidthTrace(name="flat", split="train", times_s=np.array([0.0, 1.0]),
                           bandwidth_mbps=np.array([8.0, 8.0]))
    network = Network([LinkConfig(trace, trace)] * nodes, step_s=1.0)
    network.reset(np.random.default_rng(0))
    return RecordingTransport(network)


def _uploads(transport, node, server=SERVER):
    """(ready_s, arrival_s) of each transfer from ``node`` to the PS, in booking order."""
    return [(ready_s, arrival_s) for sender, receiver, ready_s, arrival_s in transport.sends
            if (sender, receiver) == (node, server)]


# Node 0 trains at 10 s a sample, node 1 at 1 s; 5 samples each.  The PS sends the models one after the
# other (1 s each): node 0 starts at 1 s, node 1 at 2 s.  Node 1's gradient is ready at 7 s, node 0's at 51 s.
SLOW_AND_FAST = [Worker(node=0, seconds_per_sample=10.0, weight=1.0),
                 Worker(node=1, seconds_per_sample=1.0, weight=1.0)]


def test_a_fast_workers_gradient_does_not_wait_behind_a_slow_workers_later_one():
    transport = _network(3)
    job = RetrainingJob(model="toy", samples=10, epochs=1)
    result = run_data_parallel(job, COSTS, SLOW_AND_FAST, transport, SERVER,
                               options=DataParallelOptions(rounds_per_epoch=1))
    assert _uploads(transport, 1) == [(pytest.approx(7.0), pytest.approx(8.0))]  # booked first: 53 s
    assert _uploads(transport, 0) == [(pytest.approx(51.0), pytest.approx(52.0))]
    assert result.duration_s == pytest.approx(52.0)


def test_asynchronous_pushes_go_in_the_order_they_are_ready():
    transport = _network(3)
    job = RetrainingJob(model="toy", samples=10, epochs=1)  # one sample per worker and round
    result = run_data_parallel(job, COSTS, SLOW_AND_FAST, transport, SERVER,
                               options=DataParallelOptions(mode="asynchronous", rounds_per_epoch=5))
    # node 1: model at 2 s, then per round 1 s training, 1 s up, 1 s model back: gradients at 4, 7, 10, 13, 16 s
    assert [arrival_s for _, arrival_s in _uploads(transport, 1)] == pytest.approx([4.0, 7.0, 10.0, 13.0, 16.0])
    assert result.ledger.exactly_once()


def test_the_survivors_extra_work_does_not_wait_behind_later_gradients():
    # Node 2 (PS 3) fails after 1 s of training; the PS acts at 4 s and sends its 5 samples to nodes 0 and 1.
    transport = _network(4)
    workers = [*SLOW_AND_FAST, Worker(node=2, seconds_per_sample=1.0, weight=1.0)]
    job = RetrainingJob(model="toy", samples=15, epochs=1)
    result = run_data_parallel(job, COSTS, workers, transport, 3,
                               options=DataParallelOptions(rounds_per_epoch=1, detection_s=1.0),
                               fail_after_training_s={2: 1.0})
    assert result.failed_nodes == [2] and result.ledger.exactly_once()
    # node 1: model at 2 s, own 5 samples to 7 s, gradient 7-8 s; its extra 2 samples 8-10 s, gradient 10-11 s
    assert _uploads(transport, 1, server=3) == [(pytest.approx(7.0), pytest.approx(8.0)),
                                               (pytest.approx(10.0), pytest.approx(11.0))]


@settings(max_examples=60, deadline=None)
@given(seconds_per_sample=st.lists(st.floats(0.05, 5.0), min_size=1, max_size=4), samples=st.integers(1, 60),
       epochs=st.integers(1, 2), fraction=st.floats(0.0, 1.2),
       options=st.sampled_from([DataParallelOptions(), DataParallelOptions(failure_policy="retry"),
                                DataParallelOptions(mode="asynchronous"), DataParallelOptions(rounds_per_epoch=2)]))
def test_each_link_gets_its_transfers_in_the_order_their_data_is_ready(seconds_per_sample, samples, epochs,
                                                                       fraction, options):
    server = len(seconds_per_sample)
    transport = _network(server + 1)
    workers = [Worker(node=i, seconds_per_sample=s, weight=1.0 / s) for i, s in enumerate(seconds_per_sample)]
    job = RetrainingJob(model="toy", samples=samples, epochs=epochs)
    run_data_parallel(job, COSTS, workers, transport, server, options=options,
                      fail_after_training_s={0: fraction * samples * epochs * seconds_per_sample[0]})
    last_ready_s: dict[tuple[str, int], float] = {}
    for sender, receiver, ready_s, _ in transport.sends:
        for link in (("up", sender), ("down", receiver)):
            assert ready_s >= last_ready_s.get(link, 0.0) - 1e-9, f"{link} booked out of order"
            last_ready_s[link] = ready_s
