"""The experiment runner end to end on the tiny synthetic corpus: the report folder, predictions
keyed by sample id, seeds, per-corpus breakdowns, kill-and-resume and determinism."""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml

import mekit.data
import mekit.experiment as runner
import mekit.tasks.classification as classification
from mekit.config import load_config
from mekit.data.schema import SampleTable
from mekit.evaluation.metrics import classification_metrics, subject_bootstrap
from mekit.evaluation.report import markdown

# A 12-clip corpus at 64 px; Farneback flow and no face mesh keep preprocessing to a second or two.
BASE = {"name": "tiny", "data.options": {"n_subjects": 4, "clips_per_subject": 3, "size": 64},
        "preprocess": {"detector": "none", "size": 64, "landmarks": False, "flow": "farneback", "workers": 1},
        "features.name": "hoof", "features.params": {"grid": 3, "bins": 8},
        "model.name": "logreg", "model.params": {"grid": {"C": [0.1, 10.0]}, "inner_folds": 2},
        "protocol.name": "loso"}


def cfg(**over):
    return load_config(None, {**BASE, **over})


def table():
    return mekit.data.load_dataset("synthetic", None, None, **BASE["data.options"])


def read_pred(path):
    return pd.read_csv(path, dtype={"sample_id": str, "true": str, "pred": str})


class FitCounter:
    """Counts the models the runner creates; optionally raises at the n-th (a run killed part-way)."""

    def __init__(self, monkeypatch, kill_at: int | None = None):
        self.n = 0
        orig = classification.make_model

        def make(c, seed, checkpoint_dir=None):
            self.n += 1
            if kill_at is not None and self.n == kill_at:
                raise KeyboardInterrupt("killed part-way")
            return orig(c, seed, checkpoint_dir)

        monkeypatch.setattr(classification, "make_model", make)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "base"
    res = runner.run_experiment(cfg(), out, progress=False)
    return res, out


# -- the report folder --------------------------------------------------------------------------

