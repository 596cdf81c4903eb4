"""Split-learning jobs beside the inference jobs (the scenario option ``training_jobs``)."""

from __future__ import annotations

import math
import re
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from envs.dnn.plan import FAMILIES, ORIGIN
from envs.edge_split import EdgeSplitEnv
from envs.registration import register_envs
from envs.reward import reward_parts
from envs.scenarios import model_plans
from envs.sim.training_plans import TRAINING_STATE_COPIES, trainable, training_plan
from envs.sim.types import Job
from envs.training.jobs import BACKWARD_FACTOR

SCENARIO = "mobile-edge-training"
BUSY = {"horizon_s": 600.0, "training_jobs": {"rate_per_s": 0.05}}
"""A short episode with many training jobs (about 30)."""


def _trajectory(env: EdgeSplitEnv, seed: int, steps: int) -> list:
    """Observations, rewards and infos of ``steps`` random valid steps (actions drawn from ``seed``)."""
    rng = np.random.default_rng(seed)
    observation, info = env.reset(seed=seed)
    trajectory = [(observation.tobytes(), sorted(info.items()))]
    for _ in range(steps):
        observation, reward, _, truncated, info = env.step(env.actions.sample_valid(env.action_masks(), rng))
        trajectory.append((observation.tobytes(), reward, sorted(info.items())))
        if truncated:
            break
    return trajectory


@pytest.mark.parametrize(("scenario", "config"), [("mobile-edge", {"training_jobs": None}),
                                                  (SCENARIO, {"training_jobs": None})])
def test_training_jobs_off_leave_the_mobile_edge_trajectories_unchanged(scenario, config):
    assert _trajectory(EdgeSplitEnv(scenario, config), 3, 300) == _trajectory(EdgeSplitEnv("mobile-edge"), 3, 300)


def test_same_seed_same_actions_same_trajectory_with_training_jobs():
    first, second = EdgeSplitEnv(SCENARIO, BUSY), EdgeSplitEnv(SCENARIO, BUSY)
    assert _trajectory(first, 5, 400) == _trajectory(second, 5, 400)


def _jobs(scenario: str, config: dict, seed: int = 0) -> list[Job]:
    """Every job of one episode (each rejected at once: the workload does not depend on the actions)."""
    simulator = EdgeSplitEnv(scenario, config).simulator
    jobs, job = [], simulator.reset(np.random.default_rng(seed))
    while job is not None:
        jobs.append(job)
        simulator.reject(job)
        job = simulator.advance_to_next_arrival()
    return jobs


def test_training_jobs_arrive_at_their_rate_beside_the_very_same_inference_jobs():
    horizon_s, rate_per_s = 2000.0, 0.05
    jobs = _jobs(SCENARIO, {"horizon_s": horizon_s, "training_jobs": {"rate_per_s": rate_per_s}})
    training = [job for job in jobs if job.training]
    expected = rate_per_s * horizon_s
    assert abs(len(training) - expected) < 3 * math.sqrt(expected)
    assert [job.job_id for job in jobs] == list(range(len(jobs)))
    assert all(a.arrival_s <= b.arrival_s for a, b in zip(jobs, jobs[1:]))
    assert {job.app for job in training} == {"mobilenet_v2_training", "resnet18_training"}
    # the scenario's ranges: 16-48 samples, 1-2 epochs, mini-batches of 16, deadlines 30-300 s, mobile origins
    assert {job.items for job in training} == {16}
    assert {job.iterations for job in training} <= set(range(1, 7)) and max(j.iterations for j in training) > 3
    assert all(30.0 <= job.deadline_s <= 300.0 and 0 <= job.origin <= 7 for job in training)
    inference = [job[1:] for job in jobs if not job.training]
    without = _jobs(SCENARIO, {"horizon_s": horizon_s, "training_jobs": None})
    assert inference == [job[1:] for job in without]  # same app, arrival, deadline, bytes, origin, items


