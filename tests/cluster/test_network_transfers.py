"""Transfers over traced links follow the trace step after step (checked against a plain step walk)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from envs.cluster.network import MEGABITS_PER_BYTE, Network
from envs.cluster.traces import BandwidthTrace
from envs.sim.types import LinkConfig

STEP_S = 1.0


def _trace(rates_mbps: list[float]) -> BandwidthTrace:
    return BandwidthTrace(name="t", split="train", times_s=np.arange(len(rates_mbps)) * STEP_S,
                          bandwidth_mbps=np.array(rates_mbps, dtype=float))


def _walk_s(network: Network, link: int, start_s: float, megabits: float) -> float:
    """When link ``link`` (of ``bandwidth_mbps``'s columns) has carried ``megabits`` from ``start_s``: step by step."""
    time_s, left = start_s, megabits
    while True:
        rate = float(network.bandwidth_mbps(time_s)[link])
        step_end_s = (int(time_s / STEP_S) + 1) * STEP_S
        if rate * (step_end_s - time_s) >= left:
            return time_s + left / rate
        left -= rate * (step_end_s - time_s)
        time_s = step_end_s


def _opens_walk_s(network: Network, link: int, start_s: float) -> float:
    """When link ``link`` first has a non-zero rate at or after ``start_s``: step by step."""
    time_s = start_s
    while float(network.bandwidth_mbps(time_s)[link]) == 0.0:
        time_s = (int(time_s / STEP_S) + 1) * STEP_S
    return time_s


rates = st.lists(st.sampled_from([0.0, 0.5, 2.0, 8.0, 40.0]), min_size=2, max_size=12).filter(lambda r: any(r))


@settings(max_examples=150, deadline=None)
@given(up=rates, down=rates, seed=st.integers(0, 1000), start_s=st.floats(0.0, 50.0),
       transfer_bytes=st.floats(1.0, 3e7))
@example(up=[0.0, 0.5], down=[0.0, 0.5], seed=0, start_s=2.999999999999993, transfer_bytes=1.0)  # starts a sliver
# before a step edge: the uplink carries a little, then stalls; the downlink finishes before the uplink
def test_a_transfer_is_carried_at_each_steps_rate(up, down, seed, start_s, transfer_bytes):
    network = Network([LinkConfig(_trace(up), _trace(up)), LinkConfig(_trace(down), _trace(down))], step_s=STEP_S)
    network.reset(np.random.default_rng(seed))
    megabits = transfer_bytes * MEGABITS_PER_BYTE
    arrival_s = network.send(0, 1, start_s, transfer_bytes)
    up_end_s = _walk_s(network, 0, start_s, megabits)  # node 0's uplink
    first_data_s = _opens_walk_s(network, 0, start_s)  # the downlink starts once the uplink carries data
    down_end_s = _walk_s(network, 3, first_data_s, megabits)  # node 1's downlink
    assert network.uplink_busy_until_s[0] == pytest.approx(up_end_s, rel=1e-9, abs=1e-6)
    assert network.downlink_busy_until_s[1] == pytest.approx(down_end_s, rel=1e-9, abs=1e-6)
    assert arrival_s == pytest.approx(max(up_end_s, down_end_s), rel=1e-9, abs=1e-6)


def test_a_long_transfer_speeds_up_when_the_trace_recovers():
    # node 0's uplink: 0.1 Mbit/s for one step, then 100 Mbit/s; 10 MB must not crawl at the first step's rate
    slow_then_fast, fast = _trace([0.1, 100.0, 100.0, 100.0]), _trace([1000.0, 1000.0])
    network = Network([LinkConfig(slow_then_fast, fast), LinkConfig(fast, fast)], step_s=STEP_S)
    network.reset(np.random.default_rng(0))
    slow_step = next(t for t in range(4) if network.bandwidth_mbps(t)[0] == pytest.approx(0.1))
    arrival_s = network.send(0, 1, float(slow_step), 10_000_000)
    assert arrival_s == pytest.approx(slow_step + 1.0 + (80.0 - 0.1) / 100.0)
