import numpy as np
import pandas as pd
import pytest

from mekit.data.schema import LoadReport, SampleTable
from mekit.errors import ConfigError, DataError
from mekit.intensity.targets import (PROFILES, SOURCES, facs_intensity, frame_targets_table, intensity_targets,
                                     rating_intensity, soft_labels, timing_curve)


# -- timing curves ------------------------------------------------------------------------------
def test_triangular_exact_values():
    # onset 10, apex 12, offset 16: rise over 2 frames, fall over 4
    np.testing.assert_allclose(timing_curve(10, 12, 16), [0, 0.5, 1, 0.75, 0.5, 0.25, 0])


def test_triangular_at_given_frames_and_outside_is_zero():
    y = timing_curve(100, 110, 120, frames=[90, 100, 105, 110, 115, 120, 130])
    np.testing.assert_allclose(y, [0, 0, 0.5, 1, 0.5, 0, 0])


def test_fractional_frames_interpolate():
    np.testing.assert_allclose(timing_curve(0, 4, 8, frames=[1.0, 6.5]), [0.25, 0.375])


def test_cosine_symmetric_and_exact():
    y = timing_curve(0, 4, 8, profile="cosine")
    np.testing.assert_allclose(y, y[::-1])
    c = 0.5 * np.cos(np.pi / 4)
    np.testing.assert_allclose(y, [0, 0.5 - c, 0.5, 0.5 + c, 1, 0.5 + c, 0.5, 0.5 - c, 0], atol=1e-12)


def test_cosine_matches_the_synthetic_generator():
    from mekit.data.synthetic import intensity_curve

    for n, apex_i in ((30, 11), (41, 20), (50, 1)):
        np.testing.assert_allclose(timing_curve(500, 500 + apex_i, 500 + n - 1, profile="cosine"),
                                   intensity_curve(n, apex_i), atol=1e-12)


def test_gaussian_zero_at_ends_one_at_apex_and_default_sigma():
    y = timing_curve(0, 6, 15, profile="gaussian")
    assert y[0] == 0.0 and y[-1] == 0.0 and y[6] == 1.0
    assert np.all(np.diff(y[:7]) > 0) and np.all(np.diff(y[6:]) < 0)
    # sigma = side/3: one frame before the apex on a 6-frame rise, raw exp(-1/(2*2^2))
    g0 = np.exp(-4.5)
    assert y[5] == pytest.approx((np.exp(-1 / 8) - g0) / (1 - g0))
    # a given sigma (frames) is used on both sides
    y2 = timing_curve(0, 6, 15, profile="gaussian", sigma=1.0)
    g0 = np.exp(-36 / 2)
    assert y2[5] == pytest.approx((np.exp(-0.5) - g0) / (1 - g0))
    assert y2[0] == 0.0 and y2[6] == 1.0


@pytest.mark.parametrize("profile", PROFILES.names())
def test_every_profile_bounds_and_edge_cases(profile):
    y = timing_curve(3, 9, 20, profile=profile)
    assert y.shape == (18,) and y[0] == 0 and y[6] == 1 and y[-1] == 0
    assert np.all((y >= 0) & (y <= 1))
    # apex on the onset: starts at 1 and only falls; apex on the offset: only rises
    a = timing_curve(0, 0, 4, profile=profile)
    assert a[0] == 1 and a[-1] == 0 and np.all(np.diff(a) < 0)
    b = timing_curve(0, 4, 4, profile=profile)
    assert b[0] == 0 and b[-1] == 1 and np.all(np.diff(b) > 0)
    # a single frame is the apex
    np.testing.assert_array_equal(timing_curve(7, 7, 7, profile=profile), [1.0])


def test_missing_apex_is_a_clear_data_error():
    with pytest.raises(DataError, match="apex is missing.*spot"):
        timing_curve(1, None, 10)
    with pytest.raises(DataError, match="apex is missing"):
        timing_curve(1, pd.NA, 10)
    with pytest.raises(DataError, match="apex is missing"):
        timing_curve(1, float("nan"), 10)


