"""Observation layout and units, action masks and the random valid action sampler."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chisquare

from envs.dnn.plan import FAMILIES
from envs.edge_split import EdgeSplitEnv
from envs.observation import KEYED_SAMPLING_MAX_ENTRIES, NODE_FEATURES

SHORT = {"horizon_s": 6 * 3600.0}


def test_observation_node_blocks_are_the_snapshot_in_documented_units():
    env = EdgeSplitEnv("mobile-edge")
    observation, _ = env.reset(seed=0)
    scales = env.scenario.observation
    largest_memory = max(node.device.usable_memory_bytes for node in env.scenario.simulator.nodes)
    unit = {"queued_work": ("queued_work_s", scales.time_scale_s),
            "uplink_backlog": ("uplink_backlog_s", scales.time_scale_s),
            "downlink_backlog": ("downlink_backlog_s", scales.time_scale_s),
            "uplink": ("uplink_mbps", scales.bandwidth_scale_mbps),
            "downlink": ("downlink_mbps", scales.bandwidth_scale_mbps),
            "free_memory": ("free_memory_bytes", largest_memory),
            "background_utilisation": ("background_utilisation", 1.0),
            "up": ("up", 1.0)}
    assert set(unit) == set(NODE_FEATURES)
    rng = np.random.default_rng(0)
    busy_links = 0
    for _ in range(60):
        snapshot = env.snapshot
        for feature, (field, scale) in unit.items():
            expected = np.minimum(getattr(snapshot, field) / scale, scales.clip)
            np.testing.assert_allclose(observation[env.observations.node_slice(feature)], expected, rtol=1e-6)
        busy_links += int(np.count_nonzero(snapshot.uplink_backlog_s))
        observation, *_ = env.step(env.actions.sample_valid(env.action_masks(), rng))
    assert busy_links > 0  # the backlog blocks were exercised


@pytest.mark.parametrize("scenario", ["splitplace", "mobile-edge", "large"])
def test_mask_of_a_roomy_cluster_is_the_general_computation(scenario):
    actions = EdgeSplitEnv(scenario).actions
    for app in actions.apps:
        largest = max(f.memory_bytes for plan in actions.plans(app) for f in plan.fragments)
        free = np.full(actions.node_count, float(largest))
        fast = actions.masks(app, free)  # every node up and roomy: the precomputed mask
        general = actions.masks(app, free, np.ones(actions.node_count, dtype=bool))
        assert np.array_equal(fast, general)


def test_masks_follow_free_memory_and_failed_nodes():
    actions = EdgeSplitEnv("splitplace").actions
    app = actions.apps[0]
    need = min(plan.fragments[0].memory_bytes for plan in actions.plans(app))  # slot 0's smallest fragment
    free = np.full(actions.node_count, float(need))
    free[3] = need - 1.0
    up = np.ones(actions.node_count, dtype=bool)
    up[5] = False
    mask = actions.masks(app, free, up)
    head = len(mask) - actions.fragment_slots * actions.node_count
    slot0 = mask[head: head + actions.node_count]
    assert not slot0[3] and not slot0[5] and slot0[[0, 1, 2, 4, 6, 7, 8, 9]].all()


@pytest.mark.parametrize("scenario", ["splitplace", "large"])  # one key per entry / per-dimension draws
def test_random_valid_actions_are_allowed_and_uniform_per_dimension(scenario):
    env = EdgeSplitEnv(scenario, SHORT)
    env.reset(seed=0)
    actions = env.actions
    mask = env.action_masks()
    assert (mask.size > KEYED_SAMPLING_MAX_ENTRIES) == (scenario == "large")
    nodes, head = actions.node_count, len(FAMILIES) + actions.variant_count
    mask[: head] = True
    mask[1] = mask[3] = False  # families 0, 2, 4 allowed
    mask[head: head + nodes] = False
    mask[head + 2] = mask[head + nodes - 1] = True  # slot 0: two nodes
    mask[head + nodes: head + 2 * nodes] = False  # slot 1: nothing allowed -> any node
    refused = nodes // 3
    mask[head + 2 * nodes: head + 3 * nodes] = True
    mask[head + 2 * nodes: head + 2 * nodes + refused] = False  # slot 2: all but the first third
    rng = np.random.default_rng(1)
    draws = np.array([actions.sample_valid(mask, rng) for _ in range(6000)])
    assert set(draws[:, 0]) == {0, 2, 4}
    assert set(draws[:, 2]) == {2, nodes - 1}
    assert draws[:, 4].min() == refused and draws[:, 4].max() == nodes - 1
    for column, allowed in ((0, 3), (2, 2), (4, nodes - refused)):  # uniform over the allowed values
        counts = np.unique(draws[:, column], return_counts=True)[1]
        assert len(counts) == allowed and chisquare(counts).pvalue > 1e-3
    assert len(set(draws[:, 3])) > min(nodes, 50) // 2  # spread over all nodes
    offsets = np.concatenate(([0], np.cumsum(actions.space.nvec)[:-1]))
    keep = [d for d in range(len(offsets)) if d != 3]
    assert mask[(offsets + draws)[:, keep]].all()
