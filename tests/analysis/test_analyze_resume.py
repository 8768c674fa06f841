"""`mekit analyze --resume`: an interrupted analysis continued by replay, and the bounded delay
line that writes frames.csv."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mekit import events
from mekit.analysis.analyze import FINAL_OUTPUTS, PARTIAL_INTERVALS, PROGRESS, analyze
from mekit.errors import ConfigError, DataError

IV = ["onset", "apex", "offset", "kind", "score"]


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    from mekit.data.synthetic_long import generate_long_video

    # 16 s at 30 fps: a macro-expression at frames 46-86, a micro-expression at 341-349
    truth = generate_long_video(tmp_path_factory.mktemp("rec") / "rec.avi", seconds=16, fps=30, seed=1)
    return truth.path


@pytest.fixture(scope="module")
def full(recording, tmp_path_factory) -> Path:
    """The uninterrupted run of the first 10 s (default spotter)."""
    out = tmp_path_factory.mktemp("full") / "out"
    analyze(recording, out=out, max_frames=300)
    return out


class _StopAt:
    """Interrupts a run as Ctrl-C would once ``n`` frames were analysed."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, e: events.Event) -> None:
        if e.kind == "progress" and e.get("stage") == "analyze" and e["done"] >= self.n:
            raise KeyboardInterrupt


def _interrupted(recording: Path, out: Path, at: int, **options) -> dict:
    with pytest.raises(KeyboardInterrupt), events.listen(_StopAt(at)):
        analyze(recording, out=out, **options)
    assert not any((out / name).exists() for name in FINAL_OUTPUTS)
    assert (out / PARTIAL_INTERVALS).is_file()
    return json.loads((out / PROGRESS).read_text())


def _check_frames(path: Path, n: int) -> pd.DataFrame:
    frames = pd.read_csv(path)
    assert list(frames["index"]) == list(range(n)), "each frame exactly once, in order"
    return frames


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_uninterrupted_result(recording, full, tmp_path):
    out = tmp_path / "out"
    progress = _interrupted(recording, out, 290, max_frames=300)
    # what the interrupted run kept: the rows older than the delay line (the spotter's 8.2 s
    # horizon and a second), the intervals closed so far (the macro-expression at 46-86)
    last = progress["rows"]["last_index"]
    assert 0 < last < 290 and progress["intervals_written"] >= 1
    assert progress["settings"]["spotter"]["name"] == "motion"
    # a plain run would throw that work away: refused, naming the way on
    with pytest.raises(DataError, match="interrupted analysis.*--resume"):
        analyze(recording, out=out, max_frames=300)
    res = analyze(recording, out=out, resume=True, max_frames=300)
    want = pd.read_csv(full / "intervals.csv")
    # The default warm-up (33 s) is longer than this recording, so the replay starts at frame 0
    # with a fresh tracker and spotter, exactly as the uninterrupted run did: the result is
    # identical, frames.csv byte for byte (motion scores included).
    assert res.summary["resume"]["resumed_from"] == 0
    pd.testing.assert_frame_equal(res.intervals[IV].reset_index(drop=True), want[IV])
    assert (out / "frames.csv").read_bytes() == (full / "frames.csv").read_bytes()
    _check_frames(out / "frames.csv", 300)
    assert not (out / PROGRESS).exists() and not (out / PARTIAL_INTERVALS).exists()
    summary = json.loads((out / "analysis.json").read_text())
    assert summary["resumed_from"] == 0 and summary["resume"]["rows_kept"] == last + 1
    assert summary["frames"] == 300 and summary["intervals"] == len(want)
    # a second resume finds the run finished and leaves it as it is
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = analyze(recording, out=out, resume=True, max_frames=300)
    assert again.summary["already_finished"] and len(again.intervals) == len(want)
    assert before == {p.name: p.stat().st_mtime_ns for p in out.iterdir()}


@pytest.mark.slow
def test_a_resume_replays_only_the_warm_up_and_skips_what_was_recorded(recording, tmp_path):
    # fixed_windows: a window depends only on where the face was, so a replay from any frame
    # gives the uninterrupted windows exactly, with a warm-up of one window
    opts = {"spotter": "fixed_windows", "max_frames": 240}
    full = analyze(recording, out=tmp_path / "full", **opts)
    out = tmp_path / "out"
    progress = _interrupted(recording, out, 200, **opts)
    last = progress["rows"]["last_index"]
    res = analyze(recording, out=out, resume=True, **opts)
    assert res.summary["resume"]["resumed_from"] == last - 9 + 1 > 100  # 9 frames: one 0.3 s window
    pd.testing.assert_frame_equal(res.intervals[IV].reset_index(drop=True),
                                  full.intervals[IV].reset_index(drop=True))
    got = _check_frames(out / "frames.csv", 240)
    want = pd.read_csv(tmp_path / "full" / "frames.csv")
    # rows written before the interruption are kept as they were; after it a fresh tracker
    # places the face box within a pixel or two of where the uninterrupted one did (its smoothed
    # pose depends on its history)
    assert got.iloc[:last + 1].equals(want.iloc[:last + 1])
    assert (got["status"] != "lost").all()
    assert np.abs(got[["x0", "y0", "x1", "y1"]].to_numpy() - want[["x0", "y0", "x1", "y1"]].to_numpy()).max() < 3
    assert got["motion"].isna().all()  # fixed_windows gives no per-frame score
    # the annotated video: the interrupted run's file ends where its rows do, the resumed run's
    # file takes over from the next frame
    import cv2

    def count(path):
        cap = cv2.VideoCapture(str(path))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        return n

    assert res.summary["annotated_video"] == f"annotated-from{last + 1}.mp4"
    assert count(out / "annotated.mp4") == last + 1 and count(out / f"annotated-from{last + 1}.mp4") == 240 - last - 1