def test_out_of_order_and_bad_options():
    with pytest.raises(DataError, match="out of order"):
        timing_curve(10, 5, 20)
    with pytest.raises(DataError, match="onset and offset"):
        timing_curve(None, 5, 20)
    with pytest.raises(ConfigError, match="unknown intensity profile"):
        timing_curve(0, 1, 2, profile="square")
    with pytest.raises(ConfigError, match="sigma"):
        timing_curve(0, 1, 2, profile="gaussian", sigma=0)


# -- per-clip targets ---------------------------------------------------------------------------
@pytest.mark.parametrize("aus,expected", [
    (("4", "L12A"), 0.2), (("1B", "2C", "R6/R12E"), 1.0), (("15D",), 0.8), ("4+L12A+15C", 0.6),
    (("4", "12"), None), ((), None), (None, None),
])
def test_facs_intensity(aus, expected):
    v = facs_intensity(aus)
    assert v is None if expected is None else v == pytest.approx(expected)


def test_rating_rescale_clip_and_strict():
    assert rating_intensity(3, (1, 5)) == pytest.approx(0.5)
    assert rating_intensity(1, (1, 5)) == 0.0 and rating_intensity(5, (1, 5)) == 1.0
    assert rating_intensity(7, (1, 5)) == 1.0 and rating_intensity(-2, (1, 5)) == 0.0
    with pytest.raises(DataError, match=r"outside its scale.*7.*1\.\.5"):
        rating_intensity(7, (1, 5), strict=True)
    with pytest.raises(DataError, match="no rating"):
        rating_intensity(float("nan"), (1, 5))
    with pytest.raises(ConfigError, match="scale"):
        rating_intensity(3, (5, 1))


def test_soft_labels_scores_mapping_and_one_hot():
    classes = ["negative", "positive", "surprise"]
    row = pd.Series({"label": "negative", "score_negative": 0.7, "score_surprise": 0.4, "score_other": 0.9})
    np.testing.assert_allclose(soft_labels(row, classes), [0.7, 0.0, 0.4])
    np.testing.assert_allclose(soft_labels({"positive": 0.8, "surprise": 0.1}, classes), [0, 0.8, 0.1])
    np.testing.assert_array_equal(soft_labels({"label": "surprise"}, classes), [0, 0, 1])
    # score columns that are all empty fall back to the label
    np.testing.assert_array_equal(soft_labels({"label": "positive", "score_negative": np.nan}, classes), [0, 1, 0])
    with pytest.raises(DataError, match="not among the classes"):
        soft_labels({"label": "fear"}, classes)
    with pytest.raises(DataError, match="outside 0-1"):
        soft_labels({"score_negative": 1.5}, classes)
    with pytest.raises(DataError, match="neither"):
        soft_labels({"label": None}, classes)


# -- whole tables -------------------------------------------------------------------------------
def _table(extra=None):
    rows = [
        {"sample_id": "synthetic/sub01/clip01", "subject": "synthetic/sub01", "onset": 100, "apex": 102,
         "offset": 104, "action_units": ("4C", "9"), "intensity": 0.5,
         "intensity_curve": (0.0, 0.5, 1.0, 0.5, 0.0)},
        {"sample_id": "synthetic/sub01/clip02", "subject": "synthetic/sub01", "onset": 7, "apex": None,
         "offset": 9, "action_units": ("12",), "intensity": None, "intensity_curve": (0.0, 1.0, 0.0)},
        {"sample_id": "synthetic/sub02/clip01", "subject": "synthetic/sub02", "onset": 1, "apex": 1,
         "offset": 3, "action_units": ("L12E",), "intensity": 1.2, "intensity_curve": (1.0, 0.5)},
    ]
    for r in rows:
        r.update({"dataset": "synthetic", "clip": r["sample_id"].rsplit("/", 1)[1], "media": "frames",
                  "path": "/x", "frame_template": "img{frame}.jpg", "label": "negative", **(extra or {})})
    return SampleTable(pd.DataFrame(rows))


