"""The image-folder loader on CK+48 (where present) and on tiny fake Kaggle-style folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mekit.data import load_dataset
from mekit.data.image_folder import load_image_folder
from mekit.errors import ConfigError, DataError

CK_PATTERN = r"^(S\d+)_"


def png(path: Path, seed: int = 0, size: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


def make_tree(root: Path, files: list[str]) -> Path:
    for i, f in enumerate(files):
        png(root / f, seed=i)
    return root


# -- real data ----------------------------------------------------------------------------------
def test_ckplus_counts_classes_and_subjects(ckplus_root):
    t = load_image_folder(ckplus_root, subject_pattern=CK_PATTERN, dataset="ckplus")
    assert len(t) == 981
    assert t.class_counts() == {"anger": 135, "contempt": 54, "disgust": 177, "fear": 75, "happy": 207,
                                "sad": 84, "surprise": 249}
    assert t.df["subject"].nunique() == 118
    assert t.report.label_mapping["sadness"] == "sad"
    assert t.report.problems == [] and t.report.missing == []
    row = t.row("ckplus/anger/S010_004_00000017")
    assert row["subject"] == "ckplus/S010"
    assert row["emotion"] == "anger" and row["clip"] == "S010_004_00000017.png"
    assert row["media"] == "image" and Path(row["path"]).is_absolute() and Path(row["path"]).is_file()
    assert set(t.df["split"]) == {""}
    assert t.df["onset"].isna().all() and t.df["fps"].isna().all()


def test_ckplus_through_registry_with_scheme(ckplus_root):
    t = load_dataset("image_folder", ckplus_root, label_scheme="basic7", subject_pattern=CK_PATTERN)
    assert len(t) == 981 and t.classes == ["anger", "contempt", "disgust", "fear", "happy", "sad", "surprise"]


# -- layouts ------------------------------------------------------------------------------------
def test_train_test_layout_canonicalises_class_names(tmp_path):
    root = make_tree(tmp_path / "ds", [
        "train/Happy/S001_a.png", "train/Happy/S002_b.jpg", "train/angry/S001_c.PNG",
        "test/happiness/S003_d.jpeg", "test/Surprised/S003_e.bmp", "test/sadness/S004_f.tif",
    ])
    t = load_image_folder(root, subject_pattern=CK_PATTERN, dataset="kag")
    assert len(t) == 6
    assert dict(zip(t.df["sample_id"], t.df["split"])) == {
        "kag/test/Surprised/S003_e": "test", "kag/test/happiness/S003_d": "test", "kag/test/sadness/S004_f": "test",
        "kag/train/Happy/S001_a": "train", "kag/train/Happy/S002_b": "train", "kag/train/angry/S001_c": "train"}
    assert t.class_counts() == {"anger": 1, "happy": 3, "sad": 1, "surprise": 1}
    r = t.row("kag/test/Surprised/S003_e")
    assert r["emotion"] == "Surprised" and r["label"] == "surprise" and r["subject"] == "kag/S003"
    assert t.report.label_mapping == {"angry": "anger", "Happy": "happy", "happiness": "happy",
                                      "sadness": "sad", "Surprised": "surprise"}
    assert any("happiness" in n and "Happy" in n for n in t.report.notes)  # merged classes are named


def test_nested_subsplits(tmp_path):
    root = make_tree(tmp_path / "ds", ["Train/train1/happy/a.png", "train/train2/fear/b.png", "test/fear/c.png"])
    t = load_image_folder(root, subject_pattern=r"^(\w)")
    assert sorted(t.df["split"]) == ["test", "train/train1", "train/train2"]
    assert t.row("image_folder/Train/train1/happy/a")["split"] == "train/train1"


def test_flat_layout_without_pattern_warns_each_image_is_a_subject(tmp_path):
    root = make_tree(tmp_path / "ds", ["happy/x1.png", "happy/x2.png", "sad/x3.png"])
    t = load_image_folder(root)
    assert t.df["subject"].nunique() == 3
    assert t.row("image_folder/happy/x1")["subject"] == "image_folder/happy/x1"
    assert any("own subject" in n and "subject-grouped" in n for n in t.report.notes)


def test_same_stem_different_extensions_get_distinct_ids(tmp_path):
    root = make_tree(tmp_path / "ds", ["happy/a.png", "happy/a.jpg", "happy/b.png"])
    t = load_image_folder(root)
    assert sorted(t.sample_ids) == ["image_folder/happy/a.jpg", "image_folder/happy/a.png", "image_folder/happy/b"]


# -- annotations --------------------------------------------------------------------------------
def test_annotations_override_labels_and_give_subjects(tmp_path):
    root = make_tree(tmp_path / "ds", ["images/p1.png", "images/p2.png", "images/p3.png", "happy/p4.png"])
    (root / "annotations.csv").write_text(
        "File Name,EMOTION,Subject,Intensity\n"
        "p1.png,Happiness,sub7,0.5\n"
        "images/p2.png,disgusted,sub8,high\n"
        "p3,angry,,\n"
        "gone.png,fear,sub9,0.1\n")
    t = load_image_folder(root, subject_pattern=r"^(p\d)")
    assert len(t) == 4
    r1, r2, r3 = (t.row(f"image_folder/images/p{i}") for i in (1, 2, 3))
    assert (r1["emotion"], r1["label"], r1["subject"], r1["intensity"]) == ("Happiness", "happy",
                                                                             "image_folder/sub7", 0.5)
    assert r2["label"] == "disgust" and np.isnan(r2["intensity"])
    assert r3["label"] == "anger" and r3["subject"] == "image_folder/p3"  # no subject cell: the pattern
    assert t.row("image_folder/happy/p4")["label"] == "happy"  # unannotated: folder label
    assert t.report.missing == ["gone.png"]
    assert any("'high' is not a number" in n for n in t.report.notes)
    assert any("1 images have no annotation row" in n for n in t.report.notes)


def test_annotations_path_given_and_images_in_root(tmp_path):
    root = make_tree(tmp_path / "ds", ["a.png", "b.png"])
    ann = tmp_path / "labels.csv"
    ann.write_text("image;label\na.png;surprise\n", encoding="utf-8")
    t = load_image_folder(root, annotations=ann)
    assert t.sample_ids == ["image_folder/a"] and t.row("image_folder/a")["split"] == ""
    assert [p.sample for p in t.report.problems] == ["image_folder/b"]
    assert "no class folder" in t.report.problems[0].reason


def test_annotations_without_known_columns_say_what_was_expected(tmp_path):
    root = make_tree(tmp_path / "ds", ["happy/a.png"])
    (root / "annotations.csv").write_text("picture,feeling\na.png,happy\n")
    with pytest.raises(DataError) as e:
        load_image_folder(root)
    msg = str(e.value)
    assert "annotations.csv" in msg and "picture" in msg and "filename" in msg and "label" in msg


def test_missing_annotation_file_is_an_error(tmp_path):
    root = make_tree(tmp_path / "ds", ["happy/a.png"])
    with pytest.raises(DataError, match="nope.csv"):
        load_image_folder(root, annotations=tmp_path / "nope.csv")


# -- bad input ------------------------------------------------------------------------------------
def test_non_images_and_empty_class_folders_are_reported_not_fatal(tmp_path):
    root = make_tree(tmp_path / "ds", ["happy/a.png", "sad/b.png"])
    (root / "sad" / "notes.docx").write_text("x")
    (root / "fear").mkdir()
    (root / ".DS_Store").write_text("x")
    t = load_image_folder(root)
    assert len(t) == 2
    reasons = {p.sample: p.reason for p in t.report.problems}
    assert "not an image" in reasons["sad/notes.docx"]
    assert "empty class folder" in reasons["fear/"]
    assert any("hidden" in n for n in t.report.notes)


def test_file_not_matching_subject_pattern_is_excluded_and_named(tmp_path):
    root = make_tree(tmp_path / "ds", ["happy/S001_a.png", "happy/oops.png"])
    t = load_image_folder(root, subject_pattern=CK_PATTERN)
    assert t.sample_ids == ["image_folder/happy/S001_a"]
    (p,) = t.report.problems
    assert p.sample == "image_folder/happy/oops" and "oops.png" in p.reason and CK_PATTERN in p.reason


@pytest.mark.parametrize("pattern", [r"^(S\d+_", r"^S\d+_"])
def test_bad_subject_pattern_is_a_config_error(tmp_path, pattern):
    root = make_tree(tmp_path / "ds", ["happy/S001_a.png"])
    with pytest.raises(ConfigError, match="subject pattern"):
        load_image_folder(root, subject_pattern=pattern)


def test_missing_root_names_the_path(tmp_path):
    with pytest.raises(DataError, match="does not exist") as e:
        load_image_folder(tmp_path / "absent")
    assert str(tmp_path / "absent") in str(e.value)


def test_root_without_images_says_which_layout_was_expected(tmp_path):
    (tmp_path / "ds" / "happy").mkdir(parents=True)
    (tmp_path / "ds" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no images found") as e:
        load_image_folder(tmp_path / "ds")
    assert "root/train/<Class>" in str(e.value)


def test_annotations_false_ignores_the_csv(tmp_path):
    root = make_tree(tmp_path / "ds", ["happy/a.png"])
    (root / "annotations.csv").write_text("file,label\na.png,fear\n")
    assert load_image_folder(root).row("image_folder/happy/a")["label"] == "fear"
    t = load_image_folder(root, annotations=False)
    assert t.row("image_folder/happy/a")["label"] == "happy"
    assert any("metadata" in n for n in t.report.notes)  # the unused CSV is mentioned, not a problem
    assert t.report.problems == []
