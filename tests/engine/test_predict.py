"""Whole-dataset training into a bundle, input tables for prediction, and prediction itself."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mekit.config import load_config
from mekit.engine.bundle import load_bundle, save_bundle
from mekit.engine.predict import fit_full, frame_template, input_table, predict, train_bundle
from mekit.errors import ConfigError, DataError

SYNTH = {"n_subjects": 4, "clips_per_subject": 3, "size": 64}
PRE = {"detector": "none", "size": 64, "landmarks": False, "workers": 1}


def _cfg(**over):
    base = {"name": "tiny", "data.loader": "synthetic", "data.options": SYNTH, "preprocess": PRE,
            "features.name": "hoof", "features.params": {"grid": 3, "bins": 8}, "model.name": "logreg",
            "model.params": {"grid": {"C": [0.1, 1.0]}}}  # a small inner-CV grid keeps the test fast
    return load_config(overrides={**base, **over})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A classical (hoof + logreg) model fitted on the whole tiny corpus, and its bundle."""
    with pytest.MonkeyPatch.context() as mp:  # the session cache of conftest, set before any test runs
        mp.setenv("MEKIT_CACHE", str(tmp_path_factory.getbasetemp() / "mekit-cache"))
        fit = fit_full(_cfg(), progress=False)
        path = save_bundle(tmp_path_factory.mktemp("bundle") / "c.mekit", fit.model, _cfg(), fit.classes, fit.meta)
    return fit, path


# -- input tables ---------------------------------------------------------------------------
def test_frame_template():
    assert frame_template([f"img{n}.jpg" for n in (9, 10, 11)]) == ("img{frame}.jpg", [9, 10, 11])
    assert frame_template([f"reg_{n:03d}.png" for n in (2, 1, 3)]) == ("reg_{frame:03d}.png", [1, 2, 3])
    assert frame_template(["S010_004_00000017.png", "S011_001_00000016.png"]) is None  # two people
    assert frame_template(["a.jpg", "b.jpg"]) is None
    assert frame_template(["img1.jpg"]) is None
    assert frame_template(["img1.jpg", "img01.jpg"]) is None  # the same number twice


def _frames(tmp_path: Path, table, sid: str, name: str) -> Path:
    src = Path(table.row(sid)["path"])
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def test_input_tables(tmp_path, trained):
    fit, _ = trained
    clip = _frames(tmp_path, fit.table, fit.table.sample_ids[0], "clipA")
    nums = sorted(int(p.stem[3:]) for p in clip.glob("img*.jpg"))
    t = input_table(clip)
    r = t.df.iloc[0]
    assert (r["sample_id"], r["subject"], r["dataset"], r["media"]) == ("input/clipA", "input/clipA", "input", "frames")
    assert (r["onset"], r["offset"], r["frame_template"]) == (nums[0], nums[-1], "img{frame}.jpg")
    assert pd.isna(r["apex"])  # left for the pipeline to spot

    folder = tmp_path / "faces"
    folder.mkdir()
    for i, name in enumerate(["anna.jpg", "ben.jpg", "cleo.png"]):
        shutil.copy(clip / f"img{nums[i]}.jpg", folder / name)
    t = input_table(folder)
    assert t.sample_ids == ["input/anna", "input/ben", "input/cleo"] and set(t.df["media"]) == {"image"}
    assert input_table(folder / "ben.jpg").sample_ids == ["input/ben"]
    assert input_table(clip, kind="images").df["media"].eq("image").all()  # the guess can be overridden

    (tmp_path / "ds" / "happy").mkdir(parents=True)
    with pytest.raises(DataError, match="sub-folders.*--loader"):
        input_table(tmp_path / "ds")
    with pytest.raises(DataError, match="does not exist") as e:
        input_table(tmp_path / "nope.jpg")
    assert "nope.jpg" in str(e.value)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="unrecognised file type"):
        input_table(tmp_path / "notes.txt")
    with pytest.raises(DataError, match="not one clip"):
        input_table(folder, kind="frames")
    with pytest.raises(ConfigError, match="loader options"):
        input_table(folder, n_subjects=3)


# -- training and prediction ----------------------------------------------------------------
def test_bundle_records_the_pipeline(trained):
    fit, path = trained
    b = load_bundle(path)
    m = b.meta
    assert m["task"] == "classification" and m["kind"] == "classical"
    assert b.classes == fit.classes == sorted(fit.table.classes)
    assert m["label_scheme"]["classes"] == fit.classes
    assert m["preprocess"]["size"] == 64 and m["preprocess"]["flow"] == "tvl1" and "workers" not in m["preprocess"]
    assert m["features"] == {"kind": "features", "name": "hoof", "params": {"grid": 3, "bins": 8}, "shape": [81]}
    assert m["training"]["n_samples"] == 12 and m["training"]["n_subjects"] == 4
    assert "subject-grouped" in m["training"]["selection"]["method"]
    assert "torch" in m["versions"] and m["config"]["model"]["name"] == "logreg"


