"""Every agent on the environment: episodes, save/load, learning beats random."""

from __future__ import annotations

import numpy as np
import pytest

from agents.evaluation import run_episode
from agents.registry import agent_names, build_agent, validate_params
from envs.scenarios import list_scenarios

SB3_FAST = {"algorithm_kwargs": {"n_steps": 32, "batch_size": 16, "n_epochs": 1}}
"""Small rollouts so that SB3 agents learn something within a test."""


def _build(name: str, env, params: dict | None = None):
    params = params if params is not None else (SB3_FAST if name in ("ppo", "maskable_ppo", "sb3") else {})
    return build_agent(name, validate_params(name, params), env)


def _check_episode(name: str, env, seed: int = 3) -> None:
    agent = _build(name, env)
    metrics = run_episode(agent, env, seed, online_updates=True)
    assert metrics.jobs > 0
    assert np.isfinite(metrics.average_reward)
    assert 0.0 <= metrics.violation_rate <= 1.0
    assert metrics.decision_time_ms > 0


@pytest.mark.parametrize("name", agent_names())
def test_every_agent_plays_an_episode_on_splitplace(name, short_env):
    _check_episode(name, short_env)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list_scenarios())
@pytest.mark.parametrize("name", agent_names())
def test_every_agent_plays_a_full_episode_on_every_scenario(name, scenario, edge_env_factory):
    env = edge_env_factory(scenario)
    try:
        _check_episode(name, env)
    finally:
        env.close()


def _lockstep_actions(first, second, envs, seed: int, steps: int) -> tuple[list, list]:
    """Actions of two agents, each on its own copy of the same episode, without learning."""
    actions: tuple[list, list] = ([], [])
    for agent, env, taken in zip((first, second), envs, actions):
        observation, _ = env.reset(seed=seed)
        agent.start_episode(seed)
        for _ in range(steps):
            action = agent.predict(observation, env)
            taken.append(np.asarray(action).tolist())
            observation, _, _, truncated, _ = env.step(action)
            if truncated:
                break
        env.close()
    return actions


@pytest.mark.parametrize("name", ["bandit", "decision_aware", "random", "maskable_ppo", "ppo"])
def test_save_load_round_trip_gives_identical_actions(name, short_env, edge_env_factory, tmp_path):
    trained = _build(name, short_env)
    trained.learn(short_env, total_steps=96, seed=11)
    trained.save(tmp_path / "agent")
    reloaded = _build(name, short_env, params=None)
    reloaded.load(tmp_path / "agent")
    envs = (edge_env_factory(horizon_s=6 * 3600.0), edge_env_factory(horizon_s=6 * 3600.0))
    first, second = _lockstep_actions(trained, reloaded, envs, seed=500, steps=30)
    assert len(first) >= 10
    assert first == second


@pytest.mark.parametrize("name", ["bandit", "decision_aware", "maskable_ppo", "ppo"])
def test_training_twice_with_the_same_seed_gives_identical_actions(name, edge_env_factory):
    """Two fresh agents trained alike on fresh environments act alike afterwards: no global or unseeded
    random state in training (what makes stored results reproducible)."""
    trained = []
    for _ in range(2):
        env = edge_env_factory(horizon_s=6 * 3600.0)
        agent = _build(name, env)
        agent.learn(env, total_steps=96, seed=11)
        env.close()
        trained.append(agent)
    envs = (edge_env_factory(horizon_s=6 * 3600.0), edge_env_factory(horizon_s=6 * 3600.0))
    first, second = _lockstep_actions(*trained, envs, seed=500, steps=30)
    assert len(first) >= 10
    assert first == second


def _mean_reward(agent, env, seeds) -> float:
    return float(np.mean([run_episode(agent, env, seed, online_updates=False).average_reward for seed in seeds]))


@pytest.mark.parametrize("name", ["bandit", "decision_aware"])
def test_trained_agents_beat_random_on_held_out_seeds(name, short_env, short_test_env):
    agent = _build(name, short_env)
    agent.learn(short_env, total_steps=200, seed=0)
    seeds = (1000, 1001, 1002)
    random_reward = _mean_reward(_build("random", short_test_env), short_test_env, seeds)
    assert _mean_reward(agent, short_test_env, seeds) > random_reward + 0.03


@pytest.mark.slow
def test_maskable_ppo_learns_to_beat_random(edge_env_factory):
    env, test_env = edge_env_factory(), edge_env_factory(trace_split="test")
    agent = _build("maskable_ppo", env, {"algorithm_kwargs": {"n_steps": 512, "batch_size": 64}})
    agent.learn(env, total_steps=8192, seed=0)
    seeds = (1000, 1001, 1002)
    assert _mean_reward(agent, test_env, seeds) > _mean_reward(_build("random", test_env), test_env, seeds)


def test_decision_input_is_zeroed_only_in_the_ablation(short_env):
    observation, _ = short_env.reset(seed=4)
    aware = _build("decision_aware", short_env)
    unaware = _build("decision_aware", short_env, {"placement": {"kind": "decision_aware", "decision_aware": False}})
    from agents.env_access import EnvView

    view = EnvView(short_env, observation)
    plan = view.plans()[-1]
    decision_size = view.family_count + view.variant_count
    aware_slots, aware_context = aware.placement._inputs(view, plan)
    unaware_slots, unaware_context = unaware.placement._inputs(view, plan)
    assert aware_context[-decision_size:].sum() == 2.0  # family and variant one-hot
    assert aware_slots[:, :view.FRAGMENT_FEATURE_COUNT].any()
    assert not unaware_context[-decision_size:].any()
    assert not unaware_slots[:, :view.FRAGMENT_FEATURE_COUNT].any()
    np.testing.assert_array_equal(aware_context[:-decision_size], unaware_context[:-decision_size])  # job part


def test_the_placement_trains_only_within_learn(short_env):
    agent = _build("decision_aware", short_env)
    seen = []
    place = agent.placement.place
    agent.placement.place = lambda view, plan: seen.append(agent.placement.training) or place(view, plan)
    agent.learn(short_env, total_steps=5)
    run_episode(agent, short_env, seed=3, online_updates=True, max_steps=5)
    assert seen == [True] * 5 + [False] * 5
    assert not agent.placement.training


def test_sb3_algorithm_that_does_not_fit_the_action_space_is_named(short_env):
    with pytest.raises(ValueError, match="DQN.*MultiDiscrete"):
        _build("sb3", short_env, {"algorithm": "DQN"})


def test_sb3_agents_skip_distribution_checks_only_while_they_train_and_predict(short_env):
    from torch.distributions import Distribution

    agent = _build("ppo", short_env)
    default = Distribution._validate_args
    during = []
    agent.learn(short_env, 40, callback=lambda *_: during.append(Distribution._validate_args))
    assert during and not any(during)  # off inside SB3's training loop
    assert Distribution._validate_args == default  # and back afterwards
    observation, _ = short_env.reset(seed=0)
    assert short_env.action_space.contains(agent.predict(observation, short_env))
    assert Distribution._validate_args == default
