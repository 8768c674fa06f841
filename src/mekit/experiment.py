"""ONE fold loop for every task: load -> task inputs (preprocessing included) -> protocol folds
-> per fold, fit on the training ids and predict the held-out ids -> predictions keyed by
``sample_id`` -> summary -> report folder.

What an experiment learns and how it is scored is a registered task (:mod:`mekit.tasks`:
classification, intensity); everything else is done here, the same way for every task:

- loading the dataset in a ``load`` stage, and the run's ``run.log``;
- resume: each finished fold is saved under ``out_dir/folds/seed<k>/<fold>/`` as it completes,
  and a run started again with the same config, data and mekit code in the same folder reads
  those folds back instead of fitting them again (:func:`prepare_resume`);
- where folds run: on the run's executor (:mod:`mekit.executors`, ``protocol.executor``): in this
  process, in ``protocol.workers`` worker processes (forked; spawned GPU slots for neural folds
  on CUDA) or as tasks of a Ray cluster. The fold function receives its job and the run's state
  as arguments and seeds everything it fits from the job's seed, so where a fold runs never
  changes its result;
- the samples a run left out (``excluded.csv``, by stage), timings and the resume record of
  ``metrics.json``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from mekit import events
from mekit.config import ExperimentConfig
from mekit.errors import ConfigError, DataError
from mekit.tasks import FoldJob, Prepared, fold_dir, get_task

log = logging.getLogger(__name__)


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


def prepare_resume(out_dir: Path | None, cfg: ExperimentConfig, table, mode: str = "auto",
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


def load_with_progress(cfg: ExperimentConfig, progress: bool = True):
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


def fold_workers(cfg: ExperimentConfig, neural: bool) -> tuple[int, str]:
    """How many fold workers a run uses and how they start: ``protocol.workers`` forked processes,
    except neural folds on CUDA, which use ``protocol.workers`` spawned processes (GPU slots: a
    forked child cannot use a CUDA context, a spawned one makes its own), each holding one fold's
    model on the GPU at a time. Read by the ``processes`` executor (:mod:`mekit.executors`)."""
    workers = int(cfg.protocol.workers)
    if workers > 1 and neural:
        from mekit.engine.trainer import device_kind

        if device_kind(cfg.compute) == "cuda":
            log.info("%d folds at a time on CUDA, in spawned workers", workers)
            return workers, "spawn"
    return workers, "fork"


def _fold_tags(job: FoldJob) -> dict[str, Any]:
    """The fields every event of a fold carries."""
    return {"fold": job.fold.name, "seed": job.seed}


def _fold_folder(job: FoldJob) -> Path | None:
    return job.fold_dir


def _fold_at(job: FoldJob, folder: Path) -> FoldJob:
    """The job saving its fold in ``folder`` (a cluster task's scratch folder) instead."""
    return job._replace(fold_dir=folder)


def _init_fold_worker(parent: int, fold_fn: Any, state: dict[str, Any], queue: Any) -> None:
    """A fold worker process's start (the ``processes`` executor's initializer for folds): die with
    the parent, keep the run's fold function, state and event queue."""
    from mekit.executors.processes import init_worker

    init_worker(parent, fold_fn, state, queue)


def fold_work(fold_fn, state: dict[str, Any], cfg: ExperimentConfig, neural: bool = False) -> Any:
    """The folds of a run as a :class:`mekit.executors.Work`: ``fold_fn(job, state)`` per
    :class:`~mekit.tasks.FoldJob`, which returns ``(index, result)`` and seeds whatever it fits
    from the job's seed alone, so where a fold runs never changes its result; its events carry
    its ``fold`` and ``seed``; it saves itself under ``job.fold_dir`` (``predictions.csv`` last,
    the file that says it is done)."""
    from mekit.executors import Work

    workers, start = fold_workers(cfg, neural)
    return Work(fold_fn, state, tags=_fold_tags, folder=_fold_folder, relocate=_fold_at, last=("predictions.csv",),
                neural=neural, workers=workers, start=start, init=_init_fold_worker, what="fold")


@contextlib.contextmanager
def open_executor(cfg: ExperimentConfig, executor: Any = None):
    """The executor folds run on: ``executor`` (an executor object, kept open for its owner) or the
    one the config names (``protocol.executor`` at ``protocol.address``), closed afterwards."""
    from mekit.executors import Executor, get_executor

    if isinstance(executor, Executor):
        yield executor
        return
    with get_executor(executor or cfg.protocol.executor, address=cfg.protocol.address) as ex:
        yield ex


def run_folds(protocol: Any, table: Any, cfg: ExperimentConfig, out_dir: Path | None, fold_fn, state: dict[str, Any],
              read_fold, neural: bool = False, executor: Any = None, **stage_data: Any) -> tuple[list[Any], int]:
    """The fold loop of every task: for each seed of ``cfg.protocol.seeds``, the protocol's folds
    of ``table``; a fold saved by an earlier run (its ``predictions.csv`` under
    ``out_dir/folds/seed<k>/<fold_dir_name>``, kept by :func:`prepare_resume`) is read back with
    ``read_fold(folder)``, every other one is computed by ``fold_fn(FoldJob(index, seed, fold,
    folder), state)`` (which saves it in its folder) on the run's executor: ``executor`` (an
    executor object or name), else the config's ``protocol.executor`` (:mod:`mekit.executors`).

    The folds of every seed go to the executor at once (a cluster runs them side by side). A
    ``folds`` stage per seed, in seed order, and a ``fold`` event per fold are emitted here, in
    this process, the only place that sees every fold finish; a fold of a later seed that
    finishes first is reported in its own seed's stage. Returns the fold results in (seed, fold)
    order, whatever order they finished in, and how many were read back.
    """
    seeds = list(cfg.protocol.seeds)
    folds = {seed: protocol.folds(table, seed=seed) for seed in seeds}
    saved: dict[int, list[tuple[int, Any]]] = {seed: [] for seed in seeds}
    todo: list[FoldJob] = []
    for seed in seeds:
        for i, fold in enumerate(folds[seed]):
            fdir = fold_dir(out_dir, seed, fold.name)
            if fdir is not None and (fdir / "predictions.csv").exists():
                saved[seed].append((i, read_fold(fdir)))
            else:
                todo.append(FoldJob(i, seed, fold, fdir))
    results: dict[int, dict[int, Any]] = {seed: {} for seed in seeds}
    early: dict[int, list[tuple[int, Any]]] = {seed: [] for seed in seeds}
    with contextlib.ExitStack() as stack:
        computed: Any = iter(())
        if todo:
            ex = stack.enter_context(open_executor(cfg, executor))
            if len(todo) > 1:
                log.info("%d folds to compute, on %s", len(todo), ex.describe())
            computed = ex.map(fold_work(fold_fn, state, cfg, neural), todo)
            stack.callback(computed.close)  # before the executor closes: its pool or tasks end first
        for seed in seeds:
            with _FoldStage(len(folds[seed]), seed=seed, protocol=protocol.name, **stage_data) as stage:
                for i, res in saved[seed]:
                    results[seed][i] = res
                    stage.fold_done(folds[seed][i].name, seed, resumed=True)
                for i, res in early[seed]:
                    results[seed][i] = res
                    stage.fold_done(folds[seed][i].name, seed, resumed=False)
                while len(results[seed]) < len(folds[seed]):
                    pos, (i, res) = next(computed)
                    if todo[pos].seed != seed:  # a later seed's fold: reported in its own stage
                        early[todo[pos].seed].append((i, res))
                        continue
                    results[seed][i] = res
                    stage.fold_done(folds[seed][i].name, seed, resumed=False)
    n_resumed = sum(len(v) for v in saved.values())
    return [results[seed][i] for seed in seeds for i in range(len(folds[seed]))], n_resumed


def run_experiment(config: ExperimentConfig, out_dir: str | Path | None = None, progress: bool = True,
                   resume: str = "auto", table: Any = None, executor: Any = None, address: str | None = None) -> Any:
    """Run ``config`` end to end with its task (``config.task``) and, when ``out_dir`` is given,
    write its report folder. Returns the task's result (``config``, ``predictions``,
    ``metrics``, ``out_dir``, ``skipped``, ``excluded``, and what the task adds).

    ``table`` (a SampleTable) replaces loading ``config.data`` (tests, notebooks, an app that
    built its own dataset).

    With an ``out_dir``, each finished fold's predictions are saved as it completes (and a
    neural model checkpoints every epoch), so a run killed part-way resumes from its last
    completed fold and epoch when started again with the same config, data, mekit code and
    folder. ``resume``: ``auto`` (reuse matching folds, start over otherwise), ``strict`` (stop
    when saved folds do not match) or ``off`` (always start over).

    Progress (stages ``load``, ``preprocess``, the task's inputs stage, ``folds``; a ``fold``
    event per finished fold, ``epoch`` events from neural training) is reported through
    :mod:`mekit.events` and shown by whoever listens; ``progress`` is kept for callers that pass
    it and changes nothing. With an ``out_dir``, the run's log and those events are also written
    to ``out_dir/run.log``.

    ``executor`` (``local``, ``processes``, ``ray``) and ``address`` (``HOST:PORT`` of a Ray
    cluster) say where the folds run, replacing ``protocol.executor`` and ``protocol.address``;
    an executor object (:func:`mekit.executors.get_executor`) is used as it is and left open for
    its owner (a sweep runs many experiments on one cluster connection). Neither changes a result
    nor the resume stamp.
    """
    out = Path(out_dir) if out_dir is not None else None
    check_resume_mode(resume)
    config, executor = _where(config, executor, address)
    task = get_task(config.task)
    from mekit.evaluation.validate import validate_config

    validate_config(config)  # every free-form section against what it configures, before any work
    if executor is None:
        from mekit.executors import check_executor

        check_executor(config.protocol.executor, config.protocol.address)
    settings = task.check(config)
    from mekit.evaluation.report import run_log

    # run_log creates the report folder first: an unusable one fails now, not after the training
    with run_log(out):
        return _run(task, config, settings, out, resume, table, executor)


def _where(config: ExperimentConfig, executor: Any, address: str | None) -> tuple[ExperimentConfig, Any]:
    """The config saying where its folds run (an executor's name replaces ``protocol.executor``,
    ``address`` replaces ``protocol.address``, so the resolved config records them; neither is in
    the resume stamp) and the executor object to use (None: the one the config names)."""
    import dataclasses

    from mekit.executors import EXECUTORS

    where: dict[str, Any] = {}
    if isinstance(executor, str):
        where["executor"], executor = executor, None
    elif getattr(executor, "name", None) in EXECUTORS:
        where.update(executor=executor.name, address=getattr(executor, "address", None))
    if address is not None:
        where["address"] = address
    if where:
        config = dataclasses.replace(config, protocol=dataclasses.replace(config.protocol, **where))
    return config, executor


def _run(task: Any, cfg: ExperimentConfig, settings: Any, out_dir: Path | None, resume: str, table: Any,
         executor: Any = None) -> Any:
    from mekit.evaluation.protocols import get_protocol
    from mekit.evaluation.report import excluded_counts, excluded_rows

    t0 = time.perf_counter()
    log.info("%s", task.describe(cfg))
    if table is None:
        table = load_with_progress(cfg)
    if len(table) == 0:
        raise DataError(f"dataset {cfg.data.loader} at {cfg.data.root} has no {getattr(task, 'samples', 'samples')}")
    t_load = time.perf_counter() - t0
    prepared: Prepared = task.prepare(cfg, settings, table)
    t_inputs = time.perf_counter() - t0 - t_load
    usable = prepared.usable
    excluded = excluded_rows(table, dict(prepared.skipped), set(usable.sample_ids), prepared.skipped_stage)
    if len(usable) == 0:
        raise task.nothing_usable(cfg, prepared, excluded)
    discarded = prepare_resume(out_dir, cfg, table, resume, prepared.stamp_extra)
    protocol = get_protocol(cfg.protocol.name, **cfg.protocol.params)
    results, n_resumed = run_folds(protocol, usable, cfg, out_dir, task.fold, prepared.state, task.read_fold,
                                   neural=task.neural(cfg), executor=executor, task=task.name)
    result = task.summarise(cfg, settings, prepared, protocol, results)
    m = result.metrics
    # a resumed run's times cover this call only: folds_resumed says how many folds came from disk
    m["timing_s"] = {"load": round(t_load, 3), task.inputs_stage: round(t_inputs, 3),
                     "total": round(time.perf_counter() - t0, 3), "folds_resumed": n_resumed}
    m["skipped"] = dict(prepared.skipped)
    m["excluded"] = excluded_counts(excluded)
    if table.report.corpora:
        m["corpora"] = dict(table.report.corpora)
    if table.report.corpora_absent:  # a composite loaded with allow_partial: say so everywhere
        m["partial_composite"] = dict(table.report.corpora_absent)
    m["resume"] = {"mode": resume, "folds_resumed": n_resumed, "folds_total": len(results), "discarded": discarded}
    result.skipped, result.excluded = dict(prepared.skipped), excluded
    if out_dir is not None:
        result.out_dir = task.write_report(result, out_dir, table)
    log.info("%s run %s done: %s over %d folds (%d resumed) in %.1f s", task.name, cfg.name, task.headline(result),
             len(results), n_resumed, m["timing_s"]["total"])
    return result


def summary_line(result: Any) -> str:
    """The headline figures of a run (rich markup), as its task words them, for the command line."""
    return get_task(result.config.task).summary_line(result)
