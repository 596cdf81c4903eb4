"""An offline W&B run folder holds the logged config and metrics (no network, tmp dirs only)."""

from __future__ import annotations

import pytest

from agents import wandb_logging
from agents.config import config_from_dict


@pytest.fixture
def offline_config(tmp_path, monkeypatch):
    for variable in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    tree = {"name": "wb", "output_dir": str(tmp_path / "run"),
            "agents": [{"label": "eg", "name": "bandit", "params": {"bandit": {"policy": "ucb1"}}}]}
    return config_from_dict(tree)


def test_offline_run_folder_holds_config_metrics_and_table(offline_config):
    run = wandb_logging.start_run(offline_config, job_type="train", name="eg")
    assert run.settings.mode == "offline"
    wandb_logging.log_metrics(run, {"average_reward": 0.61, "violation_rate": 0.2}, "train", step=10)
    wandb_logging.log_metrics(run, {"average_reward": 0.66, "violation_rate": 0.1}, "train", step=20)
    wandb_logging.log_table(run, "evaluation", [{"agent": "eg", "average_reward": 0.64}])
    run.finish()
    folders = wandb_logging.offline_run_folders(offline_config.run_dir)
    assert len(folders) == 1
    logged = wandb_logging.read_offline_run(folders[0])
    assert logged.config["name"] == "wb"
    assert logged.config["agents"][0]["params"]["bandit"]["policy"] == "ucb1"
    rewards = [row["train/average_reward"] for row in logged.history if "train/average_reward" in row]
    assert rewards == [0.61, 0.66]
    assert [row["_step"] for row in logged.history if "train/violation_rate" in row] == [10, 20]
    assert logged.summary["evaluation/eg/average_reward"] == 0.64


def test_disabled_mode_writes_no_run_folder(offline_config):
    config = offline_config.model_copy(update={"wandb": offline_config.wandb.model_copy(update={"mode": "disabled"})})
    run = wandb_logging.start_run(config, job_type="train")
    wandb_logging.log_metrics(run, {"x": 1.0}, "train")
    run.finish()
    assert wandb_logging.offline_run_folders(config.run_dir) == []
