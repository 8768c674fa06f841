import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mekit.errors import DataError
from mekit.intensity.metrics import concordance_cc, icc_3_1, intensity_report, peak_metrics, regression_metrics
from mekit.intensity.targets import timing_curve


def test_regression_metrics_against_numpy_and_scipy():
    rng = np.random.default_rng(3)
    t = rng.random(200)
    p = 0.8 * t + 0.1 + rng.normal(0, 0.15, 200)
    p[5] = p[6]  # a tie, so Spearman's average ranks matter
    m = regression_metrics(t, p)
    assert m["n"] == 200 and m["n_dropped"] == 0
    assert m["mae"] == pytest.approx(np.mean(np.abs(p - t)))
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((p - t) ** 2)))
    assert m["pearson"] == pytest.approx(stats.pearsonr(t, p)[0], abs=1e-12)
    assert m["spearman"] == pytest.approx(stats.spearmanr(t, p)[0], abs=1e-12)
    # Lin's CCC from its definition with population moments
    cov = np.mean((t - t.mean()) * (p - p.mean()))
    assert m["ccc"] == pytest.approx(2 * cov / (t.var() + p.var() + (t.mean() - p.mean()) ** 2))
    assert m["ccc"] < m["pearson"]


def test_ccc_perfect_shifted_and_hand_value():
    x = np.array([1.0, 2.0, 3.0])
    assert concordance_cc(x, x) == pytest.approx(1.0)
    # y = x + 1: var 2/3 each, cov 2/3, mean gap 1 -> (4/3) / (4/3 + 1) = 4/7
    assert concordance_cc(x, x + 1) == pytest.approx(4 / 7)
    m = regression_metrics(x, x + 1)
    assert m["pearson"] == pytest.approx(1.0) and m["ccc"] < m["pearson"]
    # a rescaled copy: Pearson 1, CCC lower
    assert concordance_cc(x, 2 * x) < 1.0


def test_icc_3_1_shrout_fleiss_worked_example():
    # Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges; Table 4 gives ICC(3,1) = .71
    # from BMS = 11.24 and EMS = 1.02: (11.24 - 1.02) / (11.24 + 3 * 1.02) = 0.7147.
    ratings = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    assert icc_3_1(ratings) == pytest.approx(0.7148, abs=5e-4)


def test_icc_3_1_two_raters_by_hand():
    # targets (1, 2, 3, 4), predictions (2, 2, 4, 5). Grand mean 23/8; SS rows 11.375, SS columns
    # 1.125, SS total 12.875, so SS error 0.375; BMS = 11.375/3, EMS = 0.375/3;
    # ICC(3,1) = (BMS - EMS) / (BMS + EMS) = (11/3) / (47/12) = 44/47.
    m = regression_metrics([1, 2, 3, 4], [2, 2, 4, 5])
    assert m["icc"] == pytest.approx(44 / 47)
    # consistency: a constant offset leaves ICC(3,1) at 1, while CCC drops
    t = np.array([0.1, 0.4, 0.3, 0.9])
    m = regression_metrics(t, t + 0.2)
    assert m["icc"] == pytest.approx(1.0) and m["ccc"] < 0.9


