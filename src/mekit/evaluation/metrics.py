"""The field's classification metrics, pooled over all folds as MEGC defines them.

UF1 is the unweighted (macro) F1 and UAR the unweighted average recall, both computed on
the predictions of all folds pooled together (not averaged per fold): with LOSO many
folds hold one or two classes only, and per-fold averaging is undefined or biased.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def classification_metrics(y_true, y_pred, classes: list[str]) -> dict[str, Any]:
    """Accuracy, UF1, UAR, weighted F1, per-class P/R/F1/support and confusion matrices."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    y_true = np.asarray(y_true, dtype=object).astype(str)
    y_pred = np.asarray(y_pred, dtype=object).astype(str)
    labels = list(classes)
    if len(y_true) == 0:
        raise ValueError("no predictions to score")
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = s > 0  # a class absent from the ground truth has no defined recall
    _, _, wf1, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="weighted",
                                                   zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    with np.errstate(invalid="ignore", divide="ignore"):
        cm_norm = np.where(cm.sum(1, keepdims=True) > 0, cm / cm.sum(1, keepdims=True), 0.0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "uf1": float(np.mean(f[present])) if present.any() else 0.0,
        "uar": float(np.mean(r[present])) if present.any() else 0.0,
        "weighted_f1": float(wf1),
        "macro_f1": float(np.mean(f[present])) if present.any() else 0.0,
        "n_samples": int(len(y_true)),
        "classes": labels,
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                          "support": int(s[i])} for i, c in enumerate(labels)},
        "confusion": cm.tolist(),
        "confusion_normalized": np.round(cm_norm, 4).tolist(),
    }


def breakdown(pred: pd.DataFrame, by: str, classes: list[str]) -> dict[str, dict[str, float]]:
    """Accuracy / UF1 / UAR per group (subject or corpus) from a predictions table."""
    out = {}
    for g, d in pred.groupby(by, sort=True):
        m = classification_metrics(d["true"], d["pred"], classes)
        out[str(g)] = {"n": m["n_samples"], "accuracy": m["accuracy"], "uf1": m["uf1"], "uar": m["uar"]}
    return out


def subject_bootstrap(pred: pd.DataFrame, classes: list[str], n_boot: int = 1000, seed: int = 0,
                      level: float = 0.95) -> dict[str, list[float]]:
    """Confidence intervals by resampling SUBJECTS with replacement (samples of one subject are
    not independent, so a sample bootstrap would be too narrow)."""
    rng = np.random.default_rng(seed)
    groups = {s: d for s, d in pred.groupby("subject")}
    names = list(groups)
    stats = {"accuracy": [], "uf1": [], "uar": []}
    for _ in range(n_boot):
        pick = rng.integers(0, len(names), len(names))
        d = pd.concat([groups[names[i]] for i in pick], ignore_index=True)
        m = classification_metrics(d["true"], d["pred"], classes)
        for k in stats:
            stats[k].append(m[k])
    a = (1 - level) / 2
    return {k: [float(np.quantile(v, a)), float(np.quantile(v, 1 - a))] for k, v in stats.items()}
