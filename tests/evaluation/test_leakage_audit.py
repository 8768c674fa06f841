"""The leakage audit: the classic leaks, built on purpose, and proof that mekit refuses or avoids each.

The central check is an invariance: the model mekit fits for the fold that holds out subject
S must be bit-for-bit the same whether S's features and labels are the real ones or garbage.
Anything learned from data that saw S (a scaler, PCA or SMOTE fitted before the split, early
stopping on S, S's samples on both sides) breaks that invariance. Each check is paired with a
control that commits the leak deliberately and is caught by the same detector, so the
detector is shown to have power.

The runner is driven on a small in-memory corpus (the loader and the feature stage are
replaced by functions returning fixed arrays) so every fitted object can be inspected and the
whole audit takes a few seconds.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import mekit.data
import mekit.evaluation.protocols as protocols
import mekit.experiment as runner
import mekit.tasks.classification as classification
from mekit.config import load_config
from mekit.data.schema import SampleTable
from mekit.errors import DataError
from mekit.evaluation.compare import compare_runs
from mekit.features.base import FeatureSet

SUBJECTS = [f"s{i}" for i in range(6)]
LABELS_PER_SUBJECT = ["a", "a", "a", "b", "b", "c"]  # imbalanced, so SMOTE has work to do
HELD = "s0"  # the subject whose data is tampered with
C_GRID = [0.01, 1.0, 100.0]


def _corpus(kind: str = "vector", seed: int = 0) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """A table and per-sample features: class signal + a strong per-subject offset (which a
    scaler or PCA fitted on everything would absorb differently) + noise."""
    rng = np.random.default_rng(seed)
    rows, feats = [], {}
    for s in SUBJECTS:
        offset = rng.normal(0, 2.0, 12)
        for i, lab in enumerate(LABELS_PER_SUBJECT):
            sid = f"fake/{s}/c{i}"
            rows.append({"sample_id": sid, "dataset": "fake", "subject": f"fake/{s}", "clip": f"c{i}",
                         "media": "image", "path": "/nonexistent", "emotion": lab, "label": lab, "split": ""})
            k = "abc".index(lab)
            if kind == "vector":
                x = offset + rng.normal(0, 0.5, 12)
                x[k] += 2.0
            else:  # a 3 x 28 x 28 flow-like stack with a class-dependent blob
                x = rng.normal(0, 0.3, (3, 28, 28)) + offset[0] * 0.2
                x[0, 4 + 8 * k: 10 + 8 * k, 4:24] += 1.5
            feats[sid] = x.astype(np.float32)
    return pd.DataFrame(rows), feats


def _tamper(df: pd.DataFrame, feats: dict[str, np.ndarray], subject: str = HELD):
    """Garbage for one subject: scaled and shifted features, rotated labels."""
    df = df.copy()
    feats = dict(feats)
    mask = df["subject"] == f"fake/{subject}"
    rot = {"a": "b", "b": "c", "c": "a"}
    df.loc[mask, "label"] = df.loc[mask, "label"].map(rot)
    df.loc[mask, "emotion"] = df.loc[mask, "label"]
    for sid in df.loc[mask, "sample_id"]:
        feats[sid] = (feats[sid] * 40.0 + 250.0).astype(np.float32)
    return df, feats


def _install(monkeypatch, df: pd.DataFrame, feats: dict[str, np.ndarray]) -> list:
    """Route the runner to the in-memory corpus; return the list that collects every model it
    creates (each remembers what its ``fit`` received)."""
    monkeypatch.setattr(mekit.data, "load_dataset", lambda *a, **k: SampleTable(df.copy()))
    monkeypatch.setattr(classification, "build_inputs",
                        lambda table, cfg, progress=True: FeatureSet(table.sample_ids,
                                                                     np.stack([feats[s] for s in table.sample_ids])))
    created: list = []
    orig = classification.make_model

    def recording(cfg, seed, checkpoint_dir=None):
        m = orig(cfg, seed, checkpoint_dir)
        fit = m.fit

        def fit_and_record(X, y, groups):
            m.seen_X_, m.seen_y_, m.seen_groups_ = np.array(X), np.array(y), np.array(groups)
            return fit(X, y, groups)

        m.fit = fit_and_record
        created.append(m)
        return m

    monkeypatch.setattr(classification, "make_model", recording)
    return created


def _by_held_out(models: list) -> dict[str, object]:
    everyone = {f"fake/{s}" for s in SUBJECTS}
    out = {}
    for m in models:
        missing = everyone - set(m.seen_groups_)
        assert len(missing) == 1, "LOSO fits on all subjects but one"
        out[missing.pop()] = m
    return out


def _cfg(**over):
    base = {"name": "audit", "features.name": "hoof", "protocol.name": "loso", "output.plots": False}
    return load_config(None, {**base, **over})


def _classical_fingerprint(m) -> dict[str, np.ndarray]:
    steps = m.model_.named_steps
    fp = {"scale_mean": steps["scale"].mean_, "scale_std": steps["scale"].scale_,
          "coef": steps["clf"].coef_, "intercept": steps["clf"].intercept_,
          "C": np.array([m.selection_["chosen"]["C"]])}
    if "pca" in steps:
        fp["pca"] = steps["pca"].components_
    return fp


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# -- (a) scaler, PCA and SMOTE are fitted inside the fold, on its training subjects only -----------

CLASSICAL = {"model.name": "logreg", "imbalance.sampler": "smote",
             "model.params": {"pca": 4, "grid": {"C": C_GRID}, "inner_folds": 2}}


@pytest.fixture(scope="module")
def classical_runs():
    """The same LOSO experiment on the real corpus and on one with HELD's data replaced."""
    mp = pytest.MonkeyPatch()
    try:
        df, feats = _corpus()
        runs = {}
        for name, (d, f) in {"clean": (df, feats), "tampered": _tamper(df, feats)}.items():
            created = _install(mp, d, f)
            res = runner.run_experiment(_cfg(**CLASSICAL), None, progress=False)
            runs[name] = (res, _by_held_out(created), f)
        return runs
    finally:
        mp.undo()


