"""`mekit analyze` end to end on synthetic recordings with known truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mekit import events
from mekit.analysis.analyze import FRAME_COLUMNS, analyze
from mekit.analysis.spot_metrics import read_megc_submission


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    from mekit.data.synthetic_long import generate_long_video

    truth = generate_long_video(tmp_path_factory.mktemp("rec") / "rec.avi", seconds=16, fps=30, seed=1)
    return truth.path


@pytest.mark.slow
def test_a_recording_gives_intervals_frames_timeline_and_the_megc_file(recording, tmp_path):
    got: list = []
    with events.listen(got.append):
        res = analyze(recording, out=tmp_path / "out")
    out = tmp_path / "out"
    for name in ("intervals.csv", "intervals.json", "frames.csv", "megc_spotting.csv", "timeline.png", "analysis.json"):
        assert (out / name).is_file(), name
    frames = pd.read_csv(out / "frames.csv")
    assert list(frames.columns) == list(FRAME_COLUMNS) and len(frames) == 480 == res.summary["frames"]
    assert frames["index"].is_monotonic_increasing and (frames["status"] != "lost").mean() > 0.95
    # the spotter's score for every frame with a face (the first has no earlier reference); no
    # intensity without an intensity bundle
    assert frames["motion"].iloc[1:].notna().all() and frames["intensity"].isna().all()
    iv = res.intervals
    assert len(iv) >= 1 and set(iv["kind"]) <= {"micro", "macro", "other"}
    assert (iv["onset"] <= iv["apex"]).all() and (iv["apex"] <= iv["offset"]).all()
    assert np.allclose(iv["onset_s"], iv["onset"] / 30.0, atol=1e-3)
    # every interval was announced as an event as soon as it closed
    announced = [(e["onset"], e["offset"]) for e in got if e.kind == "interval"]
    assert announced == list(zip(iv["onset"], iv["offset"]))
    megc = read_megc_submission(out / "megc_spotting.csv")
    assert [(m.onset, m.offset) for m in megc] == [(r.onset, r.offset) for r in iv.itertuples()
                                                    if r.kind in ("micro", "macro")]
    summary = json.loads((out / "analysis.json").read_text())
    assert summary["frames_per_s"] > 0 and summary["frames_without_face"] == 0
    # the annotated video: every frame, in step with the recording, each interval's frames marked
    import cv2

    cap = cv2.VideoCapture(str(out / summary["annotated_video"]))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 480
    pics = []
    for i in range(480):
        ok, img = cap.read()
        assert ok, i
        if i in (int(iv["apex"].iloc[0]), int(iv["onset"].iloc[0]) - 45):
            pics.append(img.astype(float))
    cap.release()
    assert len(pics) == 2 and np.abs(pics[0] - pics[1]).mean() > 1.0


@pytest.mark.slow
def test_a_bundle_labels_every_interval_and_a_live_source_reports_drops(recording, tmp_path):
    from mekit.config import load_config
    from mekit.engine.predict import train_bundle

    cfg = load_config(None, {"data.options": {"n_subjects": 4, "clips_per_subject": 6}})
    bundle = train_bundle(cfg, tmp_path / "m.mekit", progress=False)
    res = analyze(recording, model=bundle, out=tmp_path / "out")
    iv = res.intervals
    probs = [c for c in iv.columns if c.startswith("p_")]
    assert probs and iv["label"].notna().all()
    assert np.allclose(iv[probs].sum(axis=1), 1.0)
    live = analyze(recording, live=True, max_frames=120)
    assert live.summary["frames"] + live.summary["dropped"] >= 110 and "latency_ms" in live.summary


def test_a_frame_folder_is_analysed_like_its_video(recording, tmp_path):
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    cap = cv2.VideoCapture(str(recording))
    n = 0
    while n < 150:
        ok, img = cap.read()
        if not ok:
            break
        cv2.imwrite(str(folder / f"img{n:04d}.jpg"), img)
        n += 1
    cap.release()
    res = analyze(folder, fps=30)
    assert res.summary["frames"] == 150 and res.summary["fps"] == 30.0


def test_analyze_needs_an_input_and_refuses_a_wrong_bundle(tmp_path):
    from mekit.errors import DataError

    with pytest.raises(DataError):
        analyze(tmp_path / "absent.mp4")


@pytest.mark.slow
def test_a_camera_stopped_with_ctrl_c_still_writes_its_outputs(recording, tmp_path, monkeypatch):
    # No camera on a test machine: the camera is the recording, played until "Ctrl-C" arrives
    # (KeyboardInterrupt after 200 frames), which is how a user ends a camera run.
    import mekit.media as media

    real = media.open_source

    class Interrupted:
        def __init__(self, inner):
            self.inner, self.fps, self.size, self.n_frames = inner, inner.fps, inner.size, None

        def __iter__(self):
            for frame in self.inner:
                if frame.index == 200:
                    raise KeyboardInterrupt
                yield frame

        def close(self):
            self.inner.close()

    monkeypatch.setattr(media, "open_source", lambda input=None, camera=None, **kw: Interrupted(real(recording, **kw)))
    res = analyze(camera=0, out=tmp_path / "cam")
    assert res.summary["stopped"] == "interrupted" and res.summary["frames"] == 200
    for name in ("intervals.csv", "frames.csv", "timeline.png", "analysis.json"):
        assert (tmp_path / "cam" / name).is_file(), name
    assert len(pd.read_csv(tmp_path / "cam" / "frames.csv")) == 200
    # a recording interrupted the same way stops (it can be resumed instead)
    monkeypatch.setattr(media, "open_source", lambda input=None, camera=None, **kw: Interrupted(real(recording, **kw)))
    with pytest.raises(KeyboardInterrupt):
        analyze(recording, out=tmp_path / "file")
