"""Time-series data: the .ts parser (UCR/UEA format) and the procedural factor dataset."""

from __future__ import annotations

import math

import numpy as np
import pytest

from disentangle.data import get_dataset
from disentangle.data.timeseries import (
    TimeSeriesFactors,
    equalise_lengths,
    fill_missing,
    parse_ts,
    resolve_ts,
)
from disentangle.errors import DataError

HEADER = """# a comment line
% another comment
@problemName Toy
@timeStamps false
@Missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true up down
@data
"""
CASES = """1,2,3,4:10,20,30,40:up
5,?,7:50,60,70:down

1.5,2.5:?,4:up
"""


def write(tmp_path, text, name="Toy_TRAIN.ts"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_parse_multivariate_unequal_missing(tmp_path):
    ts = parse_ts(write(tmp_path, HEADER + CASES))
    assert ts.problem_name == "Toy"
    assert ts.labels == ["up", "down", "up"]
    assert ts.class_labels == ("up", "down")
    assert [s.shape for s in ts.series] == [(4, 2), (3, 2), (2, 2)]
    np.testing.assert_array_equal(ts.series[0][:, 1], [10, 20, 30, 40])
    assert np.isnan(ts.series[1][1, 0]) and np.isnan(ts.series[2][0, 1])
    assert ts.series[1][2, 0] == 7
    assert ts.lines == [11, 12, 14]  # file lines of the cases (blank line skipped)


def test_missing_and_length_policies(tmp_path):
    path = write(tmp_path, HEADER + CASES)
    x = fill_missing(parse_ts(path).series[1], "interpolate")
    np.testing.assert_allclose(x[:, 0], [5, 6, 7])  # linear between neighbours
    x = fill_missing(parse_ts(path).series[2], "interpolate")
    np.testing.assert_allclose(x[:, 1], [4, 4])  # held constant beyond the ends
    with pytest.raises(DataError, match="missing value at time 1, channel 0"):
        fill_missing(parse_ts(path).series[1], "error", "here")

    series = [np.arange(4.0)[:, None], np.array([[1.0], [3.0]])]
    padded = equalise_lengths(series, "pad")
    np.testing.assert_array_equal(padded[1, :, 0], [1, 3, 3, 3])  # last value repeated
    resampled = equalise_lengths(series, "resample", target_length=3)
    np.testing.assert_allclose(resampled[:, :, 0], [[0, 1.5, 3], [1, 2, 3]])
    with pytest.raises(DataError, match=r"Toy_TRAIN.ts:12: series length 3 differs"):
        get_dataset(f"ucr:{path}", missing="interpolate")


def test_ucr_dataset_from_file(tmp_path):
    path = write(tmp_path, HEADER + CASES)
    ds = get_dataset(f"ucr:{path}", missing="interpolate", length="pad")
    assert ds.observation_shape == (4, 2) and len(ds) == 3
    assert ds.factor_names == ("label",) and ds.factor_sizes == (2,)
    np.testing.assert_array_equal(ds.factors[:, 0], [0, 1, 0])  # header order up, down
    np.testing.assert_allclose(ds.images[2, :, 0], [1.5, 2.5, 2.5, 2.5])
    # the folder form finds NAME_TRAIN.ts / NAME_TEST.ts
    assert resolve_ts(str(tmp_path), "train") == path
    with pytest.raises(DataError, match="no .*_TEST.ts"):
        resolve_ts(str(tmp_path), "test")
    norm = get_dataset(f"ucr:{path}", missing="zero", length="pad", normalize="series")
    np.testing.assert_allclose(norm.images.mean(1), 0, atol=1e-6)
    np.testing.assert_allclose(norm.images.std(1), 1, atol=1e-5)


def test_channel_normalisation_uses_train_statistics(tmp_path):
    head = "@problemName Toy\n@dimensions 2\n@classLabel true a b\n@data\n"
    write(tmp_path, head + "1,3:10,10:a\n1,3:30,30:b\n", "Toy_TRAIN.ts")
    write(tmp_path, head + "2,2,2:20,20,20:a\n", "Toy_TEST.ts")
    train = get_dataset(f"ucr:{tmp_path}", normalize="channel")
    test = get_dataset(f"ucr:{tmp_path}", split="test", normalize="channel")
    # train channel means (2, 20), stds (1, 10): the test series maps to 0 in both channels
    np.testing.assert_allclose(train.images[:, :, 1], [[-1, -1], [1, 1]], atol=1e-6)
    np.testing.assert_allclose(test.images, 0.0, atol=1e-6)


def test_timestamped_values(tmp_path):
    text = ("@problemName T\n@timeStamps true\n@univariate true\n@classLabel true a b\n@data\n"
            "(2007-01-01 00:00:00,1.5),(2007-01-01 00:01:00,2.5):a\n"
            "(2007-01-01 00:00:00,3),(2007-01-01 00:01:00,?):b\n")
    ts = parse_ts(write(tmp_path, text))
    np.testing.assert_array_equal(ts.series[0][:, 0], [1.5, 2.5])
    assert np.isnan(ts.series[1][1, 0]) and ts.labels == ["a", "b"]


@pytest.mark.parametrize("text, message", [
    ("@problemName X\n@bogus 3\n@data\n1,2:a\n", r":2: unknown header @bogus"),
    ("@problemName X\n@univariate maybe\n@data\n", r":2: @univariate must be true or false"),
    ("@problemName X\n1,2,3\n@data\n", r":2: data line before the @data header"),
    ("@problemName X\n@classLabel true a b\n@data\n1,2:c\n", r":4: class label 'c' is not"),
    ("@problemName X\n@univariate true\n@classLabel true a\n@data\n1,2:3,4:a\n",
     r":5: 2 dimensions in a file declared @univariate true"),
    ("@problemName X\n@classLabel true a\n@data\n1,2:a\n1:2:a\n", r":5: 2 dimensions, earlier"),
    ("@problemName X\n@equalLength true\n@classLabel true a\n@data\n1,2:a\n1,2,3:a\n",
     r":6: series length 3 differs from 2"),
    ("@problemName X\n@missing false\n@classLabel true a\n@data\n1,?:a\n", r":5: missing value"),
    ("@problemName X\n@classLabel true a\n@data\n1,x2:a\n", r":4: value 1 of dimension 0 is 'x2'"),
    ("@problemName X\n@classLabel true a\n", r"no @data line"),
    ("@data\n1,2\n", r":1: @data before @problemName"),
    ("@problemName X\n@seriesLength many\n@data\n", r":2: @serieslength must be a positive"),
])
def test_bad_files_name_file_and_line(tmp_path, text, message):
    path = write(tmp_path, text, "Bad_TRAIN.ts")
    with pytest.raises(DataError, match=message) as err:
        parse_ts(path)
    assert "Bad_TRAIN.ts" in str(err.value)


def test_unknown_problem_says_how_to_prepare():
    with pytest.raises(DataError, match="DISENTANGLE_UCR_DIR"):
        get_dataset("ucr:NoSuchProblemXYZ")


# ----------------------------------------------------------------------------- procedural
ROWS = 224  # one batch shape for every render below: one compilation


def render(ds, factors):
    """Observations of ``factors`` rendered in a padded batch of ROWS rows."""
    factors = np.asarray(factors)
    padded = np.zeros((ROWS, factors.shape[1]), np.int64)
    padded[: len(factors)] = factors
    return ds.sample_observations_from_factors(padded)[: len(factors)]


def test_ts_factors_analytic_values():
    ds = TimeSeriesFactors()
    t = np.arange(64)
    # sine, 1 cycle, amplitude 1, no trend, no noise: x = sin(2 pi t / 64)
    x = render(ds, np.array([[0, 0, 3, 2, 0]]))[0, :, 0]
    np.testing.assert_allclose(x, np.sin(2 * math.pi * t / 64), atol=1e-5)
    # changing only the trend (index 2 -> 4, slope 0 -> 1) adds t/(T-1) - 1/2
    both = render(ds, np.array([[1, 2, 1, 2, 0], [1, 2, 1, 4, 0]]))
    np.testing.assert_allclose(both[1, :, 0] - both[0, :, 0], t / 63 - 0.5, atol=1e-5)
    # triangle wave of amplitude 0.5 reaches +-0.5
    tri = render(ds, np.array([[2, 0, 1, 2, 0]]))[0, :, 0]
    assert abs(tri.max() - 0.5) < 1e-5 and abs(tri.min() + 0.5) < 1e-5


def test_ts_factors_each_factor_changes_the_series():
    ds = TimeSeriesFactors()
    rng = np.random.default_rng(0)
    base = ds.sample_factors(32, rng)
    moved = []
    for k, size in enumerate(ds.factor_sizes):
        m = base.copy()
        m[:, k] = (m[:, k] + 1 + rng.integers(0, size - 1, 32)) % size
        moved.append(m)
    x = render(ds, np.concatenate([base, *moved])).reshape(6, 32, 64)
    np.testing.assert_array_equal(x[0], render(ds, base)[..., 0])  # deterministic
    for k in range(5):
        diff = np.abs(x[k + 1] - x[0]).max(axis=1)
        assert (diff > 0.05).all(), (ds.factor_names[k], diff.min())
    # noise std 0.25 vs 0: the difference is 0.25 * N(0, 1) noise
    f = np.array([[0, 1, 1, 2, 0], [0, 1, 1, 2, 2]])
    noise = np.diff(render(ds, f), axis=0).ravel()
    assert 0.17 < noise.std() < 0.33
    assert sorted(i for g in ds.factor_groups.values() for i in g) == list(range(5))
