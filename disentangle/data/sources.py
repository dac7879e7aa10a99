"""Readers of the real datasets' original files, one :class:`SourceFormat` each.

Each reader checks the structure (keys, shapes, dtypes, factor ranges) before anything
is written and streams the images in chunks (npz members are decompressed as a stream,
HDF5 read by slices, binary matrices by rows), so preparing never holds the whole
dataset in memory. Facts and their sources: docs/datasets.md.
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from disentangle.data.prepared import Source, SourceFormat, register_source
from disentangle.errors import DataError

# Errors a truncated or damaged file raises while being decompressed / parsed.
READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)


def _damaged(path: Path, err: Exception, expected: str) -> DataError:
    return DataError(f"{path}: cannot be read ({type(err).__name__}: {err}); expected "
                     f"{expected}; found a file of {path.stat().st_size} bytes (a truncated "
                     "or damaged download?)")


def _expect(where: str, what: str, shape, dtype, want_tail: tuple, want_kind: str,
            want: str) -> None:
    """Raise unless ``shape[1:] == want_tail`` and ``dtype.kind in want_kind``."""
    if tuple(shape[1:]) != want_tail or np.dtype(dtype).kind not in want_kind or not shape[0]:
        raise DataError(f"{where}: {what!r} is {np.dtype(dtype)} {tuple(shape)}; expected {want}")


# ----------------------------------------------------------------------------- npz members
def _npz_member(path: Path, key: str, expected: str):
    """(zip, stream, shape, dtype) of member ``key`` of the npz at ``path``; only the
    member's ``.npy`` header is read (compressed or stored members alike)."""
    try:
        zf = zipfile.ZipFile(path)
        names = [n.removesuffix(".npy") for n in zf.namelist()]
        if key not in names:
            zf.close()
            raise DataError(f"{path}: has no array {key!r} (found {sorted(names)}); expected "
                            f"{expected}")
        stream = zf.open(f"{key}.npy")
        version = np.lib.format.read_magic(stream)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read(stream)
    except DataError:
        raise
    except READ_ERRORS as err:
        raise _damaged(path, err, expected) from None
    if fortran:
        raise DataError(f"{path}: {key!r} is stored in Fortran order; expected C order")
    return zf, stream, tuple(shape), dtype


def _npz_rows(path: Path, key: str, rows: int, expected: str) -> Iterator[np.ndarray]:
    """Member ``key`` of ``path`` decompressed as a stream, ``rows`` rows at a time."""
    zf, stream, shape, dtype = _npz_member(path, key, expected)
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    try:
        for start in range(0, shape[0], rows):
            n = min(rows, shape[0] - start)
            buf = stream.read(n * row_bytes)
            if len(buf) != n * row_bytes:
                raise DataError(f"{path}: {key!r} ends after {start + len(buf) // row_bytes} "
                                f"of {shape[0]} rows; expected {expected}")
            yield np.frombuffer(buf, dtype).reshape(n, *shape[1:])
    except READ_ERRORS as err:
        raise _damaged(path, err, expected) from None
    finally:
        stream.close()
        zf.close()


def _npz_small(path: Path, key: str, expected: str) -> np.ndarray:
    """A small member read whole (no pickles)."""
    zf, stream, _, _ = _npz_member(path, key, expected)
    stream.close()
    zf.close()
    try:
        with np.load(path, allow_pickle=False) as f:
            return f[key]
    except READ_ERRORS as err:
        raise _damaged(path, err, expected) from None


def _resolve(path: Path, filename: str) -> Path:
    """``path`` itself, or ``path/filename`` when a directory is given."""
    if path.is_dir():
        path = path / filename
        if not path.is_file():
            raise DataError(f"{path.parent}: has no {filename}")
    return path


