import numpy as np
import pandas as pd
import pytest

from mekit.errors import ConfigError, DataError
from mekit.intensity.plots import plot_intensity_curve, plot_intensity_grid, select_clips
from mekit.intensity.targets import timing_curve

PNG = b"\x89PNG\r\n\x1a\n"


def _image_size(path):
    import matplotlib.image as mpimg

    return mpimg.imread(path).shape


def test_plot_intensity_curve_writes_a_png(tmp_path):
    f = np.arange(40, 71)
    t = timing_curve(40, 52, 70, f, profile="cosine")
    p = np.roll(t, 2) * 0.8
    out = plot_intensity_curve(f, t, p, 40, 52, 70, title="casme2/sub01/EP02_01f", path=tmp_path / "sub" / "c.png")
    assert out == tmp_path / "sub" / "c.png"
    data = out.read_bytes()
    assert data.startswith(PNG) and len(data) > 5000
    h, w = _image_size(out)[:2]
    assert (w, h) == (768, 432)  # 6.4 x 3.6 in at 120 dpi
    # no target and no timing: still a figure
    bare = plot_intensity_curve(f, None, p, path=tmp_path / "bare.png")
    assert bare.read_bytes().startswith(PNG)


def test_plot_intensity_curve_rejects_mismatched_lengths(tmp_path):
    with pytest.raises(DataError, match="pred has 3 values for 4 frames"):
        plot_intensity_curve([1, 2, 3, 4], None, [0, 1, 0], path=tmp_path / "x.png")


def _frames(n_clips: int) -> pd.DataFrame:
    parts = []
    for k in range(n_clips):
        f = np.arange(10 * k, 10 * k + 21)
        t = timing_curve(f[0], f[0] + 8, f[-1], f)
        parts.append(pd.DataFrame({"sample_id": f"synthetic/sub01/clip{k:02d}", "frame": f, "target": t,
                                   "pred": t * (1 - 0.1 * k), "apex": f[0] + 8}))
    return pd.concat(parts, ignore_index=True)


def test_plot_intensity_grid_pages_and_selection(tmp_path):
    paths = plot_intensity_grid(_frames(7), tmp_path / "grid", max_clips=5, per_figure=4, ncols=2)
    assert [p.name for p in paths] == ["intensity_curves_01.png", "intensity_curves_02.png"]
    assert all(p.read_bytes().startswith(PNG) and p.stat().st_size > 5000 for p in paths)
    # 4 panels in 2 x 2 on the first page, 1 panel on the second
    assert _image_size(paths[0])[:2] == (int(2 * 2.9 * 110), int(2 * 4.2 * 110))
    assert _image_size(paths[1])[:2] == (int(2.9 * 110), int(4.2 * 110))
    worst = plot_intensity_grid(_frames(3), tmp_path / "worst", max_clips=1, select="worst", prefix="w")
    assert [p.name for p in worst] == ["w_01.png"]


def test_select_clips_by_error():
    df = _frames(4)  # clip k predicts the target scaled by 1 - 0.1 k: clip03 is worst, clip00 best
    assert select_clips(df, 2, "first") == ["synthetic/sub01/clip00", "synthetic/sub01/clip01"]
    assert select_clips(df, 2, "worst") == ["synthetic/sub01/clip03", "synthetic/sub01/clip02"]
    assert select_clips(df, 3, "best") == ["synthetic/sub01/clip00", "synthetic/sub01/clip01",
                                           "synthetic/sub01/clip02"]


def test_plot_intensity_grid_errors(tmp_path):
    with pytest.raises(DataError, match="lack columns"):
        plot_intensity_grid(_frames(1).drop(columns=["target"]), tmp_path)
    with pytest.raises(ConfigError, match="select"):
        plot_intensity_grid(_frames(1), tmp_path, select="random")
