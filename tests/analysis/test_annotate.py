"""The annotated video of `mekit analyze`: frames held until their intervals are known, drawn,
written and read back."""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from mekit.analysis.annotate import CLASS_COLOURS, AnnotatedVideo
from mekit.errors import ConfigError, DataError

W, H, FPS = 640, 480, 30.0
BOX = (250.0, 140.0, 390.0, 320.0)
CLASSES = ("happy", "sad")


def _face(i: int, w: int = W, h: int = H) -> np.ndarray:
    """A mid-grey frame with mild noise and a drawn face whose mouth opens a little with ``i``
    (ten distinct frames, drawn once: drawing noise costs more than what is tested)."""
    return _drawn(i % 10, w, h)


@functools.lru_cache(maxsize=64)
def _drawn(i: int, w: int, h: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    img = np.clip(128 + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
    s = w / W
    cx, cy = int(320 * s), int(230 * s)
    cv2.ellipse(img, (cx, cy), (int(65 * s), int(88 * s)), 0, 0, 360, (150, 180, 220), -1)
    for dx in (-25, 25):
        cv2.circle(img, (cx + int(dx * s), cy - int(20 * s)), max(2, int(7 * s)), (40, 40, 40), -1)
    cv2.ellipse(img, (cx, cy + int(40 * s)), (int(22 * s), max(1, int((3 + i % 5) * s))), 0, 0, 360, (60, 60, 160), -1)
    img.flags.writeable = False  # shared between calls: nothing may draw on the input
    return img


def _row(onset: int, offset: int, kind: str = "micro", label: str = "happy", **extra) -> dict:
    p = {"happy": 0.8, "sad": 0.2} if label == "happy" else {"happy": 0.3, "sad": 0.7}
    return {"video": "clip", "onset": onset, "apex": (onset + offset) // 2, "offset": offset, "onset_s": onset / FPS,
            "apex_s": (onset + offset) / 2 / FPS, "offset_s": offset / FPS, "kind": kind, "score": 9.5, "flags": "",
            "label": label, **{f"p_{c}": v for c, v in p.items()}, "intensity_peak": 0.6,
            "intensity_peak_frame": (onset + offset) // 2, "intensity_mean": 0.35, **extra}


def _read(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    try:
        while True:
            ok, f = cap.read()
            if not ok:
                return out
            out.append(f)
    finally:
        cap.release()


def _stream(av: AnnotatedVideo, indices, rows=(), delay: int = 0) -> None:
    """Push frames as analyze would: each interval is given ``delay`` frames after its onset."""
    pending = sorted(rows, key=lambda r: r["onset"])
    for i in indices:
        av.frame(i, _face(i, *av.size), BOX if av.size == (W, H) else None, 2.0 + 8.0 * math.exp(-((i - 30) / 3) ** 2),
                 "detected" if i % 10 == 0 else "tracked")
        while pending and pending[0]["onset"] + delay <= i:
            av.interval(pending.pop(0))


def _border(img: np.ndarray, fw: int, fh: int) -> np.ndarray:
    """Mean colour of the picture's top and left edges (4 px), where an interval's border goes."""
    return np.concatenate([img[1:4, 20:fw - 20].reshape(-1, 3), img[20:fh - 20, 1:4].reshape(-1, 3)]).mean(0)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """90 frames, delay 20, a micro (25-36, happy) and a macro (55-75, sad) each given 20 frames late."""
    path = tmp_path_factory.mktemp("annot") / "annotated.mp4"
    rows = [_row(25, 36), _row(55, 75, "macro", "sad")]
    with AnnotatedVideo(path, FPS, (W, H), CLASSES, delay_frames=20, threshold=6.0) as av:
        _stream(av, range(90), rows, delay=20)
    return av, _read(av.path), rows


def test_every_frame_is_written_at_the_output_size(written):
    av, frames, _ = written
    assert av.path.suffix == ".mp4" and av.written == 90 == len(frames)
    w, h = av.out_size
    assert frames[0].shape == (h, w, 3)
    # the picture keeps its size (640 is max_side); the panels sit beside and below it
    assert av.frame_size == (W, H) and w > W and h > H and w % 2 == 0 and h % 2 == 0


def test_frames_inside_an_interval_are_marked_even_though_it_was_given_late(written):
    av, frames, rows = written
    fw, fh = av.frame_size
    happy, sad = (np.array(CLASS_COLOURS[k], float) for k in (0, 1))
    for i in (24, 37, 50, 80):  # outside: the source's grey shows at the edges
        assert np.abs(_border(frames[i], fw, fh) - 128).max() < 25, i
    # the onset frame was pushed 20 frames before its interval was known, and is marked
    for i in (25, 30, 36):
        assert np.abs(_border(frames[i], fw, fh) - happy).max() < 30, i
    for i in (55, 65, 75):
        assert np.abs(_border(frames[i], fw, fh) - sad).max() < 30, i
    # the side panel differs too (banner, label, bars), while the face itself is left alone
    panel = (slice(0, fh), slice(fw + 4, None))
    assert np.abs(frames[25][panel].astype(int) - frames[24][panel]).mean() > 5
    face = (slice(160, 300), slice(270, 370))
    assert np.abs(frames[25][face].astype(int) - frames[24][face]).mean() < 10


def test_the_delay_line_never_holds_more_than_delay_frames(tmp_path):
    delay = 15
    with AnnotatedVideo(tmp_path / "a.mp4", FPS, (W, H), CLASSES, delay_frames=delay) as av:
        for i in range(80):
            av.frame(i, _face(i), BOX, 3.0)
            assert av.held <= delay + 1
            assert av.written == max(0, i - delay)  # a frame leaves as soon as nothing can change it
        assert av.held_bytes < (delay + 1) * 60_000  # JPEG at quality 85, ~20 KB a frame here
    assert av.max_held == delay + 1 and av.held == 0 and av.written == 80


def test_held_frames_are_downscaled_to_max_side(tmp_path):
    with AnnotatedVideo(tmp_path / "a.mp4", FPS, (1280, 720), delay_frames=3, max_side=640) as av:
        for i in range(6):
            av.frame(i, cv2.resize(_face(i), (1280, 720)), (500, 280, 780, 640), 1.0)
        assert av.frame_size == (640, 360)
        assert cv2.imdecode(av._held[0].jpeg, cv2.IMREAD_COLOR).shape == (360, 640, 3)
    assert _read(av.path)[0].shape == (av.out_size[1], av.out_size[0], 3)


def test_skipped_indices_are_filled_so_the_file_keeps_time(tmp_path):
    idx = [i for i in range(40) if not 10 <= i < 15]
    with AnnotatedVideo(tmp_path / "fill.mp4", FPS, (320, 240), CLASSES, delay_frames=5) as av:
        _stream(av, idx, [_row(11, 20)], delay=5)
    frames = _read(av.path)
    assert av.written == 40 == len(frames)
    fw, fh = av.frame_size
    happy = np.array(CLASS_COLOURS[0], float)
    # a dropped frame inside the interval is marked as well
    assert np.abs(_border(frames[12], fw, fh) - happy).max() < 30
    assert np.abs(_border(frames[9], fw, fh) - 128).max() < 25
    with AnnotatedVideo(tmp_path / "skip.mp4", FPS, (320, 240), delay_frames=5, fill_gaps=False) as av2:
        _stream(av2, idx)
    assert av2.written == 35 == len(_read(av2.path))


def test_an_interval_given_too_late_is_kept_and_warned_about(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="mekit.analysis.annotate"), \
            AnnotatedVideo(tmp_path / "late.mp4", FPS, (320, 240), CLASSES, delay_frames=5) as av:
        _stream(av, range(30), [_row(2, 8)], delay=15)
    assert av.late_intervals == 1 and "given after frame" in caplog.text
    assert av.written == 30


def test_rows_as_pandas_gives_them_are_accepted(tmp_path):
    nan = float("nan")
    rows = [_row(3, 9, label=nan, p_happy=nan, p_sad=nan, intensity_peak=nan, intensity_peak_frame=nan,
                 intensity_mean=nan, flags=nan),
            {"onset": np.int64(12), "offset": np.int64(14), "kind": "other", "flags": "blink", "score": 3.0}]
    with AnnotatedVideo(tmp_path / "nan.mp4", FPS, (320, 240), delay_frames=4) as av:
        _stream(av, range(20), rows, delay=4)
    assert av.written == 20 == len(_read(av.path))


def test_close_writes_what_is_held_even_after_an_error(tmp_path):
    with pytest.raises(RuntimeError), AnnotatedVideo(tmp_path / "x.mp4", FPS, (320, 240), delay_frames=50) as av:
        _stream(av, range(10))
        raise RuntimeError("stream broke")
    assert av.written == 10 == len(_read(av.path))
    with pytest.raises(ConfigError, match="already closed"):
        av.frame(11, _face(11, 320, 240))
    av.close()  # twice is fine


def test_the_writer_thread_does_not_change_the_file(tmp_path):
    out = []
    for bg in (True, False):
        with AnnotatedVideo(tmp_path / f"bg{int(bg)}.avi", FPS, (320, 240), CLASSES, delay_frames=4,
                            background=bg) as av:
            _stream(av, range(20), [_row(5, 9)], delay=4)
        out.append(_read(av.path))
    assert len(out[0]) == len(out[1]) == 20
    assert all(np.array_equal(a, b) for a, b in zip(*out))


def test_mp4_falls_back_to_motion_jpeg_when_mp4v_cannot_open(tmp_path, monkeypatch, caplog):
    real = cv2.VideoWriter  # an unwritable path stands for a codec this OpenCV lacks
    monkeypatch.setattr(cv2, "VideoWriter", lambda *a: real("/nonexistent/dir/x.mp4", *a[1:])
                        if a[1] == cv2.VideoWriter_fourcc(*"mp4v") else real(*a))
    with caplog.at_level(logging.WARNING, logger="mekit.analysis.annotate"), \
            AnnotatedVideo(tmp_path / "v.mp4", FPS, (320, 240)) as av:
        _stream(av, range(5))
    assert av.path == tmp_path / "v.avi" and av.codec == "MJPG" and "Motion-JPEG" in caplog.text
    assert len(_read(av.path)) == 5
    monkeypatch.setattr(cv2, "VideoWriter", lambda *a: real("/nonexistent/dir/x.avi", *a[1:]))
    with pytest.raises(DataError) as e:
        AnnotatedVideo(tmp_path / "w.mp4", FPS, (320, 240))
    assert "cannot open a video writer" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"fps": 0}, "fps=0"),
    ({"fps": "fast"}, "fps='fast'"),
    ({"size": (0, 480)}, "size=(0, 480)"),
    ({"size": 640}, "size=640"),
    ({"delay_frames": -1}, "delay_frames=-1"),
    ({"delay_frames": 2.5}, "delay_frames=2.5"),
    ({"max_side": 10}, "max_side=10"),
    ({"codec": "h264-high"}, "codec='h264-high'"),
    ({"path": "out.mov"}, "suffix '.mov'"),
    ({"threshold": -3}, "threshold=-3"),
])
def test_bad_arguments_are_refused_with_one_clear_line(tmp_path, kwargs, words):
    args = {"path": tmp_path / "a.mp4", "fps": FPS, "size": (W, H), **kwargs}
    if isinstance(args["path"], str):
        args["path"] = tmp_path / args["path"]
    with pytest.raises(ConfigError) as e:
        AnnotatedVideo(**args)
    msg = str(e.value)
    assert words in msg and "expected" in msg and "\n" not in msg


