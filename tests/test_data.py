"""Datasets: factor grids, every factor changes the image, index round trips, loaders."""

from __future__ import annotations

import numpy as np
import pytest

from disentangle.data import DATASETS, get_dataset
from disentangle.errors import DataError

PROCEDURAL = ["dsprites", "colour_shapes", "colour_scene"]


def test_dsprites_grid_matches_the_published_factors():
    ds = get_dataset("dsprites")
    assert ds.factor_sizes == (3, 6, 40, 32, 32)
    assert ds.factor_names == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert len(ds) == 737_280
    assert ds.observation_shape == (64, 64, 1)
    np.testing.assert_allclose(ds.scales, np.linspace(0.5, 1.0, 6))
    assert np.all(np.diff(ds.orientations) > 0) and ds.orientations[-1] < 2 * np.pi


def test_colour_shapes_has_colour_factors():
    ds = get_dataset("colour_shapes")
    assert {"object_hue", "background_hue", "shape", "scale", "pos_x", "pos_y"} == set(
        ds.factor_names)
    assert ds.observation_shape == (64, 64, 3)


def test_colour_scene_colour_factors_each_move_one_channel_linearly():
    """Wall, floor and ball colour: one step changes only G, B or R respectively, by the
    same amount at every step, and only in the pixels of that region."""
    ds = get_dataset("colour_scene")
    assert ds.observation_shape == (32, 32, 3) and ds.factor_sizes == (8, 8, 8, 6, 8)
    base = np.array([[0, 0, 0, 5, 0]])  # the largest ball, at the left
    ball = (19, 10)  # ball centre: row 0.6 * 32, column 0.32 * 32
    for k, (channel, where) in enumerate([(1, (5, 30)), (2, (30, 30)), (0, ball)]):
        steps = []
        for value in range(8):
            f = base.copy()
            f[0, k] = value
            steps.append(ds.sample_observations_from_factors(f)[0])
        diffs = np.diff(np.stack(steps), axis=0)  # [7, 32, 32, 3]
        others = [c for c in range(3) if c != channel]
        np.testing.assert_allclose(diffs[..., others], 0.0, atol=1e-6)
        pixel = diffs[:, where[0], where[1], channel]
        np.testing.assert_allclose(pixel, pixel[0], rtol=1e-4)  # linear in the factor
        assert pixel[0] > 0.05
        if k == 0:  # the wall's colour does not reach the floor
            np.testing.assert_allclose(diffs[:, 20:, 30], 0.0, atol=1e-6)


def test_colour_scene_ball_radius_and_position():
    """The ball's covered area is pi r^2 (to rasterisation error) and its centroid moves
    by the position step."""
    ds = get_dataset("colour_scene")
    areas, centroids = [], []
    for radius, x in [(0, 3), (5, 3), (5, 4)]:
        f = np.array([[0, 0, 7, radius, x]])
        img = ds.sample_observations_from_factors(f)[0]
        plain = ds.sample_observations_from_factors(np.array([[0, 0, 0, radius, x]]))[0]
        cover = (img[..., 0] - plain[..., 0]) / (img[..., 0] - plain[..., 0]).max()
        areas.append(cover.sum())
        centroids.append((cover * (np.arange(32) + 0.5)[None, :]).sum() / cover.sum())
    np.testing.assert_allclose(areas[:2], np.pi * ds.radii[[0, 5]] ** 2, rtol=0.03)
    np.testing.assert_allclose(centroids[2] - centroids[1], np.diff(ds.positions)[0], rtol=0.02)


@pytest.mark.parametrize("name", PROCEDURAL)
def test_every_factor_changes_the_image(name):
    """Changing any one factor by one step from many base points changes the image."""
    ds = get_dataset(name)
    rng = np.random.default_rng(0)
    base = ds.sample_factors(24, rng)
    ref = ds.sample_observations_from_factors(base)
    for k, size in enumerate(ds.factor_sizes):
        moved = base.copy()
        moved[:, k] = (moved[:, k] + 1) % size
        diff = np.abs(ds.sample_observations_from_factors(moved) - ref).reshape(24, -1).sum(1)
        if ds.factor_names[k] == "orientation":
            # A square at a quarter turn is the same square; every other case must change.
            changed = diff[base[:, 0] != 0] > 1.0
        else:
            changed = diff > 1.0
        assert changed.all(), (ds.factor_names[k], diff)


@pytest.mark.parametrize("name", PROCEDURAL)
def test_rendering_is_deterministic_and_in_range(name):
    ds = get_dataset(name)
    factors = ds.sample_factors(8, np.random.default_rng(1))
    a = ds.sample_observations_from_factors(factors)
    b = ds.sample_observations_from_factors(factors)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
    assert a.shape == (8, *ds.observation_shape)


@pytest.mark.parametrize("name", PROCEDURAL)
def test_index_factor_round_trip(name):
    ds = get_dataset(name)
    idx = np.random.default_rng(2).integers(0, len(ds), 1000)
    np.testing.assert_array_equal(ds.factors_to_index(ds.index_to_factors(idx)), idx)
    assert ds.factors_to_index(np.zeros((1, ds.num_factors), int))[0] == 0
    last = np.asarray([s - 1 for s in ds.factor_sizes])[None]
    assert ds.factors_to_index(last)[0] == len(ds) - 1


def test_device_sampler_matches_host_rendering():
    import jax

    ds = get_dataset("dsprites")
    factors, x = jax.jit(ds.device_sampler(), static_argnums=1)(jax.random.key(0), 16)
    np.testing.assert_allclose(np.asarray(x),
                               ds.sample_observations_from_factors(np.asarray(factors)),
                               atol=1e-6)
    assert (np.asarray(factors) < np.asarray(ds.factor_sizes)).all()


