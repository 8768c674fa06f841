"""Inputs a loader must not take on trust: damaged files, label typos, bad scheme files, partial
composites, truncated videos, paths that leave a subject's folder, loose option values, and the
sheet quirks users meet (empty sheets, repeats, out-of-order frames, encodings, empty folders).

Every case is either a clear one-line error naming the file/row/key/value, or a problem row in
the table's report for that one sample; never a silent change of what is trained on.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from _layouts import (
    CASME2_HEADER,
    Clip,
    casme2_rows,
    make_casme2,
    make_image_folder,
    make_samm,
    make_smic,
    truncate,
    write_sheet,
    write_video,
)

from mekit.data import load_dataset
from mekit.data.casme2 import load_casme2
from mekit.data.check import check_dataset
from mekit.data.labels import load_scheme_yaml
from mekit.data.megc import load_megc2019
from mekit.data.schema import parse_action_units
from mekit.data.video import load_videos
from mekit.errors import ConfigError, DataError


def _reasons(table) -> str:
    return "\n".join(f"{p.sample}: {p.reason}" for p in table.report.problems)


# -- 1. damaged images are refused where they are read --------------------------------------------
def test_check_and_reader_agree_on_a_jpeg_missing_only_its_end_marker(tmp_path):
    from mekit.preprocess.io import read_image

    root = make_image_folder(tmp_path / "ds", {"happy": 2, "sad": 2}, fmt="JPEG")
    victim = sorted((root / "happy").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:-2])
    rep = check_dataset("image_folder", root, duplicate_threshold=None, subject_pattern=r"^(S\d+)_")
    assert any("truncated JPEG" in p.reason for p in rep.problems)
    with pytest.raises(DataError, match="truncated JPEG"):
        read_image(victim)


def test_flow_image_loader_refuses_a_truncated_flow_image(tmp_path):
    from _layouts import textured_image

    imgs = tmp_path / "flow" / "imgs"
    imgs.mkdir(parents=True)
    for s in ("sub01", "sub02"):
        for clip in ("EP01", "EP02"):
            (imgs / f"{s}_{clip}.png").write_bytes(textured_image(28, fmt="PNG"))
    truncate(imgs / "sub02_EP02.png", 0.6)
    (tmp_path / "flow" / "labels.csv").write_text(
        "subject,clip,label\nsub01,EP01,0\nsub01,EP02,1\nsub02,EP01,2\nsub02,EP02,0\n")
    t = load_dataset("flow_images", tmp_path / "flow")
    assert "flow_images/sub02/EP02" not in t.sample_ids and len(t) == 3
    assert "truncated PNG" in _reasons(t)


# -- 2. label typos and classes too small to train ------------------------------------------------
def test_image_folder_typo_class_is_dropped_with_a_problem_row(tmp_path):
    root = make_image_folder(tmp_path / "ds", {"happy": 3, "sad": 3, "banana": 2})
    t = load_dataset("image_folder", root, subject_pattern=r"^(S\d+)_")
    assert set(t.classes) == {"happy", "sad"} and len(t) == 6
    reasons = [p.reason for p in t.report.problems if "banana" in p.sample]
    assert len(reasons) == 2
    assert "'banana'" in reasons[0] and "class folder" in reasons[0] and "'surprise'" in reasons[0]
    assert "S1_banana_000.png" in reasons[0] or "S2_banana_001.png" in reasons[0]


def test_annotation_typo_names_the_csv_row(tmp_path):
    root = make_image_folder(tmp_path / "ds", {"a": 2, "b": 2})
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    labels = ["happy", "banana", "sad", "sad"]
    (root / "annotations.csv").write_text("file,label\n" + "".join(f"{n},{lab}\n" for n, lab in zip(names, labels)))
    t = load_dataset("image_folder", root)
    assert sorted(t.df["label"]) == ["happy", "sad", "sad"]
    (p,) = [p for p in t.report.problems if "banana" in p.reason]
    assert "annotations.csv row 3" in p.reason and "expected one of" in p.reason


def test_a_dataset_of_its_own_classes_is_kept_with_a_warning(tmp_path, caplog):
    # No label is an emotion name: these are the user's own classes, not typos.
    root = make_image_folder(tmp_path / "ds", {"pain": 2, "no_pain": 2})
    with caplog.at_level(logging.WARNING):
        t = load_dataset("image_folder", root)
    assert set(t.classes) == {"pain", "no_pain"} and not t.report.problems
    assert any("own classes" in n for n in t.report.notes)
    assert any("own classes" in r.getMessage() for r in caplog.records)


def test_a_scheme_names_typos_but_counts_ordinary_drops(tmp_path):
    root = make_image_folder(tmp_path / "ds", {"happy": 2, "sad": 2, "surprise": 2, "fear": 1, "bananna": 1})
    t = load_dataset("image_folder", root, label_scheme="casme2_4class")
    assert t.report.dropped == {"bananna": 1}
    (p,) = t.report.problems
    assert "'bananna'" in p.reason and "casme2_4class" in p.reason and "expected one of" in p.reason
    t2 = load_dataset("image_folder", root, label_scheme="casme2_5class")  # drops sad and fear
    assert t2.report.dropped == {"sad": 2, "fear": 1, "bananna": 1}
    assert [p.sample for p in t2.report.problems] == ["image_folder/bananna/S1_bananna_000"]


def test_casme2_sheet_typo_names_the_sheet_row(tmp_path):
    clips = [Clip(1, "EP01", 10, 12, 14, "happiness"), Clip(2, "EP02", 10, 12, 14, "hapiness")]
    root = make_casme2(tmp_path / "c2", clips)
    t = load_dataset("casme2", root)
    assert t.sample_ids == ["casme2/sub01/EP01"]
    (p,) = t.report.problems
    assert "row 3" in p.reason and "'hapiness'" in p.reason


def test_check_trainable_refuses_small_classes_naming_them(tmp_path):
    from mekit.data.labels import check_trainable

    root = make_image_folder(tmp_path / "ds", {"happy": 4, "sad": 4, "fear": 1}, subjects=2)
    t = load_dataset("image_folder", root, subject_pattern=r"^(S\d+)_")
    with pytest.raises(DataError, match=r"'fear' \(1 sample, 1 subject\)"):
        check_trainable(t)
    one_subject = make_image_folder(tmp_path / "ds2", {"happy": 4, "sad": 3}, subjects=1)
    t2 = load_dataset("image_folder", one_subject, subject_pattern=r"^(S\d+)_")
    with pytest.raises(DataError, match=r"'happy' \(4 samples, 1 subject\).*'sad' \(3 samples, 1 subject\)"):
        check_trainable(t2)
    check_trainable(t.subset(t.df["label"] != "fear"))  # happy and sad: 4 samples, 2 subjects each
    scheme = load_dataset("image_folder", root, label_scheme="basic7", subject_pattern=r"^(S\d+)_")
    with pytest.raises(DataError, match="'anger' \\(0 samples"):  # a scheme class with no sample at all
        check_trainable(scheme)


# -- 3. label-scheme YAML mistakes: one line each ------------------------------------------------
@pytest.mark.parametrize("text,match", [
    ("classes: [pos, neg]\nmapping: {happy: pos, sad: neg}\nper_dataset: {casme2: {fear: scared}}",
     r"per_dataset\.casme2\.fear maps to 'scared', which is not in classes"),
    ("mapping:\n  - happy\n  - sad\n", r"mapping is a list; expected a mapping of emotion -> class"),
    ("mapping:\n  happy: pos\n  sad: neg\n  fear:\n", r"mapping\.fear is empty \(null\)"),
    ("classes: posneg\nmapping: {happy: pos, sad: neg}\n", r"classes is the string 'posneg'; expected a list"),
    ("mapping: {happy: pos, sad: pos}\n", r"1 class\(es\) \['pos'\]; expected at least 2"),
    ("mapping: {happy: pos, sad: neg}\nmaping: {fear: neg}\n", r"unknown key\(s\) \['maping'\]"),
    ("mapping:\n  happy: pos\n  sad: neg\n  happy: neg\n", r"key 'happy' appears twice"),
    ("classes: [pos, neg, other]\nmapping: {happy: pos, sad: neg}\n", r"classes \['other'\] are listed but no"),
    ("mapping: {happy: pos, happiness: neg, sad: neg}\n", r"both mean the emotion 'happy'"),
    ("mapping: {happy: yes, sad: neg}\n", r"mapping\.happy is True \(bool\)"),
    ("classes: [pos, neg, pos]\nmapping: {happy: pos, sad: neg}\n", r"lists \['pos'\] more than once"),
    ("", r"needs a 'mapping'.*an empty file"),
    ("mapping: {happy: pos\n", r"not valid YAML \(line"),
])
def test_scheme_yaml_mistakes_are_one_line_config_errors(tmp_path, text, match):
    p = tmp_path / "my_scheme.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match) as e:
        load_scheme_yaml(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_a_correct_scheme_yaml_loads(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: mine\nclasses: [pos, neg]\nmapping: {Happiness: pos, sad: neg, 3: neg}\n"
                 "per_dataset:\n  samm: {anger: neg, happy: pos}\n")
    s = load_scheme_yaml(p)
    assert s.classes == ("pos", "neg") and s.mapping == {"happy": "pos", "sad": "neg", "3": "neg"}
    assert s.map("anger", "samm") == "neg" and s.map("anger", "casme2") is None


# -- 4. a composite missing a whole corpus -------------------------------------------------------
def _megc_root(tmp_path: Path, frames: bool) -> Path:
    root = tmp_path / "megc"
    make_casme2(root / "CASME2", [Clip(1, "EP01", 10, 12, 14, "disgust"), Clip(2, "EP02", 10, 12, 14, "happiness"),
                                  Clip(3, "EP03", 10, 12, 14, "surprise")])
    sm = [Clip(6, "006_1_1", 100, 102, 104, "Anger"), Clip(7, "007_1_1", 100, 102, 104, "Happiness")]
    si = [Clip(1, "s1_ne_01", 50, 52, 54, 0), Clip(2, "s2_po_01", 50, 52, 54, 1)]
    if not frames:
        sm = [Clip(c.subject, c.name, c.onset, c.apex, c.offset, c.emotion, folder=False) for c in sm]
        si = [Clip(c.subject, c.name, c.onset, c.apex, c.offset, c.emotion, folder=False) for c in si]
    make_samm(root / "SAMM", sm)
    make_smic(root / "SMIC", si)
    return root


def test_megc_without_samm_and_smic_frames_stops_naming_the_corpus(tmp_path):
    root = _megc_root(tmp_path, frames=False)
    with pytest.raises(DataError, match=r"no smic clip could be loaded from .*SMIC.*allow_partial") as e:
        load_dataset("megc2019", root)
    assert "\n" not in str(e.value)
    full = load_megc2019(_megc_root(tmp_path / "full", frames=True))
    assert full.name == "megc2019" and not full.report.partial
    assert full.report.corpora == {"smic": 2, "casme2": 3, "samm": 2}


def test_megc_partial_only_when_asked_and_says_so(tmp_path):
    root = _megc_root(tmp_path, frames=False)
    t = load_dataset("megc2019", root, allow_partial=True)
    assert set(t.df["dataset"]) == {"casme2"}
    assert t.name == "megc2019-partial" and t.report.partial
    assert t.report.corpora == {"casme2": 3}
    assert set(t.report.corpora_absent) == {"smic", "samm"}
    assert any("PARTIAL MEGC 2019" in n for n in t.report.notes)
    # a corpus folder that is not there at all: the same rule
    import shutil

    full = _megc_root(tmp_path / "full", frames=True)
    shutil.rmtree(full / "SAMM")
    with pytest.raises(DataError, match=r"no samm folder in .*allow_partial"):
        load_megc2019(full)
    t2 = load_megc2019(full, allow_partial=True)
    assert list(t2.report.corpora_absent) == ["samm"] and t2.report.corpora == {"smic": 2, "casme2": 3}


# -- 5. truncated videos -------------------------------------------------------------------------
def test_truncated_video_is_kept_with_a_warning_and_a_problem_row(tmp_path, caplog):
    write_video(tmp_path / "vids" / "a.avi", 20)
    bad = write_video(tmp_path / "vids" / "b.avi", 20)
    truncate(bad, 0.6)
    with caplog.at_level(logging.WARNING):
        t = load_videos(tmp_path / "vids")
    assert len(t) == 2
    n = int(t.row("video/b")["offset"]) + 1
    assert n < 20
    (p,) = t.report.problems
    assert p.sample == "video/b" and "b.avi" in p.reason and "declares 20 frames" in p.reason
    assert f"only {n}" in p.reason
    assert any("b.avi" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


# -- 6. paths that leave the subject's folder ----------------------------------------------------
@pytest.mark.parametrize("cell", ["../sub02/EP02", "/etc", "..", "EP01/../../sub02/EP02", "C:\\clips\\EP02"])
def test_filename_that_leaves_the_subject_folder_is_refused(tmp_path, cell):
    clips = [Clip(1, "EP01", 10, 12, 14, "happiness"), Clip(2, "EP02", 10, 12, 14, "disgust")]
    root = make_casme2(tmp_path / "c2", clips)
    rows = casme2_rows(clips) + [[1, cell, 10, 12, 14, "4", "disgust"]]
    write_sheet(root / "CASME2-coding-20140508.xlsx", CASME2_HEADER, rows)
    for check in (True, False):
        t = load_casme2(root, check_frames=check)
        assert sorted(t.sample_ids) == ["casme2/sub01/EP01", "casme2/sub02/EP02"]
        (p,) = t.report.problems
        assert "row 4" in p.reason and repr(cell) in p.reason


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_symlink_into_another_subjects_folder_is_refused(tmp_path):
    clips = [Clip(1, "EP01", 10, 12, 14, "happiness"), Clip(2, "EP02", 10, 12, 14, "disgust"),
             Clip(1, "EP09", 10, 12, 14, "disgust", folder=False), Clip(1, "EP10", 10, 12, 14, "sadness",
                                                                         folder=False)]
    root = make_casme2(tmp_path / "c2", clips)
    sub01 = root / "Cropped" / "sub01"
    os.symlink(root / "Cropped" / "sub02" / "EP02", sub01 / "EP09")  # leak: another subject's clip
    elsewhere = make_casme2(tmp_path / "store", [Clip(1, "EP10", 10, 12, 14, "sadness")])
    os.symlink(elsewhere / "Cropped" / "sub01" / "EP10", sub01 / "EP10")  # frames kept elsewhere: fine
    t = load_casme2(root)
    assert "casme2/sub01/EP09" not in t.sample_ids and "casme2/sub01/EP10" in t.sample_ids
    (p,) = t.report.problems
    assert p.sample == "casme2/sub01/EP09" and "another subject's folder" in p.reason and "row 4" in p.reason
    assert any("outside" in n for n in t.report.notes)


# -- 7. loader options -------------------------------------------------------------------------
def test_boolean_options_must_be_booleans():
    from mekit.data import check_options

    with pytest.raises(ConfigError, match=r"option colour of the synthetic loader is 'maybe'; expected true or false"):
        load_dataset("synthetic", None, colour="maybe")
    with pytest.raises(ConfigError, match="option check_frames of the casme2 loader is 'maybe'"):
        load_dataset("casme2", "/nonexistent", check_frames="maybe")
    assert check_options("casme2", {"check_frames": "no"}) == {"check_frames": False}
    assert check_options("flow_images", {"verify": True}) == {"verify": True}
    with pytest.raises(ConfigError, match="option verify of the flow_images loader is 2"):
        check_options("flow_images", {"verify": 2})


def test_unknown_options_name_the_accepted_ones():
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['subject_pat'\] for the image_folder loader; "
                                          r"accepted: .*subject_pattern"):
        load_dataset("image_folder", "/nonexistent", subject_pat="x")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['colours'\] for the synthetic loader"):
        load_dataset("synthetic", None, colours=True)
    with pytest.raises(ConfigError, match="frame_base of the video loader is 'one'; expected a whole number"):
        load_dataset("video", "/nonexistent", frame_base="one")


# -- 8. the cases nobody listed ----------------------------------------------------------------
def test_sheet_with_a_header_and_no_rows_is_an_error(tmp_path):
    write_sheet(tmp_path / "c2" / "CASME2-coding-20140508.xlsx", CASME2_HEADER, [])
    with pytest.raises(DataError, match=r"has a header \(row 1\) but no data rows"):
        load_casme2(tmp_path / "c2", check_frames=False)


def test_utf16_csv_sheet_is_read(tmp_path):
    clips = [Clip(1, "EP01", 10, 12, 14, "happiness"), Clip(2, "EP02", 10, 12, 14, "disgust")]
    root = make_casme2(tmp_path / "c2", clips, sheet=None)
    lines = ["\t".join(CASME2_HEADER)] + ["\t".join(str(v) for v in r) for r in casme2_rows(clips)]
    (root / "CASME2-coding.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-16"))
    t = load_casme2(root)
    assert t.sample_ids == ["casme2/sub01/EP01", "casme2/sub02/EP02"] and not t.report.problems


def test_repeats_out_of_order_frames_and_empty_folders_are_problem_rows(tmp_path):
    clips = [Clip(1, "EP01", 10, 12, 14, "happiness"), Clip(2, "EP02", 10, 12, 14, "disgust"),
             Clip(2, "EP03", 10, 12, 14, "disgust", folder=False)]
    root = make_casme2(tmp_path / "c2", clips)
    (root / "Cropped" / "sub02" / "EP03").mkdir()  # a Filename pointing at an empty folder
    rows = casme2_rows(clips) + [
        [1, "EP01", 10, 12, 14, "4", "happiness"],   # the same clip twice
        [2, "EP02", "ten", 12, 14, "4", "disgust"],  # text in a frame column (and a repeat)
        [1, "EP04", 20, 25, 18, "4", "disgust"],     # offset before onset
        [1, "EP05", 10, 30, 14, "4", "disgust"],     # apex outside onset..offset
    ]
    write_sheet(root / "CASME2-coding-20140508.xlsx", CASME2_HEADER, rows)
    t = load_casme2(root, check_frames=False)
    text = _reasons(t)
    assert "row 5 repeats sample casme2/sub01/EP01" in text
    assert "row 6, column 'OnsetFrame' holds 'ten'" in text
    assert "offset 18 is before onset 20" in text
    assert "apex 30 is outside onset..offset 10..14" in text
    t2 = load_casme2(root)
    assert "casme2/sub02/EP03" not in t2.sample_ids
    assert any(p.sample == "casme2/sub02/EP03" and "holds no image files" in p.reason for p in t2.report.problems)


def test_action_unit_none_words_inside_a_cell_are_no_au():
    assert parse_action_units("4+-") == ["4"]
    assert parse_action_units("-+") == []
    assert parse_action_units(float("inf")) == ["inf"]  # never an OverflowError
    assert parse_action_units(12.0) == ["12"]
