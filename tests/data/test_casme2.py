"""The CASME II loader on the real corpus (where present) and on tiny fake copies with sheet quirks."""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
import pytest
from _layouts import CASME2_HEADER, Clip, casme2_rows, make_casme2, write_sheet

from mekit.data import load_dataset
from mekit.data._sheets import frame_number, read_sheet, scan_frames
from mekit.data.casme2 import COLUMNS, load_casme2
from mekit.errors import ConfigError, DataError

MISSING_CLIPS = ["casme2/sub02/EP01_11f", "casme2/sub02/EP06_02f", "casme2/sub02/EP08_04",
                 "casme2/sub02/EP11_01", "casme2/sub02/EP14_01", "casme2/sub07/EP06_01",
                 "casme2/sub12/EP09_02", "casme2/sub12/EP09_06", "casme2/sub16/EP01_08",
                 "casme2/sub20/EP16_01", "casme2/sub23/EP05_24f"]


@functools.lru_cache(maxsize=4)
def _real(root: str, check_frames: bool):
    # The real sheet and 244 folders are read once per test module, whichever test asks first.
    return load_casme2(root, check_frames=check_frames)


# -- real data --------------------------------------------------------------------------------
@pytest.mark.realdata
def test_real_casme2_clips_missing_subjects_classes(casme2_root):
    t = _real(str(casme2_root), True)
    assert len(t) == 244
    assert sorted(t.report.missing) == MISSING_CLIPS
    assert t.report.problems == []  # every present folder holds onset..offset
    assert t.df["subject"].nunique() == 26
    assert t.class_counts() == {"others": 96, "disgust": 61, "happy": 32, "repression": 23, "surprise": 23,
                                "sad": 7, "fear": 2}
    assert any("11 of 255 clips" in n for n in t.report.notes)
    assert t.report.label_mapping["happiness"] == "happy"


@pytest.mark.realdata
def test_real_casme2_row_contents_and_frame_paths(casme2_root):
    t = _real(str(casme2_root), True)
    r = t.row("casme2/sub01/EP02_01f")
    assert (r["subject"], r["clip"]) == ("casme2/sub01", "EP02_01f")
    assert (r["onset"], r["apex"], r["offset"]) == (46, 59, 86)
    assert (r["emotion"], r["label"], r["fps"], r["media"]) == ("happiness", "happy", 200.0, "frames")
    assert r["frame_template"] == "reg_img{frame}.jpg"
    assert Path(r["path"]).is_absolute()
    assert t.frame_path(r, 46).name == "reg_img46.jpg" and t.frame_path(r, 46).is_file()
    assert t.frame_path(r, 86).is_file()
    r = t.row("casme2/sub01/EP19_05f")
    assert r["action_units"] == ("4", "L10") and r["au_raw"] == "4+L10"
    assert set(t.df["frame_template"]) == {"reg_img{frame}.jpg"}


@pytest.mark.realdata
def test_real_casme2_sheet_only(casme2_root):
    t = _real(str(casme2_root), False)
    assert len(t) == 255 and t.report.missing == []
    assert t.df["sample_id"].is_unique
    assert t.class_counts() == {"others": 99, "disgust": 63, "happy": 32, "repression": 27, "surprise": 25,
                                "sad": 7, "fear": 2}
    missing = t.row("casme2/sub02/EP01_11f")
    assert missing["path"].endswith("Cropped/sub02/EP01_11f")  # where the frames are expected


@pytest.mark.realdata
def test_real_casme2_five_class_scheme(casme2_root):
    t = load_dataset("casme2", casme2_root, label_scheme="casme2_5class")
    assert len(t) == 235
    assert t.report.dropped == {"sadness": 7, "fear": 2}


# -- fake corpus in the real layout -------------------------------------------------------------
CLIPS = [
    Clip(1, "EP02_01f", 46, 59, 86, "happiness", "12"),
    Clip(1, "EP19_05f", 10, 20, 30, "disgust", "4+L10"),
    Clip(2, "EP03_02", 5, 8, 12, "surprise", "R1+R2", drop=(10,)),  # a frame missing mid-clip: kept
    Clip(2, "EP04_02", 5, 9, 12, "repression", "14", drop=(9,)),  # apex frame absent: excluded
    Clip(3, "EP05_01", 1, 4, 8, "others", "?", folder=False),  # folder absent: missing
]


@pytest.fixture
def fake_casme2(tmp_path) -> Path:
    return make_casme2(tmp_path / "CASME2", CLIPS)