@pytest.mark.slow
def test_held_out_data_never_reaches_the_fitted_pipeline(classical_runs):
    clean, tampered = classical_runs["clean"][1], classical_runs["tampered"][1]
    held = f"fake/{HELD}"
    # the fold that holds HELD out: scaler, PCA, classifier and chosen C are identical
    assert _same(_classical_fingerprint(clean[held]), _classical_fingerprint(tampered[held]))
    assert clean[held].selection_ == tampered[held].selection_
    assert clean[held].selection_["chosen"]["C"] in C_GRID
    # ... and fit never received a held-out row
    assert held not in set(clean[held].seen_groups_)
    assert len(clean[held].seen_X_) == 5 * len(LABELS_PER_SUBJECT)
    # power: the folds that TRAIN on HELD do change (the tampering is visible to anything that sees it)
    for other in (f"fake/{s}" for s in SUBJECTS[1:]):
        assert not np.allclose(clean[other].model_.named_steps["scale"].mean_,
                               tampered[other].model_.named_steps["scale"].mean_)


@pytest.mark.slow
def test_held_out_predictions_come_from_the_unchanged_model(classical_runs):
    res_c, models_c, _ = classical_runs["clean"]
    res_t, _, feats_t = classical_runs["tampered"]
    held = f"fake/{HELD}"
    pt = res_t.predictions.set_index("sample_id")
    ids = [s for s in pt.index if pt.loc[s, "subject"] == held]
    classes = res_t.metrics["classes"]
    expected = models_c[held].predict_proba(np.stack([feats_t[s] for s in ids]))
    got = pt.loc[ids, [f"p_{c}" for c in models_c[held].classes_]].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    # the other subjects' predictions are from models trained with HELD and so do change
    pc = res_c.predictions.set_index("sample_id")
    others = [s for s in pc.index if pc.loc[s, "subject"] != held]
    assert not np.allclose(pc.loc[others, [f"p_{c}" for c in classes]].to_numpy(),
                           pt.loc[others, [f"p_{c}" for c in classes]].to_numpy())


