"""Gymnasium's and Stable-Baselines3's environment checkers pass for every registered EdgeSplit id."""

from __future__ import annotations

import warnings

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from envs.registration import env_ids, register_envs

register_envs()


@pytest.mark.parametrize("env_id", env_ids())
def test_gymnasium_checker_passes(env_id):
    env = gymnasium.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning fails the test
        gymnasium_check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id", env_ids())
def test_stable_baselines3_checker_passes(env_id):
    env = gymnasium.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env.unwrapped, warn=True)
