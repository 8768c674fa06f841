"""Run one experiment: load -> features -> protocol folds -> fit on training subjects ->
predict held-out subjects -> pooled metrics -> report folder.

Everything learned from data (scaler, PCA, resampling, class weights, hyper-parameters)
is fitted inside a fold on its training part only; hyper-parameters are chosen by an
inner subject-grouped CV on the training subjects. The held-out fold is only predicted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mekit import events
from mekit.config import ExperimentConfig
# what a fold is built from lives in the engine layer (bundles need it too); re-exported here
from mekit.engine.factory import _fit_threads, build_inputs, input_name, is_neural, make_model  # noqa: F401
from mekit.errors import ConfigError, DataError
from mekit.procs import die_with_parent

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


def fold_dir_name(fold: str) -> str:
    """A file-safe folder name for a fold, unique per exact fold name: a readable slug plus a
    short hash of the name (subjects ``P:1`` and ``P_1`` share a slug, never a folder)."""
    import hashlib
    import re

    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", fold).strip("._")[:80] or "fold"
    return f"{slug}-{hashlib.sha1(fold.encode()).hexdigest()[:8]}"


def _fold_dir(out_dir: Path | None, seed: int, fold: str) -> Path | None:
    if out_dir is None:
        return None
    return out_dir / "folds" / f"seed{seed}" / fold_dir_name(fold)


#: how a run treats folds saved by an earlier run in the same folder
RESUME_MODES = ("auto", "strict", "off")


def check_resume_mode(mode: str) -> None:
    """Refuse an unknown ``resume`` value in one line (every task's entry point calls it first)."""
    if mode not in RESUME_MODES:
        raise ConfigError(f"resume: {mode!r}; expected one of {list(RESUME_MODES)}")


def resume_stamp(cfg: ExperimentConfig, table, targets: Any = None) -> dict[str, str]:
    """What saved folds must match to be reused: the config (minus settings that cannot change a
    result), the data (ids, labels, subjects, key frames and the fingerprints of their files) and
    the code (mekit's version and a hash of its source).

    ``targets`` (any JSON-able value, e.g. intensity targets by sample id) joins the data part:
    the table fingerprint covers labels and key frames only, so a task that learns another
    column (a rating in ``annotations.csv``) passes what it read from it, and an edited rating
    is a changed data fingerprint rather than a silently reused fold."""
    import hashlib

    from mekit.fingerprint import code_version, table_fingerprint

    data = table_fingerprint(table.df.to_dict("records"))
    if targets is not None:
        extra = json.dumps(targets, sort_keys=True, default=_plain)
        data = hashlib.sha256(f"{data}\0{extra}".encode()).hexdigest()[:24]
    return {"config": hashlib.sha256(cfg.results_yaml().encode()).hexdigest()[:24],
            "data": data, "code": code_version()}


def _plain(o: Any) -> Any:
    """JSON form of numpy values in a resume stamp (arrays as lists, exact float reprs)."""
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    return str(o)


def _prepare_resume(out_dir: Path | None, cfg: ExperimentConfig, table, mode: str = "auto",
                    targets: Any = None) -> str | None:
    """Keep or discard the saved folds of an earlier run in ``out_dir`` (any task: the fold
    folders and the stamp are the same for classification and intensity).

    Folds are reused only when the stamp (config, data, code; ``targets`` see
    :func:`resume_stamp`) is exactly the same. ``auto`` starts over on a mismatch, ``strict``
    stops with a message naming what changed, ``off`` always starts over. Returns why saved
    folds were discarded (None when nothing was)."""
    check_resume_mode(mode)
    if out_dir is None:
        return None
    import shutil

    from mekit.paths import prepare_out_dir

    prepare_out_dir(out_dir, "output path")
    folds = out_dir / "folds"
    stamp_path = folds / "stamp.json"
    stamp = resume_stamp(cfg, table, targets)
    discarded = None
    if folds.exists():
        try:
            old = json.loads(stamp_path.read_text())
        except (OSError, ValueError):
            old = {}
        changed = [k for k in stamp if old.get(k) != stamp[k]]
        if mode == "off":
            discarded = "resume is off"
        elif changed:
            what = " and ".join(changed)
            if mode == "strict":
                raise DataError(f"saved folds were made with a different {what} (resume strict); expected the "
                                f"same config, data and mekit code, or another --out folder", path=folds)
            discarded = f"the {what} changed since they were saved"
        if discarded:
            log.warning("%s: saved folds discarded (%s); every fold is run again", out_dir, discarded)
            shutil.rmtree(folds)
    folds.mkdir(parents=True, exist_ok=True)
    stamp_path.write_text(json.dumps(stamp, indent=2))
    return discarded


def _load_with_progress(cfg: ExperimentConfig, progress: bool = True):
    """Load the config's dataset inside a ``load`` stage; loaders that report their own
    progress (the synthetic generator, which takes a few seconds the first time) turn it into
    ``progress`` events. ``progress`` is kept for callers that pass it; it changes nothing."""
    import inspect

    from mekit.data import get_loader, load_dataset

    opts = dict(cfg.data.options)
    with events.Stage("load", None, loader=cfg.data.loader) as stage:
        if "progress" not in inspect.signature(get_loader(cfg.data.loader)).parameters:
            return load_dataset(cfg.data.loader, cfg.data.root, cfg.data.label_scheme, **opts)

        def update(done: int, total: int) -> None:
            stage.total = total  # known only once the loader starts
            stage.advance(done - stage.done)

        return load_dataset(cfg.data.loader, cfg.data.root, cfg.data.label_scheme, progress=update, **opts)


class _FoldStage(events.Stage):
    """The ``folds`` stage of one seed. Its ETA counts only the folds computed in this call:
    folds read back from disk finish at once and would make the estimate far too short."""

    def __init__(self, total: int, **data: Any) -> None:
        super().__init__("folds", total, **data)
        self.resumed = 0

    def fold_done(self, name: str, seed: int, resumed: bool) -> None:
        self.done += 1
        self.resumed += int(resumed)
        computed = self.done - self.resumed
        left = (self.total or 0) - self.done
        eta = (time.perf_counter() - self.t0) / computed * left if computed and not resumed else None
        events.emit("fold", stage="folds", fold=name, seed=seed, done=self.done, total=self.total,
                    resumed=resumed)
        events.emit("progress", stage="folds", done=self.done, total=self.total,
                    eta_s=None if eta is None else round(eta, 1), **self.data)

    def __enter__(self) -> _FoldStage:
        super().__enter__()
        return self


def _run_fold(job: tuple[int, int, Any], st: dict[str, Any]) -> tuple[int, tuple[pd.DataFrame, dict[str, Any]]]:
    """Fit one classification fold on its training samples, predict its test samples, save them
    (when the run has a folder) and return ``(index, (predictions, selection))``. ``st`` holds
    the fold inputs :func:`_run_experiment` passes to :func:`run_folds`."""
    i, seed, fold = job
    cfg, feats, classes = st["cfg"], st["feats"], st["classes"]
    labels, subjects, datasets = st["labels"], st["subjects"], st["datasets"]
    fdir = _fold_dir(st["out_dir"], seed, fold.name)
    tr, te = list(fold.train_ids), list(fold.test_ids)
    y_tr = np.array([labels[s] for s in tr])
    model = make_model(cfg, seed, fdir)
    X_tr = feats.take(tr)
    with _fit_threads(cfg, X_tr.size):
        model.fit(X_tr, y_tr, np.array([subjects[s] for s in tr]))
        proba = model.predict_proba(feats.take(te))
    full = np.zeros((len(te), len(classes)))
    for j, c in enumerate(model.classes_):
        full[:, classes.index(str(c))] = proba[:, j]
    pred = [classes[k] for k in full.argmax(1)]
    sel = {"fold": fold.name, "seed": seed, **model.selection_}
    history = getattr(model, "history_", None)
    if history:  # a neural model's per-epoch record, for the learning curves (plain numbers in JSON)
        sel["history"] = [{k: float(v) if k != "epoch" else int(v) for k, v in h.items()} for h in history]
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
    return i, (fold_df, sel)


def _read_fold(fdir: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A saved classification fold, as :func:`_run_fold` returned it."""
    # identifiers stay strings (a subject "006" must not come back as the number 6)
    return (pd.read_csv(fdir / "predictions.csv", dtype={c: str for c in _ID_COLUMNS}, keep_default_na=False),
            json.loads((fdir / "selection.json").read_text()))


def save_fold_table(df: pd.DataFrame, path: Path) -> None:
    """Write a fold's table atomically: a fold counts as done once its ``predictions.csv``
    exists, so that file must never be seen half written (write it after the fold's other files)."""
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(path)


#: the fold function and its inputs while forked workers run: set just before the pool forks,
#: so every worker inherits them (copy-on-write, never pickled), and cleared when the pool ends.
#: Serial runs never touch it: there the inputs are plain arguments.
_FOLD_STATE: dict[str, Any] = {}


def fold_workers(cfg: ExperimentConfig, neural: bool) -> int:
    """How many forked fold workers a run uses: ``protocol.workers``, except neural folds on CUDA,
    which run one at a time: a forked child cannot use a CUDA context its parent initialised,
    and spawned workers would not inherit the fold inputs."""
    workers = int(cfg.protocol.workers)
    if workers > 1 and neural:
        from mekit.engine.trainer import device_kind

        if device_kind(cfg.compute) == "cuda":
            log.info("folds run one at a time on CUDA (forked workers cannot use it)")
            return 1
    return workers


def _map_folds(fold_fn, jobs: list[tuple[int, int, Any]], state: dict[str, Any], workers: int):
    """Yield ``fold_fn(job, state)`` for every job, in this process or in ``workers`` forked
    processes (in the order they finish). ``fold_fn`` returns ``(index, result)`` and must seed
    whatever it fits from the job's seed alone, so where a fold runs never changes its result.

    The events a fold emits carry its ``fold`` and ``seed``. Forked workers send theirs back
    through a pipe (only when this context has listeners); they are emitted here, in the calling
    thread and context, while the folds run, and all of a fold's events before its result."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            with events.fields(fold=job[2].name, seed=job[1]):
                res = fold_fn(job, state)
            yield res
        return
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    # a SimpleQueue writes each event to its pipe before ``put`` returns (no feeder thread), so a
    # fold's events are all in the pipe before its result reaches this process
    queue = ctx.SimpleQueue() if events.active() else None

    def drain() -> None:
        while queue is not None and not queue.empty():
            events.deliver(queue.get())

    global _FOLD_STATE
    _FOLD_STATE = {"fn": fold_fn, "state": state, "queue": queue}
    try:
        with ctx.Pool(min(workers, len(jobs)), initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
            results = pool.imap_unordered(_run_fold_detached, jobs)
            while True:
                try:
                    res = results.next(timeout=0.1)
                except mp.TimeoutError:
                    drain()
                    continue
                except StopIteration:
                    break
                drain()
                yield res
        drain()
    finally:
        _FOLD_STATE = {}
        if queue is not None:
            queue.close()


def _run_fold_detached(job: tuple[int, int, Any]) -> tuple[int, Any]:
    """The fold function in a forked worker, in a fresh context. A fork copies the parent's
    listeners (a terminal display, the run.log writer) together with any lock one of their threads
    held at that moment, so a worker calling them could hang or draw over the parent's display.
    Its only listener, when the parent listens, puts each event on the parent's queue; the parent
    emits them and reports each fold as its result arrives."""
    import contextvars

    return contextvars.Context().run(_fold_in_worker, job)


def _fold_in_worker(job: tuple[int, int, Any]) -> tuple[int, Any]:
    queue = _FOLD_STATE.get("queue")
    with contextlib.ExitStack() as stack:
        if queue is not None:
            stack.enter_context(events.listen(queue.put))
        stack.enter_context(events.fields(fold=job[2].name, seed=job[1]))
        return _FOLD_STATE["fn"](job, _FOLD_STATE["state"])


def run_folds(protocol: Any, table: Any, cfg: ExperimentConfig, out_dir: Path | None, fold_fn, state: dict[str, Any],
              read_fold, neural: bool = False, **stage_data: Any) -> tuple[list[Any], int]:
    """The fold loop of every task: for each seed of ``cfg.protocol.seeds``, the protocol's folds
    of ``table``; a fold saved by an earlier run (its ``predictions.csv`` under
    ``out_dir/folds/seed<k>/<fold_dir_name>``, kept by :func:`_prepare_resume`) is read back with
    ``read_fold(folder)``, every other one is computed by ``fold_fn((index, seed, fold), state)``
    (which saves it), serially or in forked workers (:func:`fold_workers`).

    Returns the fold results in (seed, fold) order, whatever order they finished in, and how
    many were read back. A ``folds`` stage per seed and a ``fold`` event per fold are emitted
    here, in this process: with forked workers this is the only place that sees every fold finish.
    """
    workers = fold_workers(cfg, neural)
    out: list[Any] = []
    n_resumed = 0
    for seed in cfg.protocol.seeds:
        folds = protocol.folds(table, seed=seed)
        results: dict[int, Any] = {}
        with _FoldStage(len(folds), seed=seed, protocol=protocol.name, **stage_data) as stage:
            todo = []
            for i, fold in enumerate(folds):
                fdir = _fold_dir(out_dir, seed, fold.name)
                if fdir is not None and (fdir / "predictions.csv").exists():
                    results[i] = read_fold(fdir)
                    n_resumed += 1
                    stage.fold_done(fold.name, seed, resumed=True)
                else:
                    todo.append((i, seed, fold))
            for i, res in _map_folds(fold_fn, todo, state, workers):
                results[i] = res
                stage.fold_done(folds[i].name, seed, resumed=False)
        out.extend(results[i] for i in range(len(folds)))
    return out, n_resumed


def run_experiment(config: ExperimentConfig, out_dir: str | Path | None = None,
                   progress: bool = True, resume: str = "auto") -> RunResult:
    """Run ``config`` end to end and (when ``out_dir`` is given) write its report folder.

    With an ``out_dir``, each finished fold's predictions are saved as it completes (and a
    neural model checkpoints every epoch), so a run killed part-way resumes from its last
    completed fold and epoch when started again with the same config, data, mekit code and
    folder. ``resume``: ``auto`` (reuse matching folds, start over otherwise), ``strict`` (stop
    when saved folds do not match) or ``off`` (always start over).

    Progress (stages ``load``, ``preprocess``, ``folds``; a ``fold`` event per finished fold,
    ``epoch`` events from neural training) is reported through :mod:`mekit.events` and shown by
    whoever listens; ``progress`` is kept for callers that pass it and changes nothing. With an
    ``out_dir``, the run's log and those events are also written to ``out_dir/run.log``.
    """
    out_dir = Path(out_dir) if out_dir is not None else None
    check_resume_mode(resume)
    from mekit.evaluation.validate import validate_config

    validate_config(config)  # every free-form section against what it configures, before any work
    from mekit.evaluation.report import run_log

    with run_log(out_dir):
        return _run_experiment(config, out_dir, resume)


def _run_experiment(cfg: ExperimentConfig, out_dir: Path | None, resume: str) -> RunResult:
    from mekit.evaluation.protocols import get_protocol

    t0 = time.perf_counter()
    log.info("run %s: model %s, inputs %s, protocol %s, seeds %s", cfg.name, cfg.model.name,
             input_name(cfg), cfg.protocol.name, list(cfg.protocol.seeds))
    table = _load_with_progress(cfg)
    if len(table) == 0:
        raise DataError(f"dataset {cfg.data.loader} at {cfg.data.root} has no labelled samples")
    discarded = _prepare_resume(out_dir, cfg, table, resume)
    scheme = getattr(table, "scheme", None)
    present = set(table.df["label"])
    classes = [c for c in (list(scheme.classes) if scheme is not None else table.classes) if c in present]
    t_load = time.perf_counter() - t0

    with events.Stage("features", None, name=input_name(cfg), model=cfg.model.name):
        feats = build_inputs(table, cfg)
    t_feat = time.perf_counter() - t0 - t_load
    # keep the table's own order (not the extractor's), so folds, training order and so the
    # fitted models do not depend on the order a feature stage happens to return samples in
    usable = table.subset(table.df["sample_id"].isin(set(feats.sample_ids)))
    from mekit.evaluation.report import excluded_counts, excluded_rows

    excluded = excluded_rows(table, dict(feats.skipped), set(usable.df["sample_id"]))
    if len(usable) == 0:
        reasons = "; ".join(f"{r['sample']}: {r['reason']}" for r in excluded[:3])
        raise DataError(f"no sample of {cfg.data.loader} could be used ({len(excluded)} excluded, e.g. {reasons})")
    labels = dict(zip(usable.df["sample_id"], usable.df["label"]))
    subjects = dict(zip(usable.df["sample_id"], usable.df["subject"]))
    datasets = dict(zip(usable.df["sample_id"], usable.df["dataset"]))

    from mekit.data.labels import check_trainable

    check_trainable(usable, classes=classes)  # every class: >= 2 samples from >= 2 subjects
    protocol = get_protocol(cfg.protocol.name, **cfg.protocol.params)
    state = {"cfg": cfg, "feats": feats, "classes": classes, "labels": labels, "subjects": subjects,
             "datasets": datasets, "out_dir": out_dir}
    results, n_resumed = run_folds(protocol, usable, cfg, out_dir, _run_fold, state, _read_fold,
                                   neural=is_neural(cfg.model.name))
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

    metrics = summarise(predictions, classes, protocol, cfg, selections)
    # a resumed run's times cover this call only: folds_resumed says how many folds came from disk
    metrics["timing_s"] = {"load": round(t_load, 3), "features": round(t_feat, 3),
                           "total": round(time.perf_counter() - t0, 3), "folds_resumed": n_resumed}
    metrics["skipped"] = dict(feats.skipped)
    metrics["excluded"] = excluded_counts(excluded)
    if table.report.corpora:
        metrics["corpora"] = dict(table.report.corpora)
    if table.report.corpora_absent:  # a composite loaded with allow_partial: say so everywhere
        metrics["partial_composite"] = dict(table.report.corpora_absent)
    metrics["resume"] = {"mode": resume, "folds_resumed": n_resumed, "folds_total": len(frames),
                         "discarded": discarded}
    result = RunResult(cfg, predictions, metrics, None, dict(feats.skipped), excluded, histories)
    if out_dir is not None:
        from mekit.evaluation.report import write_report

        result.out_dir = write_report(result, out_dir, table, excluded)
    log.info("run %s done: UF1 %.3f, UAR %.3f over %d folds (%d resumed) in %.1f s", cfg.name, metrics["uf1"],
             metrics["uar"], len(frames), n_resumed, metrics["timing_s"]["total"])
    return result
