"""Ground-truth datasets: ``get_dataset(name, **options) -> GroundTruthData``.

Names: ``dsprites``, ``colour_shapes`` and ``colour_scene`` (rendered by the project, no
download), ``tfds:dsprites``, ``tfds:shapes3d``, ``tfds:smallnorb`` (read from the user's TFDS
data dir), ``npz:PATH`` (a user's file), and the real datasets prepared once from their
authors' files by ``disentangle data prepare`` (``dsprites_file``, ``shapes3d``,
``mpi3d_toy`` / ``_realistic`` / ``_real``, ``cars3d``, ``smallnorb``; prepared.py).
Further modules of this package register more (time series, ERPs, RF signals).
"""

from __future__ import annotations

from collections.abc import Callable

from disentangle.data.base import ArrayData, GroundTruthData, ProceduralData
from disentangle.registry import Registry

DATASETS: Registry[Callable[..., GroundTruthData]] = Registry("dataset", __name__)
register_dataset = DATASETS.register


def get_dataset(name: str, **options) -> GroundTruthData:
    """Build a dataset by registry name. ``prefix:ARG`` names pass ARG as ``spec``."""
    factory = DATASETS.get(name)
    if ":" in name and name not in DATASETS._entries:
        options = {"spec": name.split(":", 1)[1], **options}
    ds = factory(**options)
    ds.name = name
    return ds


__all__ = ["ArrayData", "DATASETS", "GroundTruthData", "ProceduralData", "get_dataset",
           "register_dataset"]