# ----------------------------------------------------------------------------- dSprites
DSPRITES_FILE = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
DSPRITES_LATENTS = ("color", "shape", "scale", "orientation", "posX", "posY")
DSPRITES_SIZES = (1, 3, 6, 40, 32, 32)
DSPRITES_EXPECTED = (f"{DSPRITES_FILE} (Matthey et al. 2017) with imgs uint8 [737280, 64, 64] "
                     "0/1, latents_classes int [737280, 6], latents_values float [737280, 6]")


def _open_dsprites(path: Path) -> Source:
    """Images ``imgs`` (0/1 masks, stored as 0/255); factors ``latents_classes`` without
    the constant ``color`` column."""
    path = _resolve(path, DSPRITES_FILE)
    zf, stream, shape, dtype = _npz_member(path, "imgs", DSPRITES_EXPECTED)
    stream.close()
    zf.close()
    _expect(str(path), "imgs", shape, dtype, (64, 64), "u", DSPRITES_EXPECTED)
    classes = _npz_small(path, "latents_classes", DSPRITES_EXPECTED)
    _expect(str(path), "latents_classes", classes.shape, classes.dtype, (6,), "iu",
            DSPRITES_EXPECTED)
    zf, stream, vshape, vdtype = _npz_member(path, "latents_values", DSPRITES_EXPECTED)
    stream.close()
    zf.close()
    _expect(str(path), "latents_values", vshape, vdtype, (6,), "f", DSPRITES_EXPECTED)
    if not classes.shape[0] == vshape[0] == shape[0]:
        raise DataError(f"{path}: {shape[0]} imgs, {classes.shape[0]} latents_classes rows and "
                        f"{vshape[0]} latents_values rows; expected the same count")
    over = classes >= np.asarray(DSPRITES_SIZES)
    if over.any() or classes.min() < 0:
        col = int(np.argwhere(over | (classes < 0))[0, 1])
        raise DataError(f"{path}: latents_classes column {DSPRITES_LATENTS[col]} holds "
                        f"{classes[:, col].min()}..{classes[:, col].max()}; expected "
                        f"0..{DSPRITES_SIZES[col] - 1}")

    def chunks(rows: int):
        start = 0
        for imgs in _npz_rows(path, "imgs", rows, DSPRITES_EXPECTED):
            if imgs.max(initial=0) > 1:
                raise DataError(f"{path}: imgs holds values up to {imgs.max()}; dSprites "
                                "stores 0/1 masks")
            yield (imgs * np.uint8(255))[..., None], classes[start:start + len(imgs), 1:]
            start += len(imgs)

    return Source(shape[0], (64, 64, 1), [path], chunks)


register_source(SourceFormat(
    name="dsprites_file", title="dSprites (Matthey et al. 2017)", expects=DSPRITES_FILE,
    factor_names=DSPRITES_LATENTS[1:], factor_sizes=DSPRITES_SIZES[1:], num_images=737_280,
    open=_open_dsprites))


# ----------------------------------------------------------------------------- Shapes3D
SHAPES3D_FILE = "3dshapes.h5"
SHAPES3D_NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
SHAPES3D_SIZES = (10, 10, 10, 8, 4, 15)
SHAPES3D_EXPECTED = ("3dshapes.h5 (Burgess & Kim 2018) with datasets images uint8 "
                     "[480000, 64, 64, 3] and labels float [480000, 6]")


