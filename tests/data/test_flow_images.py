"""Flow-image loader on tiny fake corpora in the HTNet (CSV + folder) and STSTNet (LOSO) layouts."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mekit.data import get_loader
from mekit.data.flow_images import load_flow_images
from mekit.data.labels import apply_scheme
from mekit.errors import ConfigError, DataError

# Rows in the layout of HTNet's combined_3_class2_for_optical_flow.csv (values invented).
HTNET_HEADER = "dataset,sub,filename_o,label,apex,imagename,sub_filename"
HTNET_ROWS = [
    ("casme2", "sub01", "EP02_01f", "1"),
    ("casme2", "sub02", "EP09_01", "2"),
    ("smic", "s01", "s01_ne_01", "0"),
    ("smic", "s02", "s02_po_01", "1"),
    ("samm", "006", "006_1_2", "0"),
    ("samm", "007", "007_6_1", "2"),
]


def _flow_png(path: Path, value: int = 100, channels: int = 3) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (8, 8, channels) if channels > 1 else (8, 8)
    img = np.full(shape, value, np.uint8)
    ok, buf = cv2.imencode(path.suffix, img)
    assert ok
    buf.tofile(str(path))  # tofile: cv2.imwrite would also do, this keeps spaces trivially safe


def _htnet_corpus(root: Path, rows=HTNET_ROWS, spaced: bool = True) -> Path:
    lines = [HTNET_HEADER] + [f"{d},{s},{c},{lab},,{s}_{c}.jpg," for d, s, c, lab in rows]
    (root / "combined_3_class2_for_optical_flow.csv").write_text("\n".join(lines) + "\n")
    img_dir = root / "datasets" / "STSNet_whole_norm_u_v_os"
    for k, (_, s, c, _) in enumerate(rows):
        # HTNet names its images '<sub>_<filename_o> .png', with a space before the extension.
        _flow_png(img_dir / (f"{s}_{c} .png" if spaced else f"{s}_{c}.png"), value=10 * k)
    return img_dir


def test_htnet_layout_three_corpora(tmp_path):
    img_dir = _htnet_corpus(tmp_path)
    t = load_flow_images(tmp_path)
    assert len(t) == 6
    df = t.df.set_index("sample_id")
    row = df.loc["flow_images/casme2/sub01/EP02_01f"]
    assert row["media"] == "flow"
    assert row["path"] == str(img_dir / "sub01_EP02_01f .png")
    assert row["subject"] == "flow_images/casme2/sub01"
    assert row["corpus"] == "casme2"
    assert row["emotion"] == "positive" and row["label"] == "positive" and row["label_code"] == "1"
    assert sorted(df["corpus"].unique()) == ["casme2", "samm", "smic"]
    # SAMM's zero-padded subject survives (no numeric parse of '006').
    assert "flow_images/samm/006" in t.subjects
    assert t.class_counts() == {"negative": 2, "positive": 2, "surprise": 2}
    assert any("0=negative" in n for n in t.report.notes)
    assert any("ignoring spaces" in n for n in t.report.notes)
    assert t.report.missing == [] and t.report.problems == []
    assert get_loader("flow_images") is load_flow_images


def test_exact_rule_with_space_and_column_rule(tmp_path):
    _htnet_corpus(tmp_path)
    t = load_flow_images(tmp_path, file_rule="{sub}_{filename_o} .png")
    assert len(t) == 6
    assert not any("ignoring spaces" in n for n in t.report.notes)
    # A column holding the file name: the CSV's imagename column names .jpg files that are not
    # here, so the same stem with the present extension (.png, spaced) is taken.
    t2 = load_flow_images(tmp_path, file_rule="imagename")
    assert len(t2) == 6
    assert Path(t2.row("flow_images/smic/s01/s01_ne_01")["path"]).name == "s01_s01_ne_01 .png"


def test_missing_and_unreadable_images(tmp_path):
    img_dir = _htnet_corpus(tmp_path)
    (img_dir / "sub02_EP09_01 .png").unlink()
    (img_dir / "s01_s01_ne_01 .png").write_bytes(b"not a png at all")
    _flow_png(img_dir / "006_006_1_2 .png", channels=1)  # grey: not u, v, strain
    t = load_flow_images(tmp_path)
    assert len(t) == 3
    assert t.report.missing == ["flow_images/casme2/sub02/EP09_01"]
    reasons = {p.sample: p.reason for p in t.report.problems}
    assert "cannot decode" in reasons["flow_images/smic/s01/s01_ne_01"]
    assert "1 channel(s); expected 3" in reasons["flow_images/samm/006/006_1_2"]
    assert any("absent" in n for n in t.report.notes)


def test_missing_column_names_csv_and_columns(tmp_path):
    (tmp_path / "labels.csv").write_text("dataset,sub,filename_o\ncasme2,sub01,EP02_01f\n")
    _flow_png(tmp_path / "imgs" / "sub01_EP02_01f.png")
    with pytest.raises(DataError) as e:
        load_flow_images(tmp_path)
    msg = str(e.value)
    assert "labels.csv" in msg and "no label column" in msg
    assert "['dataset', 'sub', 'filename_o']" in msg and "emotion" in msg
    with pytest.raises(DataError, match="no subject column 'person'"):
        load_flow_images(tmp_path, subject_column="person", label_column="filename_o")


def test_missing_csv_and_bad_rule(tmp_path):
    with pytest.raises(DataError, match="label CSV not found"):
        load_flow_images(tmp_path, csv="nope.csv")
    with pytest.raises(DataError, match="no label CSV"):
        load_flow_images(tmp_path)
    _htnet_corpus(tmp_path)
    with pytest.raises(DataError, match=r"uses \{video\}, which is no column"):
        load_flow_images(tmp_path, file_rule="{video}.png")
    with pytest.raises(DataError, match="neither a format string nor a column"):
        load_flow_images(tmp_path, file_rule="file_column")
    with pytest.raises(DataError, match="does not exist"):
        load_flow_images(tmp_path / "absent")


def test_label_names_and_text_labels(tmp_path):
    _htnet_corpus(tmp_path)
    t = load_flow_images(tmp_path, label_names=["disgust", "happiness", "surprise"])
    assert t.row("flow_images/casme2/sub01/EP02_01f")["emotion"] == "happiness"
    assert t.row("flow_images/casme2/sub01/EP02_01f")["label"] == "happy"
    t2 = load_flow_images(tmp_path, label_names={0: "negative", 1: "positive"})
    assert len(t2) == 4  # code 2 has no name: reported, not guessed
    assert sum("label code '2' is not in label_names" in p.reason for p in t2.report.problems) == 2
    with pytest.raises(ConfigError, match="label_names"):
        load_flow_images(tmp_path, label_names="megc")


def test_text_labels_no_dataset_column_and_scheme(tmp_path):
    (tmp_path / "flows").mkdir()
    lines = ["Subject,Clip,Emotion"]
    for s, c, e in [("1", "EP01", "happiness"), ("1", "EP02", "repression"), ("2", "EP01", "others")]:
        lines.append(f"{s},{c},{e}")
        _flow_png(tmp_path / "flows" / f"{s}_{c}.png")
    (tmp_path / "sheet.csv").write_text("\n".join(lines) + "\n")
    t = load_flow_images(tmp_path)
    assert t.sample_ids == ["flow_images/1/EP01", "flow_images/1/EP02", "flow_images/2/EP01"]
    assert t.df["emotion"].tolist() == ["happiness", "repression", "others"]
    assert t.df["label"].tolist() == ["happy", "repression", "others"]
    assert set(t.df["corpus"]) == {""}
    assert any("no dataset column" in n for n in t.report.notes)
    m = apply_scheme(t, "megc_3class")
    assert m.class_counts() == {"negative": 1, "positive": 1}


def test_file_column_without_clip_column(tmp_path):
    (tmp_path / "labels.csv").write_text("subject,file,emotion\n7,a b.png,happiness\n8,c.png,fear\n")
    _flow_png(tmp_path / "a b.png")
    _flow_png(tmp_path / "c.png")
    t = load_flow_images(tmp_path, file_rule="file")
    assert t.sample_ids == ["flow_images/7/a b", "flow_images/8/c"]
    assert t.df["label"].tolist() == ["happy", "fear"]
    with pytest.raises(DataError, match=r"uses \{clip\}, which is no column"):
        load_flow_images(tmp_path)  # the default rule needs a clip column


def test_ststnet_loso_folders(tmp_path):
    root = tmp_path / "input"
    samples = {"sub01": [("0", "sub01_EP02_01f"), ("2", "sub01_EP19_05f")], "s03": [("1", "s03_s03_po_11")],
               "006": [("0", "006_006_1_2")]}
    for subj, items in samples.items():
        for code, name in items:
            _flow_png(root / subj / "u_test" / code / f"{name}.png")
        # every other subject's samples repeat in u_train: they must not be read twice
        for other, its in samples.items():
            if other != subj:
                for code, name in its:
                    _flow_png(root / subj / "u_train" / code / f"{name}.png")
    t = load_flow_images(root)
    assert len(t) == 4
    assert sorted(t.subjects) == ["flow_images/006", "flow_images/s03", "flow_images/sub01"]
    assert t.row("flow_images/sub01/sub01_EP19_05f")["label"] == "surprise"
    assert t.row("flow_images/s03/s03_s03_po_11")["path"].endswith("s03/u_test/1/s03_s03_po_11.png")
    assert any("train folders repeat" in n for n in t.report.notes)
