"""The numba-compiled parts give the same trajectories as the same functions run as plain Python.

``NUMBA_DISABLE_JIT=1`` (read when numba is imported, hence a subprocess) runs every compiled function as
ordinary Python: the documented way to debug them.  Comparing the two catches any place where compiled
arithmetic (integer division, modulo, float rounding, searchsorted sides) drifts from Python's.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

CASES = {
    "splitplace": ("splitplace", {}),  # one compiled call per step
    "splitplace-retries": ("splitplace", {"failures": {"enabled": True, "mtbf_s": 300.0, "mttr_s": 30.0,
                                                       "policy": "retry", "max_retries": 2}}),
    "splitplace-failures": ("splitplace", {"failures": {"enabled": True, "mtbf_s": 600.0, "mttr_s": 60.0}}),
    "mdi-jetson": ("mdi-jetson", {}),  # early exits
    "mobile-edge-training": ("mobile-edge-training", {}),  # AR(1) background, training jobs
}
STEPS = 400
REPOSITORY = Path(__file__).resolve().parents[2]


def trajectory_digest(scenario: str, config: dict, steps: int) -> str:
    """Digest of the values (not the types: plain Python gives numpy scalars where compiled code gives Python
    ones) of observations, rewards, infos, outcomes and estimates over ``steps`` random valid steps."""
    import gymnasium as gym

    from envs.registration import scenario_env_id

    env = gym.make(scenario_env_id(scenario), config=config)
    unwrapped = env.unwrapped
    env.reset(seed=1)
    rng = np.random.default_rng(2)
    digest = hashlib.sha256()
    for step in range(steps):
        action = unwrapped.actions.sample_valid(unwrapped.action_masks(), rng)
        plan, placement = unwrapped.decode_action(action)
        if plan is not None and step % 5 == 0:
            digest.update(repr(float(unwrapped.simulator.estimate_completion_s(unwrapped.job, plan,
                                                                                placement))).encode())
        observation, reward, _, truncated, info = env.step(action)
        digest.update(observation.tobytes())
        digest.update(repr((float(reward), sorted((key, float(value)) for key, value in info.items()))).encode())
        for outcome in unwrapped.last_outcomes:
            digest.update(repr([x.item() if isinstance(x, np.generic) else x for x in outcome]).encode())
        if truncated:
            env.reset(seed=step)
    return digest.hexdigest()


@pytest.mark.parametrize("case", sorted(CASES))
def test_compiled_and_plain_python_runs_agree(case):
    scenario, config = CASES[case]
    code = ("import sys; from tests.sim.test_compiled import trajectory_digest; "
            f"print(trajectory_digest({scenario!r}, {config!r}, {STEPS}))")
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPOSITORY,
                           env={**os.environ, "NUMBA_DISABLE_JIT": "1"}).stdout.strip()
    assert trajectory_digest(scenario, config, STEPS) == plain
