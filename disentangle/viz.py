"""Shared figure helpers: NMI heatmaps, training curves, image grids, PNG output.

Every function writes a PNG and returns its path; matplotlib runs headless (Agg).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save(fig, path: str | Path, dpi: int = 110) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def nmi_heatmap(nmi: np.ndarray, factor_names: Sequence[str], path: str | Path,
                title: str = "", active: np.ndarray | None = None) -> Path:
    """Heatmap of NMI [K factors, L latents]; inactive latents are hatched grey."""
    nmi = np.asarray(nmi, float)
    k, l = nmi.shape
    fig, ax = plt.subplots(figsize=(0.45 * l + 2.2, 0.45 * k + 1.2))
    im = ax.imshow(nmi, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_yticks(range(k), factor_names)
    ax.set_xticks(range(l), [f"z{j}" for j in range(l)], rotation=90)
    for i in range(k):
        for j in range(l):
            ax.text(j, i, f"{nmi[i, j]:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if nmi[i, j] < 0.5 else "black")
    if active is not None:
        for j in np.flatnonzero(~np.asarray(active, bool)):
            ax.axvspan(j - 0.5, j + 0.5, color="0.6", alpha=0.7, hatch="//")
    ax.set_xlabel("latent")
    ax.set_title(title or "normalised mutual information I(s_i; z_j) / H(s_i)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04)
    return save(fig, path)


def training_curves(log: list[dict], path: str | Path, title: str = "") -> Path:
    """One panel per logged loss term against step (log-scaled when positive)."""
    skip = {"step", "time", "images_per_sec"}
    keys = [k for k in log[0] if k not in skip and isinstance(log[0][k], int | float)]
    keys = keys[:8]
    steps = np.asarray([r["step"] for r in log])
    fig, axes = plt.subplots(1, len(keys), figsize=(2.6 * len(keys), 2.3), squeeze=False)
    for ax, key in zip(axes[0], keys):
        values = np.asarray([r.get(key, np.nan) for r in log], float)
        ax.plot(steps, values, lw=1)
        if np.all(values[np.isfinite(values)] > 0) and np.nanmax(values) > 20 * np.nanmin(values):
            ax.set_yscale("log")
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def image_grid(images: np.ndarray, path: str | Path, row_labels: Sequence[str] = (),
               title: str = "") -> Path:
    """Images [rows, cols, H, W, C] in [0, 1] as one grid."""
    rows, cols = images.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(0.8 * cols + 0.8, 0.8 * rows + 0.3),
                             squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            img = np.clip(images[r, c], 0, 1)
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0 and r < len(row_labels):
                ax.set_ylabel(row_labels[r], fontsize=7, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(wspace=0.03, hspace=0.03)
    return save(fig, path)


def metrics_over_steps(series: dict[str, list[dict]], metrics: Sequence[str], path: str | Path,
                       groups: dict[str, str] | None = None) -> Path:
    """One panel per metric against the training step, one line per run (runs of the same
    group share a colour). ``series``: run name -> rows of its ``eval_log.jsonl``."""
    groups = groups or {name: name for name in series}
    palette = plt.get_cmap("tab10")
    colour = {g: palette(i % 10) for i, g in enumerate(dict.fromkeys(groups.values()))}
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 2.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        seen = set()
        for name, rows in series.items():
            rows = [r for r in rows if metric in r]
            if not rows:
                continue
            g = groups[name]
            ax.plot([r["step"] for r in rows], [r[metric] for r in rows], "o-", ms=2, lw=1,
                    color=colour[g], label=None if g in seen else g)
            seen.add(g)
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylim(0, 1.02)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path)