def test_a_resume_with_other_settings_or_input_is_refused(recording, tmp_path):
    out = tmp_path / "out"
    _interrupted(recording, out, 40)
    with pytest.raises(ConfigError, match=r"spotter\.params\.threshold 6\.0 -> 5\.0"):
        analyze(recording, out=out, resume=True, spotter_params={"threshold": 5.0})
    with pytest.raises(ConfigError, match="detector"):
        analyze(recording, out=out, resume=True, detector="haar")
    other = tmp_path / "other.avi"
    shutil.copy(recording, other)
    with pytest.raises(ConfigError, match="input"):
        analyze(other, out=out, resume=True)
    with pytest.raises(ConfigError, match="output folder"):
        analyze(recording, resume=True)
    # the record is untouched by the refusals
    assert (out / PROGRESS).is_file()


def test_a_run_cut_after_its_last_record_resumes_from_the_record(recording, tmp_path):
    """A run killed between two records (power cut, kill -9) has rows and intervals past what
    progress.json says: frames.csv is cut back, a torn last interval line dropped."""
    out = tmp_path / "out"
    progress = _interrupted(recording, out, 200, spotter="fixed_windows", max_frames=240)
    size = progress["rows"]["bytes"]
    with open(out / "frames.csv", "a") as f:
        f.write("999,33.3,tracked,1,2,3,4,5.0,\n99")  # rows the record does not cover, one torn
    with open(out / PARTIAL_INTERVALS, "a") as f:
        f.write('{"video": "rec", "onset": 9')  # an interval line cut mid-write
    assert (out / "frames.csv").stat().st_size > size
    res = analyze(recording, out=out, resume=True, spotter="fixed_windows", max_frames=240)
    _check_frames(out / "frames.csv", 240)
    assert len(res.intervals) >= 1 and res.intervals["onset"].is_monotonic_increasing


@pytest.mark.slow
def test_frames_csv_rows_wait_in_a_line_bounded_by_the_horizon_not_the_length(monkeypatch, tmp_path):
    """Stream generated recordings of two lengths (no file: frames made one by one); the delay
    line, the crop ring and the spotter hold the same, whatever the length."""
    import cv2

    import mekit.media
    from mekit.media import Frame

    class Generated:
        name = "generated"

        def __init__(self, seconds: float, fps: float) -> None:
            self.fps, self.n_frames, self.size = fps, round(seconds * fps), (64, 64)
            self.dropped = self.skipped = 0
            self.problems: list[str] = []

        def __iter__(self):
            rng = np.random.default_rng(0)
            face = cv2.GaussianBlur(rng.normal(128, 40, (64, 64)).astype(np.float32), (0, 0), 2.0)
            for i in range(self.n_frames):
                img = face + rng.normal(0, 2.0, face.shape).astype(np.float32)
                if i % 100 in range(40, 46):  # a brief local movement every 10 s
                    img[40:50, 20:44] += 25.0
                grey = np.clip(img, 0, 255).astype(np.uint8)
                yield Frame(i, i / self.fps, cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))

        def close(self) -> None:
            pass

    sizes = {}
    for seconds in (20, 80):
        monkeypatch.setattr(mekit.media, "open_source", lambda *a, s=seconds, **k: Generated(s, 10.0))
        out = tmp_path / f"run{seconds}"
        res = analyze("generated", out=out, detector="none")
        s = res.summary
        frames = pd.read_csv(out / "frames.csv")
        assert len(frames) == round(seconds * 10) and frames["index"].is_monotonic_increasing
        assert frames["motion"].notna().mean() > 0.9  # every frame with a face has its score
        # the delay line: the spotter's horizon plus a second, at 10 fps
        assert s["delay_frames"] == 83 + 10 and s["rows_held_max"] == s["delay_frames"] + 1
        sizes[seconds] = (s["delay_frames"], s["rows_held_max"])
    assert sizes[20] == sizes[80]


@pytest.mark.slow
def test_a_resume_from_mid_recording_finds_the_same_intervals_within_two_frames(recording, tmp_path):
    # A shortened warm-up (noise window 4 s, span 1 s) so the replay starts mid-recording and
    # the micro-expression at 341-349 closes after the interruption. The fresh tracker's crops
    # are not bit-identical to the uninterrupted run's (its smoothed pose and realignment
    # depend on its history, sub-pixel differences the spotter's head-motion compensation
    # mostly removes), and the spotter's noise level is refreshed at other frames: scores differ
    # by noise. The count and kinds stay; an onset or offset, where a movement's faint tail
    # fades into that noise (the matched-filter walk of MotionSpotter._refine), moved by up to
    # two frames here (342 -> 340 for the micro-expression), not the one hoped for.
    opts = {"spotter_params": {"noise_window": 4.0, "span": 1.0, "macro": (0.5, 1.5)}}
    full = analyze(recording, out=tmp_path / "full", **opts).intervals
    out = tmp_path / "out"
    progress = _interrupted(recording, out, 370, **opts)
    res = analyze(recording, out=out, resume=True, **opts)
    assert res.summary["resume"]["resumed_from"] > 0
    assert progress["rows"]["last_index"] < 341  # the micro-expression was still to write
    got = res.intervals
    assert len(got) == len(full) and list(got["kind"]) == list(full["kind"])
    assert (got["onset"] - full["onset"]).abs().max() <= 2 and (got["offset"] - full["offset"]).abs().max() <= 2
    assert (got["apex"] - full["apex"]).abs().max() <= 2
    _check_frames(out / "frames.csv", 480)
