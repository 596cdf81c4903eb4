"""render modes: the text view matches the env's counters, waiting job and busiest nodes; the image is an RGB
frame of the documented size that follows the state."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from envs.edge_split import EdgeSplitEnv
from envs.render import IMAGE_SIZE_PX, NODE_ROWS, busiest_nodes


def _stepped(scenario: str, steps: int, render_mode: str = "ansi") -> tuple[EdgeSplitEnv, dict]:
    env = EdgeSplitEnv(scenario, render_mode=render_mode)
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


def test_image_is_an_rgb_frame_that_follows_the_state():
    env, _ = _stepped("mdi-jetson", 5, render_mode="rgb_array")
    first = env.render()
    width, height = IMAGE_SIZE_PX
    assert first.shape == (height, width, 3) and first.dtype == np.uint8
    assert len(np.unique(first.reshape(-1, 3), axis=0)) > 10  # bars, text and axes, not a blank frame
    rng = np.random.default_rng(0)
    for _ in range(20):
        env.step(env.actions.sample_valid(env.action_masks(), rng))
    assert not np.array_equal(env.render(), first)


def test_render_modes():
    with pytest.raises(ValueError, match="render_mode.*'human'.*allowed.*ansi.*rgb_array"):
        EdgeSplitEnv("splitplace", render_mode="human")
    env = EdgeSplitEnv("splitplace")
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None
    for mode in ("ansi", "rgb_array"):
        check_env(gymnasium.make("EdgeSplit-v0", scenario="mdi-jetson", render_mode=mode).unwrapped)
    made = gymnasium.make("EdgeSplit-v0", scenario="mdi-jetson", render_mode="ansi")
    made.reset(seed=0)
    assert made.render().startswith("EdgeSplit mdi-jetson  t=")
