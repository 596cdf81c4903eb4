import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scipy.optimize import linprog

from agents.update_schedulers import (
    SCHEDULERS,
    all_equal,
    cloud_only,
    deep_edge,
    deep_edge_links,
    link_aware_shares,
    scheduler,
    share_levels,
    train_ppo,
)
from envs.model_update import EdgeModelUpdateEnv
from envs.training.interference import count_misses

SMALL = {"jobs": {"samples": [200, 600], "epochs": [1, 2]}, "jobs_per_episode": 2}


def _misses_per_task(env, result):
    """(device, task) -> deadlines missed."""
    return {(device, task): int(count)
            for device, intervals in result.busy_intervals_s.items() if device < env.cluster.edge_count
            for task, count in enumerate(count_misses(env.cluster.tasks[device], intervals))}


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), deadline_low=st.floats(1.0, 2.5), utilisation_high=st.floats(0.05, 0.3),
       failures=st.sampled_from(["none", "injected"]))
def test_deep_edge_never_misses_a_deadline_that_the_all_devices_baseline_meets(seed, deadline_low, utilisation_high,
                                                                              failures):
    config = SMALL | {"background": {"deadline_factor": {"low": deadline_low, "high": deadline_low + 2.0},
                                     "utilisation": {"low": 0.01, "high": utilisation_high}},
                      "failures": {"mode": failures}}
    env = EdgeModelUpdateEnv(config=config)
    env.reset(seed=seed)
    deep = _misses_per_task(env, env.run_job(env.job, deep_edge(env)))
    env.reset(seed=seed)
    everyone = _misses_per_task(env, env.run_job(env.job, all_equal(env)))
    for key, count in deep.items():
        if count:
            assert everyone.get(key, 0) > 0, f"Deep-Edge missed deadlines of task {key} that all devices met"


def test_deep_edge_leaves_out_exactly_the_devices_that_would_miss():
    env = EdgeModelUpdateEnv(config=SMALL)
    env.reset(seed=4)
    levels = deep_edge(env)
    would_miss = [env.cluster.would_miss(device) for device in range(env.cluster.edge_count)]
    assert any(would_miss) and not all(would_miss)
    assert [level == 0 for level in levels[:-1]] == would_miss and levels[-1] == 0
    assert levels.max() == env.share_levels


def test_deep_edge_falls_back_to_the_cloud_when_no_device_is_safe():
    env = EdgeModelUpdateEnv(config=SMALL | {"background": {"deadline_factor": {"low": 1.1, "high": 1.5}}})
    env.reset(seed=0)
    assert deep_edge(env).tolist() == cloud_only(env).tolist() == [0] * env.cluster.edge_count + [env.share_levels]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 500.0), st.floats(0.5, 5000.0)), min_size=1, max_size=8))
def test_link_aware_shares_minimise_the_last_finish_like_a_linear_program(workers):
    """Against scipy's LP of the same problem: minimise T subject to f_i + s_i a_i <= T, sum s = 1, s >= 0."""
    fixed, slope = np.array(workers).T
    shares = link_aware_shares(fixed, slope)
    assert shares.sum() == pytest.approx(1.0) and np.all(shares >= 0)
    count = len(workers)
    bounds = [(0, None)] * count + [(None, None)]
    reference = linprog(np.r_[np.zeros(count), 1.0], A_ub=np.c_[np.diag(slope), -np.ones(count)], b_ub=-fixed,
                        A_eq=np.r_[np.ones(count), 0.0][None], b_eq=[1.0], bounds=bounds)
    assert reference.success
    assert np.max(fixed + shares * slope) == pytest.approx(reference.fun, rel=1e-9, abs=1e-9)


def test_link_aware_shares_leave_out_a_worker_whose_fixed_time_alone_is_too_long():
    shares = link_aware_shares([0.0, 0.0, 900.0], [100.0, 100.0, 100.0])
    assert shares.tolist() == [0.5, 0.5, 0.0]  # the two finish at 50 s, long before 900 s
    with pytest.raises(ValueError, match="seconds_per_share"):
        link_aware_shares([0.0], [0.0])


@pytest.mark.parametrize("seed", range(5))
def test_deep_edge_links_uses_only_safe_devices_and_is_not_slower_than_speed_shares(seed):
    """The same safe set as Deep-Edge (a subset, if a link is too slow), and over a whole episode a re-training
    time no longer than Deep-Edge's shares by speed."""
    totals = {}
    for name, policy in (("speed", deep_edge), ("links", deep_edge_links)):
        env = EdgeModelUpdateEnv(config={"jobs_per_episode": 4})
        env.reset(seed=seed)
        totals[name], truncated = 0.0, False
        while not truncated:
            levels = policy(env)
            if name == "links":
                assert set(np.flatnonzero(levels[:-1])) <= set(np.flatnonzero(deep_edge(env)[:-1]))
            _, _, _, truncated, info = env.step(levels)
            totals[name] += info["training_time_s"]
            assert info["background_misses"] == 0
    assert totals["links"] <= totals["speed"] * 1.02


def test_share_levels_follow_the_weights():
    assert share_levels([2.0, 1.0, 0.0, 0.01], 10).tolist() == [10, 5, 0, 1]
    assert share_levels([0.0, 0.0], 4).tolist() == [0, 0]


def test_every_scheduler_gives_a_valid_action_and_proportional_beats_equal_shares_when_compute_dominates():
    # Near-free links: on the default ~129 Mbit/s LAN the per-round model and gradient transfers, which
    # do not shrink with a device's share, dominate and equal shares are as fast as proportional ones.
    fast_links = {"device_link": {"bandwidth_scale": 1e5}, "parameter_server": {"link": {"bandwidth_scale": 1e5}}}
    env = EdgeModelUpdateEnv(config=SMALL | fast_links)
    times = {}
    for name in SCHEDULERS:
        env.reset(seed=2)
        action = scheduler(name)(env)
        assert env.action_space.contains(action)
        times[name] = env.step(action)[4]["training_time_s"]
    assert times["all_proportional"] < times["all_equal"]  # the Raspberry Pis straggle with equal shares
    with pytest.raises(KeyError, match="allowed"):
        scheduler("fastest")


def test_ppo_trains_briefly_and_acts_within_the_masks():
    env = EdgeModelUpdateEnv(config=SMALL)
    agent = train_ppo(env, total_steps=32, seed=0, algorithm_kwargs={"n_steps": 16, "batch_size": 16})
    observation, _ = env.reset(seed=0)
    action = agent.predict(observation, env)
    masks = env.action_masks().reshape(len(env.action_space.nvec), -1)
    assert env.action_space.contains(np.asarray(action))
    assert all(masks[dimension, level] for dimension, level in enumerate(action))
