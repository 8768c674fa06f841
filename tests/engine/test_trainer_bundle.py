"""Training engine: determinism, inner-validation selection, kill-and-resume; bundles."""

import io
import pickle
import zipfile

import numpy as np
import pytest

from mekit.engine.bundle import load_bundle, save_bundle
from mekit.engine.trainer import NeuralModel
from mekit.errors import DataError


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(["a", "b", "c"] * (n // 3))
    X = rng.normal(0, 0.3, (n, 3, 28, 28)).astype(np.float32)
    for i, lab in enumerate(y):  # class-dependent blob in the u channel
        k = "abc".index(lab)
        X[i, 0, 4 + 8 * k: 10 + 8 * k, 4:24] += 1.5
    groups = np.array([f"s{i % 8}" for i in range(n)])
    return X, y, groups


FAST = {"epochs": 4, "batch_size": 16, "lr": 3e-3, "selection": "fixed", "augment": {"affine": 0.0}}


def test_same_seed_same_predictions():
    X, y, g = _data()
    p1 = NeuralModel("ststnet", FAST, seed=3).fit(X, y, g).predict_proba(X)
    p2 = NeuralModel("ststnet", FAST, seed=3).fit(X, y, g).predict_proba(X)
    p3 = NeuralModel("ststnet", FAST, seed=4).fit(X, y, g).predict_proba(X)
    np.testing.assert_array_equal(p1, p2)
    assert not np.array_equal(p1, p3)


def test_learns_a_separable_problem():
    X, y, g = _data()
    m = NeuralModel("ststnet", {**FAST, "epochs": 25}, seed=0).fit(X, y, g)
    acc = (m.classes_[m.predict_proba(X).argmax(1)] == y).mean()
    assert acc > 0.8


def test_inner_validation_uses_training_subjects_only():
    X, y, g = _data()
    m = NeuralModel("ststnet", {**FAST, "selection": "inner_val", "epochs": 6}, seed=0).fit(X, y, g)
    assert "inner validation" in m.selection_["method"]
    assert 0 <= m.selection_["chosen"]["epoch"] < 6
    assert all("val_uf1" in h for h in m.history_)


def test_killed_training_resumes_to_the_same_model(tmp_path):
    X, y, g = _data()
    full = NeuralModel("ststnet", FAST, seed=1).fit(X, y, g).predict_proba(X)
    NeuralModel("ststnet", {**FAST, "epochs": 2}, seed=1, checkpoint_dir=tmp_path).fit(X, y, g)  # "killed" after 2
    resumed = NeuralModel("ststnet", FAST, seed=1, checkpoint_dir=tmp_path)
    resumed.fit(X, y, g)
    assert [h["epoch"] for h in resumed.history_] == [0, 1, 2, 3]
    np.testing.assert_allclose(resumed.predict_proba(X), full, atol=1e-6)


def _cfg():
    from mekit.config import load_config

    return load_config(overrides={"model.name": "ststnet"})


def test_neural_bundle_round_trip(tmp_path):
    X, y, g = _data()
    m = NeuralModel("ststnet", FAST, seed=0).fit(X, y, g)
    p = save_bundle(tmp_path / "m.mekit", m, _cfg(), list(m.classes_), {"preprocess": {"size": 128}})
    b = load_bundle(p)
    assert b.meta["kind"] == "neural" and b.classes == ["a", "b", "c"]
    assert b.meta["preprocess"] == {"size": 128} and "torch" in b.meta["versions"]
    np.testing.assert_allclose(b.model.predict_proba(X), m.predict_proba(X), atol=1e-6)


def test_classical_bundle_round_trip(tmp_path):
    from mekit.models.classical import ClassicalModel
    from mekit.config import load_config

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    y = np.where(X[:, 0] > 0, "pos", "neg")
    g = np.array([f"s{i % 6}" for i in range(60)])
    m = ClassicalModel("logreg", pca=3).fit(X, y, g)
    p = save_bundle(tmp_path / "c.mekit", m, load_config(), list(m.classes_))
    b = load_bundle(p)
    assert b.meta["kind"] == "classical"
    np.testing.assert_allclose(b.model.predict_proba(X), m.predict_proba(X))


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/mekit_pwned",))


def test_invalid_bundles_are_refused_without_running_anything(tmp_path):
    junk = tmp_path / "junk.mekit"
    junk.write_bytes(b"not a bundle")
    with pytest.raises(DataError, match="not a zip"):
        load_bundle(junk)
    nometa = tmp_path / "nometa.mekit"
    with zipfile.ZipFile(nometa, "w") as z:
        z.writestr("weights.pt", b"x")
    with pytest.raises(DataError, match="meta.json is missing"):
        load_bundle(nometa)
    evil = tmp_path / "evil.mekit"
    buf = io.BytesIO()
    pickle.dump(_Evil(), buf)
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("meta.json", '{"format": "mekit-bundle", "format_version": 1, "kind": "neural", "config": {}, '
                                '"model_name": "ststnet", "model_classes": ["a", "b"], "classes": ["a", "b"]}')
        z.writestr("weights.pt", buf.getvalue())
    with pytest.raises(DataError, match="cannot be read safely"):
        load_bundle(evil)
    import os

    assert not os.path.exists("/tmp/mekit_pwned")


def test_cosine_schedule_with_warmup():
    from mekit.engine.trainer import TrainConfig
    from mekit.errors import ConfigError

    c = TrainConfig.from_params({**FAST, "epochs": 10, "schedule": "cosine", "warmup_epochs": 2})
    lrs = [c.lr_at(e) for e in range(10)]
    assert lrs[0] == pytest.approx(3e-4) and lrs[2] == pytest.approx(3e-3)  # warm-up from lr/10 to lr
    assert all(a > b for a, b in zip(lrs[2:], lrs[3:]))  # then strictly down, towards 0
    assert lrs[-1] < 0.05 * 3e-3
    assert TrainConfig.from_params(FAST).lr_at(7) == 3e-3  # constant by default
    X, y, g = _data()
    fit = NeuralModel("ststnet", {**FAST, "epochs": 25, "schedule": "cosine"}, seed=0).fit(X, y, g)
    assert [h["lr"] for h in fit.history_] == [fit.cfg.lr_at(e) for e in range(25)]
    assert (fit.classes_[fit.predict_proba(X).argmax(1)] == y).mean() > 0.8
    with pytest.raises(ConfigError, match="schedule"):
        NeuralModel("ststnet", {"schedule": "step"})
    with pytest.raises(ConfigError, match="selection"):
        TrainConfig.from_params({"selection": "best_on_test"})
