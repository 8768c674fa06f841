"""The still-image CNN regressor (StillRegressorNet): it learns a rating from the pixels, its
inner validation split holds whole training subjects only, it is deterministic for a seed, and a
bundle gives it back."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from mekit.errors import ConfigError, DataError
from mekit.intensity.models import IntensitySettings, StillRegressorNet

SIZE = 32
S = IntensitySettings(image_size=SIZE)
TRAIN = [f"S{i}" for i in range(6)]
HELD_OUT = ["T0", "T1"]


def _images(subjects, per=12, seed=0):
    """A disc on a noisy background whose radius and brightness grow with the rating (0..1);
    each subject has a background of its own. Pixel (0, 0) carries the image's index, so a test
    can tell which images a fit read."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    X, y, g = [], [], []
    for k, subject in enumerate(subjects):
        for _ in range(per):
            r = float(rng.uniform(0, 1))
            cy, cx = SIZE / 2 + rng.uniform(-2, 2, 2)
            img = np.full((SIZE, SIZE), 30 + 12 * (k % 5), float) + rng.normal(0, 6, (SIZE, SIZE))
            img[(yy - cy) ** 2 + (xx - cx) ** 2 <= (3 + 10 * r) ** 2] = 120 + 110 * r
            img = np.repeat(np.clip(img, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
            img[0, 0] = (len(X) % 256, len(X) // 256, 0)
            X.append(img)
            y.append(r)
            g.append(subject)
    return np.stack(X), np.array(y), np.array(g)


@pytest.fixture(scope="module")
def data():
    X, y, g = _images(TRAIN + HELD_OUT)
    test = np.isin(g, HELD_OUT)
    return X[~test], y[~test], g[~test], X[test], y[test]


def test_it_rates_held_out_subjects_better_than_the_mean(data):
    Xtr, ytr, gtr, Xte, yte = data
    net = StillRegressorNet("compact_cnn", {"epochs": 12, "batch_size": 16, "lr": 3e-3}, S, seed=0).fit(Xtr, ytr, gtr)
    pred = net.predict(Xte)
    assert pred.dtype == np.float64 and pred.shape == (len(Xte),) and pred.min() >= 0 and pred.max() <= 1
    mae, floor = np.abs(pred - yte).mean(), np.abs(ytr.mean() - yte).mean()
    rho = spearmanr(pred, yte)[0]
    assert mae < 0.5 * floor, (mae, floor)
    assert rho > 0.8, rho
    sel = net.selection_
    assert sel["method"].startswith("early stopping on the rating MAE") and 0 <= sel["chosen"]["epoch"] < 12
    assert [h["epoch"] for h in net.history_][:2] == [0, 1] and all("val_mae" in h for h in net.history_)
    d = net.describe()
    assert d["model"] == "compact_cnn" and d["train"]["model_params"] == {"intensity_head": True}
    assert d["unit"] == "image" and d["runtime"]["device"] == "cpu"


def test_held_out_subjects_never_reach_the_validation_split(data, monkeypatch):
    """The inner split takes whole TRAINING subjects: the validation images are all the images
    of those subjects, training batches never hold one of them, and no held-out image is read."""
    Xtr, ytr, gtr, Xte, _ = data
    held_ids = {int(a) + 256 * int(b) for a, b in Xte[:, 0, 0, :2]}
    read = {"train": set(), "validation": set()}
    where = ["train"]
    norm, rows = StillRegressorNet._normalise, StillRegressorNet._predict_rows

    def normalise(self, px):
        # (rows arrive channels first: [N, 3, S, S])
        read[where[0]].update(int(a) + 256 * int(b) for a, b in px[:, :2, 0, 0].tolist())
        return norm(self, px)

    def predict_rows(self, model, px, batch=128):
        where[0] = "validation"
        try:
            return rows(self, model, px, batch)
        finally:
            where[0] = "train"

    monkeypatch.setattr(StillRegressorNet, "_normalise", normalise)
    monkeypatch.setattr(StillRegressorNet, "_predict_rows", predict_rows)
    net = StillRegressorNet("compact_cnn", {"epochs": 2, "batch_size": 16, "val_fraction": 0.34}, S, seed=3)
    net.fit(Xtr, ytr, gtr)
    ids = np.array([int(a) + 256 * int(b) for a, b in Xtr[:, 0, 0, :2]])
    val_subjects = net.selection_["validation_subjects"]
    assert len(val_subjects) == 2 and set(val_subjects) <= set(TRAIN)
    assert read["validation"] == set(ids[np.isin(gtr, val_subjects)])
    assert read["train"] == set(ids[~np.isin(gtr, val_subjects)])
    assert not (read["train"] | read["validation"]) & held_ids


def test_fixed_selection_and_few_subjects_train_the_whole_budget(data):
    Xtr, ytr, gtr, _, _ = data
    net = StillRegressorNet("compact_cnn", {"epochs": 2, "selection": "fixed"}, S).fit(Xtr, ytr, gtr)
    assert net.selection_["chosen"] == {} and len(net.history_) == 2
    two = np.isin(gtr, TRAIN[:2])
    net = StillRegressorNet("compact_cnn", {"epochs": 2}, S).fit(Xtr[two], ytr[two], gtr[two])
    assert net.selection_["method"].startswith("fixed budget") and "val_mae" not in net.history_[0]


def test_it_is_deterministic_for_a_seed(data):
    Xtr, ytr, gtr, Xte, _ = data
    params = {"epochs": 3, "batch_size": 16}

    def fit(seed):
        return StillRegressorNet("compact_cnn", params, S, seed=seed).fit(Xtr, ytr, gtr)

    a, b, c = fit(5), fit(5), fit(6)
    assert np.array_equal(a.predict(Xte), b.predict(Xte))
    assert a.history_ == b.history_ and a.selection_ == b.selection_
    assert not np.array_equal(a.predict(Xte), c.predict(Xte))


def test_a_bundle_gives_the_same_ratings(data, tmp_path):
    from mekit.config import load_config
    from mekit.engine.bundle import load_bundle, save_bundle

    Xtr, ytr, gtr, Xte, _ = data
    net = StillRegressorNet("compact_cnn", {"epochs": 2, "selection": "fixed"}, S, seed=0).fit(Xtr, ytr, gtr)
    cfg = load_config(None, {"model.name": "compact_cnn", "compute.device": "cpu"})
    path = save_bundle(tmp_path / "still.mekit", net, cfg, [], extra={"task": "intensity",
                                                                      "intensity": S.to_dict()})
    back = StillRegressorNet.from_fitted(load_bundle(path, device="cpu").model, S)
    assert np.array_equal(back.predict(Xte), net.predict(Xte))


def test_crops_of_another_size_are_resized(data):
    Xtr, ytr, gtr, Xte, _ = data
    net = StillRegressorNet("compact_cnn", {"epochs": 1, "selection": "fixed"}, IntensitySettings(image_size=16))
    net.fit(Xtr, ytr, gtr)
    assert net.predict(Xte).shape == (len(Xte),)


def test_bad_inputs_are_refused(data):
    Xtr, ytr, gtr, _, _ = data
    with pytest.raises(ConfigError, match="unknown still-image model"):
        StillRegressorNet("no_such_net")
    with pytest.raises(ConfigError, match="2-D CNN on 3-channel images"):
        StillRegressorNet("cnn_lstm")
    net = StillRegressorNet("compact_cnn", {"epochs": 1}, S)
    with pytest.raises(DataError, match="aligned face crops"):
        net.fit(Xtr.astype(np.float32), ytr, gtr)
    with pytest.raises(DataError, match="0..1"):
        net.fit(Xtr, ytr * 5, gtr)
    with pytest.raises(DataError, match="one rating and one subject per image"):
        net.fit(Xtr, ytr[:-1], gtr)
    assert "compact_cnn" in StillRegressorNet.models() and "cnn_lstm" not in StillRegressorNet.models()
