"""Intensity on still images: one rating per image (an image folder's annotations.csv), image
features + a classical regressor under subject-grouped folds, the same metrics as clips."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mekit.errors import ConfigError
from mekit.experiment import run_experiment as run_intensity

SUBJECTS = [f"S{i}" for i in range(1, 7)]
PER_SUBJECT = 8


def _disc(rating: float, background: int, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A grey image with a bright disc whose radius grows with the rating (1..5)."""
    yy, xx = np.mgrid[:size, :size]
    cy, cx = size / 2 + rng.uniform(-1, 1), size / 2 + rng.uniform(-1, 1)
    radius = 5 + 5 * (rating - 1)  # 5 px at 1, 25 px at 5
    img = np.full((size, size), background, np.float64) + rng.normal(0, 4, (size, size))
    img[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = 220
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def stills_root(tmp_path_factory) -> Path:
    """root/<class>/<subject>_<n>.png and annotations.csv (file, label, subject, intensity on 1..5)."""
    root = tmp_path_factory.mktemp("stills")
    rng = np.random.default_rng(0)
    rows = []
    for k, subject in enumerate(SUBJECTS):
        background = 40 + 10 * k  # each person looks a little different
        for n in range(PER_SUBJECT):
            rating = round(float(rng.uniform(1, 5)), 2)
            label = "happiness" if n % 2 else "surprise"
            rel = f"{label}/{subject}_{n:02d}.png"
            (root / label).mkdir(exist_ok=True)
            Image.fromarray(_disc(rating, background, rng)).save(root / rel)
            rows.append({"file": rel, "label": label, "subject": subject, "intensity": rating})
    with open(root / "annotations.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["file", "label", "subject", "intensity"])
        w.writeheader()
        w.writerows(rows)
    return root


def _cfg(root: Path, **over):
    raw = {"name": "stills_intensity", "task": "intensity",
           "data": {"loader": "image_folder", "root": str(root)},
           "preprocess": {"detector": "none", "landmarks": False, "workers": 1},
           "model": {"name": "ridge"},
           "intensity": {"source": "rating", "scale": [1, 5], "image_features": "hog",
                         "image_feature_params": {"size": 64}},
           "protocol": {"name": "loso"}}
    from conftest import nested_config

    return nested_config(raw, **over)


def test_ridge_on_hog_rates_held_out_subjects(stills_root, tmp_path):
    out = tmp_path / "run"
    res = run_intensity(_cfg(stills_root), out, progress=False)
    m = res.metrics
    assert m["spearman"] > 0.8, m["spearman"]
    for k in ("mae", "rmse", "pearson", "spearman", "ccc", "icc"):
        assert np.isfinite(m[k]), k
    assert m["unit"] == "image" and m["n_clips"] == 48 and m["n_subjects"] == 6 and m["n_folds"] == 6
    assert m["target"]["per_frame"] is False and m["method"]["features"].startswith("hog")
    # one row per image, each scored by the fold that held its subject out
    pred = pd.read_csv(out / "predictions.csv")
    assert list(pred.columns) == ["sample_id", "subject", "fold", "seed", "target", "pred"]
    assert len(pred) == 48 and pred["sample_id"].is_unique and pred["pred"].between(0, 1).all()
    assert (pred["fold"].str.split("/").str[-1] == pred["subject"].str.split("/").str[-1]).all()
    # the 1..5 rating rescaled to 0..1
    ann = pd.read_csv(stills_root / "annotations.csv")
    by_file = dict(zip(ann["file"].str.replace(".png", "", regex=False), (ann["intensity"] - 1) / 4))
    assert np.allclose(pred["target"], [by_file[s.split("/", 1)[1]] for s in pred["sample_id"]])
    for name in ("clips.csv", "metrics.json", "report.md", "config.resolved.yaml", "excluded.csv"):
        assert (out / name).is_file(), name
    assert not (out / "curves").exists()  # no per-frame curve for a still
    report = (out / "report.md").read_text()
    assert "per image." in report and "48 images" in report and "flow" not in report.split("| metric")[0]
    assert "peak within" not in report
    assert len(list((out / "folds" / "seed0").glob("*/predictions.csv"))) == 6


def test_group_kfold_lightgbm_and_resume(stills_root, tmp_path):
    pytest.importorskip("lightgbm")
    out = tmp_path / "run"
    cfg = _cfg(stills_root, **{"model.name": "lightgbm", "model.params": {"n_estimators": 50},
                               "protocol.name": "group_kfold", "protocol.params": {"k": 3}})
    first = run_intensity(cfg, out, progress=False)
    # 32 training images are too few for trees to learn much (LightGBM wants 20 rows a leaf): the
    # point here is that the booster runs on image features and resumes, not its score
    assert np.isfinite(first.metrics["mae"]) and first.predictions["pred"].between(0, 1).all()
    again = run_intensity(cfg, out, progress=False)
    assert again.metrics["resume"]["folds_resumed"] == 3
    assert again.predictions.equals(first.predictions)


def test_an_edited_rating_discards_saved_folds(stills_root, tmp_path):
    import shutil

    root = tmp_path / "stills"
    shutil.copytree(stills_root, root)
    out = tmp_path / "run"
    cfg = _cfg(root, **{"protocol.name": "group_kfold", "protocol.params": {"k": 2}})
    run_intensity(cfg, out, progress=False)
    ann = pd.read_csv(root / "annotations.csv")
    ann.loc[0, "intensity"] = 5.0 if ann.loc[0, "intensity"] < 3 else 1.0
    ann.to_csv(root / "annotations.csv", index=False)
    res = run_intensity(cfg, out, progress=False)
    assert res.metrics["resume"]["folds_resumed"] == 0 and "data" in res.metrics["resume"]["discarded"]


def test_stills_need_a_per_image_source_and_a_regressor(stills_root):
    with pytest.raises(ConfigError, match="still images have one frame"):
        run_intensity(_cfg(stills_root, **{"intensity.source": "timing"}), None, progress=False)
    with pytest.raises(ConfigError, match="image_feature_params"):
        run_intensity(_cfg(stills_root, **{"intensity.image_feature_params": {"nope": 1}}), None, progress=False)
    with pytest.raises(ConfigError, match="image_features"):
        _cfg(stills_root, **{"intensity.image_features": "nope"})
        run_intensity(_cfg(stills_root, **{"intensity.image_features": "nope"}), None, progress=False)


def test_metrics_json_is_plain(stills_root, tmp_path):
    res = run_intensity(_cfg(stills_root, **{"protocol.name": "group_kfold", "protocol.params": {"k": 2}}),
                        tmp_path / "r", progress=False)
    m = json.loads((res.out_dir / "metrics.json").read_text())
    assert m["selection_per_fold"] and all("chosen" in s for s in m["selection_per_fold"])


@pytest.mark.slow
def test_a_stills_bundle_rates_images_of_a_new_person(stills_root, tmp_path):
    """Trained on five people's rated images, a bundle rates the sixth person's images, read
    through ``mekit.predict`` from plain image files (no annotations.csv, so no rating)."""
    import shutil

    from mekit import predict
    from mekit.data import load_dataset
    from mekit.engine.bundle import load_bundle
    from mekit.tasks.intensity import fit_intensity_bundle

    table = load_dataset("image_folder", str(stills_root))
    held_out = table.df["subject"].astype(str).str.endswith("S6")
    path = fit_intensity_bundle(_cfg(stills_root), tmp_path / "stills.mekit", progress=False,
                                table=table.subset(~held_out))
    meta = load_bundle(path).meta
    assert meta["task"] == "intensity" and meta["unit"] == "image" and meta["n_images"] == 40
    new = tmp_path / "new"
    new.mkdir()
    ann = pd.read_csv(stills_root / "annotations.csv")
    six = ann[ann["subject"] == "S6"]
    for rel in six["file"]:
        shutil.copy(stills_root / rel, new / Path(rel).name)
    out = predict(path, new, out_csv=tmp_path / "preds.csv")
    assert len(out) == len(six) and out["pred"].between(0, 1).all() and out["target"].isna().all()
    assert (tmp_path / "preds" / "intensity_predictions.csv").is_file()
    rating = dict(zip(six["file"].map(lambda f: Path(f).stem), six["intensity"]))
    truth = [rating[sid.rsplit("/", 1)[-1]] for sid in out["sample_id"]]
    assert np.corrcoef(truth, out["pred"])[0, 1] > 0.8


@pytest.mark.slow
def test_a_cnn_regression_head_rates_held_out_subjects(stills_root, tmp_path):
    """The CNN side of stills: face crops into compact_cnn's regression head, early stopping on
    training subjects only, the same folds, metrics and report; a bundle of it rates new images."""
    over = {"model.name": "compact_cnn",
            "model.params": {"epochs": 12, "batch_size": 16, "lr": 0.003, "selection": "inner_val", "patience": 4},
            "intensity.image_size": 32, "protocol.name": "group_kfold", "protocol.params": {"k": 3}}
    res = run_intensity(_cfg(stills_root, **over), tmp_path / "run", progress=False)
    m = res.metrics
    assert m["unit"] == "image" and m["n_clips"] == 48 and m["method"]["features"].startswith("the aligned face")
    assert m["spearman"] > 0.6, m["spearman"]
    for sel in m["selection_per_fold"]:  # validation subjects come from the fold's training subjects
        held_out = set(res.predictions.loc[res.predictions["fold"] == sel["fold"], "subject"])
        assert set(sel["validation_subjects"]) <= set(res.predictions["subject"])  # same naming
        assert sel.get("validation_subjects") and not held_out & set(sel["validation_subjects"])
    assert not list((tmp_path / "run" / "folds").rglob("train_state.pt"))  # finished folds keep no state
    from mekit import predict
    from mekit.tasks.intensity import fit_intensity_bundle

    path = fit_intensity_bundle(_cfg(stills_root, **over), tmp_path / "cnn.mekit", progress=False)
    out = predict(path, stills_root / "surprise")
    assert len(out) == PER_SUBJECT * len(SUBJECTS) // 2 and out["pred"].between(0, 1).all()


def test_a_still_cnn_is_refused_on_clips():
    from mekit.data import load_dataset

    table = load_dataset("synthetic", None, None, n_subjects=3, clips_per_subject=2)
    cfg = _cfg(Path("."), **{"data.loader": "synthetic", "data.root": None, "model.name": "compact_cnn",
                             "intensity": {"source": "facs"}})
    with pytest.raises(ConfigError, match="rates still images, and the dataset holds clips"):
        run_intensity(cfg, None, table=table)


def test_within_each_class_the_ratings_are_scored_apart(stills_root, tmp_path):
    out = tmp_path / "run"
    m = run_intensity(_cfg(stills_root), out, progress=False).metrics
    assert sorted(m["per_class"]) == ["happy", "surprise"]
    assert sum(v["n"] for v in m["per_class"].values()) == 48
    for v in m["per_class"].values():
        assert v["spearman"] > 0.7, m["per_class"]
    clips = pd.read_csv(out / "clips.csv")
    assert set(clips["label"]) == {"happy", "surprise"}
    assert "| happy | 24 |" in (out / "report.md").read_text()


def test_per_class_metrics_tell_a_class_ranked_backwards():
    from mekit.tasks.intensity import per_class_metrics

    samples = pd.DataFrame({"sample_id": [f"s{i}" for i in range(8)],
                            "target": [0.1, 0.4, 0.7, 0.9, 0.1, 0.4, 0.7, 0.9],
                            "pred": [0.2, 0.3, 0.6, 0.8, 0.8, 0.6, 0.3, 0.2]})
    labels = pd.Series(["a"] * 4 + ["b"] * 4, index=samples["sample_id"])
    pc = per_class_metrics(samples, labels)
    assert pc["a"]["spearman"] == pytest.approx(1.0) and pc["b"]["spearman"] == pytest.approx(-1.0)
    assert per_class_metrics(samples, None) == {}
