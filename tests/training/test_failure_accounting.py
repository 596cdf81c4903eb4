"""Failures tied to a worker's own progress: it has done the given share of its work when it goes down."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.update_schedulers import all_equal, all_proportional, deep_edge
from envs.model_update import EdgeModelUpdateEnv
from envs.training.data_parallel import DataParallelOptions, Worker, run_data_parallel
from envs.training.jobs import ModelCosts, RetrainingJob

COSTS = ModelCosts(model="toy", forward_s=0.01, param_bytes=1000, sample_bytes=100)
SERVER = 99


class SlowTransport:
    """Every transfer takes bytes / 10 seconds (the model: 100 s): a worker's wall-clock time is mostly waiting."""

    def send(self, sender, receiver, ready_s, transfer_bytes):
        return ready_s + transfer_bytes / 10.0


def _trained_s(result, node):
    return sum(end_s - start_s for start_s, end_s in result.busy_intervals_s[node])


@settings(max_examples=80, deadline=None)
@given(rates=st.lists(st.floats(0.2, 5.0), min_size=2, max_size=5), samples=st.integers(1, 120),
       epochs=st.integers(1, 3), fraction=st.floats(0.0, 1.5),
       options=st.sampled_from([DataParallelOptions(), DataParallelOptions(failure_policy="retry"),
                                DataParallelOptions(mode="asynchronous")]))
def test_a_worker_fails_once_it_has_trained_its_budget_and_not_before(rates, samples, epochs, fraction, options):
    job = RetrainingJob(model="toy", samples=samples, epochs=epochs)
    workers = [Worker(node=i, seconds_per_sample=1.0 / rate, weight=rate) for i, rate in enumerate(rates)]
    clean = run_data_parallel(job, COSTS, workers, SlowTransport(), SERVER, options=options)
    budget_s = fraction * _trained_s(clean, 0)
    failed = run_data_parallel(job, COSTS, workers, SlowTransport(), SERVER, options=options,
                               fail_after_training_s={0: budget_s})
    assert failed.finished and failed.ledger.exactly_once()
    if 0 in failed.failed_nodes:
        assert _trained_s(failed, 0) == pytest.approx(budget_s, abs=1e-9)
        starts = [start_s for start_s, _ in failed.busy_intervals_s[0]]
        assert starts == [start_s for start_s, _ in clean.busy_intervals_s[0]][:len(starts)]  # same job until then
    else:  # its whole work fits in the budget (or it had none)
        assert _trained_s(failed, 0) == pytest.approx(_trained_s(clean, 0), abs=1e-9)
        assert _trained_s(failed, 0) <= budget_s + 1e-9


@pytest.mark.parametrize("scheduler", [all_equal, all_proportional, deep_edge])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_injected_failure_comes_half_way_through_the_devices_own_training(scheduler, seed):
    # Node 6's links carry ~19 Mbit/s: half its planned compute passes, in wall-clock time from the job's
    # start, before its data has arrived, so a failure timed that way lost no work and only removed a
    # straggler (the job finished sooner than without the failure).
    runs = {}
    for mode in ("none", "injected"):
        env = EdgeModelUpdateEnv(config={"failures": {"mode": mode}})
        env.reset(seed=seed)
        runs[mode] = env.run_job(env.job, scheduler(env))
    [node] = runs["injected"].failed_nodes
    done = _trained_s(runs["injected"], node) / _trained_s(runs["none"], node)
    assert done == pytest.approx(env.settings.failures.injected_fraction, abs=0.02)
    assert runs["injected"].finished and runs["injected"].ledger.exactly_once()
