"""Figures of the active/passive-variable analysis (Bonheme & Grzes, "Be More Active!").

- ``variance_scatter``: each latent at (m_i, v_i) = (mean, variance over inputs of its
  posterior variance sigma_i^2(x)) with the active region (m <= 0.1, v < 0.1) and the
  passive region (|m - 1| <= 0.1, v < 0.1) shaded; everything else is mixed.
- ``correlation_heatmaps``: |Pearson correlation| between latents of the mean and of the
  sampled representation side by side, latents ordered active, mixed, passive.

Plain matplotlib (Agg), one function per figure, each returning the saved path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

COLOURS = {"active": "tab:green", "mixed": "tab:orange", "passive": "tab:blue"}
ORDER = ("active", "mixed", "passive")


def variance_scatter(variance_mean: Sequence[float], variance_var: Sequence[float],
                     labels: Sequence[str], path: str | Path, *, var_threshold: float = 0.1,
                     mean_tolerance: float = 0.1, title: str = "") -> Path:
    """Scatter of (m_i, v_i) per latent with the active and passive regions drawn."""
    m, v, labels = np.asarray(variance_mean), np.asarray(variance_var), np.asarray(labels)
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    x_max = max(1.0 + 2 * mean_tolerance, float(m.max(initial=0)) * 1.05)
    y_max = max(2 * var_threshold, float(v.max(initial=0)) * 1.1)
    ax.add_patch(Rectangle((0, 0), mean_tolerance, var_threshold, color=COLOURS["active"],
                           alpha=0.15, label="active region"))
    ax.add_patch(Rectangle((1 - mean_tolerance, 0), 2 * mean_tolerance, var_threshold,
                           color=COLOURS["passive"], alpha=0.15, label="passive region"))
    ax.axhline(var_threshold, color="grey", lw=0.8, ls="--")
    for name in ORDER:
        sel = labels == name
        if sel.any():
            ax.scatter(m[sel], v[sel], s=40, color=COLOURS[name], edgecolor="k",
                       label=f"{name} ({int(sel.sum())})", zorder=3)
    for i, (xi, yi) in enumerate(zip(m, v)):
        ax.annotate(str(i), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlim(-0.02 * x_max, x_max)
    ax.set_ylim(-0.02 * y_max, y_max)
    ax.set_xlabel(r"$m_i$ = mean$_x\ \sigma_i^2(x)$")
    ax.set_ylabel(r"$v_i$ = var$_x\ \sigma_i^2(x)$")
    ax.set_title(title or "posterior variances per latent")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def latent_order(labels: Sequence[str]) -> np.ndarray:
    """Latent indices sorted active, mixed, passive (stable within a group)."""
    labels = np.asarray(labels)
    return np.concatenate([np.flatnonzero(labels == name) for name in ORDER]).astype(int)


def abs_correlation(codes: np.ndarray) -> np.ndarray:
    """|corr(z_i, z_j)|, float [L, L]; a constant latent has correlation 0 (1 on diagonal)."""
    x = np.asarray(codes, np.float64)
    x = x - x.mean(0)
    sd = x.std(0)
    z = x / np.where(sd > 0, sd, 1.0)
    corr = np.abs(z.T @ z / len(x))
    np.fill_diagonal(corr, 1.0)
    return corr


def correlation_heatmaps(mean: np.ndarray, sampled: np.ndarray, labels: Sequence[str],
                         path: str | Path, title: str = "") -> Path:
    """|correlation| matrices of the mean and sampled representations, side by side."""
    order = latent_order(labels)
    labels = np.asarray(labels)
    ticks = [f"{i}{labels[i][0].upper()}" for i in order]  # e.g. "3P" = latent 3, passive
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, (name, codes) in zip(axes, (("mean", mean), ("sampled", sampled))):
        corr = abs_correlation(np.asarray(codes)[:, order])
        im = ax.imshow(corr, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(order)), ticks, fontsize=7, rotation=90)
        ax.set_yticks(range(len(order)), ticks, fontsize=7)
        ax.set_title(f"{name} representation |corr|")
        # Group boundaries (active | mixed | passive).
        edges = np.cumsum([np.sum(labels == g) for g in ORDER])[:-1] - 0.5
        for e in edges:
            ax.axhline(e, color="w", lw=1)
            ax.axvline(e, color="w", lw=1)
    fig.colorbar(im, ax=axes, shrink=0.8)
    fig.suptitle(title or "A = active, M = mixed, P = passive")
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def counts_and_gaps(betas: Sequence[float], counts: Sequence[dict[str, int]],
                    tc_mean: dict[str, Sequence[float | None]],
                    tc_sampled: dict[str, Sequence[float | None]], path: str | Path) -> Path:
    """Left: active/mixed/passive counts per beta (stacked). Right: Gaussian TC of the mean
    (solid) and sampled (dashed) representation per group and beta (missing = empty group).
    """
    x = np.arange(len(betas))
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.8))
    bottom = np.zeros(len(betas))
    for name in ORDER:
        values = np.array([c[name] for c in counts], float)  # may be means over seeds
        ax0.bar(x, values, bottom=bottom, color=COLOURS[name], label=name)
        bottom += values
    ax0.set_xticks(x, [f"{b:g}" for b in betas])
    ax0.set_xlabel("beta")
    ax0.set_ylabel("latents")
    ax0.legend(fontsize=8)
    ax0.set_title("labels per beta")
    colours = {"all": "k", "non_passive": "tab:purple", **COLOURS}
    for group in tc_mean:
        as_float = lambda v: np.array([np.nan if a is None else a for a in v], float)  # noqa: E731
        ax1.plot(x, as_float(tc_mean[group]), "o-", color=colours[group], label=f"{group} mean")
        ax1.plot(x, as_float(tc_sampled[group]), "s--", color=colours[group], alpha=0.6,
                 label=f"{group} sampled")
    ax1.set_xticks(x, [f"{b:g}" for b in betas])
    ax1.set_xlabel("beta")
    ax1.set_ylabel("Gaussian total correlation (nats)")
    ax1.set_title("TC: mean (solid) vs sampled (dashed)")
    ax1.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