def test_conservation_outcomes_and_the_bounds_of_training_jobs():
    """Counts add up over both kinds; a finished training job took at least iterations x its compute (forward and
    backward on the chosen nodes), exactly what the simulator estimated if it had one mini-batch (later ones may
    queue behind jobs submitted meanwhile), and earned only the SLA part."""
    env = EdgeSplitEnv(SCENARIO, {"training_jobs": {"rate_per_s": 0.02}})  # about 36 training jobs in 1800 s
    speed = np.array([node.device.speed_factor for node in env.scenario.simulator.nodes])
    settings = env.scenario.settings
    rng = np.random.default_rng(1)
    env.reset(seed=1)
    decided = {}  # training job id -> (job, inference plan of the same split, placement, estimated completion)
    resolved_training, training_counts, truncated = [], 0, False
    while not truncated:
        job = env.job
        action = env.actions.sample_valid(env.action_masks(), rng)
        if job.training:
            plan, placement = env.decode_action(action)
            assert plan.family in ("none", "layer") and plan.accuracy == 0.0
            model = job.app.removesuffix("_training")
            forward = next(p for p in model_plans(model, settings["max_layer_fragments"], settings["cut_candidates"])
                           if (p.family, p.variant) == (plan.family, plan.variant))
            decided[job.job_id] = (job, forward, placement,
                                   env.simulator.estimate_completion_s(job, plan, placement))
        _, _, _, truncated, info = env.step(action)
        assert info["arrived"] == info["finished"] + info["failed"] + info["in_flight"]
        training = [o for o in env.last_outcomes if o.app.endswith("_training")]
        assert info["training_jobs_finished"] + info["training_jobs_failed"] == len(training)
        assert info["training_jobs_finished"] == sum(o.finished for o in training)
        training_counts += len(training)
        resolved_training += training
    assert len(decided) >= 20 and len(resolved_training) == training_counts
    assert len({o.job_id for o in resolved_training}) == len(resolved_training) and \
        {o.job_id for o in resolved_training} <= set(decided)
    finished = [o for o in resolved_training if o.finished]
    assert len(finished) >= 5
    for outcome in finished:
        job, forward, placement, estimate_s = decided[outcome.job_id]
        compute_s = sum(f.reference_latency_s * (1.0 + BACKWARD_FACTOR) / speed[node]
                        for f, node in zip(forward.fragments, placement))
        assert outcome.response_time_s >= job.total_items * compute_s * (1 - 1e-9)
        if job.iterations == 1:  # reserved whole at submission, as estimated
            assert outcome.completion_s == pytest.approx(estimate_s, rel=1e-12)
        assert outcome.accuracy == 0.0
        assert reward_parts([outcome], env.scenario.reward).total == env.scenario.reward.sla_weight * \
            outcome.met_deadline


IDLE = {"background": {"process": "constant", "mean_utilisation": 0.0, "node_spread": 0.0}}
"""No background load: a fragment runs at its node's full speed."""


def test_more_iterations_never_finish_sooner_on_an_idle_cluster():
    env = EdgeSplitEnv(SCENARIO, IDLE)
    env.reset(seed=0)  # nothing is reserved before the first decision: the cluster is idle
    simulator, arrival_s = env.simulator, env.job.arrival_s
    for app in ("mobilenet_v2_training", "resnet18_training"):
        for plan in env.scenario.plans[app]:
            placement = [1, 8, 9][: len(plan.fragments)]  # a device, the T4 server, the NUC
            completions_s = [simulator.estimate_completion_s(
                Job(0, app, arrival_s, 100.0, 602112, 1, 16, iterations, True), plan, placement)
                for iterations in (1, 2, 3, 5, 8, 13)]
            assert all(a < b for a, b in zip(completions_s, completions_s[1:])), (plan.variant, completions_s)


@pytest.mark.parametrize("model", ["mobilenet_v2", "resnet18"])
def test_unsplit_training_on_its_origin_takes_iterations_times_forward_and_backward(model):
    env = EdgeSplitEnv(SCENARIO, IDLE)
    env.reset(seed=0)
    settings, origin = env.scenario.settings, 5  # a Jetson Nano: no transfer when the job stays there
    forward = model_plans(model, settings["max_layer_fragments"], settings["cut_candidates"])[0]
    training = env.scenario.plans[f"{model}_training"][0]
    assert (forward.family, forward.variant) == (training.family, training.variant) == ("none", "whole")
    speed = env.scenario.simulator.nodes[origin].device.speed_factor
    for iterations in (1, 4):
        job = Job(0, f"{model}_training", env.job.arrival_s, 100.0, 602112, origin, 16, iterations, True)
        duration_s = env.simulator.estimate_completion_s(job, training, [origin]) - env.job.arrival_s
        expected_s = iterations * 16 * forward.fragments[0].reference_latency_s * (1.0 + BACKWARD_FACTOR) / speed
        assert duration_s == pytest.approx(expected_s, rel=1e-9)


