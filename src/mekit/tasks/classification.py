"""Task ``classification``: one emotion class per sample, scored by UF1, UAR and accuracy.

Inputs are the configured feature extractor's vectors (classical pipelines) or the neural
model's input tensors (:func:`mekit.engine.factory.build_inputs`); per fold, the model is fitted
on the training subjects and predicts the held-out ones. Everything learned from data (scaler,
PCA, resampling, class weights, hyper-parameters, early-stopping epoch) is fitted inside a fold
on its training part only; hyper-parameters are chosen by an inner subject-grouped CV on the
training subjects. The held-out fold is only predicted.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mekit import events
from mekit.config import ExperimentConfig
from mekit.engine.factory import _fit_threads, build_inputs, input_name, is_neural, make_model
from mekit.errors import DataError
from mekit.tasks.base import FoldJob, Prepared, save_fold_table

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    config: ExperimentConfig
    predictions: pd.DataFrame
    metrics: dict[str, Any]
    out_dir: Path | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    #: every sample left out, with stage and reason (also written to excluded.csv)
    excluded: list[dict[str, str]] = field(default_factory=list)
    #: per neural fold: ``{"fold", "seed", "history": [{"epoch", "lr", "train_loss", "val_uf1"?}, ...]}``
    #: (empty for classical models; drawn as learning_curves.png)
    histories: list[dict[str, Any]] = field(default_factory=list)


#: predictions.csv columns that are identifiers or labels, never numbers
_ID_COLUMNS = ("sample_id", "subject", "dataset", "fold", "true", "pred")


def _fit_leaf(cfg: ExperimentConfig, feats: Any, tr: list[str], te: list[str], st: dict[str, Any], seed: int,
              fdir: Path | None) -> tuple[np.ndarray, dict[str, Any]]:
    """Fit ``cfg``'s model on ``tr`` and return its probabilities for ``te`` over the run's
    classes (a class absent from ``tr`` gets 0) and its selection record."""
    classes, labels, subjects = st["classes"], st["labels"], st["subjects"]
    y_tr = np.array([labels[s] for s in tr])
    model = make_model(cfg, seed, fdir)
    X_tr = feats.take(tr)
    with _fit_threads(cfg, X_tr.size):
        model.fit(X_tr, y_tr, np.array([subjects[s] for s in tr]))
        proba = model.predict_proba(feats.take(te))
    full = np.zeros((len(te), len(classes)))
    for j, c in enumerate(model.classes_):
        full[:, classes.index(str(c))] = proba[:, j]
    sel = dict(model.selection_)
    history = getattr(model, "history_", None)
    if history:  # a neural model's per-epoch record, for the learning curves (plain numbers in JSON)
        sel["history"] = [{k: float(v) if k != "epoch" else int(v) for k, v in h.items()} for h in history]
    return full, sel


def _recipe_fitting(st: dict[str, Any], seed: int) -> tuple[Any, Any]:
    """What :mod:`mekit.tasks.recipes` fits through, from the state :meth:`Classification.prepare`
    built for a run with recipes: ``fit_leaf(cfg, train_ids, test_ids)`` on the inputs of that
    recipe, and the samples' :class:`~mekit.tasks.recipes.FoldData` for ``seed``."""
    from mekit.tasks import recipes

    inputs = st["inputs"]

    def fit_leaf(cfg: ExperimentConfig, a: list[str], b: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
        return _fit_leaf(cfg, inputs[recipes.input_key(cfg)], a, b, st, seed, None)

    return fit_leaf, recipes.FoldData(st["labels"], st["subjects"], tuple(st["classes"]), seed)


def choose_recipe(cfg: ExperimentConfig, progress: bool = False) -> tuple[ExperimentConfig, dict[str, Any]]:
    """The candidate of ``cfg.search`` a final model (``mekit train``) uses, and the record of the choice.

    The same choice a nested run makes inside each outer fold, made once over every labelled
    subject of the dataset (a final model has no held-out subject): an inner subject-grouped CV
    (``protocol.params.inner_k`` folds, 5 by default, shuffled with ``cfg.seed``) scores every
    candidate by pooled UF1, ties going to the earlier one. How well the chosen recipe does on new
    subjects is what the nested run of the same config estimates, not this inner score.

    Returns the winner's config, with no ``search`` and the nested protocol's outer protocol, and
    ``{"method", "chosen": {"recipe"}, "inner_uf1", "inner_k"}``.

    Raises:
        ConfigError: the config has no search, or a candidate is an ensemble (a bundle holds one model).
    """
    from mekit.config import from_dict
    from mekit.data import load_dataset
    from mekit.errors import ConfigError
    from mekit.tasks import recipes

    if not cfg.search:
        raise ConfigError("search: choose_recipe needs a config with search candidates")
    plan = recipes.plan(cfg) or ()
    ensembles = [r.label for r in plan if r.members]
    if ensembles:
        raise ConfigError(f"search: candidates {ensembles} are ensembles, and a bundle holds one model; `mekit "
                          "train` chooses among single-model candidates only (remove those, or evaluate the config "
                          "with `mekit evaluate`)")
    table = load_dataset(cfg.data.loader, cfg.data.root, cfg.data.label_scheme, **cfg.data.options)
    table = table.subset(table.df["label"].notna()) if len(table) else table
    prepared = TASK.prepare(cfg, None, table)
    st = prepared.state
    ids = list(prepared.usable.sample_ids)
    if not ids:
        raise DataError(f"dataset {cfg.data.loader} at {cfg.data.root}: no sample every candidate can use",
                        value=dict(list(prepared.skipped.items())[:3]), expected="labelled samples with inputs")
    fit_leaf, data = _recipe_fitting(st, cfg.seed)
    with events.Stage("recipe choice", None, recipes=len(plan)):
        best, scores, k = recipes.choose(plan, fit_leaf, ids, data, st["inner_k"])
    raw = plan[best].cfg.to_dict()
    params = dict(cfg.protocol.params)
    # the outer protocol of the nested run stands in for it: a final model's config names no search
    raw["protocol"] = {**raw["protocol"], "name": params.get("outer", "loso"),
                       "params": dict(params.get("outer_params") or {})}
    winner = from_dict(ExperimentConfig, raw, "search")
    record = {"method": f"{len(plan)} recipes scored by an inner {k}-fold subject-grouped CV over all "
                        f"{len(set(st['subjects'][i] for i in ids))} subjects (pooled UF1); the best trained on all "
                        "of them",
              "chosen": {"recipe": plan[best].label}, "inner_uf1": scores, "inner_k": k}
    log.info("recipe chosen for the final model: %s (inner UF1 %s)", plan[best].label, scores)
    return winner, record


def run_fold(job: FoldJob, st: dict[str, Any]) -> tuple[int, tuple[pd.DataFrame, dict[str, Any]]]:
    """Fit one fold on its training samples, predict its test samples, save them (when the run
    has a folder) and return ``(index, (predictions, selection))``. ``st`` is the state
    :meth:`Classification.prepare` built. A run with several recipes (``protocol: nested`` over
    ``search``, or an ensemble) fits them through :mod:`mekit.tasks.recipes`, on this fold's
    training subjects only."""
    classes, labels, subjects, datasets = st["classes"], st["labels"], st["subjects"], st["datasets"]
    seed, fold, fdir = job.seed, job.fold, job.fold_dir
    tr, te = list(fold.train_ids), list(fold.test_ids)
    plan = st.get("recipes")
    if plan is None:
        full, model_sel = _fit_leaf(st["cfg"], st["feats"], tr, te, st, seed, fdir)
    else:
        from mekit.tasks import recipes

        fit_leaf, data = _recipe_fitting(st, seed)
        if st["cfg"].search:
            full, model_sel = recipes.nested_fit_predict(plan, fit_leaf, tr, te, data, st["inner_k"])
        else:
            full, model_sel = recipes.fit_predict(plan[0], fit_leaf, tr, te, data)
    pred = [classes[k] for k in full.argmax(1)]
    sel = {"fold": fold.name, "seed": seed, **model_sel}
    fold_df = pd.DataFrame({"sample_id": te, "subject": [subjects[s] for s in te],
                            "dataset": [datasets[s] for s in te], "fold": fold.name, "seed": seed,
                            "true": [labels[s] for s in te], "pred": pred,
                            **{f"p_{c}": full[:, k] for k, c in enumerate(classes)}})
    if fdir is not None:
        fdir.mkdir(parents=True, exist_ok=True)
        (fdir / "selection.json").write_text(json.dumps(sel, default=str))
        save_fold_table(fold_df, fdir / "predictions.csv")
        # the fold is finished and resumes from its predictions: its training state
        # (weights + optimiser moments, ~380 MB for R(2+1)D-18) is no longer needed
        (fdir / "train_state.pt").unlink(missing_ok=True)
    return job.index, (fold_df, sel)


def read_fold(fdir: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A saved fold, as :func:`run_fold` returned it."""
    # identifiers stay strings (a subject "006" must not come back as the number 6)
    return (pd.read_csv(fdir / "predictions.csv", dtype={c: str for c in _ID_COLUMNS}, keep_default_na=False),
            json.loads((fdir / "selection.json").read_text()))


class Classification:
    """The classification task (see the module docstring and :mod:`mekit.tasks.base`)."""

    name = "classification"
    #: what a dataset must hold for this task, in words (an empty table's error)
    samples = "labelled samples"
    inputs_stage = "features"
    fold = staticmethod(run_fold)
    read_fold = staticmethod(read_fold)

    def check(self, cfg: ExperimentConfig) -> None:
        return None  # everything is checked by validate_config

    def neural(self, cfg: ExperimentConfig) -> bool:
        from mekit.tasks import recipes

        plan = recipes.plan(cfg)
        if plan is not None:
            return any(recipes.is_neural_recipe(r) for r in plan)
        return is_neural(cfg.model.name)

    def describe(self, cfg: ExperimentConfig) -> str:
        from mekit.tasks import recipes

        plan = recipes.plan(cfg)
        if plan is None:
            what = f"model {cfg.model.name}, inputs {input_name(cfg)}"
        elif cfg.search:
            what = f"{len(plan)} candidate recipes ({', '.join(r.label for r in plan)})"
        else:
            what = f"ensemble of {', '.join(m.label for m in plan[0].members)}"
        return f"run {cfg.name}: {what}, protocol {cfg.protocol.name}, seeds {list(cfg.protocol.seeds)}"

    def prepare(self, cfg: ExperimentConfig, settings: Any, table: Any) -> Prepared:
        from mekit.tasks import recipes

        scheme = getattr(table, "scheme", None)
        present = set(table.df["label"])
        classes = [c for c in (list(scheme.classes) if scheme is not None else table.classes) if c in present]
        plan = recipes.plan(cfg)
        inputs: dict[str, Any] = {}
        if plan is None:
            with events.Stage(self.inputs_stage, None, name=input_name(cfg), model=cfg.model.name):
                feats = build_inputs(table, cfg)
            ids = set(feats.sample_ids)
            skipped = dict(feats.skipped)
        else:
            # every distinct input of every recipe, built once; a sample any recipe cannot use is
            # left out of the whole run, so all recipes are scored on the same samples
            skipped = {}
            for leaf in (leaf for r in plan for leaf in r.leaves()):
                key = recipes.input_key(leaf.cfg)
                if key in inputs:
                    continue
                with events.Stage(self.inputs_stage, None, name=input_name(leaf.cfg), model=leaf.cfg.model.name,
                                  recipe=leaf.label):
                    inputs[key] = build_inputs(table, leaf.cfg)
                for sid, why in inputs[key].skipped.items():
                    skipped.setdefault(sid, why)
            ids = set.intersection(*(set(f.sample_ids) for f in inputs.values()))
            for f in inputs.values():
                for sid in set(f.sample_ids) - ids:
                    skipped.setdefault(sid, "another recipe of the run could not use this sample")
            feats = None
        # keep the table's own order (not the extractor's), so folds, training order and so the
        # fitted models do not depend on the order a feature stage happens to return samples in
        usable = table.subset(table.df["sample_id"].isin(ids))
        if len(usable):
            from mekit.data.labels import check_trainable

            check_trainable(usable, classes=classes)  # every class: >= 2 samples from >= 2 subjects
        state = {"cfg": cfg, "feats": feats, "classes": classes,
                 "labels": dict(zip(usable.df["sample_id"], usable.df["label"])),
                 "subjects": dict(zip(usable.df["sample_id"], usable.df["subject"])),
                 "datasets": dict(zip(usable.df["sample_id"], usable.df["dataset"]))}
        if plan is not None:
            state.update(recipes=plan, inputs=inputs, inner_k=int(cfg.protocol.params.get("inner_k", 5)))
        return Prepared(usable, state, skipped)

    def summarise(self, cfg: ExperimentConfig, settings: Any, prepared: Prepared, protocol: Any,
                  results: list[Any]) -> RunResult:
        frames: list[pd.DataFrame] = []
        selections: list[dict[str, Any]] = []
        histories: list[dict[str, Any]] = []
        for fold_df, saved_sel in results:
            frames.append(fold_df)
            sel = dict(saved_sel)
            history = sel.pop("history", None)  # kept in selection.json, drawn apart, not in metrics.json
            if history:
                histories.append({"fold": sel.get("fold"), "seed": sel.get("seed"), "history": history})
            selections.append(sel)
        predictions = pd.concat(frames, ignore_index=True)
        from mekit.evaluation.report import summarise

        metrics = summarise(predictions, prepared.state["classes"], protocol, cfg, selections)
        return RunResult(cfg, predictions, metrics, histories=histories)

    def write_report(self, result: RunResult, out_dir: Path, table: Any) -> Path:
        from mekit.evaluation.report import write_report

        return write_report(result, out_dir, table, result.excluded)

    def headline(self, result: RunResult) -> str:
        m = result.metrics
        return f"UF1 {m['uf1']:.3f}, UAR {m['uar']:.3f}"

    def summary_line(self, result: RunResult) -> str:
        """The run's headline figures (rich markup), for the command line."""
        m = result.metrics
        leaky = "  [bold red](LEAKY protocol)[/]" if m["leaky"] else ""
        return (f"[bold]{result.config.name}[/]: {m['protocol']} over {m['n_subjects']} subjects, "
                f"{m['n_samples']} samples{leaky}\n"
                f"UF1 {m['uf1']:.3f}  UAR {m['uar']:.3f}  accuracy {m['accuracy']:.3f}  "
                f"weighted F1 {m['weighted_f1']:.3f}  ({m['timing_s']['total']:.1f} s)")

    def nothing_usable(self, cfg: ExperimentConfig, prepared: Prepared, excluded: list[dict[str, str]]) -> DataError:
        """The error of a run in which no sample could be used."""
        reasons = "; ".join(f"{r['sample']}: {r['reason']}" for r in excluded[:3])
        return DataError(f"no sample of {cfg.data.loader} could be used ({len(excluded)} excluded, e.g. {reasons})")


TASK = Classification()