def test_report_folder_has_every_file(base_run):
    _, out = base_run
    for f in ("predictions.csv", "metrics.json", "config.resolved.yaml", "environment.json",
              "confusion_matrix.png", "per_class.png", "report.md"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    for png in ("confusion_matrix.png", "per_class.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_predictions_are_keyed_by_sample_id_with_every_class_probability(base_run):
    res, out = base_run
    pred = read_pred(out / "predictions.csv")
    t = table()
    classes = res.metrics["classes"]
    assert classes == sorted(set(t.df["label"]))
    assert {"sample_id", "fold", "true", "pred", "subject", "dataset", "seed"} <= set(pred.columns)
    assert [c for c in pred.columns if c.startswith("p_")] == [f"p_{c}" for c in classes]
    assert pred["sample_id"].is_unique and set(pred["sample_id"]) == set(t.sample_ids)
    truth = dict(zip(t.df["sample_id"], t.df["label"]))
    assert (pred["true"] == pred["sample_id"].map(truth)).all()
    # LOSO: a sample's fold is its own subject's
    assert (pred["fold"] == "loso:" + pred["subject"]).all()
    P = pred[[f"p_{c}" for c in classes]].to_numpy()
    np.testing.assert_allclose(P.sum(1), 1.0, atol=1e-6)  # float32 features give float32 probabilities
    assert (pred["pred"] == np.array(classes)[P.argmax(1)]).all()
    pd.testing.assert_frame_equal(pred, res.predictions.astype({"seed": int}), check_dtype=False)


def test_features_in_another_order_give_the_same_predictions_per_sample(monkeypatch):
    """The runner matches features, labels and predictions by sample id, never by position."""
    c = cfg(**{"model.params": {"grid": {}}, "output.plots": False})
    straight = runner.run_experiment(c, None, progress=False).predictions.set_index("sample_id")
    orig = classification.build_inputs

    def reversed_inputs(t, cf, progress=True):
        fs = orig(t, cf, progress)
        fs.sample_ids, fs.X = fs.sample_ids[::-1], fs.X[::-1].copy()
        return fs

    monkeypatch.setattr(classification, "build_inputs", reversed_inputs)
    shuffled = runner.run_experiment(c, None, progress=False).predictions.set_index("sample_id")
    cols = [k for k in straight.columns if k.startswith("p_")]
    np.testing.assert_array_equal(shuffled.loc[straight.index, cols].to_numpy(), straight[cols].to_numpy())


def test_metrics_json_agrees_with_the_predictions(base_run):
    res, out = base_run
    m = json.loads((out / "metrics.json").read_text())
    pred = read_pred(out / "predictions.csv")
    for k in ("accuracy", "uf1", "uar", "weighted_f1", "per_class", "protocol", "n_samples", "leaky",
              "model_selection", "selection_per_fold", "per_subject", "bootstrap_ci95", "timing_s"):
        assert k in m, k
    assert m["protocol"] == "loso" and m["leaky"] is False and m["n_samples"] == 12 and m["n_folds"] == 4
    assert m["accuracy"] == pytest.approx((pred["true"] == pred["pred"]).mean())
    from sklearn.metrics import f1_score, recall_score

    present = sorted(set(pred["true"]))
    assert m["uf1"] == pytest.approx(f1_score(pred["true"], pred["pred"], labels=present, average="macro"))
    assert m["uar"] == pytest.approx(recall_score(pred["true"], pred["pred"], labels=present, average="macro"))
    counts = pred["true"].value_counts()
    assert {c: v["support"] for c, v in m["per_class"].items()} == {c: int(counts.get(c, 0)) for c in m["classes"]}
    assert sum(v["n"] for v in m["per_subject"].values()) == 12
    lo, hi = m["bootstrap_ci95"]["uf1"]
    assert 0 <= lo <= hi <= 1
    assert m["uf1"] == pytest.approx(res.metrics["uf1"])


def test_config_resolved_reloads_to_the_same_config(base_run):
    res, out = base_run
    assert load_config(out / "config.resolved.yaml") == res.config == cfg()
    assert yaml.safe_load((out / "config.resolved.yaml").read_text())["model"]["params"]["grid"] == {"C": [0.1, 10.0]}


def test_environment_json_records_versions_seed_and_commit(base_run):
    _, out = base_run
    env = json.loads((out / "environment.json").read_text())
    assert env["seed"] == 0
    assert env["packages"]["numpy"] == np.__version__ and env["packages"]["pandas"] == pd.__version__
    import sklearn

    assert env["packages"]["scikit-learn"] == sklearn.__version__
    assert env["python"].count(".") == 2
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=runner.__file__.rsplit("/", 1)[0]).stdout.strip()
    if head:
        assert env["git_commit"] == head and re.fullmatch(r"[0-9a-f]{40}", head)
        assert isinstance(env["git_dirty"], bool)
    else:  # installed outside a git checkout
        assert env["git_commit"] is None


def test_report_md_states_protocol_metrics_and_selection(base_run):
    res, out = base_run
    md = (out / "report.md").read_text()
    m = res.metrics
    assert md.startswith("# tiny")
    assert "Protocol: **loso**, 4 folds, 12 samples, 4 subjects" in md
    assert f"| UF1 (macro F1) | {m['uf1']:.3f}" in md and f"| UAR | {m['uar']:.3f}" in md
    assert "**Model selection.**" in md and "Per fold: inner 2-fold subject-grouped CV" in md
    assert "![confusion](confusion_matrix.png)" in md
    for c in m["classes"]:
        assert f"| {c} |" in md


# -- resume, stale folds, determinism -----------------------------------------------------------

@pytest.mark.slow
def test_killed_run_resumes_from_its_last_completed_fold(base_run, tmp_path, monkeypatch):
    res, base = base_run
    out = tmp_path / "killed"
    FitCounter(monkeypatch, kill_at=3)
    with pytest.raises(KeyboardInterrupt):
        runner.run_experiment(cfg(), out, progress=False)
    assert len(list((out / "folds" / "seed0").glob("*/predictions.csv"))) == 2
    assert not (out / "metrics.json").exists()
    counter = FitCounter(monkeypatch)
    resumed = runner.run_experiment(cfg(), out, progress=False)
    assert counter.n == 2  # only the two folds that had not finished
    assert resumed.metrics["timing_s"]["folds_resumed"] == 2 and res.metrics["timing_s"]["folds_resumed"] == 0
    assert (out / "predictions.csv").read_bytes() == (base / "predictions.csv").read_bytes()
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (out, base))
    for k in ("timing_s", "figures", "resume"):
        a.pop(k, None), b.pop(k, None)
    assert a == b
    assert resumed.metrics["uf1"] == res.metrics["uf1"]
    # a finished run started again reuses every fold
    again = FitCounter(monkeypatch)
    runner.run_experiment(cfg(), out, progress=False)
    assert again.n == 0


