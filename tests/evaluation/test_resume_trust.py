"""Saved results are reused only when nothing that decides them changed: the resume stamp covers
config, data (ids, labels, subjects, file fingerprints) and code; the preprocessing cache key
covers the files' contents; fold folders are injective; every exclusion is reported."""

from __future__ import annotations

import json
import os
import time

import cv2
import numpy as np
import pandas as pd
import pytest

import mekit.experiment as runner
import mekit.tasks.classification as classification
from mekit.tasks import fold_dir_name
from mekit.config import load_config
from mekit.errors import ConfigError, DataError
from mekit.fingerprint import code_version as REAL_CODE_VERSION
from mekit.fingerprint import sample_fingerprint, table_fingerprint
from mekit.preprocess.pipeline import PreprocessConfig, preprocess, stage_keys

SUBJECTS = ("S1", "S2", "S3", "S4")


@pytest.fixture(autouse=True)
def _fixed_code_version(monkeypatch):
    """The code version is a hash of mekit's sources; pinned here so that only what a test
    changes decides whether saved folds are reused."""
    import mekit.fingerprint

    monkeypatch.setattr(mekit.fingerprint, "code_version", lambda: "test+0")
CLASSES = ("happy", "surprise")


def make_image_corpus(root, seed=0):
    """A tiny image-folder corpus: 2 classes x 4 subjects x 2 images (class = bright / dark)."""
    rng = np.random.default_rng(seed)
    for c, base in zip(CLASSES, (180, 60)):
        (root / c).mkdir(parents=True, exist_ok=True)
        for s in SUBJECTS:
            for k in range(2):
                img = np.clip(base + rng.normal(0, 25, (32, 32)), 0, 255).astype(np.uint8)
                cv2.imwrite(str(root / c / f"{s}_{k}.png"), img)
    return root


def image_cfg(root, **over):
    return load_config(None, {"name": "img", "data.loader": "image_folder", "data.root": str(root),
                              "data.options": {"subject_pattern": r"^(S\d+)_"},
                              "preprocess": {"detector": "none", "size": 32, "landmarks": False, "workers": 1},
                              "features.name": "hog", "features.params": {},
                              "model.name": "logreg", "model.params": {"grid": {}},
                              "protocol.name": "loso", "output.plots": False, **over})


class Counter:
    def __init__(self, monkeypatch):
        self.n = 0
        orig = classification.make_model

        def make(c, seed, checkpoint_dir=None):
            self.n += 1
            return orig(c, seed, checkpoint_dir)

        monkeypatch.setattr(classification, "make_model", make)


def _run(root, out, **kw):
    return runner.run_experiment(image_cfg(root), out, progress=False, **kw)


def test_relabelled_or_deleted_images_are_not_served_from_saved_folds(tmp_path, monkeypatch):
    root = make_image_corpus(tmp_path / "corpus")
    out = tmp_path / "run"
    first = _run(root, out)
    assert first.metrics["resume"]["folds_resumed"] == 0
    # unchanged data: every fold is read back, and the report says so
    c = Counter(monkeypatch)
    again = _run(root, out)
    assert c.n == 0 and again.metrics["resume"]["folds_resumed"] == 4
    assert "4 of 4 folds were read back" in (out / "report.md").read_text()
    # the user deletes one image and relabels another by moving it to the other class folder
    (root / "happy" / "S1_0.png").unlink()
    (root / "happy" / "S2_1.png").rename(root / "surprise" / "S2_7.png")
    c = Counter(monkeypatch)
    fresh = _run(root, out)
    assert c.n == 4 and fresh.metrics["resume"]["folds_resumed"] == 0
    assert "data changed" in fresh.metrics["resume"]["discarded"]
    pred = pd.read_csv(out / "predictions.csv", dtype=str)
    ids = set(pred["sample_id"])
    assert "image_folder/happy/S1_0" not in ids and "image_folder/happy/S2_1" not in ids
    assert list(pred.loc[pred["sample_id"] == "image_folder/surprise/S2_7", "true"]) == ["surprise"]
    assert "Saved folds were discarded: the data changed" in (out / "report.md").read_text()


def test_resume_strict_stops_on_changed_data_and_off_always_recomputes(tmp_path, monkeypatch):
    root = make_image_corpus(tmp_path / "corpus")
    out = tmp_path / "run"
    _run(root, out)
    img = root / "surprise" / "S3_0.png"
    cv2.imwrite(str(img), np.zeros((32, 32), np.uint8))  # a fixed (re-exported) image
    with pytest.raises(DataError, match=r"different data \(resume strict\)"):
        _run(root, out, resume="strict")
    c = Counter(monkeypatch)
    res = _run(root, out, resume="off")
    assert c.n == 4 and res.metrics["resume"]["discarded"] == "resume is off"
    with pytest.raises(ConfigError, match="resume: 'maybe'"):
        _run(root, out, resume="maybe")


