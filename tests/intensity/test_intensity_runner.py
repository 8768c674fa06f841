"""The intensity runner end to end on a tiny synthetic corpus (true per-frame intensity known)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mekit.data import load_dataset
from mekit.errors import ConfigError
from mekit.intensity.models import IntensitySettings, build_clip_inputs, input_table
from mekit.experiment import run_experiment as run_intensity
from mekit.tasks.intensity import HEADLINE, fit_intensity_bundle, predict_curves
from mekit.intensity.targets import timing_curve

from conftest import TINY_INTENSITY as BASE  # noqa: E402
from conftest import TINY_INTENSITY_CORPUS as CORPUS  # noqa: E402


def _cfg(**over):
    from conftest import nested_config

    return nested_config(BASE, **over)


@pytest.fixture(scope="module")
def table():
    return load_dataset("synthetic", None, None, **CORPUS)


@pytest.fixture(scope="module")
def ridge_run(table, tmp_path_factory):
    out = tmp_path_factory.mktemp("ridge_run")
    return run_intensity(_cfg(), out, progress=False, table=table)


def test_report_folder_and_metric_keys(ridge_run):
    out = ridge_run.out_dir
    for name in ("predictions.csv", "clips.csv", "metrics.json", "config.resolved.yaml", "report.md"):
        assert (out / name).is_file(), name
    pngs = sorted((out / "curves").glob("*.png"))
    assert pngs and all(p.stat().st_size > 5000 for p in pngs)
    m = json.loads((out / "metrics.json").read_text())
    for k in HEADLINE:
        assert k in m and m[k] is not None, k
    assert m["task"] == "intensity" and m["protocol"] == "loso" and m["n_subjects"] == 4
    assert set(m["reference"]["position_prior"]) == set(HEADLINE)
    pred = pd.read_csv(out / "predictions.csv")
    assert {"sample_id", "subject", "fold", "frame", "target", "pred"} <= set(pred.columns)
    assert pred["pred"].between(0, 1).all()
    # every frame from the onset to the last frame on disk, once per clip
    for sid, c in pred.groupby("sample_id"):
        assert list(c["frame"]) == list(range(int(c["onset"].iloc[0]), int(c["end_on_disk"].iloc[0]) + 1))
    clips = pd.read_csv(out / "clips.csv")
    assert len(clips) == 12 and {"peak_frame", "peak_value", "apex", "peak_within_10pct"} <= set(clips.columns)
    assert "peak within 10 %" in (out / "report.md").read_text()
    # nothing left out here, and the report says so; the (empty) list is still written
    assert m["excluded"] == {"total": 0, "by_stage": {}}
    assert pd.read_csv(out / "excluded.csv").columns.tolist() == ["sample", "stage", "reason"]
    assert "**Excluded.** No sample was excluded." in (out / "report.md").read_text()


def test_synthetic_targets_are_the_rendered_curves(ridge_run, table):
    pred = ridge_run.predictions
    df = table.df.set_index("sample_id")
    for sid, c in pred.groupby("sample_id"):
        truth = np.asarray(df.at[sid, "intensity_curve"], float)
        assert len(truth) == len(c)
        np.testing.assert_allclose(c["target"].to_numpy(), truth)


def test_ridge_learns_the_curve(ridge_run):
    m = ridge_run.metrics
    assert m["spearman"] > 0.7, m["spearman"]
    assert m["mae"] < 0.2, m["mae"]
    assert m["peak_within_10pct"] >= 0.5


KFOLD2 = {"protocol.name": "group_kfold", "protocol.params": {"k": 2}}
#: a joint (intensity + classification) frame-pair flow model with a tiny budget
JOINT = {"model.name": "ststnet", "model.params": {"epochs": 1, "selection": "fixed", "batch_size": 64, "threads": 1},
         "intensity.train_stride": 3,
         "intensity.classification_weight": 0.3, "intensity.loss": "huber"}


@pytest.mark.slow
def test_timing_targets_follow_the_annotations(table, tmp_path):
    res = run_intensity(_cfg(**{"intensity.source": "timing", "intensity.profile": "triangular",
                                "output.plots": False, **KFOLD2}), None, progress=False, table=table)
    df = table.df.set_index("sample_id")
    for sid, c in res.predictions.groupby("sample_id"):
        on, ap, off = (int(df.at[sid, k]) for k in ("onset", "apex", "offset"))
        np.testing.assert_allclose(c["target"].to_numpy(), timing_curve(on, ap, off, c["frame"].to_numpy()))
        assert c.loc[c["frame"] == ap, "target"].item() == 1.0
    assert res.metrics["target"] == {"source": "timing", "profile": "triangular", "sigma": None, "per_frame": True}


def _altered(table, sid):
    """The table with one clip's apex and offset annotations moved (frames on disk unchanged)."""
    df = table.df.copy()
    i = df.index[df["sample_id"] == sid][0]
    on, off = int(df.at[i, "onset"]), int(df.at[i, "offset"])
    df.at[i, "apex"] = on + 2
    df.at[i, "offset"] = on + (off - on) // 2
    return type(table)(df, table.report, table.name)


