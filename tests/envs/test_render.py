"""render_mode="ansi": the text view matches the env's counters, waiting job and busiest nodes."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from envs.edge_split import EdgeSplitEnv
from envs.render import NODE_ROWS, busiest_nodes


def _stepped(scenario: str, steps: int) -> tuple[EdgeSplitEnv, dict]:
    env = EdgeSplitEnv(scenario, render_mode="ansi")
    env.reset(seed=3)
    rng = np.random.default_rng(3)
    info = {}
    for _ in range(steps):
        *_, truncated, info = env.step(env.actions.sample_valid(env.action_masks(), rng))
        assert not truncated
    return env, info


@pytest.mark.parametrize("scenario, steps", [("splitplace", 60), ("large", 200)])
def test_text_view_shows_counters_waiting_job_and_busiest_nodes(scenario, steps):
    env, info = _stepped(scenario, steps)
    lines = env.render().splitlines()
    for counter in ("arrived", "finished", "failed", "in_flight"):
        assert f"{counter.replace('_', ' ')} {info[counter]} " in lines[0] + " "
    job = env.job
    assert f"job {job.job_id}, app {job.app}, {job.items} items" in lines[1]
    resolved = info["jobs_finished"] + info["jobs_failed"]
    assert lines[2] == (f"last step: {resolved} resolved, {info['jobs_met_deadline']} met the deadline, "
                        f"{info['jobs_failed']} failed")
    rows = [line.split() for line in lines[4: 4 + NODE_ROWS] if line.split()[0].isdigit()]
    queued = env.snapshot.queued_work_s
    listed = [int(row[0]) for row in rows]
    assert listed == busiest_nodes(queued)
    assert len(listed) == min(NODE_ROWS, env.actions.node_count)
    assert [float(row[3]) for row in rows] == pytest.approx(np.round(queued[listed], 1).tolist())
    assert sorted(queued[listed], reverse=True) == queued[listed].tolist()
    assert queued[listed].min() >= np.delete(queued, listed).max(initial=0.0)
    assert (f"of {env.actions.node_count} nodes" in lines[-1]) == (env.actions.node_count > NODE_ROWS)


def test_render_modes():
    with pytest.raises(ValueError, match="render_mode.*'human'.*allowed.*ansi"):
        EdgeSplitEnv("splitplace", render_mode="human")
    env = EdgeSplitEnv("splitplace")
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None
    made = gymnasium.make("EdgeSplit-v0", scenario="mdi-jetson", render_mode="ansi")
    check_env(made.unwrapped)  # includes Gymnasium's render checks for the declared modes
    made.reset(seed=0)
    assert made.render().startswith("EdgeSplit mdi-jetson  t=")
