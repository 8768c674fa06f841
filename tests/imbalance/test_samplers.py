"""Shared check suite over every registered sampler, plus per-sampler behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from mekit.errors import ConfigError, DataError
from mekit.imbalance import SAMPLERS, get_sampler
from mekit.imbalance.samplers import ClassBalancedSampler, target_counts

NAMES = SAMPLERS.names()


def training_part(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A CASME II-like long tail (30/12/6) with overlapping classes (so ADASYN/ENN apply)."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], [30, 12, 6])
    X = rng.normal(size=(len(y), 4))
    X[y == 1] += 0.6
    X[y == 2] -= 0.6
    return X, rng.permutation(y)


def kw(name: str, **extra):
    return extra if name != "class_balanced" else {k: v for k, v in extra.items() if k != "target"}


def test_all_samplers_registered():
    assert set(NAMES) == {"random_over", "random_under", "class_balanced", "smote", "borderline_smote", "adasyn",
                          "smoteenn"}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("target", ["auto", "median"])
def test_output_class_counts(name, target):
    X, y = training_part()
    s = get_sampler(name, seed=0, **kw(name, target=target))
    X_res, y_res = s.fit_resample(X, y)
    assert len(X_res) == len(y_res)
    got = dict(zip(*np.unique(y_res, return_counts=True)))
    if name == "class_balanced":
        assert len(y_res) == len(y)
        assert set(got) == {0, 1, 2}
        return
    direction = "under" if name == "random_under" else "over"
    asked = target_counts({0: 30, 1: 12, 2: 6}, target, direction)
    assert s.target_counts_ == asked
    if s.exact_counts:
        assert got == asked
    elif name == "smoteenn":  # cleaning removes rows: never above the SMOTE target
        assert all(got.get(c, 0) <= asked[c] for c in asked)
    else:  # borderline / ADASYN: between the original and the asked count, close to it
        for c, n in asked.items():
            orig = int((y == c).sum())
            assert orig <= got[c] <= n
            assert got[c] >= n - max(2, n // 10) or n == orig


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed(name):
    X, y = training_part()
    a = get_sampler(name, seed=3).fit_resample(X, y)
    b = get_sampler(name, seed=3).fit_resample(X, y)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = get_sampler(name, seed=4).fit_resample(X, y)
    assert len(c[0]) != len(a[0]) or not np.array_equal(c[0], a[0])


@pytest.mark.parametrize("name", NAMES)
def test_indices_valid_and_inputs_untouched(name):
    X, y = training_part()
    X0, y0 = X.copy(), y.copy()
    s = get_sampler(name, seed=0)
    X_res, y_res = s.fit_resample(X, y)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    if SAMPLERS.meta(name)["indices"]:
        idx = s.sample_indices_
        assert idx.dtype.kind == "i" and idx.min() >= 0 and idx.max() < len(y)
        np.testing.assert_array_equal(X_res, X[idx])
        np.testing.assert_array_equal(y_res, y[idx])
        # X=None resamples by index only: the output "rows" are the indices themselves
        ids, y_ids = get_sampler(name, seed=0).fit_resample(None, y)
        np.testing.assert_array_equal(ids, idx)
    else:
        assert not hasattr(s, "sample_indices_")
        assert not s.provides_indices


@pytest.mark.parametrize("name", NAMES)
def test_sklearn_clone_and_params(name):
    s = get_sampler(name, seed=7)
    assert s.get_params()["random_state"] == 7
    twin = clone(s)
    X, y = training_part()
    np.testing.assert_array_equal(twin.fit_resample(X, y)[1], s.fit_resample(X, y)[1])


@pytest.mark.parametrize("name", NAMES)
def test_length_mismatch_is_a_data_error(name):
    X, y = training_part()
    with pytest.raises(DataError, match="different lengths"):
        get_sampler(name, seed=0).fit_resample(X[:-1], y)


def test_index_samplers_keep_row_types():
    import pandas as pd

    _, y = training_part()
    ids = [f"sub{i:02d}" for i in range(len(y))]
    out, y_out = get_sampler("random_over", seed=0).fit_resample(ids, y)
    assert isinstance(out, list) and len(out) == 90 and set(out) == set(ids)
    df = pd.DataFrame({"sample_id": ids, "label": y})
    s = get_sampler("random_under", seed=0)
    sub, y_sub = s.fit_resample(df, df["label"])
    assert list(sub["sample_id"]) == [ids[i] for i in s.sample_indices_]
    assert (sub["label"].to_numpy() == y_sub).all()


def test_random_over_keeps_every_original_row_first():
    _, y = training_part()
    s = get_sampler("random_over", seed=0, target="median")
    s.fit_resample(None, y)
    np.testing.assert_array_equal(s.sample_indices_[: len(y)], np.arange(len(y)))
    assert np.all(y[s.sample_indices_[len(y):]] == 2)  # only the class below the median (6 -> 12) grows


def test_target_counts_options():
    counts = {"a": 30, "b": 12, "c": 6}
    assert target_counts(counts, "median", "over") == {"a": 30, "b": 12, "c": 12}
    assert target_counts(counts, "median", "under") == {"a": 12, "b": 12, "c": 6}
    assert target_counts(counts, 20, "over") == {"a": 30, "b": 20, "c": 20}
    assert target_counts(counts, {"c": 10}, "over") == {"a": 30, "b": 12, "c": 10}
    with pytest.raises(ConfigError, match="below"):
        target_counts(counts, {"a": 10}, "over")
    with pytest.raises(ConfigError, match="'most'"):
        target_counts(counts, "most", "over")


def test_class_balanced_sampler_drives_a_dataloader():
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    y = np.repeat([0, 1, 2], [300, 60, 20])
    s = ClassBalancedSampler(num_samples=3000, random_state=0).fit(None, y)
    ds = TensorDataset(torch.from_numpy(y))
    loader = DataLoader(ds, batch_size=500, sampler=s)
    epoch0 = torch.cat([b[0] for b in loader]).numpy()
    epoch1 = torch.cat([b[0] for b in loader]).numpy()
    assert len(epoch0) == 3000
    shares = np.bincount(epoch0, minlength=3) / 3000
    np.testing.assert_allclose(shares, [1 / 3, 1 / 3, 1 / 3], atol=0.04)  # vs 0.79/0.16/0.05 in the data
    assert not np.array_equal(epoch0, epoch1)  # a fresh draw every epoch
    s.set_epoch(0)
    np.testing.assert_array_equal(np.fromiter(iter(s), dtype=np.int64), s.draw(0))
    np.testing.assert_array_equal(y[s.draw(0)], epoch0)


def test_class_balanced_power_half_is_square_root_sampling():
    y = np.repeat([0, 1], [400, 100])
    s = ClassBalancedSampler(power=0.5, random_state=0).fit(None, y)
    share1 = s.weights_[y == 1].sum()
    assert share1 == pytest.approx(np.sqrt(100) / (np.sqrt(100) + np.sqrt(400)))


def test_smote_family_rejects_images_and_singleton_classes():
    with pytest.raises(DataError, match="2-D numeric"):
        get_sampler("smote", seed=0).fit_resample(np.zeros((6, 2, 2)), np.array([0, 0, 0, 0, 1, 1]))
    with pytest.raises(DataError, match=r"classes \[1\] have 1"):
        get_sampler("smote", seed=0).fit_resample(np.random.default_rng(0).normal(size=(5, 2)),
                                                   np.array([0, 0, 0, 0, 1]))


def test_smote_lowers_k_for_tiny_classes():
    X, y = training_part()
    keep = np.concatenate([np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:3]])
    s = get_sampler("smote", seed=0, k_neighbors=5)
    _, y_res = s.fit_resample(X[keep], y[keep])
    assert s.k_neighbors_ == 2 and np.bincount(y_res).tolist() == [30, 30, 30]


def test_sampler_inside_an_imblearn_pipeline_only_sees_fit_data():
    from imblearn.pipeline import Pipeline
    from sklearn.linear_model import LogisticRegression

    X, y = training_part()
    pipe = Pipeline([("resample", get_sampler("smote", seed=0)), ("clf", LogisticRegression(max_iter=500))])
    pipe.fit(X, y)
    assert pipe.named_steps["resample"].n_synthetic_ == (30 - 12) + (30 - 6)
    assert pipe.predict(X[:5]).shape == (5,)  # predicting never resamples


def test_unknown_sampler_and_option():
    with pytest.raises(ConfigError, match="unknown sampler 'tomek'"):
        get_sampler("tomek")
    with pytest.raises(ConfigError, match="random_over.*ratio"):
        get_sampler("random_over", ratio=2)


@pytest.mark.slow
def test_flaml_receives_class_weights_as_sample_weights(monkeypatch):
    """FLAML has no class_weight argument: mekit turns the class weights into per-sample weights."""
    import flaml

    from mekit.models.classical import FlamlClassifier

    seen = {}

    def fake_fit(self, X, y, **kw):
        seen.update(kw)
        raise RuntimeError("stop")

    monkeypatch.setattr(flaml.AutoML, "fit", fake_fit)
    y = np.array([0] * 6 + [1] * 2)
    X = np.arange(16, dtype=float).reshape(8, 2)
    with pytest.raises(RuntimeError, match="stop"):
        FlamlClassifier(class_weight="balanced").fit(X, y)
    w = seen["sample_weight"]
    assert w[y == 1][0] == pytest.approx(3 * w[y == 0][0])  # the minority class weighs 3x
    seen.clear()
    with pytest.raises(RuntimeError):
        FlamlClassifier(class_weight=None).fit(X, y)
    assert "sample_weight" not in seen
