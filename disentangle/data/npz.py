"""A user's own ground-truth data: ``npz:PATH``.

The file holds ``images`` (uint8 [N, H, W, C]) and ``factors`` (integer [N, K]), and
optionally ``factor_names`` (str [K]) and ``factor_sizes`` (int [K]; default
``factors.max(0) + 1``). It is loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from disentangle.data import register_dataset
from disentangle.data.base import ArrayData
from disentangle.errors import DataError

EXPECTED = "an .npz archive (np.savez) of 'images' uint8 [N, H, W, C] and 'factors' int [N, K]"


def _read_arrays(path: Path, where: str) -> dict[str, np.ndarray]:
    """Every array of the archive; a truncated, corrupt or non-npz file is a DataError."""
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(6)
        found = ("an empty file" if not head else "a .npy file (one array)"
                 if head == b"\x93NUMPY" else "not a zip archive (truncated or not an .npz)")
        raise DataError(f"{where}: is {found}; expected {EXPECTED}")
    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as f:
            for key in f.files:
                arrays[key] = f[key]
    except ValueError as err:
        if "allow_pickle" in str(err):  # object arrays
            raise DataError(f"{where}: array {key!r} holds Python objects, which are not read "
                            f"(no pickle); expected {EXPECTED}") from None
        raise DataError(f"{where}: array {key!r} is corrupt (bad .npy header: "
                        f"{str(err)[:80]!r}...); expected {EXPECTED}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        raise DataError(f"{where}: array {key!r} is corrupt ({type(err).__name__}: {err}); "
                        f"expected {EXPECTED}") from None
    return arrays


@register_dataset("npz:")
def load_npz(spec: str) -> ArrayData:
    path = Path(spec).expanduser()
    where = f"npz:{spec}"
    if not path.is_file():
        raise DataError(f"{where}: no such file")
    arrays = _read_arrays(path, where)
    for key in ("images", "factors"):
        if key not in arrays:
            raise DataError(f"{where}: missing array {key!r}; found {sorted(arrays)}; expected "
                            "'images' uint8 [N, H, W, C] and 'factors' int [N, K]")
    images, factors = arrays["images"], arrays["factors"]
    if images.dtype != np.uint8 or images.ndim != 4:
        raise DataError(f"{where}: 'images' is {images.dtype} with shape {images.shape}; "
                        "expected uint8 [N, H, W, C] (add a channel axis for grey images)")
    if factors.dtype.kind not in "iu" or factors.ndim != 2:
        raise DataError(f"{where}: 'factors' is {factors.dtype} with shape {factors.shape}; "
                        "expected integer [N, K]")
    if len(factors) != len(images):
        raise DataError(f"{where}: {len(images)} images but {len(factors)} factor rows")
    if len(images) == 0:
        raise DataError(f"{where}: holds no examples")
    if factors.min() < 0:
        raise DataError(f"{where}: 'factors' has negative value {factors.min()}; factors are "
                        "class indices 0..size-1")
    k = factors.shape[1]
    names = arrays.get("factor_names", np.asarray([f"factor_{i}" for i in range(k)]))
    if names.shape != (k,):
        raise DataError(f"{where}: 'factor_names' has shape {names.shape}; expected ({k},)")
    sizes = arrays.get("factor_sizes", factors.max(0) + 1)
    if sizes.shape != (k,) or (factors >= sizes).any():
        raise DataError(f"{where}: 'factor_sizes' {sizes.tolist()} do not cover the factors "
                        f"(maximum values {factors.max(0).tolist()})")
    return ArrayData(where, images, factors, [str(n) for n in names], sizes.tolist())
