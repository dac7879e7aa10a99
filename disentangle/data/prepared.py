"""The field's real datasets, prepared once from the authors' files and read by row.

``disentangle data prepare NAME --from PATH`` (:func:`prepare`) checks the original
file (structure, row count, checksum where one is published), then writes NAME's
prepared copy into ``$DISENTANGLE_DATA/NAME`` (default ``~/.cache/disentangle/data``,
see :func:`data_root`) or ``--out DIR``::

    images.npy   uint8 [N, H, W, C], 255 = 1.0 (readable with np.load(mmap_mode="r"))
    factors.npy  unsigned int [N, K], class indices
    meta.json    factor names and sizes, shapes, resize, source files' sizes and sha256

Everything is written in chunks into a temporary directory renamed at the end, so host
memory stays bounded and a killed prepare leaves nothing half-written. Images are
resized once here (``--image-size``) so every dataset can run on ``conv64``.

``data.name=NAME`` then reads that copy (:class:`PreparedData`): images are read row
by row with ``os.pread`` (only the rows of a batch are in memory; nothing is mapped,
so the process' RSS does not grow with the file). When the rows are the complete
factor grid in row-major order, the row of factors ``f`` is ``ravel_multi_index(f)``
and no factor array is held at all. The source formats register in
:data:`SOURCES` (disentangle/data/sources.py); docs/datasets.md states the facts used.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from disentangle.cache import cache_dir
from disentangle.data import register_dataset
from disentangle.data.base import ArrayData
from disentangle.errors import DataError
from disentangle.registry import Registry

FORMAT_VERSION = 1
CHUNK_ROWS = 2048  # rows per read/resize/write step while preparing
DEVICE_MAX_BYTES = 256 * 2**20  # prepared images up to this size are gathered on the device
RESAMPLE_FILTERS = ("lanczos", "box", "bilinear", "bicubic", "nearest")


@dataclasses.dataclass
class Source:
    """An opened, structurally checked original file (or directory of files).

    ``chunks(rows)`` yields ``(images uint8 [n, H, W, C], factors int [n, K])`` in file
    order, ``num_images`` rows in all.
    """

    num_images: int
    image_shape: tuple[int, int, int]
    files: list[Path]
    chunks: Callable[[int], Iterator[tuple[np.ndarray, np.ndarray]]]
    extra: dict = dataclasses.field(default_factory=dict)  # e.g. factor values, splits


@dataclasses.dataclass(frozen=True)
class SourceFormat:
    """One dataset as its authors publish it.

    Attributes:
      name: the prepared dataset's registry name (``data.name``).
      title: dataset and reference, for messages.
      expects: what ``--from`` takes, e.g. ``3dshapes.h5``.
      factor_names, factor_sizes: as the dataset documents them.
      num_images: rows in the published file(s).
      open: ``Path -> Source``; raises :class:`DataError` naming what was expected.
      published: file name -> (bytes, sha256) of the published files, where recorded.
      native_size: the published images' height and width.
    """

    name: str
    title: str
    expects: str
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    num_images: int
    open: Callable[[Path], Source]
    published: dict[str, tuple[int, str]] = dataclasses.field(default_factory=dict)
    native_size: int = 64


SOURCES: Registry[SourceFormat] = Registry("prepared dataset", "disentangle.data")


def register_source(fmt: SourceFormat) -> SourceFormat:
    """Add ``fmt`` to :data:`SOURCES` and ``fmt.name`` to the dataset registry."""
    SOURCES.register(fmt.name)(fmt)
    register_dataset(fmt.name)(functools.partial(load_prepared, fmt.name))
    return fmt


def data_root() -> Path:
    """``$DISENTANGLE_DATA``, default ``$DISENTANGLE_CACHE/data`` (``~/.cache/disentangle/
    data``)."""
    root = os.environ.get("DISENTANGLE_DATA")
    return Path(root).expanduser() if root else cache_dir("data")


def prepare_command(fmt: SourceFormat, out: str | Path | None = None) -> str:
    """The command that prepares ``fmt``; 64x64 (``conv64``) for datasets stored at another
    size."""
    size = "" if fmt.native_size == 64 else " --image-size 64"
    where = f" --out {out}" if out else ""
    return f"disentangle data prepare {fmt.name} --from PATH/TO/{fmt.expects}{size}{where}"


# ----------------------------------------------------------------------------- writing
def sha256_file(path: Path, block: int = 2**22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def resize_images(images: np.ndarray, size: int, resample: str = "lanczos") -> np.ndarray:
    """uint8 [n, H, W, C] -> uint8 [n, size, size, C], each image resized by PIL with
    ``resample`` (``lanczos`` is PIL's former ANTIALIAS, as disentanglement_lib used)."""
    from PIL import Image

    filt = Image.Resampling[resample.upper()]
    grey = images.shape[-1] == 1
    out = np.empty((len(images), size, size, images.shape[-1]), np.uint8)
    for i, img in enumerate(images):
        pic = Image.fromarray(img[..., 0] if grey else img)
        out[i] = np.asarray(pic.resize((size, size), filt)).reshape(size, size, -1)
    return out


class NpyWriter:
    """Appends rows to a C-order ``.npy`` of known shape; :meth:`close` checks the count."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype):
        self.path, self.shape, self.dtype = path, tuple(shape), np.dtype(dtype)
        self.rows = 0
        self.file = open(path, "wb")
        np.lib.format.write_array_header_1_0(self.file, {
            "descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
            "shape": self.shape})

    def append(self, rows: np.ndarray) -> None:
        self.file.write(np.ascontiguousarray(rows, self.dtype).tobytes())
        self.rows += len(rows)

    def close(self) -> None:
        self.file.close()
        if self.rows != self.shape[0]:
            raise DataError(f"{self.path.name}: wrote {self.rows} rows, expected {self.shape[0]}"
                            " (the source yielded fewer rows than it declared)")


def prepare(name: str, source_path: str | Path, *, image_size: int | None = None,
            out: str | Path | None = None, resample: str = "lanczos",
            allow_subset: bool = False, force: bool = False,
            log: Callable[[str], None] = print) -> Path:
    """Check ``source_path`` as dataset ``name``'s original file and write its prepared copy.

    Returns the prepared directory (``out`` or ``data_root() / name``).
    """
    try:
        fmt = SOURCES.get(name)
    except KeyError as err:
        raise DataError(f"data prepare: {err.args[0]}") from None
    if resample not in RESAMPLE_FILTERS:
        raise DataError(f"--resample {resample!r}: accepted are {', '.join(RESAMPLE_FILTERS)}")
    if image_size is not None and not 4 <= image_size <= 1024:
        raise DataError(f"--image-size {image_size}: accepted are 4..1024 pixels")
    path = Path(source_path).expanduser()
    if not path.exists():
        raise DataError(f"{name}: --from {path} does not exist; expected {fmt.expects}")
    out = Path(out).expanduser() if out else data_root() / name
    if (out / "meta.json").exists() and not force:
        raise DataError(f"{name} is already prepared in {out}; pass --force to replace it")
    if out.exists() and not (out / "meta.json").exists() and any(out.iterdir()):
        raise DataError(f"--out {out} exists and is not a prepared copy; name a new or empty "
                        "directory (prepare replaces it as a whole)")

    source = fmt.open(path)
    if source.num_images != fmt.num_images and not allow_subset:
        raise DataError(
            f"{path}: holds {source.num_images} images; the published {fmt.title} has "
            f"{fmt.num_images}. Is the file truncated or partial? To prepare a subset you "
            "made yourself, pass --allow-subset.")
    sources = [_check_checksum(f, fmt, log) for f in source.files]

    height, width, channels = source.image_shape
    obs = (image_size or height, image_size or width, channels)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        grid_order = _write_rows(tmp, source, fmt, obs, image_size, resample, log)
        meta = {
            "format": "disentangle-prepared", "version": FORMAT_VERSION, "name": fmt.name,
            "title": fmt.title, "factor_names": list(fmt.factor_names),
            "factor_sizes": list(fmt.factor_sizes), "num_images": source.num_images,
            "observation_shape": list(obs), "source_image_shape": list(source.image_shape),
            "resize": None if obs[:2] == (height, width)
            else {"size": image_size, "filter": resample},
            "grid_order": grid_order, "subset": source.num_images != fmt.num_images,
            "sources": sources, "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                             time.gmtime()),
            **source.extra}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_rows(tmp: Path, source: Source, fmt: SourceFormat, obs: tuple[int, int, int],
                image_size: int | None, resample: str, log) -> bool:
    """``images.npy`` and ``factors.npy`` of ``source`` in ``tmp``, chunk by chunk, images
    resized to ``obs`` where needed; returns whether the rows are the complete factor grid
    in row-major order (row i has factors ``unravel_index(i, sizes)``)."""
    sizes = np.asarray(fmt.factor_sizes)
    images = NpyWriter(tmp / "images.npy", (source.num_images, *obs), np.uint8)
    factors = NpyWriter(tmp / "factors.npy", (source.num_images, len(sizes)),
                        np.min_scalar_type(int(sizes.max()) - 1))
    grid_order = source.num_images == int(np.prod(sizes))
    start, t0, shown = 0, time.time(), time.time()
    for imgs, facs in source.chunks(CHUNK_ROWS):
        facs = np.asarray(facs, np.int64)
        bad = (facs < 0) | (facs >= sizes)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise DataError(f"{source.files[0]}: row {start + row} has "
                            f"{fmt.factor_names[col]} = {facs[row, col]}; accepted "
                            f"0..{sizes[col] - 1}")
        if imgs.shape[1:3] != obs[:2]:
            imgs = resize_images(imgs, image_size, resample)
        images.append(imgs)
        factors.append(facs)
        grid_order = grid_order and bool((np.ravel_multi_index(tuple(facs.T), sizes) ==
                                          np.arange(start, start + len(facs))).all())
        start += len(facs)
        if time.time() - shown > 10 or start == source.num_images:
            shown = time.time()
            log(f"  {start}/{source.num_images} images ({shown - t0:.0f} s)")
    images.close()
    factors.close()
    return grid_order


def _check_checksum(path: Path, fmt: SourceFormat, log) -> dict:
    """Size and sha256 of one source file; a file of the published size must have the
    published sha256 (same size, other bytes: corrupt)."""
    size = path.stat().st_size
    sha = sha256_file(path)
    published = fmt.published.get(path.name)
    if published and size == published[0] and sha != published[1]:
        raise DataError(f"{path}: sha256 {sha} differs from the published file's "
                        f"{published[1]} (same size, {size} bytes): the file is corrupt; "
                        "download it again")
    if published and size != published[0]:
        log(f"note: {path.name} is {size} bytes, the published file {published[0]}; "
            "checked by structure only")
    return {"file": path.name, "bytes": size, "sha256": sha,
            "published_sha256_matches": bool(published) and sha == published[1]}


# ----------------------------------------------------------------------------- reading
class NpyRows:
    """A C-order ``.npy`` file read by row with ``os.pread``: ``rows[idx]`` -> [n, *row].

    Nothing is memory-mapped, so only the rows asked for occupy the process' memory
    (the kernel's page cache is not counted in its RSS). Thread-safe (positional reads).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        with open(self.path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, self.dtype = read_header(f)
            self.offset = f.tell()
        if fortran:
            raise DataError(f"{path}: stored in Fortran order; prepare it again")
        self.shape = tuple(shape)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self.nbytes = self.shape[0] * self.row_bytes
        found = self.path.stat().st_size
        if found != self.offset + self.nbytes:
            raise DataError(f"{path}: {found} bytes, expected {self.offset + self.nbytes} for "
                            f"{self.shape} {self.dtype}; the prepared copy is truncated, "
                            "prepare it again")
        self._fd: tuple[int, int] | None = None  # (pid, fd): reopened in a forked child

    def __len__(self) -> int:
        return self.shape[0]

    def _descriptor(self) -> int:
        if self._fd is None or self._fd[0] != os.getpid():
            self._fd = (os.getpid(), os.open(self.path, os.O_RDONLY))
            weakref.finalize(self, os.close, self._fd[1])
        return self._fd[1]

    def __getitem__(self, rows) -> np.ndarray:
        """Rows ``rows`` (int array [n]) in that order; runs of consecutive rows are read
        with one call."""
        rows = np.asarray(rows, np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"{self.path}: rows must be in 0..{len(self) - 1}")
        uniq, inverse = np.unique(rows, return_inverse=True)
        buf = bytearray(len(uniq) * self.row_bytes)
        view = memoryview(buf)
        fd = self._descriptor()
        breaks = np.flatnonzero(np.diff(uniq) != 1) + 1
        for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(uniq)]):
            pos, end = lo * self.row_bytes, hi * self.row_bytes
            at = self.offset + int(uniq[lo]) * self.row_bytes
            while pos < end:  # one call unless the kernel returns less (reads over 2 GiB)
                got = os.preadv(fd, [view[pos:end]], at)
                if got <= 0:
                    raise DataError(f"{self.path}: short read near row {uniq[lo]}; the file "
                                    "changed since it was opened")
                pos, at = pos + got, at + got
        out = np.frombuffer(buf, self.dtype).reshape(len(uniq), *self.shape[1:])
        return out[inverse]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[np.arange(len(self))]
        return out if dtype is None else out.astype(dtype)