def _leaky_fold_fit(X, y, train, leak: str, seed: int = 0):
    """The classic mistakes, committed on purpose: a step fitted on ALL samples, then the
    classifier trained on the training part. Returns the fitted classifier's coefficients."""
    from imblearn.over_sampling import SMOTE
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    Xtr, ytr = X[train], y[train]
    if leak == "scaler":
        sc = StandardScaler().fit(X)  # sees the held-out rows
        Xtr = sc.transform(Xtr)
    elif leak == "pca":
        Xtr = PCA(4, random_state=seed).fit(X).transform(Xtr)
    elif leak == "smote":
        Xa, ya = SMOTE(random_state=seed, k_neighbors=2).fit_resample(X, y)
        synthetic = np.arange(len(X), len(Xa))  # new rows, some interpolated from held-out ones
        Xtr, ytr = np.vstack([Xtr, Xa[synthetic]]), np.concatenate([ytr, ya[synthetic]])
    return LogisticRegression(max_iter=2000).fit(Xtr, ytr).coef_


@pytest.mark.parametrize("leak", ["scaler", "pca", "smote"])
def test_the_detector_catches_a_step_fitted_before_the_split(leak):
    """Control: the invariance used above does flag each classic leak."""
    df, feats = _corpus()
    df_t, feats_t = _tamper(df, feats)
    train = (df["subject"] != f"fake/{HELD}").to_numpy()
    X, X_t = (np.stack([f[s] for s in df["sample_id"]]) for f in (feats, feats_t))
    coef = _leaky_fold_fit(X, df["label"].to_numpy(), train, leak)
    coef_t = _leaky_fold_fit(X_t, df_t["label"].to_numpy(), train, leak)
    assert not np.allclose(coef, coef_t), f"a {leak} fitted before the split should depend on held-out data"


def test_feature_extraction_is_per_sample_so_no_statistic_crosses_the_split():
    """A scaler can hide in the feature stage: features of the training samples must be the same
    whether or not the held-out subject is in the table they are extracted from."""
    from mekit.data import load_dataset

    table = load_dataset("synthetic", None, None, n_subjects=3, clips_per_subject=2, size=64)
    pre = {"detector": "none", "size": 64, "landmarks": False, "flow": "farneback", "workers": 1}
    held = table.subjects[0]
    rest = table.subset(table.df["subject"] != held)
    for model in ("logreg", "ststnet"):  # hoof features; the u/v/strain stack of flow CNNs
        c = load_config(None, {"preprocess": pre, "model.name": model})
        full = classification.build_inputs(table, c, progress=False)
        part = classification.build_inputs(rest, c, progress=False)
        assert len(part.sample_ids) == len(rest) and part.X.std() > 0
        np.testing.assert_array_equal(full.take(part.sample_ids), part.X)


# -- (b) neural: held-out labels never reach training; early stopping sees training subjects only --

NEURAL = {"model.name": "ststnet",
          "model.params": {"epochs": 3, "batch_size": 8, "lr": 3e-3, "selection": "inner_val",
                           "val_fraction": 0.25, "patience": 10, "augment": {"affine": 0.0}, "threads": 1}}


@pytest.fixture(scope="module")
def neural_runs():
    import mekit.engine.trainer as trainer

    mp = pytest.MonkeyPatch()
    try:
        splits: list[tuple[np.ndarray, np.ndarray]] = []
        orig_split = trainer._subject_val_split

        def recording_split(groups, frac, seed):
            mask = orig_split(groups, frac, seed)
            splits.append((np.array(groups), mask.copy()))
            return mask

        mp.setattr(trainer, "_subject_val_split", recording_split)
        df, feats = _corpus("flow")
        runs = {}
        for name, (d, f) in {"clean": (df, feats), "labels_changed": (_tamper(df, feats)[0], feats),
                             "tampered": _tamper(df, feats)}.items():
            splits.clear()
            created = _install(mp, d, f)
            res = runner.run_experiment(_cfg(**NEURAL), None, progress=False)
            runs[name] = (res, _by_held_out(created), f, list(splits))
        return runs
    finally:
        mp.undo()


@pytest.mark.slow
def test_changing_held_out_labels_leaves_every_prediction_of_that_fold_identical(neural_runs):
    held = f"fake/{HELD}"
    pc = neural_runs["clean"][0].predictions.set_index("sample_id")
    pl = neural_runs["labels_changed"][0].predictions.set_index("sample_id")
    ids = pc.index[pc["subject"] == held]
    cols = [c for c in pc.columns if c.startswith("p_")]
    assert (pc.loc[ids, "true"] != pl.loc[ids, "true"]).all()  # the labels did change ...
    np.testing.assert_array_equal(pc.loc[ids, cols].to_numpy(), pl.loc[ids, cols].to_numpy())  # ... nothing else
    mc, ml = neural_runs["clean"][1][held], neural_runs["labels_changed"][1][held]
    assert mc.history_ == ml.history_ and mc.selection_ == ml.selection_


