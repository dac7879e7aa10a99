"""The workbench's cache of derived artefacts (factor predictors, TFDS factor indices,
compiled XLA programs: :func:`disentangle.xla_options.enable_compilation_cache`).

Location: ``$DISENTANGLE_CACHE`` or ``~/.cache/disentangle``. Everything in it can be
rebuilt; deleting it only costs time.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``$DISENTANGLE_CACHE`` (default ``~/.cache/disentangle``) joined with ``parts``;
    not created."""
    root = os.environ.get("DISENTANGLE_CACHE") or str(Path.home() / ".cache" / "disentangle")
    return Path(root, *parts)