class PreparedData(ArrayData):
    """A prepared dataset (see the module docstring) read with bounded host memory.

    Batches come from the host unless the images fit in ``device_max_bytes`` (then
    :meth:`ArrayData.device_sampler` gathers them on the device).
    """

    def __init__(self, name: str, root: Path, meta: dict, device_max_bytes: int):
        images = NpyRows(root / "images.npy")
        if list(images.shape) != [meta["num_images"], *meta["observation_shape"]]:
            raise DataError(f"{root}/images.npy has shape {images.shape}; meta.json says "
                            f"{[meta['num_images'], *meta['observation_shape']]}; prepare again")
        self.root, self.meta, self.device_max_bytes = root, meta, int(device_max_bytes)
        self.grid_order = bool(meta["grid_order"])
        if self.grid_order:  # row = ravel(factors): no factor array in memory
            self.name, self.images = name, images
            self.factor_names = tuple(meta["factor_names"])
            self.factor_sizes = tuple(int(s) for s in meta["factor_sizes"])
            self.observation_shape = tuple(images.shape[1:])
        else:
            factors = np.load(root / "factors.npy").astype(np.int64)
            super().__init__(name, images, factors, meta["factor_names"], meta["factor_sizes"])

    @functools.cached_property
    def factors(self) -> np.ndarray:
        """int64 [N, K]; for grid-ordered data built on first use (device sampler only)."""
        return self.index_to_factors(np.arange(len(self.images)))

    def sample_factors(self, n, rng):
        if self.grid_order:
            return self.index_to_factors(rng.integers(0, len(self.images), size=n))
        return super().sample_factors(n, rng)

    def rows_for_factors(self, factors, rng):
        if self.grid_order:
            return self.factors_to_index(np.asarray(factors))
        return super().rows_for_factors(factors, rng)

    def device_sampler(self):
        if self.images.nbytes > self.device_max_bytes:
            return None
        return super().device_sampler()


def load_prepared(name: str, path: str | None = None,
                  device_max_bytes: int = DEVICE_MAX_BYTES) -> PreparedData:
    """``data.name=NAME``: the copy in ``path`` (``data.options.path``) or ``data_root()/NAME``."""
    fmt = SOURCES.get(name)
    root = Path(path).expanduser() if path else data_root() / name
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        raise DataError(f"{name} is not prepared in {root}. Prepare it once from "
                        f"{fmt.title}'s file with:\n  {prepare_command(fmt, path)}")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != "disentangle-prepared" or meta.get("name") != name:
        raise DataError(f"{root} holds {meta.get('name')!r}, not {name!r}; prepare {name} "
                        f"with:\n  {prepare_command(fmt, path)}")
    if meta.get("version") != FORMAT_VERSION:
        raise DataError(f"{root} was prepared in format version {meta.get('version')}; this "
                        f"workbench reads version {FORMAT_VERSION}; prepare it again with:\n  "
                        f"{prepare_command(fmt, path)} --force")
    return PreparedData(name, root, meta, device_max_bytes)
