"""The synthetic corpus: layout, table, determinism, timing, imbalance, cache, learnability."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mekit.data import load_dataset
from mekit.data import synthetic as syn
from mekit.data.schema import COLUMNS, au_intensity
from mekit.data.synthetic import (ACTIONS, MANIFEST, SyntheticParams, action_field, generate_synthetic,
                                  intensity_curve, load_synthetic)
from mekit.errors import ConfigError, DataError

# A tiny corpus: 4 subjects x 3 clips of 64 px, generated in well under a second.
TINY = dict(n_subjects=4, clips_per_subject=3, size=64, frames=(12, 16))
# Still and clean: no noise, no head motion, no brightness change, lossless frames.
CLEAN = dict(noise=0.0, head_motion=0.0, head_rotation=0.0, brightness=0.0, ext="png")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn") / "tiny"
    return root, generate_synthetic(root, **TINY)


def _frames(table, row, grey=True):
    flag = cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR
    return [cv2.imread(str(table.frame_path(row, f)), flag)
            for f in range(int(row["onset"]), int(row["offset"]) + 1)]


# -- layout and table -------------------------------------------------------------------------
def test_layout_is_casme2_like(tiny):
    root, table = tiny
    assert len(table) == 12
    assert table.subjects == [f"synthetic/sub{i:02d}" for i in range(1, 5)]
    assert sorted(p.name for p in root.iterdir()) == sorted([MANIFEST, "sub01", "sub02", "sub03", "sub04"])
    for _, r in table.df.iterrows():
        folder = root / r["subject"].split("/")[1] / r["clip"]
        assert Path(r["path"]) == folder.resolve()
        names = sorted(p.name for p in folder.iterdir())
        expected = sorted(f"img{n}.jpg" for n in range(r["onset"], r["offset"] + 1))
        assert names == expected
        assert r["onset"] > 0  # frame numbers start at an arbitrary onset, as in the real corpora
        assert r["onset"] < r["apex"] < r["offset"]
        assert 12 <= r["offset"] - r["onset"] + 1 <= 16
        img = cv2.imread(str(table.frame_path(r, r["apex"])))
        assert img.shape == (64, 64, 3)
    assert set(table.df["clip"]) == {"clip01", "clip02", "clip03"}


def test_table_columns_and_ground_truth(tiny):
    _, table = tiny
    df = table.df
    assert list(df.columns[:len(COLUMNS)]) == list(COLUMNS)
    assert {"intensity_curve", "actions", "amplitude_px"} <= set(df.columns)
    assert (df["media"] == "frames").all() and (df["frame_template"] == "img{frame}.jpg").all()
    assert (df["fps"] == 200.0).all() and (df["dataset"] == "synthetic").all()
    assert df["sample_id"].str.fullmatch(r"synthetic/sub\d\d/clip\d\d").all()
    assert set(df["label"]) <= {"negative", "positive", "surprise", "others"}
    assert (df["label"] == df["emotion"]).all()
    lo, hi = SyntheticParams().amplitude
    for _, r in df.iterrows():
        curve = np.asarray(r["intensity_curve"])
        assert len(curve) == r["offset"] - r["onset"] + 1
        assert curve[0] == 0.0 and curve[-1] == 0.0 and curve[r["apex"] - r["onset"]] == 1.0
        assert int(np.argmax(curve)) == r["apex"] - r["onset"]
        assert lo / hi <= r["intensity"] <= 1.0
        assert r["intensity"] == pytest.approx(r["amplitude_px"] / hi)
        # The AUs are those of the actions, with an intensity letter that brackets the intensity.
        aus = set(r["action_units"])
        stripped = {a.rstrip("ABCDE") for a in aus}
        assert stripped == {au for act in r["actions"] for au in ACTIONS[act].aus}
        primary = {f"{au}" for au in ACTIONS[r["actions"][0]].aus}
        primary_tokens = [a for a in aus if a.rstrip("ABCDE") in primary]
        assert au_intensity(primary_tokens) - 0.2 < r["intensity"] <= au_intensity(primary_tokens) + 1e-9


def test_class_recipes_mimic_their_aus(tiny):
    _, table = tiny
    for _, r in table.df.iterrows():
        aus = {a.rstrip("ABCDE") for a in r["action_units"]}
        if r["label"] == "positive":
            assert "12" in aus
        elif r["label"] == "negative":
            assert "4" in aus or "15" in aus
        elif r["label"] == "surprise":
            assert {"1", "2"} <= aus


# -- determinism --------------------------------------------------------------------------------
def _pixels(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("img*"))}


def test_same_seed_same_pixels_other_seed_other_pixels(tmp_path):
    small = dict(n_subjects=2, clips_per_subject=2, size=48, frames=(8, 10))
    a = generate_synthetic(tmp_path / "a", seed=3, **small)
    b = generate_synthetic(tmp_path / "b", seed=3, **small)
    c = generate_synthetic(tmp_path / "c", seed=4, **small)
    pa, pb = _pixels(tmp_path / "a"), _pixels(tmp_path / "b")
    assert pa == pb and len(pa) >= 4 * 8
    cols = ["onset", "apex", "offset", "label", "action_units", "intensity"]
    assert a.df[cols].equals(b.df[cols])
    assert list(a.df["intensity_curve"]) == list(b.df["intensity_curve"])
    # Another seed: other faces, timings and pixels.
    assert _pixels(tmp_path / "c") != pa
    assert list(c.df["onset"]) != list(a.df["onset"])
    first = lambda t, root: cv2.imread(str(t.frame_path(t.df.iloc[0], t.df.iloc[0]["onset"])))  # noqa: E731
    assert np.abs(first(a, tmp_path / "a").astype(int) - first(c, tmp_path / "c").astype(int)).mean() > 5


def test_subjects_differ_in_identity(tiny):
    _, table = tiny
    onsets = [cv2.imread(str(table.frame_path(r, r["onset"])), cv2.IMREAD_GRAYSCALE).astype(float)
              for _, r in table.df.iterrows()]
    subj = table.df["subject"].tolist()
    same = [np.abs(onsets[i] - onsets[j]).mean() for i in range(len(subj)) for j in range(i + 1, len(subj))
            if subj[i] == subj[j]]
    other = [np.abs(onsets[i] - onsets[j]).mean() for i in range(len(subj)) for j in range(i + 1, len(subj))
             if subj[i] != subj[j]]
    # Clips of one subject share a face (only framing, lighting and noise vary); subjects differ.
    assert np.mean(other) > 2 * np.mean(same)


# -- motion and timing --------------------------------------------------------------------------
def test_intensity_curve_shape():
    c = intensity_curve(41, 15)
    assert c[0] == 0 and c[15] == 1 and c[-1] == 0
    assert np.all(np.diff(c[:16]) > 0) and np.all(np.diff(c[15:]) < 0)
    assert abs(c[1] - c[0]) < 0.02 and abs(c[15] - c[14]) < 0.02  # smooth: slow start, slow apex
    with pytest.raises(ConfigError):
        intensity_curve(10, 0)


@pytest.mark.parametrize("action, region", [("brow_raise", "upper"), ("brow_lower", "upper"),
                                            ("eye_narrow", "upper"), ("lip_corner_pull", "lower"),
                                            ("lip_corner_depress", "lower"), ("nose_wrinkle", "middle")])
def test_action_fields_are_local_and_unit(action, region):
    idn = syn._identity(np.random.default_rng(0))
    f = action_field(action, idn, 128)
    mag = np.linalg.norm(f, axis=-1)
    assert mag.max() == pytest.approx(1.0, abs=1e-5)
    y, _ = np.unravel_index(np.argmax(mag), mag.shape)
    bands = {"upper": (20, 64), "middle": (55, 90), "lower": (70, 110)}
    assert bands[region][0] <= y <= bands[region][1]
    assert (mag > 0.1).mean() < 0.15  # local: most of the face does not move
    # Direction: brows up for a raise, down for a lowering; lip corners up for a pull.
    dy = f[..., 1][mag > 0.5].mean()
    expected_sign = {"brow_raise": -1, "brow_lower": 1, "lip_corner_pull": -1, "lip_corner_depress": 1,
                     "nose_wrinkle": -1}
    if action in expected_sign:
        assert np.sign(dy) == expected_sign[action]


def test_unilateral_actions_move_one_side():
    idn = syn._identity(np.random.default_rng(1))
    left = np.linalg.norm(action_field("lip_corner_pull_left", idn, 128), axis=-1)
    right = np.linalg.norm(action_field("lip_corner_pull_right", idn, 128), axis=-1)
    # The subject's left is the image's right half.
    assert left[:, 64:].max() > 0.99 and left[:, :50].max() < 0.05
    assert right[:, :64].max() > 0.99 and right[:, 78:].max() < 0.05


def test_difference_to_onset_peaks_at_apex_and_follows_curve(tmp_path):
    table = generate_synthetic(tmp_path / "clean", n_subjects=3, clips_per_subject=4, size=96,
                               frames=(16, 24), **CLEAN)
    for _, r in table.df.iterrows():
        fr = [f.astype(np.float32) for f in _frames(table, r)]
        d = np.array([np.abs(f - fr[0]).mean() for f in fr])
        assert abs(int(np.argmax(d)) - (r["apex"] - r["onset"])) <= 1, r["sample_id"]
        assert np.corrcoef(d, r["intensity_curve"])[0, 1] > 0.97, r["sample_id"]
        assert d[0] == 0.0 and d[-1] < 0.2 * d.max()  # back to neutral at the offset


@pytest.mark.slow
def test_local_displacement_peaks_at_apex_with_noise_and_head_motion(tmp_path):
    # At the default noise and head motion the frame difference also sees the head drift; the
    # local displacement (flow minus its median, i.e. minus the rigid motion) still peaks at the apex.
    table = generate_synthetic(tmp_path / "noisy", n_subjects=3, clips_per_subject=4, frames=(20, 30))
    errors = []
    for _, r in table.df.iterrows():
        fr = _frames(table, r)
        strength = []
        for f in fr:
            flow = cv2.calcOpticalFlowFarneback(fr[0], f, None, 0.5, 3, 15, 3, 5, 1.2, 0)
            flow -= np.median(flow.reshape(-1, 2), axis=0)
            strength.append(np.percentile(np.linalg.norm(flow, axis=-1), 99))
        errors.append(int(np.argmax(strength)) - (r["apex"] - r["onset"]))
    errors = np.abs(errors)
    assert np.mean(errors <= 3) >= 0.8, errors


def test_head_motion_is_small(tmp_path):
    table = generate_synthetic(tmp_path / "still", n_subjects=2, clips_per_subject=3, frames=(20, 20),
                               noise=0.0, brightness=0.0, amplitude=(1e-6, 1e-6), ext="png")
    for _, r in table.df.iterrows():
        fr = _frames(table, r)
        shifts = [cv2.phaseCorrelate(np.float32(fr[0]), np.float32(f))[0] for f in fr]
        assert max(np.hypot(*s) for s in shifts) <= 1.0
        assert max(np.hypot(*s) for s in shifts) > 0.02  # but there is some


# -- imbalance ---------------------------------------------------------------------------------
def test_default_imbalance_majority_three_times_minority(tmp_path):
    table = generate_synthetic(tmp_path / "c", size=32, frames=(3, 3))
    counts = table.class_counts()
    assert sum(counts.values()) == 12 * 11
    assert counts == {"negative": 55, "others": 32, "positive": 26, "surprise": 19}
    assert 2.5 <= max(counts.values()) / min(counts.values()) <= 3.5


def test_custom_classes_and_weights(tmp_path):
    table = generate_synthetic(tmp_path / "c", n_subjects=2, clips_per_subject=4, size=32, frames=(3, 3),
                               classes={"smile": [["lip_corner_pull"]], "frown": [["brow_lower"]]},
                               class_weights={"smile": 3, "frown": 1})
    assert table.class_counts() == {"frown": 2, "smile": 6}
    smile = table.df[table.df["label"] == "smile"]
    assert all(a == ("lip_corner_pull",) for a in smile["actions"])
    sub = generate_synthetic(tmp_path / "d", n_subjects=1, clips_per_subject=4, size=32, frames=(3, 3),
                             classes=["positive", "surprise"])
    assert set(sub.classes) <= {"positive", "surprise"}


@pytest.mark.parametrize("bad", [dict(classes={"x": [["smirk"]]}), dict(size=8), dict(frames=(2, 5)),
                                 dict(class_weights={"negative": 1.0}), dict(amplitude=(2.0, 1.0)),
                                 dict(colour_depth=8), dict(classes=["joy"]), dict(ext="gif")])
def test_bad_parameters_raise_config_error(tmp_path, bad):
    with pytest.raises(ConfigError):
        generate_synthetic(tmp_path / "c", **bad)
    assert not (tmp_path / "c").exists()


# -- cache and loading --------------------------------------------------------------------------
SMALL = dict(n_subjects=2, clips_per_subject=2, size=48, frames=(8, 10))


def test_cache_generates_once_and_reuses(monkeypatch):
    calls = []
    real = syn._generate_into
    monkeypatch.setattr(syn, "_generate_into", lambda *a, **k: calls.append(1) or real(*a, **k))
    from mekit.paths import cache_dir

    t1 = load_synthetic(seed=11, **SMALL)
    t2 = load_synthetic(seed=11, **SMALL)
    assert calls == [1]
    assert t1.df.astype(str).equals(t2.df.astype(str))
    expected = cache_dir() / "synthetic" / SyntheticParams.make(seed=11, **SMALL).digest()
    assert Path(t1.df["path"][0]).is_relative_to(expected.resolve())
    assert not [p for p in expected.parent.iterdir() if ".tmp-" in p.name]
    # Other parameters, another corpus; equal values in other types, the same corpus.
    load_synthetic(seed=12, **SMALL)
    assert calls == [1, 1]
    load_synthetic(seed=11, fps=200, **{**SMALL, "frames": [8, 10]})
    assert calls == [1, 1]


def test_interrupted_generation_leaves_nothing(monkeypatch, tmp_path):
    n = []

    def dying(folder, frames, onset, params):
        n.append(1)
        if len(n) == 2:
            raise KeyboardInterrupt
        return real(folder, frames, onset, params)

    real = syn._write_frames
    monkeypatch.setattr(syn, "_write_frames", dying)
    with pytest.raises(KeyboardInterrupt):
        load_synthetic(tmp_path / "corpus", **SMALL)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(syn, "_write_frames", real)
    assert len(load_synthetic(tmp_path / "corpus", **SMALL)) == 4


def test_cache_folder_without_manifest_is_regenerated():
    from mekit.paths import cache_dir

    target = cache_dir() / "synthetic" / SyntheticParams.make(seed=21, **SMALL).digest()
    (target / "sub01" / "clip01").mkdir(parents=True)
    (target / "sub01" / "clip01" / "img1.jpg").write_bytes(b"half")
    table = load_synthetic(seed=21, **SMALL)
    assert len(table) == 4 and (target / MANIFEST).is_file()
    stale = target / "sub01" / "clip01" / "img1.jpg"
    assert not stale.exists() or stale.read_bytes() != b"half"


def test_root_loading_checks_parameters_and_reports_missing_clips(tmp_path):
    root = tmp_path / "corpus"
    made = load_synthetic(root, **SMALL)
    again = load_synthetic(root)  # parameters read from the manifest
    assert again.sample_ids == made.sample_ids
    with pytest.raises(DataError, match="seed"):
        load_synthetic(root, seed=5, **SMALL)
    # A removed clip is reported and excluded; the rest loads.
    victim = made.df.iloc[1]
    for p in Path(victim["path"]).iterdir():
        p.unlink()
    partial = load_synthetic(root)
    assert len(partial) == 3 and victim["sample_id"] not in partial.sample_ids
    assert partial.report.missing == [victim["sample_id"]]
    # A folder that holds something else is never overwritten.
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="synthetic.json"):
        load_synthetic(other, **SMALL)
    with pytest.raises(DataError, match="not empty"):
        generate_synthetic(other, **SMALL)
    assert (other / "notes.txt").read_text() == "mine"


def test_manifest_records_parameters(tiny):
    root, table = tiny
    m = json.loads((root / MANIFEST).read_text())
    assert m["version"] == syn.GENERATOR_VERSION
    assert SyntheticParams.from_dict(m["params"]) == SyntheticParams.make(**TINY)
    assert len(m["clips"]) == len(table)


def test_registered_loader_and_label_scheme_keep_extra_columns(tmp_path):
    load_synthetic(tmp_path / "c", **SMALL, classes=["negative", "positive", "surprise", "others"])
    table = load_dataset("synthetic", tmp_path / "c", label_scheme="megc_3class")
    assert set(table.classes) <= {"negative", "positive", "surprise"}
    assert "others" not in set(table.df["label"])
    assert all(isinstance(c, tuple) and len(c) >= 8 for c in table.df["intensity_curve"])


# -- faces ----------------------------------------------------------------------------------------
def test_haar_cascade_finds_the_faces(tmp_path):
    table = generate_synthetic(tmp_path / "c", n_subjects=6, clips_per_subject=1, frames=(3, 3))
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    found = 0
    for _, r in table.df.iterrows():
        grey = cv2.imread(str(table.frame_path(r, r["apex"])), cv2.IMREAD_GRAYSCALE)
        boxes = cascade.detectMultiScale(grey, 1.1, 3, minSize=(32, 32))
        if len(boxes):
            x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
            assert 30 <= x + w / 2 <= 98 and 30 <= y + h / 2 <= 98  # on the face, not the background
            found += 1
    assert found >= 5


@pytest.mark.slow
def test_mediapipe_finds_the_faces(tmp_path):
    try:
        import mediapipe as mp

        detector = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)
    except (ImportError, AttributeError) as e:
        pytest.skip(f"mediapipe face detection unavailable: {e}")
    table = generate_synthetic(tmp_path / "c", n_subjects=6, clips_per_subject=1, frames=(3, 3))
    found = 0
    for _, r in table.df.iterrows():
        bgr = cv2.imread(str(table.frame_path(r, r["apex"])))
        found += bool(detector.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).detections)
    detector.close()
    assert found >= 5


# -- learnability -------------------------------------------------------------------------------
@pytest.mark.slow
def test_default_corpus_is_learnable_but_not_trivial():
    """Farneback flow onset->apex pooled on an 8x8 grid + logistic regression, subject-grouped CV."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    table = load_synthetic()
    assert len(table) == 132 and len(table.subjects) == 12
    feats = []
    for _, r in table.df.iterrows():
        onset = cv2.imread(str(table.frame_path(r, r["onset"])), cv2.IMREAD_GRAYSCALE)
        apex = cv2.imread(str(table.frame_path(r, r["apex"])), cv2.IMREAD_GRAYSCALE)
        flow = cv2.calcOpticalFlowFarneback(onset, apex, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        feats.append(flow.reshape(8, 16, 8, 16, 2).mean(axis=(1, 3)).ravel())
    y = table.df["label"].to_numpy(dtype=object)
    groups = table.df["subject"].to_numpy(dtype=object)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    pred = cross_val_predict(clf, np.asarray(feats), y, groups=groups, cv=GroupKFold(n_splits=4))
    f1 = f1_score(y, pred, average="macro")
    assert 0.5 < f1 < 0.97, f1


def test_a_killed_generation_leaves_no_stale_temporary_folder(monkeypatch):
    from mekit.paths import cache_dir

    expected = cache_dir() / "synthetic" / SyntheticParams.make(seed=13, **SMALL).digest()
    expected.parent.mkdir(parents=True, exist_ok=True)
    stale = expected.parent / f".{expected.name}.tmp-killed"
    (stale / "sub01").mkdir(parents=True)
    (stale / "sub01" / "half.png").write_bytes(b"x")
    load_synthetic(seed=13, **SMALL)
    assert not stale.exists()
    assert not [p for p in expected.parent.iterdir() if ".tmp-" in p.name]