def _open_shapes3d(path: Path) -> Source:
    """Factor classes are the ranks of each ``labels`` column's distinct values (every
    value must occur, as in the published file); the values go to meta.json."""
    try:
        import h5py
    except ImportError:
        raise DataError("preparing Shapes3D reads HDF5 with h5py: pip install "
                        "'disentangle[datasets]'") from None
    path = _resolve(path, SHAPES3D_FILE)
    try:
        h5 = h5py.File(path, "r")
    except READ_ERRORS as err:
        raise _damaged(path, err, SHAPES3D_EXPECTED) from None
    try:
        missing = {"images", "labels"} - set(h5)
        if missing:
            raise DataError(f"{path}: has no dataset {sorted(missing)} (found {sorted(h5)}); "
                            f"expected {SHAPES3D_EXPECTED}")
        images = h5["images"]
        _expect(str(path), "images", images.shape, images.dtype, (64, 64, 3), "u",
                SHAPES3D_EXPECTED)
        _expect(str(path), "labels", h5["labels"].shape, h5["labels"].dtype, (6,), "f",
                SHAPES3D_EXPECTED)
        if h5["labels"].shape[0] != images.shape[0]:
            raise DataError(f"{path}: {images.shape[0]} images but {h5['labels'].shape[0]} "
                            "labels")
        labels = h5["labels"][:]
    except READ_ERRORS as err:
        h5.close()
        raise _damaged(path, err, SHAPES3D_EXPECTED) from None
    except DataError:
        h5.close()
        raise
    classes = np.empty(labels.shape, np.int64)
    values = {}
    for k, (name, size) in enumerate(zip(SHAPES3D_NAMES, SHAPES3D_SIZES)):
        uniq, classes[:, k] = np.unique(labels[:, k], return_inverse=True)
        if len(uniq) != size:
            h5.close()
            raise DataError(f"{path}: labels column {name} holds {len(uniq)} distinct values; "
                            f"expected {size} (every value occurs in the published file)")
        values[name] = uniq.tolist()
    n = images.shape[0]

    def chunks(rows: int):
        try:
            for start in range(0, n, rows):
                yield h5["images"][start:start + rows], classes[start:start + rows]
        except READ_ERRORS as err:
            raise _damaged(path, err, SHAPES3D_EXPECTED) from None
        finally:
            h5.close()

    return Source(n, (64, 64, 3), [path], chunks, {"factor_values": values})


register_source(SourceFormat(
    name="shapes3d", title="Shapes3D (Burgess & Kim 2018)", expects=SHAPES3D_FILE,
    factor_names=SHAPES3D_NAMES, factor_sizes=SHAPES3D_SIZES, num_images=480_000,
    open=_open_shapes3d,
    # Recorded by TFDS (tensorflow_datasets/datasets/shapes3d/checksums.tsv).
    published={SHAPES3D_FILE: (267_573_662, "0a0f6ed98baff276a50f3a081a7434d788da63cb135a"
                                            "98189b2a5b5769be1785")}))


# ----------------------------------------------------------------------------- MPI3D
MPI3D_NAMES = ("object_color", "object_shape", "object_size", "camera_height",
               "background_color", "horizontal_axis", "vertical_axis")
MPI3D_SIZES = (6, 6, 2, 3, 3, 40, 40)
MPI3D_2019_IMAGES = 460_800  # the first release: 4 x 4 x 2 x 3 x 3 x 40 x 40


def _mpi3d_opener(filename: str):
    expected = (f"{filename} (Gondal et al. 2019) with images uint8 [1036800, 64, 64, 3] in "
                "row-major factor order")

    def open_mpi3d(path: Path) -> Source:
        """Factors are the row's position in the row-major grid (the file has no labels)."""
        path = _resolve(path, filename)
        zf, stream, shape, dtype = _npz_member(path, "images", expected)
        stream.close()
        zf.close()
        _expect(str(path), "images", shape, dtype, (64, 64, 3), "u", expected)
        if shape[0] == MPI3D_2019_IMAGES:
            raise DataError(f"{path}: {shape[0]} images is the 2019 release (4 colours x 4 "
                            f"shapes); expected the current {expected}")
        if shape[0] > np.prod(MPI3D_SIZES):
            raise DataError(f"{path}: {shape[0]} images; expected at most "
                            f"{np.prod(MPI3D_SIZES)}")

        def chunks(rows: int):
            start = 0
            for imgs in _npz_rows(path, "images", rows, expected):
                idx = np.arange(start, start + len(imgs))
                yield imgs, np.stack(np.unravel_index(idx, MPI3D_SIZES), axis=1)
                start += len(imgs)

        return Source(shape[0], (64, 64, 3), [path], chunks)

    return open_mpi3d