def _first_training_job(env: EdgeSplitEnv, seed: int = 0) -> np.ndarray:
    """Random valid steps until a training job waits; returns its observation."""
    rng = np.random.default_rng(seed)
    observation, _ = env.reset(seed=seed)
    while not env.job.training:
        observation, *_ = env.step(env.actions.sample_valid(env.action_masks(), rng))
    return observation


def test_the_observation_shows_kind_and_iterations_and_masks_offer_training_plans_that_fit():
    env = EdgeSplitEnv(SCENARIO, {"training_jobs": {"rate_per_s": 0.05, "batch_size": 256}})
    assert env.observation_space.shape[0] == EdgeSplitEnv("mobile-edge").observation_space.shape[0] + 2 + 2
    observation = _first_training_job(env)
    job, scale = env.job, env.scenario.observation.iterations_scale
    assert observation[-2] == 1.0 and observation[-1] == np.float32(job.iterations / scale)
    mask = env.action_masks()
    families = dict(zip(FAMILIES, mask[: len(FAMILIES)]))
    assert not families["early_exit"] and not families["width"] and (families["none"] or families["layer"])
    # the first fragment of any plan needs its batch's activations (256 samples): more than a Raspberry Pi holds
    nodes = mask[len(FAMILIES) + env.actions.variant_count:].reshape(env.actions.fragment_slots, -1)
    smallest_first_bytes = min(p.fragments[0].memory_bytes for p in env.plans())
    assert smallest_first_bytes > env.scenario.simulator.nodes[0].device.usable_memory_bytes
    assert not nodes[0, :4].any() and nodes[0, 8]
    env.step(env.actions.sample_valid(mask, np.random.default_rng(0)))
    while env.job is not None and env.job.training:
        env.step(env.actions.sample_valid(env.action_masks(), np.random.default_rng(0)))
    observation = env.observations.build(env.simulator, env.job)
    assert observation[-2] == 0.0 and observation[-1] == np.float32(1 / scale)


@pytest.mark.parametrize(
    ("training_jobs", "named"),
    [
        ({"epoch": [1, 2]}, "epoch"),
        ({"samples": [64, 16]}, "samples"),
        ({"samples": 32}, "samples"),
        ({"epochs": [0, 2]}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"deadline_s": [0.0, 10.0]}, "deadline_s"),
        ({"rate_per_s": -1.0}, "rate_per_s"),
        ({"models": {"alexnet": 1.0}}, "alexnet"),
        ({"models": ["resnet18"]}, "models"),
        ({"models": {"resnet18": 0.0}}, "weights"),
        ("often", "training_jobs"),
    ],
)
def test_a_bad_training_key_fails_at_construction_naming_it(training_jobs, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        EdgeSplitEnv(SCENARIO, {"training_jobs": training_jobs})


def test_a_new_training_section_needs_models_and_a_rate():
    with pytest.raises(ValueError, match="rate_per_s"):
        EdgeSplitEnv("mobile-edge", {"training_jobs": {"models": {"resnet18": 1.0}}})


def test_both_checkers_pass_on_mobile_edge_training():
    register_envs()
    env = gymnasium.make("EdgeSplit-v0", scenario=SCENARIO)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gymnasium_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=True)


def _usable_memory(env: EdgeSplitEnv) -> np.ndarray:
    return np.array([node.device.usable_memory_bytes for node in env.scenario.simulator.nodes], dtype=float)


def _wait_for_training_job(env: EdgeSplitEnv, seed: int = 0, min_iterations: int = 3) -> Job:
    """Reset the simulator and refuse every job until a training job of ``min_iterations`` or more mini-batches
    arrives whose unsplit plan fits on its origin; returns it (the cluster is still empty)."""
    simulator = env.simulator
    job = simulator.reset(np.random.default_rng(seed))
    while not (job.training and job.iterations >= min_iterations
               and simulator.fits(_unsplit(env, job).fragments[0], job.origin)):
        simulator.reject(job)
        job = simulator.advance_to_next_arrival()
    return job


