"""The agent's finish estimate agrees with the simulator where both models are exact: every fragment on the
job's origin (no transfer), after random jobs have left queues on the nodes; the placement greedy by it
takes the earliest estimate with room."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from agents.env_access import EnvView
from agents.finish_estimate import FinishEstimate
from agents.placement import estimated_finish_placement
from envs.registration import register_envs, scenario_env_id


def _busy_env():
    """A splitplace environment (background load on) after random valid actions, stopped at the first job
    whose origin has queued work."""
    register_envs()
    env = gym.make(scenario_env_id("splitplace"), config={"background": {"mean_utilisation": 0.3}})
    env.reset(seed=3)
    rng = np.random.default_rng(3)
    unwrapped = env.unwrapped
    while unwrapped.snapshot.queued_work_s[unwrapped.job.origin] == 0:
        env.step(unwrapped.actions.sample_valid(unwrapped.action_masks(), rng))
    return env


@pytest.mark.parametrize("family", ["none", "layer"])
def test_estimate_on_the_origin_matches_the_simulator(family):
    env = _busy_env()
    view = EnvView(env)
    job = view.job
    plan = next(p for p in view.plans() if p.family == family)
    chosen = np.full(view.slot_count, job.origin)
    estimate = FinishEstimate(view.snapshot(), view.speed_factors(), job.origin, job.total_items)
    for slot in range(len(plan.fragments)):
        finish_s = estimate.slot_finish_s(plan, slot, chosen)
        estimate.choose(slot, float(finish_s[job.origin]))
    completion_s = view.estimate_completion_s(plan, [job.origin] * len(plan.fragments)) - env.unwrapped.simulator.time_s
    assert finish_s[job.origin] == pytest.approx(completion_s, rel=1e-9)


def test_a_remote_node_pays_the_input_transfer():
    env = _busy_env()
    view = EnvView(env)
    job = view.job
    plan = next(p for p in view.plans() if p.family == "none")
    snapshot = view.snapshot()
    estimate = FinishEstimate(snapshot, view.speed_factors(), job.origin, job.total_items)
    finish_s = estimate.slot_finish_s(plan, 0, np.zeros(view.slot_count, dtype=int))
    work_s = job.total_items * plan.fragments[0].reference_latency_s / (
        view.speed_factors() * (1.0 - snapshot.background_utilisation))
    transfer_s = (job.total_items * plan.inputs_of(0)[0].bytes * 8e-6
                  / np.minimum(snapshot.uplink_mbps[job.origin], snapshot.downlink_mbps))
    start_s = np.maximum(snapshot.uplink_backlog_s[job.origin], snapshot.downlink_backlog_s)
    expected = np.maximum(snapshot.queued_work_s, start_s + transfer_s) + work_s
    expected[job.origin] = snapshot.queued_work_s[job.origin] + work_s[job.origin]
    np.testing.assert_allclose(finish_s, expected, rtol=1e-12)


def test_estimated_finish_placement_takes_the_earliest_estimate_with_room_slot_after_slot():
    env = _busy_env()
    view = EnvView(env)
    job = view.job
    for plan in view.plans():
        placement = estimated_finish_placement(view, plan)
        estimate = FinishEstimate(view.snapshot(), view.speed_factors(), job.origin, job.total_items)
        chosen = np.array(placement)
        used_bytes = np.zeros(view.node_count, dtype=np.int64)
        for slot, fragment in enumerate(plan.fragments):
            finish_s = estimate.slot_finish_s(plan, slot, chosen)
            fitting = view.fitting_nodes(fragment, used_bytes)
            assert fitting[placement[slot]]
            assert finish_s[placement[slot]] == finish_s[fitting].min()
            estimate.choose(slot, float(finish_s[placement[slot]]))
            used_bytes[placement[slot]] += fragment.memory_bytes