for _variant in ("toy", "realistic", "real"):
    register_source(SourceFormat(
        name=f"mpi3d_{_variant}", title=f"MPI3D-{_variant} (Gondal et al. 2019)",
        expects=f"mpi3d_{_variant}.npz", factor_names=MPI3D_NAMES, factor_sizes=MPI3D_SIZES,
        num_images=int(np.prod(MPI3D_SIZES)), open=_mpi3d_opener(f"mpi3d_{_variant}.npz")))


# ----------------------------------------------------------------------------- Cars3D
CARS3D_SIZES = (4, 24, 183)  # elevation, azimuth, object
CARS3D_EXPECTED = ("the Cars3D directory of Reed et al. (2015) (data/cars in "
                   "nips2015-analogy-data.tar.gz): 183 .mat files, each with 'im' uint8 "
                   "[128, 128, 3, 24 azimuths, 4 elevations]")


def _car_images(path: Path) -> np.ndarray:
    """uint8 [96, 128, 128, 3] of one car; row ``r`` = azimuth ``r // 4``, elevation ``r % 4``."""
    from scipy.io import loadmat

    try:
        im = loadmat(path, variable_names=["im"]).get("im")
    except (*READ_ERRORS, TypeError) as err:
        raise _damaged(path, err, CARS3D_EXPECTED) from None
    if im is None or im.shape != (128, 128, 3, 24, 4) or im.dtype != np.uint8:
        found = "no 'im'" if im is None else f"'im' {im.dtype} {im.shape}"
        raise DataError(f"{path}: holds {found}; expected 'im' uint8 [128, 128, 3, 24, 4]")
    return im.transpose(3, 4, 0, 1, 2).reshape(96, 128, 128, 3)


def _open_cars3d(path: Path) -> Source:
    """Objects are numbered in sorted file-name order."""
    if not path.is_dir():
        raise DataError(f"{path}: expected a directory, {CARS3D_EXPECTED}")
    for where in (path, path / "cars", path / "data" / "cars"):
        files = sorted(where.glob("*.mat"))
        if files:
            break
    else:
        raise DataError(f"{path}: no .mat files in it, cars/ or data/cars/; expected "
                        f"{CARS3D_EXPECTED}")
    if len(files) > CARS3D_SIZES[2]:
        raise DataError(f"{where}: {len(files)} .mat files; expected {CARS3D_SIZES[2]} cars")
    _car_images(files[0])  # structure checked before anything is written
    elevation, azimuth = np.arange(96) % 4, np.arange(96) // 4

    def chunks(rows: int):
        for obj, f in enumerate(files):
            yield _car_images(f), np.stack([elevation, azimuth, np.full(96, obj)], axis=1)

    return Source(96 * len(files), (128, 128, 3), files, chunks,
                  {"objects": [f.name for f in files]})


register_source(SourceFormat(
    name="cars3d", title="Cars3D (Reed et al. 2015)", expects="cars/ (the directory of .mat "
    "files)", factor_names=("elevation", "azimuth", "object"), factor_sizes=CARS3D_SIZES,
    num_images=int(np.prod(CARS3D_SIZES)), open=_open_cars3d, native_size=128))


# ----------------------------------------------------------------------------- SmallNORB
NORB_SPLITS = {"training": "smallnorb-5x46789x9x18x6x2x96x96-training",
               "testing": "smallnorb-5x01235x9x18x6x2x96x96-testing"}
NORB_NAMES = ("category", "instance", "elevation", "azimuth", "lighting")
NORB_SIZES = (5, 10, 9, 18, 6)
# Binary matrix element types by magic number (LeCun's norb-v1.0-small readme).
NORB_MAGIC = {0x1E3D4C55: np.dtype("u1"), 0x1E3D4C54: np.dtype("<i4"),
              0x1E3D4C56: np.dtype("<i2"), 0x1E3D4C51: np.dtype("<f4"),
              0x1E3D4C53: np.dtype("<f8")}


