"""What a run records while it trains, besides its checkpoints.

- ``metrics.jsonl`` (always): one JSON row per logged step (``step``, ``loss``, every loss
  term, ``images_per_sec``, ``time``); read back with :func:`read_log`.
- ``train.log_to``: more writers fed the same rows and the run's images, from
  :data:`WRITERS`: ``tensorboard`` (event files in ``WORKDIR/tensorboard``, through
  tensorboardX) and ``wandb`` (Weights & Biases; ``WANDB_MODE=offline`` keeps it local).
  Both are optional extras (``pip install 'disentangle-workbench[logging]'``).
- ``eval.every = N > 0``: every N steps the run is scored on a fixed sample
  (``eval.every_samples`` observations drawn with ``eval.seed``) with the metrics
  ``eval.every_metrics``; rows go to ``WORKDIR/eval_log.jsonl`` and to the writers, with
  the NMI matrix and a linear traversal grid (image observations only) as images.
  Evaluation only reads the parameters and draws from its own generator, so the training
  stream is unchanged: a run logs the same losses with and without it, and resumes
  exactly.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from disentangle.errors import ConfigError, UserError
from disentangle.registry import Registry

LOG = "metrics.jsonl"
EVAL_LOG = "eval_log.jsonl"


# ----------------------------------------------------------------------------- JSON lines
def read_rows(path: Path) -> list[dict]:
    """The rows of a JSON-lines log; a torn last line (a kill mid-write) is dropped with a
    warning, a bad line elsewhere is an error naming the file and line."""
    lines = path.read_text().splitlines()
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                warnings.warn(f"{path}: dropped a torn last line (line {i + 1}: {line[:60]!r})",
                              stacklevel=3)
                continue
            raise UserError(f"{path}: line {i + 1} is not JSON ({line[:60]!r}); the log is "
                            "damaged in the middle, not only at its end") from None
    return rows


def truncate_log(path: Path, last_step: int, warn_missing: bool = True) -> None:
    """Keep the rows of steps <= last_step (the checkpoint a resume starts from).

    A missing log of a run that resumes from a checkpoint is recreated (empty: the steps up
    to ``last_step`` are not recoverable) with a warning.
    """
    if not path.exists():
        if last_step and warn_missing:
            warnings.warn(f"{path} is missing; it is recreated and logging resumes after step "
                          f"{last_step} (the rows of steps 1..{last_step} are lost)",
                          stacklevel=2)
        return
    keep = [row for row in read_rows(path) if row["step"] <= last_step]
    path.write_text("".join(json.dumps(row) + "\n" for row in keep))


def read_log(workdir: str | Path, name: str = LOG) -> list[dict]:
    """The rows of a run's ``metrics.jsonl`` (or ``eval_log.jsonl``), [] if absent."""
    path = Path(workdir) / name
    return read_rows(path) if path.exists() else []


# ----------------------------------------------------------------------------- writers
WRITERS: Registry[Callable[..., Any]] = Registry("log writer")


def _need(module: str, writer: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"train.log_to={writer!r} needs the {module!r} package: pip install "
                        "'disentangle-workbench[logging]'") from None