def test_inputs_ignore_apex_and_offset_annotations(table):
    sid = table.sample_ids[4]
    s = IntensitySettings.from_config({"frame_size": 48, "grid": 4})
    itab, _ = input_table(_altered(table, sid))
    row = itab.df.set_index("sample_id").loc[sid]
    assert pd.isna(row["apex"]) and int(row["offset"]) == int(table.df.set_index("sample_id").at[sid, "offset"])
    pre = BASE["preprocess"]
    a, _ = build_clip_inputs(table.subset([sid]), pre, s, {"hoof", "stack"}, progress=False)
    b, _ = build_clip_inputs(_altered(table, sid).subset([sid]), pre, s, {"hoof", "stack"}, progress=False)
    np.testing.assert_array_equal(a[sid].frames, b[sid].frames)
    np.testing.assert_array_equal(a[sid].hoof, b[sid].hoof)
    np.testing.assert_array_equal(a[sid].stack, b[sid].stack)


@pytest.mark.parametrize("model", ["ridge", "joint_ststnet"])
@pytest.mark.slow
def test_predictions_do_not_change_with_held_out_apex_and_offset(table, model):
    sid = table.sample_ids[4]
    over = {"intensity.source": "timing", "output.plots": False, **KFOLD2, **(JOINT if model != "ridge" else {})}
    ra = run_intensity(_cfg(**over), None, progress=False, table=table)
    a = ra.predictions
    b = run_intensity(_cfg(**over), None, progress=False, table=_altered(table, sid)).predictions
    if model != "ridge":  # the joint model's classification side is reported too
        assert 0 <= ra.metrics["classification"]["uf1"] <= 1
        assert {"label", "pred_label"} <= set(ra.clips.columns)
        assert ra.metrics["method"]["loss"] == "huber"
    pa, pb = a[a.sample_id == sid], b[b.sample_id == sid]
    np.testing.assert_array_equal(pa["frame"].to_numpy(), pb["frame"].to_numpy())
    np.testing.assert_array_equal(pa["pred"].to_numpy(), pb["pred"].to_numpy())
    # the targets (built from the annotations, for scoring only) did change
    assert not np.allclose(pa["target"].to_numpy(), pb["target"].to_numpy())