def read_matrix_header(f, where: str) -> tuple[np.dtype, tuple[int, ...], int]:
    """Parse a binary-matrix header: int32 magic (element type), int32 ndim, then
    max(3, ndim) int32 dimensions (extra ones are 1), little-endian.

    Returns (dtype, shape, header bytes).
    """
    head = f.read(8)
    if len(head) < 8:
        raise DataError(f"{where}: {len(head)} bytes; expected a binary-matrix header")
    magic, ndim = np.frombuffer(head, "<i4")
    if int(magic) not in NORB_MAGIC or not 1 <= ndim <= 16:
        raise DataError(f"{where}: magic {int(magic):#x}, ndim {ndim}; expected a binary "
                        f"matrix (magic one of {', '.join(hex(m) for m in NORB_MAGIC)})")
    dims = f.read(4 * max(3, int(ndim)))
    if len(dims) < 4 * max(3, int(ndim)):
        raise DataError(f"{where}: header ends early; a truncated file?")
    shape = tuple(int(d) for d in np.frombuffer(dims, "<i4")[:ndim])
    return NORB_MAGIC[int(magic)], shape, 8 + len(dims)


def _norb_matrix(path: Path, dtype: str, tail: tuple[int, ...]):
    """(open file, shape) of a binary matrix of ``dtype`` [N, *tail]; for a plain file the
    size must be header + data (a truncated file says so)."""
    f = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
    try:
        found, shape, header = read_matrix_header(f, str(path))
    except READ_ERRORS as err:
        f.close()
        raise _damaged(path, err, f"a binary matrix {dtype} [N, {tail}]") from None
    if found != np.dtype(dtype) or shape[1:] != tail:
        f.close()
        raise DataError(f"{path}: binary matrix {found} {list(shape)}; expected {dtype} "
                        f"[N, {', '.join(map(str, tail))}]")
    if path.suffix != ".gz":
        want = header + int(np.prod(shape)) * found.itemsize
        if path.stat().st_size != want:
            f.close()
            raise DataError(f"{path}: {path.stat().st_size} bytes; its header promises "
                            f"{list(shape)} {found}, {want} bytes: the file is truncated")
    return f, shape


def _read_matrix(path: Path, dtype: str, tail: tuple[int, ...]) -> np.ndarray:
    f, shape = _norb_matrix(path, dtype, tail)
    with f:
        try:
            buf = f.read()
        except READ_ERRORS as err:
            raise _damaged(path, err, f"{dtype} {list(shape)}") from None
    want = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if len(buf) != want:
        raise DataError(f"{path}: {len(buf)} data bytes; expected {want} for {list(shape)}")
    return np.frombuffer(buf, dtype).reshape(shape)


def _norb_files(path: Path) -> dict[str, dict[str, Path]]:
    """split -> kind -> file (``.mat`` or ``.mat.gz``) for the splits present in ``path``."""
    splits = {}
    for split, prefix in NORB_SPLITS.items():
        found = {}
        for kind in ("dat", "cat", "info"):
            for name in (f"{prefix}-{kind}.mat", f"{prefix}-{kind}.mat.gz"):
                if (path / name).is_file():
                    found[kind] = path / name
                    break
        if found and len(found) < 3:
            missing = sorted({"dat", "cat", "info"} - set(found))
            raise DataError(f"{path}: the {split} split lacks "
                            f"{', '.join(f'{prefix}-{k}.mat' for k in missing)}")
        if found:
            splits[split] = found
    if not splits:
        names = [f"{p}-{k}.mat[.gz]" for p in NORB_SPLITS.values() for k in ("dat", "cat",
                                                                             "info")]
        raise DataError(f"{path}: none of the SmallNORB files; expected {', '.join(names)}")
    return splits


