"""EDA figures and per-split imbalance on CK+48 (where present) and on fake corpora."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mekit.analysis.eda import FIGURES, class_stats, run_eda
from mekit.cli.main import app
from mekit.data.image_folder import load_image_folder
from mekit.data.schema import SampleTable

CK_PATTERN = r"^(S\d+)_"


def png(path: Path, value: int = 0, size: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size), value, dtype=np.uint8)).save(path)
    return path


def fake_corpus(root: Path) -> Path:
    """train: happy 4, sad 2 (ratio 2); test: happy 1, sad 3, fear 1 (ratio 3); whole set 5/5/1."""
    files = {"train/happy": ["S1_a", "S1_b", "S2_c", "S2_d"], "train/sadness": ["S1_e", "S2_f"],
             "test/Happy": ["S3_g"], "test/sad": ["S3_h", "S4_i", "S4_j"], "test/fear": ["S4_k"]}
    for i, (folder, names) in enumerate(files.items()):
        for j, n in enumerate(names):
            png(root / folder / f"{n}.png", 20 * i + j)
    return root


def assert_figures(out: Path) -> None:
    for name in [*FIGURES.values(), "eda.json"]:
        p = out / name
        assert p.is_file() and p.stat().st_size > (100 if name.endswith(".json") else 1000), name
    with Image.open(out / FIGURES["sample_grid"]) as im:
        assert im.size[0] > 100 and im.size[1] > 100


@pytest.mark.slow
def test_per_split_imbalance_from_each_splits_own_data(tmp_path):
    t = load_image_folder(fake_corpus(tmp_path / "ds"), subject_pattern=r"^(S\d)_", dataset="kag")
    res = run_eda(t, tmp_path / "out", samples_per_class=3)
    assert_figures(tmp_path / "out")
    assert json.loads((tmp_path / "out" / "eda.json").read_text()) == res
    tr, te = res["splits"]["train"], res["splits"]["test"]
    assert (tr["classes"], tr["imbalance_ratio"], tr["majority"], tr["minority"]) == ({"happy": 4, "sad": 2}, 2.0,
                                                                                      "happy", "sad")
    assert tr["absent_classes"] == ["fear"] and tr["n_subjects"] == 2
    assert (te["imbalance_ratio"], te["majority"], te["minority"]) == (3.0, "sad", "fear")  # fear/happy tie: 'fear'
    ov = res["overall"]
    assert (ov["imbalance_ratio"], ov["majority"], ov["minority"]) == (5.0, "happy", "fear")
    assert res["n_samples"] == 11 and res["n_subjects"] == 4
    assert res["subjects"] == {"kag/S1": 3, "kag/S2": 3, "kag/S3": 2, "kag/S4": 3}
    # the grid prefers distinct subjects: the 3 happy faces come from 3 different people
    subjects = {t.row(s)["subject"] for s in res["sample_grid"]["happy"]}
    assert len(res["sample_grid"]["happy"]) == 3 and len(subjects) == 3
    assert res["sample_grid"]["fear"] == ["kag/test/fear/S4_k"]


def test_class_stats_ties_and_empty():
    st = class_stats(["b", "a", "a", "b", "c"], ["a", "b", "c", "d"])
    assert (st["majority"], st["minority"], st["imbalance_ratio"], st["absent_classes"]) == ("a", "c", 2.0, ["d"])
    assert class_stats([])["imbalance_ratio"] is None


def test_frame_clips_grid_uses_apex_frame(tmp_path):
    recs = []
    for k, (emo, apex) in enumerate([("happiness", 3), ("disgust", None)]):
        clip = tmp_path / f"sub0{k}" / "EP01"
        for f in range(1, 6):
            png(clip / f"img{f}.jpg", 250 if f == (apex or 3) else 10, size=32)
        recs.append(dict(sample_id=f"fake/sub0{k}/EP01", dataset="fake", subject=f"fake/sub0{k}", clip="EP01",
                         media="frames", path=str(clip), frame_template="img{frame}.jpg", onset=1, apex=apex,
                         offset=5, fps=200.0, emotion=emo, label=emo, split=""))
    t = SampleTable.from_records(recs, name="fake")
    res = run_eda(t, tmp_path / "out", samples_per_class=2)
    assert_figures(tmp_path / "out")
    assert res["splits"] == {} and res["overall"]["imbalance_ratio"] == 1.0
    from mekit.analysis.eda import _read_face

    for _, row in t.df.iterrows():  # apex frame 3, or the middle frame (3) where apex is empty: both bright
        assert _read_face(row).mean() > 200


@pytest.mark.slow
def test_ckplus_eda(ckplus_root, tmp_path):
    t = load_image_folder(ckplus_root, subject_pattern=CK_PATTERN)
    res = run_eda(t, tmp_path / "eda", samples_per_class=4)
    assert_figures(tmp_path / "eda")
    assert res["overall"]["imbalance_ratio"] == pytest.approx(249 / 54)
    assert (res["overall"]["majority"], res["overall"]["minority"]) == ("surprise", "contempt")
    assert res["n_subjects"] == 118 and res["subjects_shown"] == 118 and res["splits"] == {}
    assert all(len(v) == 4 for v in res["sample_grid"].values()) and len(res["sample_grid"]) == 7


def test_cli_eda(tmp_path):
    root = fake_corpus(tmp_path / "ds")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["eda", "image_folder", "--root", str(root), "--subject-pattern", r"^(S\d)_",
                                   "--out", str(out), "--samples-per-class", "2"])
    assert res.exit_code == 0, res.output
    assert_figures(out)
    d = json.loads((out / "eda.json").read_text())
    assert d["splits"]["test"]["imbalance_ratio"] == 3.0
    assert "imbalance" in res.stdout and "3.00" in res.stdout and "2.00" in res.stdout


def test_video_grid_uses_first_frame(tmp_path):
    import av

    path = tmp_path / "v.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width = s.height = 32
        s.pix_fmt = "yuv420p"
        for value in (220, 30, 30):
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), value, np.uint8), format="rgb24")))
        c.mux(s.encode())
    t = SampleTable.from_records([dict(sample_id="v/a", dataset="v", subject="v/s1", clip="v.mp4", media="video",
                                       path=str(path), emotion="happy", label="happy", split="")], name="v")
    from mekit.analysis.eda import _read_face

    assert abs(float(_read_face(t.df.iloc[0]).mean()) - 220) < 15
    assert run_eda(t, tmp_path / "out")["sample_grid"] == {"happy": ["v/a"]}
