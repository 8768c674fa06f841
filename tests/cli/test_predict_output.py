"""Where `mekit train` and `mekit predict` write, and what `mekit predict` reports as skipped."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from mekit.cli.main import app

SYNTH = {"n_subjects": 4, "clips_per_subject": 3, "size": 64}
PRE = {"detector": "none", "size": 64, "landmarks": False, "workers": 1}
CONFIG = {"name": "tiny", "data": {"loader": "synthetic", "options": SYNTH}, "preprocess": PRE,
          "features": {"name": "hoof", "params": {"grid": 3, "bins": 8}},
          "model": {"name": "logreg", "params": {"grid": {"C": [0.1, 1.0]}}}}
runner = CliRunner()


def _invoke(*args):
    res = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


def _fails(args: list, monkeypatch, capsys) -> str:
    """stderr of a mekit command that must fail with one ``error:`` line and exit code 2."""
    from conftest import cli_error_line

    return cli_error_line(args, monkeypatch, capsys)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A bundle written by `mekit train --out <existing folder>`, and an image to predict."""
    root = tmp_path_factory.mktemp("predict_output")
    cfg = root / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    folder = root / "bundles"
    folder.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEKIT_CACHE", str(tmp_path_factory.getbasetemp() / "mekit-cache"))
        res = _invoke("train", "--config", cfg, "--out", folder)
    bundle = folder / "tiny.mekit"  # an existing folder gets <config name>.mekit inside it
    assert bundle.is_file() and str(bundle) in res.output.replace("\n", "")
    from mekit.data import load_dataset

    table = load_dataset("synthetic", None, None, **SYNTH)
    image = root / "face.jpg"
    image.write_bytes(next(Path(table.df["path"][0]).glob("*.jpg")).read_bytes())
    return {"bundle": bundle, "image": image, "config": cfg, "root": root}


def _read_only_folder(tmp_path: Path, request) -> Path:
    """A folder no one may write to: permission bits where they apply, else /sys (root ignores
    permission bits, but not a file system that refuses new files)."""
    d = tmp_path / "read-only"
    d.mkdir()
    d.chmod(0o555)
    request.addfinalizer(lambda: d.chmod(0o755))
    for candidate in (d, Path("/sys")):
        probe = candidate / "mekit-probe"
        try:
            probe.touch()
            probe.unlink()
        except OSError:
            return candidate
    pytest.skip("no read-only folder available on this machine")


# -- mekit predict --out ---------------------------------------------------------------------
@pytest.mark.slow
def test_predict_out_naming_a_folder_writes_predictions_csv_inside(work, tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    res = _invoke("predict", work["bundle"], work["image"], "--out", out)
    written = out / "predictions.csv"
    assert pd.read_csv(written)["sample_id"].tolist() == ["input/face"]
    assert f"predictions: {written}" in res.output.replace("\n", "")
    help_text = " ".join(_invoke("predict", "--help").output.replace("│", " ").split())
    assert "an existing folder gets predictions.csv inside it" in help_text


@pytest.mark.slow
def test_predict_out_under_a_file_is_one_line(work, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    err = _fails(["predict", work["bundle"], work["image"], "--out", blocker / "preds.csv"], monkeypatch, capsys)
    assert "cannot write the predictions" in err and "is a file" in err and str(blocker) in err


@pytest.mark.slow
def test_predict_out_in_a_read_only_folder_is_one_line(work, tmp_path, monkeypatch, capsys, request):
    ro = _read_only_folder(tmp_path, request)
    err = _fails(["predict", work["bundle"], work["image"], "--out", ro / "preds.csv"], monkeypatch, capsys)
    assert "cannot write the predictions" in err and str(ro) in err
    err = _fails(["predict", work["bundle"], work["image"], "--out", ro / "sub" / "preds.csv"], monkeypatch, capsys)
    assert "cannot write the predictions" in err


# -- mekit train --out -----------------------------------------------------------------------
@pytest.mark.slow
def test_train_out_under_a_file_or_read_only_is_one_line(work, tmp_path, monkeypatch, capsys, request):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    err = _fails(["train", "--config", work["config"], "--out", blocker / "m.mekit"], monkeypatch, capsys)
    assert "cannot write the bundle" in err and str(blocker) in err
    ro = _read_only_folder(tmp_path, request)
    err = _fails(["train", "--config", work["config"], "--out", ro / "m.mekit"], monkeypatch, capsys)
    assert "cannot write the bundle" in err and str(ro) in err


# -- skipped inputs --------------------------------------------------------------------------
def _casme2(root: Path) -> Path:
    """A tiny CASME II layout: one clean clip, one with a frame missing between onset and offset
    (the loader keeps it, with a problem), one without its apex frame (the loader drops it)."""
    rng = np.random.default_rng(0)
    rows = []
    for sub, clip, drop in [(1, "EP01_01", ()), (2, "EP02_01", (5,)), (3, "EP03_01", (3,))]:
        folder = root / "Cropped" / f"sub{sub:02d}" / clip
        folder.mkdir(parents=True)
        base = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        for n in range(1, 7):
            if n not in drop:
                cv2.imwrite(str(folder / f"reg_img{n}.jpg"), np.roll(base, n, axis=1))
        rows.append([sub, clip, 1, 3, 6, "4", "happiness"])
    header = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion"]
    pd.DataFrame(rows, columns=header).to_csv(root / "CASME2-coding-20140508.csv", index=False)
    return root


@pytest.mark.slow
def test_only_inputs_left_out_are_listed_as_skipped(work, tmp_path):
    from mekit.engine.predict import predict

    root = _casme2(tmp_path / "casme2")
    df = predict(work["bundle"], loader="casme2", root=root)
    ids = df["sample_id"].tolist()
    assert ids == ["casme2/sub01/EP01_01", "casme2/sub02/EP02_01"]
    assert list(df.attrs["skipped"]) == ["casme2/sub03/EP03_01"]
    assert "apex frame 3" in df.attrs["skipped"]["casme2/sub03/EP03_01"]
    assert any(n.startswith("casme2/sub02/EP02_01:") and "clip kept" in n for n in df.attrs["notes"])

    res = _invoke("predict", work["bundle"], "--loader", "casme2", "--root", root, "--out", tmp_path / "p.csv")
    text = res.output.replace("\n", " ")
    assert "skipped casme2/sub03/EP03_01" in text
    assert "skipped casme2/sub02/EP02_01" not in text and "skipped casme2/sub01" not in text
    assert os.path.exists(tmp_path / "p.csv")