@pytest.mark.slow
def test_a_changed_config_does_not_reuse_stale_folds(tmp_path, monkeypatch):
    out = tmp_path / "run"
    first = runner.run_experiment(cfg(**{"output.plots": False}), out, progress=False)
    counter = FitCounter(monkeypatch)
    changed = cfg(**{"output.plots": False, "model.params": {"grid": {"C": [0.001]}, "inner_folds": 2}})
    second = runner.run_experiment(changed, out, progress=False)
    assert counter.n == 4  # every fold refitted
    assert {s["chosen"]["C"] for s in second.metrics["selection_per_fold"]} == {0.001}
    assert {s["chosen"]["C"] for s in first.metrics["selection_per_fold"]} <= {0.1, 10.0}
    assert load_config(out / "config.resolved.yaml") == changed
    saved = {json.loads(p.read_text())["chosen"]["C"] for p in (out / "folds" / "seed0").glob("*/selection.json")}
    assert saved == {0.001}


def test_same_seed_gives_the_same_predictions_file(base_run, tmp_path):
    _, base = base_run
    runner.run_experiment(cfg(**{"output.plots": False}), tmp_path / "again", progress=False)
    assert (tmp_path / "again" / "predictions.csv").read_bytes() == (base / "predictions.csv").read_bytes()
    # output.plots=false: no figures, and the report links none
    assert not list((tmp_path / "again").glob("*.png"))
    assert "![" not in (tmp_path / "again" / "report.md").read_text()


# -- seeds and corpora --------------------------------------------------------------------------

def test_repeated_seeds_report_mean_and_std(tmp_path):
    # StratifiedGroupKFold only breaks ties with the seed; on this corpus seeds 0 and 4 give
    # different 2+2 partitions of the four subjects (checked below)
    c = cfg(**{"protocol.name": "group_kfold", "protocol.params": {"k": 2}, "protocol.seeds": [0, 4],
               "model.params": {"grid": {}}, "output.plots": False})
    res = runner.run_experiment(c, tmp_path / "seeds", progress=False)
    pred = res.predictions
    assert sorted(pred["seed"].unique()) == [0, 4] and len(pred) == 24
    folds = {s: frozenset(frozenset(d["subject"]) for _, d in pred[pred.seed == s].groupby("fold")) for s in (0, 4)}
    assert folds[0] != folds[4]  # the seeds really split differently
    per_seed = {s: classification_metrics(d["true"], d["pred"], res.metrics["classes"]) for s, d in pred.groupby("seed")}
    for k in ("uf1", "uar", "accuracy", "weighted_f1"):
        vals = [per_seed[s][k] for s in (0, 4)]
        assert res.metrics["over_seeds"][k]["mean"] == pytest.approx(np.mean(vals))
        assert res.metrics["over_seeds"][k]["std"] == pytest.approx(np.std(vals, ddof=1))
    assert res.metrics["uf1"] == pytest.approx(per_seed[0]["uf1"])  # headline: the first seed
    md = (tmp_path / "seeds" / "report.md").read_text()
    s = res.metrics["over_seeds"]["uf1"]
    assert f"seeds {s['mean']:.3f} ± {s['std']:.3f}" in md


