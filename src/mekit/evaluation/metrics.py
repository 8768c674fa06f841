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


def _scores_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, UF1 and UAR of a stack of confusion matrices ``[..., K, K]`` (rows true),
    with the same conventions as :func:`classification_metrics`: a class absent from the
    ground truth is left out of the means, and an undefined precision counts as 0."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(float)
    support = cm.sum(-1).astype(float)
    predicted = cm.sum(-2).astype(float)
    present = support > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(present, tp / support, 0.0)
        # 2PR/(P+R) == 2TP/(support+predicted); 0 where both are 0 (zero_division=0)
        denom = support + predicted
        f1 = np.where(denom > 0, 2 * tp / denom, 0.0)
    n_present = present.sum(-1)
    safe = np.maximum(n_present, 1)
    return {"accuracy": tp.sum(-1) / np.maximum(support.sum(-1), 1),
            "uf1": np.where(n_present > 0, (f1 * present).sum(-1) / safe, 0.0),
            "uar": np.where(n_present > 0, (recall * present).sum(-1) / safe, 0.0)}


def subject_bootstrap(pred: pd.DataFrame, classes: list[str], n_boot: int = 1000, seed: int = 0,
                      level: float = 0.95) -> dict[str, list[float]]:
    """Confidence intervals by resampling SUBJECTS with replacement (samples of one subject are
    not independent, so a sample bootstrap would be too narrow).

    Each subject's confusion matrix is computed once; a bootstrap replicate is the sum of the
    drawn subjects' matrices, so the pooled metrics of a replicate are exact and n_boot
    replicates cost a few milliseconds instead of n_boot calls into scikit-learn.
    """
    rng = np.random.default_rng(seed)
    index = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    names = sorted(pred["subject"].unique())
    pos = {s: i for i, s in enumerate(names)}
    per_subject = np.zeros((len(names), k, k), dtype=np.int64)
    t = pred["true"].astype(str).map(index)
    p = pred["pred"].astype(str).map(index)
    if t.isna().any() or p.isna().any():
        bad = sorted(set(pred.loc[t.isna(), "true"].astype(str)) | set(pred.loc[p.isna(), "pred"].astype(str)))
        raise ValueError(f"labels {bad[:5]} are not among the classes {classes}")
    np.add.at(per_subject, (pred["subject"].map(pos).to_numpy(), t.to_numpy(int), p.to_numpy(int)), 1)
    weights = np.stack([np.bincount(rng.integers(0, len(names), len(names)), minlength=len(names))
                        for _ in range(n_boot)])
    stats = _scores_from_confusion(np.tensordot(weights, per_subject, axes=(1, 0)))
    a = (1 - level) / 2
    return {key: [float(np.quantile(stats[key], a)), float(np.quantile(stats[key], 1 - a))]
            for key in ("accuracy", "uf1", "uar")}
