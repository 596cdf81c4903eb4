import pickle

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs  # noqa: F401  (registers the ids)
from envs.model_update import EdgeModelUpdateEnv
from envs.training.settings import load_update_settings

SMALL = {"jobs": {"samples": [200, 400], "epochs": [1, 2]}, "jobs_per_episode": 3}


def test_both_checkers_pass():
    gymnasium_check_env(EdgeModelUpdateEnv(config=SMALL), skip_render_check=True)
    sb3_check_env(EdgeModelUpdateEnv(config=SMALL), warn=True)


def test_registered_id_makes_the_env():
    env = gymnasium.make("EdgeModelUpdate-v0", config=SMALL)
    observation, _ = env.reset(seed=0)
    assert env.observation_space.contains(observation)
    assert isinstance(env.unwrapped, EdgeModelUpdateEnv)


def _rollout(env, seed):
    observation, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    trace = [observation]
    done = False
    while not done:
        observation, reward, terminated, truncated, info = env.step(env.action_space.sample())
        trace += [observation, reward, info]
        done = terminated or truncated
    return trace


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if isinstance(x, dict):
            assert x == y
        else:
            np.testing.assert_array_equal(x, y)


def test_same_seed_same_episode_and_a_pickled_env_goes_on_alike():
    env = EdgeModelUpdateEnv(config=SMALL | {"failures": {"mode": "injected"}})
    first, second = _rollout(env, 3), _rollout(env, 3)
    _same(first, second)
    env.reset(seed=5)
    copy = pickle.loads(pickle.dumps(env))
    action = np.full(env.action_space.shape, 2)
    _same(list(env.step(action)), list(copy.step(action)))


def test_reward_parts_add_up_and_the_episode_is_truncated():
    env = EdgeModelUpdateEnv(config=SMALL)
    env.reset(seed=0)
    steps = 0
    truncated = False
    while not truncated:
        _, reward, terminated, truncated, info = env.step(np.full(env.action_space.shape, 1))
        parts = info["reward_time"] + info["reward_misses"] + info["reward_deadline"] + info["reward_penalty"]
        assert reward == pytest.approx(parts)
        assert info["training_time_s"] > 0 and info["finished"] and not terminated
        steps += 1
    assert steps == SMALL["jobs_per_episode"]


def test_no_participant_is_penalised_not_a_crash():
    env = EdgeModelUpdateEnv(config=SMALL)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.zeros(env.action_space.shape, dtype=np.int64))
    assert info["infeasible"] and reward == -env.settings.reward.infeasible_penalty


def test_down_devices_are_masked_and_dropped():
    env = EdgeModelUpdateEnv(config=SMALL | {"failures": {"mode": "random", "mtbf_s": 300.0, "mttr_s": 3000.0},
                                             "jobs_per_episode": 20})
    env.reset(seed=1)
    saw_down = False
    while env.job is not None:
        masks = env.action_masks().reshape(len(env.action_space.nvec), -1)
        up = env.cluster.up(env.time_s)
        assert masks[:-1, 1:].any(axis=1).tolist() == up.tolist() and masks[:, 0].all()
        saw_down |= not up.all()
        _, _, _, _, info = env.step(np.full(env.action_space.shape, 3))
        assert info["dropped_choices"] == int((~up).sum())
    assert saw_down


def test_an_injected_failure_reassigns_samples_and_all_are_processed():
    env = EdgeModelUpdateEnv(config=SMALL | {"failures": {"mode": "injected"}})
    env.reset(seed=0)
    levels = np.array([0] * env.cluster.edge_count + [0])
    levels[[3, 4, 6]] = [5, 5, 5]
    result = env.run_job(env.job, levels)
    assert result.finished and len(result.failed_nodes) == 1 and result.reassigned_samples > 0
    assert result.ledger.exactly_once()


@pytest.mark.parametrize("text, message", [("- 1\n- 2\n", "must be a mapping at the top level, got list"),
                                           ("jobs: [1\n", "is not valid YAML")])
def test_an_update_scenario_file_that_is_no_mapping_is_named(tmp_path, text, message):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"update scenario '{path}'.*{message}"):
        load_update_settings(str(path))


def test_unknown_settings_keys_are_named():
    with pytest.raises(ValueError, match="jobs.sample"):
        EdgeModelUpdateEnv(config={"jobs": {"sample": [1, 2]}})
    with pytest.raises(ValueError, match="unknown device"):
        EdgeModelUpdateEnv(config={"devices": [{"device": "toaster"}]})
