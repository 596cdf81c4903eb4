"""Versioned Gymnasium ids of EdgeSplit.

``register_envs()`` (called by ``envs/__init__.py``) registers

* ``EdgeSplit-v0``: the environment; pick a named scenario with ``scenario=...``
  (default ``"splitplace"``), e.g. ``gymnasium.make("EdgeSplit-v0", scenario="large")``;
* ``EdgeSplit-<scenario>-v0``: one id per YAML file in ``envs/scenarios/``;
* ``EdgeModelUpdate-v0``: re-training decisions (``envs/model_update.py``), settings from
  ``envs/update_scenarios/`` (``scenario=...``, default ``"deep-edge"``).

The entry point is a string, so ``gymnasium.make("envs:EdgeSplit-v0")`` works in a
fresh (spawned) process as well.  Registering twice is a no-op.
"""

from __future__ import annotations

import gymnasium

from envs.scenarios import DEFAULT_SCENARIO, list_scenarios

ENTRY_POINT = "envs.edge_split:EdgeSplitEnv"
MODEL_UPDATE_ID = "EdgeModelUpdate-v0"
MODEL_UPDATE_ENTRY_POINT = "envs.model_update:EdgeModelUpdateEnv"
VERSION = 0


def scenario_env_id(scenario: str) -> str:
    """The registered id of a named scenario, e.g. ``"EdgeSplit-splitplace-v0"``."""
    return f"EdgeSplit-{scenario}-v{VERSION}"


def env_ids() -> list[str]:
    """Every id that :func:`register_envs` registers."""
    return [f"EdgeSplit-v{VERSION}"] + [scenario_env_id(name) for name in list_scenarios()]


def register_envs() -> None:
    """Register :func:`env_ids` with Gymnasium (idempotent)."""
    kwargs_by_id = {f"EdgeSplit-v{VERSION}": {"scenario": DEFAULT_SCENARIO}}
    kwargs_by_id.update({scenario_env_id(name): {"scenario": name} for name in list_scenarios()})
    for env_id, kwargs in kwargs_by_id.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=ENTRY_POINT, kwargs=kwargs)
    if MODEL_UPDATE_ID not in gymnasium.registry:
        gymnasium.register(id=MODEL_UPDATE_ID, entry_point=MODEL_UPDATE_ENTRY_POINT)
