"""Participant-level analyses of single-trial ERPs (Honke et al., ICLR 2021).

- :func:`component_features`: the hand-engineered baseline, mean amplitudes of the
  participant-average ERP in the standard component windows (P1, N1, P2, P3, LPP), per
  channel and condition;
- :func:`participant_means`: average any per-trial quantity over each participant's trials
  (optionally per condition);
- :func:`scan_participant_scores`: SCAN's image -> symbol read-out summed over a
  participant's trials: for a binary factor with units (u0, u1), the participant score is
  mean_trials [log p(u1 | z_x) - log p(u0 | z_x)], and the prediction is its sign;
- :func:`logistic_participant_classifier`: standardised features -> L2 logistic regression
  -> probability of class 1; every method (SCAN's score, latents, component windows) is
  judged through it, by accuracy (probability > 1/2) and ROC AUC alike.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from disentangle.data.eeg import CHANNELS, COMPONENT_WINDOWS, TIMES_MS


def participant_means(values: np.ndarray, participant: np.ndarray, ids: np.ndarray,
                      condition: np.ndarray | None = None) -> np.ndarray:
    """Mean of ``values`` [n, ...] over each participant's trials: [P, ...], or with
    ``condition`` int [n] in {0, 1}: [P, 2, ...] (one mean per condition)."""
    if condition is None:
        return np.stack([values[participant == i].mean(0) for i in ids])
    return np.stack([np.stack([values[(participant == i) & (condition == c)].mean(0)
                               for c in (0, 1)]) for i in ids])


def component_features(average_erp: np.ndarray, times_ms: np.ndarray = TIMES_MS
                       ) -> tuple[np.ndarray, list[str]]:
    """Mean amplitudes in the component windows.

    Args:
      average_erp: participant-average ERPs [P, 2 conditions, T, C].
    Returns:
      features [P, 2 * windows * C] and their names ('cond1_P3_Pz', ...).
    """
    feats, names = [], []
    for c in range(average_erp.shape[1]):
        for comp, (lo, hi) in COMPONENT_WINDOWS.items():
            win = (times_ms >= lo) & (times_ms <= hi)
            for ch in range(average_erp.shape[3]):
                feats.append(average_erp[:, c, win, ch].mean(axis=1))
                label = CHANNELS[ch] if ch < len(CHANNELS) else f"ch{ch}"
                names.append(f"cond{c}_{comp}_{label}")
    return np.stack(feats, axis=1), names


def logistic_participant_classifier(x_train: np.ndarray, y_train: np.ndarray,
                                    x_test: np.ndarray, c: float = 1.0) -> np.ndarray:
    """Probability of class 1 for ``x_test`` [P_test, F] from an L2 logistic regression on
    standardised features trained on (x_train [P_train, F], y_train [P_train] in {0, 1})."""
    scaler = StandardScaler().fit(x_train)
    model = LogisticRegression(C=c, max_iter=5000).fit(scaler.transform(x_train), y_train)
    return model.predict_proba(scaler.transform(x_test))[:, 1]


def scan_participant_scores(probs: np.ndarray, participant: np.ndarray, ids: np.ndarray,
                            unit0: int, unit1: int, eps: float = 1e-6) -> np.ndarray:
    """Mean over each participant's trials of log p(u1) - log p(u0): [P]."""
    llr = np.log(probs[:, unit1] + eps) - np.log(probs[:, unit0] + eps)
    return participant_means(llr, participant, ids)