def _unsplit(env: EdgeSplitEnv, job: Job):
    return next(plan for plan in env.scenario.plans[job.app] if plan.family == "none")


def _reject_until(simulator, time_s: float) -> list:
    """Refuse every job that arrives until ``time_s``; returns the outcomes resolved meanwhile."""
    outcomes = []
    while (job := simulator.advance_to_next_arrival()) is not None:
        outcomes += simulator.pop_outcomes()
        simulator.reject(job)
        if job.arrival_s > time_s:
            break
    return outcomes + simulator.pop_outcomes()


def test_a_training_job_holds_the_memory_of_its_fragments_until_its_last_mini_batch_completes():
    env = EdgeSplitEnv(SCENARIO, {"training_jobs": {"rate_per_s": 0.05}})
    simulator = env.simulator
    job = training_job = _wait_for_training_job(env)
    plan = next(p for p in env.scenario.plans[job.app] if len(p.fragments) == 2)
    placement = [job.origin, 9]  # the device that holds the data, then the NUC
    first_batch_s = simulator.estimate_completion_s(job._replace(iterations=1), plan, placement)
    completion_s = simulator.estimate_completion_s(job, plan, placement)
    usable = _usable_memory(env)
    held = np.zeros_like(usable)
    held[placement] = [fragment.memory_bytes for fragment in plan.fragments]
    assert simulator.submit(job, plan, placement)
    checked, checked_after_first_batch, outcomes = 0, 0, []
    while (job := simulator.advance_to_next_arrival()) is not None and simulator.time_s < completion_s:
        np.testing.assert_array_equal(simulator.free_memory_bytes, usable - held)
        checked += 1
        checked_after_first_batch += simulator.time_s > first_batch_s
        outcomes += simulator.pop_outcomes()
        simulator.reject(job)
    assert checked >= 5 and checked_after_first_batch >= 3 and job is not None
    np.testing.assert_array_equal(simulator.free_memory_bytes, usable)
    (training,) = [o for o in outcomes + simulator.pop_outcomes() if o.job_id == training_job.job_id]
    # nothing ran between its mini-batches: it completed when estimated, and its memory came back then
    assert training.finished and training.completion_s == pytest.approx(completion_s, rel=1e-12)


def test_an_inference_job_submitted_between_mini_batches_runs_before_the_later_ones():
    """The inference job queues on the training job's node behind the mini-batch running when it arrives, not
    behind the whole training job (as it did when a training job was one reservation)."""
    env = EdgeSplitEnv(SCENARIO, {**IDLE, "training_jobs": {"rate_per_s": 0.05}})
    simulator = env.simulator
    for seed in range(10):
        training_job = _wait_for_training_job(env, seed)
        node = training_job.origin  # no transfers: its mini-batches are compute on this node, back to back
        training = _unsplit(env, training_job)
        first_batch_s = simulator.estimate_completion_s(training_job._replace(iterations=1), training, [node])
        last_batch_start_s = simulator.estimate_completion_s(
            training_job._replace(iterations=training_job.iterations - 1), training, [node])
        estimate_s = simulator.estimate_completion_s(training_job, training, [node])
        assert simulator.submit(training_job, training, [node])
        job = simulator.advance_to_next_arrival()
        while job.training or job.arrival_s <= first_batch_s:
            simulator.reject(job)
            job = simulator.advance_to_next_arrival()
        if job.arrival_s < last_batch_start_s:  # between two mini-batches, the last one still to come
            break
        simulator.reject(job)
    else:
        pytest.fail("no inference job arrived between two mini-batches")
    assert simulator.submit(job, _unsplit(env, job), [node])
    outcomes = {o.job_id: o for o in _reject_until(simulator, estimate_s + 60.0)}
    inference_outcome, training_outcome = outcomes[job.job_id], outcomes[training_job.job_id]
    assert inference_outcome.finished and training_outcome.finished
    # as one reservation, the training job would have kept the node until its own completion (its result needs
    # no transfer), and the inference job would have finished after it
    assert inference_outcome.completion_s < training_outcome.completion_s
    assert training_outcome.completion_s > estimate_s  # its later mini-batches waited for the inference job


