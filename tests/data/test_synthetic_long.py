"""Synthetic long videos: the file, the truth, its timing, that the truth is visible, determinism, memory."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from mekit.data import synthetic_long as sl
from mekit.data.synthetic_long import (DISTRACTOR_KINDS, TRUTH_COLUMNS, generate_long_video,
                                       iter_long_video_frames, plan_long_video)
from mekit.errors import ConfigError

# The 20-second video most tests read: 2 micro- and 1 macro-expression among the distractors.
VIDEO = dict(seconds=20.0, fps=30.0, width=480, height=360, seed=0, n_micro=2, n_macro=1)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("long") / "clip.mp4"
    truth = generate_long_video(path, **VIDEO)
    cap = cv2.VideoCapture(str(truth.path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    info = {"count": cap.get(cv2.CAP_PROP_FRAME_COUNT), "fps": cap.get(cv2.CAP_PROP_FPS),
            "w": cap.get(cv2.CAP_PROP_FRAME_WIDTH), "h": cap.get(cv2.CAP_PROP_FRAME_HEIGHT)}
    cap.release()
    return truth, frames, info


def _episodes(truth):
    return sorted(truth.events + truth.distractors, key=lambda e: e.onset)


# -- the file ---------------------------------------------------------------------------------
def test_video_reads_back_with_its_frame_count_fps_and_size(video):
    truth, frames, info = video
    assert truth.n_frames == 600
    assert len(frames) == 600
    assert info["count"] == 600
    assert info["fps"] == pytest.approx(30.0)
    assert (info["w"], info["h"]) == (480, 360)
    assert frames[0].shape == (360, 480, 3)
    # mp4v round-trips with this OpenCV; the fallback (MJPG .avi) is tested below
    assert truth.path.suffix == ".mp4" and truth.codec == "mp4v"
    assert truth.path.is_file() and not list(truth.path.parent.glob(".*tmp*"))


def test_truth_csv_is_written_beside_the_video_and_matches(video):
    truth, _, _ = video
    assert truth.truth_path == truth.path.with_name("clip.truth.csv")
    with open(truth.truth_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == TRUTH_COLUMNS
    assert [(r["video"], int(r["onset"]), int(r["apex"]), int(r["offset"]), r["kind"]) for r in rows] == \
           [("clip", e.onset, e.apex, e.offset, e.kind) for e in truth.events]
    for r in rows:
        assert float(r["onset_s"]) == pytest.approx(int(r["onset"]) / 30.0, abs=1e-4)
        assert float(r["offset_s"]) == pytest.approx(int(r["offset"]) / 30.0, abs=1e-4)
        assert r["emotion"] and r["action"]
    assert sorted(r["kind"] for r in rows) == ["macro", "micro", "micro"]
    # distractors are written apart and never as expressions
    with open(truth.path.with_name("clip.distractors.csv"), newline="") as fh:
        kinds = {r["kind"] for r in csv.DictReader(fh)}
    assert kinds and kinds <= set(DISTRACTOR_KINDS)


def test_truth_lies_inside_the_video_and_nothing_overlaps(video):
    truth, _, _ = video
    for e in truth.events:
        assert 0 <= e.onset < e.apex < e.offset < truth.n_frames
    eps = _episodes(truth)
    gap = int(round(0.4 * truth.fps))
    for a, b in zip(eps, eps[1:]):
        assert b.onset - a.offset >= gap, (a, b)


def test_plan_gives_the_truth_without_rendering(video):
    truth, _, _ = video
    plan = plan_long_video(**VIDEO, video="clip")
    assert plan.events == truth.events and plan.distractors == truth.distractors
    assert plan.face_box == truth.face_box


# -- timing of events -------------------------------------------------------------------------
@pytest.mark.parametrize("fps", [30.0, 25.0, 200.0, 12.0])
def test_micro_and_macro_durations(fps):
    truth = plan_long_video(seconds=600, fps=fps, seed=1)
    assert len(truth.micro) > 15 and len(truth.macro) > 10
    for e in truth.micro:
        assert 1 / 25 - 1e-9 <= (e.offset - e.onset) / fps
        assert (e.offset - e.onset + 1) / fps <= 0.5 + 1e-9  # by frame count too
        assert e.onset < e.apex < e.offset
    for e in truth.macro:
        assert 0.5 < (e.offset - e.onset) / fps <= 4.0 + 1e-9
    durations = {e.offset - e.onset for e in truth.micro}
    assert len(durations) > 3  # drawn, not one fixed length


def test_distractors_are_there_and_never_in_the_truth():
    truth = plan_long_video(seconds=300, seed=4)
    kinds = {d.kind for d in truth.distractors}
    assert {"blink", "talk"} <= kinds and kinds & {"head_turn", "nod"}
    assert {e.kind for e in truth.events} <= {"micro", "macro"}
    blinks = [d for d in truth.distractors if d.kind == "blink"]
    assert all(0.1 - 1e-9 <= (b.offset - b.onset) / truth.fps <= 0.4 + 1e-9 for b in blinks)
    none = plan_long_video(seconds=300, seed=4, blinks=False, head_motion=False, talking=False)
    assert none.distractors == () and none.events == truth.events  # switching distractors off moves nothing


def test_exact_counts_and_their_limit():
    truth = plan_long_video(seconds=60, seed=2, n_micro=5, n_macro=3)
    assert (len(truth.micro), len(truth.macro)) == (5, 3)
    with pytest.raises(ConfigError, match=r"n_micro=3 \+ n_macro=1 .*at most 3"):
        plan_long_video(seconds=20, n_micro=3, n_macro=1)


# -- the truth is real ------------------------------------------------------------------------
def test_the_face_moves_during_micro_expressions_more_than_when_neutral(video):
    truth, frames, _ = video
    grey = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY).astype(np.float32) for f in frames]
    x0, y0, x1, y1 = (int(v) for v in truth.face_box)
    busy = np.zeros(truth.n_frames, bool)
    for e in _episodes(truth):
        busy[max(0, e.onset - 2):e.offset + 3] = True

    def motion(a: int, b: int) -> float:
        # local motion: the largest smoothed frame difference on the face (decoded video)
        return float(cv2.GaussianBlur(np.abs(grey[b] - grey[a])[y0:y1, x0:x1], (0, 0), 3).max())

    assert truth.micro
    for e in truth.micro:
        gap = e.apex - e.onset
        neutral = [motion(i, i + gap) for i in range(truth.n_frames - gap) if not busy[i:i + gap + 1].any()]
        assert len(neutral) > 100
        assert motion(e.onset, e.apex) > 2 * max(neutral), e


# -- determinism ------------------------------------------------------------------------------
SMALL = dict(width=192, height=144)


def test_same_seed_same_frames_other_seed_other_frames():
    a = iter_long_video_frames(seconds=2, seed=7, **SMALL)
    b = iter_long_video_frames(seconds=2, seed=7, **SMALL)
    c = iter_long_video_frames(seconds=2, seed=8, **SMALL)
    for _ in range(30):
        fa, fb, fc = next(a), next(b), next(c)
        assert np.array_equal(fa, fb)
    assert not np.array_equal(fa, fc)


def test_a_longer_video_begins_with_the_shorter_one():
    short = list(iter_long_video_frames(seconds=7, seed=5, **SMALL))
    longer = iter_long_video_frames(seconds=13, seed=5, **SMALL)
    assert all(np.array_equal(s, next(longer)) for s in short)
    p1, p2 = plan_long_video(seconds=20, seed=5), plan_long_video(seconds=60, seed=5)
    assert p1.events == tuple(e for e in p2.events if e.offset < p1.n_frames)
    assert p1.events  # the comparison is not vacuous


def test_start_gives_the_same_frames_as_iterating_from_zero():
    it = iter_long_video_frames(seconds=3, seed=3, **SMALL)
    frames = [next(it) for _ in range(50)]
    later = iter_long_video_frames(seconds=3, seed=3, start=40, **SMALL)
    assert all(np.array_equal(frames[i], next(later)) for i in range(40, 50))


# -- streaming --------------------------------------------------------------------------------
_RSS = textwrap.dedent("""
    import resource, sys
    from mekit.data.synthetic_long import generate_long_video
    generate_long_video(sys.argv[1], seconds=float(sys.argv[2]), width=320, height=240, seed=0)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