def test_bad_frames_and_rows_are_refused_with_one_clear_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="cannot create the folder"):
        AnnotatedVideo(tmp_path / "file" / "a.mp4", FPS, (W, H))
    with AnnotatedVideo(tmp_path / "a.mp4", FPS, (320, 240), delay_frames=2) as av:
        bad = [(lambda: av.frame(0, np.zeros((480, 640, 3), np.uint8)), "frame 0 has shape (480, 640, 3)"),
               (lambda: av.frame(0, _face(0, 320, 240), status="gone"), "unknown tracking status"),
               (lambda: av.frame(-1, _face(0, 320, 240)), "frame index"),
               (lambda: av.interval({"onset": 5}), "without integer onset and offset"),
               (lambda: av.interval({"onset": 5, "offset": 3}), "offset before onset"),
               (lambda: av.interval([5, 6]), "must be a mapping")]
        for call, words in bad:
            with pytest.raises(DataError) as e:
                call()
            assert words in str(e.value) and "\n" not in str(e.value)
        av.frame(3, _face(3, 320, 240))
        with pytest.raises(DataError, match="frame 3 given after frame 3"):
            av.frame(3, _face(3, 320, 240))
        # a grey frame is taken as it is
        av.frame(4, cv2.cvtColor(_face(4, 320, 240), cv2.COLOR_BGR2GRAY))
    assert av.written == 2


def test_a_late_score_reaches_its_held_frame(tmp_path):
    with AnnotatedVideo(tmp_path / "s.mp4", FPS, (320, 240), delay_frames=5) as av:
        for i in range(8):
            av.frame(i, _face(i, 320, 240))
        assert av.set_score(6, 4.5) and av._held[-2].score == 4.5
        assert not av.set_score(0, 1.0)  # written already
