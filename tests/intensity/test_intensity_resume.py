"""Intensity runs go through the fold loop classification uses: saved folds resume a killed run,
forked fold workers give the results of a serial run, and a changed data fingerprint discards
saved folds."""

from __future__ import annotations

import json

import pytest

import mekit.tasks.intensity as irunner
from mekit.data import load_dataset
from mekit.experiment import run_experiment as run_intensity

from conftest import TINY_INTENSITY, TINY_INTENSITY_CORPUS as CORPUS  # noqa: E402

BASE = {**TINY_INTENSITY, "output": {"plots": False}}


def _cfg(**over):
    from conftest import nested_config

    return nested_config(BASE, **over)


class FitCounter:
    """Counts the fold models the intensity runner fits (not the position-prior reference);
    optionally raises at the n-th (a run killed part-way)."""

    def __init__(self, monkeypatch, kill_at: int | None = None):
        self.n = 0
        orig = irunner._fit

        def fit(cfg, s, model_name, *args, **kwargs):
            if model_name == cfg.model.name:
                self.n += 1
                if kill_at is not None and self.n == kill_at:
                    raise KeyboardInterrupt("killed part-way")
            return orig(cfg, s, model_name, *args, **kwargs)

        monkeypatch.setattr(irunner, "_fit", fit)


@pytest.fixture(scope="module")
def table():
    return load_dataset("synthetic", None, None, **CORPUS)


@pytest.fixture(scope="module")
def serial_run(table, tmp_path_factory):
    out = tmp_path_factory.mktemp("intensity_resume") / "serial"
    return run_intensity(_cfg(), out, progress=False, table=table), out


def _without_run_details(path):
    m = json.loads(path.read_text())
    for k in ("timing_s", "figures", "resume"):
        m.pop(k, None)
    return m


def test_a_killed_run_resumes_to_the_same_predictions(table, serial_run, tmp_path, monkeypatch):
    _, base = serial_run
    out = tmp_path / "run"
    FitCounter(monkeypatch, kill_at=3)
    with pytest.raises(KeyboardInterrupt):
        run_intensity(_cfg(), out, progress=False, table=table)
    saved = sorted((out / "folds" / "seed0").glob("*/predictions.csv"))
    assert len(saved) == 2 and all((p.parent / "selection.json").is_file() for p in saved)
    assert not (out / "metrics.json").exists()
    counter = FitCounter(monkeypatch)
    resumed = run_intensity(_cfg(), out, progress=False, table=table)
    assert counter.n == 2  # only the folds that had not finished
    assert resumed.metrics["resume"] == {"mode": "auto", "folds_resumed": 2, "folds_total": 4, "discarded": None}
    assert resumed.metrics["timing_s"]["folds_resumed"] == 2
    assert (out / "predictions.csv").read_bytes() == (base / "predictions.csv").read_bytes()
    assert (out / "clips.csv").read_bytes() == (base / "clips.csv").read_bytes()
    assert _without_run_details(out / "metrics.json") == _without_run_details(base / "metrics.json")
    report = (out / "report.md").read_text()
    assert "**Resumed.** 2 of 4 folds were read back from an earlier run" in report
    assert "**Resumed.** No fold was read back" in (base / "report.md").read_text()
    # a finished run started again reuses every fold; resume off refits them all
    again = FitCounter(monkeypatch)
    run_intensity(_cfg(), out, progress=False, table=table)
    assert again.n == 0
    off = FitCounter(monkeypatch)
    res = run_intensity(_cfg(), out, progress=False, table=table, resume="off")
    assert off.n == 4 and res.metrics["resume"]["discarded"] == "resume is off"


def test_fold_workers_give_the_serial_predictions(table, serial_run, tmp_path):
    _, base = serial_run
    out = tmp_path / "workers"
    res = run_intensity(_cfg(**{"protocol.workers": 2}), out, progress=False, table=table)
    assert (out / "predictions.csv").read_bytes() == (base / "predictions.csv").read_bytes()
    assert _without_run_details(out / "metrics.json") == _without_run_details(base / "metrics.json")
    assert res.metrics["resume"]["folds_resumed"] == 0
    assert len(list((out / "folds" / "seed0").glob("*/predictions.csv"))) == 4


def _altered(table):
    """The table with one clip's apex moved: the data fingerprint changes, the frames do not."""
    df = table.df.copy()
    i = df.index[df["sample_id"] == table.sample_ids[4]][0]
    df.at[i, "apex"] = int(df.at[i, "onset"]) + 1
    return type(table)(df, table.report, table.name)


def test_a_changed_data_fingerprint_discards_saved_folds(table, tmp_path, monkeypatch):
    out = tmp_path / "run"
    cfg = _cfg(**{"protocol.name": "group_kfold", "protocol.params": {"k": 2}})
    run_intensity(cfg, out, progress=False, table=table)
    counter = FitCounter(monkeypatch)
    res = run_intensity(cfg, out, progress=False, table=_altered(table))
    assert counter.n == 2  # every fold refitted
    assert res.metrics["resume"]["folds_resumed"] == 0
    assert "data" in res.metrics["resume"]["discarded"]
    assert "Saved folds were discarded: the data changed" in (out / "report.md").read_text()
    with pytest.raises(Exception, match="resume strict"):
        run_intensity(cfg, out, progress=False, table=table, resume="strict")
