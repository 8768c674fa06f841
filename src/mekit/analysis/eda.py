"""Exploratory data analysis of a :class:`~mekit.data.schema.SampleTable`: ``mekit eda``.

Writes three figures and ``eda.json``:

- ``class_distribution.png``: samples per class, one bar per split where the table has splits;
- ``subject_counts.png``: samples per subject, stacked by class (the subjects a LOSO fold holds
  out, and how lopsided each one is);
- ``sample_grid.png``: a few faces per class (a clip's apex frame, or its middle frame where the
  apex is empty; a video's first frame).

Imbalance is reported for each split from that split's own samples, because a test split can be
far more (or less) skewed than the whole set, and class weights or resampling fitted on the
whole set would hide it.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from mekit.data.schema import SampleTable

log = logging.getLogger(__name__)

FIGURES = {"class_distribution": "class_distribution.png", "subject_counts": "subject_counts.png",
           "sample_grid": "sample_grid.png"}


def class_stats(labels: list[str] | Any, all_classes: list[str] | None = None) -> dict[str, Any]:
    """Counts, imbalance ratio (largest / smallest class count) and majority and minority classes.

    Only classes present in ``labels`` enter the ratio (an absent class would make it infinite);
    classes of ``all_classes`` that are absent are listed under ``absent_classes``. Ties are
    broken alphabetically, so the result is stable.
    """
    vals = [str(x) for x in labels if x is not None and x == x]
    counts: dict[str, int] = {}
    for v in sorted(vals):
        counts[v] = counts.get(v, 0) + 1
    out: dict[str, Any] = {"n_samples": len(vals), "classes": counts}
    if counts:
        hi, lo = max(counts.values()), min(counts.values())
        out["majority"] = min(c for c, n in counts.items() if n == hi)
        out["minority"] = min(c for c, n in counts.items() if n == lo)
        out["imbalance_ratio"] = hi / lo
    else:
        out.update(majority=None, minority=None, imbalance_ratio=None)
    out["absent_classes"] = [c for c in (all_classes or []) if c not in counts]
    return out


def _natural_key(s: str) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(s))]


_SPLIT_RANK = {"train": 0, "training": 0, "val": 1, "valid": 1, "validation": 1, "dev": 1, "test": 2}


def _split_key(s: str) -> tuple[int, list[Any]]:
    """train, then validation, then test, then anything else; natural order within each."""
    return _SPLIT_RANK.get(str(s).split("/", 1)[0], 3), _natural_key(s)


def run_eda(table: SampleTable, out_dir: str | Path, *, samples_per_class: int = 6,
            max_subjects: int = 150, seed: int = 0) -> dict[str, Any]:
    """Write the EDA figures and ``eda.json`` into ``out_dir``; return the same dict.

    Args:
        samples_per_class: faces per class in the sample grid (distinct subjects first).
        max_subjects: the subject figure shows at most this many subjects (the largest).
        seed: which samples the grid shows.
    """
    out = Path(out_dir)
    from mekit.paths import prepare_out_dir

    prepare_out_dir(out)
    df = table.df
    classes = table.classes
    split_col = df["split"].fillna("").astype(str)
    split_names = sorted(set(split_col), key=_split_key)
    has_splits = split_names != [""]

    result: dict[str, Any] = {
        "dataset": table.name or (str(df["dataset"].iloc[0]) if len(df) else ""),
        "n_samples": int(len(df)),
        "n_subjects": int(df["subject"].nunique()),
        "classes": table.class_counts(),
        "overall": class_stats(df["label"].tolist(), classes),
        "splits": {},
        "subjects": {str(k): int(v) for k, v in
                     sorted(df["subject"].value_counts().items(), key=lambda kv: _natural_key(kv[0]))},
        "figures": dict(FIGURES),
    }
    result["overall"]["n_subjects"] = result["n_subjects"]
    if has_splits:
        for sp in split_names:
            part = df.loc[(split_col == sp).values]
            st = class_stats(part["label"].tolist(), classes)
            st["n_subjects"] = int(part["subject"].nunique())
            result["splits"][sp or "(none)"] = st

    _plot_class_distribution(df, classes, split_col, split_names if has_splits else [],
                             out / FIGURES["class_distribution"], result["dataset"])
    shown = _plot_subject_counts(df, classes, out / FIGURES["subject_counts"], max_subjects, result["dataset"])
    result["subjects_shown"] = shown
    result["sample_grid"] = _plot_sample_grid(df, classes, out / FIGURES["sample_grid"], samples_per_class, seed)

    (out / "eda.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    log.info("EDA of %s written to %s", result["dataset"], out)
    return result


# -- figures ----------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _plot_class_distribution(df, classes: list[str], split_col, splits: list[str], path: Path,
                             title: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(classes) * max(1, len(splits)) ** 0.5 + 2), 4.5))
    x = np.arange(len(classes))
    groups = splits or [None]
    width = 0.8 / len(groups)
    for k, sp in enumerate(groups):
        labels = df["label"] if sp is None else df.loc[(split_col == sp).values, "label"]
        counts = labels.value_counts()
        heights = [int(counts.get(c, 0)) for c in classes]
        bars = ax.bar(x + (k - (len(groups) - 1) / 2) * width, heights, width,
                      label=None if sp is None else (sp or "(none)"))
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(x, classes, rotation=30, ha="right")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("samples")
    ax.set_title(f"{title}: samples per class" + (" and split" if splits else ""))
    if splits:
        ax.legend(title="split")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_subject_counts(df, classes: list[str], path: Path, max_subjects: int, title: str) -> int:
    plt = _pyplot()
    ct = df.groupby(["subject", "label"]).size().unstack(fill_value=0).reindex(columns=classes, fill_value=0)
    n_all = len(ct)
    if n_all > max_subjects:
        ct = ct.loc[ct.sum(axis=1).sort_values(ascending=False, kind="stable").index[:max_subjects]]
    ct = ct.loc[sorted(ct.index, key=_natural_key)]
    prefix = {s.split("/", 1)[0] for s in ct.index}
    names = [s.split("/", 1)[-1] if len(prefix) == 1 else s for s in ct.index]
    fig, ax = plt.subplots(figsize=(min(40.0, max(6.0, 0.16 * len(ct) + 2)), 4.5))
    bottom = np.zeros(len(ct))
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for i, c in enumerate(classes):
        vals = ct[c].to_numpy()
        ax.bar(np.arange(len(ct)), vals, 0.85, bottom=bottom, label=c, color=cmap(i % cmap.N))
        bottom += vals
    ax.set_xticks(np.arange(len(ct)), names, rotation=90, fontsize=max(4, min(8, int(600 / max(1, len(ct))))))
    ax.set_xlim(-0.6, len(ct) - 0.4)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("samples")
    shown = f" (the {len(ct)} largest of {n_all})" if n_all > len(ct) else ""
    ax.set_title(f"{title}: samples per subject{shown}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return int(len(ct))


def _pick(df, k: int, rng: np.random.Generator) -> list[int]:
    """Up to ``k`` row positions, distinct subjects first, in a seeded random order."""
    order = rng.permutation(len(df))
    seen: set[str] = set()
    first, rest = [], []
    for i in order:
        s = df["subject"].iloc[i]
        (rest if s in seen else first).append(int(i))
        seen.add(s)
    return (first + rest)[:k]


def _read_face(row) -> np.ndarray | None:
    from PIL import Image

    from mekit.data.check import representative_image

    try:
        if row["media"] == "video":
            import av

            with av.open(str(row["path"])) as c:
                arr = next(c.decode(video=0)).to_ndarray(format="rgb24")
            im = Image.fromarray(arr)
        else:
            p = representative_image(row)
            if p is None:
                return None
            with Image.open(p) as f:
                im = f.convert("RGB")
        im.thumbnail((160, 160))
        return np.asarray(im)
    except Exception as e:  # noqa: BLE001 - one unreadable face leaves a blank cell, not a failed EDA
        log.warning("sample %s: cannot read a face for the grid (%s)", row["sample_id"], e)
        return None


def _plot_sample_grid(df, classes: list[str], path: Path, k: int, seed: int) -> dict[str, list[str]]:
    plt = _pyplot()
    rng = np.random.default_rng(seed)
    k = max(1, k)
    nrow = max(1, len(classes))
    fig, axes = plt.subplots(nrow, k, figsize=(1.4 * k + 0.8, 1.5 * nrow + 0.3), squeeze=False)
    shown: dict[str, list[str]] = {}
    for r, c in enumerate(classes):
        part = df.loc[df["label"] == c].sort_values("sample_id").reset_index(drop=True)
        picks = _pick(part, k, rng)
        shown[c] = [str(part["sample_id"].iloc[i]) for i in picks]
        for j in range(k):
            ax = axes[r][j]
            ax.set_xticks([])
            ax.set_yticks([])
            for sp in ax.spines.values():
                sp.set_visible(False)
            if j == 0:
                ax.set_ylabel(c, rotation=0, ha="right", va="center", fontsize=9)
            if j >= len(picks):
                continue
            img = _read_face(part.iloc[picks[j]])
            if img is None:
                ax.text(0.5, 0.5, "unreadable", ha="center", va="center", fontsize=7, transform=ax.transAxes)
            else:
                ax.imshow(img)
    fig.suptitle("sample faces per class", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return shown


__all__ = ["FIGURES", "class_stats", "run_eda"]
