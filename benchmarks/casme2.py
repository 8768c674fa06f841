"""CASME II benchmarks: 3-class (MEGC 2019 part) and 5-class LOSO, 4-class random split vs LOSO.

Reads ../shared/data/CASME2 (coding sheet + Cropped frames; licensed data, never copied into
the repository) and runs every configuration of :data:`RUNS` through mekit's own experiment
runner (:func:`mekit.experiment.run_experiment`), so each figure is what ``mekit run``
gives for the same config. Each run's report folder goes to ``runs/casme2/<name>/``
(gitignored); the summary table is printed and written to ``benchmarks/results/casme2.md``.

    .venv/bin/python benchmarks/casme2.py                    # everything (cached runs are reused)
    .venv/bin/python benchmarks/casme2.py --heavy            # also R(2+1)D-18 (about 40 min on 2 cores)
    .venv/bin/python benchmarks/casme2.py --quick            # the defaults and the floor only
    .venv/bin/python benchmarks/casme2.py --only 3c_hoof_logreg,3c_ststnet
    .venv/bin/python benchmarks/casme2.py --only 'neural*' --rerun

A finished run is reused (its figures and its measured wall time) while its resolved config is
unchanged; ``--rerun`` runs it again from scratch. Wall time is the whole run_experiment call on
this machine (load, features or inputs, every fold, report), with the preprocessing cache warm:
the script computes each distinct preprocessing once (``warm`` step) before timing anything.

Honesty: LOSO runs select hyper-parameters by inner subject-grouped CV and neural epochs by early
stopping on training subjects only. Choosing the *default* configuration among the rows of this
table by their LOSO score is itself a selection on the test folds; the table says which rows
were chosen that way.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "CASME2"
CONFIGS = REPO / "configs"
RESULTS = REPO / "benchmarks" / "results" / "casme2.md"
RUNS_DIR = REPO / "runs" / "casme2"

# Figures of the reference floor (TV-L1 onset->apex flow at 128 px, HOOF 5x5 + mean strain per
# cell, balanced logistic regression with C by inner grouped CV), measured outside mekit.
FLOOR = {"3": {"uf1": 0.854, "uar": 0.858}, "5": {"uf1": 0.650, "uar": 0.666}}
#: the targets: UF1 of the nested rows (no selection effect), 3- and 5-class
TARGET = {"3": 0.90, "5": 0.78}
# Published CASME II 4-class ResNet-18 flow-image baseline, random 75/25 split (leaky).
PUBLISHED_4CLASS = {"accuracy": 0.686, "weighted_f1": 0.639}


@dataclass
class Run:
    name: str
    config: str                    # file under configs/
    overrides: dict[str, Any] = field(default_factory=dict)
    what: str = ""                 # method column
    quick: bool = False            # part of --quick
    note: str = ""
    heavy: bool = False            # run only with --heavy (hours on a 2-core CPU)


# Short-hands for the override dictionaries.
#: the literature baselines use the coding sheet's apex (the defaults spot it)
ANNOTATED = {"preprocess.spot_apex": "missing"}
HOOF = {"features.name": "hoof", "features.params": {"grid": 5, "bins": 8}, **ANNOTATED}
LBP = {"features.name": "lbp_top", "features.params": {"n_frames": 10, "size": 64, "grid": 5}, **ANNOTATED}
FROZEN = {"features.name": "frozen_cnn", "features.params": {"which": "apex"}, **ANNOTATED}
LOGREG = {"model.name": "logreg", "model.params": {}}
SVM = {"model.name": "svm", "model.params": {}}
#: flow stacks are not flipped: mekit.engine.augment negates channel 0 on a flip, which mirrors
#: raw flow but not a min-max normalised stack (there the mirror is 1 - u) nor an HSV image
NO_FLIP = {"hflip": False, "affine": 0.0}


def _neural(model: str, epochs: int, seeds: int = 1, features: dict | None = None, flow: bool = True,
            **params: Any) -> dict[str, Any]:
    """Overrides for a neural row: a fixed epoch budget (chosen before looking at any result, so no
    epoch is selected on data), one torch thread (5x faster per step than two on this shared
    2-core machine), ``seeds`` seeds."""
    p = {"epochs": epochs, "batch_size": 32, "lr": 0.005 if model in ("ststnet", "off_apexnet") else 0.001,
         "selection": "fixed", "threads": 1, **({"augment": NO_FLIP} if flow else {}), **params}
    return {"model.name": model, "model.params": p, "protocol.seeds": list(range(seeds)),
            "features.name": "flow", "features.params": features if features is not None else {"size": 28}}


BEST = "configs default"  # marks the rows that are the shipped defaults
#: the default descriptor parameters (configs/casme2_3class_loso.yaml and _5class_)
DESC = {"grids": [5], "bins": 8, "strain_mean": True, "normalise": "mean", "sqrt": True}
MEDIAN = {"features.params": {**DESC, "subtract": "median"}}
#: STSTNet as a member of an in-fold ensemble (the default deep row's settings)
STSTNET_MEMBER = {"label": "ststnet", "features": {"name": "flow", "params": {"size": 28}},
                  "model": {"name": "ststnet", "params": {"epochs": 30, "batch_size": 32, "lr": 0.005,
                                                          "selection": "fixed", "threads": 1, "augment": NO_FLIP}}}
#: the late fusion of configs/casme2_*class_nested_fusion.yaml's last candidate, as a plain LOSO run
FUSION_MEAN = {"model.name": "ensemble", "model.params": {"combine": "mean", "members": [
    {"label": "desc_logreg", "model.name": "logreg"},
    {"label": "desc_apex_offset", "model.name": "logreg", "features.params.pairs": ["onset_apex", "apex_offset"]},
    STSTNET_MEMBER]}}


def runs() -> list[Run]:
    out: list[Run] = []
    for cls in ("3", "5"):
        cfg, deep = f"casme2_{cls}class_loso.yaml", f"casme2_{cls}class_ststnet.yaml"
        p = f"{cls}c_"
        out += [
            Run(p + "nested", f"casme2_{cls}class_nested.yaml", {},
                "NESTED: per outer fold, the best of 7 recipes + a weighted in-fold ensemble by inner 5-fold "
                "subject-grouped CV on the training subjects [honest default]", quick=True,
                note="no selection on the test folds among its candidates; the candidate list itself was written "
                     "after the rows below were seen (see the config's header)"),
            Run(p + "nested_fusion", f"casme2_{cls}class_nested_fusion.yaml", {},
                "NESTED: per outer fold, the best of descriptors + logreg, its apex->offset variant, STSTNet and "
                "their mean fusion, by inner 5-fold subject-grouped CV on the training subjects", quick=True,
                note="no selection on the test folds among its four candidates; the fusion candidate was added "
                     "after its plain LOSO row (*_fusion_mean_loso) had been seen"),
            Run(p + "fusion_mean_loso", cfg, FUSION_MEAN,
                "late fusion (mean of class probabilities) of descriptors + logreg, its apex->offset variant and "
                "STSTNet, plain LOSO", note="one recipe, nothing chosen on the test folds inside it; but it was "
                "written after the desc_* and ststnet rows below had been seen (a selection on these subjects)"),
            Run(p + "default", cfg, {}, "flow_descriptors (HOOF 5x5 + strain, mean-speed normalised, sqrt), "
                "spotted apex + logreg [" + BEST + "]", quick=True,
                note="selected among the desc_* variants by the mean of its 3- and 5-class LOSO UF1 "
                     "(a selection on the test folds)"),
            Run(p + "desc_svm", cfg, SVM, "flow_descriptors + linear SVM"),
            Run(p + "desc_median_logreg", cfg, MEDIAN, "flow_descriptors, median flow subtracted + logreg"),
            Run(p + "hoof_logreg", cfg, {**HOOF, **LOGREG}, "hoof + logreg (floor recipe)", quick=True),
            Run(p + "hoof_svm", cfg, {**HOOF, **SVM}, "hoof + linear SVM"),
            Run(p + "lbp_top_logreg", cfg, {**LBP, **LOGREG}, "lbp_top + logreg"),
            Run(p + "lbp_top_svm", cfg, {**LBP, **SVM}, "lbp_top + linear SVM"),
            Run(p + "frozen_cnn_logreg", cfg, {**FROZEN, "model.name": "logreg", "model.params": {"pca": 64}},
                "frozen_cnn (EfficientNet-Lite0, apex) + PCA 64 + logreg"),
            Run(p + "frozen_cnn_svm", cfg, {**FROZEN, "model.name": "svm", "model.params": {"pca": 64}},
                "frozen_cnn + PCA 64 + linear SVM"),
            # descriptor, flow and apex variants around the default (one change each)
            Run(p + "desc_apex_offset", cfg, {"features.params": {**DESC, "pairs": ["onset_apex", "apex_offset"]}},
                "flow_descriptors, onset->apex and apex->offset + logreg"),
            Run(p + "desc_pyramid", cfg, {"features.params": {**DESC, "grids": [3, 5]}},
                "flow_descriptors on 3x3 and 5x5 grids + logreg"),
            Run(p + "desc_strain_hist", cfg, {"features.params": {**DESC, "strain_bins": 4}},
                "flow_descriptors + 4-bin strain histogram per cell + logreg"),
            Run(p + "desc_mdmo", cfg, {"features.params": {**DESC, "mdmo": True}},
                "flow_descriptors + MDMO in 8 landmark ROIs + logreg"),
            Run(p + "desc_mask_eyes", cfg, {"features.params": {**DESC, "mask_eyes": True}},
                "flow_descriptors, eye regions masked + logreg"),
            Run(p + "desc_annotated_apex", cfg, ANNOTATED,
                "flow_descriptors + logreg, the coding sheet's apex (default before the selection)"),
            Run(p + "desc_flow192", cfg, {"preprocess.size": 192}, "flow_descriptors + logreg, flow at 192 px"),
            Run(p + "desc_farneback", cfg, {"preprocess.flow": "farneback"},
                "flow_descriptors + logreg, Farneback flow"),
            # imbalance options, classical
            Run(p + "desc_noweights", cfg, {"imbalance.class_weight": None}, "flow_descriptors + logreg, no class weights"),
            Run(p + "desc_smote", cfg, {"imbalance.class_weight": None, "imbalance.sampler": "smote"},
                "flow_descriptors + logreg, SMOTE (no class weights)"),
            # neural families on 28 px flow stacks
            Run(p + "ststnet", deep, {}, "STSTNet, 28 px flow, 30 epochs [default deep model]", quick=True),
            Run(p + "ststnet_3seeds", deep, {"protocol.seeds": [0, 1, 2]}, "STSTNet, 3 seeds"),
            Run(p + "ststnet_inner_val", deep, {"model.params": {"epochs": 40, "batch_size": 32, "lr": 0.005,
                                                                 "selection": "inner_val", "patience": 10,
                                                                 "threads": 1, "augment": NO_FLIP}},
                "STSTNet, early stopping on training subjects (max 40 epochs)"),
            Run(p + "ststnet_spotted_apex", deep, {"preprocess.spot_apex": "always"},
                "STSTNet, apex spotted (annotation ignored)"),
            Run(p + "ststnet_noweights", deep, {"imbalance.class_weight": None}, "STSTNet, no class weights"),
            # class weights go to focal loss as its alpha: the trainer hands them to every loss as
            # `weight`, which the focal builder does not take
            Run(p + "ststnet_focal", deep, {**_neural("ststnet", 30, loss="focal",
                                                      loss_params={"gamma": 2.0, "alpha": "balanced"}),
                                             "imbalance.class_weight": None},
                "STSTNet, focal loss (gamma 2, balanced alpha)"),
            Run(p + "ststnet_sampler", deep, {**_neural("ststnet", 30, balanced_sampler=True),
                                               "imbalance.class_weight": None},
                "STSTNet, class-balanced sampler (no class weights)"),
            Run(p + "off_apexnet", deep, _neural("off_apexnet", 30), "OFF-ApexNet, 28 px u/v"),
            Run(p + "htnet", deep, _neural("htnet", 20), "HTNet-style transformer, 28 px flow"),
        ]
        if cls == "3":  # the heavier families: 3-class only, small inputs, short budgets (2-core CPU)
            out += [
                Run(p + "resnet18_flow", deep, _neural("resnet18_flow", 10, features={"size": 64}),
                    "ResNet-18 (from scratch), 64 px u/v/strain stack, 10 epochs"),
                # video and pair models cost 8-20x a flow CNN per sample: 48 px, short budgets.
                # The Siamese budget (30 epochs) was fixed after a subject-grouped 5-fold trial on
                # these clips (10 epochs: UF1 0.37, 30: 0.56), a mild selection on this data.
                Run(p + "siamese", deep, {**_neural("siamese", 30, flow=False), "features.name": "pair",
                                           "features.params": {"size": 48}},
                    "Siamese onset/apex crops (standardised difference), 48 px, 30 epochs"),
                # Video models read frames minus the onset frame (features.params.relative): on raw
                # frames C3D-small scored UF1 0.196 under LOSO (below chance; appearance dominates),
                # with relative frames 0.495 in a subject-grouped 5-fold trial on these clips, which
                # is how the option was chosen (a selection on this data, said here).
                Run(p + "cnn_lstm", deep, {**_neural("cnn_lstm", 5, flow=False), "features.name": "sequence",
                                            "features.params": {"n_frames": 8, "size": 48, "relative": True}},
                    "CNN-LSTM, 8 onset-relative frames at 48 px, 5 epochs"),
                Run(p + "c3d_small", deep, {**_neural("c3d_small", 5, flow=False), "features.name": "clip3d",
                                             "features.params": {"n_frames": 8, "size": 48, "relative": True}},
                    "C3D-small, 8 onset-relative frames at 48 px, 5 epochs"),
                # R(2+1)D-18 costs about 0.3-0.5 s per training clip on one CPU thread: 26 LOSO folds
                # would take hours, so it runs a subject-grouped 5-fold (honest, fewer folds)
                Run(p + "r2plus1d_18", deep, {**_neural("r2plus1d_18", 3, flow=False), "features.name": "clip3d",
                                               "features.params": {"n_frames": 8, "size": 48, "relative": True},
                                               "protocol.name": "group_kfold", "protocol.params": {"k": 5}},
                    "R(2+1)D-18 (31 M parameters, from scratch), 8 onset-relative frames at 48 px, 3 epochs, "
                    "subject-grouped 5-fold", heavy=True),
                # the 3-epoch run collapsed to one class (about 20 optimiser steps); a longer budget
                Run(p + "r2plus1d_18_10ep", deep, {**_neural("r2plus1d_18", 10, flow=False), "features.name": "clip3d",
                                                    "features.params": {"n_frames": 8, "size": 48, "relative": True},
                                                    "protocol.name": "group_kfold", "protocol.params": {"k": 5}},
                    "R(2+1)D-18, as above, 10 epochs", heavy=True),
            ]
    c4r, c4l = "casme2_4class_random.yaml", "casme2_4class_loso.yaml"
    desc = {"features.name": "flow_descriptors", "features.params": "@3c", "model.name": "logreg",
            "model.params": {}}
    out += [
        Run("4c_random_resnet18_hsv", c4r, {}, "ResNet-18 + MLP head on HSV Farneback flow image, 48 px",
            quick=True, note="LEAKY random 75/25 split, as the published baseline"),
        Run("4c_loso_resnet18_hsv", c4l, {}, "ResNet-18 + MLP head on HSV Farneback flow image, 48 px",
            note="the same model under LOSO"),
        Run("4c_random_desc_logreg", c4r, desc, "flow_descriptors (3-class default) + logreg",
            note="LEAKY random 75/25 split"),
        Run("4c_loso_desc_logreg", c4l, desc, "flow_descriptors (3-class default) + logreg"),
    ]
    return out


# ----------------------------------------------------------------------------------------
def _resolve_config(run: Run, root: Path):
    import yaml

    from mekit.config import load_config

    overrides = dict(run.overrides)
    if overrides.get("features.params") == "@3c":  # the 3-class default's descriptor, fixed a priori
        base = yaml.safe_load((CONFIGS / "casme2_3class_loso.yaml").read_text())
        overrides["features.params"] = base["features"]["params"]
        overrides["preprocess"] = base["preprocess"]
        overrides["model.params"] = {}
    overrides["data.root"] = str(root)
    overrides["name"] = run.name
    return load_config(CONFIGS / run.config, overrides)


def _warm(cfg, done: set[str]) -> None:
    """Compute the run's preprocessing once, untimed, so every timed run starts with a warm cache."""
    from mekit.data import load_dataset
    from mekit.engine.factory import build_inputs

    key = json.dumps([cfg.data.label_scheme, cfg.preprocess, cfg.features.name, cfg.features.params,
                      cfg.model.name], sort_keys=True, default=str)
    if key in done:
        return
    table = load_dataset(cfg.data.loader, cfg.data.root, cfg.data.label_scheme, **cfg.data.options)
    build_inputs(table, cfg, progress=False)
    done.add(key)


