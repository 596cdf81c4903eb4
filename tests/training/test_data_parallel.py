import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.training.data_parallel import DataParallelOptions, Worker, run_data_parallel
from envs.training.jobs import ModelCosts, RetrainingJob
from envs.training.links import FreeTransport, InjectedFailures

COSTS = ModelCosts(model="toy", forward_s=0.01, param_bytes=1000, sample_bytes=100)
SERVER = 99


class SlowTransport:
    """Every transfer takes bytes / 1e6 seconds (no queueing): a network that is not free."""

    def send(self, sender, receiver, ready_s, transfer_bytes):
        return ready_s + transfer_bytes / 1e6


def _workers(rates):
    return [Worker(node=i, seconds_per_sample=1.0 / rate, weight=rate) for i, rate in enumerate(rates)]


OPTIONS = st.sampled_from([DataParallelOptions(), DataParallelOptions(failure_policy="retry"),
                           DataParallelOptions(mode="asynchronous"), DataParallelOptions(rounds_per_epoch=3)])


@settings(max_examples=80, deadline=None)
@given(rates=st.lists(st.floats(0.2, 5.0), min_size=1, max_size=5),
       samples=st.integers(1, 120), epochs=st.integers(1, 3), options=OPTIONS,
       failures=st.dictionaries(st.integers(0, 4), st.floats(0.0, 200.0), max_size=5))
def test_every_sample_of_every_epoch_is_processed_once_failures_included(rates, samples, epochs, options, failures):
    job = RetrainingJob(model="toy", samples=samples, epochs=epochs)
    result = run_data_parallel(job, COSTS, _workers(rates), SlowTransport(), SERVER, 0.0,
                               InjectedFailures(failures), options)
    ledger = result.ledger
    if result.finished:
        assert ledger.exactly_once()
        assert result.unprocessed_samples == 0
    else:
        assert len(result.failed_nodes) == len(rates)
        assert ledger.at_most_once()
        assert ledger.processed_samples + result.unprocessed_samples == job.total_samples
    assert set(result.failed_nodes) <= set(failures)
    for node, intervals in result.busy_intervals_s.items():
        ends = [end for _, end in intervals]
        assert all(b[0] >= a[1] - 1e-9 for a, b in zip(intervals, intervals[1:])), "a device trains one thing at a time"
        if node in failures and node in result.failed_nodes:
            assert max(ends, default=0.0) <= failures[node] + 1e-9


@settings(max_examples=80, deadline=None)
@given(rates=st.lists(st.floats(0.1, 10.0), min_size=1, max_size=6), extra=st.floats(0.1, 10.0),
       samples=st.integers(1, 300), epochs=st.integers(1, 3))
def test_more_devices_never_slow_an_embarrassingly_parallel_job_on_a_free_network(rates, extra, samples, epochs):
    job = RetrainingJob(model="toy", samples=samples, epochs=epochs)
    options = DataParallelOptions(rounds_per_epoch=1)
    fewer = run_data_parallel(job, COSTS, _workers(rates), FreeTransport(), SERVER, options=options)
    more = run_data_parallel(job, COSTS, _workers(rates + [extra]), FreeTransport(), SERVER, options=options)
    assert more.duration_s <= fewer.duration_s + 1e-9


def test_a_failed_device_loses_its_round_and_its_share_moves_to_the_survivors():
    job = RetrainingJob(model="toy", samples=100, epochs=1)
    options = DataParallelOptions(rounds_per_epoch=1, detection_s=0.0)
    clean = run_data_parallel(job, COSTS, _workers([1.0, 1.0]), FreeTransport(), SERVER, options=options)
    failed = run_data_parallel(job, COSTS, _workers([1.0, 1.0]), FreeTransport(), SERVER,
                               failures=InjectedFailures({1: 25.0}), options=options)
    assert clean.duration_s == pytest.approx(50.0)
    assert failed.failed_nodes == [1] and failed.reassigned_samples == 50
    assert failed.duration_s == pytest.approx(100.0)  # node 0 trains its 50, then node 1's 50
    assert failed.ledger.exactly_once()
    retried = run_data_parallel(job, COSTS, _workers([1.0, 1.0]), FreeTransport(), SERVER,
                                failures=InjectedFailures({1: 25.0}),
                                options=DataParallelOptions(rounds_per_epoch=1, detection_s=0.0,
                                                            failure_policy="retry"))
    assert retried.duration_s == pytest.approx(150.0)  # the round again, all 100 samples on node 0
    assert retried.reassigned_samples == 100 and retried.ledger.exactly_once()


def test_asynchronous_mode_counts_staleness():
    job = RetrainingJob(model="toy", samples=60, epochs=2)
    options = DataParallelOptions(mode="asynchronous", rounds_per_epoch=3)
    alone = run_data_parallel(job, COSTS, _workers([1.0]), SlowTransport(), SERVER, options=options)
    shared = run_data_parallel(job, COSTS, _workers([1.0, 3.0]), SlowTransport(), SERVER, options=options)
    assert alone.staleness == [0] * alone.updates
    assert shared.updates == 12 and max(shared.staleness) >= 1
    assert shared.ledger.exactly_once()


def test_gradients_and_data_travel_over_the_links():
    job = RetrainingJob(model="toy", samples=10, epochs=1)
    result = run_data_parallel(job, COSTS, _workers([1.0, 1.0]), SlowTransport(), SERVER,
                               options=DataParallelOptions(rounds_per_epoch=2))
    data_and_model = 10 * COSTS.sample_bytes + 2 * COSTS.param_bytes
    gradients_and_models = 2 * 2 * 2 * COSTS.param_bytes
    assert result.bytes_sent == data_and_model + gradients_and_models
    assert result.duration_s > 5.0  # compute alone: 5 samples per worker at 1 s each


def test_options_reject_unknown_values():
    with pytest.raises(ValueError, match="mode"):
        DataParallelOptions(mode="gossip")
    with pytest.raises(ValueError, match="asynchronous"):
        DataParallelOptions(mode="asynchronous", failure_policy="retry")
    with pytest.raises(ValueError, match="at least one worker"):
        run_data_parallel(RetrainingJob("toy", 1, 1), COSTS, [], FreeTransport(), SERVER)
    assert math.isinf(InjectedFailures({}).first_failure_s(0, 0.0, 1.0))