def test_changed_code_discards_saved_folds(tmp_path, monkeypatch):
    import mekit.fingerprint

    root = make_image_corpus(tmp_path / "corpus")
    out = tmp_path / "run"
    _run(root, out)
    monkeypatch.setattr(mekit.fingerprint, "code_version", lambda: "test+1")
    c = Counter(monkeypatch)
    res = _run(root, out)
    assert c.n == 4 and "code changed" in res.metrics["resume"]["discarded"]


def test_code_version_hashes_the_sources(tmp_path, monkeypatch):
    import mekit

    pkg = tmp_path / "mekit"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("x = 1\n")
    (pkg / "a.py").write_text("y = 2\n")
    monkeypatch.setattr(mekit, "__file__", str(pkg / "__init__.py"))
    v1 = REAL_CODE_VERSION()
    assert v1.startswith(mekit.__version__ + "+") and REAL_CODE_VERSION() == v1
    (pkg / "a.py").write_text("y = 3\n")
    assert REAL_CODE_VERSION() != v1


def test_fold_folder_names_are_injective():
    names = ["P:1", "P_1", "P/1", "P 1", "p_1", "sub01", "casme2/sub01", "casme2_sub01", ""]
    dirs = [fold_dir_name(n) for n in names]
    assert len(set(dirs)) == len(names)
    for d in dirs:
        assert "/" not in d and ":" not in d and d and not d.startswith(".")


def test_subjects_differing_only_in_unsafe_characters_keep_their_own_folds(tmp_path, monkeypatch):
    root = make_image_corpus(tmp_path / "corpus")
    # subjects "P:1" and "P_1" (and two more) through an annotations file
    rows = []
    for c in CLASSES:
        for s, subj in zip(SUBJECTS, ("P:1", "P_1", "P/2", "Q")):
            for k in range(2):
                rows.append({"file": f"{c}/{s}_{k}.png", "label": c, "subject": subj})
    ann = tmp_path / "annotations.csv"
    pd.DataFrame(rows).to_csv(ann, index=False)
    cfg = image_cfg(root, **{"data.options": {"annotations": str(ann)}})
    out = tmp_path / "run"
    res = runner.run_experiment(cfg, out, progress=False)
    folds = sorted(p.name for p in (out / "folds" / "seed0").iterdir())
    assert len(folds) == 4
    # a resumed run reads every subject's fold back, none lost
    again = runner.run_experiment(cfg, out, progress=False)
    assert again.metrics["resume"]["folds_resumed"] == 4
    assert sorted(again.predictions["subject"]) == sorted(res.predictions["subject"])
    assert (again.predictions["sample_id"].value_counts() == 1).all()


def test_table_fingerprint_tracks_labels_subjects_files(tmp_path):
    root = make_image_corpus(tmp_path / "c")
    rows = [{"sample_id": "a", "label": "happy", "subject": "S1", "media": "image",
             "path": str(root / "happy" / "S1_0.png")}]
    base = table_fingerprint(rows)
    assert table_fingerprint([{**rows[0], "label": "surprise"}]) != base
    assert table_fingerprint([{**rows[0], "subject": "S2"}]) != base
    assert table_fingerprint(rows + [{**rows[0], "sample_id": "b"}]) != base
    cv2.imwrite(rows[0]["path"], np.full((32, 32), 7, np.uint8))
    assert table_fingerprint(rows) != base


def test_a_fixed_frame_changes_the_cache_key_and_is_recomputed(tmp_path):
    clip = tmp_path / "clip"
    clip.mkdir()
    rng = np.random.default_rng(0)
    for n in range(1, 6):
        cv2.imwrite(str(clip / f"img{n}.jpg"), rng.integers(0, 255, (48, 48, 3), dtype=np.uint8))
    row = {"sample_id": "x/1", "media": "frames", "path": str(clip), "frame_template": "img{frame}.jpg",
           "onset": 1, "apex": 3, "offset": 5}
    cfg = PreprocessConfig.from_dict({"detector": "none", "size": 32, "landmarks": False, "flow": "farneback"})
    k1 = stage_keys(row, cfg)
    assert stage_keys(row, cfg) == k1  # stable while nothing changes
    time.sleep(0.01)
    cv2.imwrite(str(clip / "img3.jpg"), np.zeros((48, 48, 3), np.uint8))
    os.utime(clip / "img3.jpg", ns=(time.time_ns(), time.time_ns()))
    k2 = stage_keys(row, cfg)
    assert k2["align"] != k1["align"] and k2["flow"] != k1["flow"]
    assert sample_fingerprint({**row, "path": str(tmp_path / "absent")}) == "missing"


