"""Progress as events, seen from a consumer like a GUI: a run started in a worker thread with a
listener receives its stages, every fold (also from forked fold workers) and the training
epochs; run.log is written beside the report; neural runs get learning curves; and the library
draws nothing itself (no rich outside the command line)."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from pathlib import Path

import pytest

import mekit
import mekit.experiment as runner
import mekit.tasks.classification as classification
from mekit import events
from mekit.config import load_config

DATA = {"n_subjects": 4, "clips_per_subject": 3, "size": 64}
PRE = {"detector": "none", "size": 64, "landmarks": False, "flow": "farneback", "workers": 1}
CLASSICAL = {"name": "tiny", "data.options": DATA, "preprocess": PRE, "features.name": "hoof",
             "features.params": {"grid": 3, "bins": 8}, "model.name": "logreg",
             "model.params": {"grid": {"C": [0.1, 10.0]}, "inner_folds": 2}, "protocol.name": "loso"}
NEURAL = {"name": "tiny_ststnet", "data.options": DATA, "preprocess": PRE, "features.params": {"size": 28},
          "model.name": "ststnet", "protocol.name": "group_kfold", "protocol.params": {"k": 2},
          "model.params": {"epochs": 2, "batch_size": 8, "selection": "fixed", "threads": 1}}


def in_thread(fn, *args, **kwargs):
    """Run ``fn`` in a worker thread with its own listener (as a GUI would); its events and result."""
    got: list[events.Event] = []
    box: dict = {}

    def work():
        try:
            with events.listen(got.append):
                box["result"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread
            box["error"] = e

    t = threading.Thread(target=work)
    t.start()
    t.join(600)
    if "error" in box:
        raise box["error"]
    return box["result"], got


def mekit_file_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger("mekit").handlers if isinstance(h, logging.FileHandler)]


def test_the_library_never_imports_rich_outside_the_command_line():
    src = Path(mekit.__file__).parent
    found = [f"{p.relative_to(src)}:{i}" for p in src.rglob("*.py") if "cli" not in p.relative_to(src).parts
             for i, line in enumerate(p.read_text().splitlines(), 1)
             if re.match(r"\s*(from|import)\s+rich\b", line)]
    assert not found, f"progress is an event, not a bar: rich imported at {found}"


@pytest.fixture(scope="module")
def neural_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("neural") / "run"
    seen: list[events.Event] = []
    with events.listen(seen.append):  # the test's own thread: it must see none of the worker's events
        res, got = in_thread(runner.run_experiment, load_config(None, NEURAL), out, progress=False)
    assert seen == []
    return res, got, out


def test_a_neural_run_in_a_thread_reports_stages_folds_and_epochs(neural_run):
    res, got, out = neural_run
    kinds = [e.kind for e in got]
    started = [e["stage"] for e in got if e.kind == "stage_start"]
    ended = [e["stage"] for e in got if e.kind == "stage_end"]
    assert {"load", "features", "folds"} <= set(started) and sorted(started) == sorted(ended)
    assert all(e["ok"] for e in got if e.kind == "stage_end")
    folds = [e for e in got if e.kind == "fold"]
    assert [(e["done"], e["total"], e["resumed"]) for e in folds] == [(1, 2, False), (2, 2, False)]
    assert {e["fold"] for e in folds} == set(res.predictions["fold"])
    assert kinds.index("fold") > kinds.index("stage_start")
    epochs = [e for e in got if e.kind == "epoch"]
    # from the trainer: two epochs in each of the two folds, counted from 1, each with its loss
    assert [(e["epoch"], e["epochs"]) for e in epochs] == [(1, 2), (2, 2)] * 2
    assert all(e["loss"] > 0 for e in epochs)
    assert kinds.index("epoch") < kinds.index("fold")  # the first fold trains before it is reported


def test_a_neural_fold_keeps_its_history_and_the_report_draws_learning_curves(neural_run):
    res, _, out = neural_run
    saved = [json.loads(p.read_text()) for p in sorted((out / "folds" / "seed0").glob("*/selection.json"))]
    assert len(saved) == 2
    for sel in saved:
        assert [h["epoch"] for h in sel["history"]] == [0, 1] and all(h["train_loss"] > 0 for h in sel["history"])
    assert len(res.histories) == 2
    assert all("history" not in s for s in res.metrics["selection_per_fold"])  # metrics.json stays small
    png = out / "learning_curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![learning curves](learning_curves.png)" in (out / "report.md").read_text()
    assert (out / "learning_curves.csv").read_text().count("\n") == 1 + 4  # header, 2 folds x 2 epochs


def test_run_log_holds_the_log_and_the_events_and_is_detached_after_the_run(neural_run):
    out = neural_run[2]
    log = (out / "run.log").read_text()
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO", log)
    assert "run tiny_ststnet: model ststnet, inputs flow" in log and "fold 2/2" in log and "folds done 2/2" in log
    # one line per epoch of each fold, naming the fold it belongs to
    for n in (1, 2):
        assert len(re.findall(rf"epoch {n}/2 fold \S+ loss", log)) == 2
    assert mekit_file_handlers() == []


def test_a_classical_run_with_fold_workers_reports_every_fold(tmp_path):
    cfg = load_config(None, {**CLASSICAL, "protocol.workers": 2})
    res, got = in_thread(runner.run_experiment, cfg, tmp_path / "run", progress=False)
    folds = [e for e in got if e.kind == "fold"]
    assert sorted(e["done"] for e in folds) == [1, 2, 3, 4] and not any(e["resumed"] for e in folds)
    assert {e["fold"] for e in folds} == set(res.predictions["fold"])
    # run again in the same folder: every fold is read back, and still reported
    _, again = in_thread(runner.run_experiment, cfg, tmp_path / "run", progress=False)
    assert [e["resumed"] for e in again if e.kind == "fold"] == [True] * 4
    assert (tmp_path / "run" / "run.log").read_text().count("read back from an earlier run") == 4


def test_a_neural_run_with_fold_workers_reports_the_epochs_of_every_fold(neural_run, tmp_path):
    cfg = load_config(None, {**NEURAL, "protocol.workers": 2})
    res, got = in_thread(runner.run_experiment, cfg, tmp_path / "run", progress=False)
    folds = [e for e in got if e.kind == "fold"]
    names = set(res.predictions["fold"])
    assert {e["fold"] for e in folds} == names and len(folds) == 2
    epochs = [e for e in got if e.kind == "epoch"]
    # the workers' epochs reach the listener in the run's thread, each tagged with its fold and seed
    assert {e["fold"] for e in epochs} == names and all(e["seed"] == 0 and e["loss"] > 0 for e in epochs)
    for name in names:
        mine = [e for e in epochs if e["fold"] == name]
        assert [(e["epoch"], e["epochs"]) for e in mine] == [(1, 2), (2, 2)]
        # a fold's epochs arrive before the parent reports the fold
        done = next(i for i, e in enumerate(got) if e.kind == "fold" and e["fold"] == name)
        assert all(got.index(e) < done for e in mine)
    # the same events as the serial run, apart from their order, and the same predictions
    serial = [e for e in neural_run[1] if e.kind == "epoch"]
    assert all(e["fold"] in names and e["seed"] == 0 for e in serial)
    key = lambda e: (e["fold"], e["epoch"])  # noqa: E731
    assert sorted(map(key, epochs)) == sorted(map(key, serial))
    assert res.predictions.equals(neural_run[0].predictions)


def test_fold_workers_send_nothing_back_without_a_listener(monkeypatch, tmp_path):
    """Workers get an event queue only when someone listens; every worker receives its inputs as
    the arguments of its initializer (each writes what it got to a file, from its own process)."""
    real_init = runner._init_fold_worker

    def init(parent, fold_fn, state, queue):
        (tmp_path / f"worker-{os.getpid()}").write_text(f"{queue is None} {sorted(state)}")
        real_init(parent, fold_fn, state, queue)

    monkeypatch.setattr(runner, "_init_fold_worker", init)
    runner.run_experiment(load_config(None, {**CLASSICAL, "protocol.workers": 2}), None, progress=False)
    seen = [p.read_text() for p in tmp_path.glob("worker-*")]
    assert len(seen) == 2 and all(t.startswith("True ") and "'feats'" in t for t in seen)


def test_run_log_is_detached_and_says_why_when_a_run_fails(tmp_path, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("no model today")

    monkeypatch.setattr(classification, "make_model", broken)
    level = logging.getLogger("mekit").level
    with pytest.raises(RuntimeError):
        runner.run_experiment(load_config(None, CLASSICAL), tmp_path / "run", progress=False)
    assert mekit_file_handlers() == [] and logging.getLogger("mekit").level == level
    log = (tmp_path / "run" / "run.log").read_text()
    assert "ERROR" in log and "run stopped: RuntimeError: no model today" in log
