"""The cluster simulator on hand-built clusters: timing, queues, load, failures, energy, bookkeeping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from envs.cluster.background import BackgroundLoad
from envs.cluster.energy import PowerModel
from envs.cluster.failures import FailureProcess
from envs.cluster.network import Network, step_means_mbps
from envs.dnn.plan import ORIGIN, Fragment, SplitPlan, Transfer
from envs.sim.engine import PREFETCH_JOBS, ClusterSimulator
from envs.sim.types import (
    AppConfig,
    ArrivalConfig,
    BackgroundConfig,
    FailureConfig,
    LinkConfig,
    NodeConfig,
    SimulatorConfig,
    WorkloadConfig,
)


def run_jobs(simulator: ClusterSimulator, choose, seed: int = 0, max_jobs: int = 10**9):
    """Submit the first ``max_jobs`` jobs with ``choose(job) -> (plan, placement)``, reject the rest;
    returns the outcomes resolved within the horizon, by job id."""
    outcomes = {}
    job = simulator.reset(np.random.default_rng(seed))
    while job is not None:
        if job.job_id < max_jobs:
            simulator.submit(job, *choose(job))
        else:
            simulator.reject(job)
        job = simulator.advance_to_next_arrival()
        outcomes.update((o.job_id, o) for o in simulator.pop_outcomes())
    return outcomes


def first_outcome(simulator: ClusterSimulator, plan: SplitPlan, placement, seed: int = 0):
    """Outcome of the first job of an episode (its only job if arrivals are sparse)."""
    job = simulator.reset(np.random.default_rng(seed))
    simulator.submit(job, plan, placement)
    later = simulator.advance_to_next_arrival()
    while later is not None:
        simulator.reject(later)
        later = simulator.advance_to_next_arrival()
    return job, next(o for o in simulator.pop_outcomes() if o.job_id == job.job_id)


# ---------------------------------------------------------------------------- timing on an idle cluster


def test_idle_chain_takes_compute_plus_transfer_time(kit):
    mbps, latency_s, items = 8.0, 0.01, 3
    nodes = (kit.node(speed_factor=2.0, mbps=mbps, latency_s=latency_s),
             kit.node(speed_factor=4.0, mbps=mbps, latency_s=latency_s))
    config = kit.config(nodes, rate_per_s=1e-3, items=items)
    plan = kit.chain((0.2, 0.4), hop_bytes=10_000, input_bytes=5_000, result_bytes=1_000)
    job, outcome = first_outcome(ClusterSimulator(config, np.random.default_rng(0)), plan, (0, 1))

    def transfer_s(size):
        return 2 * latency_s + items * size * 8 / (mbps * 1e6)

    # input already at node 0 (the origin), chain hop 0 -> 1, result back 1 -> 0
    expected_s = items * 0.2 / 2.0 + transfer_s(10_000) + items * 0.4 / 4.0 + transfer_s(1_000)
    assert outcome.finished and outcome.failure_reason == ""
    assert outcome.response_time_s == pytest.approx(expected_s, rel=1e-9)
    assert outcome.completion_s == pytest.approx(job.arrival_s + expected_s)
    assert outcome.met_deadline == (outcome.response_time_s <= job.deadline_s)
    assert outcome.accuracy == plan.accuracy


def test_same_node_handoff_costs_no_transfer_time(kit):
    nodes = (kit.node(), kit.node(mbps=0.001, latency_s=5.0))  # node 1's link is awful
    config = kit.config(nodes, rate_per_s=1e-3, origin_nodes=(1,))
    plan = kit.chain((0.3, 0.5, 0.2), hop_bytes=10**9)
    _, outcome = first_outcome(ClusterSimulator(config, np.random.default_rng(0)), plan, (1, 1, 1))
    assert outcome.response_time_s == pytest.approx(1.0)


def test_iterations_run_the_plan_back_to_back(kit):
    nodes = (kit.node(latency_s=0.05), kit.node(latency_s=0.05))
    plan = kit.chain((0.2, 0.3))
    times = {}
    for iterations in (1, 3):
        config = kit.config(nodes, rate_per_s=1e-3, iterations=iterations)
        times[iterations] = first_outcome(ClusterSimulator(config, np.random.default_rng(0)), plan, (0, 1))[1]
    assert times[3].response_time_s == pytest.approx(3 * times[1].response_time_s)
    assert times[3].energy_j == pytest.approx(3 * times[1].energy_j)


def test_transfer_waits_out_a_stalled_link(kit):
    stalled = kit.trace(0.0, 0.0, 0.0, 8.0)  # per period of 4 s: nothing for 3 s, then 8 Mbit/s
    network = Network([LinkConfig(stalled, stalled), LinkConfig(kit.trace(8.0), kit.trace(8.0))], step_s=1.0)
    network.reset(np.random.default_rng(0))
    uplink_mbps = [network.bandwidth_mbps(t)[0] for t in range(8)]  # node 0's uplink comes first
    open_s = next(t for t in range(1, 8) if uplink_mbps[t] > 0 and uplink_mbps[t - 1] == 0)
    arrival_s = network.send(0, 1, open_s - 2.5, 1_000_000)  # ready while node 0's uplink is stalled
    assert arrival_s == pytest.approx(open_s + 1.0)  # starts when it opens; 8 Mbit at 8 Mbit/s


def test_links_never_open_together_relay_through_the_switch(kit):
    blinking = kit.trace(0.0, 8.0)  # open every other second
    links = [LinkConfig(blinking, kit.trace(8.0)), LinkConfig(kit.trace(8.0), blinking)]
    for seed in range(50):  # find offsets that keep node 0's uplink and node 1's downlink apart
        network = Network(links, step_s=1.0)
        network.reset(np.random.default_rng(seed))
        up_open = [network.bandwidth_mbps(t)[0] > 0 for t in range(2)]
        down_open = [network.bandwidth_mbps(t)[3] > 0 for t in range(2)]
        if up_open[0] != down_open[0]:
            break
    up_step = up_open.index(True)
    # 1 MB at 8 Mbit/s: one second up from the uplink's open step, one second down from the next
    assert network.send(0, 1, 0.0, 1_000_000) == pytest.approx(up_step + 2.0)


def test_fast_receiver_serves_slow_senders_at_once(kit):
    # two 3G-like uploads (2 Mbit/s uplinks) into one 1 Gbit/s downlink: the fast port is busy only
    # for the time its own rate needs, so both finish in about the time of one, not two
    slow, fast = kit.trace(2.0), kit.trace(1000.0)
    network = Network([LinkConfig(slow, fast), LinkConfig(slow, fast), LinkConfig(fast, fast)], step_s=1.0)
    network.reset(np.random.default_rng(0))
    one_s = 1_000_000 * 8 / 2e6  # 1 MB at 2 Mbit/s
    arrivals_s = [network.send(sender, 2, 0.0, 1_000_000) for sender in (0, 1)]
    assert arrivals_s[0] == pytest.approx(one_s)
    assert max(arrivals_s) < 1.01 * one_s
    # the downlink was reserved only for 2 x 8 ms; the slow uplinks for their whole transfer (FIFO)
    assert network.downlink_busy_until_s[2] == pytest.approx(0.008 + 0.008)
    assert network.send(0, 2, 0.0, 1_000_000) == pytest.approx(2 * one_s)


def test_slow_receiver_is_busy_for_the_whole_transfer(kit):
    slow, fast = kit.trace(2.0), kit.trace(1000.0)
    network = Network([LinkConfig(fast, fast), LinkConfig(fast, fast), LinkConfig(fast, slow)], step_s=1.0)
    network.reset(np.random.default_rng(0))
    arrivals_s = [network.send(sender, 2, 0.0, 1_000_000) for sender in (0, 1)]
    assert arrivals_s == pytest.approx([4.0, 8.0])  # one after the other through the 2 Mbit/s downlink


# ---------------------------------------------------------------------------- queues and load


def test_fifo_second_job_on_a_node_waits_for_the_first(kit):
    nodes = (kit.node(),)
    config = kit.config(nodes, rate_per_s=10.0, horizon_s=100.0)  # jobs ~0.1 s apart, each takes 5 s
    plan = kit.chain((5.0,))
    outcomes = run_jobs(ClusterSimulator(config, np.random.default_rng(0)), lambda job: (plan, (0,)), max_jobs=5)
    completions = [outcomes[i].completion_s for i in range(5)]
    assert all(later - earlier == pytest.approx(5.0) for earlier, later in zip(completions, completions[1:]))
    assert all(outcomes[i].response_time_s > 5.0 for i in range(1, 5))


def test_link_queue_serialises_transfers(kit):
    nodes = (kit.node(mbps=8.0), kit.node(mbps=8.0), kit.node(mbps=8.0))
    config = kit.config(nodes, rate_per_s=1e-3)
    # two parallel fragments on nodes 1 and 2 fed from node 0: node 0's uplink sends one input after the other
    plan = SplitPlan("test", "semantic", "two", (Fragment("a", 1, 0.0, 1, 0), Fragment("b", 1, 0.0, 1, 0)),
                     (Transfer(ORIGIN, 0, 1_000_000), Transfer(ORIGIN, 1, 1_000_000),
                      Transfer(0, ORIGIN, 0), Transfer(1, ORIGIN, 0)), 0.9)
    _, outcome = first_outcome(ClusterSimulator(config, np.random.default_rng(0)), plan, (1, 2))
    assert outcome.response_time_s == pytest.approx(2.0)  # 1 s per input, back to back


def test_background_load_slows_fragments_by_one_over_one_minus_u(kit):
    nodes = (kit.node(),)
    plan = kit.chain((0.6,))
    times = {}
    for utilisation in (0.0, 0.25, 0.75):
        config = kit.config(nodes, rate_per_s=1e-3, background=BackgroundConfig("constant", utilisation))
        times[utilisation] = first_outcome(ClusterSimulator(config, np.random.default_rng(0)), plan, (0,))[1]
    for utilisation in (0.25, 0.75):
        assert times[utilisation].response_time_s == pytest.approx(0.6 / (1 - utilisation))


@pytest.mark.parametrize("process", ["constant", "ar1", "periodic"])
def test_background_processes_stay_in_range_and_are_reproducible(kit, process):
    config = BackgroundConfig(process, mean_utilisation=0.3, node_spread=0.1, interval_s=10.0, ar1_noise=0.2,
                              period_s=100.0, burst_s=30.0, burst_utilisation=0.4, max_utilisation=0.8)
    power = PowerModel([kit.device()] * 4)
    realisations = []
    for _ in range(2):
        load = BackgroundLoad(config, power, 4)
        load.reset(np.random.default_rng(3))
        realisations.append(np.array([load.utilisation_vector(t) for t in np.arange(0, 5000, 10.0)]))
    assert np.array_equal(realisations[0], realisations[1])
    values = realisations[0]
    assert values.min() >= 0.0 and values.max() <= 0.8
    if process == "constant":
        assert np.all(values == values[0])
    if process == "periodic":  # a node's load repeats every period (10 intervals)
        assert np.array_equal(values[:-10], values[10:])
        assert np.ptp(values[:, 0]) == pytest.approx(0.4)


def test_ar1_background_keeps_its_mean(kit):
    config = BackgroundConfig("ar1", mean_utilisation=0.4, interval_s=1.0, ar1_coefficient=0.5, ar1_noise=0.05)
    power = PowerModel([kit.device()] * 50)
    load = BackgroundLoad(config, power, 50)
    load.reset(np.random.default_rng(0))
    values = np.array([load.utilisation_vector(t) for t in range(0, 2000)])
    assert values.mean() == pytest.approx(0.4, abs=0.01)
    lag1 = np.corrcoef(values[:-1].ravel(), values[1:].ravel())[0, 1]
    assert lag1 == pytest.approx(0.5, abs=0.05)


# ---------------------------------------------------------------------------- memory and feasibility


def test_fragment_that_does_not_fit_is_rejected_as_infeasible(kit):
    nodes = (kit.node(usable_memory_bytes=5_000), kit.node())
    config = kit.config(nodes, rate_per_s=1e-3)
    simulator = ClusterSimulator(config, np.random.default_rng(0))
    job = simulator.reset(np.random.default_rng(0))
    big = kit.chain((0.1,), memory_bytes=6_000)
    assert not simulator.fits(big.fragments[0], 0) and simulator.fits(big.fragments[0], 1)
    simulator.submit(job, big, (0,))
    (outcome,) = simulator.pop_outcomes()
    assert not outcome.finished and outcome.failure_reason == "infeasible" and outcome.family == "layer"
    assert simulator.counters == {"arrived": 1, "finished": 0, "failed": 1, "in_flight": 0, "infeasible": 1}


def test_memory_is_held_until_the_fragment_finishes(kit):
    nodes = (kit.node(usable_memory_bytes=10_000),)
    config = kit.config(nodes, rate_per_s=1.0)
    simulator = ClusterSimulator(config, np.random.default_rng(0))
    plan = kit.chain((100.0,), memory_bytes=6_000)  # far longer than the gap between arrivals
    job = simulator.reset(np.random.default_rng(0))
    simulator.submit(job, plan, (0,))
    job = simulator.advance_to_next_arrival()
    assert simulator.snapshot().free_memory_bytes[0] == 4_000
    assert not simulator.fits(plan.fragments[0], 0)
    simulator.submit(job, plan, (0,))  # does not fit next to the first one
    assert simulator.pop_outcomes()[0].failure_reason == "infeasible"
    while simulator.time_s < 150.0:
        simulator.reject(simulator.advance_to_next_arrival())
    assert simulator.snapshot().free_memory_bytes[0] == 10_000


def test_two_fragments_on_one_node_need_memory_together(kit):
    nodes = (kit.node(usable_memory_bytes=10_000), kit.node())
    config = kit.config(nodes, rate_per_s=1e-3)
    simulator = ClusterSimulator(config, np.random.default_rng(0))
    plan = kit.chain((0.1, 0.1), memory_bytes=6_000)
    job = simulator.reset(np.random.default_rng(0))
    assert simulator.estimate_completion_s(job, plan, (0, 0)) == math.inf
    assert simulator.estimate_completion_s(job, plan, (0, 1)) < math.inf


def test_malformed_placement_raises(kit):
    simulator = ClusterSimulator(kit.config((kit.node(),)), np.random.default_rng(0))
    job = simulator.reset(np.random.default_rng(0))
    with pytest.raises(ValueError, match="placement"):
        simulator.submit(job, kit.chain((0.1, 0.1)), (0,))
    with pytest.raises(ValueError, match="outside"):
        simulator.submit(job, kit.chain((0.1,)), (3,))
    with pytest.raises(RuntimeError, match="awaiting"):
        simulator.submit(job._replace(job_id=99), kit.chain((0.1,)), (0,))
    simulator.reject(job)
    with pytest.raises(RuntimeError, match="awaiting"):
        simulator.reject(job)


def test_advancing_before_submitting_raises(kit):
    simulator = ClusterSimulator(kit.config((kit.node(),)), np.random.default_rng(0))
    simulator.reset(np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="submit"):
        simulator.advance_to_next_arrival()


# ---------------------------------------------------------------------------- estimates and early exits


def test_estimate_is_the_completion_that_submit_then_reserves(kit):
    nodes = (kit.node(latency_s=0.01), kit.node(speed_factor=3.0), kit.node(mbps=2.0))
    config = kit.config(nodes, rate_per_s=2.0, horizon_s=30.0,
                        background=BackgroundConfig("ar1", 0.3, interval_s=1.0))
    simulator = ClusterSimulator(config, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    plan = kit.chain((0.2, 0.5, 0.1))
    estimates_s, completions_s = {}, {}
    job = simulator.reset(np.random.default_rng(0))
    while job is not None:
        placement = tuple(rng.integers(0, 3, 3).tolist())
        estimates_s[job.job_id] = simulator.estimate_completion_s(job, plan, placement)
        assert simulator.estimate_completion_s(job, plan, placement) == estimates_s[job.job_id]  # reserved nothing
        simulator.submit(job, plan, placement)
        job = simulator.advance_to_next_arrival()
        completions_s.update((o.job_id, o.completion_s) for o in simulator.pop_outcomes())
    assert len(completions_s) > 30
    for job_id, completion_s in completions_s.items():
        assert completion_s == pytest.approx(estimates_s[job_id], rel=1e-12)


def test_early_exit_skips_the_fragments_after_the_exit(kit):
    nodes = (kit.node(), kit.node())
    config = kit.config(nodes, rate_per_s=1e-3, items=1)
    always_first = kit.chain((0.2, 5.0), exit_probability=(1.0, 1.0))
    never_first = kit.chain((0.2, 5.0), exit_probability=(0.0, 1.0))
    simulator = ClusterSimulator(config, np.random.default_rng(0))
    short = first_outcome(simulator, always_first, (0, 1))[1]
    long = first_outcome(simulator, never_first, (0, 1))[1]
    assert short.response_time_s == pytest.approx(0.2)
    assert long.response_time_s > 5.2


def test_early_exit_items_split_binomially(kit):
    nodes = (kit.node(),)
    items = 1000
    config = kit.config(nodes, rate_per_s=1e-3, items=items)
    plan = kit.chain((0.001, 0.001), exit_probability=(0.3, 1.0))
    simulator = ClusterSimulator(config, np.random.default_rng(0))
    job = simulator.reset(np.random.default_rng(0))
    expected_s = simulator.estimate_completion_s(job, plan, (0, 0)) - job.arrival_s
    assert expected_s == pytest.approx(items * 0.001 + 0.7 * items * 0.001)
    responses = [first_outcome(simulator, plan, (0, 0), seed)[1].response_time_s for seed in range(30)]
    assert np.mean(responses) == pytest.approx(expected_s, rel=0.02)
    assert np.std(responses) > 0


# ---------------------------------------------------------------------------- failures


def test_failures_kill_jobs_whose_fragments_overlap_a_down_interval(kit):
    nodes = (kit.node(), kit.node(), kit.node())
    failures = FailureConfig(enabled=True, mtbf_s=50.0, mttr_s=10.0)
    config = kit.config(nodes, rate_per_s=0.5, horizon_s=2000.0, failures=failures)
    simulator = ClusterSimulator(config, np.random.default_rng(0))
    plan = kit.chain((3.0, 3.0))
    rng = np.random.default_rng(2)
    expected_failure_s, outcomes = {}, {}
    job = simulator.reset(np.random.default_rng(0))
    while job is not None:
        placement = tuple(rng.integers(0, 3, 2).tolist())
        if all(simulator.fits(f, n) for f, n in zip(plan.fragments, placement)):
            # the uncut schedule (an estimate foresees no failure), then when its nodes go down during it
            simulator.estimate_completion_s(job, plan, placement)
            expected_failure_s[job.job_id] = min(simulator._failures.first_failure_s(node, start_s, end_s)
                                                 for node, start_s, end_s, _ in simulator._scheduler.runs)
        simulator.submit(job, plan, placement)
        job = simulator.advance_to_next_arrival()
        outcomes.update((o.job_id, o) for o in simulator.pop_outcomes())
        assert simulator.arrived == simulator.finished + simulator.failed + simulator.in_flight
    killed = 0
    for job_id, outcome in outcomes.items():
        failure_s = expected_failure_s.get(job_id)
        if failure_s is None:
            assert outcome.failure_reason == "infeasible"  # placed on a node that was down
        elif failure_s < math.inf:
            assert outcome.failure_reason == "node_failure" and outcome.completion_s == pytest.approx(failure_s)
            killed += 1
        else:
            assert outcome.finished
    assert killed > 10 and sum(o.finished for o in outcomes.values()) > 10


def test_retry_policy_reruns_instead_of_failing(kit):
    nodes = (kit.node(), kit.node())
    plan = kit.chain((3.0, 3.0))
    results = {}
    for policy in ("fail", "retry"):
        failures = FailureConfig(enabled=True, mtbf_s=40.0, mttr_s=10.0, policy=policy)
        config = kit.config(nodes, rate_per_s=0.1, horizon_s=3000.0, failures=failures)
        simulator = ClusterSimulator(config, np.random.default_rng(0))
        results[policy] = run_jobs(simulator, lambda job: (plan, (0, 1)))
    reasons = {policy: {o.failure_reason for o in outcomes.values()} for policy, outcomes in results.items()}
    assert "node_failure" in reasons["fail"] and "node_failure" not in reasons["retry"]
    slowest = max(o.response_time_s for o in results["retry"].values() if o.finished)
    assert slowest > 6.0 + 1.0  # some job waited for a repair


def test_failure_process_is_consistent_and_has_the_right_up_share():
    process = FailureProcess(FailureConfig(enabled=True, mtbf_s=30.0, mttr_s=10.0), 20)
    process.reset(np.random.default_rng(0))
    times = np.arange(0.0, 20_000.0, 7.0)
    up = np.array([process.up_vector(t) for t in times])
    assert up.mean() == pytest.approx(30.0 / 40.0, abs=0.02)
    for node in (0, 7):
        for t in times[:300]:
            assert process.is_up(node, t) == up[int(t / 7.0), node]
            first = process.first_failure_s(node, t, t + 5.0)
            assert (first == t) == (not process.is_up(node, t))
            if first < math.inf:
                assert not process.is_up(node, first) and process.repair_s(node, first) > first


# ---------------------------------------------------------------------------- energy


def test_energy_is_background_draw_plus_the_jobs_extra(kit):
    nodes = (kit.node(idle_w=10.0, busy_w=30.0), kit.node(idle_w=5.0, busy_w=7.0))
    config = kit.config(nodes, rate_per_s=0.01, horizon_s=5000.0,
                        background=BackgroundConfig("constant", 0.5))
    simulator = ClusterSimulator(config, np.random.default_rng(0))
    plan = kit.chain((2.0, 1.0))
    outcomes = run_jobs(simulator, lambda job: (plan, (0, 1)))
    # at u = 0.5 the linear curves draw 20 W and 6 W; a running fragment adds (30-20) W resp. (7-6) W,
    # and runs 1 / (1 - 0.5) = 2x slower
    for outcome in outcomes.values():
        assert outcome.energy_j == pytest.approx(2 * 2.0 * 10.0 + 2 * 1.0 * 1.0)
    resolved_j = sum(o.energy_j for o in outcomes.values() if o.completion_s <= simulator.time_s)
    assert simulator.energy_j == pytest.approx(26.0 * simulator.time_s + resolved_j)
    assert simulator.energy_j >= (10.0 + 5.0) * config.horizon_s


def test_power_model_matches_the_devices(kit):
    devices = [kit.device(idle_w=3.0, busy_w=9.0), kit.device(idle_w=50.0, busy_w=51.0)]
    power = PowerModel(devices)
    utilisation = np.random.default_rng(0).uniform(0, 1, (7, 2))
    expected = [[devices[n].power_w(u) for n, u in enumerate(row)] for row in utilisation]
    np.testing.assert_allclose(power.power_w(utilisation), expected)


# ---------------------------------------------------------------------------- network


def test_step_means_keep_the_data_a_trace_carries(kit):
    trace = kit.trace(1.0, 3.0, 0.0, 8.0, 2.0, sample_s=0.4)  # period 2 s
    assert step_means_mbps(trace, 0.4).tolist() == pytest.approx([1.0, 3.0, 0.0, 8.0, 2.0])
    for step_s in (0.5, 1.0, 0.3, 0.7):
        means = step_means_mbps(trace, step_s)
        assert len(means) == math.ceil(2.0 / step_s - 1e-9)
        fine_s = np.arange(0.0, len(means) * step_s, 1e-4) + 0.5e-4  # midpoints of a fine grid
        carried_mbit = sum(trace.bandwidth_at(t) for t in fine_s) * 1e-4
        assert means.sum() * step_s == pytest.approx(carried_mbit, rel=1e-3)


def test_snapshot_reports_trace_bandwidth_and_fresh_arrays(kit):
    trace = kit.trace(1.0, 2.0, 3.0, 4.0)
    nodes = tuple(NodeConfig(kit.device(), LinkConfig(trace, trace, bandwidth_scale=10.0)) for _ in range(3))
    simulator = ClusterSimulator(kit.config(nodes, rate_per_s=0.3), np.random.default_rng(0))
    job = simulator.reset(np.random.default_rng(0))
    for _ in range(20):
        snapshot = simulator.snapshot()
        assert set(snapshot.uplink_mbps) <= {10.0, 20.0, 30.0, 40.0}
        snapshot.free_memory_bytes[:] = -1
        snapshot.uplink_mbps[:] = -1
        snapshot.background_utilisation[:] = 7
        again = simulator.snapshot()
        assert again.free_memory_bytes.min() >= 0 and again.uplink_mbps.min() > 0 and again.background_utilisation.max() <= 1
        simulator.submit(job, kit.chain((1.0,)), (1,))
        job = simulator.advance_to_next_arrival()


def test_snapshot_reports_link_backlogs_in_seconds(kit):
    nodes = (kit.node(mbps=8.0), kit.node(mbps=8.0))
    simulator = ClusterSimulator(kit.config(nodes, rate_per_s=20.0, horizon_s=50.0), np.random.default_rng(0))
    job = simulator.reset(np.random.default_rng(0))
    plan = kit.chain((0.5,), input_bytes=2_000_000, result_bytes=0)  # 16 Mbit from the origin (node 0): 2 s
    simulator.submit(job, plan, (1,))
    simulator.reject(simulator.advance_to_next_arrival())
    later = simulator.advance_to_next_arrival()  # jobs arrive ~0.05 s apart: the upload is still going
    snapshot = simulator.snapshot()
    upload_end_s = job.arrival_s + 2.0
    assert snapshot.uplink_backlog_s[0] == pytest.approx(upload_end_s - later.arrival_s)
    assert snapshot.downlink_backlog_s[1] == pytest.approx(upload_end_s - later.arrival_s)
    assert snapshot.queued_work_s[1] == pytest.approx(upload_end_s + 0.5 - later.arrival_s)
    # the (empty) result goes back when the fragment ends: links are FIFO, so a new transfer from node 1
    # or to node 0 could not start before then
    result_s = upload_end_s + 0.5 - later.arrival_s
    assert snapshot.uplink_backlog_s[1] == snapshot.downlink_backlog_s[0] == pytest.approx(result_s)
    assert snapshot.queued_work_s[0] == 0.0
    values = simulator.node_values()
    assert [list(row) for row in values[:-1]] == [list(array) for array in snapshot[1:-1]]
    assert list(values[-1] > 0.5) == list(snapshot.up)


def test_snapshot_bandwidth_is_the_trace_step_of_each_arrival(kit):
    # many arrivals per bandwidth step and more arrivals than one prefetch batch
    traces = [kit.trace(*values) for values in ([1.0, 2.0, 3.0], [5.0, 0.0, 7.0, 11.0, 13.0], [17.0, 19.0])]
    nodes = tuple(NodeConfig(kit.device(), LinkConfig(up, down)) for up, down in zip(traces, traces[::-1]))
    simulator = ClusterSimulator(kit.config(nodes, rate_per_s=3.0, horizon_s=200.0), np.random.default_rng(0))
    network = simulator._network
    job, checked = simulator.reset(np.random.default_rng(1)), 0
    while job is not None:
        snapshot = simulator.snapshot()
        expected = network.bandwidth_mbps(job.arrival_s)  # computed on its own, not from the prefetched table
        assert list(snapshot.uplink_mbps) + list(snapshot.downlink_mbps) == list(expected)
        simulator.reject(job)
        job = simulator.advance_to_next_arrival()
        checked += 1
    assert checked > 3 * PREFETCH_JOBS


# ---------------------------------------------------------------------------- bookkeeping


def test_same_seed_same_outcomes_and_snapshots(kit):
    nodes = (kit.node(), kit.node(speed_factor=2.0, mbps=3.0), kit.node(latency_s=0.1))
    config = kit.config(nodes, rate_per_s=1.0, horizon_s=300.0, items=5,
                        background=BackgroundConfig("ar1", 0.3, interval_s=5.0),
                        failures=FailureConfig(enabled=True, mtbf_s=100.0, mttr_s=10.0))
    plans = [kit.chain((0.5,)), kit.chain((0.2, 0.3, 0.1)), kit.chain((0.3, 0.3), exit_probability=(0.5, 1.0))]

    def episode(seed):
        simulator = ClusterSimulator(config, np.random.default_rng(123))
        choices = np.random.default_rng(7)
        trajectory = []
        job = simulator.reset(np.random.default_rng(seed))
        while job is not None:
            plan = plans[int(choices.integers(0, 3))]
            simulator.submit(job, plan, tuple(choices.integers(0, 3, len(plan.fragments)).tolist()))
            job = simulator.advance_to_next_arrival()
            snapshot = simulator.snapshot()
            trajectory.append((job, simulator.pop_outcomes(), simulator.energy_j,
                               [array.tolist() for array in snapshot[1:]]))
        return trajectory

    first = episode(5)
    assert first == episode(5)
    assert first != episode(6)


def test_internal_state_stays_bounded_over_many_jobs(kit):
    nodes = tuple(kit.node(speed_factor=4.0) for _ in range(4))
    config = kit.config(nodes, rate_per_s=1.0, horizon_s=1e6,
                        background=BackgroundConfig("ar1", 0.2, interval_s=1.0))
    simulator = ClusterSimulator(config, np.random.default_rng(0))
    plan = kit.chain((0.5, 0.5))
    rng = np.random.default_rng(0)
    job = simulator.reset(np.random.default_rng(0))

    def sizes():
        background = simulator._background
        return (len(simulator._scheduler.releases), len(simulator._outcomes),
                background.sampled_intervals // background._chunk_intervals, len(simulator._compiled))

    peaks = []
    for block in range(3):
        peak = (0,) * 4
        for _ in range(4000):
            simulator.submit(job, plan, tuple(rng.integers(0, 4, 2).tolist()))
            job = simulator.advance_to_next_arrival()
            simulator.pop_outcomes()
            peak = tuple(map(max, peak, sizes()))
        peaks.append(peak)
    assert simulator.finished > 10_000
    assert all(value <= 2 * first + 2 for value, first in zip(peaks[-1], peaks[0]))
    assert max(peaks[-1]) < 50


def test_horizon_ends_the_episode(kit):
    simulator = ClusterSimulator(kit.config((kit.node(),), rate_per_s=1.0, horizon_s=50.0),
                                 np.random.default_rng(0))
    job = simulator.reset(np.random.default_rng(0))
    while job is not None:
        assert job.arrival_s <= 50.0
        simulator.submit(job, kit.chain((0.01,)), (0,))
        job = simulator.advance_to_next_arrival()
    assert simulator.time_s == 50.0 and simulator.advance_to_next_arrival() is None
    assert 30 < simulator.arrived < 80


# ---------------------------------------------------------------------------- configuration errors


def _nodes(kit):
    return (kit.node(),)


@pytest.mark.parametrize(
    "build, key",
    [
        (lambda kit: BackgroundConfig("sine"), "BackgroundConfig.process"),
        (lambda kit: BackgroundConfig(mean_utilisation=0.95), "BackgroundConfig.mean_utilisation"),
        (lambda kit: BackgroundConfig(max_utilisation=1.0), "BackgroundConfig.max_utilisation"),
        (lambda kit: BackgroundConfig(interval_s=0), "BackgroundConfig.interval_s"),
        (lambda kit: BackgroundConfig(ar1_coefficient=1.0), "BackgroundConfig.ar1_coefficient"),
        (lambda kit: BackgroundConfig(period_s=10.0, burst_s=20.0), "BackgroundConfig.burst_s"),
        (lambda kit: FailureConfig(mtbf_s=-1.0), "FailureConfig.mtbf_s"),
        (lambda kit: FailureConfig(policy="ignore"), "FailureConfig.policy"),
        (lambda kit: FailureConfig(enabled="yes"), "FailureConfig.enabled"),
        (lambda kit: LinkConfig(kit.trace(1.0), kit.trace(1.0), bandwidth_scale=0.0), "LinkConfig.bandwidth_scale"),
        (lambda kit: LinkConfig(kit.trace(1.0), kit.trace(1.0), latency_s=float("nan")), "LinkConfig.latency_s"),
        (lambda kit: LinkConfig(kit.trace(1.0), [1.0]), "LinkConfig.downlink"),
        (lambda kit: NodeConfig("pi", None), "NodeConfig.device"),
        (lambda kit: ArrivalConfig("bursty"), "ArrivalConfig.process"),
        (lambda kit: ArrivalConfig(rate_per_s=0.0), "ArrivalConfig.rate_per_s"),
        (lambda kit: ArrivalConfig("interval_gaussian", mean_per_interval=0.1, std_per_interval=0.1),
         "ArrivalConfig.mean_per_interval"),
        (lambda kit: AppConfig("a", 1.0, 10, 5.0, 4.0), "AppConfig.deadline_max_s"),
        (lambda kit: AppConfig("a", 1.0, 10, 1.0, 2.0, deadline_step_s=5.0), "AppConfig.deadline_step_s"),
        (lambda kit: AppConfig("a", 1.0, 10, 1.0, 2.0, items=0), "AppConfig.items"),
        (lambda kit: AppConfig("a", 1.0, 10, 1.0, 2.0, iterations=1.5), "AppConfig.iterations"),
        (lambda kit: AppConfig("", 1.0, 10, 1.0, 2.0), "AppConfig.name"),
        (lambda kit: WorkloadConfig(()), "WorkloadConfig.apps"),
        (lambda kit: WorkloadConfig((AppConfig("a", 1, 1, 1, 2), AppConfig("a", 1, 1, 1, 2))), "WorkloadConfig.apps"),
        (lambda kit: WorkloadConfig((AppConfig("a", 1, 1, 1, 2),), origin_nodes=(-1,)), "WorkloadConfig.origin_nodes"),
        (lambda kit: SimulatorConfig((), kit.config(_nodes(kit)).workload, 10.0), "SimulatorConfig.nodes"),
        (lambda kit: SimulatorConfig(_nodes(kit), kit.config(_nodes(kit)).workload, 0.0), "SimulatorConfig.horizon_s"),
        (lambda kit: SimulatorConfig(_nodes(kit), WorkloadConfig((AppConfig("a", 1, 1, 1, 2),), origin_nodes=(3,)),
                                     10.0), "SimulatorConfig.workload.origin_nodes"),
        (lambda kit: SimulatorConfig(_nodes(kit), kit.config(_nodes(kit)).workload, 10.0, bandwidth_step_s=0.0),
         "SimulatorConfig.bandwidth_step_s"),
    ],
)
def test_invalid_config_raises_naming_the_key(kit, build, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        build(kit)


def test_dead_trace_and_bad_plans_are_rejected(kit):
    dead = kit.trace(0.0)
    with pytest.raises(ValueError, match=r"NodeConfig\[1\]\.link\.uplink"):
        ClusterSimulator(kit.config((kit.node(), NodeConfig(kit.device(), LinkConfig(dead, kit.trace(1.0))))),
                         np.random.default_rng(0))
    simulator = ClusterSimulator(kit.config((kit.node(),)), np.random.default_rng(0))
    job = simulator.reset(np.random.default_rng(0))
    cyclic = SplitPlan("t", "layer", "cycle", (Fragment("a", 1, 0.1, 1, 0), Fragment("b", 1, 0.1, 1, 0)),
                       (Transfer(0, 1, 1), Transfer(1, 0, 1)), 0.9)
    with pytest.raises(ValueError, match="cycle"):
        simulator.submit(job, cyclic, (0, 0))
    not_a_chain = SplitPlan("t", "early_exit", "fork", (Fragment("a", 1, 0.1, 1, 0), Fragment("b", 1, 0.1, 1, 0),
                                                        Fragment("c", 1, 0.1, 1, 0)),
                            (Transfer(ORIGIN, 0, 1), Transfer(0, 1, 1), Transfer(0, 2, 1)), 0.9, (0.5, 1.0, 1.0))
    with pytest.raises(ValueError, match="chain"):
        simulator.submit(job, not_a_chain, (0, 0, 0))
