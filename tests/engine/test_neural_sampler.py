"""imbalance.sampler on neural models: index samplers resample each epoch's training rows;
synthetic samplers (SMOTE family) are refused, since they interpolate feature vectors."""

from __future__ import annotations

import numpy as np
import pytest

import mekit.imbalance
from mekit.engine.trainer import NeuralModel
from mekit.errors import ConfigError

FAST = {"epochs": 2, "batch_size": 12, "lr": 3e-3, "selection": "fixed", "augment": {"affine": 0.0}}
COUNTS = {"a": 24, "b": 8, "c": 4}


def _data(seed=0):
    rng = np.random.default_rng(seed)
    y = np.array([c for c, n in COUNTS.items() for _ in range(n)])
    X = rng.normal(0, 0.3, (len(y), 3, 28, 28)).astype(np.float32)
    groups = np.array([f"s{i % 6}" for i in range(len(y))])
    return X, y, groups


@pytest.fixture
def seen_labels(monkeypatch):
    """The class indices of every training batch, recorded by the loss the trainer builds."""
    seen: list[np.ndarray] = []
    real = mekit.imbalance.build_loss

    def spy(*args, **kwargs):
        loss = real(*args, **kwargs)
        forward = loss.forward

        def record(logits, target):
            seen.append(target.detach().cpu().numpy().copy())
            return forward(logits, target)

        loss.forward = record
        return loss

    monkeypatch.setattr(mekit.imbalance, "build_loss", spy)
    return seen


def _per_epoch(seen, n_epochs):
    labels = np.concatenate(seen)
    assert len(labels) % n_epochs == 0
    return [np.bincount(part, minlength=3).tolist() for part in np.split(labels, n_epochs)]


def test_random_over_balances_every_epoch(seen_labels):
    X, y, g = _data()
    m = NeuralModel("ststnet", FAST, seed=0, sampler="random_over").fit(X, y, g)
    assert _per_epoch(seen_labels, 2) == [[24, 24, 24], [24, 24, 24]]
    assert m.epoch_class_counts_ == [[24, 24, 24], [24, 24, 24]]
    res = m.selection_["resampling"]
    assert res["sampler"] == "random_over"
    assert res["last_epoch_class_counts"] == {"a": 24, "b": 24, "c": 24}
    assert m.describe()["sampler"] == {"name": "random_over", "params": {}}


def test_without_a_sampler_batches_keep_the_class_counts(seen_labels):
    X, y, g = _data()
    m = NeuralModel("ststnet", FAST, seed=0).fit(X, y, g)
    assert _per_epoch(seen_labels, 2) == [[24, 8, 4], [24, 8, 4]]
    assert "resampling" not in m.selection_


def test_random_under_with_params(seen_labels):
    X, y, g = _data()
    NeuralModel("ststnet", FAST, seed=0, sampler="random_under", sampler_params={"target": 6}).fit(X, y, g)
    assert _per_epoch(seen_labels, 2) == [[6, 6, 4], [6, 6, 4]]


def test_resampling_draws_training_rows_only_and_differs_by_epoch(monkeypatch):
    """With inner validation, only the training subjects' rows are resampled; the duplicates
    are drawn afresh each epoch, and the same seed draws the same rows."""
    X, y, g = _data()
    drawn: list[list[np.ndarray]] = []

    def run():
        rows: list[np.ndarray] = []
        real = NeuralModel._epoch_order

        def spy(self, tr, y_tr, epoch, gen, probs_w):
            order = real(self, tr, y_tr, epoch, gen, probs_w)
            rows.append(order.numpy().copy())
            return order

        monkeypatch.setattr(NeuralModel, "_epoch_order", spy)
        m = NeuralModel("ststnet", {**FAST, "selection": "inner_val", "val_fraction": 0.34, "patience": 5},
                        seed=2, sampler="random_over").fit(X, y, g)
        drawn.append(rows)
        return m

    m = run()
    val_subjects = set(m.selection_["validation_subjects"])
    assert val_subjects
    for rows in drawn[0]:
        assert not val_subjects & set(g[rows])
    assert sorted(drawn[0][0]) != sorted(drawn[0][1])  # other duplicates in epoch 2
    run()
    assert all(np.array_equal(a, b) for a, b in zip(drawn[0], drawn[1]))


@pytest.mark.parametrize("name", ["smote", "adasyn", "borderline_smote", "smoteenn"])
def test_synthetic_samplers_are_refused_for_neural_models(name):
    with pytest.raises(ConfigError, match=rf"imbalance.sampler: '{name}' synthesises new feature vectors") as e:
        NeuralModel("ststnet", FAST, sampler=name)
    assert "\n" not in str(e.value)


def test_validation_accepts_index_samplers_and_refuses_synthetic_ones():
    from mekit.config import load_config
    from mekit.evaluation.validate import validate_config

    base = {"model.name": "ststnet", "model.params": dict(FAST), "compute.device": "cpu"}
    validate_config(load_config(None, {**base, "imbalance.sampler": "random_over"}))
    validate_config(load_config(None, {**base, "imbalance.sampler": "random_under",
                                       "imbalance.sampler_params": {"target": "median"}}))
    for over, pattern in [
        ({"imbalance.sampler": "smote"}, r"^imbalance.sampler: 'smote' synthesises"),
        ({"imbalance.sampler": "random_over", "imbalance.sampler_params": {"k": 3}}, r"^imbalance.sampler_params"),
        ({"imbalance.sampler": "random_over", "model.params": {**FAST, "balanced_sampler": True}},
         r"^imbalance.sampler: 'random_over' and model.params.balanced_sampler"),
    ]:
        with pytest.raises(ConfigError, match=pattern) as e:
            validate_config(load_config(None, {**base, **over}))
        assert "\n" not in str(e.value)


@pytest.mark.slow
def test_a_neural_run_reports_the_resampling_it_did(tmp_path, seen_labels):
    """End to end: the runner hands imbalance.sampler to the neural model, training sees the
    resampled rows, and the report's method line names the sampler that really ran."""
    from mekit.config import load_config
    from mekit.experiment import run_experiment

    cfg = load_config(None, {
        "name": "tiny", "data.options": {"n_subjects": 4, "clips_per_subject": 3, "size": 64},
        "preprocess": {"detector": "none", "size": 64, "landmarks": False, "flow": "farneback", "workers": 1},
        "features.name": "flow", "features.params": {"size": 16}, "model.name": "ststnet",
        "model.params": {"epochs": 1, "selection": "fixed", "batch_size": 8},
        "imbalance.sampler": "random_under", "protocol.name": "group_kfold", "protocol.params": {"k": 2},
        "output.plots": False, "compute.device": "cpu"})
    res = run_experiment(cfg, tmp_path / "run", progress=False)
    for sel in res.metrics["selection_per_fold"]:
        assert sel["resampling"]["sampler"] == "random_under"
        counts = list(sel["resampling"]["last_epoch_class_counts"].values())
        assert len(set(counts)) == 1  # under-sampled to the smallest class
    assert "resampling `random_under`" in (tmp_path / "run" / "report.md").read_text()
