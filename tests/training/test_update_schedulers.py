import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.update_schedulers import SCHEDULERS, all_equal, cloud_only, deep_edge, scheduler, share_levels, train_ppo
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
