"""The compiled step (envs.step_kernel) runs the same episode as the simulator's Python interface.

The environment's step is one compiled call (decode, submit, advance, observation, reward totals, masks); the
simulator's Python methods (``submit``/``reject``, ``advance_to_next_arrival``, ``pop_outcomes``) with the
ActionTable, ObservationBuilder and ``reward_parts`` do the same things one by one.  Both are driven here with the
same actions and must agree on every observation, reward, outcome and mask, in the common case (one call per
step) and in the cases the simulator splits into two calls or takes over in Python (early exits, a varying
background load, failures with retries, training jobs).
"""

from __future__ import annotations

import numpy as np
import pytest

import envs.sim.memory
import envs.sim.outcomes
from envs.dnn.plan import FAMILIES
from envs.edge_split import EdgeSplitEnv
from envs.reward import reward_parts

CASES = {
    "splitplace": ("splitplace", {}),
    "splitplace-retries": ("splitplace", {"failures": {"enabled": True, "mtbf_s": 300.0, "mttr_s": 30.0,
                                                       "policy": "retry", "max_retries": 2}}),
    "mdi-jetson": ("mdi-jetson", {}),  # early exits
    "mobile-edge-training": ("mobile-edge-training", {}),  # AR(1) background, training jobs
}


def python_step(env: EdgeSplitEnv, action: np.ndarray):
    """What ``env.step(action)`` does, through the simulator's Python interface: (observation, reward, outcomes)."""
    simulator, job = env.simulator, env.job
    plan, placement = env.decode_action(action)
    if plan is None:
        simulator.reject(job, FAMILIES[int(action[0])])
    else:
        simulator.submit(job, plan, placement)
    job = simulator.advance_to_next_arrival()
    outcomes = simulator.pop_outcomes()
    return env.observations.build(simulator, job), reward_parts(outcomes, env.scenario.reward).total, outcomes


@pytest.mark.parametrize("case", sorted(CASES))
def test_compiled_steps_and_the_python_interface_run_the_same_episode(case):
    assert_same_episodes(*CASES[case])


def test_arrays_that_must_grow_all_the_time_change_nothing(monkeypatch):
    """With room for one outcome and one memory release at first, the compiled step asks for more room a dozen
    times (the world is rebuilt each time); the episode is the same."""
    monkeypatch.setattr(envs.sim.outcomes, "INITIAL_CAPACITY", 1)
    monkeypatch.setattr(envs.sim.memory, "INITIAL_CAPACITY", 1)
    assert_same_episodes("splitplace", {})


def assert_same_episodes(scenario: str, config: dict) -> None:
    """300 random valid steps of the compiled step and of the Python interface agree."""
    compiled, reference = EdgeSplitEnv(scenario, config), EdgeSplitEnv(scenario, config)
    compiled.reset(seed=3)
    reference.reset(seed=3)
    rng = np.random.default_rng(4)
    for _ in range(300):
        masks = compiled.action_masks()
        assert np.array_equal(masks, reference.action_masks())  # written by the step, resp. computed now
        action = compiled.actions.sample_valid(masks, rng)
        observation, reward, _, truncated, _ = compiled.step(action)
        expected_observation, expected_reward, outcomes = python_step(reference, action)
        assert np.array_equal(observation, expected_observation)
        assert reward == expected_reward
        assert list(compiled.last_outcomes) == outcomes
        if truncated:
            assert reference.job is None
            break