@pytest.mark.slow
def test_memory_does_not_grow_with_the_length(tmp_path):
    def peak_kib(seconds: float) -> int:
        out = subprocess.run([sys.executable, "-c", _RSS, str(tmp_path / f"v{seconds:g}.mp4"), str(seconds)],
                             capture_output=True, text=True, timeout=120, check=True)
        return int(out.stdout.strip().splitlines()[-1])

    short, longer = peak_kib(2), peak_kib(16)
    # 14 s more of 320x240 frames is 97 MiB if held; streaming adds next to nothing
    assert longer - short < 20 * 1024, (short, longer)


# -- codecs and bad input ---------------------------------------------------------------------
def test_falls_back_to_mjpg_avi_when_mp4_does_not_round_trip(tmp_path, monkeypatch):
    real = sl._round_trips
    monkeypatch.setattr(sl, "_round_trips", lambda c, s: False if c == "mp4v" else real(c, s))
    truth = generate_long_video(tmp_path / "v.mp4", seconds=1, width=160, height=120, seed=0)
    assert truth.path == tmp_path / "v.avi" and truth.codec == "MJPG"
    cap = cv2.VideoCapture(str(truth.path))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 30
    assert (tmp_path / "v.truth.csv").is_file() and not (tmp_path / "v.mp4").exists()


def test_an_interrupted_generation_leaves_no_file(tmp_path):
    def stop(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_long_video(tmp_path / "v.mp4", seconds=3, width=160, height=120, progress=stop)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs, match", [
    (dict(fps=5), "fps=5"),
    (dict(seconds=0), "seconds=0"),
    (dict(width=641), r"width x height=\(641, 480\)"),
    (dict(width=64), "width=64"),
    (dict(n_micro=-1), "n_micro=-1"),
    (dict(face_size=400), "face_size=400"),
    (dict(seed=True), "seed=True"),
])
def test_bad_parameters_name_the_value(kwargs, match):
    with pytest.raises(ConfigError, match=match) as e:
        plan_long_video(**kwargs)
    assert "\n" not in str(e.value)


def test_bad_codec_or_suffix(tmp_path):
    with pytest.raises(ConfigError, match="suffix '.mkv'"):
        generate_long_video(tmp_path / "v.mkv", seconds=1, width=160, height=120)
    with pytest.raises(ConfigError, match="codec 'QQQQ'"):
        generate_long_video(tmp_path / "v.mp4", seconds=1, width=160, height=120, codec="QQQQ")
    assert list(tmp_path.iterdir()) == []
