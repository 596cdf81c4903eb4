"""scripts/train.py and scripts/evaluate.py end to end on a tiny experiment (tmp dirs, W&B offline)."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import evaluate  # noqa: E402
import train  # noqa: E402

from agents.wandb_logging import offline_run_folders, read_offline_run  # noqa: E402


def _experiment(tmp_path: Path) -> Path:
    config = {
        "name": "tiny",
        "output_dir": str(tmp_path / "out"),
        "env": {"scenario": "splitplace", "config": {"horizon_s": 3 * 3600.0}},
        "agents": [{"label": "eg", "name": "bandit", "train_steps": 40}, "random"],
        "train": {"seed": 0, "checkpoint_every_steps": 20, "eval_every_steps": 20, "eval_episodes": 1,
                  "progress_bar": False},
        "evaluation": {"seeds": [1000, 1001], "scenario_overrides": {"trace_split": "test"}},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_train_resume_evaluate_and_log_offline(tmp_path, monkeypatch, capsys):
    for variable in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    path = _experiment(tmp_path)
    out = tmp_path / "out"

    train.main(["--config", str(path)])
    assert json.loads((out / "eg" / "latest.json").read_text())["step"] == 40
    assert (out / "eg" / "checkpoints" / "step-000000020" / "agent_state.json").exists()

    train.main(["--config", str(path), "--resume", "agents.0.train_steps=60"])
    assert "resuming from step 40" in capsys.readouterr().out
    assert json.loads((out / "eg" / "latest.json").read_text())["step"] == 60

    rows = evaluate.main(["--config", str(path)])
    assert [row["agent"] for row in rows] == ["eg", "random"]
    with open(out / "evaluation.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [row["agent"] for row in table] == ["eg", "random"]
    assert float(table[0]["average_reward"]) > float(table[1]["average_reward"])
    assert "±" in (out / "evaluation.md").read_text()
    assert (out / "evaluation.png").read_bytes().startswith(b"\x89PNG")
    with open(out / "episodes.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 4  # two agents x two seeds

    runs = [read_offline_run(folder) for folder in offline_run_folders(out)]
    assert len(runs) == 3  # train, resumed train, evaluation
    assert all(run.config["name"] == "tiny" for run in runs)
    trained = [run for run in runs if any("train/average_reward" in row for row in run.history)]
    assert len(trained) == 2
    assert all(any("train/reward_sla" in row for row in run.history) for run in trained)
    episode_rows = [row for run in trained for row in run.history if "train/average_reward" in row]
    assert all(row["train/steps_per_s"] > 0 for row in episode_rows)
    assert any(any("validation/average_reward" in row for row in run.history) for run in trained)
    assert sum("evaluation/eg/average_reward" in run.summary for run in runs) == 1
    assert sum(run.summary.get("evaluation_figure/_type") == "image-file" for run in runs) == 1


@pytest.mark.parametrize("script", [train, evaluate])
@pytest.mark.parametrize("make_arguments, message", [
    (lambda config: ["--config", str(config), "--agent", "nosuch"], "no agent labelled 'nosuch'"),
    (lambda config: ["--config", str(config), "train.seed=minus_one"], r"train\.seed"),
    (lambda config: ["--config", str(config.with_name("missing.yaml"))], "missing.yaml not found"),
])
def test_scripts_refuse_bad_input_with_a_usage_error_before_writing(script, make_arguments, message, tmp_path,
                                                                    capsys):
    """A missing config, a bad override or an unknown --agent label: exit status 2 and a one-line error
    naming it (argparse's), nothing written to the output folder."""
    config = _experiment(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        script.main(make_arguments(config))
    assert stopped.value.code == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_train_says_when_no_agent_trains(tmp_path, capsys):
    path = tmp_path / "heuristics.yaml"
    path.write_text(yaml.safe_dump({"name": "h", "output_dir": str(tmp_path / "out"), "agents": ["layer_only"],
                                    "wandb": {"mode": "disabled"}}))
    train.main(["--config", str(path)])
    assert "nothing to train" in capsys.readouterr().out
    assert not (tmp_path / "out" / "layer_only").exists()