def test_an_unwritable_cache_stops_once_with_one_line(tmp_path):
    from mekit.data import load_dataset

    table = load_dataset("synthetic", None, None, n_subjects=2, clips_per_subject=1, size=48)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    cfg = {"detector": "none", "size": 32, "landmarks": False, "flow": "farneback",
           "cache_dir": str(blocker / "cache")}
    with pytest.raises(ConfigError, match="cache folder .* is not writable") as e:
        preprocess(table, cfg, progress=False)
    assert "\n" not in str(e.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_a_read_only_cache_stops_once_with_one_line(tmp_path):
    from mekit.data import load_dataset

    table = load_dataset("synthetic", None, None, n_subjects=2, clips_per_subject=1, size=48)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="not writable"):
            preprocess(table, {"detector": "none", "size": 32, "landmarks": False, "cache_dir": str(ro)},
                       progress=False)
    finally:
        ro.chmod(0o700)


def test_an_output_path_that_is_a_file_is_one_line(tmp_path):
    root = make_image_corpus(tmp_path / "corpus")
    f = tmp_path / "out.txt"
    f.write_text("x")
    with pytest.raises(DataError, match="output path is a file"):
        _run(root, f)
    with pytest.raises(DataError, match="cannot create the output folder|output path is a file"):
        _run(root, f / "sub")


def test_every_exclusion_is_listed_counted_and_summarised(tmp_path, monkeypatch):
    root = make_image_corpus(tmp_path / "corpus")
    (root / "happy" / "S1_1.png").write_bytes(b"")  # an empty (unreadable) image
    (root / "happy" / "nosubject.png").write_bytes((root / "happy" / "S1_0.png").read_bytes())
    out = tmp_path / "run"
    res = _run(root, out)
    ex = pd.read_csv(out / "excluded.csv", dtype=str)
    assert set(ex.columns) == {"sample", "stage", "reason"}
    assert ex["sample"].str.contains("nosubject").any()
    assert ex["sample"].str.contains("S1_1").any()
    m = json.loads((out / "metrics.json").read_text())
    assert m["excluded"]["total"] == len(ex) >= 2
    assert m["n_samples"] + m["excluded"]["total"] == 17
    md = (out / "report.md").read_text()
    assert f"**Excluded.** {m['excluded']['total']} samples were excluded" in md
    assert "excluded.csv" in md
    assert res.excluded and all(r["reason"] for r in res.excluded)


def test_a_partial_composite_is_named_in_the_report(tmp_path):
    from mekit.evaluation.report import markdown

    root = make_image_corpus(tmp_path / "corpus")
    res = _run(root, tmp_path / "run")
    m = {**res.metrics, "partial_composite": {"samm": "no frames under /x/SAMM"}, "corpora": {"casme2": 16}}
    md = markdown(m, res.config)
    assert "**PARTIAL COMPOSITE**: corpora left out: samm (no frames under /x/SAMM)" in md
    assert "Corpora: casme2 16." in md


def test_a_class_too_small_to_evaluate_is_refused_by_name(tmp_path):
    root = make_image_corpus(tmp_path / "corpus")
    (root / "fear").mkdir()
    (root / "fear" / "S1_5.png").write_bytes((root / "happy" / "S1_0.png").read_bytes())
    with pytest.raises(DataError, match=r"'fear' \(1 sample, 1 subject\)"):
        _run(root, tmp_path / "run")


def test_the_console_says_what_was_resumed_discarded_and_excluded(tmp_path):
    from typer.testing import CliRunner

    from mekit.cli.main import app

    root = make_image_corpus(tmp_path / "corpus")
    (root / "happy" / "nosubject.png").write_bytes((root / "happy" / "S1_0.png").read_bytes())
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(image_cfg(root).to_yaml())
    out = tmp_path / "run"
    cli = CliRunner()
    args = ["evaluate", "--config", str(cfg_path), "--out", str(out)]
    first = cli.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "1 samples were excluded: 1 by the loader" in first.output and "resumed" not in first.output
    second = cli.invoke(app, args)
    assert "resumed: 4 of 4 folds read back" in second.output
    (root / "surprise" / "S4_1.png").unlink()
    third = cli.invoke(app, args + ["--resume", "strict"])
    assert third.exit_code != 0 and "resume strict" in str(third.exception or third.output)
    fourth = cli.invoke(app, args)
    assert "were discarded: the data changed" in fourth.output and "resumed:" not in fourth.output
