"""``disentangle data prepare``: tiny files in each original format, round trips, resizing,
errors for wrong or truncated files, and a few conv64 training steps on each prepared set.

The fixtures are written here from the formats' documentation (npz keys, HDF5 datasets,
``.mat`` arrays, LeCun's binary-matrix header), independently of the readers under test.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import struct

import numpy as np
import pytest

from disentangle.config import apply_overrides
from disentangle.data import get_dataset
from disentangle.data.prepared import SOURCES, NpyRows, prepare
from disentangle.errors import DataError
from experiments.cli import main as cli_main
from tests.conftest import tiny_config

h5py = pytest.importorskip("h5py")
RNG = np.random.default_rng(0)


# ----------------------------------------------------------------------------- fixtures
def write_dsprites(path, n=12):
    """dSprites npz: imgs 0/1 [n, 64, 64], latents_classes / latents_values [n, 6] and a
    pickled metadata dict, as in the published file. Returns (images 0/255, factors)."""
    sizes = (1, 3, 6, 40, 32, 32)
    flat = RNG.choice(int(np.prod(sizes)), n, replace=False)
    classes = np.stack(np.unravel_index(flat, sizes), axis=1).astype(np.int64)
    imgs = (RNG.random((n, 64, 64)) < 0.3).astype(np.uint8)
    meta = np.array({"latents_sizes": np.array(sizes)}, dtype=object)
    np.savez_compressed(path, imgs=imgs, latents_classes=classes,
                        latents_values=classes.astype(np.float64) / 10, metadata=meta)
    return imgs[..., None] * 255, classes[:, 1:]


def write_shapes3d(path, n=15):
    """3dshapes.h5 (gzip-compressed, like the published file); labels are float values,
    every value of every factor present (n >= 15)."""
    sizes = np.array([10, 10, 10, 8, 4, 15])
    grid = [np.linspace(0, 0.9, 10)] * 3 + [np.linspace(0.75, 1.25, 8), np.arange(4.0),
                                            np.linspace(-30, 30, 15)]
    factors = (np.arange(n)[:, None] * np.array([1, 3, 7, 1, 1, 1])) % sizes
    labels = np.stack([g[f] for g, f in zip(grid, factors.T)], axis=1)
    images = RNG.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images, compression="gzip", chunks=(1, 64, 64, 3))
        f.create_dataset("labels", data=labels)
    return images, factors


def write_mpi3d(path, n=20, compressed=False):
    images = RNG.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    (np.savez_compressed if compressed else np.savez)(path, images=images)
    return images, np.stack(np.unravel_index(np.arange(n), (6, 6, 2, 3, 3, 40, 40)), axis=1)


def write_cars3d(folder, cars=2):
    """``car_XXX_mesh.mat`` files with 'im' uint8 [128, 128, 3, 24 azimuths, 4 elevations].
    Returns the 'im' arrays."""
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    ims = []
    for i in range(cars):
        im = RNG.integers(0, 256, (128, 128, 3, 24, 4), dtype=np.uint8)
        savemat(folder / f"car_{i:03d}_mesh.mat", {"im": im})
        ims.append(im)
    return ims


def write_matrix(path, array, magic):
    """LeCun's binary matrix: int32 magic, int32 ndim, max(3, ndim) int32 dims (padded
    with 1), then the elements, all little-endian."""
    dims = list(array.shape) + [1] * max(0, 3 - array.ndim)
    data = struct.pack(f"<ii{len(dims)}i", magic, array.ndim, *dims) + array.tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(data)


def write_smallnorb(folder, n=6, gz_testing=True):
    """Both splits; the testing split gzipped as published. Images are constant on 3x3
    blocks (so a 96 -> 64 area resize is known exactly). Returns (left images, factors
    [category, instance, elevation, azimuth / 2, lighting]) of training + testing."""
    folder.mkdir(parents=True, exist_ok=True)
    images, factors = [], []
    for split, prefix, instances in [
            ("training", "smallnorb-5x46789x9x18x6x2x96x96-training", [4, 6, 7, 8, 9]),
            ("testing", "smallnorb-5x01235x9x18x6x2x96x96-testing", [0, 1, 2, 3, 5])]:
        ext = ".mat.gz" if split == "testing" and gz_testing else ".mat"
        dat = RNG.integers(0, 256, (n, 2, 32, 32), dtype=np.uint8).repeat(3, 2).repeat(3, 3)
        cat = (np.arange(n) % 5).astype("<i4")
        info = np.stack([np.array(instances)[np.arange(n) % 5], np.arange(n) % 9,
                         2 * (np.arange(n) % 18), np.arange(n) // 2 % 6], 1).astype("<i4")
        write_matrix(folder / f"{prefix}-dat{ext}", dat, 0x1E3D4C55)
        write_matrix(folder / f"{prefix}-cat{ext}", cat, 0x1E3D4C54)
        write_matrix(folder / f"{prefix}-info{ext}", info, 0x1E3D4C54)
        images.append(dat[:, 0, :, :, None])
        factors.append(np.column_stack([cat, info[:, 0], info[:, 1], info[:, 2] // 2,
                                        info[:, 3]]))
    return np.concatenate(images), np.concatenate(factors)


def stored(ds, factors):
    """The prepared observations for ``factors`` as uint8."""
    obs = ds.sample_observations_from_factors(factors, np.random.default_rng(0))
    return np.round(obs * 255).astype(np.uint8)


def block_mean(image, k):
    """[H, W, C] -> [H/k, W/k, C]: the mean of each k x k block (area resampling)."""
    h, w, c = image.shape
    return image.reshape(h // k, k, w // k, k, c).astype(np.float64).mean(axis=(1, 3))


# ----------------------------------------------------------------------------- round trips
def test_dsprites_round_trip(tmp_path):
    images, factors = write_dsprites(tmp_path / "dsprites.npz")
    out = prepare("dsprites_file", tmp_path / "dsprites.npz", out=tmp_path / "p",
                  allow_subset=True, log=lambda _: None)
    ds = get_dataset("dsprites_file", path=str(out))
    assert ds.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert ds.factor_sizes == (3, 6, 40, 32, 32) and ds.observation_shape == (64, 64, 1)
    np.testing.assert_array_equal(stored(ds, factors), images)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["sources"][0]["bytes"] == (tmp_path / "dsprites.npz").stat().st_size


def test_shapes3d_round_trip_maps_label_values_to_classes(tmp_path):
    images, factors = write_shapes3d(tmp_path / "3dshapes.h5")
    out = prepare("shapes3d", tmp_path / "3dshapes.h5", out=tmp_path / "p",
                  allow_subset=True, log=lambda _: None)
    ds = get_dataset("shapes3d", path=str(out))
    assert ds.factor_sizes == (10, 10, 10, 8, 4, 15)
    np.testing.assert_array_equal(stored(ds, factors), images)
    values = json.loads((out / "meta.json").read_text())["factor_values"]
    np.testing.assert_allclose(values["orientation"], np.linspace(-30, 30, 15))
    # sample_factors draws stored rows only
    drawn = ds.sample_factors(50, np.random.default_rng(1))
    assert {tuple(r) for r in drawn} <= {tuple(r) for r in factors}


@pytest.mark.parametrize("compressed", [False, True])
def test_mpi3d_rows_are_the_row_major_grid(tmp_path, compressed):
    images, factors = write_mpi3d(tmp_path / "mpi3d_toy.npz", compressed=compressed)
    out = prepare("mpi3d_toy", tmp_path / "mpi3d_toy.npz", out=tmp_path / "p",
                  allow_subset=True, log=lambda _: None)
    ds = get_dataset("mpi3d_toy", path=str(out))
    assert ds.factor_names[0] == "object_color" and ds.factor_sizes == (6, 6, 2, 3, 3, 40, 40)
    # row 1 is vertical_axis 1, row 19 is vertical_axis 19 (last factor fastest)
    assert factors[19].tolist() == [0, 0, 0, 0, 0, 0, 19]
    np.testing.assert_array_equal(stored(ds, factors), images)


def test_complete_grid_needs_no_factor_array(tmp_path, monkeypatch):
    """A file holding the whole (here: shrunk) grid in row-major order is read by ravel
    index; sample_factors covers the grid uniformly."""
    import disentangle.data.sources as sources

    sizes = (2, 1, 1, 1, 1, 2, 3)
    monkeypatch.setattr(sources, "MPI3D_SIZES", sizes)
    fmt = SOURCES.get("mpi3d_real")
    monkeypatch.setitem(SOURCES._entries, "mpi3d_real",
                        dataclasses.replace(fmt, factor_sizes=sizes, num_images=12))
    images, _ = write_mpi3d(tmp_path / "mpi3d_real.npz", n=12)
    out = prepare("mpi3d_real", tmp_path / "mpi3d_real.npz", out=tmp_path / "p",
                  log=lambda _: None)
    ds = get_dataset("mpi3d_real", path=str(out))
    assert ds.grid_order and "factors" not in ds.__dict__
    factors = np.stack(np.unravel_index(np.arange(12), sizes), axis=1)
    np.testing.assert_array_equal(stored(ds, factors), images)
    counts = np.bincount(ds.factors_to_index(ds.sample_factors(12_000, RNG)), minlength=12)
    assert counts.min() > 800 and counts.max() < 1200


def test_cars3d_layout_and_box_resize(tmp_path):
    ims = write_cars3d(tmp_path / "cars")
    out = prepare("cars3d", tmp_path, image_size=64, resample="box", out=tmp_path / "p",
                  allow_subset=True, log=lambda _: None)
    ds = get_dataset("cars3d", path=str(out))
    assert ds.factor_names == ("elevation", "azimuth", "object")
    assert ds.observation_shape == (64, 64, 3) and len(ds) == 192
    factors = np.array([[1, 5, 0], [3, 23, 1], [0, 0, 1], [2, 17, 0]])
    got = stored(ds, factors)
    for (el, az, obj), img in zip(factors, got):
        assert np.abs(img - block_mean(ims[obj][:, :, :, az, el], 2)).max() <= 1  # PIL fixed point


def test_cars3d_native_size_round_trip(tmp_path):
    ims = write_cars3d(tmp_path / "data" / "cars", cars=1)
    out = prepare("cars3d", tmp_path, out=tmp_path / "p", allow_subset=True,
                  log=lambda _: None)
    ds = get_dataset("cars3d", path=str(out))
    assert ds.observation_shape == (128, 128, 3)
    rows = np.array([[el, az, 0] for az in range(24) for el in range(4)])
    np.testing.assert_array_equal(stored(ds, rows), ims[0].transpose(3, 4, 0, 1, 2)
                                  .reshape(96, 128, 128, 3))


def test_smallnorb_round_trip_and_resize(tmp_path):
    images, factors = write_smallnorb(tmp_path / "norb")
    out = prepare("smallnorb", tmp_path / "norb", out=tmp_path / "p", allow_subset=True,
                  log=lambda _: None)
    ds = get_dataset("smallnorb", path=str(out))
    assert ds.factor_names == ("category", "instance", "elevation", "azimuth", "lighting")
    assert ds.factor_sizes == (5, 10, 9, 18, 6) and ds.observation_shape == (96, 96, 1)
    np.testing.assert_array_equal(stored(ds, factors), images)
    assert json.loads((out / "meta.json").read_text())["splits"] == ["training", "testing"]

    small = prepare("smallnorb", tmp_path / "norb", image_size=64, resample="box",
                    out=tmp_path / "p64", allow_subset=True, log=lambda _: None)
    got = stored(get_dataset("smallnorb", path=str(small)), factors)
    assert got.shape == (12, 64, 64, 1)
    # each 3x3 block of equal pixels becomes a 2x2 block of that value
    np.testing.assert_array_equal(got, images[:, ::3, ::3].repeat(2, 1).repeat(2, 2))


def test_lanczos_keeps_constant_images(tmp_path):
    from disentangle.data.prepared import resize_images

    flat = np.full((2, 96, 96, 3), 77, np.uint8)
    np.testing.assert_array_equal(resize_images(flat, 64), np.full((2, 64, 64, 3), 77))
    ramp = np.broadcast_to(np.linspace(0, 255, 96).astype(np.uint8)[None, None, :, None],
                           (1, 96, 96, 1))
    out = resize_images(ramp, 64)[0, :, :, 0]
    assert np.all(np.diff(out[10].astype(int)) >= 0)  # a ramp stays monotone
    assert abs(out.mean() - ramp.mean()) < 1.0


def test_npy_rows_reads_rows_in_any_order(tmp_path):
    data = RNG.integers(0, 256, (50, 4, 3), dtype=np.uint8)
    np.save(tmp_path / "a.npy", data)
    rows = NpyRows(tmp_path / "a.npy")
    idx = np.array([7, 3, 3, 49, 0, 8, 9, 10])
    np.testing.assert_array_equal(rows[idx], data[idx])
    np.testing.assert_array_equal(np.asarray(rows), data)
    with pytest.raises(IndexError):
        rows[np.array([50])]


# ----------------------------------------------------------------------------- training
TRAIN_CASES = {  # name -> (writer, prepare kwargs, method)
    "dsprites_file": (lambda d: write_dsprites(d / "f.npz", n=40), "f.npz", {}, "qlae"),
    "shapes3d": (lambda d: write_shapes3d(d / "f.h5", n=40), "f.h5", {}, "beta_vae"),
    "mpi3d_toy": (lambda d: write_mpi3d(d / "f.npz", n=40), "f.npz", {}, "qlae"),
    "cars3d": (lambda d: write_cars3d(d, cars=1), ".", {"image_size": 64}, "beta_vae"),
    "smallnorb": (lambda d: write_smallnorb(d, n=8), ".", {"image_size": 64}, "beta_vae"),
}


def train_on_prepared(tmp_path, name, network, steps=3):
    from disentangle.train import read_log, train_and_evaluate

    write, source, kwargs, method = TRAIN_CASES[name]
    write(tmp_path)
    out = prepare(name, tmp_path / source, out=tmp_path / "p", allow_subset=True,
                  log=lambda _: None, **kwargs)
    assert get_dataset(name, path=str(out), device_max_bytes=0).device_sampler() is None
    config = tiny_config(method, steps=steps)
    apply_overrides(config, {  # device_max_bytes 0: batches read on the host, by row
        "data.name": name, "data.options.path": str(out), "data.options.device_max_bytes": 0,
        "model.network": network, "train.batch_size": 8, "train.checkpoint_every": steps}.items())
    log = read_log(train_and_evaluate(config, tmp_path / "run", progress=False))
    assert [r["step"] for r in log] == list(range(1, steps + 1))
    assert all(np.isfinite(r["loss"]) for r in log)


def test_training_reads_prepared_rows_on_the_host(tmp_path):
    train_on_prepared(tmp_path, "shapes3d", "mlp_small")


@pytest.mark.slow  # conv64 compiles for ~10-50 s per dataset on 2 CPU cores
@pytest.mark.parametrize("name", list(TRAIN_CASES))
def test_conv64_trains_on_the_prepared_copy(tmp_path, name):
    train_on_prepared(tmp_path, name, "conv64")


# ----------------------------------------------------------------------------- errors
def test_published_row_count_is_required_unless_subset(tmp_path):
    write_shapes3d(tmp_path / "3dshapes.h5")
    with pytest.raises(DataError, match=r"holds 15 images.*has 480000.*--allow-subset"):
        prepare("shapes3d", tmp_path / "3dshapes.h5", out=tmp_path / "p", log=print)


@pytest.mark.parametrize("name,writer,message", [
    ("dsprites_file", lambda p: np.savez(p, images=np.zeros((2, 64, 64), np.uint8)),
     r"no array 'imgs'.*expected dsprites_ndarray"),
    ("dsprites_file", lambda p: np.savez(p, imgs=np.zeros((2, 32, 32), np.uint8),
                                         latents_classes=np.zeros((2, 6), int),
                                         latents_values=np.zeros((2, 6))),
     r"'imgs' is uint8 \(2, 32, 32\); expected .*\[737280, 64, 64\]"),
    ("mpi3d_toy", lambda p: np.savez(p, images=np.zeros((2, 64, 64, 3), np.float32)),
     r"'images' is float32 \(2, 64, 64, 3\); expected .*uint8 \[1036800, 64, 64, 3\]"),
])
def test_wrong_npz_contents_say_what_was_expected(tmp_path, name, writer, message):
    writer(tmp_path / "f.npz")
    with pytest.raises(DataError, match=message):
        prepare(name, tmp_path / "f.npz", out=tmp_path / "p", allow_subset=True)


def test_mpi3d_2019_release_is_refused_by_name(tmp_path, monkeypatch):
    import disentangle.data.sources as sources

    monkeypatch.setattr(sources, "MPI3D_2019_IMAGES", 20)  # stands in for 460,800 rows
    write_mpi3d(tmp_path / "mpi3d_toy.npz", n=20)
    with pytest.raises(DataError, match="20 images is the 2019 release"):
        prepare("mpi3d_toy", tmp_path / "mpi3d_toy.npz", out=tmp_path / "p", allow_subset=True)


def test_wrong_cars3d_mat_says_what_was_expected(tmp_path):
    from scipy.io import savemat

    savemat(tmp_path / "car_000_mesh.mat", {"im": np.zeros((64, 64, 3, 24, 4), np.uint8)})
    with pytest.raises(DataError, match=r"holds 'im' uint8 \(64, 64, 3, 24, 4\); expected 'im' "
                                        r"uint8 \[128, 128, 3, 24, 4\]"):
        prepare("cars3d", tmp_path, out=tmp_path / "p", allow_subset=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .mat files in it, cars/ or data/cars/"):
        prepare("cars3d", tmp_path / "empty", out=tmp_path / "p", allow_subset=True)


def test_wrong_shapes3d_labels(tmp_path):
    with h5py.File(tmp_path / "3dshapes.h5", "w") as f:
        f.create_dataset("images", data=np.zeros((3, 64, 64, 3), np.uint8))
        f.create_dataset("labels", data=np.zeros((3, 6)))
    with pytest.raises(DataError, match="floor_hue holds 1 distinct values; expected 10"):
        prepare("shapes3d", tmp_path / "3dshapes.h5", out=tmp_path / "p", allow_subset=True)


@pytest.mark.parametrize("name,writer,file", [
    ("dsprites_file", lambda d: write_dsprites(d / "f.npz"), "f.npz"),
    ("mpi3d_toy", lambda d: write_mpi3d(d / "f.npz", compressed=True), "f.npz"),
    ("shapes3d", lambda d: write_shapes3d(d / "f.h5"), "f.h5"),
    ("cars3d", lambda d: write_cars3d(d, cars=1), "car_000_mesh.mat"),
])
def test_truncated_files_are_refused(tmp_path, name, writer, file):
    writer(tmp_path)
    path = tmp_path / file
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    source = tmp_path if name == "cars3d" else path
    with pytest.raises(DataError, match=r"cannot be read .*expected .*found a file of \d+ bytes"):
        prepare(name, source, out=tmp_path / "p", allow_subset=True, log=lambda _: None)
    assert not (tmp_path / "p").exists()  # nothing half-written


def test_truncated_smallnorb_matrix_says_what_its_header_promised(tmp_path):
    write_smallnorb(tmp_path, gz_testing=False)
    dat = tmp_path / "smallnorb-5x01235x9x18x6x2x96x96-testing-dat.mat"
    dat.write_bytes(dat.read_bytes()[:-1000])
    with pytest.raises(DataError, match=r"its header promises \[6, 2, 96, 96\] uint8, "
                                        r"110616 bytes: the file is truncated"):
        prepare("smallnorb", tmp_path, out=tmp_path / "p", allow_subset=True)


def test_truncated_gzipped_smallnorb_is_refused(tmp_path):
    write_smallnorb(tmp_path, gz_testing=True)
    dat = tmp_path / "smallnorb-5x01235x9x18x6x2x96x96-testing-dat.mat.gz"
    dat.write_bytes(dat.read_bytes()[:-5000])
    with pytest.raises(DataError, match="testing-dat.mat.gz"):
        prepare("smallnorb", tmp_path, out=tmp_path / "p", allow_subset=True,
                log=lambda _: None)
    assert not (tmp_path / "p").exists()


def test_smallnorb_bad_header_and_missing_files(tmp_path):
    write_smallnorb(tmp_path, gz_testing=False)
    cat = tmp_path / "smallnorb-5x46789x9x18x6x2x96x96-training-cat.mat"
    cat.write_bytes(struct.pack("<i", 0x12345678) + cat.read_bytes()[4:])
    with pytest.raises(DataError, match="magic 0x12345678.*expected a binary matrix"):
        prepare("smallnorb", tmp_path, out=tmp_path / "p", allow_subset=True)
    cat.unlink()
    with pytest.raises(DataError, match="training split lacks .*training-cat.mat"):
        prepare("smallnorb", tmp_path, out=tmp_path / "p", allow_subset=True)


def test_same_size_different_bytes_fails_the_checksum(tmp_path, monkeypatch):
    write_shapes3d(tmp_path / "3dshapes.h5")
    fmt = SOURCES.get("shapes3d")
    size = (tmp_path / "3dshapes.h5").stat().st_size
    monkeypatch.setitem(fmt.published, "3dshapes.h5", (size, "0" * 64))
    with pytest.raises(DataError, match=r"sha256 [0-9a-f]{64} differs from the published "
                                        r"file's 0{64} .*corrupt"):
        prepare("shapes3d", tmp_path / "3dshapes.h5", out=tmp_path / "p", allow_subset=True)


def test_unprepared_dataset_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("DISENTANGLE_DATA", str(tmp_path / "data"))
    with pytest.raises(DataError, match=r"shapes3d is not prepared in .*data/shapes3d.*\n"
                                        r"  disentangle data prepare shapes3d --from "
                                        r"PATH/TO/3dshapes.h5$"):
        get_dataset("shapes3d")
    with pytest.raises(DataError, match=r"prepare cars3d --from .* --image-size 64 --out "):
        get_dataset("cars3d", path=str(tmp_path / "elsewhere"))


def test_prepared_copy_of_another_dataset_or_truncated_is_refused(tmp_path):
    write_mpi3d(tmp_path / "mpi3d_toy.npz")
    out = prepare("mpi3d_toy", tmp_path / "mpi3d_toy.npz", out=tmp_path / "p",
                  allow_subset=True, log=lambda _: None)
    with pytest.raises(DataError, match="holds 'mpi3d_toy', not 'mpi3d_real'"):
        get_dataset("mpi3d_real", path=str(out))
    with pytest.raises(DataError, match="already prepared"):
        prepare("mpi3d_toy", tmp_path / "mpi3d_toy.npz", out=out, allow_subset=True)
    with pytest.raises(DataError, match="exists and is not a prepared copy"):
        prepare("mpi3d_toy", tmp_path / "mpi3d_toy.npz", out=tmp_path, allow_subset=True)
    images = out / "images.npy"
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated, prepare it again"):
        get_dataset("mpi3d_toy", path=str(out))


def test_cli_prepares_and_reports_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DISENTANGLE_DATA", str(tmp_path / "data"))
    write_mpi3d(tmp_path / "mpi3d_toy.npz")
    assert cli_main(["data", "prepare", "mpi3d_toy", "--from", str(tmp_path / "mpi3d_toy.npz"),
                     "--allow-subset"]) == 0
    assert "use it with: data.name=mpi3d_toy" in capsys.readouterr().out
    assert len(get_dataset("mpi3d_toy")) == 20
    assert cli_main(["data", "prepare", "mpi3d_tiy", "--from", "x"]) == 2
    assert "did you mean 'mpi3d_toy'" in capsys.readouterr().err.lower()
    assert cli_main(["data", "list"]) == 0
    assert "mpi3d_toy" in capsys.readouterr().out


@pytest.mark.parametrize("config_name,decay_or_beta", [
    ("qlae_shapes3d", 0.1), ("qlae_mpi3d", 0.001), ("beta_vae_shapes3d", 3.0),
    ("beta_vae_mpi3d", 0.1)])
def test_paper_configs_match_their_dataset(config_name, decay_or_beta):
    """QLAE: 2 latents per factor of the prepared dataset the config names; the paper's
    weight decay (QLAE) or beta (beta-VAE) per dataset."""
    from disentangle.config import load_config
    from tests.conftest import CONFIGS

    config = load_config(CONFIGS / f"{config_name}.py")
    fmt = SOURCES.get(config.data.name)
    assert config.model.latent_dim == 2 * len(fmt.factor_sizes)
    if config.model.name == "qlae":
        assert config.train.weight_decay == decay_or_beta
        assert config.model.quantization_weight == config.model.commitment_weight == 0.01
    else:
        assert config.model.beta == decay_or_beta
