"""protocol: nested (a search over recipes chosen by inner CV on each outer fold's training
subjects) and model: ensemble (late fusion fitted in-fold), on the tiny synthetic corpus."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mekit.config import load_config
from mekit.errors import ConfigError
from mekit.evaluation.validate import validate_config
from mekit.experiment import run_experiment
from mekit.models.ensemble import StackCombiner, WeightCombiner, pooled_uf1

BASE = {"name": "tiny", "data.options": {"n_subjects": 4, "clips_per_subject": 3, "size": 64},
        "preprocess": {"detector": "none", "size": 64, "landmarks": False, "flow": "farneback", "workers": 1},
        "features.name": "hoof", "features.params": {"grid": 3, "bins": 8},
        "model.name": "logreg", "model.params": {"grid": {"C": [0.1, 10.0]}, "inner_folds": 2},
        "protocol.name": "loso", "output.plots": False}
NESTED = {"protocol.name": "nested", "protocol.params": {"outer": "loso", "inner_k": 3}}


def cfg(**over):
    return load_config(None, {**BASE, **over})


def _pred(res) -> pd.DataFrame:
    return res.predictions.sort_values(["seed", "sample_id"]).reset_index(drop=True)


def test_nested_with_one_candidate_is_the_plain_run_of_that_candidate(tmp_path):
    plain = run_experiment(cfg(), tmp_path / "plain", progress=False)
    nested = run_experiment(cfg(**NESTED, search=[{"label": "only"}]), tmp_path / "nested", progress=False)
    pd.testing.assert_frame_equal(_pred(plain), _pred(nested))
    sel = nested.metrics["selection_per_fold"]
    assert {s["chosen"]["recipe"] for s in sel} == {"only"}
    assert all(set(s["inner_uf1"]) == {"only"} for s in sel)


@pytest.mark.slow
def test_nested_reports_the_recipe_each_outer_fold_chose(tmp_path):
    search = [{"label": "lr"}, {"label": "svm", "model.name": "svm"},
              {"label": "lbp", "features": {"name": "lbp_top", "params": {"grid": 2}}}]
    res = run_experiment(cfg(**NESTED, search=search), tmp_path / "run", progress=False)
    sel = res.metrics["selection_per_fold"]
    assert len(sel) == 4 and all(s["chosen"]["recipe"] in {"lr", "svm", "lbp"} for s in sel)
    for s in sel:  # the chosen recipe has the best inner score (ties: the earlier candidate)
        scores = s["inner_uf1"]
        best = max(scores.values())
        assert s["chosen"]["recipe"] == next(k for k, v in scores.items() if v == best)
    report = (tmp_path / "run" / "report.md").read_text()
    assert "Recipe chosen in each outer fold" in report and "r3 = `lbp`" in report
    assert "nested: outer leave-one-subject-out" in res.metrics["protocol_description"] or \
        res.metrics["protocol_description"].startswith("nested: outer loso")
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["selection_per_fold"][0]["inner_uf1"].keys() == {"lr", "svm", "lbp"}
    # the recipe whose inputs differ was built once and every recipe saw the same samples
    assert res.metrics["n_samples"] == 12


def test_nested_selection_fits_only_training_subjects(monkeypatch):
    """Every fit and every inner score of an outer fold uses only that fold's training subjects;
    its held-out samples are predicted once, by the refitted winner."""
    import mekit.tasks.classification as classification
    import mekit.tasks.recipes as recipes

    calls: dict[tuple[str, ...], list[tuple[list[str], list[str]]]] = {}
    current: list[tuple[str, ...]] = []
    orig_leaf, orig_nested = classification._fit_leaf, recipes.nested_fit_predict

    def leaf_spy(cfg_, feats, tr, te, st, seed, fdir):
        calls[current[-1]].append((list(tr), list(te)))
        return orig_leaf(cfg_, feats, tr, te, st, seed, fdir)

    def nested_spy(plan, fit_leaf, train, test, data, inner_k):
        current.append(tuple(test))
        calls[tuple(test)] = []
        return orig_nested(plan, fit_leaf, train, test, data, inner_k)

    monkeypatch.setattr(classification, "_fit_leaf", leaf_spy)
    monkeypatch.setattr(recipes, "nested_fit_predict", nested_spy)
    search = [{"label": "lr"}, {"label": "svm", "model.name": "svm"}]
    res = run_experiment(cfg(**NESTED, search=search), None, progress=False)
    subj = dict(zip(res.predictions["sample_id"], res.predictions["subject"]))
    assert len(calls) == 4
    for test, fold_calls in calls.items():
        held = {subj[s] for s in test}
        assert len(held) == 1
        # 2 candidates x 3 inner folds, then the refit of the winner
        assert len(fold_calls) == 2 * 3 + 1
        for tr, te in fold_calls[:-1]:
            assert not ({subj[s] for s in tr} | {subj[s] for s in te}) & held
            assert not {subj[s] for s in tr} & {subj[s] for s in te}
        tr, te = fold_calls[-1]
        assert tuple(te) == test and not {subj[s] for s in tr} & held
        assert len(tr) == 12 - len(test)


def test_ensemble_mean_is_the_average_of_its_members(tmp_path):
    members = [{"label": "lr", "model.name": "logreg"}, {"label": "svm", "model.name": "svm"}]
    ens = run_experiment(cfg(model={"name": "ensemble", "params": {"members": members, "combine": "mean"}}),
                         None, progress=False)
    a = run_experiment(cfg(**{"model.params": {}}), None, progress=False)
    b = run_experiment(cfg(**{"model.name": "svm", "model.params": {}}), None, progress=False)
    cols = [c for c in ens.predictions.columns if c.startswith("p_")]
    np.testing.assert_allclose(_pred(ens)[cols].to_numpy(),
                               (_pred(a)[cols].to_numpy() + _pred(b)[cols].to_numpy()) / 2, atol=1e-12)
    sel = ens.metrics["selection_per_fold"][0]
    assert set(sel["members"]) == {"lr", "svm"} and sel["chosen"]["combine"] == "mean"


@pytest.mark.slow
@pytest.mark.parametrize("combine", ["weights", "stacker"])
def test_ensemble_learns_its_combiner_in_fold(combine):
    members = [{"label": "lr", "model.name": "logreg"},
               {"label": "lbp", "model.name": "logreg", "features": {"name": "lbp_top", "params": {"grid": 2}}}]
    res = run_experiment(cfg(model={"name": "ensemble", "params": {"members": members, "combine": combine,
                                                                   "inner_k": 2}}), None, progress=False)
    assert len(res.predictions) == 12
    p = res.predictions[[c for c in res.predictions.columns if c.startswith("p_")]].to_numpy()
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-9)
    assert "inner 2-fold subject-grouped CV on the training subjects only" in \
        res.metrics["selection_per_fold"][0]["method"]


def test_weight_combiner_finds_the_useful_member():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    good = np.eye(3)[y] * 0.6 + 0.4 / 3
    noise = rng.dirichlet(np.ones(3), 90)
    w = WeightCombiner().fit([noise, good], y, 3)
    assert w.weights_[1] > 0.5
    assert pooled_uf1(y, w.combine([noise, good]).argmax(1), 3) == 1.0
    s = StackCombiner().fit([noise, good], y, 3)
    assert (s.combine([noise, good]).argmax(1) == y).mean() > 0.95


@pytest.mark.parametrize("over, match", [
    (NESTED, "nested chooses among the recipes listed under search"),
    ({"search": [{"label": "a"}]}, "search: read only by protocol nested"),
    ({**NESTED, "search": [{"data.root": "/x"}]}, r"search\[0\]\.data\.root: a recipe may not change 'data'"),
    ({**NESTED, "search": [{"model.name": "nope"}]}, r"search\[0\]\.model\.name: unknown model 'nope'"),
    ({**NESTED, "search": [{"label": "a"}, {"label": "a", "model.name": "svm"}]}, "labels .* repeat"),
    ({**NESTED, "search": [{"model.params.C": "x"}]}, r"search\[0\]"),
    ({"protocol.name": "nested", "protocol.params": {"outer": "random_split"}, "search": [{}]},
     "protocol.params.outer: 'random_split'"),
    ({"model": {"name": "ensemble", "params": {"members": [{"model.name": "logreg"}]}}},
     "members: .* at least two"),
    ({"model": {"name": "ensemble", "params": {"members": [{"model.name": "logreg"}, {"label": "x"}]}}},
     r"members\[1\]: .* names the member's model"),
    ({"model": {"name": "ensemble", "params": {"members": [{"model.name": "logreg"}, {"model.name": "svm"}],
                                               "combine": "vote"}}}, "combine: 'vote'"),
    ({"model": {"name": "ensemble", "params": {"members": [{"model.name": "logreg"}, {"model.name": "svm"}],
                                               "combine": "weights", "combine_params": {"stp": 0.2}}}},
     r"combine_params\.stp"),
])
def test_search_and_ensemble_errors_name_the_key(over, match):
    with pytest.raises(ConfigError, match=match):
        validate_config(cfg(**over))


def test_a_network_candidate_reads_its_own_input():
    from mekit.tasks.recipes import candidates

    c = cfg(**NESTED, search=[{"label": "lr"}, {"label": "net", "model": {"name": "ststnet",
                                                                         "params": {"epochs": 1}}}])
    validate_config(c)
    lr, net = candidates(c)
    assert lr.cfg.features.name == "hoof" and lr.cfg.model.params["grid"] == {"C": [0.1, 10.0]}
    assert net.cfg.model.name == "ststnet" and net.cfg.model.params == {"epochs": 1}
    assert net.cfg.features.name == "hoof"  # the default: the network's own input (no extractor)


def test_train_chooses_the_recipe_by_inner_cv_over_every_subject_and_bundles_it(tmp_path):
    from mekit.engine.bundle import load_bundle
    from mekit.engine.predict import predict, train_bundle

    search = [{"label": "lr"}, {"label": "svm", "model.name": "svm", "model.params": {"C": 1.0}}]
    path = train_bundle(cfg(**NESTED, search=search), tmp_path / "chosen.mekit", progress=False)
    b = load_bundle(path)
    rec = b.meta["training"]["recipe_selection"]
    assert set(rec["inner_uf1"]) == {"lr", "svm"} and rec["inner_k"] == 3
    best = max(rec["inner_uf1"].values())
    assert rec["chosen"]["recipe"] == next(k for k, v in rec["inner_uf1"].items() if v == best)
    # the bundle is exactly the winner trained alone: same config (no search, the outer protocol)
    winner = {"lr": {}, "svm": {"model.name": "svm", "model.params": {"C": 1.0}}}[rec["chosen"]["recipe"]]
    plain = load_bundle(train_bundle(cfg(**winner), tmp_path / "plain.mekit", progress=False))
    assert not b.meta["config"].get("search") and b.meta["config"]["protocol"]["name"] == "loso"
    assert b.meta["config"]["model"] == plain.meta["config"]["model"]
    data = {"loader": "synthetic", **BASE["data.options"]}
    a = predict(path, **data).sort_values("sample_id").reset_index(drop=True)
    c = predict(tmp_path / "plain.mekit", **data).sort_values("sample_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, c)


def test_train_refuses_a_search_with_an_ensemble_candidate_before_any_fit(tmp_path, monkeypatch):
    import mekit.data as data_mod
    from mekit.engine.predict import train_bundle

    monkeypatch.setattr(data_mod, "load_dataset", lambda *a, **k: pytest.fail("loaded data before refusing"))
    search = [{"label": "lr"}, {"label": "both", "model": {"name": "ensemble", "params": {
        "members": [{"label": "a", "model.name": "logreg"}, {"label": "b", "model.name": "svm"}]}}}]
    with pytest.raises(ConfigError, match=r"candidates \['both'\] are ensembles"):
        train_bundle(cfg(**NESTED, search=search), tmp_path / "x.mekit", progress=False)