def test_out_of_range_factors_are_named():
    ds = get_dataset("dsprites")
    with pytest.raises(ValueError, match=r"'scale' has value 6 .*0\.\.5"):
        ds.sample_observations_from_factors(np.asarray([[0, 6, 0, 0, 0]]))


def test_unknown_dataset_suggests_names():
    with pytest.raises(KeyError, match="dsprites"):
        get_dataset("dsprite")
    assert {"dsprites", "colour_shapes", "tfds:", "npz:"} <= set(DATASETS)


# ----------------------------------------------------------------------------- npz
def _write_npz(path, **arrays):
    np.savez(path, **arrays)
    return f"npz:{path}"


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    factors = np.stack(np.meshgrid(np.arange(3), np.arange(4), indexing="ij"), -1).reshape(-1, 2)
    images = (rng.random((12, 8, 8, 1)) * 255).astype(np.uint8)
    ds = get_dataset(_write_npz(tmp_path / "d.npz", images=images, factors=factors,
                                factor_names=np.asarray(["a", "b"])))
    assert ds.factor_names == ("a", "b") and ds.factor_sizes == (3, 4) and len(ds) == 12
    obs = ds.sample_observations_from_factors(factors[[5, 7]], rng)
    np.testing.assert_allclose(obs, images[[5, 7]] / 255.0)
    f, x = ds.sample(5, rng)
    rows = ds.factors_to_index(f)  # full grid in row-major order: row == flat index
    np.testing.assert_allclose(x, images[rows] / 255.0)


@pytest.mark.parametrize("arrays, message", [
    ({"images": np.zeros((4, 8, 8), np.uint8), "factors": np.zeros((4, 1), int)},
     r"uint8 \[N, H, W, C\]"),
    ({"images": np.zeros((4, 8, 8, 1), np.float32), "factors": np.zeros((4, 1), int)},
     "float32"),
    ({"images": np.zeros((4, 8, 8, 1), np.uint8), "factors": np.zeros((4, 1), float)},
     r"expected integer \[N, K\]"),
    ({"images": np.zeros((4, 8, 8, 1), np.uint8), "factors": np.zeros((3, 1), int)},
     "4 images but 3 factor rows"),
    ({"images": np.zeros((4, 8, 8, 1), np.uint8)}, "missing array 'factors'"),
])
def test_npz_mistakes_are_explained(tmp_path, arrays, message):
    with pytest.raises(DataError, match=message):
        get_dataset(_write_npz(tmp_path / "bad.npz", **arrays))


def test_npz_refuses_pickles(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, images=np.zeros((2, 4, 4, 1), np.uint8),
             factors=np.asarray([[0], [1]], dtype=object))
    with pytest.raises(DataError, match="pickle"):
        get_dataset(f"npz:{path}")


# ----------------------------------------------------------------------------- TFDS
@pytest.mark.parametrize("name, sizes", [
    ("dsprites", {"shape": 3, "scale": 6, "orientation": 40, "x_position": 32,
                  "y_position": 32}),
    ("shapes3d", {"floor_hue": 10, "wall_hue": 10, "object_hue": 10, "scale": 8, "shape": 4,
                  "orientation": 15}),
    ("smallnorb", {"category": 5, "instance": 10, "elevation": 9, "azimuth": 18,
                   "lighting": 6}),
])
def test_tfds_on_mock_data(name, sizes):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=24):
        ds = get_dataset(f"tfds:{name}")
        assert dict(zip(ds.factor_names, ds.factor_sizes)) == sizes
        rng = np.random.default_rng(0)
        factors, images = ds.sample(6, rng)
        assert images.shape == (6, *ds.observation_shape) and images.dtype == np.float32
        assert 0 <= images.min() and images.max() <= 1
        assert (factors < np.asarray(ds.factor_sizes)).all()
        # Factor lookup returns an example that has exactly those factors.
        again = ds.sample_observations_from_factors(factors[:2], rng)
        assert again.shape == (2, *ds.observation_shape)


def test_tfds_factor_index_is_cached_on_disk(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setenv("DISENTANGLE_CACHE", str(tmp_path))
    with tfds.testing.mock_data(num_examples=24):
        first = get_dataset("tfds:shapes3d")
        flat, order = first.factor_index()
        path = first._index_cache_path()
        assert path.parent == tmp_path / "tfds_index" and path.exists()
        # the index itself: rows in `order` have non-decreasing flat factor indices
        rows = first._read(order)[0]
        np.testing.assert_array_equal(first.factors_to_index(rows), flat)
        assert (np.diff(flat) >= 0).all()

        second = get_dataset("tfds:shapes3d")

        class Unreadable:  # any read of the data fails the test
            def __len__(self):
                return 24

            def __getitem__(self, i):
                raise AssertionError("the labels were read again")

        second.source = Unreadable()
        monkeypatch.setattr(tfds, "data_source", lambda *a, **k: Unreadable())
        np.testing.assert_array_equal(second.factor_index()[1], order)  # from disk
        monkeypatch.undo()
        monkeypatch.setenv("DISENTANGLE_CACHE", str(tmp_path))
        # a stale or damaged file is rebuilt, not trusted
        np.savez(path, sorted_flat=flat[:5], order=order[:5])
        third = get_dataset("tfds:shapes3d")
        np.testing.assert_array_equal(third.factor_index()[1], order)
        with np.load(path) as rebuilt:
            assert rebuilt["order"].shape == (24,)


def test_tfds_unprepared_dataset_names_the_command(tmp_path):
    with pytest.raises(DataError, match=r"tfds build dsprites --file_format=array_record"):
        get_dataset("tfds:dsprites", data_dir=str(tmp_path))
