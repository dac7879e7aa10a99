"""Which ground-truth factors change along a traversal (the evaluation of Song et al., 2023).

A factor predictor gives, at every step s of a traversal, a distribution p_s^k over the
values of each factor k. The change of factor k along the traversal is

    tv:        C_k = sum_s TV(p_s^k, p_{s+1}^k) = sum_s 1/2 sum_v |p_s^k(v) - p_{s+1}^k(v)|
    expected:  C_k = sum_s |E_{p_{s+1}^k}[v] - E_{p_s^k}[v]| / (size_k - 1)

(both in "whole factor ranges": a clean jump between two values counts 1 in tv; a sweep
over the full ordered range counts 1 in expected). Averaged over seed images, one
traversal's change vector C [K] gives

    top factor  = argmax_k C_k,     purity = max_k C_k / sum_k C_k  (1 = one factor only)

A traversal is active when sum_k C_k >= ``active_threshold``; collapsed latents and stalled
flows are inactive and left out of the means. Per method: mean purity over active
traversals, and coverage = the number of distinct top factors among them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from disentangle.traverse.common import Traversals

MEASURES = ("tv", "expected")


def factor_change(probs: Sequence[np.ndarray], measure: str = "tv") -> np.ndarray:
    """Change of each factor along one or many traversals.

    Args:
      probs: K arrays [..., S, size_k], predicted distributions at the S steps.
      measure: 'tv' or 'expected' (see the module docstring).
    Returns:
      float [..., K].
    """
    out = []
    for p in probs:
        p = np.asarray(p, np.float64)
        if measure == "tv":
            step = 0.5 * np.abs(np.diff(p, axis=-2)).sum(-1)  # [..., S-1]
        elif measure == "expected":
            size = p.shape[-1]
            mean = p @ np.arange(size) / max(size - 1, 1)  # [..., S]
            step = np.abs(np.diff(mean, axis=-1))
        else:
            raise ValueError(f"measure {measure!r}: accepted values are {MEASURES}")
        out.append(step.sum(-1))
    return np.stack(out, axis=-1)


def purity_report(change: np.ndarray, factor_names: Sequence[str], row_labels: Sequence[str],
                  active_threshold: float = 0.25, share_threshold: float = 0.2) -> dict:
    """Scores from a change matrix [rows, K] (already averaged over seeds).

    Returns a dict with ``traversals`` (one entry per row: label, top_factor, purity,
    total_change, active, factors_changed = how many factors carry >= share_threshold of
    the change, change per factor) and the method-level ``mean_purity`` (over active
    rows), ``num_active``, ``factors_covered`` (distinct top factors of active rows) and
    ``covered`` (their names).
    """
    change = np.asarray(change, np.float64)
    total = change.sum(-1)
    share = change / np.maximum(total[:, None], 1e-12)
    rows = []
    for r, label in enumerate(row_labels):
        top = int(np.argmax(change[r]))
        rows.append({
            "label": str(label),
            "top_factor": factor_names[top],
            "purity": float(share[r, top]),
            "total_change": float(total[r]),
            "active": bool(total[r] >= active_threshold),
            "factors_changed": int((share[r] >= share_threshold).sum()),
            "change": {n: float(c) for n, c in zip(factor_names, change[r])},
        })
    active = [row for row in rows if row["active"]]
    covered = sorted({row["top_factor"] for row in active}, key=list(factor_names).index)
    return {
        "traversals": rows,
        "num_traversals": len(rows),
        "num_active": len(active),
        "mean_purity": float(np.mean([r["purity"] for r in active])) if active else 0.0,
        "mean_factors_changed": (float(np.mean([r["factors_changed"] for r in active]))
                                 if active else 0.0),
        "factors_covered": len(covered),
        "covered": covered,
        "num_factors": len(factor_names),
    }


def score_traversals(predictor, traversals: Traversals, measure: str = "tv",
                     active_threshold: float = 0.25) -> dict:
    """Purity and coverage of a set of traversals under a factor predictor.

    ``predictor`` has ``factor_names`` and ``predict_proba(images [n, *obs]) -> list of
    [n, size_k]`` (see :mod:`disentangle.methods.factor_predictor.model`).
    """
    images = traversals.images  # [seeds, rows, steps, *obs]
    seeds, rows, steps = images.shape[:3]
    probs = predictor.predict_proba(images.reshape(seeds * rows * steps, *images.shape[3:]))
    probs = [p.reshape(seeds, rows, steps, -1) for p in probs]
    change = factor_change(probs, measure).mean(axis=0)  # [rows, K]
    report = purity_report(change, predictor.factor_names, traversals.row_labels,
                           active_threshold)
    report.update(kind=traversals.kind, measure=measure, num_seeds=int(seeds),
                  num_steps=int(steps), active_threshold=active_threshold,
                  predictor_accuracy=getattr(predictor, "accuracy", {}))
    return report
