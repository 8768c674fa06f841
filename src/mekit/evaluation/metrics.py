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


def _confusions(pred: pd.DataFrame, classes: list[str], subjects: list[str], seeds: list) -> np.ndarray:
    """Confusion matrices ``[seed, subject, true, pred]`` of a predictions table."""
    index = {c: i for i, c in enumerate(classes)}
    t = pred["true"].astype(str).map(index)
    p = pred["pred"].astype(str).map(index)
    if t.isna().any() or p.isna().any():
        bad = sorted(set(pred.loc[t.isna(), "true"].astype(str)) | set(pred.loc[p.isna(), "pred"].astype(str)))
        raise ValueError(f"labels {bad[:5]} are not among the classes {classes}")
    out = np.zeros((len(seeds), len(subjects), len(classes), len(classes)), dtype=np.int64)
    np.add.at(out, (pred["seed"].map({s: i for i, s in enumerate(seeds)}).to_numpy(int),
                    pred["subject"].map({s: i for i, s in enumerate(subjects)}).to_numpy(int),
                    t.to_numpy(int), p.to_numpy(int)), 1)
    return out


def paired_subject_bootstrap(base: pd.DataFrame, other: pd.DataFrame, classes: list[str], n_boot: int = 2000,
                             seed: int = 0, level: float = 0.95, metric: str = "uf1") -> dict[str, Any]:
    """Is ``other`` better than ``base`` on the same samples? A paired bootstrap over SUBJECTS.

    Both tables hold the same ``(sample_id, seed)`` keys (matched by key, never by position),
    with ``subject``, ``true`` and ``pred``; the subject of a sample is taken from ``base``.
    The difference is ``mean over seeds of metric(other) - metric(base)``, each metric pooled
    over all samples of that seed as :func:`classification_metrics` pools it (one number per
    seed, then averaged: seeds are paired seed by seed, never pooled into one table).

    A replicate draws the subjects with replacement (the same draw for both runs and every
    seed, which is what makes it paired) and recomputes the difference on the drawn samples.
    ``ci`` is the percentile interval of the replicates. ``p`` is the two-sided bootstrap
    p-value ``min(1, 2 * min(#{d* <= 0} + 1, #{d* >= 0} + 1) / (n_boot + 1))``: the smallest
    level at which the percentile interval leaves out 0, with the +1 of a Monte Carlo p-value
    that keeps it above 0 for a finite number of replicates (Davison & Hinkley 1997, sec. 4.2). Identical runs give
    d = 0, ci = [0, 0] and p = 1; a run better on every draw gives p = 2 / (n_boot + 1).
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1; got {n_boot}")
    keys = ["sample_id", "seed"]
    for name, t in (("base", base), ("other", other)):
        if t.duplicated(keys).any():
            raise ValueError(f"{name} predictions hold a (sample_id, seed) more than once")
    m = base[keys + ["subject", "true", "pred"]].merge(other[keys + ["true", "pred"]], on=keys, how="outer",
                                                       suffixes=("", "_o"), indicator=True)
    if (m["_merge"] != "both").any():
        raise ValueError(f"{int((m['_merge'] != 'both').sum())} (sample_id, seed) keys are in one table only")
    subjects = sorted(m["subject"].astype(str).unique())
    seeds = sorted(m["seed"].unique())
    m["subject"] = m["subject"].astype(str)
    cm_a = _confusions(m, classes, subjects, seeds)
    cm_b = _confusions(m.assign(true=m["true_o"], pred=m["pred_o"]), classes, subjects, seeds)

    def diff(weights: np.ndarray) -> np.ndarray:
        # weights [B, subject] -> difference per replicate [B], averaged over seeds
        a = _scores_from_confusion(np.einsum("bn,snkl->bskl", weights, cm_a))[metric]
        b = _scores_from_confusion(np.einsum("bn,snkl->bskl", weights, cm_b))[metric]
        return (b - a).mean(-1)

    n = len(subjects)
    observed = float(diff(np.ones((1, n), dtype=np.int64))[0])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, (n_boot, n)) + np.arange(n_boot)[:, None] * n
    weights = np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n)
    d = diff(weights)
    a = (1 - level) / 2
    p = 2 * min(int((d <= 0).sum()) + 1, int((d >= 0).sum()) + 1) / (n_boot + 1)
    return {"d": observed, "ci": [float(np.quantile(d, a)), float(np.quantile(d, 1 - a))], "p": float(min(1.0, p)),
            "n_samples": int(m["sample_id"].nunique()), "n_subjects": n, "n_seeds": len(seeds), "n_boot": int(n_boot)}


#: below this many discordant pairs McNemar's test uses the exact binomial distribution; from
#: 25 on, the chi-square approximation with continuity correction (the usual rule, e.g.
#: Rosner, Fundamentals of Biostatistics, 10.4)
MCNEMAR_EXACT_BELOW = 25


def mcnemar(b: int, c: int) -> float:
    """Two-sided p-value of McNemar's test from the discordant counts: ``b`` samples only the
    first classifier got right, ``c`` only the second. Exact binomial (``b ~ Bin(b + c, 1/2)``)
    when ``b + c < 25``, else ``(max(|b - c| - 1, 0))^2 / (b + c)`` against chi-square with one
    degree of freedom (Edwards' continuity correction). No discordant pair: p = 1."""
    from scipy.stats import binomtest, chi2

    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0; got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    if n < MCNEMAR_EXACT_BELOW:
        return float(min(1.0, binomtest(min(b, c), n, 0.5).pvalue))
    return float(chi2.sf(max(abs(b - c) - 1, 0) ** 2 / n, 1))
