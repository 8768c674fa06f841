"""Metrics summaries and the run folder: predictions.csv, metrics.json,
config.resolved.yaml, environment.json, confusion/per-class PNGs, learning curves (neural
runs), report.md and run.log."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mekit.environment import environment  # noqa: F401 - re-exported for callers
from mekit.evaluation.metrics import breakdown, classification_metrics, subject_bootstrap

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mekit.events import Event

SELECTION_STATEMENT = ("Model selection (hyper-parameters by inner subject-grouped CV, the early-stopping epoch "
                       "on an inner validation split of training subjects, or a fixed budget) used only the "
                       "training subjects of each fold; held-out subjects were never seen by any fitted step "
                       "(scaling, PCA, resampling, class weights, hyper-parameters, early stopping).")

#: the same statement for the leaky sample-level split, where it would be false as written
SELECTION_STATEMENT_LEAKY = ("Model selection (inner CV, early stopping or a fixed budget) used only the training "
                             "samples of each fold and no fitted step saw a held-out sample; but this protocol "
                             "splits samples, not subjects, so the held-out SUBJECTS were seen in training "
                             "(other samples of the same people).")


def selection_summary(selections: list[dict]) -> dict[str, dict[str, int]]:
    """How often each selection method was used and each choice made, over all folds and seeds:
    ``{"methods": {method: n_folds}, "chosen": {"C=0.1": n_folds, ...}}``."""
    from collections import Counter

    methods = Counter(str(s.get("method", "unknown")) for s in selections)
    chosen = Counter(", ".join(f"{k}={v}" for k, v in sorted(s.get("chosen", {}).items()) if k != "val_uf1") or "-"
                     for s in selections)
    return {"methods": dict(methods.most_common()), "chosen": dict(chosen.most_common())}


def summarise(pred: pd.DataFrame, classes: list[str], protocol, cfg, selections: list[dict]) -> dict[str, Any]:
    """Pooled metrics (first seed), mean ± std over seeds, breakdowns, subject-bootstrap CIs."""
    seeds = sorted(pred["seed"].unique())
    per_seed = {int(s): classification_metrics(pred.loc[pred.seed == s, "true"], pred.loc[pred.seed == s, "pred"],
                                               classes) for s in seeds}
    first = pred.loc[pred.seed == seeds[0]]
    m = dict(per_seed[int(seeds[0])])
    m["protocol"] = protocol.name
    m["leaky"] = bool(protocol.leaky)
    m["protocol_description"] = protocol.describe()
    m["seeds"] = [int(s) for s in seeds]
    m["n_subjects"] = int(first["subject"].nunique())
    m["n_folds"] = int(first["fold"].nunique())
    if len(seeds) > 1:
        m["over_seeds"] = {k: {"mean": float(np.mean([per_seed[s][k] for s in per_seed])),
                               "std": float(np.std([per_seed[s][k] for s in per_seed], ddof=1))}
                           for k in ("accuracy", "uf1", "uar", "weighted_f1")}
    m["per_subject"] = breakdown(first, "subject", classes)
    m.update(corpus_results(pred, classes, protocol))
    if m["n_subjects"] >= 3 and not protocol.leaky:
        m["bootstrap_ci95"] = subject_bootstrap(first, classes, n_boot=1000, seed=0)
    m["model_selection"] = SELECTION_STATEMENT_LEAKY if protocol.leaky else SELECTION_STATEMENT
    m["selection_summary"] = selection_summary(selections)
    m["selection_per_fold"] = selections
    m["method"] = {"features": cfg.features.name, "model": cfg.model.name,
                   "class_weight": cfg.imbalance.class_weight, "sampler": cfg.imbalance.sampler}
    if getattr(cfg, "search", None):  # nested: the method is whichever recipe each fold chose
        m["method"] = {"features": "per recipe", "model": f"chosen per outer fold among {len(cfg.search)} recipes",
                       "class_weight": "per recipe", "sampler": "per recipe"}
    return m


def run_environment(cfg, selections: list[dict] | None = None) -> dict[str, Any]:
    """:func:`~mekit.environment.environment` plus where the run computed: the ``compute``
    section asked for and the device the folds resolved it to (neural runs)."""
    from mekit.config import to_plain

    env = environment(cfg.seed)
    resolved = sorted({str((s.get("compute") or {}).get("device")) for s in selections or []
                       if isinstance(s, dict) and s.get("compute")})
    env["compute"] = {**to_plain(cfg.compute), "resolved": resolved or None}
    try:
        import torch

        env["cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return env


def _plots(m: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = m["classes"]
    files = []
    fig, axes = plt.subplots(1, 2, figsize=(4 + 2.2 * len(classes), 0.9 * len(classes) + 2.5))
    for ax, key, title in ((axes[0], "confusion", "counts"), (axes[1], "confusion_normalized", "row-normalised")):
        cm = np.asarray(m[key], dtype=float)
        ax.imshow(cm, cmap="Blues")
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"confusion ({title})")
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, f"{cm[i, j]:.0f}" if key == "confusion" else f"{cm[i, j]:.2f}", ha="center",
                        va="center", color="white" if cm[i, j] > cm.max() / 2 else "black", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "confusion_matrix.png", dpi=120)
    plt.close(fig)
    files.append("confusion_matrix.png")
    fig, ax = plt.subplots(figsize=(2 + 1.2 * len(classes), 3.5))
    x = np.arange(len(classes))
    for k, name in enumerate(("precision", "recall", "f1")):
        ax.bar(x + (k - 1) * 0.27, [m["per_class"][c][name] for c in classes], 0.27, label=name)
    ax.set_xticks(x, classes, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("per-class results")
    fig.tight_layout()
    fig.savefig(out / "per_class.png", dpi=120)
    plt.close(fig)
    files.append("per_class.png")
    return files


def learning_curves(histories: list[dict], out: Path) -> list[str]:
    """``learning_curves.csv`` (one row per fold, seed and epoch) and ``learning_curves.png``
    (training loss per epoch, each fold thin and their mean thick; the inner-validation macro F1
    beside it when folds had one). Returns the files written; none without a history."""
    rows = [{"fold": h["fold"], "seed": h["seed"], **r} for h in histories for r in h.get("history") or []]
    if not rows:
        return []
    df = pd.DataFrame(rows)
    df.to_csv(out / "learning_curves.csv", index=False)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = [("train_loss", "training loss")]
    if "val_uf1" in df.columns and df["val_uf1"].notna().any():
        panels.append(("val_uf1", "inner-validation macro F1"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.5), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels):
        for _, g in df.dropna(subset=[key]).groupby(["seed", "fold"], sort=False):
            ax.plot(g["epoch"] + 1, g[key], color="tab:blue", alpha=0.25, linewidth=0.8)
        # the mean over the folds that reached an epoch (early stopping ends folds at different epochs)
        mean = df.groupby("epoch")[key].mean().dropna()
        ax.plot(mean.index + 1, mean.to_numpy(), color="tab:blue", linewidth=2.2, label="mean over folds")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "learning_curves.png", dpi=120)
    plt.close(fig)
    return ["learning_curves.csv", "learning_curves.png"]


def nested_lines(selections: list[dict]) -> list[str]:
    """report.md's table of the recipe each outer fold of a nested run chose, with every
    candidate's inner score (UF1 on the fold's training subjects only); [] for other runs."""
    rows = [s for s in selections if isinstance(s.get("inner_uf1"), dict)]
    if not rows:
        return []
    labels = list(rows[0]["inner_uf1"])
    short = {lab: f"r{i + 1}" for i, lab in enumerate(labels)}
    out = ["", "**Recipe chosen in each outer fold** (nested selection: inner UF1 of every candidate on the "
           "fold's training subjects; the held-out subjects were never scored).", "",
           "Candidates: " + "; ".join(f"{short[lab]} = `{lab}`" for lab in labels) + ".", "",
           "| fold | seed | chosen | " + " | ".join(short[lab] for lab in labels) + " |",
           "|---|---|---|" + "---|" * len(labels)]
    for s in rows:
        chosen = (s.get("chosen") or {}).get("recipe")
        cells = [f"{s['inner_uf1'].get(lab, float('nan')):.3f}" for lab in labels]
        out.append(f"| {s.get('fold')} | {s.get('seed')} | {short.get(chosen, chosen)} | " + " | ".join(cells) + " |")
    return out


# -- per corpus: the MEGC 2019 composite as the challenge reports it ------------------------------
#: the composite's corpora in the challenge's table order, with the names its tables print
MEGC2019_CORPORA: dict[str, str] = {"smic": "SMIC", "casme2": "CASME II", "samm": "SAMM"}
#: how each corpus names its subjects in the composite, for a flow-image set whose rows carry no
#: corpus (STSTNet's leave-one-subject-out folders): SMIC s1..s20, CASME II sub01..sub26, SAMM 006..037
_MEGC2019_SUBJECT_NAMES = (("casme2", r"sub\d{2}"), ("smic", r"s\d{1,2}"), ("samm", r"\d{3}"))


def _corpus_key(name: str) -> str:
    """The composite's key of a corpus as a table or a CSV spells it ('CASME II', 'casme_ii',
    'SMIC-HS' -> casme2, smic); any other name as it is."""
    import re

    from mekit.data.megc import PARTS

    norm = re.sub(r"[^0-9a-z]", "", str(name).lower())
    for key, names in PARTS.items():
        if norm in {re.sub(r"[^0-9a-z]", "", n.lower()) for n in (key, *names)}:
            return key
    return str(name)


def corpus_of(pred: pd.DataFrame, megc_names: bool = False) -> tuple[pd.Series, str]:
    """The corpus of each prediction row, and how it was found (for the report).

    A frames table (the ``megc2019`` loader) keeps the corpus in the ``dataset`` column. A
    flow-image set has one dataset (``flow_images``) and the corpus of its CSV's dataset column in
    the subject, ``flow_images/<corpus>/<subject>`` (the table's ``corpus`` column never reaches
    the predictions; the qualified subject does). With ``megc_names``, a flow-image row without
    a corpus (``flow_images/<subject>``) takes the corpus its subject's name has in the composite.
    """
    import re

    corpus, how = [], set()
    for d, s in zip(pred["dataset"].astype(str), pred["subject"].astype(str)):
        parts = s.split("/")
        if len(parts) >= 3 and parts[0] == d:
            corpus.append(_corpus_key(parts[1]))
            how.add(f"the subject ({d}/<corpus>/<subject>)")
            continue
        if megc_names and d == "flow_images" and len(parts) == 2:
            hit = next((k for k, rx in _MEGC2019_SUBJECT_NAMES if re.fullmatch(rx, parts[1], re.I)), None)
            if hit:
                corpus.append(hit)
                how.add("the subject's name (sub01: CASME II, s01: SMIC, 006: SAMM; the set carries no corpus)")
                continue
        corpus.append(_corpus_key(d))
        how.add("the dataset column")
    return pd.Series(corpus, index=pred.index, name="corpus"), "; ".join(sorted(how))


def _corpus_scores(pred: pd.DataFrame, classes: list[str], seeds: list, n_boot: int) -> dict[str, Any]:
    """UF1/UAR/accuracy of one corpus pooled over its folds (first seed), its subject-bootstrap
    95% intervals (3 subjects or more) and the mean ± std over seeds (several seeds)."""
    first = pred.loc[pred["seed"] == seeds[0]]
    m = classification_metrics(first["true"], first["pred"], classes)
    out: dict[str, Any] = {"n": m["n_samples"], "subjects": int(first["subject"].nunique()), "uf1": m["uf1"],
                           "uar": m["uar"], "accuracy": m["accuracy"]}
    if out["subjects"] >= 3:
        ci = subject_bootstrap(first, classes, n_boot=n_boot, seed=0)
        out["ci95"] = {"uf1": ci["uf1"], "uar": ci["uar"]}
    if len(seeds) > 1:
        per = [classification_metrics(pred.loc[pred["seed"] == s, "true"], pred.loc[pred["seed"] == s, "pred"],
                                      classes) for s in seeds]
        out["over_seeds"] = {k: {"mean": float(np.mean([p[k] for p in per])),
                                 "std": float(np.std([p[k] for p in per], ddof=1))} for k in ("uf1", "uar")}
    return out


def corpus_results(pred: pd.DataFrame, classes: list[str], protocol, n_boot: int = 1000) -> dict[str, Any]:
    """The per-corpus part of metrics.json.

    ``per_dataset``: UF1/UAR/accuracy per corpus (first seed) whenever the predictions span
    several corpora, found by :func:`corpus_of` (a flow-image set's corpora too). ``megc2019``,
    for the ``megc2019`` protocol (also as a nested run's outer protocol): the challenge's table,
    ``per_corpus`` with ``all`` (every prediction pooled: the composite's "Full" row when all three
    corpora are present) then SMIC, CASME II and SAMM as present, each with subject-bootstrap
    intervals and seeds' mean ± std; ``absent`` (composite corpora with no prediction),
    ``other`` (corpora outside the composite), ``complete`` and ``corpus_from``.
    """
    outer = getattr(protocol, "outer", None)
    megc = protocol.name == "megc2019" or getattr(outer, "name", "") == "megc2019"
    seeds = sorted(pred["seed"].unique())
    corpus, how = corpus_of(pred, megc_names=megc)
    out: dict[str, Any] = {}
    first = pred.loc[pred["seed"] == seeds[0]].assign(corpus=corpus)
    if first["corpus"].nunique() > 1:
        out["per_dataset"] = breakdown(first, "corpus", classes)
    if megc:
        tagged = pred.assign(corpus=corpus)
        present = set(tagged["corpus"])
        rows = {"all": _corpus_scores(tagged, classes, seeds, n_boot)}
        others = sorted(present - set(MEGC2019_CORPORA))
        for key in [k for k in MEGC2019_CORPORA if k in present] + others:
            rows[key] = _corpus_scores(tagged.loc[tagged["corpus"] == key], classes, seeds, n_boot)
        absent = [k for k in MEGC2019_CORPORA if k not in present]
        out["megc2019"] = {"per_corpus": rows, "absent": absent, "other": others,
                           "complete": not absent and not others, "corpus_from": how}
    return out


def corpus_lines(m: dict) -> list[str]:
    """report.md's per-corpus table: the MEGC 2019 one (every composite corpus, absent ones
    said so) for that protocol, else the plain one when several corpora were predicted."""
    meg = m.get("megc2019")
    if not meg:
        if "per_dataset" not in m:
            return []
        lines = ["", "| corpus | n | UF1 | UAR | accuracy |", "|---|---|---|---|---|"]
        for d, v in m["per_dataset"].items():
            lines.append(f"| {d} | {v['n']} | {v['uf1']:.3f} | {v['uar']:.3f} | {v['accuracy']:.3f} |")
        return lines

    def cell(v: dict, key: str) -> str:
        ci = (v.get("ci95") or {}).get(key)
        return f"{v[key]:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")

    rows, seeds = meg["per_corpus"], any("over_seeds" in v for v in meg["per_corpus"].values())
    names = {**MEGC2019_CORPORA, "all": "all (the composite)" if meg["complete"] else "all present"}
    head = "| corpus | clips | subjects | UF1 [95% CI] | UAR [95% CI] | accuracy |" + (" seeds: UF1 mean ± std |"
                                                                                     if seeds else "")
    lines = ["", "**MEGC 2019 results, overall and per corpus**, as the challenge reports them: UF1 and UAR "
                 "pooled over the folds, over all clips and within each corpus; 95% subject-bootstrap "
                 f"intervals. Corpus of each clip from {meg['corpus_from']}.", ""]
    if not meg["complete"]:
        missing = ", ".join(MEGC2019_CORPORA[k] for k in meg["absent"])
        extra = ", ".join(meg["other"])
        lines += [f"> **Not the MEGC 2019 composite**: {'absent: ' + missing if missing else ''}"
                  f"{'; ' if missing and extra else ''}{'outside the composite: ' + extra if extra else ''}. "
                  "The 'all present' row is not comparable with the challenge's composite (Full) figures.", ""]
    lines += [head, "|---|---|---|---|---|---|" + ("---|" if seeds else "")]
    for key in ["all", *MEGC2019_CORPORA, *meg["other"]]:  # the challenge's order, absent corpora in place
        v = rows.get(key)
        if v is None:
            lines.append(f"| {names[key]} | absent | - | - | - | - |" + (" - |" if seeds else ""))
            continue
        sd = v.get("over_seeds", {}).get("uf1")
        lines.append(f"| {names.get(key, key)} | {v['n']} | {v['subjects']} | {cell(v, 'uf1')} | {cell(v, 'uar')} | "
                     f"{v['accuracy']:.3f} |" + ((f" {sd['mean']:.3f} ± {sd['std']:.3f} |" if sd else " - |")
                                                 if seeds else ""))
    return lines


def markdown(m: dict, cfg) -> str:
    c = m["classes"]
    lines = [f"# {cfg.name}", ""]
    if m.get("leaky"):
        lines += ["> **LEAKY PROTOCOL**: a random sample-level split puts the same subjects in training and "
                  "test. These figures are comparable only to published numbers obtained the same way; "
                  "they overstate how the method does on unseen people.", ""]
    if m.get("partial_composite"):
        absent = "; ".join(f"{k} ({v})" for k, v in m["partial_composite"].items())
        lines += [f"> **PARTIAL COMPOSITE**: corpora left out: {absent}. These figures are not comparable to "
                  f"results on the full composite.", ""]
    if m.get("corpora"):
        lines += ["Corpora: " + ", ".join(f"{k} {v}" for k, v in m["corpora"].items()) + ".", ""]
    lines += [f"Protocol: **{m['protocol_description']}**, {m['n_folds']} folds, {m['n_samples']} samples, "
              f"{m['n_subjects']} subjects, classes: {', '.join(c)}.",
              f"Method: features `{m['method']['features']}`, model `{m['method']['model']}`, class weights "
              f"`{m['method']['class_weight']}`, resampling `{m['method']['sampler']}`.", "",
              "| metric | value |", "|---|---|"]
    for k, name in (("uf1", "UF1 (macro F1)"), ("uar", "UAR"), ("accuracy", "Accuracy"),
                    ("weighted_f1", "Weighted F1")):
        ci = m.get("bootstrap_ci95", {}).get(k)
        seeds = m.get("over_seeds", {}).get(k)
        cell = f"{m[k]:.3f}"
        if ci:
            cell += f" (95% subject-bootstrap CI {ci[0]:.3f}-{ci[1]:.3f})"
        if seeds:
            cell += f"; seeds {seeds['mean']:.3f} ± {seeds['std']:.3f}"
        lines.append(f"| {name} | {cell} |")
    lines += ["", "UF1 and UAR are computed on the predictions of all folds pooled together (MEGC definition).",
              "", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for k in c:
        pc = m["per_class"][k]
        lines.append(f"| {k} | {pc['precision']:.3f} | {pc['recall']:.3f} | {pc['f1']:.3f} | {pc['support']} |")
    lines += corpus_lines(m)
    lines += ["", f"**Model selection.** {m['model_selection']}"]
    summ = m.get("selection_summary")
    if summ:
        methods = "; ".join(f"{k} ({v} folds)" for k, v in summ["methods"].items())
        chosen = ", ".join(f"{k} ({v})" for k, v in list(summ["chosen"].items())[:8])
        lines += ["", f"Per fold: {methods}. Chosen: {chosen}."]
    lines += nested_lines(m.get("selection_per_fold") or [])
    lines.append("")
    if m.get("figures"):  # only link figures that were written (output.plots)
        lines += ["![confusion](confusion_matrix.png)", "", "![per class](per_class.png)", ""]
        if "learning_curves.png" in m["figures"]:
            lines += ["**Learning curves.** Training loss per epoch of every fold (thin) and their mean (thick), "
                      "with the inner-validation macro F1 where folds had one; the numbers are in "
                      "learning_curves.csv.", "", "![learning curves](learning_curves.png)", ""]
    lines += [f"**Excluded.** {excluded_summary(m)}", ""]
    if m.get("resume"):
        lines += [resume_paragraph(m["resume"]), ""]
    return "\n".join(lines)


def resume_paragraph(res: dict) -> str:
    """The report's "Resumed." line: how many folds came from an earlier run, and why saved
    folds were discarded (every task's report uses it)."""
    text = (f"**Resumed.** {res['folds_resumed']} of {res['folds_total']} folds were read back from an "
            f"earlier run with the same config, data and code." if res["folds_resumed"] else
            "**Resumed.** No fold was read back from an earlier run.")
    if res.get("discarded"):
        text += f" Saved folds were discarded: {res['discarded']}."
    return text


def excluded_rows(table, skipped: dict[str, str], usable_ids: set[str],
                  stages: dict[str, str] | None = None) -> list[dict[str, str]]:
    """Every sample (or group of samples) left out of a run, with the stage and the reason: the
    loader's missing clips and problem rows, emotions a label scheme has no class for, samples
    preprocessing or feature extraction could not use. Nothing is left out without a row here.
    ``stages`` names the stage of a skipped sample where it was not preprocessing (an intensity
    run's clips without a target: "targets")."""
    rows: list[dict[str, str]] = []
    rep = table.report
    for sid in rep.missing:
        rows.append({"sample": str(sid), "stage": "load", "reason": "clip files are missing"})
    for p in rep.problems:
        rows.append({"sample": p.sample, "stage": "load", "reason": p.reason})
    for emotion, n in rep.dropped.items():
        rows.append({"sample": f"({n} samples)", "stage": "label_scheme",
                     "reason": f"emotion {emotion!r} has no class in the label scheme"})
    for sid, why in skipped.items():
        rows.append({"sample": str(sid), "stage": (stages or {}).get(sid, "preprocess"), "reason": str(why)})
    for sid in table.df["sample_id"]:
        if sid not in usable_ids and sid not in skipped:
            rows.append({"sample": str(sid), "stage": "features", "reason": "no input was built for it"})
    return rows


def excluded_counts(rows: list[dict[str, str]]) -> dict[str, Any]:
    """Counts of excluded samples by stage (label-scheme rows count their samples)."""
    import re

    by_stage: dict[str, int] = {}
    for r in rows:
        m = re.fullmatch(r"\((\d+) samples\)", r["sample"])
        by_stage[r["stage"]] = by_stage.get(r["stage"], 0) + (int(m.group(1)) if m else 1)
    return {"total": sum(by_stage.values()), "by_stage": by_stage}


def excluded_summary(m: dict) -> str:
    """One paragraph: how many samples were left out, at which stage, and where the list is."""
    ex = m.get("excluded") or {}
    total = ex.get("total", 0)
    if not total:
        return "No sample was excluded."
    names = {"load": "by the loader (missing clips or problem rows)", "label_scheme": "by the label scheme",
             "preprocess": "by preprocessing", "features": "by feature extraction"}
    parts = [f"{n} {names.get(k, k)}" for k, n in ex.get("by_stage", {}).items() if n]
    return (f"{total} samples were excluded: {', '.join(parts)}. Each is listed with its reason in "
            f"excluded.csv.")


def write_report(result, out: Path, table=None, excluded: list[dict[str, str]] | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    cfg, m = result.config, result.metrics
    result.predictions.to_csv(out / "predictions.csv", index=False)
    rows = excluded if excluded is not None else getattr(result, "excluded", None)
    if rows is not None:
        pd.DataFrame(rows, columns=["sample", "stage", "reason"]).to_csv(out / "excluded.csv", index=False)
    (out / "config.resolved.yaml").write_text(cfg.to_yaml())
    (out / "environment.json").write_text(json.dumps(run_environment(cfg, m.get("selection_per_fold")), indent=2))
    if cfg.output.plots:
        m["figures"] = _plots(m, out)
    curves = learning_curves(getattr(result, "histories", None) or [], out) if cfg.output.plots else []
    if curves:
        m["figures"].append("learning_curves.png")
    (out / "metrics.json").write_text(json.dumps(m, indent=2, default=str))
    (out / "report.md").write_text(markdown(m, cfg))
    if cfg.output.mlflow:
        from mekit.evaluation.tracking import log_mlflow

        log_mlflow(result, out)
    return out


# -- run.log ----------------------------------------------------------------------------------------
#: run.log lines: local time (as a terminal's clock shows it), level, logger, message
RUN_LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def event_line(ev: Event) -> str | None:
    """A run.log line for the events worth keeping there (a stage ending, a fold, an epoch);
    None for the others (per-item progress would drown the log)."""
    d = ev.data
    if ev.kind == "stage_end":
        count = f" {d.get('done')}/{d['total']}" if d.get("total") else ""
        return f"{d.get('stage')} {'done' if d.get('ok', True) else 'stopped'}{count} in {d.get('seconds', 0):.1f} s"
    if ev.kind == "fold":
        return (f"fold {d.get('done')}/{d.get('total')} ({d.get('fold')}, seed {d.get('seed')})"
                + (" read back from an earlier run" if d.get("resumed") else " done"))
    if ev.kind == "epoch":
        from mekit.events import epoch_text

        parts = [f"epoch {d.get('epoch')}/{d.get('epochs')}"]  # counted from 1
        if d.get("fold") is not None:
            parts.append(f"fold {d['fold']}")
        return " ".join([*parts, epoch_text(d)]).rstrip()
    if ev.kind == "message":
        return str(d.get("text", d))
    return None


@contextlib.contextmanager
def run_log(out_dir: Path | None) -> Iterator[Path | None]:
    """While the block runs, write ``out_dir/run.log``: mekit's log records from INFO up and a
    line per finished stage, fold and epoch (the events of :func:`event_line`). Both are removed
    when the block ends, normally or not. A resumed run appends to the same file.

    Forked fold workers inherit the file handler, so their log records reach run.log too; their
    events are forwarded to the parent (tagged with fold and seed), which writes them here."""
    if out_dir is None:
        yield None
        return
    from mekit import events
    from mekit.paths import prepare_out_dir

    path = prepare_out_dir(out_dir, "output path") / "run.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(RUN_LOG_FORMAT, "%Y-%m-%d %H:%M:%S"))
    logger = logging.getLogger("mekit")
    level = logger.level
    # INFO records must reach the handler; the logger's level is put back afterwards. (A handler
    # of the root logger with no level of its own also sees mekit's INFO records meanwhile.)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)

    def line(text: str, level: int = logging.INFO, created: float | None = None) -> None:
        # straight to the file handler, not through the logger: its other handlers (a console)
        # show events through their own listeners and errors through the caller
        rec = {"name": "mekit.run", "levelno": level, "levelname": logging.getLevelName(level), "msg": text}
        handler.handle(logging.makeLogRecord(rec if created is None else {**rec, "created": created}))

    def write(ev: Event) -> None:
        text = event_line(ev)
        if text is not None:
            line(text, created=ev.time)

    try:
        with events.listen(write):
            yield path
    except BaseException as e:
        line(f"run stopped: {type(e).__name__}: {e}", logging.ERROR)
        raise
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()