def test_reloaded_bundle_predicts_like_the_fitted_model(trained, tmp_path):
    fit, path = trained
    out = tmp_path / "preds.csv"
    df = predict(path, loader="synthetic", out_csv=out, **SYNTH)
    assert list(df.columns) == ["sample_id", "pred", *[f"p_{c}" for c in fit.classes], "true"]
    proba = fit.model.predict_proba(fit.inputs.take(df["sample_id"]))
    order = [list(fit.model.classes_).index(c) for c in fit.classes]
    np.testing.assert_allclose(df[[f"p_{c}" for c in fit.classes]].to_numpy(), proba[:, order], atol=1e-12)
    np.testing.assert_allclose(df.filter(like="p_").sum(axis=1), 1.0, atol=1e-6)  # float32 features
    labels = dict(zip(fit.table.df["sample_id"], fit.table.df["label"]))
    assert df["true"].tolist() == [labels[s] for s in df["sample_id"]]
    assert any("training data" in n for n in df.attrs["notes"])  # predicted on its own training set
    disk = pd.read_csv(out)
    assert disk["sample_id"].tolist() == df["sample_id"].tolist() and disk["pred"].tolist() == df["pred"].tolist()


def test_label_scheme_maps_the_true_labels(tmp_path):
    cfg = _cfg(**{"data.label_scheme": "megc_3class"})
    path = train_bundle(cfg, tmp_path / "m.mekit", progress=False)
    b = load_bundle(path)
    assert b.classes == ["negative", "positive", "surprise"] and b.meta["label_scheme"]["name"] == "megc_3class"
    df = predict(path, loader="synthetic", **SYNTH)  # every clip, including those the scheme drops
    assert len(df) == 12
    assert set(df["true"].dropna()) <= {"negative", "positive", "surprise"} and df["true"].isna().sum() == 3
    assert set(df["pred"]) <= set(b.classes)


def test_one_bad_image_is_skipped_and_named(trained, tmp_path):
    fit, path = trained
    clip = Path(fit.table.row(fit.table.sample_ids[1])["path"])
    folder = tmp_path / "faces"
    folder.mkdir()
    shutil.copy(next(clip.glob("*.jpg")), folder / "good.jpg")
    (folder / "broken.png").write_bytes(b"not a png")
    df = predict(path, folder)
    assert df["sample_id"].tolist() == ["input/good"]
    assert "broken.png" in df.attrs["skipped"]["input/broken"]
    assert any("still image" in n for n in df.attrs["notes"])  # hoof describes motion
    with pytest.raises(DataError, match="broken.png"):
        predict(path, folder / "broken.png")


def test_video_input(trained, tmp_path):
    av = pytest.importorskip("av")
    fit, path = trained
    row = fit.table.row(fit.table.sample_ids[2])
    import cv2

    video = tmp_path / "vids" / "clip.mp4"
    video.parent.mkdir()
    with av.open(str(video), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        for n in range(int(row["onset"]), int(row["offset"]) + 1):
            img = cv2.cvtColor(cv2.imread(str(fit.table.frame_path(row, n))), cv2.COLOR_BGR2RGB)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    df = predict(path, video)
    assert df["sample_id"].tolist() == ["input/clip"]
    assert abs(df.filter(like="p_").to_numpy().sum() - 1.0) < 1e-6
    assert predict(path, video.parent)["sample_id"].tolist() == ["input/clip"]  # a folder of videos


def test_intensity_bundles_are_delegated(trained, tmp_path, monkeypatch):
    import types

    fit, _ = trained
    path = save_bundle(tmp_path / "i.mekit", fit.model, _cfg(), fit.classes, {**fit.meta, "task": "intensity"})
    image = tmp_path / "face.jpg"
    shutil.copy(next(Path(fit.table.df["path"][0]).glob("*.jpg")), image)
    calls = []
    fake = types.ModuleType("mekit.tasks.intensity")
    fake.predict_curves = lambda bundle, table, out_dir: calls.append((bundle, table, out_dir)) or "curves"
    monkeypatch.setitem(sys.modules, "mekit.tasks.intensity", fake)
    assert predict(path, image, out_csv=tmp_path / "preds.csv") == "curves"
    bundle, table, out_dir = calls[0]
    assert bundle.meta["task"] == "intensity" and table.sample_ids == ["input/face"] and out_dir == tmp_path / "preds"
    monkeypatch.setitem(sys.modules, "mekit.tasks.intensity", None)  # not installed
    with pytest.raises(ConfigError, match="intensity curves.*not available"):
        predict(path, image)


def test_intensity_configs_go_to_the_intensity_trainer(tmp_path, monkeypatch):
    import types

    with pytest.raises(ConfigError, match="intensity"):
        fit_full(_cfg(task="intensity"), progress=False)  # never trained as a classifier
    calls = []
    fake = types.ModuleType("mekit.tasks.intensity")
    fake.fit_intensity_bundle = lambda config, path, progress: calls.append((config.task, path)) or path
    monkeypatch.setitem(sys.modules, "mekit.tasks.intensity", fake)
    assert train_bundle(_cfg(task="intensity"), tmp_path / "x.mekit", progress=False) == tmp_path / "x.mekit"
    assert calls == [("intensity", tmp_path / "x.mekit")]


def test_a_long_recording_is_pointed_to_analyze(trained, tmp_path):
    """A video longer than any expression would get one label for everything in it: refused, with
    the command that spots and labels each expression."""
    av = pytest.importorskip("av")
    _, path = trained
    video = tmp_path / "interview.mp4"
    with av.open(str(video), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width = s.height = 32
        s.pix_fmt = "yuv420p"
        for n in range(60):  # 6 s at 10 fps
            img = np.full((32, 32, 3), n * 4 % 255, np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    with pytest.raises(DataError, match=r"interview.mp4: is a recording of 6.0 s.*mekit analyze .*--model BUNDLE"):
        predict(path, video)
