"""The command line's view of progress events: rich bars in a terminal, throttled plain lines
elsewhere, and `mekit run` showing a run's stages and writing its run.log."""

from __future__ import annotations

import io
import re
import threading

from rich.console import Console
from typer.testing import CliRunner

from mekit import events
from mekit.cli.main import app
from mekit.cli.render import PlainRenderer, TerminalRenderer, format_eta, show_progress

LINE = re.compile(r"^\d\d:\d\d:\d\d \S")


def ev(kind: str, t: float, **data) -> events.Event:
    return events.Event(kind, data, t)


def test_eta_is_short_and_readable():
    assert [format_eta(x) for x in (None, 0, 12.4, 185, 7800)] == ["", "0s", "12s", "3m05s", "2h10m"]


def test_plain_mode_prints_start_and_end_lines_of_a_fast_stage():
    buf = io.StringIO()
    with show_progress(Console(file=buf, width=200), terminal=False) as r:
        assert isinstance(r, PlainRenderer)
        with events.Stage("preprocess", total=50) as st:
            for _ in range(50):
                st.advance()
    lines = buf.getvalue().splitlines()
    assert all(LINE.match(x) for x in lines), lines
    # 50 items within a few milliseconds: no progress line between the start and the end
    assert [x[9:] for x in lines[:1]] == ["preprocess 0/50"]
    assert len(lines) == 2 and re.search(r"preprocess done 50/50 in \d+\.\ds$", lines[1])


def test_plain_mode_is_the_default_off_a_terminal():
    buf = io.StringIO()
    with show_progress(Console(file=buf)) as r:
        assert isinstance(r, PlainRenderer)


def test_plain_lines_are_throttled_per_stage_and_per_fold():
    out: list[str] = []
    r = PlainRenderer(out.append, interval=5.0)
    r(ev("stage_start", 0.0, stage="folds", total=30, seed=0))
    for i in range(1, 30):  # one fold a second, with an ETA
        r(ev("fold", float(i), stage="folds", fold=f"sub{i:02d}", seed=0, done=i, total=30, resumed=False))
        r(ev("progress", float(i), stage="folds", done=i, total=30, eta_s=30.0 - i, seed=0))
    r(ev("stage_end", 30.0, stage="folds", done=30, total=30, seconds=30.0, ok=True, seed=0))
    body = [x[9:] for x in out]
    assert body[0] == "folds seed 0 0/30" and body[-1] == "folds seed 0 done 30/30 in 30.0s"
    progress = body[1:-1]
    assert len(progress) == 5  # at 5, 10, 15, 20, 25 s: one line per 5 s, not one per fold
    assert progress[0] == "folds seed 0 5/30 eta 25s (last: sub05)"

    out.clear()
    for fold in ("a", "b"):  # ten epochs a second apart in each of two folds
        for e in range(10):
            r(ev("epoch", 100.0 + e + (20 if fold == "b" else 0), stage="train", epoch=e + 1, epochs=10,
                 loss=1.0 / (e + 1), val=0.5, lr=1e-3, metric="val_uf1"))
        r(ev("fold", 111.0 + (20 if fold == "b" else 0), stage="folds", fold=fold, seed=0, done=1, total=2,
             resumed=False))
    assert len(out) == 4, out  # epochs 1 and 6 of each fold
    assert out[0][9:] == "train epoch 1/10 loss 1 val_uf1 0.5 lr 0.001"
    assert out[1][9:].startswith("train epoch 6/10 loss 0.1667")


def test_plain_lines_mark_a_failed_stage():
    out: list[str] = []
    r = PlainRenderer(out.append)
    r(ev("stage_end", 0.0, stage="load", done=0, total=None, seconds=1.25, ok=False))
    assert out[0][9:] == "load stopped in 1.2s"


def test_terminal_mode_draws_bars_without_a_refresh_thread():
    buf = io.StringIO()
    con = Console(file=buf, force_terminal=True, width=120)
    threads = threading.active_count()
    with show_progress(con, terminal=True) as r:
        assert isinstance(r, TerminalRenderer)
        with events.Stage("folds", total=2, seed=0):
            events.emit("progress", stage="folds", done=1, total=2, eta_s=3.0, seed=0)
            events.emit("epoch", stage="train", epoch=1, epochs=2, loss=0.6931, val=None, lr=0.001)
            assert set(r._tasks) == {"folds", "train"}
            task = r.progress.tasks[list(r.progress.task_ids).index(r._tasks["train"])]
            assert (task.completed, task.total) == (1, 2)
            r._refresh(force=True)
            # redrawn on events only: a fork taken now copies no thread holding the console's lock
            assert threading.active_count() == threads
            events.emit("fold", stage="folds", fold="a", seed=0, done=1, total=2, resumed=False)
            assert set(r._tasks) == {"folds"}  # the finished fold's train line is gone
        assert r._tasks == {}
    text = buf.getvalue()
    assert "folds seed 0" in text and "loss 0.6931 lr 0.001" in text and "eta 3s" in text


def test_mekit_run_shows_plain_stage_lines_and_writes_run_log(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(app, [
        "run", "name=tiny", "data.options={n_subjects: 4, clips_per_subject: 3, size: 64}",
        "preprocess={detector: none, size: 64, landmarks: false, flow: farneback, workers: 1}",
        "features.name=hoof", "features.params={grid: 3, bins: 8}", "model.name=logreg",
        "model.params={grid: {C: [0.1, 10.0]}, inner_folds: 2}", "protocol.name=loso", "-o", str(out)],
        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    lines = [x for x in res.output.splitlines() if LINE.match(x)]
    assert any(x.endswith("folds seed 0 0/4") for x in lines), res.output
    assert any(re.search(r"folds seed 0 done 4/4 in", x) for x in lines), res.output
    log = (out / "run.log").read_text()
    assert log.count(" done\n") >= 4 and "fold 4/4" in log and "run tiny done: UF1" in log
