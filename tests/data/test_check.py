"""`check_dataset` and `mekit data check` on real data (where present) and fake corpora."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mekit.cli.main import app
from mekit.data.check import check_dataset, find_cross_split_duplicates, read_error, representative_image
from mekit.data.image_folder import load_image_folder
from mekit.data.labels import get_scheme
from mekit.data.schema import LoadReport, SampleTable
from mekit.errors import DataError

CK_PATTERN = r"^(S\d+)_"
runner = CliRunner()


def png(path: Path, seed: int = 0, size: int = 32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Smooth random images: distinct seeds give clearly different perceptual hashes.
    small = np.random.default_rng(seed).integers(0, 256, (4, 4), dtype=np.uint8)
    Image.fromarray(small).resize((size, size), Image.BILINEAR).save(path)
    return path


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def fake_split_corpus(root: Path) -> Path:
    png(root / "train/happy/S001_a.png", 1)
    png(root / "train/happy/S002_b.png", 2)
    png(root / "train/sad/S001_c.png", 3)
    png(root / "test/happy/S003_d.png", 4)
    png(root / "test/sad/S004_e.png", 5)
    (root / "test/sad/S004_copy.png").write_bytes((root / "train/happy/S002_b.png").read_bytes())  # leak
    truncate(png(root / "test/sad/S005_f.png", 6, size=64))
    return root


# -- library ------------------------------------------------------------------------------------
def test_check_ckplus(ckplus_root):
    rep = check_dataset("image_folder", ckplus_root, subject_pattern=CK_PATTERN)
    assert (rep.n_samples, len(rep.classes), rep.n_subjects) == (981, 7, 118)
    assert rep.classes["surprise"] == 249 and rep.classes["sad"] == 84
    assert rep.problems == [] and rep.missing == [] and rep.duplicates == [] and rep.ok
    assert rep.subjects["image_folder/S005"] == 3 and sum(rep.subjects.values()) == 981
    assert rep.label_mapping["sadness"] == "sad"


def test_truncated_image_and_cross_split_duplicate(tmp_path):
    root = fake_split_corpus(tmp_path / "ds")
    rep = check_dataset("image_folder", root, subject_pattern=CK_PATTERN)
    bad = {p.sample: p.reason for p in rep.problems}
    assert list(bad) == ["image_folder/test/sad/S005_f"] and "truncated" in bad["image_folder/test/sad/S005_f"]
    assert rep.n_samples == 6 and rep.classes == {"happy": 3, "sad": 3}  # the truncated one is excluded
    assert rep.splits == {"test": {"happy": 1, "sad": 2}, "train": {"happy": 2, "sad": 1}}
    assert rep.n_subjects == 4 and "image_folder/S005" not in rep.subjects
    assert [(d["a"], d["b"], d["distance"]) for d in rep.duplicates] == [
        ("image_folder/test/sad/S004_copy", "image_folder/train/happy/S002_b", 0)]
    assert not rep.ok
    assert rep.table is not None and len(rep.table) == 6


def test_duplicate_threshold_none_skips_search_and_same_split_copies_are_not_pairs(tmp_path):
    root = fake_split_corpus(tmp_path / "ds")
    assert check_dataset("image_folder", root, duplicate_threshold=None).duplicates == []
    png(root / "train/sad/S009_z.png", 1)  # a copy of S001_a, but inside train
    pairs = find_cross_split_duplicates(load_image_folder(root), threshold=0)
    assert {(d["a"], d["b"]) for d in pairs} == {("image_folder/test/sad/S004_copy", "image_folder/train/happy/S002_b")}


def test_read_error(tmp_path):
    good = png(tmp_path / "g.png", 1)
    assert read_error(good) is None
    assert "truncated" in read_error(truncate(png(tmp_path / "t.png", 2, size=64)))
    (tmp_path / "x.jpg").write_bytes(b"not an image at all")
    assert "not a readable image" in read_error(tmp_path / "x.jpg")


def _frames_table(root: Path) -> SampleTable:
    """Three frame clips: one complete, one with frame 3 missing, one whose folder is absent."""
    for clip, frames in {"EP01": range(1, 6), "EP02": [1, 2, 4, 5]}.items():
        for f in frames:
            png(root / "sub01" / clip / f"img{f}.jpg", f)
    recs = []
    for clip, (on, ap, off) in {"EP01": (1, 3, 5), "EP02": (1, 2, 5), "EP03": (1, 2, 3), "EP04": (2, 9, 4)}.items():
        recs.append(dict(sample_id=f"fake/sub01/{clip}", dataset="fake", subject="fake/sub01", clip=clip,
                         media="frames", path=str(root / "sub01" / (clip if clip != "EP04" else "EP01")),
                         frame_template="img{frame}.jpg", onset=on, apex=ap, offset=off, fps=200.0,
                         emotion="happiness", label="happy", split=""))
    return SampleTable.from_records(recs, LoadReport(missing=["fake/sub01/EP09"]), name="fake")


def test_frames_missing_clip_missing_frame_and_apex_outside(tmp_path):
    rep = check_dataset(_frames_table(tmp_path))
    reasons = {p.sample: p.reason for p in rep.problems}
    assert rep.n_samples == 1 and rep.classes == {"happy": 1}
    assert rep.missing == ["fake/sub01/EP09", "fake/sub01/EP03"]
    assert "1 of 5 frames missing" in reasons["fake/sub01/EP02"] and "img3.jpg" in reasons["fake/sub01/EP02"]
    assert "clip folder missing" in reasons["fake/sub01/EP03"]
    assert "apex 9 is outside [onset 2, offset 4]" == reasons["fake/sub01/EP04"]


def test_truncated_apex_frame_is_found(tmp_path):
    t = _frames_table(tmp_path)
    truncate(png(tmp_path / "sub01/EP01/img3.jpg", 3, size=64))
    rep = check_dataset(t.subset(["fake/sub01/EP01"]))
    assert rep.n_samples == 0 and "frame 3 (img3.jpg)" in rep.problems[0].reason


def test_representative_image_is_apex_or_middle_frame(tmp_path):
    row = _frames_table(tmp_path).row("fake/sub01/EP01").copy()
    assert representative_image(row).name == "img3.jpg"
    row["apex"], row["onset"], row["offset"] = None, 1, 4
    assert representative_image(row).name == "img2.jpg"


def test_unknown_labels_against_applied_scheme(tmp_path):
    root = fake_split_corpus(tmp_path / "ds")
    t = load_image_folder(root, subject_pattern=CK_PATTERN)
    t.scheme = get_scheme("megc_3class")  # as if labelled by it, but labels were left canonical
    rep = check_dataset(t, duplicate_threshold=None, check_images=False)
    assert rep.n_samples == 0 and all("is not a class of scheme megc_3class" in p.reason for p in rep.problems)
    # applying a scheme maps and drops instead: sad is not in the CASME II 5-class set
    rep5 = check_dataset(t, label_scheme="casme2_5class", duplicate_threshold=None)
    assert rep5.classes == {"happiness": 3} and rep5.dropped == {"sad": 4} and rep5.scheme == "casme2_5class"


# -- command --------------------------------------------------------------------------------------
def test_cli_json_on_ckplus(ckplus_root):
    res = runner.invoke(app, ["data", "check", "image_folder", "--root", str(ckplus_root),
                              "--subject-pattern", CK_PATTERN, "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert (d["n_samples"], len(d["classes"]), d["n_subjects"]) == (981, 7, 118)
    assert d["missing"] == [] and d["problems"] == [] and d["splits"] == {"": d["classes"]}
    assert d["label_mapping"]["sadness"] == "sad" and len(d["subjects"]) == 118


def test_cli_tables_and_loader_options(tmp_path):
    root = fake_split_corpus(tmp_path / "ds")
    res = runner.invoke(app, ["data", "check", "image_folder", "--root", str(root), "--subject-pattern", CK_PATTERN,
                              "--option", "dataset=kag"])
    assert res.exit_code == 0, res.output
    out = res.stdout
    for text in ("kag: 6 samples, 4 subjects", "Samples per class", "Samples per split", "Samples per subject",
                 "S005_f", "truncated", "Near-duplicates across splits (1)"):
        assert text in out, text
    strict = runner.invoke(app, ["data", "check", "image_folder", "--root", str(root), "--strict", "--json"])
    assert strict.exit_code == 1 and json.loads(strict.stdout)["ok"] is False


def test_cli_missing_root_is_a_data_error(tmp_path):
    res = runner.invoke(app, ["data", "check", "image_folder", "--root", str(tmp_path / "absent"), "--json"])
    assert isinstance(res.exception, DataError) and "absent" in str(res.exception)


@pytest.mark.slow
def test_console_script_prints_one_line_not_a_traceback(tmp_path):
    exe = Path(sys.executable).with_name("mekit")
    if not exe.exists():
        pytest.skip(f"console script {exe} not installed")
    proc = subprocess.run([str(exe), "data", "check", "image_folder", "--root", str(tmp_path / "absent")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: ") and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    bad = subprocess.run([str(exe), "data", "check", "image_folder", "--root", str(tmp_path),
                          "--subject-pattern", "(S"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "not a valid regular expression" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_cli_casme2(casme2_root):
    if importlib.util.find_spec("mekit.data.casme2") is None:
        pytest.skip("the casme2 loader (mekit.data.casme2) is not available")
    res = runner.invoke(app, ["data", "check", "casme2", "--root", str(casme2_root), "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["n_samples"] == 244 and d["n_subjects"] == 26 and len(d["missing"]) == 11
    assert d["problems"] == []


def _video(path: Path, n: int = 4) -> Path:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width = s.height = 32
        s.pix_fmt = "yuv420p"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 40 * i, np.uint8), format="rgb24")
            c.mux(s.encode(frame))
        c.mux(s.encode())
    return path


def test_videos_are_decoded(tmp_path):
    good = _video(tmp_path / "a.mp4")
    (tmp_path / "b.mp4").write_bytes(b"\x00" * 64)
    recs = [dict(sample_id=f"v/{p.stem}", dataset="v", subject="v/s1", clip=p.name, media="video", path=str(p),
                 emotion="happy", label="happy", split="") for p in (good, tmp_path / "b.mp4", tmp_path / "c.mp4")]
    rep = check_dataset(SampleTable.from_records(recs, name="v"))
    reasons = {p.sample: p.reason for p in rep.problems}
    assert rep.n_samples == 1 and rep.missing == ["v/c"]
    assert "cannot decode video" in reasons["v/b"] and "file missing" in reasons["v/c"]


def test_cli_label_scheme(tmp_path):
    root = fake_split_corpus(tmp_path / "ds")
    res = runner.invoke(app, ["data", "check", "image_folder", "--root", str(root), "--label-scheme", "casme2_4class",
                              "--duplicate-threshold", "-1", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["scheme"] == "casme2_4class" and d["classes"] == {"negative": 3, "positive": 3}
    assert d["duplicates"] == [] and d["n_subjects"] == 6  # no pattern: one subject per image


def test_malformed_frame_template_is_a_problem_not_a_crash(tmp_path):
    t = _frames_table(tmp_path).subset(["fake/sub01/EP01", "fake/sub01/EP02"])
    t.df.loc[0, "frame_template"] = "img{frm}.jpg"
    rep = check_dataset(t)
    assert rep.n_samples == 0
    assert "cannot check its files (KeyError" in {p.sample: p.reason for p in rep.problems}["fake/sub01/EP01"]
