"""What the training simulator needs from the network and from failures, and trivial stand-ins.

A *transport* has ``send(sender, receiver, ready_s, transfer_bytes) -> arrival_s``:
:class:`envs.cluster.network.Network` (links following real bandwidth traces,
FIFO link queues) is the real one; :class:`FreeTransport` delivers at once.

A *failure source* has ``first_failure_s(node, start_s, end_s)`` (``math.inf``
if the node stays up in ``[start_s, end_s)``):
:class:`envs.cluster.failures.FailureProcess` (MTBF/MTTR) is one;
:class:`InjectedFailures` fails given nodes at given times.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Protocol


class Transport(Protocol):
    def send(self, sender: int, receiver: int, ready_s: float, transfer_bytes: float) -> float: ...


class FailureSource(Protocol):
    def first_failure_s(self, node: int, start_s: float, end_s: float) -> float: ...


class FreeTransport:
    """A network that costs nothing: data arrives when it is ready."""

    def send(self, sender: int, receiver: int, ready_s: float, transfer_bytes: float) -> float:
        return ready_s


class InjectedFailures:
    """Node ``n`` goes down at ``failure_s[n]`` and stays down; other nodes never fail."""

    def __init__(self, failure_s: Mapping[int, float] | None = None):
        self.failure_s = dict(failure_s or {})

    def first_failure_s(self, node: int, start_s: float, end_s: float) -> float:
        time_s = self.failure_s.get(node, math.inf)
        if time_s <= start_s:
            return start_s
        return time_s if time_s < end_s else math.inf


NO_FAILURES = InjectedFailures()
"""A failure source under which no node ever fails."""