@WRITERS.register("tensorboard")
class TensorBoardWriter:
    """TensorBoard event files in ``WORKDIR/tensorboard`` (tensorboardX)."""

    def __init__(self, workdir: Path, config: ml_collections.ConfigDict):
        self.writer = _need("tensorboardX", "tensorboard").SummaryWriter(
            str(workdir / "tensorboard"))

    def scalars(self, step: int, row: dict[str, float], prefix: str) -> None:
        for key, value in row.items():
            self.writer.add_scalar(f"{prefix}/{key}", value, step)
        self.writer.flush()

    def image(self, step: int, name: str, image: np.ndarray) -> None:
        self.writer.add_image(name, image, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


@WRITERS.register("wandb")
class WandbWriter:
    """A Weights & Biases run named after the run directory (resumed with it)."""

    def __init__(self, workdir: Path, config: ml_collections.ConfigDict):
        import hashlib

        self.wandb = _need("wandb", "wandb")
        run_id = hashlib.sha1(str(workdir.resolve()).encode()).hexdigest()[:16]
        self.run = self.wandb.init(project=config.train.get("wandb_project", "disentangle"),
                                   dir=str(workdir), name=workdir.name, id=run_id,
                                   resume="allow", config=config.to_dict())

    def scalars(self, step: int, row: dict[str, float], prefix: str) -> None:
        self.run.log({f"{prefix}/{k}": v for k, v in row.items()}, step=step)

    def image(self, step: int, name: str, image: np.ndarray) -> None:
        self.run.log({name: self.wandb.Image(image)}, step=step)

    def close(self) -> None:
        self.run.finish()


def check_log_to(log_to) -> tuple[str, ...]:
    names = tuple(n for n in log_to if n != "jsonl")
    for name in names:
        if name not in WRITERS:
            raise ConfigError(f"train.log_to contains {name!r}; accepted: jsonl, "
                              f"{', '.join(WRITERS)}")
    return names


# ----------------------------------------------------------------------------- tracker
class Tracker:
    """The writers and the periodic evaluation of one run directory."""

    def __init__(self, workdir: Path, config: ml_collections.ConfigDict, dataset,
                 model_of: Callable[[Any], Any], start: int, primary: bool = True):
        self.workdir, self.config, self.model_of = Path(workdir), config, model_of
        ev = config.get("eval", ml_collections.ConfigDict())
        self.every = int(ev.get("every", 0) or 0)
        self.writers = [WRITERS.get(n)(self.workdir, config)
                        for n in check_log_to(config.train.get("log_to", ()))] if primary else []
        self.primary = primary
        if self.every and primary:
            truncate_log(self.workdir / EVAL_LOG, start, warn_missing=False)
            # The evaluation sample of disentangle.represent: distinct stored rows of a
            # finite dataset (disjoint held-out splits), drawn once.
            from disentangle.represent import evaluation_batches

            batches = list(evaluation_batches(dataset, int(ev.get("every_samples", 2000)),
                                              int(ev.get("seed", 0))))
            self.factors = np.concatenate([f for _, f, _ in batches])
            self.observations = np.concatenate([x for _, _, x in batches])
            self.metric_names = list(ev.get("every_metrics", ("infomec", "mig")))
            self.factor_names = list(dataset.factor_names)

    def log(self, step: int, row: dict[str, float]) -> None:
        scalars = {k: v for k, v in row.items() if k not in ("step", "time")}
        for w in self.writers:
            w.scalars(step, scalars, "train")

    def due(self, step: int, last: bool) -> bool:
        """Whether step ``step`` is an ``eval.every`` step (or the last one)."""
        return bool(self.every and self.primary and (step % self.every == 0 or last))

    def evaluate(self, step: int, params: Any) -> None:
        """Score the parameters on the fixed sample; a row to eval_log.jsonl and writers."""
        import metrics
        from disentangle.represent import Encoded, encode_batches

        mean, logvar, codes = encode_batches(self.model_of(params), self.observations)
        primary = next(iter(Encoded(self.factors, mean, logvar, codes=codes)
                            .representations().values()))  # as disentangle evaluate scores
        result = metrics.evaluate(primary, self.factors, names=self.metric_names)
        row = {"step": step, **metrics.scalars(result)}
        with open(self.workdir / EVAL_LOG, "a") as f:
            f.write(json.dumps(row) + "\n")
        images = {}
        if self.writers and "nmi" in result:
            images["eval/nmi"] = nmi_image(result["nmi"], self.factor_names)
        if self.writers and self.observations.ndim == 4:  # [n, H, W, C]: images
            images["eval/traversals"] = self._traversal_image(params)
        for w in self.writers:
            w.scalars(step, {k: v for k, v in row.items() if k != "step"}, "eval")
            for name, image in images.items():
                w.image(step, name, image)

    def _traversal_image(self, params: Any) -> np.ndarray:
        """Linear traversals of every latent from the sample's first image, [H, W, 3]."""
        from disentangle.traverse.figures import traversal_grid
        from disentangle.traverse.linear import linear_traversals

        t = linear_traversals(self.model_of(params), self.observations[:1],
                              self.observations[:500], num_steps=9)
        return np.asarray(traversal_grid(t.images, t.row_labels).convert("RGB"))

    def close(self) -> None:
        for w in self.writers:
            w.close()


def nmi_image(nmi: np.ndarray, factor_names) -> np.ndarray:
    """The NMI heatmap as an RGB uint8 array [H, W, 3] (for the writers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1 + 0.4 * nmi.shape[1], 1 + 0.4 * nmi.shape[0]))
    ax.imshow(np.asarray(nmi), vmin=0, vmax=1, cmap="viridis")
    ax.set_yticks(range(len(factor_names)), factor_names, fontsize=7)
    ax.set_xlabel("latent", fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