def test_constant_inputs_give_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = regression_metrics([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
        assert m["mae"] == 0.0
        assert all(np.isnan(m[k]) for k in ("pearson", "spearman", "ccc", "icc"))
        m = regression_metrics([0.1, 0.5, 0.9], [0.3, 0.3, 0.3])
        assert np.isnan(m["pearson"]) and np.isnan(m["spearman"])
        assert m["ccc"] == 0.0  # defined: no covariance with a constant prediction
        one = regression_metrics([0.2], [0.4])
        assert one["mae"] == pytest.approx(0.2) and np.isnan(one["pearson"])


def test_nan_pairs_dropped_and_errors():
    m = regression_metrics([0.0, 1.0, np.nan, 0.5], [0.0, 1.0, 0.3, np.nan])
    assert m["n"] == 2 and m["n_dropped"] == 2 and m["mae"] == 0.0
    with pytest.raises(DataError, match="differ in length"):
        regression_metrics([1, 2], [1])
    with pytest.raises(DataError, match="no target/prediction pairs"):
        regression_metrics([np.nan], [1.0])


def _peaked(n: int, peak: int) -> np.ndarray:
    return np.exp(-((np.arange(n) - peak) ** 2) / 8.0)


def test_peak_within_10pct_on_constructed_curves():
    f = np.arange(100, 130)  # 30 frames: 10 % is 3 frames
    curves = {"a": (f, _peaked(30, 13)),   # peak at 113, apex 110: 3 frames = 10 % -> within
              "b": (f, _peaked(30, 14)),   # 4 frames late -> not within
              "c": (f, _peaked(30, 5)),    # on the apex
              "d": (f, _peaked(30, 5))}    # no apex -> skipped
    apex = {"a": 110, "b": 110, "c": 105, "d": None}
    pm = peak_metrics(curves, apex)
    assert pm["n_clips"] == 3 and pm["n_without_apex"] == 1
    assert pm["peak_within_10pct"] == pytest.approx(2 / 3)
    b = pm["per_clip"]["b"]
    assert b["peak_frame"] == 114 and b["error_frames"] == 4 and b["length"] == 30
    assert b["error_fraction"] == pytest.approx(4 / 30) and b["peak_value"] == pytest.approx(1.0)
    assert pm["mean_abs_peak_error_frames"] == pytest.approx(7 / 3)
    # onset/offset given: a longer clip widens the tolerance (4 frames of 41 is under 10 %)
    pm = peak_metrics(curves, apex, onset={"b": 100}, offset={"b": 140})
    assert pm["per_clip"]["b"]["within_10pct"] and pm["peak_within_10pct"] == 1.0
    pm = peak_metrics(curves, apex, tolerance=0.05)
    assert pm["peak_within_tolerance"] == pytest.approx(1 / 3) and pm["peak_within_10pct"] == pytest.approx(2 / 3)


def _pred_frames() -> pd.DataFrame:
    rows = []
    rng = np.random.default_rng(0)
    clips = [("s1/c1", "s1", 0, 10, 20), ("s1/c2", "s1", 50, 53, 70), ("s2/c1", "s2", 5, 15, 25)]
    for sid, subj, on, ap, off in clips:
        f = np.arange(on, off + 1)
        t = timing_curve(on, ap, off, f)
        p = np.clip(np.roll(t, 1) * 0.9 + rng.normal(0, 0.03, f.size), 0, None)  # one frame late, weaker
        rows.append(pd.DataFrame({"sample_id": sid, "subject": subj, "fold": subj, "frame": f,
                                  "target": t, "pred": p}))
    return pd.concat(rows, ignore_index=True).sample(frac=1.0, random_state=1)  # order must not matter


def test_intensity_report():
    df = _pred_frames()
    r = intensity_report(df)
    pooled = regression_metrics(df["target"], df["pred"])
    for k in ("mae", "rmse", "pearson", "spearman", "ccc", "icc"):
        assert r[k] == pytest.approx(pooled[k])
    assert r["n_frames"] == len(df) and r["n_clips"] == 3 and r["n_subjects"] == 2
    # every prediction peaks one frame after the apex (the target's peak), well within 10 %
    assert r["peak_within_10pct"] == 1.0
    assert r["peaks"]["per_clip"]["s1/c2"]["apex"] == 53
    assert {c["error_frames"] for c in r["peaks"]["per_clip"].values()} == {1.0}
    # per clip: metrics over the three clip means and clip maxima
    g = df.groupby("sample_id")
    means = regression_metrics(g["target"].mean(), g["pred"].mean())
    assert r["per_clip"]["mean"]["mae"] == pytest.approx(means["mae"]) and r["per_clip"]["mean"]["n"] == 3
    assert r["per_clip"]["peak"]["mae"] == pytest.approx(np.mean(np.abs(g["pred"].max() - 1.0)))
    within = np.mean([stats.pearsonr(d["target"], d["pred"])[0] for _, d in g])
    assert r["per_clip"]["within_clip"]["pearson"] == pytest.approx(within)
    assert set(r["per_subject"]) == {"s1", "s2"} and set(r["per_fold"]) == {"s1", "s2"}
    s2 = df[df["subject"] == "s2"]
    assert r["per_subject"]["s2"]["mae"] == pytest.approx(np.mean(np.abs(s2["pred"] - s2["target"])))
    assert r["per_subject"]["s1"]["n_clips"] == 2


def test_intensity_report_uses_apex_column_and_validates():
    df = _pred_frames()
    df["apex"] = df["sample_id"].map({"s1/c1": 20, "s1/c2": 53, "s2/c1": 15})  # c1's apex moved to its end
    r = intensity_report(df)
    assert r["peaks"]["per_clip"]["s1/c1"]["error_frames"] == -9.0
    assert r["peak_within_10pct"] == pytest.approx(2 / 3)
    with pytest.raises(DataError, match=r"lack columns \['pred'\]"):
        intensity_report(df.drop(columns=["pred"]))
    with pytest.raises(DataError, match="more than once"):
        intensity_report(pd.concat([df, df.iloc[:1]]))
