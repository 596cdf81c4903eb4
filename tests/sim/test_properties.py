"""Properties of the simulator over random clusters, plans and placements (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envs.cluster.traces import BandwidthTrace
from envs.dnn.plan import ORIGIN, Fragment, SplitPlan, Transfer
from envs.sim.engine import ClusterSimulator
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

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def traces(draw) -> BandwidthTrace:
    samples = draw(st.lists(st.sampled_from([0.0, 0.5, 2.0, 10.0, 80.0]), min_size=2, max_size=6))
    if not any(samples):
        samples[0] = 1.0
    sample_s = draw(st.sampled_from([0.3, 1.0, 2.5]))
    return BandwidthTrace("random", "train", np.arange(len(samples)) * sample_s, np.array(samples))


@st.composite
def nodes(draw, kit) -> NodeConfig:
    idle_w = draw(st.floats(1.0, 100.0))
    device = kit.device(speed_factor=draw(st.sampled_from([0.3, 1.0, 4.0, 50.0])),
                        usable_memory_bytes=draw(st.integers(5_000, 200_000)), idle_w=idle_w,
                        busy_w=idle_w + draw(st.floats(0.0, 100.0)))
    link = LinkConfig(draw(traces()), draw(traces()), bandwidth_scale=draw(st.sampled_from([0.5, 1.0, 20.0])),
                      latency_s=draw(st.sampled_from([0.0, 0.002, 0.05])))
    return NodeConfig(device, link)


@st.composite
def plans(draw) -> SplitPlan:
    """A random fragment DAG (edges from lower to higher index); optionally an early-exit chain."""
    count = draw(st.integers(1, 5))
    fragments = tuple(Fragment(f"f{i}", 1, draw(st.sampled_from([0.0, 0.01, 0.1, 0.5])), draw(st.integers(0, 3000)),
                               draw(st.integers(0, 2000))) for i in range(count))
    sizes = st.sampled_from([0, 100, 10_000, 300_000])
    if draw(st.booleans()):  # early-exit chain: every fragment may send its exiting items home
        exits = tuple(draw(st.sampled_from([0.0, 0.3, 1.0])) for _ in range(count - 1)) + (1.0,)
        transfers = [Transfer(ORIGIN, 0, draw(sizes))]
        transfers += [Transfer(i, i + 1, draw(sizes)) for i in range(count - 1)]
        transfers += [Transfer(i, ORIGIN, draw(sizes)) for i in range(count)]
        return SplitPlan("random", "early_exit", "chain", fragments, tuple(transfers), 0.8, exits)
    edges = {(i, j) for i in range(count) for j in range(i + 1, count) if draw(st.booleans())}
    transfers = [Transfer(i, j, draw(sizes)) for i, j in sorted(edges)]
    transfers += [Transfer(ORIGIN, j, draw(sizes)) for j in range(count) if not any(t == j for _, t in edges)]
    transfers += [Transfer(i, ORIGIN, draw(sizes)) for i in range(count) if not any(s == i for s, _ in edges)]
    return SplitPlan("random", "layer", "dag", fragments, tuple(transfers), 0.9)


@st.composite
def scenarios(draw, kit):
    cluster = tuple(draw(st.lists(nodes(kit), min_size=1, max_size=5)))
    origins = tuple(sorted(draw(st.sets(st.integers(0, len(cluster) - 1), min_size=1))))
    app = AppConfig("app", 1.0, 100, 0.5, 20.0, items=draw(st.integers(1, 10)), iterations=draw(st.integers(1, 2)))
    arrivals = draw(st.sampled_from([ArrivalConfig("poisson", rate_per_s=0.2), ArrivalConfig("poisson", rate_per_s=2.0),
                                     ArrivalConfig("interval_gaussian", interval_s=2.0, mean_per_interval=2.0)]))
    background = BackgroundConfig(draw(st.sampled_from(["constant", "ar1", "periodic"])),
                                  mean_utilisation=draw(st.sampled_from([0.0, 0.3, 0.8])), node_spread=0.1,
                                  interval_s=draw(st.sampled_from([0.7, 10.0])), ar1_noise=0.2, period_s=20.0,
                                  burst_s=5.0)
    failures = FailureConfig(enabled=draw(st.booleans()), mtbf_s=draw(st.sampled_from([10.0, 100.0])), mttr_s=3.0,
                             policy=draw(st.sampled_from(["fail", "retry"])))
    config = SimulatorConfig(cluster, WorkloadConfig((app,), arrivals, origins), draw(st.sampled_from([20.0, 80.0])),
                             background, failures, bandwidth_step_s=draw(st.sampled_from([0.5, 1.0])))
    return config, draw(st.lists(plans(), min_size=1, max_size=3)), draw(st.integers(0, 2**32 - 1))


def run_episode(config: SimulatorConfig, plan_choices: list[SplitPlan], seed: int, check=None):
    """Random plans and placements for every job; ``check(simulator, new outcomes, decisions)`` after each
    step.  Returns the simulator, every outcome, and (job, plan, placement) by job id."""
    simulator = ClusterSimulator(config, np.random.default_rng(seed))
    choices = np.random.default_rng(seed + 1)
    decisions, outcomes = {}, []
    job = simulator.reset(np.random.default_rng(seed))
    while job is not None:
        plan = plan_choices[int(choices.integers(0, len(plan_choices)))]
        placement = tuple(choices.integers(0, simulator.node_count, len(plan.fragments)).tolist())
        decisions[job.job_id] = (job, plan, placement)
        simulator.submit(job, plan, placement)
        job = simulator.advance_to_next_arrival()
        new = simulator.pop_outcomes()
        outcomes += new
        if check is not None:
            check(simulator, new, decisions)
    return simulator, outcomes, decisions


@given(data=st.data())
@SETTINGS
def test_conservation_and_sane_quantities_at_every_step(kit, data):
    config, plan_choices, seed = data.draw(scenarios(kit))
    usable = np.array([node.device.usable_memory_bytes for node in config.nodes])
    idle_w = sum(node.device.power_curve_w[0] for node in config.nodes)
    state = {"time_s": 0.0, "energy_j": 0.0, "seen": set()}

    def check(simulator, new, decisions):
        assert simulator.arrived == simulator.finished + simulator.failed + simulator.in_flight
        assert simulator.in_flight >= 0 and simulator.infeasible <= simulator.failed
        assert state["time_s"] <= simulator.time_s <= config.horizon_s
        assert state["energy_j"] <= simulator.energy_j
        assert simulator.energy_j >= idle_w * simulator.time_s * (1 - 1e-9)
        state["time_s"], state["energy_j"] = simulator.time_s, simulator.energy_j
        snapshot = simulator.snapshot()
        for array in snapshot[1:]:
            assert array.shape == (simulator.node_count,)
            assert np.all(np.isfinite(array)) and np.all(array >= 0)
        assert np.all(snapshot.background_utilisation <= 1.0) and np.all(snapshot.free_memory_bytes <= usable)
        for outcome in new:
            assert outcome.job_id not in state["seen"]
            state["seen"].add(outcome.job_id)
            values = (outcome.completion_s, outcome.response_time_s, outcome.energy_j)
            assert all(math.isfinite(v) and v >= 0 for v in values)
            assert outcome.arrival_s <= outcome.completion_s <= simulator.time_s
            assert outcome.met_deadline == (outcome.finished and outcome.response_time_s <= outcome.deadline_s)
            assert outcome.finished == (outcome.failure_reason == "")
            assert (outcome.accuracy > 0) == outcome.finished

    simulator, outcomes, _ = run_episode(config, plan_choices, seed, check)
    assert len(outcomes) == simulator.finished + simulator.failed


@given(data=st.data())
@SETTINGS
def test_no_job_beats_its_compute_and_transfer_time_on_an_idle_cluster(kit, data):
    config, plan_choices, seed = data.draw(scenarios(kit))
    _, outcomes, decisions = run_episode(config, plan_choices, seed)
    bounds_s = {}
    for outcome in outcomes:
        job, plan, placement = decisions[outcome.job_id]
        if not outcome.finished or plan.exit_probability:  # early exits skip fragments: no such bound
            continue
        key = (id(plan), placement, job.origin)
        if key not in bounds_s:
            bounds_s[key] = kit.idle_lower_bound_s(plan, placement, job.origin, config, job.items)
        assert outcome.response_time_s >= job.iterations * bounds_s[key] * (1 - 1e-9) - 1e-12


@given(data=st.data())
@settings(max_examples=15, deadline=None)
def test_same_seed_same_trajectory(kit, data):
    config, plan_choices, seed = data.draw(scenarios(kit))
    first = run_episode(config, plan_choices, seed)
    second = run_episode(config, plan_choices, seed)
    assert first[1] == second[1]
    assert first[0].energy_j == second[0].energy_j and first[0].counters == second[0].counters