def test_random_split_and_unknown_models_are_refused(table):
    with pytest.raises(ConfigError, match="random_split is refused"):
        run_intensity(_cfg(**{"protocol.name": "random_split"}), None, progress=False, table=table)
    with pytest.raises(ConfigError, match="not available for intensity"):
        run_intensity(_cfg(**{"protocol.name": "holdout"}), None, progress=False, table=table)
    with pytest.raises(ConfigError, match="unknown intensity model"):
        run_intensity(_cfg(**{"model.name": "nope"}), None, progress=False, table=table)
    with pytest.raises(ConfigError, match="input kind 'clip3d'"):
        run_intensity(_cfg(**{"model.name": "c3d_small"}), None, progress=False, table=table)
    with pytest.raises(ConfigError, match="intensity.loss"):
        run_intensity(_cfg(**{"intensity.loss": "l3"}), None, progress=False, table=table)
    with pytest.raises(ConfigError, match="needs a neural model"):
        run_intensity(_cfg(**{"intensity.classification_weight": 0.5}), None, progress=False, table=table)


def test_classical_bundle_round_trip(table, tmp_path):
    cfg = _cfg()
    path = fit_intensity_bundle(cfg, tmp_path / "ridge.mekit", progress=False, table=table)
    from mekit.engine.bundle import load_bundle

    b = load_bundle(path)
    assert b.meta["task"] == "intensity" and b.meta["kind"] == "classical"
    # the annotations of the table to predict play no part in the predictions
    sid = table.sample_ids[0]
    df = predict_curves(path, table.subset([sid]), tmp_path / "pred")
    df2 = predict_curves(b, _altered(table, sid).subset([sid]), None)
    assert {"sample_id", "frame", "target", "pred"} <= set(df.columns)
    np.testing.assert_array_equal(df["pred"].to_numpy(), df2["pred"].to_numpy())
    assert (tmp_path / "pred" / "intensity_predictions.csv").is_file()
    assert list((tmp_path / "pred" / "curves").glob("*.png"))
    # fitted on all clips, the model follows the curve of a clip it was trained on
    assert np.corrcoef(df["target"], df["pred"])[0, 1] > 0.8


def test_joint_neural_bundle_round_trip(table, tmp_path):
    path = fit_intensity_bundle(_cfg(**JOINT), tmp_path / "net.mekit", progress=False, table=table)
    from mekit.engine.bundle import load_bundle

    b = load_bundle(path)
    assert b.meta["task"] == "intensity" and b.meta["kind"] == "neural"
    assert len(b.meta["model_classes"]) == table.df["label"].nunique()
    df = predict_curves(b, table.subset(table.sample_ids[:2]), None)
    again = predict_curves(path, table.subset(table.sample_ids[:2]), None)
    np.testing.assert_array_equal(df["pred"].to_numpy(), again["pred"].to_numpy())
    assert len(df) == sum(int(r.offset) - int(r.onset) + 1 for r in table.subset(table.sample_ids[:2]).df.itertuples())
    assert np.isfinite(df["pred"]).all()


@pytest.mark.slow
def test_cnn_lstm_gives_a_curve_per_frame(table):
    over = {"model.name": "cnn_lstm", "model.params": {"epochs": 1, "selection": "fixed", "batch_size": 4,
                                                        "model_params": {"hidden_size": 16}},
            "intensity.seq_len": 6, "intensity.image_size": 32, "intensity.loss": "mae", "output.plots": False,
            **KFOLD2}
    res = run_intensity(_cfg(**over), None, progress=False, table=table)
    assert len(res.predictions) == sum(int(r.offset) - int(r.onset) + 1 for r in table.df.itertuples())
    assert np.isfinite(res.predictions["pred"]).all()
    assert np.isfinite(res.metrics["mae"])


def test_per_clip_rating_source(table):
    res = run_intensity(_cfg(**{"intensity.source": "rating", "output.plots": False, **KFOLD2}), None,
                        progress=False, table=table)
    assert len(res.predictions) == len(table)
    assert {"mae", "rmse", "pearson", "spearman", "ccc", "icc"} <= set(res.metrics)
    with pytest.raises(ConfigError, match="per-clip targets"):
        run_intensity(_cfg(**{"intensity.source": "facs", "model.name": "ststnet"}), None, progress=False,
                      table=table)