def _row(run: Run, m: dict[str, Any], wall: float) -> dict[str, Any]:
    return {"name": run.name, "what": run.what, "note": run.note, "config": run.config,
            "classes": len(m["classes"]), "protocol": m["protocol"], "leaky": m.get("leaky", False),
            "n": m["n_samples"], "subjects": m.get("n_subjects"),
            "uf1": m["uf1"], "uar": m["uar"], "accuracy": m["accuracy"], "weighted_f1": m["weighted_f1"],
            "ci_uf1": m.get("bootstrap_ci95", {}).get("uf1"), "over_seeds": m.get("over_seeds"),
            "seeds": m.get("seeds"), "wall_s": round(wall, 1)}


def adopt(run: Run, root: Path, folder: Path) -> dict[str, Any]:
    """Take a finished ``mekit run`` folder as ``run``'s row when its config is this row's config
    (its name and data.root aside): the figures are the ones that run measured, the wall time its
    own ``timing_s.total``. Refused (SystemExit naming the difference) otherwise."""
    from mekit.config import load_config

    mine = _resolve_config(run, root)
    theirs = load_config(folder / "config.resolved.yaml", {"name": mine.name, "data.root": mine.data.root})
    if theirs.results_yaml() != mine.results_yaml():
        raise SystemExit(f"--adopt {run.name}={folder}: that run's config differs from the row's config")
    m = json.loads((folder / "metrics.json").read_text())
    row = _row(run, m, float(m["timing_s"]["total"]))
    out = RUNS_DIR / run.name
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark.json").write_text(json.dumps({"config": mine.results_yaml(), "row": row,
                                                    "adopted_from": str(folder)}, indent=2, default=str))
    return row


