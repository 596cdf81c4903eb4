"""Training samples as index ranges: dividing them among workers and checking that none is lost or doubled.

Samples of an epoch are numbered ``0 .. samples - 1``.  Work is handed out as
half-open ranges ``(start, stop)``; :class:`SampleLedger` records the ranges
whose gradients reached the parameter server, so a test can check that every
sample of every epoch was processed exactly once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Range = tuple[int, int]
"""Half-open range of sample indices ``[start, stop)``."""


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Whole counts summing to ``total``, in proportion to ``weights`` (>= 0, not all 0).

    Minimises ``max_i count_i / weight_i``: each worker first gets
    ``floor(total * w_i / sum w)``, then the few left go one at a time to the worker
    whose ``(count + 1) / weight`` is least.  With ``weights`` = processing rates this
    is the least makespan of ``total`` unit jobs on machines of those rates.
    """
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 1 or len(weights) == 0 or np.any(weights < 0) or not np.all(np.isfinite(weights)) \
            or weights.sum() <= 0:
        raise ValueError(f"weights must be finite, >= 0 and not all 0, got {weights.tolist()}")
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    counts = np.floor(total * weights / weights.sum()).astype(np.int64)
    positive = weights > 0
    for _ in range(total - int(counts.sum())):
        finish = np.where(positive, (counts + 1) / np.where(positive, weights, 1.0), math.inf)
        counts[int(np.argmin(finish))] += 1
    return counts.tolist()


def sample_count(ranges: Sequence[Range]) -> int:
    return sum(stop - start for start, stop in ranges)


def split_ranges(ranges: Sequence[Range], counts: Sequence[int]) -> list[list[Range]]:
    """Cut the consecutive samples of ``ranges`` into pieces of ``counts`` samples (they must add up)."""
    if sum(counts) != sample_count(ranges):
        raise ValueError(f"counts {list(counts)} do not add up to the {sample_count(ranges)} samples of the ranges")
    pieces: list[list[Range]] = []
    queue = [list(r) for r in ranges if r[1] > r[0]]
    for count in counts:
        piece: list[Range] = []
        while count > 0:
            start, stop = queue[0]
            taken = min(count, stop - start)
            piece.append((start, start + taken))
            count -= taken
            if start + taken == stop:
                queue.pop(0)
            else:
                queue[0][0] = start + taken
        pieces.append(piece)
    return pieces


class SampleLedger:
    """How many times each sample of each epoch was processed (gradients that reached the server)."""

    def __init__(self, epochs: int, samples: int):
        self.counts = np.zeros((epochs, samples), dtype=np.int64)

    def commit(self, epoch: int, ranges: Sequence[Range]) -> None:
        for start, stop in ranges:
            self.counts[epoch, start:stop] += 1

    @property
    def processed_samples(self) -> int:
        return int(self.counts.sum())

    def exactly_once(self) -> bool:
        """Every sample of every epoch was processed exactly once."""
        return bool(np.all(self.counts == 1))

    def at_most_once(self) -> bool:
        return bool(np.all(self.counts <= 1))
