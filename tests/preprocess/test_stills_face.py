"""Still images go through the face stage like clips: uncropped photographs are detected,
aligned and cropped to the face; corpora that ship face crops default to no detection; a crop
that runs past its image is warned about and recorded."""

from __future__ import annotations

import logging
import re

import cv2
import numpy as np
import pytest

from mekit.data.image_folder import load_image_folder
from mekit.data.synthetic import _identity, render_face, write_photo_folder
from mekit.errors import ConfigError
from mekit.features.extractors import hog_features
from mekit.features.handcrafted import hog_descriptor
from mekit.preprocess.face import OUTSIDE_WARN, FaceAlignment, detector_for
from mekit.preprocess.pipeline import PreprocessConfig, preprocess, stage_keys

SUBJECT = r"^(S\d+)_"


def _cfg(tmp_path, **kw):
    return {"workers": 1, "cache_dir": str(tmp_path / "cache"), "pairs": [], **kw}


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area


def _crop_box(al: FaceAlignment) -> tuple[float, float, float, float]:
    c = al.source_corners()
    return (*c.min(0), *c.max(0))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    boxes = write_photo_folder(root, classes=("happiness", "sadness"), n_subjects=3, seed=1)
    return root, boxes


def test_uncropped_stills_are_detected_and_cropped_to_the_face(photos, tmp_path):
    root, boxes = photos
    table = load_image_folder(root, subject_pattern=SUBJECT, dataset="photos")
    assert len(table) == len(boxes) == 6
    assert table.df["face_cropped"].tolist() == [False] * 6  # 320 px photographs are searched
    res = preprocess(table, _cfg(tmp_path), progress=False)
    assert not res.skipped
    for sid in table.sample_ids:
        rel = sid.split("/", 1)[1] + ".png"
        al = res.alignment(sid)
        assert res.meta[sid]["face_source"] in ("mediapipe", "haar", "mesh")
        crop = _crop_box(al)
        assert _iou(crop, boxes[rel]) > 0.5, (sid, crop, boxes[rel])
        # centred on the face: the crop's centre within a tenth of its side of the face's centre
        side = crop[2] - crop[0]
        fc = np.array([(boxes[rel][0] + boxes[rel][2]) / 2, (boxes[rel][1] + boxes[rel][3]) / 2])
        assert np.abs(al.source_corners().mean(0) - fc).max() < 0.1 * side
        assert res.meta[sid]["crop_outside"] == 0.0 and "warnings" not in res.meta[sid]

    # HOG of the aligned face, not of the whole picture
    fs = hog_features(table, _cfg(tmp_path), progress=False, size=64)
    assert fs.sample_ids == table.sample_ids and not fs.skipped
    for sid, path, x in zip(table.sample_ids, table.df["path"], fs.X):
        img = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        whole = cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32).mean(2) / 255.0
        assert not np.allclose(x, hog_descriptor(whole, (8, 8), (2, 2), 9), atol=1e-3), sid


def test_a_still_without_a_face_is_skipped_with_its_reason(photos, tmp_path):
    root, _ = photos
    noise = np.random.default_rng(0).integers(0, 255, (320, 320, 3), dtype=np.uint8)
    cv2.imwrite(str(root / "sadness" / "S09_0.png"), cv2.GaussianBlur(noise, (0, 0), 3))
    try:
        table = load_image_folder(root, subject_pattern=SUBJECT, dataset="photos")
        fs = hog_features(table, _cfg(tmp_path), progress=False, size=64)
    finally:
        (root / "sadness" / "S09_0.png").unlink()
    assert "photos/sadness/S09_0" not in fs.sample_ids
    assert re.search(r"no face", fs.skipped["photos/sadness/S09_0"])
    assert len(fs.sample_ids) == 6 and len(fs.X) == 6


def test_small_stills_are_taken_for_face_crops_and_get_no_detection(tmp_path):
    root = tmp_path / "crops"
    for j in range(2):
        face = render_face(_identity(np.random.default_rng([0, 1, j])), 48)
        (root / "happy").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "happy" / f"S0{j}_0.png"), np.clip(face, 0, 255).astype(np.uint8))
    table = load_image_folder(root, subject_pattern=SUBJECT, dataset="crops")
    assert table.df["face_cropped"].tolist() == [True, True]
    assert any("taken for face crops" in n for n in table.report.notes)
    row = table.df.iloc[0].to_dict()
    auto, none = PreprocessConfig(detector="auto"), PreprocessConfig(detector="none")
    assert stage_keys(row, auto) == stage_keys(row, none)  # 'auto' resolves to 'none' here
    assert stage_keys(row, PreprocessConfig(detector="mediapipe")) != stage_keys(row, none)
    res = preprocess(table, _cfg(tmp_path), progress=False)
    assert {m["face_source"] for m in res.meta.values()} == {"none"}
    fs = hog_features(table, _cfg(tmp_path), progress=False, size=32)
    assert fs.X.shape[0] == 2 and not fs.skipped

    # the folder-wide option overrides the size rule; a bad value is one clear error
    assert load_image_folder(root, dataset="crops", face_cropped="false").df["face_cropped"].tolist() == [False] * 2
    with pytest.raises(ConfigError, match="face_cropped is 'maybe'; expected true, false or auto"):
        load_image_folder(root, dataset="crops", face_cropped="maybe")


