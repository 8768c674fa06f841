"""The task contract: the fold loop of mekit.experiment runs any registered task, and a new task is one module."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mekit.config import load_config
from mekit.data import load_dataset
from mekit.errors import ConfigError
from mekit.tasks import TASKS, FoldJob, Prepared, get_task, save_fold_table

CONTRACT = ("name", "inputs_stage", "fold", "read_fold", "check", "neural", "describe", "prepare", "nothing_usable",
            "summarise", "write_report", "headline", "summary_line")


@pytest.mark.parametrize("name", TASKS.names())
def test_every_registered_task_answers_the_contract(name):
    task = get_task(name)
    assert task.name == name
    missing = [a for a in CONTRACT if not hasattr(task, a)]
    assert not missing, f"task {name!r} lacks {missing}"
    assert TASKS.meta(name)["help"]


def test_an_unknown_task_is_one_clear_error():
    with pytest.raises(ConfigError, match="unknown task 'spotting'.*classification, intensity"):
        get_task("spotting")
    from mekit.evaluation.validate import validate_config

    with pytest.raises(ConfigError, match="^task: unknown task 'spotting'"):
        validate_config(load_config(None, {"task": "spotting"}))
    with pytest.raises(ConfigError, match="config.task: 'Spot ting'"):
        load_config(None, {"task": "Spot ting"})


# -- a third task, written as a plug-in would be: it counts on nothing but the contract -------------
def _majority_fold(job: FoldJob, st: dict) -> tuple[int, pd.DataFrame]:
    """Predict every held-out sample as the majority class of the training ids."""
    labels = st["labels"]
    train = pd.Series([labels[s] for s in job.fold.train_ids])
    guess = train.value_counts().sort_index().idxmax()
    df = pd.DataFrame({"sample_id": list(job.fold.test_ids), "fold": job.fold.name, "seed": job.seed,
                       "true": [labels[s] for s in job.fold.test_ids], "pred": guess,
                       "train_ids_seen": len(job.fold.train_ids)})
    if job.fold_dir is not None:
        job.fold_dir.mkdir(parents=True, exist_ok=True)
        save_fold_table(df, job.fold_dir / "predictions.csv")
    return job.index, df


class _Majority:
    name = "majority"
    inputs_stage = "inputs"
    fold = staticmethod(_majority_fold)
    read_fold = staticmethod(lambda fdir: pd.read_csv(fdir / "predictions.csv", dtype=str))

    def check(self, cfg):
        return "settings"

    def neural(self, cfg):
        return False

    def describe(self, cfg):
        return "majority baseline"

    def prepare(self, cfg, settings, table):
        assert settings == "settings"
        usable = table.subset(table.df["label"].notna())
        return Prepared(usable, {"labels": dict(zip(usable.df["sample_id"], usable.df["label"]))})

    def nothing_usable(self, cfg, prepared, excluded):
        return ValueError("nothing")

    def summarise(self, cfg, settings, prepared, protocol, results):
        from types import SimpleNamespace

        pred = pd.concat(results, ignore_index=True)
        acc = float((pred["true"].astype(str) == pred["pred"].astype(str)).mean())
        return SimpleNamespace(config=cfg, predictions=pred, metrics={"accuracy": acc}, out_dir=None,
                               skipped={}, excluded=[])

    def write_report(self, result, out_dir, table):
        result.predictions.to_csv(out_dir / "predictions.csv", index=False)
        (out_dir / "metrics.json").write_text(json.dumps(result.metrics))
        return out_dir

    def headline(self, result):
        return f"accuracy {result.metrics['accuracy']:.3f}"

    def summary_line(self, result):
        return self.headline(result)


@pytest.fixture
def majority_task(monkeypatch):
    monkeypatch.setitem(TASKS._items, "majority", _Majority())
    monkeypatch.setitem(TASKS._meta, "majority", {"help": "majority-class baseline"})
    yield


def test_a_new_task_runs_through_the_same_loop_with_resume_and_workers(majority_task, tmp_path, monkeypatch):
    """The loop gives a plug-in task its folds (no held-out id among the training ids), resume,
    forked workers, the timings and excluded records, without knowing anything about it."""
    from mekit.experiment import run_experiment

    cfg = load_config(None, {"task": "majority", "data.options": {"n_subjects": 4, "clips_per_subject": 6}})
    table = load_dataset("synthetic", None, None, n_subjects=4, clips_per_subject=6)
    res = run_experiment(cfg, tmp_path / "run", table=table)
    p = res.predictions
    assert sorted(p["sample_id"]) == sorted(table.sample_ids)  # every sample held out exactly once
    assert (p["train_ids_seen"].astype(int) == len(table) - p.groupby("fold")["sample_id"].transform("size")).all()
    assert res.metrics["resume"]["folds_resumed"] == 0 and res.metrics["timing_s"]["inputs"] >= 0
    assert (tmp_path / "run" / "run.log").exists() and (tmp_path / "run" / "metrics.json").exists()
    again = run_experiment(cfg, tmp_path / "run", table=table)
    assert again.metrics["resume"]["folds_resumed"] == again.metrics["resume"]["folds_total"] == 4
    par_cfg = load_config(None, {"task": "majority", "data.options": {"n_subjects": 4, "clips_per_subject": 6},
                                 "protocol.workers": 2})
    par = run_experiment(par_cfg, None, table=table)
    cols = ["sample_id", "pred"]
    assert par.predictions[cols].astype(str).equals(p[cols].astype(str))
    np.testing.assert_allclose(par.metrics["accuracy"], res.metrics["accuracy"])


@pytest.mark.slow
def test_spawned_fold_workers_give_the_serial_predictions(monkeypatch):
    """Folds in spawned workers (how CUDA folds share a GPU) receive the fold function and the run's
    inputs pickled, as arguments, and give the predictions of a serial run, events included."""
    import mekit.experiment as experiment
    from mekit import events

    over = {"data.options": {"n_subjects": 4, "clips_per_subject": 6}, "model.params": {"C": 1.0}}
    serial = experiment.run_experiment(load_config(None, over))
    monkeypatch.setattr(experiment, "fold_workers", lambda cfg, neural: (2, "spawn"))
    got: list = []
    with events.listen(got.append):
        spawned = experiment.run_experiment(load_config(None, {**over, "protocol.workers": 2}))
    pd.testing.assert_frame_equal(spawned.predictions, serial.predictions)
    assert sorted(e["fold"] for e in got if e.kind == "fold") == sorted(serial.predictions["fold"].unique())