def run_one(run: Run, root: Path, rerun: bool, warmed: set[str]) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from mekit.engine.factory import is_neural
    from mekit.experiment import run_experiment

    cfg = _resolve_config(run, root)
    out = RUNS_DIR / run.name
    stamp = out / "benchmark.json"
    text = cfg.results_yaml()  # protocol.workers changes the wall time, not the figures
    if not rerun and stamp.exists():
        saved = json.loads(stamp.read_text())
        if saved.get("config") == text:
            return saved["row"]
    if out.exists():
        shutil.rmtree(out)  # a fresh run, so the wall time is honest (no resumed folds)
    _warm(cfg, warmed)
    t0 = time.perf_counter()
    # one BLAS/OpenMP thread for the small classical fits (faster on a shared 2-core machine);
    # neural models set torch's own thread count (model.params.threads)
    limit = threadpool_limits(limits=1) if not is_neural(cfg.model.name) else None
    try:
        res = run_experiment(cfg, out, progress=sys.stderr.isatty())
    finally:
        if limit is not None:
            limit.unregister()
    wall = time.perf_counter() - t0
    row = _row(run, res.metrics, wall)
    stamp.write_text(json.dumps({"config": text, "row": row}, indent=2, default=str))
    return row


# ----------------------------------------------------------------------------------------
def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| run | method | classes | protocol | UF1 [95% CI] | UAR | accuracy | seeds: UF1 mean ± std | wall s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ci = f" [{r['ci_uf1'][0]:.3f}, {r['ci_uf1'][1]:.3f}]" if r.get("ci_uf1") else ""
        seeds = r.get("over_seeds") or {}
        sd = (f"{seeds['uf1']['mean']:.3f} ± {seeds['uf1']['std']:.3f} (n={len(r['seeds'])})"
              if "uf1" in seeds else "-")
        proto = r["protocol"] + (" (LEAKY)" if r["leaky"] else "")
        lines.append(f"| {r['name']} | {r['what']} | {r['classes']} | {proto} | {_fmt(r['uf1'])}{ci} | "
                     f"{_fmt(r['uar'])} | {_fmt(r['accuracy'])} | {sd} | {r['wall_s']:.1f} |")
    return lines


