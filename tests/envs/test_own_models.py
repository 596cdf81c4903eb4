"""A model of one's own (profile + accuracy in a folder named by EDGESPLIT_PROFILE_PATH) serves a scenario."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from envs.dnn.profile_io import PROFILE_PATH_VARIABLE, save_profile
from envs.dnn.profiler import profile_module
from envs.edge_split import EdgeSplitEnv
from envs.scenarios import model_plans

APP = {"name": "tiny", "model": "tinynet", "weight": 1.0, "deadline_min_s": 1.0, "deadline_max_s": 5.0, "items": 4}


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                                      nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


@pytest.fixture
def own_models(tmp_path, monkeypatch):
    """A profile folder with ``tinynet`` (its layer graph and a minimal accuracy profile), on the search path."""
    save_profile(profile_module(TinyNet(), torch.randn(1, 3, 16, 16), name="tinynet", repeats=3),
                 tmp_path / "models" / "tinynet.json")
    accuracy = {"schema_version": 1, "model": "tinynet", "full": 0.7, "semantic": {}, "width_switches": {},
                "compression": {}, "compressed_model": None, "early_exit": None,
                "sources": {"full": "made up for a test"}}
    (tmp_path / "accuracy").mkdir()
    (tmp_path / "accuracy" / "tinynet.json").write_text(json.dumps(accuracy))
    monkeypatch.setenv(PROFILE_PATH_VARIABLE, str(tmp_path))
    yield tmp_path
    model_plans.cache_clear()  # plans are cached by model name


def test_a_scenario_runs_a_model_from_the_profile_path(own_models):
    env = EdgeSplitEnv("mdi-jetson", {"apps": [APP], "horizon_s": 600.0})
    env.reset(seed=0)
    families = {plan.family for plan in env.plans()}
    assert families == {"none", "layer"}  # no semantic, exit, width or compressed figures in its profile
    assert {plan.model for plan in env.plans()} == {"tinynet"}
    rng = np.random.default_rng(0)
    finished = []
    for _ in range(60):
        *_, truncated, _ = env.step(env.actions.sample_valid(env.action_masks(), rng))
        finished += [outcome for outcome in env.last_outcomes if outcome.finished]
        if truncated:
            break
    assert finished and all(outcome.app == "tiny" and outcome.accuracy == 0.7 for outcome in finished)


def test_without_the_path_the_model_is_unknown_and_a_bad_path_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv(PROFILE_PATH_VARIABLE, raising=False)
    with pytest.raises(ValueError, match="tinynet"):
        EdgeSplitEnv("mdi-jetson", {"apps": [APP]})
    monkeypatch.setenv(PROFILE_PATH_VARIABLE, str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match=f"{PROFILE_PATH_VARIABLE}.*nowhere"):
        EdgeSplitEnv("mdi-jetson", {"apps": [APP]})
