"""Reviewing analyses: timeline data, markers, the aligned average, the playable video, and
analyze() on a push-fed live source."""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pytest

from mekit.analysis.review import (aligned_response, check_markers, read_markers, timeline_data, web_video,
                                   write_markers)
from mekit.errors import ConfigError


def _frames(seconds: float, fps: float, bumps: list[tuple[float, float]]) -> pd.DataFrame:
    t = np.arange(int(seconds * fps)) / fps
    motion = np.ones_like(t)
    for at, height in bumps:
        motion[(t >= at) & (t < at + 0.5)] = height
    return pd.DataFrame({"time_s": t, "motion": motion, "intensity": np.nan})


def test_the_aligned_average_on_a_constructed_case():
    # recording A: markers at 2 s and 6 s, each followed 1 s later by a motion of 5 and an interval;
    # recording B: one marker at 3 s, followed 1 s later by a motion of 9 and an interval
    a = {"name": "a", "frames": _frames(10, 10, [(3.0, 5.0), (7.0, 5.0)]),
         "intervals": pd.DataFrame({"onset_s": [3.0, 7.0], "offset_s": [3.4, 7.4]}), "markers": [2.0, {"t": 6.0}]}
    b = {"name": "b", "frames": _frames(10, 10, [(4.0, 9.0)]),
         "intervals": pd.DataFrame({"onset_s": [4.0], "offset_s": [4.4]}), "markers": [3.0]}
    c = {"name": "c", "frames": _frames(5, 10, []), "intervals": pd.DataFrame({"onset_s": [], "offset_s": []}),
         "markers": []}
    r = aligned_response([a, b, c], before_s=1.0, after_s=2.0, bin_s=0.5)
    assert r["t"] == [-0.75, -0.25, 0.25, 0.75, 1.25, 1.75]
    assert r["n_recordings"] == 2 and r["n_epochs"] == 3
    assert [x["epochs"] for x in r["recordings"]] == [2, 1, 0]
    # grand average: (5 + 9) / 2 in the bin after +1 s, 1 elsewhere; the SEM across the two recordings
    assert r["motion"]["mean"] == [1.0, 1.0, 1.0, 1.0, 7.0, 1.0]
    assert r["motion"]["sem"][4] == pytest.approx(np.std([5, 9], ddof=1) / np.sqrt(2))
    assert r["motion"]["n"] == [2] * 6
    assert r["active"]["mean"][4] == pytest.approx(1.0) and r["active"]["mean"][0] == 0.0
    assert r["onset_rate"]["mean"] == [0.0, 0.0, 0.0, 0.0, 2.0, 0.0]  # one onset per 0.5 s bin
    assert r["intensity"]["mean"] == [None] * 6  # no intensity bundle: nothing to average
    # a window past the end of a recording is empty there, not zero
    late = aligned_response([{**b, "markers": [9.5]}], before_s=0.0, after_s=2.0, bin_s=0.5)
    assert late["motion"]["n"] == [1, 0, 0, 0] and late["motion"]["mean"][1] is None
    with pytest.raises(ConfigError, match="no recording has a marker"):
        aligned_response([c])
    with pytest.raises(ConfigError, match="bin_s"):
        aligned_response([a], bin_s=0)


def test_markers_are_checked_sorted_and_kept_per_recording(tmp_path):
    p = tmp_path / "markers.json"
    assert read_markers(p) == {}
    assert write_markers(p, "rec00", [{"t": 3, "label": " tone "}, 1.5], duration_s=10) == [
        {"t": 1.5, "label": ""}, {"t": 3.0, "label": "tone"}]
    write_markers(p, "rec01", [])
    assert read_markers(p) == {"rec00": [{"t": 1.5, "label": ""}, {"t": 3.0, "label": "tone"}], "rec01": []}
    for bad, match in (([-1], "seconds >= 0"), ([{"t": "x"}], "seconds >= 0"), ([11], "after the end"),
                       ({"t": 1}, "a list"), ([{"t": 1, "label": "x" * 61}], "longer than")):
        with pytest.raises(ConfigError, match=match):
            check_markers(bad, duration_s=10)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    from mekit.analysis.analyze import analyze
    from mekit.data.synthetic_long import generate_long_video

    base = tmp_path_factory.mktemp("review")
    truth = generate_long_video(base / "rec.mp4", seconds=6, fps=30, width=320, height=240, seed=1, n_micro=1,
                                n_macro=0, talking=False, head_motion=False)
    analyze(truth.path, out=base / "out")
    return truth, base / "out"


def test_timeline_data_and_the_playable_video(analysed):
    import cv2

    truth, out = analysed
    tl = timeline_data(out)
    assert tl["frames"] == 180 and tl["duration_s"] == pytest.approx(6.0, abs=0.05)
    assert len(tl["curves"]["time_s"]) == 180 and tl["threshold"] is not None
    assert tl["intervals"] == json.loads((out / "intervals.json").read_text())
    json.dumps(tl, allow_nan=False)  # strict JSON: no NaN
    webm = web_video(out / "annotated.mp4")
    cap = cv2.VideoCapture(str(webm))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert webm.name == "annotated.webm" and n == 180


def test_analyze_runs_on_a_push_fed_source(analysed, tmp_path):
    """A live source fed from another thread (as the web app's camera feeds it): analyze reads it
    until it ends, then writes the outputs as for a file."""
    import cv2

    from mekit.analysis.analyze import analyze
    from mekit.media import PushSource

    truth, _ = analysed
    cap = cv2.VideoCapture(str(truth.path))
    w, h = int(cap.get(3)), int(cap.get(4))
    src = PushSource(30, (w, h), maxsize=400, name="pushed")

    def feed():
        i = 0
        while True:
            ok, img = cap.read()
            if not ok:
                break
            src.push(img, time_s=i / 30)
            i += 1
        src.end()

    th = threading.Thread(target=feed)
    th.start()
    res = analyze(src, out=tmp_path / "live", video=False)
    th.join(5)
    cap.release()
    assert res.summary["frames"] == 180 and res.summary["input"] == "pushed" and res.summary["dropped"] == 0
    assert (tmp_path / "live" / "intervals.csv").is_file() and not (tmp_path / "live" / "progress.json").exists()
    onsets = [e.onset for e in truth.micro]
    assert any(abs(o - on) <= 3 for o in res.intervals["onset"] for on in onsets)