FAILING = {**IDLE, "training_jobs": {"rate_per_s": 0.05},
           "failures": {"enabled": True, "mtbf_s": 120.0, "mttr_s": 30.0, "policy": "fail"}}
"""Failures every two minutes per node on average: often within a training job of a few mini-batches."""


def test_a_failure_during_a_later_mini_batch_fails_the_job_then_and_gives_its_memory_back():
    env = EdgeSplitEnv(SCENARIO, FAILING)
    simulator, usable = env.simulator, _usable_memory(env)
    for seed in range(20):
        job = _wait_for_training_job(env, seed)
        plan = _unsplit(env, job)
        first_batch_s = simulator.estimate_completion_s(job._replace(iterations=1), plan, [job.origin])
        estimate_s = simulator.estimate_completion_s(job, plan, [job.origin])
        failure_s = simulator._failures.first_failure_s(job.origin, simulator.time_s, estimate_s)
        if first_batch_s < failure_s < estimate_s:  # the node fails during a later mini-batch
            break
    else:
        pytest.fail("no training job whose node fails during a later mini-batch")
    assert simulator.submit(job, plan, [job.origin])
    outcomes = _reject_until(simulator, failure_s)
    (outcome,) = [o for o in outcomes if o.job_id == job.job_id]
    assert not outcome.finished and outcome.failure_reason == "node_failure"
    assert outcome.completion_s == failure_s
    assert outcome.energy_j > 0.0  # what its mini-batches drew up to the failure
    np.testing.assert_array_equal(simulator.free_memory_bytes, usable)


@pytest.mark.parametrize("failures", [{}, {"enabled": True, "mtbf_s": 300.0, "mttr_s": 30.0, "policy": "fail"},
                                      {"enabled": True, "mtbf_s": 300.0, "mttr_s": 30.0, "policy": "retry"}])
def test_every_job_resolves_once_and_counts_add_up_over_thousands_of_random_steps(failures):
    env = EdgeSplitEnv(SCENARIO, {"horizon_s": 1200.0, "training_jobs": {"rate_per_s": 0.05},
                                  "failures": failures})
    rng = np.random.default_rng(0)
    steps, episodes, training_resolved = 0, 0, 0
    while steps < 3000:
        env.reset(seed=episodes)
        resolved, submitted_training, truncated = set(), set(), False
        while not truncated:
            if env.job.training:
                submitted_training.add(env.job.job_id)
            _, _, _, truncated, info = env.step(env.actions.sample_valid(env.action_masks(), rng))
            steps += 1
            assert info["arrived"] == info["finished"] + info["failed"] + info["in_flight"]
            for outcome in env.last_outcomes:
                assert outcome.job_id not in resolved
                resolved.add(outcome.job_id)
                training_resolved += outcome.app.endswith("_training")
                assert outcome.app.endswith("_training") == (outcome.job_id in submitted_training)
        assert len(resolved) == info["finished"] + info["failed"] == info["arrived"] - info["in_flight"]
        episodes += 1
    assert training_resolved >= 50


def test_training_plans_send_gradients_back_between_fragments_and_keep_a_batch_of_activations():
    forward_plans = [plan for plan in model_plans("resnet18", 3, 5) if trainable(plan)]
    assert {plan.family for plan in forward_plans} == {"none", "layer"}
    for forward in forward_plans:
        small, large = training_plan(forward, 16), training_plan(forward, 32)
        for before, after in zip(forward.transfers, small.transfers):
            between_fragments = ORIGIN not in (before.source, before.target)
            assert after.bytes == before.bytes * (2 if between_fragments else 1)
        for fragment, trained, larger in zip(forward.fragments, small.fragments, large.fragments):
            state_bytes = (1 + TRAINING_STATE_COPIES) * fragment.param_bytes  # weights, gradients, optimizer
            assert trained.memory_bytes - state_bytes > 0  # a batch of activations kept for the backward pass
            assert larger.memory_bytes - state_bytes == 2 * (trained.memory_bytes - state_bytes)
