"""Every registered model family, neural and classical, trains and predicts through the runner.

The neural sweep is parametrised over ``mekit.models.MODELS``, so a family registered later is
swept too: its input size is derived from the registered ``min_input_size`` (a 1-epoch run on
small inputs, two subject-grouped folds of the 12-clip synthetic corpus). The model-level
contract (shapes, heads, backbones) is checked in tests/models; this is the path a user takes.
"""

from __future__ import annotations

import numpy as np
import pytest

from mekit.models.classical import CLASSIFIERS
from mekit.config import load_config
from mekit.experiment import run_experiment
from mekit.features import INPUTS
from mekit.models import MODELS

DATA = {"n_subjects": 4, "clips_per_subject": 3, "size": 64}
PRE = {"detector": "none", "size": 64, "landmarks": False, "flow": "farneback", "workers": 1}
N_SAMPLES = DATA["n_subjects"] * DATA["clips_per_subject"]
TRAIN = {"epochs": 1, "batch_size": 8, "selection": "fixed", "threads": 1}

#: the deepest families are built one block per stage (same code paths, a fraction of the compute)
MODEL_PARAMS = {"resnet18_flow": {"layers": [1, 1, 1, 1]}, "r2plus1d_18": {"layers": [1, 1, 1, 1]}}


def input_params(name: str) -> dict:
    """Small model inputs for ``name``: sizes shared between families where possible, so the
    preprocessing cache serves several of them (flows at 28 px, crops at 32 px, 4 frames at 16 px)."""
    meta = MODELS.meta(name)
    kind, shape = meta["input"], meta["min_input_size"]
    side = max(shape[-1], shape[-2])
    if kind in ("flow", "dual_flow", "roi_flow"):
        return {"size": max(28, side)}
    if kind in ("image", "pair"):
        return {"size": max(32, side)}
    if kind in ("sequence", "clip3d"):
        frames = shape[0] if kind == "sequence" else shape[1]
        return {"n_frames": max(4, frames), "size": max(16, side)}
    return {}


def check_run(res, classes_expected: int | None = None) -> None:
    pred = res.predictions
    assert len(pred) == N_SAMPLES and pred["sample_id"].is_unique  # every sample predicted once
    cols = [c for c in pred.columns if c.startswith("p_")]
    assert len(cols) == len(res.metrics["classes"]) >= 2
    P = pred[cols].to_numpy()
    assert np.isfinite(P).all() and (P >= 0).all()
    np.testing.assert_allclose(P.sum(1), 1.0, atol=1e-5)
    assert (pred["pred"].to_numpy() == np.array(res.metrics["classes"])[P.argmax(1)]).all()
    assert 0.0 <= res.metrics["uf1"] <= 1.0 and res.metrics["n_samples"] == N_SAMPLES


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.slow
def test_neural_family_trains_and_predicts_through_the_runner(name):
    kind = MODELS.meta(name)["input"]
    if kind not in INPUTS:
        pytest.skip(f"{name} consumes input kind {kind!r}, for which mekit.features has no input builder")
    model_params = {**TRAIN, "model_params": MODEL_PARAMS.get(name, {})}
    cfg = load_config(None, {"name": f"sweep_{name}", "data.options": DATA, "preprocess": PRE,
                             "features.params": input_params(name), "model.name": name,
                             "model.params": model_params, "protocol.name": "group_kfold",
                             "protocol.params": {"k": 2}, "output.plots": False})
    res = run_experiment(cfg, None, progress=False)
    check_run(res)
    assert res.metrics["method"]["model"] == name
    assert [s["method"] for s in res.metrics["selection_per_fold"]] == ["fixed budget of 1 epochs (no selection)"] * 2


CLASSICAL_PARAMS = {
    "logreg": {"grid": {"C": [0.1, 1.0]}, "inner_folds": 2},
    "svm": {"grid": {"C": [0.1, 1.0]}, "inner_folds": 2},
    "random_forest": {"n_estimators": 25},
    "gbm": {"n_estimators": 20, "min_child_samples": 2},
    # xgboost is left out: on a corpus this small an inner group fold can miss a class, and
    # XGBClassifier then refuses the labels (a FLAML + xgboost limitation, see the note in the report)
    "flaml": {"time_budget": 2, "estimator_list": ["lgbm", "rf", "extra_tree"]},
}


def _classical_case(name: str):
    if name != "flaml":
        return name
    from mekit.models.classical import FlamlClassifier

    # FlamlClassifier is not a scikit-learn estimator (no BaseEstimator/ClassifierMixin), so the
    # imbalanced-learn Pipeline's fitted check in predict_proba fails on scikit-learn >= 1.6.
    # The xfail lifts itself once the class carries estimator tags.
    broken = not hasattr(FlamlClassifier, "__sklearn_tags__")
    return pytest.param(name, marks=[pytest.mark.slow, pytest.mark.xfail(
        broken, raises=AttributeError, strict=True,
        reason="FlamlClassifier lacks __sklearn_tags__ (inherit ClassifierMixin, BaseEstimator)")])


@pytest.mark.parametrize("name", [_classical_case(n) for n in CLASSIFIERS.names()])
def test_classical_classifier_runs_on_hoof_features(name):
    cfg = load_config(None, {"name": f"sweep_{name}", "data.options": DATA, "preprocess": PRE,
                             "features.name": "hoof", "features.params": {"grid": 3, "bins": 8},
                             "model.name": name, "model.params": CLASSICAL_PARAMS.get(name, {}),
                             "protocol.name": "group_kfold", "protocol.params": {"k": 2}, "output.plots": False})
    res = run_experiment(cfg, None, progress=False)
    check_run(res)
    for sel in res.metrics["selection_per_fold"]:
        if name in ("logreg", "svm"):
            assert sel["chosen"]["C"] in (0.1, 1.0) and "training subjects" in sel["method"]
        elif name == "flaml":
            assert sel["chosen"]["learner"] and "subject-grouped" in sel["method"]