def _by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in rows}


def summary_lines(rows: list[dict[str, Any]]) -> list[str]:
    by = _by_name(rows)
    out = []
    for cls in ("3", "5"):
        for suffix in ("nested", "nested_fusion"):
            n = by.get(f"{cls}c_{suffix}")
            if n:
                met = "met" if n["uf1"] >= TARGET[cls] else "missed"
                out.append(f"- {cls}-class NESTED selection (configs/casme2_{cls}class_{suffix}.yaml, no selection "
                           f"on the test folds among its recipes): UF1 {n['uf1']:.3f}, UAR {n['uar']:.3f} against "
                           f"the target {TARGET[cls]:.2f}: **{met}** ({n['uf1'] - TARGET[cls]:+.3f}).")
    for cls in ("3", "5"):
        d, f = by.get(f"{cls}c_default"), by.get(f"{cls}c_hoof_logreg")
        if f:
            out.append(f"- {cls}-class floor recipe in mekit: UF1 {f['uf1']:.3f}, UAR {f['uar']:.3f} "
                       f"(reference floor measured outside mekit: UF1 {FLOOR[cls]['uf1']:.3f}, UAR {FLOOR[cls]['uar']:.3f}; "
                       f"difference {f['uf1'] - FLOOR[cls]['uf1']:+.3f}).")
        if d:
            met = "met" if d["uf1"] >= TARGET[cls] else "missed"
            out.append(f"- {cls}-class former default config, chosen on these test folds (selection effect): UF1 "
                       f"{d['uf1']:.3f} ({d['uf1'] - TARGET[cls]:+.3f} against the target {TARGET[cls]:.2f}; "
                       f"not counted as {met}).")
    for cls in ("3", "5"):
        st = by.get(f"{cls}c_ststnet")
        if st:
            met = "met" if st["wall_s"] < 60 else "missed"
            out.append(f"- Default deep flow model (STSTNet, configs/casme2_{cls}class_ststnet.yaml), whole "
                       f"{cls}-class LOSO run: {st['wall_s']:.0f} s against the 60 s target: **{met}**; "
                       f"UF1 {st['uf1']:.3f}.")
    r4, l4 = by.get("4c_random_resnet18_hsv"), by.get("4c_loso_resnet18_hsv")
    if r4:
        out.append(f"- 4-class ResNet-18 HSV flow image, LEAKY random 75/25 split: accuracy {r4['accuracy']:.3f}, "
                   f"weighted F1 {r4['weighted_f1']:.3f} (published: accuracy {PUBLISHED_4CLASS['accuracy']:.3f}, "
                   f"weighted F1 {PUBLISHED_4CLASS['weighted_f1']:.3f})"
                   + (f"; the same model under LOSO: accuracy {l4['accuracy']:.3f}, weighted F1 "
                      f"{l4['weighted_f1']:.3f}, UF1 {l4['uf1']:.3f}." if l4 else "."))
    return out


