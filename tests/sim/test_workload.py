"""Workload: arrival processes, app mix, deadlines, origins, SplitPlace's settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from envs.sim.types import AppConfig, ArrivalConfig, Job, WorkloadConfig
from envs.workload import (
    SPLITPLACE_APP_WEIGHTS,
    SPLITPLACE_DEADLINE_INTERVALS,
    ArrivalTimes,
    JobStream,
    splitplace_apps,
    splitplace_arrivals,
)


def arrivals(config: ArrivalConfig, horizon_s: float, seed: int = 0) -> np.ndarray:
    process = ArrivalTimes(config, horizon_s, np.random.default_rng(seed))
    times = []
    while (time_s := process.next_s()) < math.inf:
        times.append(time_s)
    return np.array(times)


def jobs(config: WorkloadConfig, horizon_s: float, seed: int = 0) -> list:
    stream = JobStream(config, horizon_s, np.random.default_rng(seed))
    result = []
    while (job := stream.next_job()) is not None:
        result.append(job)
    return result


def test_poisson_arrivals_have_exponential_gaps():
    times = arrivals(ArrivalConfig("poisson", rate_per_s=2.0), horizon_s=5000.0)
    assert np.all(np.diff(times) >= 0) and times[-1] <= 5000.0
    assert len(times) == pytest.approx(10_000, rel=0.05)
    assert stats.kstest(np.diff(times), "expon", args=(0, 0.5)).pvalue > 1e-3


def test_interval_gaussian_counts_follow_splitplace():
    interval_s = 300.0
    config = splitplace_arrivals(10, interval_s)
    times = arrivals(config, horizon_s=interval_s * 20_000)
    counts = np.bincount((times // interval_s).astype(int), minlength=20_000)
    # max(0, int(gauss(1, 0.5))): >= 1 iff the draw is >= 1 (p = 0.5), >= 2 iff it is >= 2 (p = Phi(-2))
    assert np.mean(counts >= 1) == pytest.approx(0.5, abs=0.015)
    assert np.mean(counts >= 2) == pytest.approx(stats.norm.sf(2.0), abs=0.005)
    assert counts.max() <= 4
    assert np.all(np.diff(times) >= 0)


def test_arrivals_depend_only_on_the_seed():
    config = ArrivalConfig("poisson", rate_per_s=1.0)
    assert np.array_equal(arrivals(config, 100.0, seed=4), arrivals(config, 100.0, seed=4))
    assert not np.array_equal(arrivals(config, 100.0, seed=4), arrivals(config, 100.0, seed=5))


def test_app_mix_deadlines_and_origins():
    apps = (AppConfig("small", 3.0, 100, 2.0, 11.0, deadline_step_s=1.0, items=7),
            AppConfig("big", 1.0, 900, 0.5, 4.5, iterations=2))
    config = WorkloadConfig(apps, ArrivalConfig("poisson", rate_per_s=10.0), origin_nodes=(2, 5))
    stream = jobs(config, horizon_s=2000.0)
    names = np.array([job.app for job in stream])
    assert np.mean(names == "small") == pytest.approx(0.75, abs=0.02)
    small = [job for job in stream if job.app == "small"]
    big = [job for job in stream if job.app == "big"]
    assert {job.deadline_s for job in small} == {float(d) for d in range(2, 12)}  # every whole step, uniformly
    assert stats.chisquare(np.bincount([int(job.deadline_s) for job in small])[2:]).pvalue > 1e-3
    assert all(0.5 <= job.deadline_s <= 4.5 for job in big)
    assert len({job.deadline_s for job in big}) > 100  # continuous
    assert {job.origin for job in stream} == {2, 5}
    assert all((job.items, job.input_bytes, job.iterations) == (7, 100, 1) for job in small)
    assert all((job.items, job.input_bytes, job.iterations) == (1, 900, 2) for job in big)
    assert [job.job_id for job in stream] == list(range(len(stream)))


def test_splitplace_apps_use_its_deadline_ranges_and_mix():
    interval_s = 2.0
    apps = splitplace_apps({"mnist": 1, "fashionmnist": 2, "cifar100": 3}, {"mnist": 10, "fashionmnist": 20,
                                                                            "cifar100": 30}, interval_s)
    config = WorkloadConfig(apps, ArrivalConfig("poisson", rate_per_s=5.0))
    stream = jobs(config, horizon_s=4000.0)
    for name, (low, high) in SPLITPLACE_DEADLINE_INTERVALS.items():
        deadlines = {job.deadline_s / interval_s for job in stream if job.app == name}
        assert deadlines == set(map(float, range(low, high + 1)))
        share = np.mean([job.app == name for job in stream])
        assert share == pytest.approx(SPLITPLACE_APP_WEIGHTS[name], abs=0.02)
    with pytest.raises(ValueError, match="cifar100"):
        splitplace_apps({"mnist": 1, "fashionmnist": 2}, {"mnist": 1, "fashionmnist": 1, "cifar100": 1})
    with pytest.raises(ValueError, match="hosts"):
        splitplace_arrivals(20)


def test_no_job_after_the_horizon():
    config = WorkloadConfig((AppConfig("a", 1.0, 1, 1.0, 2.0),), ArrivalConfig("poisson", rate_per_s=50.0))
    stream = jobs(config, horizon_s=10.0)
    assert 400 < len(stream) < 600 and max(job.arrival_s for job in stream) <= 10.0


@pytest.mark.parametrize("arrivals_config", [ArrivalConfig("poisson", rate_per_s=3.0),
                                             ArrivalConfig("interval_gaussian", interval_s=1.0,
                                                           mean_per_interval=2.5, std_per_interval=1.0)])
@pytest.mark.parametrize("chunk", [1, 7, 64, 5000])
def test_jobs_drawn_in_chunks_are_the_jobs_drawn_one_by_one(arrivals_config, chunk):
    # long enough that arrival and app batches run out at different jobs, so the draws interleave
    apps = (AppConfig("small", 3.0, 100, 2.0, 11.0, deadline_step_s=1.0, items=7),
            AppConfig("big", 1.0, 900, 0.5, 4.5, iterations=2))
    config = WorkloadConfig(apps, arrivals_config, origin_nodes=(0, 3))
    one_by_one = jobs(config, horizon_s=1500.0, seed=3)
    stream = JobStream(config, 1500.0, np.random.default_rng(3))
    chunked = []
    while batch := stream.next_jobs(chunk):
        assert len(batch) <= chunk
        chunked += batch
    assert len(one_by_one) > 2500
    assert chunked == one_by_one
    plain = (int, str, float, float, int, int, int, int, bool)  # Job fields are plain Python values, not numpy scalars
    assert all(tuple(map(type, job)) == plain and type(job) is Job for job in chunked)
    assert stream.next_jobs(chunk) == [] and stream.next_job() is None  # and it stays over


def test_arrival_times_taken_in_runs_are_those_taken_one_by_one():
    config = ArrivalConfig("poisson", rate_per_s=4.0)
    process = ArrivalTimes(config, 600.0, np.random.default_rng(8))
    taken = []
    while run := process.take(300):
        assert len(run) <= 300
        taken += run
    assert np.array_equal(taken, arrivals(config, 600.0, seed=8))