def test_fake_casme2_layout(fake_casme2):
    t = load_casme2(fake_casme2)
    assert t.sample_ids == ["casme2/sub01/EP02_01f", "casme2/sub01/EP19_05f", "casme2/sub02/EP03_02"]
    assert t.report.missing == ["casme2/sub03/EP05_01"]
    probs = {p.sample: p.reason for p in t.report.problems}
    assert set(probs) == {"casme2/sub02/EP03_02", "casme2/sub02/EP04_02"}
    assert "1 of 8 frames" in probs["casme2/sub02/EP03_02"] and "10" in probs["casme2/sub02/EP03_02"]
    assert "kept" in probs["casme2/sub02/EP03_02"]
    assert "apex frame 9" in probs["casme2/sub02/EP04_02"] and "excluded" in probs["casme2/sub02/EP04_02"]
    assert t.row("casme2/sub01/EP19_05f")["action_units"] == ("4", "L10")
    assert t.df["subject"].tolist() == ["casme2/sub01", "casme2/sub01", "casme2/sub02"]
    assert str(fake_casme2 / "Cropped" / "sub01" / "EP02_01f") == t.row("casme2/sub01/EP02_01f")["path"]


def test_fake_casme2_raw_naming_detected_per_clip(tmp_path):
    root = tmp_path / "c2"
    make_casme2(root, CLIPS[:1], frames_subdir="CASME2_RAW_selected", prefix="img")
    # A second clip in the same folder tree keeps the cropped naming: detection is per clip.
    make_casme2(root, [Clip(2, "EP01_01", 3, 4, 6, "others")], frames_subdir="CASME2_RAW_selected",
                prefix="reg_img", sheet=None)
    write_sheet(root / "CASME2-coding-20140508.xlsx", CASME2_HEADER,
                casme2_rows([CLIPS[0], Clip(2, "EP01_01", 3, 4, 6, "others")]))
    t = load_casme2(root)
    assert t.df["frame_template"].tolist() == ["img{frame}.jpg", "reg_img{frame}.jpg"]
    assert t.frame_path("casme2/sub01/EP02_01f", 59).is_file()


def test_frames_dir_option_and_root_itself(tmp_path):
    make_casme2(tmp_path / "x", CLIPS[:2], frames_subdir="frames", sheet=None)
    sheet = write_sheet(tmp_path / "sheet.xlsx", CASME2_HEADER, casme2_rows(CLIPS[:2]))
    t = load_casme2(sheet=sheet, frames_dir=tmp_path / "x" / "frames")
    assert len(t) == 2 and t.report.missing == []
    # subNN folders directly in root, sheet beside them
    make_casme2(tmp_path / "flat", CLIPS[:2], frames_subdir=".")
    assert len(load_casme2(tmp_path / "flat")) == 2
    with pytest.raises(DataError, match="frames folder not found"):
        load_casme2(sheet=sheet, frames_dir=tmp_path / "nowhere")


def test_check_frames_false_uses_sheet_alone(tmp_path):
    sheet = write_sheet(tmp_path / "s.xlsx", CASME2_HEADER, casme2_rows(CLIPS))
    t = load_casme2(sheet=sheet, check_frames=False)
    assert len(t) == 5 and t.report.missing == [] and t.report.problems == []
    assert t.row("casme2/sub03/EP05_01")["path"] == str((tmp_path / "sub03" / "EP05_01").resolve())


# -- sheet quirks ----------------------------------------------------------------------------
QUIRKY = [
    ["Subject", None, "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
     "Estimated Emotion", "Unnamed: 9"],
    [1, None, "EP02_01f", 46.0, 59.0, 86.0, None, 12, "happiness", None],
    [1, None, "EP19_05f", 10, "/", 30, None, "4+L10", "disgust", None],
    [None, None, None, None, None, None, None, None, None, None],  # blank row
    [2, None, "EP03_02", "abc", 8, 12, None, "R1+R2", "surprise", None],
    ["sub02", None, "EP04_02", 5, 9, 12, None, 14, "repression", None],
]


def _quirky_xlsx(path: Path, preamble: int = 2) -> Path:
    return write_sheet(path, QUIRKY[0], QUIRKY[1:], preamble=preamble)


def test_quirky_sheet_blank_columns_slash_and_text(tmp_path):
    sheet = _quirky_xlsx(tmp_path / "quirky.xlsx")
    t = load_casme2(sheet=sheet, check_frames=False)
    assert t.sample_ids == ["casme2/sub01/EP02_01f", "casme2/sub01/EP19_05f", "casme2/sub02/EP04_02"]
    assert t.row("casme2/sub01/EP02_01f")["onset"] == 46  # 46.0 is a frame number
    assert pd.isna(t.row("casme2/sub01/EP19_05f")["apex"])  # '/' -> empty, noted
    assert any("1 row(s) give no apex" in n for n in t.report.notes)
    (p,) = t.report.problems
    assert p.sample == "casme2/sub02/EP03_02"
    # names the sheet file, the row as a spreadsheet shows it (2 preamble + header + 3 rows), the value
    assert "quirky.xlsx" in p.reason and "row 7" in p.reason and "'abc'" in p.reason
    assert "OnsetFrame" in p.reason and "frame number" in p.reason and "excluded" in p.reason