def write_results(rows: list[dict[str, Any]], root: Path, not_run: list[Run] = ()) -> str:
    head = [
        "# CASME II benchmarks",
        "",
        f"Written by `benchmarks/casme2.py` on {datetime.now(timezone.utc).date()} "
        f"({platform.machine()}, {os.cpu_count()} CPU cores, shared with other jobs; no GPU). "
        "Data: CASME II `Cropped` frames and the official coding sheet (244 of 255 clips present, 26 subjects).",
        "",
        "UF1 and UAR are pooled over all folds (MEGC definition). The 95% interval is a subject bootstrap "
        "(subjects resampled with replacement, 1,000 draws, first seed). For neural models the main figures "
        "are seed 0 and the seeds column gives UF1 mean ± std over `protocol.seeds`. Wall time: the whole "
        "run (load, features or inputs from a warm preprocessing cache, every fold, the report) on this "
        "2-core machine, which other jobs were also using; treat timings as upper bounds.",
        "",
        "**Honesty.** Under LOSO every fitted step (scaler, PCA, resampling, class weights, C, "
        "early-stopping epoch) saw only the training subjects of its fold; neural rows train for a fixed "
        "epoch budget unless they say otherwise. But the *default* configurations (rows `3c_default`, "
        "`5c_default`) were chosen among the descriptor variants tried while writing this benchmark (the "
        "`desc_*` rows and about twenty more tried with a fixed C) by their LOSO score on these same 24-26 "
        "subjects: the spotted apex, the mean-speed normalisation and the square-root map were kept because "
        "they scored best there (one change at a time); the `desc_*` rows are a second round of single changes "
        "around that recipe, none of which moved the mean of the 3- and 5-class UF1 by more than the noise, "
        "and the recipe was frozen there. That choice is a selection on the test folds, so the default rows are "
        "optimistically biased by an unknown amount; the `hoof_*` rows (the reference floor recipe, fixed in "
        "advance) are free of it. With 24-26 subjects differences under about 0.05 UF1 are within noise (see "
        "the intervals). Rows marked LEAKY use a sample-level random split (the same people in training and "
        "test) only to compare with a published number obtained that way.",
        "",
        "**Nested rows.** The rows `*_nested` and `*_nested_fusion` (configs/casme2_*class_nested*.yaml) remove "
        "that selection: in every outer LOSO fold an inner 5-fold subject-grouped CV on the fold's training "
        "subjects alone scores each candidate recipe, and only the winner is refitted and predicts the held-out "
        "subject (each run's report.md lists the recipe every fold chose). They are the figures to quote and "
        "the ones judged against the targets. What remains: the candidate list was written after the other rows "
        "had been seen, so the pool it draws from is not blind to these subjects.",
        "",
    ]
    summ = summary_lines(rows)
    body = table_lines(rows)
    notes = [f"- `{r['name']}`: {r['note']}" for r in rows if r.get("note")]
    notes += [f"- `{r.name}` ({r.what}): not run" + (" (heavy: `--heavy`)" if r.heavy else "") for r in not_run]
    text = "\n".join(head + (["## Summary", ""] + summ + [""] if summ else []) + ["## All runs", ""] + body
                     + ([""] + ["Notes:"] + notes if notes else []) + [""])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--quick", action="store_true", help="only the defaults, the floor and one neural model")
    ap.add_argument("--only", default="", help="comma-separated run names or glob patterns")
    ap.add_argument("--rerun", action="store_true", help="run again even where a finished run exists")
    ap.add_argument("--heavy", action="store_true", help="include the runs marked heavy (hours on a CPU)")
    ap.add_argument("--list", action="store_true", help="list the runs and exit")
    ap.add_argument("--adopt", action="append", default=[], metavar="RUN=FOLDER",
                    help="take a finished `mekit run` folder of the same config as that row (repeatable)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    todo = runs()
    if args.list:
        for r in todo:
            print(f"{r.name:28s} {r.config:28s} {r.what}" + ("  [heavy]" if r.heavy else ""))
        return
    if args.quick:
        todo = [r for r in todo if r.quick]
    if not args.heavy:
        for r in todo:
            if r.heavy:
                print(f"(skipping {r.name}: heavy, pass --heavy to run it)", file=sys.stderr)
        todo = [r for r in todo if not r.heavy]
    if args.only:
        pats = [p.strip() for p in args.only.split(",") if p.strip()]
        todo = [r for r in todo if any(fnmatch.fnmatch(r.name, p) or r.name == p for p in pats)]
        if not todo:
            raise SystemExit(f"no run matches {args.only!r}; see --list")
    if not (args.root / "Cropped").is_dir():
        print(f"CASME II not found at {args.root} (licensed data is never shipped with mekit): skipping "
              "the CASME II benchmarks.")
        return
    known = {r.name: r for r in runs()}
    for item in args.adopt:
        name, _, folder = item.partition("=")
        if name not in known or not folder:
            raise SystemExit(f"--adopt {item!r}: expected RUN=FOLDER with RUN one of the runs (see --list)")
        adopt(known[name], args.root, Path(folder))
        todo = [r for r in todo if r.name != name]
    warmed: set[str] = set()
    failed = {}
    for r in todo:
        print(f"... {r.name}", file=sys.stderr, flush=True)
        try:
            run_one(r, args.root, args.rerun, warmed)
        except Exception as e:  # noqa: BLE001 - one failing run never sinks the others
            failed[r.name] = f"{type(e).__name__}: {e}"
            print(f"FAILED {r.name}: {failed[r.name]}", file=sys.stderr, flush=True)
    # the table covers every run that has finished (this call's and earlier ones)
    rows = []
    for r in runs():
        stamp = RUNS_DIR / r.name / "benchmark.json"
        if stamp.exists():
            saved = json.loads(stamp.read_text())
            if saved.get("config") != _resolve_config(r, args.root).results_yaml():
                print(f"(not in the table: {r.name} was run with an older config; run it again)", file=sys.stderr)
                continue
            row = saved["row"]
            row.update(what=r.what, note=r.note)
            rows.append(row)
    not_run = [r for r in runs() if r.name not in {row["name"] for row in rows}]
    text = write_results(rows, args.root, not_run)
    print(text)
    if failed:
        raise SystemExit("failed runs: " + "; ".join(f"{k} ({v})" for k, v in failed.items()))


if __name__ == "__main__":
    main()