@pytest.mark.slow
def test_held_out_features_and_labels_never_reach_the_network(neural_runs):
    import torch

    held = f"fake/{HELD}"
    mc, mt = neural_runs["clean"][1][held], neural_runs["tampered"][1][held]
    sc, st = mc.model_.state_dict(), mt.model_.state_dict()
    assert sc.keys() == st.keys() and all(torch.equal(sc[k], st[k]) for k in sc)
    assert mc.history_ == mt.history_ and mc.selection_ == mt.selection_
    # the held-out predictions are the unchanged network applied to the tampered input
    res_t, _, feats_t, _ = neural_runs["tampered"]
    pt = res_t.predictions.set_index("sample_id")
    ids = list(pt.index[pt["subject"] == held])
    expected = mc.predict_proba(np.stack([feats_t[s] for s in ids]))
    np.testing.assert_allclose(pt.loc[ids, [f"p_{c}" for c in mc.classes_]].to_numpy(), expected, atol=1e-6)
    # power: a fold that trains on HELD ends with different weights
    other = neural_runs["clean"][1]["fake/s1"].model_.state_dict()
    other_t = neural_runs["tampered"][1]["fake/s1"].model_.state_dict()
    assert not all(torch.equal(other[k], other_t[k]) for k in other)


@pytest.mark.slow
def test_early_stopping_validates_on_a_subset_of_the_training_subjects(neural_runs):
    res, models, _, splits = neural_runs["clean"]
    assert len(splits) == len(SUBJECTS)  # one inner split per fold
    everyone = {f"fake/{s}" for s in SUBJECTS}
    for groups, mask in splits:
        train_subjects = set(groups)
        held = everyone - train_subjects
        val = set(groups[mask])
        assert len(held) == 1 and val and val < train_subjects and not (val & held)
        assert set(groups[~mask]) == train_subjects - val  # a subject is wholly in or out of validation
    for held, m in models.items():
        assert "inner validation" in m.selection_["method"]
        assert 0 <= m.selection_["chosen"]["epoch"] < 3
        assert all("val_uf1" in h for h in m.history_)
    per_fold = res.metrics["selection_per_fold"]
    assert len(per_fold) == len(SUBJECTS)
    assert all("training subjects" in s["method"] for s in per_fold)


# -- (c) a subject on both sides is refused; the leaky protocol is labelled everywhere ---------------

# -- (a') nested selection: the recipe chosen for a fold never depends on its held-out subject ---

NESTED = {"protocol.name": "nested", "protocol.params": {"outer": "loso", "inner_k": 3},
          "model.params": {"grid": {"C": C_GRID}, "inner_folds": 2},
          "search": [{"label": "lr"}, {"label": "lr_pca", "model.params": {"pca": 3, "grid": {"C": C_GRID},
                                                                           "inner_folds": 2}},
                     {"label": "svm", "model.name": "svm"}]}


@pytest.mark.slow
def test_nested_choice_of_a_fold_is_blind_to_its_held_out_subject(monkeypatch):
    """The inner scores, the chosen recipe and the refitted winner of the fold holding out HELD
    are identical whether HELD's data is real or garbage; the folds that train on HELD see the
    change (the detector has power)."""
    df, feats = _corpus()
    runs = {}
    for name, (d, f) in {"clean": (df, feats), "tampered": _tamper(df, feats)}.items():
        created = _install(monkeypatch, d, f)
        res = runner.run_experiment(_cfg(**NESTED), None, progress=False)
        final = [m for m in created if len(m.seen_y_) == 5 * len(LABELS_PER_SUBJECT)]  # the refits
        runs[name] = ({s["fold"]: s for s in res.metrics["selection_per_fold"]}, _by_held_out(final))
    held = f"loso:fake/{HELD}"
    (sel_c, fit_c), (sel_t, fit_t) = runs["clean"], runs["tampered"]
    assert sel_c[held] == sel_t[held]
    m_c, m_t = fit_c[f"fake/{HELD}"], fit_t[f"fake/{HELD}"]
    probe = np.stack(list(feats.values()))  # the same rows through both refitted winners
    np.testing.assert_array_equal(m_c.predict_proba(probe), m_t.predict_proba(probe))
    assert f"fake/{HELD}" not in set(m_c.seen_groups_)
    others = [f for f in sel_c if f != held]
    assert any(sel_c[f]["inner_uf1"] != sel_t[f]["inner_uf1"] for f in others)