def test_per_dataset_breakdown_when_two_corpora_are_present(monkeypatch):
    orig = mekit.data.load_dataset

    def two_corpora(*a, **k):
        df = orig(*a, **k).df.copy()
        second = df["subject"].isin(sorted(df["subject"].unique())[2:])
        df.loc[second, "dataset"] = "other"
        df.loc[second, "subject"] = df.loc[second, "subject"].str.replace("synthetic/", "other/")
        return SampleTable(df)

    monkeypatch.setattr(mekit.data, "load_dataset", two_corpora)
    c = cfg(**{"model.params": {"grid": {}}, "output.plots": False})
    res = runner.run_experiment(c, None, progress=False)
    per = res.metrics["per_dataset"]
    assert set(per) == {"synthetic", "other"} and per["synthetic"]["n"] == per["other"]["n"] == 6
    for d, v in per.items():
        sub = res.predictions[res.predictions["dataset"] == d]
        ref = classification_metrics(sub["true"], sub["pred"], res.metrics["classes"])
        assert v["uf1"] == pytest.approx(ref["uf1"]) and v["accuracy"] == pytest.approx(ref["accuracy"])
    md = markdown(res.metrics, c)
    assert "| corpus | n | UF1 | UAR | accuracy |" in md and "| other | 6 |" in md


def test_subject_bootstrap_equals_resampling_the_predictions_table():
    """The confusion-matrix bootstrap gives exactly what resampling subjects' rows and
    rescoring with scikit-learn gives."""
    rng = np.random.default_rng(1)
    classes = ["a", "b", "c", "d"]  # "d" is never true: it must not enter the class means
    pred = pd.DataFrame({"subject": rng.choice([f"s{i}" for i in range(7)], 60),
                         "true": rng.choice(classes[:3], 60, p=[0.6, 0.3, 0.1]), "pred": rng.choice(classes, 60)})
    n_boot, seed = 60, 3
    rng2 = np.random.default_rng(seed)
    groups = {s: d for s, d in pred.groupby("subject")}
    names = list(groups)
    ref = {"accuracy": [], "uf1": [], "uar": []}
    for _ in range(n_boot):
        d = pd.concat([groups[names[i]] for i in rng2.integers(0, len(names), len(names))])
        m = classification_metrics(d["true"], d["pred"], classes)
        for k in ref:
            ref[k].append(m[k])
    got = subject_bootstrap(pred, classes, n_boot=n_boot, seed=seed)
    for k, v in ref.items():
        np.testing.assert_allclose(got[k], [np.quantile(v, 0.025), np.quantile(v, 0.975)], rtol=0, atol=1e-12)


def test_finished_folds_drop_their_training_checkpoints(tmp_path):
    """A neural fold checkpoints every epoch (to resume a killed fold); once its predictions are
    written the checkpoint is deleted, so a LOSO run does not keep one model state per fold."""
    c = cfg(**{"features.name": "flow", "features.params": {"size": 16}, "model.name": "ststnet",
               "model.params": {"epochs": 1, "selection": "fixed", "batch_size": 8},
               "protocol.name": "group_kfold", "protocol.params": {"k": 2}, "output.plots": False})
    out = tmp_path / "neural"
    runner.run_experiment(c, out, progress=False)
    folds = sorted((out / "folds" / "seed0").iterdir())
    assert len([f for f in folds if f.is_dir()]) == 2
    assert all((f / "predictions.csv").exists() for f in folds if f.is_dir())
    assert not list(out.rglob("train_state.pt"))


@pytest.mark.parametrize("model", ["logreg", "ststnet"])
@pytest.mark.slow
def test_parallel_folds_give_the_serial_results(base_run, tmp_path, model):
    """protocol.workers trains folds in forked processes; every fold seeds its own model, so the
    predictions file is byte-identical to a serial run's, and a finished run resumes from it."""
    over = {} if model == "logreg" else {
        "features.name": "flow", "features.params": {"size": 16}, "model.name": "ststnet",
        "model.params": {"epochs": 2, "selection": "fixed", "batch_size": 8, "threads": 1}}
    if model == "logreg":
        serial = base_run[1]
    else:
        serial = tmp_path / "serial"
        runner.run_experiment(cfg(**over), serial, progress=False)
    par = tmp_path / "parallel"
    res = runner.run_experiment(cfg(**over, **{"protocol.workers": 2}), par, progress=False)
    assert (par / "predictions.csv").read_bytes() == (serial / "predictions.csv").read_bytes()
    assert [s["fold"] for s in res.metrics["selection_per_fold"]] == sorted(
        s["fold"] for s in res.metrics["selection_per_fold"])
    assert len(list((par / "folds" / "seed0").glob("*/predictions.csv"))) == 4
