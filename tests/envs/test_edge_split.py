"""Behaviour of the EdgeSplit environment: ids, spaces, determinism, masks, infeasible actions, pickling."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys

import gymnasium
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envs.dnn.plan import FAMILIES
from envs.edge_split import EdgeSplitEnv
from envs.registration import register_envs, scenario_env_id

SHORT = {"horizon_s": 6 * 3600.0}
"""Six simulated hours of splitplace: about 70 jobs."""


def random_rollout(env: EdgeSplitEnv, seed: int, steps: int, action_seed: int = 0) -> list[tuple]:
    """(observation, reward, terminated, truncated, info) of up to ``steps`` random valid actions."""
    env.reset(seed=seed)
    rng = np.random.default_rng(action_seed)
    trajectory = []
    for _ in range(steps):
        result = env.step(env.actions.sample_valid(env.action_masks(), rng))
        trajectory.append(result)
        if result[3]:
            break
    return trajectory


def test_ids_and_the_scenario_argument_pick_the_scenario():
    register_envs()
    assert gymnasium.make("EdgeSplit-v0").unwrapped.scenario.name == "splitplace"
    assert gymnasium.make("EdgeSplit-v0", scenario="mdi-jetson").unwrapped.scenario.name == "mdi-jetson"
    env = gymnasium.make(scenario_env_id("mobile-edge"), config=SHORT)
    assert env.unwrapped.scenario.name == "mobile-edge"
    assert env.unwrapped.scenario.simulator.horizon_s == SHORT["horizon_s"]


def test_string_entry_point_works_in_a_fresh_interpreter():
    code = ("import gymnasium; env = gymnasium.make('envs:EdgeSplit-v0', scenario='mdi-jetson'); "
            "observation, _ = env.reset(seed=0); assert env.observation_space.contains(observation)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_observations_are_fresh_arrays_inside_the_space():
    env = EdgeSplitEnv("splitplace", SHORT)
    first, _ = env.reset(seed=3)
    assert env.observation_space.contains(first)
    kept = first.copy()
    first[:] = -1.0  # an agent scribbling on its observation must not change the environment
    second = env.step(env.actions.sample_valid(env.action_masks(), np.random.default_rng(0)))[0]
    assert env.observation_space.contains(second)
    assert second is not first and not np.shares_memory(second, first)
    again, _ = env.reset(seed=3)
    assert np.array_equal(again, kept)


def test_masks_have_one_entry_per_action_value_and_allow_something_in_every_dimension():
    env = EdgeSplitEnv("mobile-edge")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(30):
        mask = env.action_masks()
        assert mask.dtype == bool and mask.shape == (int(env.action_space.nvec.sum()),)
        bounds = np.cumsum(np.concatenate(([0], env.action_space.nvec)))
        assert all(mask[a:b].any() for a, b in zip(bounds[:-1], bounds[1:]))
        family_mask = mask[: len(FAMILIES)]
        app_families = {plan.family for plan in env.plans()}
        assert {FAMILIES[i] for i in np.flatnonzero(family_mask)} <= app_families
        env.step(env.actions.sample_valid(mask, rng))


def test_random_valid_actions_never_hit_an_infeasible_placement_with_room_to_spare():
    trajectory = random_rollout(EdgeSplitEnv("splitplace", SHORT), seed=1, steps=200)
    assert not any(info["action_infeasible"] for *_, info in trajectory)


def test_same_seed_and_actions_give_identical_trajectories():
    first = random_rollout(EdgeSplitEnv("mobile-edge"), seed=7, steps=80)
    second = random_rollout(EdgeSplitEnv("mobile-edge"), seed=7, steps=80)
    assert len(first) == len(second)
    for (obs_a, reward_a, *ends_a, info_a), (obs_b, reward_b, *ends_b, info_b) in zip(first, second):
        assert np.array_equal(obs_a, obs_b) and reward_a == reward_b and ends_a == ends_b and info_a == info_b
    other = random_rollout(EdgeSplitEnv("mobile-edge"), seed=8, steps=80)
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other))


def test_info_is_plain_scalars_that_add_up():
    previous_time_s = 0.0
    for observation, reward, terminated, truncated, info in random_rollout(EdgeSplitEnv("mdi-jetson"), 2, 300):
        assert all(isinstance(value, (bool, int, float)) for value in info.values())
        assert info["arrived"] == info["finished"] + info["failed"] + info["in_flight"]
        parts = info["reward_sla"] + info["reward_accuracy"] - info["reward_energy"] - info["reward_penalty"]
        assert reward == pytest.approx(parts)
        assert info["time_s"] >= previous_time_s and not terminated
        previous_time_s = info["time_s"]


def test_episode_truncates_at_the_horizon_and_needs_a_reset():
    env = EdgeSplitEnv("mdi-jetson", {"horizon_s": 60.0})
    trajectory = random_rollout(env, seed=0, steps=10_000)
    *_, truncated, info = trajectory[-1]
    assert truncated and info["time_s"] == 60.0
    assert not any(t for *_, t, _ in trajectory[:-1])
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.action_space.sample())
    observation, _ = env.reset(seed=1)
    assert env.observation_space.contains(observation) and env.job is not None


def test_family_without_plans_rejects_the_job_with_the_configured_penalty():
    env = EdgeSplitEnv("splitplace", {**SHORT, "reward": {"infeasible_penalty": 0.75}})
    env.reset(seed=0)
    assert "width" not in {plan.family for plan in env.plans()}
    action = env.action_space.sample()
    action[0] = FAMILIES.index("width")
    _, reward, _, _, info = env.step(action)
    assert info["action_infeasible"] and info["jobs_infeasible"] == 1 and info["infeasible"] == 1
    assert info["reward_penalty"] == 0.75 and reward <= -0.75 + info["reward_sla"] + info["reward_accuracy"]
    rejected = env.last_outcomes[-1]  # the simulator's reject path, under the family the action chose
    assert rejected.failure_reason == "infeasible" and rejected.family == "width" and rejected.energy_j == 0.0


def test_a_down_node_is_masked_and_placing_on_it_is_rejected():
    failing = {**SHORT, "failures": {"enabled": True, "mtbf_s": 600.0, "mttr_s": 6000.0}}
    env = EdgeSplitEnv("splitplace", failing)
    env.reset(seed=0)
    for _ in range(200):
        down = np.flatnonzero(~env.snapshot.up)
        if down.size and env.snapshot.up.any():
            break
        env.step(env.actions.sample_valid(env.action_masks(), np.random.default_rng(0)))
    assert down.size, "no node failed: make the failures more frequent"
    plan = next(p for p in env.plans() if p.family == "none")
    slot_mask = env.action_masks()[len(FAMILIES) + env.action_space.nvec[1]:][: env.simulator.node_count]
    assert not slot_mask[down].any()
    _, _, _, _, info = env.step(env.encode_action(plan, [int(down[0])]))
    assert info["action_infeasible"]


def test_encode_and_decode_are_inverse_for_every_plan():
    env = EdgeSplitEnv("mobile-edge")
    env.reset(seed=0)
    nodes = env.simulator.node_count
    for number, plan in enumerate(env.plans()):
        placement = [(number + i) % nodes for i in range(len(plan.fragments))]
        action = env.encode_action(plan, placement)
        assert env.action_space.contains(action)
        assert env.decode_action(action) == (plan, tuple(placement))
    foreign = EdgeSplitEnv("splitplace").scenario.plans["mnist"][0]
    with pytest.raises(ValueError, match="not a plan"):
        env.encode_action(foreign, [0])


def test_variant_index_wraps_around_within_a_family():
    env = EdgeSplitEnv("splitplace", SHORT)
    env.reset(seed=0)
    layer = [plan for plan in env.plans() if plan.family == "layer"]
    action = env.encode_action(layer[0], list(range(len(layer[0].fragments))))
    action[1] = len(layer)
    if action[1] < env.action_space.nvec[1]:
        assert env.decode_action(action)[0] == layer[0]
    action[0], action[1] = FAMILIES.index("none"), env.action_space.nvec[1] - 1
    assert env.decode_action(action)[0].family == "none"


def test_actions_outside_the_space_raise():
    env = EdgeSplitEnv("splitplace", SHORT)
    env.reset(seed=0)
    action = env.action_space.sample()
    action[2] = env.simulator.node_count
    with pytest.raises(ValueError, match="not in"):
        env.step(action)
    with pytest.raises(ValueError, match="not in"):
        env.step(action[:-1])


def test_pickled_environment_continues_identically():
    env = EdgeSplitEnv("mobile-edge")
    random_rollout(env, seed=4, steps=25)
    clone = pickle.loads(pickle.dumps(env))
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    for _ in range(25):
        obs_a, reward_a, *_, info_a = env.step(env.actions.sample_valid(env.action_masks(), rng_a))
        obs_b, reward_b, *_, info_b = clone.step(clone.actions.sample_valid(clone.action_masks(), rng_b))
        assert np.array_equal(obs_a, obs_b) and reward_a == reward_b and info_a == info_b


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_make_vec_steps_every_copy(mode):
    register_envs()
    envs = gymnasium.make_vec("EdgeSplit-v0", num_envs=2, vectorization_mode=mode, scenario="mdi-jetson")
    observations, _ = envs.reset(seed=[0, 1])
    assert observations.shape == (2, *envs.single_observation_space.shape)
    observations, rewards, _, _, infos = envs.step(envs.action_space.sample())
    assert np.isfinite(observations).all() and rewards.shape == (2,) and infos["arrived"].shape == (2,)
    envs.close()


@pytest.mark.slow
def test_subproc_vec_env_with_spawned_workers_and_the_string_entry_point():
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    vec = make_vec_env("envs:EdgeSplit-v0", n_envs=2, env_kwargs={"scenario": "mdi-jetson"},
                       vec_env_cls=SubprocVecEnv, vec_env_kwargs={"start_method": "spawn"})
    observations = vec.reset()
    masks = np.stack(vec.env_method("action_masks"))
    assert observations.shape[0] == 2 and masks.shape == (2, int(vec.action_space.nvec.sum()))
    vec.step(np.stack([vec.action_space.sample() for _ in range(2)]))
    vec.close()


@pytest.mark.slow
def test_ppo_and_maskable_ppo_train_on_it():
    from sb3_contrib import MaskablePPO
    from stable_baselines3 import PPO

    env = EdgeSplitEnv("splitplace", SHORT)
    PPO("MlpPolicy", env, n_steps=32, batch_size=16, n_epochs=1, seed=0).learn(64)
    MaskablePPO("MlpPolicy", env, n_steps=32, batch_size=16, n_epochs=1, seed=0).learn(64)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    bandwidth_scale=st.floats(50.0, 5000.0),
    background=st.floats(0.0, 0.8),
    failures=st.booleans(),
)
def test_invariants_hold_over_random_scenarios_and_actions(seed, bandwidth_scale, background, failures):
    overrides = {
        "horizon_s": 3 * 3600.0,
        "bandwidth_scale": bandwidth_scale,
        "background": {"process": "ar1", "mean_utilisation": background, "interval_s": 600.0},
        "failures": {"enabled": failures, "mtbf_s": 3600.0, "mttr_s": 600.0},
    }
    env = EdgeSplitEnv("splitplace", overrides)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    previous_time_s, truncated = 0.0, False
    while not truncated:
        observation, reward, _, truncated, info = env.step(env.actions.sample_valid(env.action_masks(), rng))
        assert env.observation_space.contains(observation) and math.isfinite(reward)
        assert info["arrived"] == info["finished"] + info["failed"] + info["in_flight"]
        assert min(info["in_flight"], info["energy_j"]) >= 0 and info["time_s"] >= previous_time_s
        previous_time_s = info["time_s"]
        for outcome in env.last_outcomes:
            assert outcome.arrival_s <= outcome.completion_s <= info["time_s"]
            assert outcome.response_time_s >= 0 and outcome.energy_j >= 0
