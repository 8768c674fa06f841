"""Preview figures: one PNG per sample, from the library and from ``mekit preview``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from mekit.errors import DataError  # noqa: E402
from mekit.preprocess.preview import preview, preview_filename, render_preview  # noqa: E402


def _png_shape(path: Path) -> tuple[int, ...]:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, f"{path} is not a readable PNG"
    return img.shape


def test_filename_is_file_safe():
    assert preview_filename("casme2/sub01/EP02_01f") == "casme2__sub01__EP02_01f.png"
    assert preview_filename("x/a b:c") == "x__a_b_c.png"


def test_render_preview_draws_every_panel(tmp_path):
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    uv = np.zeros((64, 64, 2), np.float32)
    uv[20:40, 20:40, 0] = 1.0
    sample = {"onset": crop, "apex": crop, "offset": crop, "uv_onset_apex": uv,
              "strain_onset_apex": np.abs(np.gradient(uv[..., 0])[1]),
              "landmarks": rng.uniform(0, 63, (468, 2)).astype(np.float32),
              "rois": {"mouth": (20, 40, 44, 52)}, "onset_frame": 1, "apex_frame": 5, "offset_frame": 9}
    p = render_preview(sample, tmp_path / "a" / "x.png", title="x")
    h, w = _png_shape(p)[:2]
    assert w > 4 * h  # five panels side by side
    # a flow-image sample has only its stack to show: one panel
    q = render_preview({"flow": np.random.default_rng(1).random((3, 28, 28)).astype(np.float32)},
                       tmp_path / "f.png")
    hq, wq = _png_shape(q)[:2]
    assert wq < 2 * hq
    with pytest.raises(ValueError, match="nothing to draw"):
        render_preview({"onset_frame": 0}, tmp_path / "n.png")


def test_preview_on_synthetic_clips(tmp_path):
    from mekit.data.synthetic import load_synthetic

    table = load_synthetic(tmp_path / "synth", n_subjects=1, clips_per_subject=3, frames=(8, 10))
    cfg = {"cache_dir": str(tmp_path / "c"), "workers": 1, "detector": "none", "landmarks": False,
           "pairs": []}  # preview adds the onset->apex pair it draws
    paths = preview(table, cfg, out_dir=tmp_path / "out", limit=2)
    assert [p.name for p in paths] == [preview_filename(s) for s in table.sample_ids[:2]]
    assert all(p.stat().st_size > 5000 for p in paths)
    one = preview(table, cfg, sample_ids=[table.sample_ids[2]], out_dir=tmp_path / "out2")
    assert [p.name for p in one] == [preview_filename(table.sample_ids[2])]
    with pytest.raises(DataError, match="not in the dataset"):
        preview(table, cfg, sample_ids=["synthetic/nobody"], out_dir=tmp_path / "out3")


@pytest.mark.realdata
def test_preview_on_casme2_frames(casme2_root, tmp_path):
    from mekit.data import load_dataset

    table = load_dataset("casme2", casme2_root)
    ids = table.sample_ids[:2]
    paths = preview(table, {"cache_dir": str(tmp_path / "c"), "workers": 1}, sample_ids=ids,
                    out_dir=tmp_path / "out")
    assert [p.name for p in paths] == [preview_filename(s) for s in ids]
    for p in paths:
        assert p.exists() and p.stat().st_size > 20_000
        h, w, c = _png_shape(p)
        assert c in (3, 4) and w > 4 * h


@pytest.mark.realdata
def test_cli_preview_on_casme2(casme2_root, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from mekit.cli.main import app
    from mekit.data import load_dataset

    sid = load_dataset("casme2", casme2_root).sample_ids[3]
    monkeypatch.setenv("MEKIT_CACHE", str(tmp_path / "mc"))
    out = CliRunner().invoke(app, ["preview", "casme2", "--root", str(casme2_root), "--samples", sid,
                                   "--out", str(tmp_path / "png"), "workers=1"])
    assert out.exit_code == 0, out.output
    assert "wrote 1 preview" in out.output
    assert (tmp_path / "png" / preview_filename(sid)).exists()