def test_a_splitter_that_shares_a_subject_is_refused(monkeypatch, tmp_path):
    df, feats = _corpus()
    _install(monkeypatch, df, feats)

    class SharesSubjects(protocols.Protocol):
        def split(self, table, seed=0):
            ids = table.sample_ids  # the last sample's subject is also in training
            return [protocols.Fold("bad", tuple(ids[:-1]), (ids[-1],))]

    monkeypatch.setattr(protocols, "get_protocol", lambda name, **p: SharesSubjects("shares"))
    with pytest.raises(DataError, match="both sides"):
        runner.run_experiment(_cfg(**{"model.params": {"grid": {}}}), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_holdout_with_a_subject_in_both_splits_is_refused(monkeypatch):
    df, feats = _corpus()
    df["split"] = np.where(df["subject"].isin(["fake/s0", "fake/s1"]), "test", "train")
    df.loc[df["sample_id"] == "fake/s0/c0", "split"] = "train"  # s0 now on both sides
    _install(monkeypatch, df, feats)
    with pytest.raises(DataError, match="fake/s0"):
        runner.run_experiment(_cfg(**{"protocol.name": "holdout", "model.params": {"grid": {}}}), None,
                              progress=False)


@pytest.fixture(scope="module")
def leaky_and_honest(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("leak")
    try:
        df, feats = _corpus()
        _install(mp, df, feats)
        common = {"model.params": {"grid": {"C": [0.1, 1.0]}, "inner_folds": 2}}
        runner.run_experiment(_cfg(**common, **{"protocol.name": "random_split",
                                                "protocol.params": {"test_size": 0.5}}), root / "leaky", False)
        runner.run_experiment(_cfg(**common, **{"protocol.name": "group_kfold", "protocol.params": {"k": 3}}),
                              root / "honest", False)
        return root
    finally:
        mp.undo()


def test_random_split_is_labelled_leaky_in_metrics_report_and_compare(leaky_and_honest):
    root = leaky_and_honest
    m = json.loads((root / "leaky" / "metrics.json").read_text())
    assert m["leaky"] is True and m["protocol"] == "random_split" and "LEAKY" in m["protocol_description"]
    assert "SUBJECTS were seen" in m["model_selection"] and "never seen" not in m["model_selection"]
    assert "bootstrap_ci95" not in m  # no subject-level CI is claimed for a sample-level split
    report = (root / "leaky" / "report.md").read_text()
    assert "**LEAKY PROTOCOL**" in report
    honest = json.loads((root / "honest" / "metrics.json").read_text())
    assert honest["leaky"] is False and "LEAKY" not in (root / "honest" / "report.md").read_text()
    table = compare_runs([root / "honest", root / "leaky"])
    assert table.loc["leaky", "protocol"] == "random_split (LEAKY)" and bool(table.loc["leaky", "leaky"])
    assert table.loc["honest", "protocol"] == "group_kfold" and not bool(table.loc["honest", "leaky"])


# -- (d) every report states how model selection was done -----------------------------------------

def test_report_states_the_model_selection_of_every_fold(leaky_and_honest):
    root = leaky_and_honest / "honest"
    m = json.loads((root / "metrics.json").read_text())
    assert "training subjects" in m["model_selection"] and "never seen" in m["model_selection"]
    folds = m["selection_per_fold"]
    assert [f["fold"] for f in folds] == ["fold0", "fold1", "fold2"]
    for f in folds:
        assert f["method"].startswith("inner 2-fold subject-grouped CV on the training subjects")
        assert f["chosen"]["C"] in (0.1, 1.0)
    chosen = m["selection_summary"]["chosen"]
    assert sum(chosen.values()) == 3 and all(k.startswith("C=") for k in chosen)
    report = (root / "report.md").read_text()
    assert "**Model selection.**" in report and "never seen by any fitted step" in report
    assert "Per fold: inner 2-fold subject-grouped CV" in report and "(3 folds)" in report