def test_detector_for_resolves_auto_only_for_marked_rows():
    assert detector_for("auto", True) == "none"
    assert detector_for("auto", np.bool_(True)) == "none"
    assert detector_for("auto", False) == "auto"
    assert detector_for("auto", None) == "auto"
    assert detector_for("auto", float("nan")) == "auto"
    assert detector_for("mediapipe", True) == "mediapipe"  # an explicit choice wins
    assert detector_for("none", False) == "none"


def test_ckplus48_defaults_to_no_detection(ckplus_root, tmp_path):
    table = load_image_folder(ckplus_root, subject_pattern=SUBJECT, dataset="ckplus")
    assert table.df["face_cropped"].eq(True).all()
    sub = table.subset(table.sample_ids[:3])
    res = preprocess(sub, _cfg(tmp_path), progress=False)
    assert {m["face_source"] for m in res.meta.values()} == {"none"}
    # the whole frame, only turned to level the eyes: its corners are all that leave the image
    assert all(m["crop_outside"] <= OUTSIDE_WARN and "warnings" not in m for m in res.meta.values())


def test_casme2_cropped_defaults_to_no_detection_and_keeps_its_cache_keys(casme2_root):
    from mekit.data import load_dataset

    table = load_dataset("casme2", casme2_root)
    assert table.df["face_cropped"].eq(True).all()
    cfg_none = PreprocessConfig.from_yaml("configs/casme2_3class_loso.yaml")
    assert cfg_none.detector == "none"
    for row in table.df.head(5).to_dict("records"):
        unmarked = {k: v for k, v in row.items() if k != "face_cropped"}
        # the shipped config's keys do not depend on the new column
        assert stage_keys(row, cfg_none) == stage_keys(unmarked, cfg_none)
        assert stage_keys(row, cfg_none.replace(detector="auto")) == stage_keys(row, cfg_none)


def test_outside_fraction_of_a_crop():
    # unit square -> frame pixels [-0.5, 99.5]: exactly the 100x100 frame
    inside = FaceAlignment(matrix=((0.01, 0, 0.005), (0, 0.01, 0.005)), landmarks=None, source="none",
                           frame_shape=(100, 100))
    assert inside.outside_fraction() == 0.0
    # a 100 px box centred on the frame's top-left corner: three quarters outside
    corner = FaceAlignment(matrix=((0.01, 0, 0.505), (0, 0.01, 0.505)), landmarks=None, source="haar",
                           frame_shape=(100, 100))
    assert corner.outside_fraction() == pytest.approx(0.75, abs=0.02)
    assert FaceAlignment(matrix=corner.matrix, landmarks=None, source="haar").outside_fraction() == 0.0


def test_a_crop_past_the_image_is_warned_about_and_recorded(tmp_path, caplog):
    from mekit.data.synthetic import render_photo

    root = tmp_path / "edge"
    (root / "happiness").mkdir(parents=True)
    idn = _identity(np.random.default_rng([0, 1, 0]))
    img, _ = render_photo(idn, canvas=320, face_size=150, position=(0, 0))
    cv2.imwrite(str(root / "happiness" / "S01_0.png"), img)
    table = load_image_folder(root, subject_pattern=SUBJECT, dataset="edge")
    with caplog.at_level(logging.WARNING, logger="mekit.preprocess.pipeline"):
        res = preprocess(table, _cfg(tmp_path, margin=1.0), progress=False)
    m = res.meta["edge/happiness/S01_0"]
    assert m["crop_outside"] > OUTSIDE_WARN
    assert m["warnings"] and "runs past the frame" in m["warnings"][0]
    lines = [r.getMessage() for r in caplog.records if "runs past the frame" in r.getMessage()]
    assert len(lines) == 1 and "edge/happiness/S01_0" in lines[0]

    # served from the cache, the sample is still flagged
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mekit.preprocess.pipeline"):
        again = preprocess(table, _cfg(tmp_path, margin=1.0), progress=False)
    assert again.n_cached == 1 and again.meta["edge/happiness/S01_0"]["warnings"]
    assert any("edge/happiness/S01_0" in r.getMessage() for r in caplog.records)
    # the default margin keeps the same face inside the image
    ok = preprocess(table, _cfg(tmp_path), progress=False)
    assert ok.meta["edge/happiness/S01_0"]["crop_outside"] <= OUTSIDE_WARN
