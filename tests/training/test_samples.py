import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.training.samples import SampleLedger, apportion, sample_count, split_ranges


@given(st.integers(0, 500), st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 10.0)), min_size=1, max_size=6)
       .filter(lambda w: sum(w) > 0))
def test_apportion_sums_to_total_and_skips_zero_weights(total, weights):
    counts = apportion(total, weights)
    assert sum(counts) == total
    assert all(count == 0 for count, weight in zip(counts, weights) if weight == 0)


@settings(max_examples=60)
@given(st.integers(0, 9), st.lists(st.floats(0.1, 5.0), min_size=1, max_size=3))
def test_apportion_gives_the_least_makespan(total, rates):
    best = min(max(c / r for c, r in zip(counts, rates))
               for counts in itertools.product(range(total + 1), repeat=len(rates)) if sum(counts) == total)
    counts = apportion(total, rates)
    assert max(c / r for c, r in zip(counts, rates)) == pytest.approx(best)


def test_apportion_rejects_bad_weights():
    with pytest.raises(ValueError, match="weights"):
        apportion(10, [0.0, 0.0])


def test_split_ranges_cuts_consecutive_samples():
    pieces = split_ranges([(0, 3), (10, 14)], [2, 4, 1])
    assert pieces == [[(0, 2)], [(2, 3), (10, 13)], [(13, 14)]]
    assert [sample_count(piece) for piece in pieces] == [2, 4, 1]
    with pytest.raises(ValueError, match="add up"):
        split_ranges([(0, 3)], [1, 1])


def test_ledger_counts_each_sample():
    ledger = SampleLedger(epochs=2, samples=4)
    ledger.commit(0, [(0, 4)])
    ledger.commit(1, [(0, 2), (2, 4)])
    assert ledger.exactly_once() and ledger.processed_samples == 8
    ledger.commit(1, [(3, 4)])
    assert not ledger.exactly_once() and not ledger.at_most_once()