def test_intensity_targets_timing_reports_missing_apex():
    report = LoadReport()
    t = intensity_targets(_table(), "timing", report=report)
    assert sorted(t) == ["synthetic/sub01/clip01", "synthetic/sub02/clip01"]
    np.testing.assert_allclose(t["synthetic/sub01/clip01"], [0, 0.5, 1, 0.5, 0])
    np.testing.assert_allclose(t["synthetic/sub02/clip01"], [1, 0.5, 0])
    assert [p.sample for p in report.problems] == ["synthetic/sub01/clip02"]
    assert "apex is missing" in report.problems[0].reason


def test_intensity_targets_synthetic_checks_length():
    report = LoadReport()
    t = intensity_targets(_table(), "synthetic", report=report)
    assert sorted(t) == ["synthetic/sub01/clip01", "synthetic/sub01/clip02"]
    np.testing.assert_allclose(t["synthetic/sub01/clip02"], [0, 1, 0])
    assert report.problems[0].sample == "synthetic/sub02/clip01" and "2 values" in report.problems[0].reason


def test_intensity_targets_facs_and_rating():
    facs = intensity_targets(_table(), "facs")
    assert facs == pytest.approx({"synthetic/sub01/clip01": 0.6, "synthetic/sub02/clip01": 1.0})
    rating = intensity_targets(_table(), "rating")
    assert rating == pytest.approx({"synthetic/sub01/clip01": 0.5, "synthetic/sub02/clip01": 1.0})
    report = LoadReport()
    strict = intensity_targets(_table(), "rating", strict=True, report=report)
    assert list(strict) == ["synthetic/sub01/clip01"] and len(report.problems) == 2
    scaled = intensity_targets(_table({"stars": 4}), "rating", column="stars", scale=(1, 5))
    assert set(scaled.values()) == {0.75}


def test_intensity_targets_bad_options():
    with pytest.raises(ConfigError, match="unknown intensity source"):
        intensity_targets(_table(), "magic")
    df = _table().df.drop(columns=["intensity_curve"])
    with pytest.raises(ConfigError, match="intensity_curve"):
        intensity_targets(df, "synthetic")
    assert set(SOURCES) == {"timing", "synthetic", "facs", "rating"}


def test_frame_targets_table_numbers_frames_from_the_onset():
    table = _table()
    long = frame_targets_table(table, intensity_targets(table, "timing"))
    clip = long[long["sample_id"] == "synthetic/sub01/clip01"]
    assert clip["frame"].tolist() == [100, 101, 102, 103, 104]
    assert clip["target"].tolist() == [0, 0.5, 1, 0.5, 0]
    assert set(long["subject"]) == {"synthetic/sub01", "synthetic/sub02"}
    with pytest.raises(DataError, match="per-clip"):
        frame_targets_table(table, intensity_targets(table, "facs"))


def test_synthetic_ground_truth_is_the_cosine_timing_curve(tmp_path):
    from mekit.data.synthetic import generate_synthetic

    table = generate_synthetic(tmp_path / "corpus", n_subjects=2, clips_per_subject=2, size=48, frames=(8, 12))
    truth = intensity_targets(table, "synthetic")
    timing = intensity_targets(table, "timing", profile="cosine")
    assert sorted(truth) == sorted(timing) == sorted(table.sample_ids)
    for sid in truth:
        # the manifest stores the curve rounded to 6 decimals
        np.testing.assert_allclose(truth[sid], timing[sid], atol=1e-6)
    facs = intensity_targets(table, "facs")
    assert set(facs) == set(table.sample_ids) and all(v in (0.2, 0.4, 0.6, 0.8, 1.0) for v in facs.values())
    for sid, v in facs.items():  # the letter is ceil(5 x relative amplitude) fifths, never below it
        assert v >= table.row(sid)["intensity"] - 1e-9
