"""Combined flow descriptors, descriptor concatenation and the HSV flow-image input."""

from __future__ import annotations

import numpy as np
import pytest

from mekit.errors import ConfigError
from mekit.features import FEATURES, INPUTS, get_extractor, get_input_builder
from mekit.features.combined import flow_descriptor
from mekit.features.flow_features import hoof_descriptor

SYNTH = {"n_subjects": 3, "clips_per_subject": 2, "size": 64}
PRE = {"detector": "none", "size": 64, "landmarks": False, "workers": 1}


def _field(h=40, w=40, u=1.0, v=0.0):
    f = np.zeros((h, w, 2), np.float32)
    f[..., 0], f[..., 1] = u, v
    return f


def test_registered():
    assert "flow_descriptors" in FEATURES and "concat" in FEATURES and "hsv_flow" in INPUTS


def test_defaults_equal_hoof():
    rng = np.random.default_rng(0)
    flow = rng.normal(size=(50, 50, 2)).astype(np.float32)
    strain = rng.random((50, 50)).astype(np.float32)
    np.testing.assert_allclose(flow_descriptor([flow], [strain]), hoof_descriptor(flow, strain, 5, 8), rtol=1e-5)


def test_mean_normalisation_removes_overall_intensity():
    rng = np.random.default_rng(1)
    flow = rng.normal(size=(30, 30, 2)).astype(np.float32)
    a = flow_descriptor([flow], [None], normalise="mean")
    b = flow_descriptor([3.0 * flow], [None], normalise="mean")
    np.testing.assert_allclose(a, b, rtol=1e-5)
    assert not np.allclose(flow_descriptor([flow], [None]), flow_descriptor([3.0 * flow], [None]))


def test_rightward_motion_lands_in_bin_zero_and_sqrt():
    d = flow_descriptor([_field(u=4.0)], [None], grids=[1], bins=8)
    assert d.shape == (8,) and d[0] == pytest.approx(4.0) and d[1:].sum() == 0
    s = flow_descriptor([_field(u=4.0)], [None], grids=[1], bins=8, sqrt=True)
    assert s[0] == pytest.approx(2.0)


def test_median_subtraction_cancels_head_translation():
    base = _field(u=0.0)
    base[:10, :10] = (2.0, 0.0)  # a local motion in one corner
    moved = base + np.array([1.5, -0.5], np.float32)  # plus a rigid head shift everywhere
    a = flow_descriptor([base], [None], grids=[2], subtract="median")
    b = flow_descriptor([moved], [None], grids=[2], subtract="median")
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_widths_of_pyramid_pairs_strain_and_mdmo():
    f, s = _field(u=1.0, v=1.0), np.full((40, 40), 0.05, np.float32)
    rois = {"nose": (10, 10, 20, 20), "mouth": (5, 25, 35, 38)}
    d = flow_descriptor([f, f], [s, s], rois, grids=[2, 3], bins=8, strain_mean=True, strain_bins=4, mdmo=True)
    per_pair = (4 + 9) * (8 + 1 + 4) + 2 * len(rois)
    assert d.shape == (2 * per_pair,)


def test_mask_eyes_zeroes_those_cells():
    f = _field(u=2.0)
    rois = {"left_eye": (0, 0, 20, 20), "right_eye": (20, 0, 40, 20)}
    d = flow_descriptor([f], [None], rois, grids=[2], bins=8, mask_eyes=True).reshape(4, 8)
    assert d[:2].sum() == 0 and d[2:, 0].tolist() == pytest.approx([2.0, 2.0])


def test_bad_options_raise():
    with pytest.raises(ConfigError, match="normalise"):
        flow_descriptor([_field()], [None], normalise="median")
    with pytest.raises(ConfigError, match="subtract"):
        flow_descriptor([_field()], [None], subtract="mean")


@pytest.mark.slow
def test_extractors_on_synthetic_corpus():
    from mekit.data import load_dataset

    table = load_dataset("synthetic", None, None, **SYNTH)
    fs = get_extractor("flow_descriptors")(table, PRE, progress=False, pairs=["onset_apex", "apex_offset"],
                                           grids=[2, 4], normalise="mean", sqrt=True)
    assert fs.X.shape == (len(table), 2 * (4 + 16) * 9) and np.isfinite(fs.X).all()
    hoof = get_extractor("hoof")(table, PRE, progress=False, grid=3)
    both = get_extractor("concat")(table, PRE, progress=False,
                                   parts=[{"name": "hoof", "params": {"grid": 3}},
                                          {"name": "flow_descriptors", "params": {"grids": [2], "sqrt": True}}])
    assert both.sample_ids == hoof.sample_ids
    np.testing.assert_allclose(both.X[:, :hoof.X.shape[1]], hoof.X)
    with pytest.raises(ConfigError, match="parts"):
        get_extractor("concat")(table, PRE, progress=False)
    img = get_input_builder("hsv_flow")(table, PRE, progress=False, size=32)
    assert img.X.shape == (len(table), 3, 32, 32) and 0.0 <= img.X.min() and img.X.max() <= 1.0
    assert img.X.max() > 0.5  # the fastest motion of each clip is rendered at full brightness
    # a neural model's config may pick this builder by name; it then gets the model's mean/std
    from mekit.config import load_config
    from mekit.engine.factory import build_inputs

    cfg = load_config(overrides={"data.loader": "synthetic", "data.options": SYNTH, "preprocess": PRE,
                                 "features.name": "hsv_flow", "features.params": {"size": 32},
                                 "model.name": "resnet18_flow"})
    via_runner = build_inputs(table, cfg, progress=False)
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(via_runner.X, (img.X - mean) / std, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_relative_sequences_cancel_appearance():
    from mekit.data import load_dataset

    table = load_dataset("synthetic", None, None, **SYNTH)
    build = get_input_builder("sequence")
    raw = build(table, PRE, progress=False, n_frames=4, size=32)
    rel = build(table, PRE, progress=False, n_frames=4, size=32, relative=True)
    assert rel.sample_ids == raw.sample_ids and rel.X.shape == raw.X.shape == (len(table), 4, 3, 32, 32)
    assert np.abs(rel.X[:, 0]).max() == 0.0  # the onset minus itself
    for i in range(len(table)):
        diff = raw.X[i] - raw.X[i, :1]
        scale = np.percentile(np.abs(diff), 99)
        np.testing.assert_allclose(rel.X[i], diff / scale, rtol=1e-4, atol=1e-5)
        assert np.percentile(np.abs(rel.X[i]), 99) == pytest.approx(1.0, rel=1e-4)
    clip = get_input_builder("clip3d")(table, PRE, progress=False, n_frames=4, size=32, layout="clip3d",
                                       relative=True)
    np.testing.assert_allclose(clip.X, rel.X.transpose(0, 2, 1, 3, 4))
