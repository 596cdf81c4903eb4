"""The reproduce command line: names, --all, overrides anywhere, clear config errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import reproduce  # noqa: E402

from agents.config import ConfigError  # noqa: E402
from reproductions.common import ReproductionConfig, load_reproduction_config, summarise  # noqa: E402
from reproductions.registry import REPRODUCTIONS, reproduction  # noqa: E402


def test_every_registered_reproduction_has_a_config_and_a_module():
    for entry in REPRODUCTIONS.values():
        module = entry.load_module()
        assert entry.config_path.is_file()
        assert issubclass(module.CONFIG, ReproductionConfig)
        load_reproduction_config(module.CONFIG, entry.config_path)  # the shipped full config validates
        load_reproduction_config(module.CONFIG, entry.config_path, quick=True)


def test_unknown_name_lists_the_allowed_ones():
    with pytest.raises(KeyError, match="allowed"):
        reproduction("nope")
    with pytest.raises(SystemExit):
        reproduce.main(["nope"])


def test_name_and_all_are_exclusive():
    with pytest.raises(SystemExit):
        reproduce.main(["paradis", "--all"])
    with pytest.raises(SystemExit):
        reproduce.main([])


def test_overrides_may_follow_the_options(tmp_path):
    [folder] = reproduce.main(["paradis", "--quick", "--output", str(tmp_path), "seeds=[3,4]"])
    assert (folder / "paradis.md").is_file()
    assert "3" in (folder / "paradis_seeds.csv").read_text()


def test_a_full_run_needs_five_seeds_and_a_bad_key_is_named(tmp_path):
    entry = reproduction("paradis")
    module = entry.load_module()
    with pytest.raises(ConfigError, match="at least 5 seeds"):
        load_reproduction_config(module.CONFIG, entry.config_path, overrides=["seeds=[1,2]"])
    with pytest.raises(ConfigError, match="not_a_key"):
        load_reproduction_config(module.CONFIG, entry.config_path, overrides=["not_a_key=1"])


def test_a_config_file_that_does_not_validate_as_yaml_exits_naming_it(tmp_path):
    path = tmp_path / "paradis.yaml"
    path.write_text("seeds: [1, 2\n")
    with pytest.raises(SystemExit, match=f"config file {path} is not valid YAML"):
        reproduce.main(["paradis", "--config", str(path), "--output", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_summarise_gives_mean_and_t_interval_per_group():
    rows = [{"m": "a", "x": v} for v in (1.0, 2.0, 3.0)] + [{"m": "b", "x": 5.0}]
    summary = summarise(rows, ["m"], ["x"])
    assert [row["m"] for row in summary] == ["a", "b"]
    assert summary[0]["x"] == pytest.approx(2.0)
    assert summary[0]["x_ci95"] == pytest.approx(4.303 / 3 ** 0.5, rel=1e-3)  # t(0.975, 2) * sd / sqrt(n)
    assert summary[1]["n"] == 1
