"""Bandwidth traces: loading rules, wrap-around lookup, scaling and errors."""

import numpy as np
import pytest

from envs.cluster.traces import TRACE_DIR, BandwidthTrace, list_traces, load_trace

# A raw Norway log and an FCC file from train/, an FCC file and a cooked Norway file from test/.
REAL_FILES = [
    ("train", "bus.ljansbakken-oslo-report.2010-09-28_1407CEST.log"),
    ("train", "trace_10322_http---edition.cnn.com"),
    ("test", "trace_397686_http---www.facebook.com"),
    ("test", "norway_bus_1"),
]


def test_list_traces_is_sorted_and_covers_both_splits():
    train, test = list_traces("train"), list_traces("test")
    assert train == sorted(train) and test == sorted(test)
    assert len(train) == 108 and len(test) == 161
    assert not set(train) & set(test)


@pytest.mark.parametrize("split, name", REAL_FILES)
def test_loader_matches_numpy_on_the_raw_columns(split, name):
    raw = np.loadtxt(TRACE_DIR / split / name)
    trace = load_trace(name, split)
    assert trace.bandwidth_mbps.dtype == np.float64
    np.testing.assert_array_equal(trace.bandwidth_mbps, raw[:, 1])
    assert trace.bandwidth_mbps.mean() == pytest.approx(raw[:, 1].mean(), rel=1e-12)
    np.testing.assert_allclose(trace.times_s, raw[:, 0] - raw[0, 0])


def test_zero_samples_of_fcc_traces_are_kept():
    trace = load_trace("trace_397686_http---www.facebook.com", "test")
    zero_times = trace.times_s[trace.bandwidth_mbps == 0]
    assert zero_times.size > 0
    assert trace.bandwidth_at(zero_times[0]) == 0.0


def test_returned_arrays_are_read_only_and_cached():
    first = load_trace("norway_bus_1", "test")
    with pytest.raises(ValueError):
        first.bandwidth_mbps[0] = 123.0
    with pytest.raises(ValueError):
        first.times_s[0] = 1.0
    second = load_trace("norway_bus_1", "test")
    assert second.bandwidth_mbps is first.bandwidth_mbps
    assert second.bandwidth_mbps[0] != 123.0


def test_bandwidth_is_piecewise_constant_and_wraps_around():
    trace = load_trace("norway_ferry_2", "test")
    times, values = trace.times_s, trace.bandwidth_mbps
    for index in (0, 1, len(times) // 2, len(times) - 1):
        assert trace.bandwidth_at(times[index]) == values[index]
    middle = 0.5 * (times[3] + times[4])
    assert trace.bandwidth_at(middle) == values[3]
    assert trace.duration_s == pytest.approx(times[-1] + (times[-1] - times[-2]))
    assert trace.bandwidth_at(trace.duration_s - 1e-9) == values[-1]
    for laps in (1, 3, 17):
        assert trace.bandwidth_at(middle + laps * trace.duration_s) == values[3]
    assert trace.bandwidth_at(trace.duration_s) == values[0]


def test_scaled_multiplies_bandwidth_only():
    trace = load_trace("norway_tram_13", "test")
    faster = trace.scaled(25.0)
    assert faster.name != trace.name and faster.split == trace.split
    np.testing.assert_array_equal(faster.times_s, trace.times_s)
    for time_s in (0.0, 7.3, 1000.0):
        assert faster.bandwidth_at(time_s) == pytest.approx(25.0 * trace.bandwidth_at(time_s))
    assert not faster.bandwidth_mbps.flags.writeable
    for bad in (0.0, -2.0, float("nan")):
        with pytest.raises(ValueError, match="factor"):
            trace.scaled(bad)


def test_negative_time_is_rejected():
    with pytest.raises(ValueError, match="time_s"):
        load_trace("norway_bus_1", "test").bandwidth_at(-1.0)


def test_unknown_split_and_name_list_what_is_allowed():
    with pytest.raises(ValueError, match=r"allowed: \['train', 'test'\]"):
        list_traces("validation")
    with pytest.raises(ValueError, match="norway_bus_1"):
        load_trace("no_such_trace", "test")


def _write_split(tmp_path, name, text):
    folder = tmp_path / "train"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return tmp_path


def test_blank_lines_and_comments_are_skipped_and_times_shifted(tmp_path):
    directory = _write_split(tmp_path, "odd", "# header\n\n10.0 1.5\n\n11.0 2.5\n12.5 0.0\n")
    trace = load_trace("odd", "train", directory)
    np.testing.assert_array_equal(trace.times_s, [0.0, 1.0, 2.5])
    np.testing.assert_array_equal(trace.bandwidth_mbps, [1.5, 2.5, 0.0])


@pytest.mark.parametrize(
    "text, message",
    [
        ("0 1\n2 1\n1 1\n", "increase strictly"),
        ("0 1\n1 1\n1 2\n", "increase strictly"),
        ("0 1\n1 -3\n", ">= 0"),
        ("0 1\n1 nan\n", ">= 0"),
        ("0 1\n", "at least 2 samples"),
        ("0 1 5\n1 2 6\n", "2 columns"),
    ],
)
def test_malformed_files_are_rejected_with_the_file_named(tmp_path, text, message):
    directory = _write_split(tmp_path, "bad", text)
    with pytest.raises(ValueError, match=message) as caught:
        load_trace("bad", "train", directory)
    assert "bad" in str(caught.value)


def test_hand_built_trace_is_validated_and_frozen():
    trace = BandwidthTrace("manual", "train", np.array([0.0, 2.0]), np.array([1.0, 3.0]))
    assert trace.duration_s == 4.0
    assert trace.bandwidth_at(5.0) == 1.0
    with pytest.raises(ValueError, match="equal length"):
        BandwidthTrace("manual", "train", np.array([0.0, 1.0]), np.array([1.0]))


def test_trace_kinds_split_the_names_and_both_splits_hold_both_kinds():
    for split in ("train", "test"):
        fcc = list_traces(split, kinds=["fcc"])
        hsdpa = list_traces(split, kinds=["hsdpa"])
        assert fcc and hsdpa
        assert sorted(fcc + hsdpa) == list_traces(split)
        assert all(name.startswith("trace_") for name in fcc)
    with pytest.raises(ValueError, match="allowed"):
        list_traces("train", kinds=["lte"])