def _open_smallnorb(path: Path) -> Source:
    """The left image of each stereo pair; factors ``[category, instance, elevation,
    azimuth / 2, lighting]``; the splits present, training first."""
    if not path.is_dir():
        raise DataError(f"{path}: expected the directory holding the SmallNORB files")
    splits = _norb_files(path)
    counts, factors = [], []
    for split, files in splits.items():
        f, shape = _norb_matrix(files["dat"], "u1", (2, 96, 96))
        f.close()
        cat = _read_matrix(files["cat"], "<i4", ())
        info = _read_matrix(files["info"], "<i4", (4,))
        if not shape[0] == len(cat) == len(info):
            raise DataError(f"{path}: the {split} split has {shape[0]} images, {len(cat)} "
                            f"categories and {len(info)} info rows; expected equal counts")
        if (info[:, 2] % 2).any():
            raise DataError(f"{files['info']}: odd azimuth {info[info[:, 2] % 2 == 1, 2][0]};"
                            " SmallNORB azimuths are 0, 2, ..., 34")
        fac = np.column_stack([cat, info[:, 0], info[:, 1], info[:, 2] // 2, info[:, 3]])
        bad = (fac < 0) | (fac >= np.asarray(NORB_SIZES))
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise DataError(f"{path}: {split} row {row} has {NORB_NAMES[col]} {fac[row, col]}"
                            f"; expected 0..{NORB_SIZES[col] - 1}")
        counts.append(shape[0])
        factors.append(fac)

    def chunks(rows: int):
        for files, fac in zip(splits.values(), factors):
            f, shape = _norb_matrix(files["dat"], "u1", (2, 96, 96))
            pair = 2 * 96 * 96
            with f:
                for start in range(0, shape[0], rows):
                    n = min(rows, shape[0] - start)
                    try:
                        buf = f.read(n * pair)
                    except READ_ERRORS as err:
                        raise _damaged(files["dat"], err, f"uint8 {list(shape)}") from None
                    if len(buf) != n * pair:
                        raise DataError(f"{files['dat']}: ends after {start} of {shape[0]} "
                                        "images: the file is truncated")
                    left = np.frombuffer(buf, np.uint8).reshape(n, 2, 96, 96)[:, 0]
                    yield left[..., None], fac[start:start + n]

    all_files = [f for files in splits.values() for f in files.values()]
    return Source(sum(counts), (96, 96, 1), all_files, chunks, {"splits": list(splits)})


register_source(SourceFormat(
    name="smallnorb", title="SmallNORB (LeCun et al. 2004)", expects="the directory of "
    "smallnorb-*-{dat,cat,info}.mat[.gz]", factor_names=NORB_NAMES, factor_sizes=NORB_SIZES,
    num_images=48_600, open=_open_smallnorb, native_size=96,
    # Recorded by TFDS (tensorflow_datasets/datasets/smallnorb/checksums.tsv).
    published={
        "smallnorb-5x46789x9x18x6x2x96x96-training-dat.mat.gz": (
            131_896_188, "5ffd6272a07d32695ee1082a26a41a93a37aab8c28da047f8c34ed348d214873"),
        "smallnorb-5x46789x9x18x6x2x96x96-training-cat.mat.gz": (
            348, "2784e542c1922060691090952b6cd6278879a216c90f81476f0f00256d42cdaa"),
        "smallnorb-5x46789x9x18x6x2x96x96-training-info.mat.gz": (
            71_052, "de7eb932ebe7a4ee16217fead60660d0eb3d23632c2f4d1c51f88c501c17bf32"),
        "smallnorb-5x01235x9x18x6x2x96x96-testing-dat.mat.gz": (
            130_799_817, "cf7104eed3e51174d2f65b66d1e5878b9da233b886f161b0d88f4510ba2c7474"),
        "smallnorb-5x01235x9x18x6x2x96x96-testing-cat.mat.gz": (
            347, "ecaf6d5bb8c3bc5eab9cf0258f6d2198dd474e016e374836fc097f2e5ff509ff"),
        "smallnorb-5x01235x9x18x6x2x96x96-testing-info.mat.gz": (
            10_428, "16adf314226327ee006d1a44db8cfef52773c06c829951d5653a9f6f310248a2"),
    }))
