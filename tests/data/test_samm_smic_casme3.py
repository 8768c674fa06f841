"""SAMM, SMIC-HS and CAS(ME)^3 part A loaders: real coding sheets (where present) and fake frame
folders in each corpus's real layout."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from _layouts import Clip, make_casme3, make_samm, make_smic, write_sheet
from conftest import shared_path

from mekit.data import load_dataset
from mekit.data.casme3 import load_casme3
from mekit.data.samm import load_samm
from mekit.data.smic import load_smic
from mekit.errors import DataError


@pytest.fixture(scope="module")
def samm_sheet() -> Path:
    return shared_path("coding_sheets", "SAMM", "SAMM.xlsx")


@pytest.fixture(scope="module")
def samm_real(samm_sheet):
    return load_samm(sheet=samm_sheet, check_frames=False)


@pytest.fixture(scope="module")
def smic_real():
    return load_smic(sheet=shared_path("coding_sheets", "SMIC", "smic_apex.xlsx"), check_frames=False)


@pytest.fixture(scope="module")
def casme3_real():
    return load_casme3(sheet=shared_path("coding_sheets", "CASME3", "casme3_table.xlsx"), check_frames=False)


# -- SAMM -------------------------------------------------------------------------------------
@pytest.mark.realdata
def test_samm_real_sheet(samm_real):
    t = samm_real
    assert len(t) == 159 and t.report.problems == []
    assert t.df["subject"].nunique() == 29
    assert t.class_counts() == {"anger": 57, "contempt": 12, "disgust": 9, "fear": 8, "happy": 26, "others": 26,
                                "sad": 6, "surprise": 15}
    r = t.row("samm/006/006_1_2")
    assert (r["subject"], r["onset"], r["apex"], r["offset"], r["fps"]) == ("samm/006", 5562, 5588, 5632, 200.0)
    assert (r["emotion"], r["label"], r["objective_class"]) == ("Anger", "anger", 3)
    assert r["frame_template"] == "006_{frame:05d}.jpg"
    assert t.frame_path(r, 5562).parts[-3:] == ("006", "006_1_2", "006_05562.jpg")
    aus = dict(zip(t.df["au_raw"], t.df["action_units"]))
    assert aus["15A+17"] == ("15A", "17")
    assert aus["(R6 or R12)+R15"] == ("R6/R12", "R15")
    assert aus["L20+21"] == ("L20", "21")


@pytest.mark.realdata
def test_samm_preamble_rows_and_padded_subjects(samm_sheet, samm_real, tmp_path):
    # The official release puts ~10 rows of text above the header and writes subjects as '006'.
    df = pd.read_excel(samm_sheet, sheet_name="MICRO_ONLY", dtype=object)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "MICRO_ONLY"
    for i in range(10):
        ws.append([f"SAMM micro-movement coding, release notes line {i}"] if i % 3 else [])
    ws.append(list(df.columns))
    for rec in df.itertuples(index=False):
        vals = [None if (isinstance(v, float) and v != v) else v for v in rec]
        vals[0] = f"{int(vals[0]):03d}"
        ws.append(vals)
    wb.create_sheet("Summary").append(["not the codes"])
    path = tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx"
    wb.save(path)
    t = load_samm(tmp_path, check_frames=False)
    cols = ["sample_id", "subject", "clip", "onset", "apex", "offset", "emotion", "label", "action_units",
            "objective_class"]
    pd.testing.assert_frame_equal(t.df[cols], samm_real.df[cols])


SAMM_CLIPS = [Clip(6, "006_1_2", 5562, 5588, 5632, "Anger", "4+7"),
              Clip(11, "011_2_3", 98, 101, 110, "Happiness", "12A", drop=(105,)),
              Clip(11, "011_3_1", 10, 12, 20, "Other", "R2", folder=False)]


def test_samm_fake_frames(tmp_path):
    root = make_samm(tmp_path / "samm", SAMM_CLIPS, preamble=10)
    t = load_samm(root)
    assert t.sample_ids == ["samm/006/006_1_2", "samm/011/011_2_3"]
    assert t.report.missing == ["samm/011/011_3_1"]
    (p,) = t.report.problems
    assert p.sample == "samm/011/011_2_3" and "105" in p.reason and "kept" in p.reason
    r = t.row("samm/011/011_2_3")
    assert r["frame_template"] == "011_{frame:05d}.jpg"
    assert t.frame_path(r, 98).is_file() and t.frame_path(r, 98).name == "011_00098.jpg"
    assert Path(r["path"]) == (root / "SAMM" / "011" / "011_2_3").resolve()


def test_samm_first_sheet_fallback_and_registry(tmp_path):
    root = make_samm(tmp_path / "s", SAMM_CLIPS[:1], sheet=None)
    write_sheet(root / "SAMM_codes.xlsx", ["Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame",
                                           "Action Units", "Estimated Emotion"],
                [[6, "006_1_2", 5562, 5588, 5632, "4+7", "Anger"]], sheet_name="Sheet1")
    t = load_dataset("samm", root)
    assert t.sample_ids == ["samm/006/006_1_2"] and t.report.missing == []


# -- SMIC ---------------------------------------------------------------------------------------
@pytest.mark.realdata
def test_smic_real_sheet(smic_real):
    t = smic_real
    assert len(t) == 164 and t.report.problems == []
    assert t.df["subject"].nunique() == 16
    assert t.class_counts() == {"negative": 70, "positive": 51, "surprise": 43}
    r = t.row("smic/s20/s20_ne_01")
    assert (r["subject"], r["emotion"], r["emotion_code"], r["fps"]) == ("smic/s20", "negative", 0, 100.0)
    assert (r["onset"], r["apex"], r["offset"]) == (17581039, 17581046, 17581055)
    assert t.df["apex"].notna().all()
    assert int(t.df["offset"].isna().sum()) == 7  # as in the sheet; frames would supply them
    assert Path(r["path"]).parts[-4:] == ("s20", "micro", "negative", "s20_ne_01")


def test_smic_without_apex_column(tmp_path):
    sheet = write_sheet(tmp_path / "smic.xlsx", ["Subject", "Filename", "Emotion", "OnsetFrame", "OffsetFrame"],
                        [["s1", "s1_ne_01", "negative", 100, 120], [3, "s3_po_02", "positive", 10, 30]])
    t = load_smic(sheet=sheet, check_frames=False)
    assert t.sample_ids == ["smic/s01/s1_ne_01", "smic/s03/s3_po_02"]
    assert t.df["apex"].isna().all()
    assert any("no apex column" in n for n in t.report.notes)


SMIC_CLIPS = [Clip(1, "s1_ne_01", 58831, 58840, 58850, 0),
              Clip(1, "s1_po_01", 1000, 1005, 1012, 1),
              Clip(3, "s3_sur_01", 300, 310, 318, 2),
              Clip(4, "s4_ne_05", 50, 55, 60, 0, folder=False)]


def test_smic_fake_hs_layout(tmp_path):
    root = make_smic(tmp_path / "SMIC", SMIC_CLIPS, layout="hs", blank_offsets=("s3_sur_01",))
    t = load_smic(root)
    assert t.sample_ids == ["smic/s01/s1_ne_01", "smic/s01/s1_po_01", "smic/s03/s3_sur_01"]
    assert t.report.missing == ["smic/s04/s4_ne_05"]
    r = t.row("smic/s01/s1_ne_01")
    assert Path(r["path"]).parts[-4:] == ("s1", "micro", "negative", "s1_ne_01")
    assert r["frame_template"] == "image{frame:06d}.bmp"
    assert t.frame_path(r, 58831).is_file()
    # offset absent from the sheet: the folder (onset..offset) supplies it
    assert t.row("smic/s03/s3_sur_01")["offset"] == 318
    assert any("took it from the last frame" in n for n in t.report.notes)


def test_smic_fake_extended_layout_and_label_check(tmp_path):
    clips = SMIC_CLIPS[:2] + [Clip(3, "s3_sur_01", 300, 310, 318, 1)]  # label 1 (positive) on a 'sur' clip
    root = make_smic(tmp_path / "SMIC", clips, layout="e", blank_offsets=("s1_ne_01",))
    t = load_smic(root)
    assert len(t) == 3 and t.report.missing == []
    assert pd.isna(t.row("smic/s01/s1_ne_01")["offset"])  # SMIC-E folders run past the offset: not guessed
    r = t.row("smic/s01/s1_po_01")
    assert Path(r["path"]).parts[-2:] == ("s01", "s1_po_01") and r["frame_template"] == "image{frame:06d}.jpg"
    (p,) = t.report.problems
    assert p.sample == "smic/s03/s3_sur_01" and "disagrees" in p.reason
    assert t.row("smic/s03/s3_sur_01")["emotion"] == "positive"


def test_smic_bad_label_code(tmp_path):
    sheet = write_sheet(tmp_path / "smic.xlsx", ["subject", "clip", "label", "onset_frame", "apex_frame",
                                                 "offset_frame"],
                        [[1, "s1_ne_01", 7, 1, 2, 3], [1, "s1_ne_02", 0, 5, 6, 7]])
    t = load_smic(sheet=sheet, check_frames=False)
    assert t.sample_ids == ["smic/s01/s1_ne_02"]
    assert "row 2" in t.report.problems[0].reason and "0 (negative)" in t.report.problems[0].reason


# -- CAS(ME)^3 ----------------------------------------------------------------------------------
@pytest.mark.realdata
def test_casme3_real_sheet(casme3_real):
    t = casme3_real
    assert len(t) == 860 and t.df["sample_id"].is_unique
    assert t.df["subject"].nunique() == 94
    assert t.class_counts() == {"anger": 64, "disgust": 250, "fear": 86, "happy": 55, "others": 161, "sad": 57,
                                "surprise": 187}
    r = t.row("casme3/spNO.1/e_62")
    assert (r["clip"], r["onset"], r["apex"], r["offset"], r["fps"]) == ("e", 62, 68, 96, 30.0)
    assert (r["action_units"], r["objective_class"]) == (("R12",), 1)
    assert Path(r["path"]).parts[-3:] == ("spNO.1", "e", "color") and r["frame_template"] == "{frame}.jpg"
    # Two rows give offset 0, before their onset: recorded, offset left empty, rows kept.
    probs = {p.sample: p.reason for p in t.report.problems}
    assert set(probs) == {"casme3/spNO.40/e_1812", "casme3/spNO.40/e_2327"}
    assert "offset 0 is before onset 1812" in probs["casme3/spNO.40/e_1812"]
    assert pd.isna(t.row("casme3/spNO.40/e_1812")["offset"])
    assert set(t.df.loc[t.df["emotion"].str.lower() == "others", "label"]) == {"others"}


CASME3_CLIPS = [Clip("spNO.1", "e", 62, 68, 96, "others", "R12"),
                Clip("spNO.1", "e", 96, 102, 106, "others", "R12"),
                Clip("spNO.1", "a", 355, 359, 360, "others", "5", drop=(359,)),  # apex absent: excluded
                Clip("spNO.2", "b", 10, 12, 14, "disgust", "4", folder=False)]


def test_casme3_fake_part_a(tmp_path):
    root = make_casme3(tmp_path / "CASME3", CASME3_CLIPS)
    t = load_casme3(root)
    assert t.sample_ids == ["casme3/spNO.1/e_62", "casme3/spNO.1/e_96"]
    assert t.report.missing == ["casme3/spNO.2/b_10"]
    (p,) = t.report.problems
    assert p.sample == "casme3/spNO.1/a_355" and "apex frame 359" in p.reason
    r = t.row("casme3/spNO.1/e_96")
    assert Path(r["path"]) == (root / "part_A" / "data" / "part_A" / "spNO.1" / "e" / "color").resolve()
    assert t.frame_path(r, 102).name == "102.jpg" and t.frame_path(r, 102).is_file()


def test_casme3_missing_column(tmp_path):
    sheet = write_sheet(tmp_path / "c3.xlsx", ["Subject", "Filename", "Onset", "Apex", "AU", "emotion"],
                        [["spNO.1", "a", 1, 2, "4", "others"]], sheet_name="label")
    with pytest.raises(DataError, match=r"c3\.xlsx \[label\]: missing column\(s\) \['offset'\]"):
        load_casme3(sheet=sheet, check_frames=False)
