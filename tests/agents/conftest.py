"""Shared fixtures of the agent tests: small EdgeSplit environments, one thread for torch."""

from __future__ import annotations

import gymnasium
import pytest
import torch

from envs.registration import register_envs

SHORT_HORIZON_S = 6 * 3600.0
"""Six simulated hours of the splitplace scenario: about 70 jobs, enough to learn a little."""

HELD_OUT_TRACES = {"trace_split": "test"}
"""The test split holds no FCC ("trace_") traces yet, so held-out runs use its Norway traces."""


@pytest.fixture(autouse=True, scope="session")
def _single_torch_thread():
    """Small networks run fastest on one thread (and do not fight over a busy machine's cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_env(scenario: str = "splitplace", **settings) -> gymnasium.Env:
    register_envs()
    return gymnasium.make("EdgeSplit-v0", scenario=scenario, config=settings)


@pytest.fixture(scope="session")
def edge_env_factory():
    """``make_env`` for tests that build their own environments."""
    return make_env


@pytest.fixture(scope="module")
def short_env():
    """splitplace, six hours per episode, training traces."""
    env = make_env(horizon_s=SHORT_HORIZON_S)
    yield env
    env.close()


@pytest.fixture(scope="module")
def short_test_env():
    """splitplace, six hours per episode, held-out test traces."""
    env = make_env(horizon_s=SHORT_HORIZON_S, **HELD_OUT_TRACES)
    yield env
    env.close()