def test_csv_sheet_gives_the_same_table(tmp_path):
    x = load_casme2(sheet=_quirky_xlsx(tmp_path / "q.xlsx", preamble=0), check_frames=False)
    csv = tmp_path / "q.csv"
    write_sheet(csv, QUIRKY[0], QUIRKY[1:])
    c = load_casme2(sheet=csv, check_frames=False)
    cols = ["sample_id", "subject", "onset", "apex", "offset", "emotion", "label", "action_units"]
    pd.testing.assert_frame_equal(x.df[cols], c.df[cols])
    assert [p.sample for p in c.report.problems] == ["casme2/sub02/EP03_02"]
    assert "q.csv row 5" in c.report.problems[0].reason


def test_missing_column_names_sheet_column_and_found(tmp_path):
    sheet = write_sheet(tmp_path / "bad.xlsx", ["Subject", "Filename", "Onset", "Apex", "Emotion"],
                        [[1, "EP01", 1, 2, "happiness"]])
    with pytest.raises(DataError) as e:
        load_casme2(sheet=sheet, check_frames=False)
    msg = str(e.value)
    assert "bad.xlsx" in msg and "'offset'" in msg and "'Onset'" in msg and "'Emotion'" in msg


def test_column_names_matched_case_and_space_insensitively(tmp_path):
    header = ["subject", "FILENAME", "Onset Frame", "apex frame", "offset", "action units", "emotion"]
    sheet = write_sheet(tmp_path / "s.xlsx", header, [[4, "EP12_01f", 3, 5, 9, "4+7", "disgust"]])
    t = load_casme2(sheet=sheet, check_frames=False)
    assert t.sample_ids == ["casme2/sub04/EP12_01f"] and t.row("casme2/sub04/EP12_01f")["offset"] == 9


def test_bad_subject_and_duplicate_rows(tmp_path):
    rows = casme2_rows(CLIPS[:2]) + [["x1", "EP01", 1, 2, 3, 4, "others"], casme2_rows(CLIPS[:1])[0]]
    sheet = write_sheet(tmp_path / "s.xlsx", CASME2_HEADER, rows)
    t = load_casme2(sheet=sheet, check_frames=False)
    assert len(t) == 2
    reasons = [p.reason for p in t.report.problems]
    assert any("row 4" in r and "'x1'" in r and "subject" in r for r in reasons)
    assert any("row 5" in r and "repeats" in r and "row 2" in r for r in reasons)


def test_unknown_option_and_no_root(tmp_path):
    with pytest.raises(ConfigError, match="sheets"):
        load_casme2(tmp_path, sheets="x")
    with pytest.raises(DataError, match="root"):
        load_casme2()
    with pytest.raises(DataError, match="no CASME II coding sheet"):
        load_casme2(tmp_path)


def test_registry_path_loads(fake_casme2):
    t = load_dataset("casme2", fake_casme2, label_scheme="casme2_5class")
    assert t.class_counts() == {"disgust": 1, "happiness": 1, "surprise": 1}


# -- helpers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cell,expected", [(46, 46), (46.0, 46), ("46", 46), (" 46.0 ", 46), ("/", None),
                                           ("", None), (None, None), (float("nan"), None)])
def test_frame_number_accepts(cell, expected):
    assert frame_number(cell) == expected


@pytest.mark.parametrize("cell", ["abc", 46.5, -1, "12a", True, 9.223372036854776e18, "1e12"])
def test_frame_number_rejects(cell):
    with pytest.raises(ValueError, match="frame number"):
        frame_number(cell)


def test_scan_frames_templates(tmp_path):
    from _layouts import write_frames

    write_frames(tmp_path / "a", range(95, 105), "reg_img{frame}.jpg")
    write_frames(tmp_path / "b", range(5562, 5570), "006_{frame:05d}.jpg")
    write_frames(tmp_path / "c", range(0, 3), "{frame}.jpg")
    assert [n.template for n in scan_frames(tmp_path / "a")] == ["reg_img{frame}.jpg"]
    (b,) = scan_frames(tmp_path / "b")
    assert b.template == "006_{frame:05d}.jpg" and b.frames == frozenset(range(5562, 5570))
    assert scan_frames(tmp_path / "c")[0].template == "{frame}.jpg"
    assert scan_frames(tmp_path / "absent") == []


def test_read_sheet_finds_header_below_preamble(tmp_path):
    sheet = _quirky_xlsx(tmp_path / "p.xlsx", preamble=11)
    sh = read_sheet(sheet, COLUMNS)
    assert sh.header_row == 12 and sh.rows.index[0] == 13
    assert sh.found["onset"] == "OnsetFrame"
