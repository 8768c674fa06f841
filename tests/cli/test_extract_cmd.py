"""`mekit extract VIDEO --intervals CSV --out DATASET` end to end."""

from __future__ import annotations

import csv

import pytest
from typer.testing import CliRunner

from mekit.cli.main import app
from mekit.errors import DataError

runner = CliRunner()


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    from mekit.data.synthetic_long import generate_long_video

    return generate_long_video(tmp_path_factory.mktemp("rec") / "rec.avi", seconds=6, fps=30, width=320, height=240,
                               seed=1, n_micro=1)


def test_extract_writes_a_dataset_the_loader_reads(recording, tmp_path):
    from mekit.data import load_dataset

    csv_path = tmp_path / "megc.csv"
    with open(csv_path, "w", newline="") as fh:
        csv.writer(fh).writerows([["vid", "pred_onset", "pred_offset", "type"], ["rec", 54, 66, "me"],
                                  ["rec", 70, 60, "me"], ["clip9", 1, 5, "me"]])
    out = tmp_path / "ds"
    res = runner.invoke(app, ["extract", str(recording.path), "--intervals", str(csv_path), "--out", str(out),
                              "--subject", "sub04", "--context", "0.1"])
    assert res.exit_code == 0, res.output
    assert "1 clip(s) written" in res.output and "from 2 row(s) taken; skipped 1 row(s) of other videos" in res.output
    assert "megc.csv row 3: offset 60 is before onset 70" in res.output
    (row,) = load_dataset("casme2", root=out).df.itertuples()
    assert (row.subject, row.onset, row.offset, row.emotion) == ("casme2/sub04", 54, 66, "others")
    again = runner.invoke(app, ["extract", str(recording.path), "--intervals", str(csv_path), "--out", str(out)])
    assert again.exit_code != 0 and isinstance(again.exception, DataError)
    assert "not empty" in str(again.exception)
