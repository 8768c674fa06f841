"""Frame sources (mekit.media): videos, folders of frames, cameras and real-time playing.

Test videos are written with OpenCV's own MJPG writer in .avi (intra-only, so every frame is
a key frame and the decoded grey level identifies the frame). Each frame is filled with grey
level ``8 * index``, which JPEG keeps to within a unit or two.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from mekit.errors import ConfigError, DataError
from mekit.media import (
    CameraSource,
    FolderSource,
    Frame,
    FrameSource,
    PacedSource,
    VideoSource,
    open_source,
)

W, H = 64, 48


def _grey(i: int) -> np.ndarray:
    return np.full((H, W, 3), (8 * i) % 256, np.uint8)


def _level(img: np.ndarray) -> int:
    """The frame index a test frame was written with."""
    return int(round(float(img.mean()) / 8))


def write_video(path: Path, n: int = 20, fps: float = 25.0, size: tuple[int, int] = (W, H),
                frame=_grey) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened(), "this OpenCV cannot write MJPG/avi"
    for i in range(n):
        writer.write(frame(i))
    writer.release()
    return path


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.avi")


# -- VideoSource ------------------------------------------------------------------------------
def test_video_frames_come_in_order_with_fps_size_and_times(video):
    with VideoSource(video) as src:
        assert isinstance(src, FrameSource)
        assert (src.fps, src.n_frames, src.size, src.name) == (25.0, 20, (W, H), str(video))
        frames = list(src)
    assert [f.index for f in frames] == list(range(20))
    assert [_level(f.image) for f in frames] == list(range(20))
    assert [f.time_s for f in frames] == pytest.approx([i / 25 for i in range(20)])
    img = frames[0].image
    assert img.dtype == np.uint8 and img.shape == (H, W, 3)
    assert all(math.isfinite(f.captured_s) for f in frames)
    assert src.dropped == 0 and src.skipped == 0 and src.problems == []


def test_video_colour_order_is_bgr(tmp_path):
    blue = np.zeros((H, W, 3), np.uint8)
    blue[..., 0] = 255  # channel 0 is blue in BGR
    path = write_video(tmp_path / "blue.avi", n=2, frame=lambda i: blue)
    with VideoSource(path) as src:
        img = next(iter(src)).image
    assert img[..., 0].mean() > 200 and img[..., 2].mean() < 50


def test_video_start_resumes_at_that_frame(video):
    with VideoSource(video, start=7) as src:
        frames = list(src)
    assert [f.index for f in frames] == list(range(7, 20))
    assert _level(frames[0].image) == 7
    assert frames[0].time_s == pytest.approx(7 / 25)
    assert src.problems == []


def test_video_resumed_at_its_end_is_empty_and_quiet(video, caplog):
    with caplog.at_level(logging.WARNING), VideoSource(video, start=20) as src:
        assert list(src) == []
    assert not caplog.records


def test_video_start_beyond_the_end_is_refused(video):
    with pytest.raises(DataError, match="clip.avi.*frame 25"):
        VideoSource(video, start=25)


_RealCapture = cv2.VideoCapture


class _Capture:
    """A real capture with one method changed. (A Python subclass of cv2.VideoCapture crashes
    the interpreter when it is freed, so tests wrap one instead.)"""

    def __init__(self, *args) -> None:
        self._cap = _RealCapture(*args)

    def __getattr__(self, name):
        return getattr(self._cap, name)


class _SeeksToKeyFrame(_Capture):
    """A capture whose seek lands 3 frames early, as an inexact seek on a long-GOP codec does."""

    def set(self, prop, value):
        if prop == cv2.CAP_PROP_POS_FRAMES:
            value = max(0, value - 3)
        return self._cap.set(prop, value)


def test_an_inexact_seek_falls_back_to_decoding_forward(video, monkeypatch):
    monkeypatch.setattr(cv2, "VideoCapture", _SeeksToKeyFrame)
    with VideoSource(video, start=9) as src:
        frames = list(src)
    assert frames[0].index == 9 and _level(frames[0].image) == 9
    assert [_level(f.image) for f in frames] == list(range(9, 20))


def test_a_truncated_video_ends_cleanly_with_a_warning(tmp_path, caplog):
    path = write_video(tmp_path / "cut.avi", n=30)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.8)])
    with caplog.at_level(logging.WARNING), VideoSource(path) as src:
        frames = list(src)  # no exception after frames were delivered
    assert 0 < len(frames) < 30
    assert [_level(f.image) for f in frames] == list(range(len(frames)))
    last = frames[-1].index
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1
    assert "cut.avi" in warned[0] and f"last good frame is frame {last}" in warned[0]
    assert src.problems == warned


class _NoFps(_Capture):
    value = 0.0

    def get(self, prop):
        return self.value if prop == cv2.CAP_PROP_FPS else self._cap.get(prop)


@pytest.mark.parametrize("declared", [0.0, math.nan])
def test_a_video_without_a_frame_rate_is_refused_with_how_to_give_one(video, monkeypatch, declared):
    monkeypatch.setattr(_NoFps, "value", declared)
    monkeypatch.setattr(cv2, "VideoCapture", _NoFps)
    with pytest.raises(DataError) as e:
        VideoSource(video)
    msg = str(e.value)
    assert "clip.avi" in msg and "frame rate" in msg and "fps=" in msg and "\n" not in msg
    with VideoSource(video, fps=10) as src:  # an explicit rate is used as it is
        frames = list(src)
    assert src.fps == 10 and frames[3].time_s == pytest.approx(0.3)


def test_missing_or_undecodable_videos_are_data_errors_naming_the_file(tmp_path):
    with pytest.raises(DataError, match="nope.avi.*does not exist"):
        VideoSource(tmp_path / "nope.avi")
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(DataError, match="junk.avi"):
        VideoSource(junk)


def test_video_source_holds_a_bounded_number_of_frames(tmp_path):
    w, h = 320, 240
    path = write_video(tmp_path / "long.avi", n=120, size=(w, h),
                       frame=lambda i: np.full((h, w, 3), i % 200, np.uint8))
    frame_bytes = w * h * 3
    tracemalloc.start()
    try:
        with VideoSource(path) as src:
            n = sum(1 for _ in src)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 120
    assert peak < 4 * frame_bytes, f"peak {peak} bytes is more than a few frames of {frame_bytes}"


# -- FolderSource -----------------------------------------------------------------------------
def _folder(tmp_path: Path, n: int = 12) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(n):
        # numbered from 1, unpadded: img10 must come after img9, not after img1
        cv2.imwrite(str(folder / f"img{i + 1}.png"), _grey(i))
    (folder / "notes.txt").write_text("not a frame")
    return folder


def test_folder_frames_are_ordered_by_the_number_in_their_names(tmp_path):
    with FolderSource(_folder(tmp_path), fps=10) as src:
        assert (src.fps, src.n_frames, src.size) == (10.0, 12, (W, H))
        frames = list(src)
    assert [f.index for f in frames] == list(range(12))
    assert [_level(f.image) for f in frames] == list(range(12))
    assert frames[11].time_s == pytest.approx(1.1)
    assert frames[0].image.shape == (H, W, 3)


def test_folder_start_resumes_at_that_frame(tmp_path):
    with FolderSource(_folder(tmp_path), fps=10, start=5) as src:
        frames = list(src)
    assert [f.index for f in frames] == list(range(5, 12))
    assert _level(frames[0].image) == 5


def test_a_damaged_frame_is_skipped_named_and_counted(tmp_path, caplog):
    folder = _folder(tmp_path)
    bad = folder / "img4.png"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated: no IEND chunk
    with caplog.at_level(logging.WARNING), FolderSource(folder, fps=10) as src:
        frames = list(src)
    assert [f.index for f in frames] == [0, 1, 2] + list(range(4, 12))  # the gap keeps times true
    assert [_level(f.image) for f in frames] == [f.index for f in frames]
    assert src.skipped == 1 and src.skipped_files == [bad]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "img4.png" in warned[0] and "frame 3" in warned[0]


def test_gaps_and_unnumbered_names_in_a_folder_are_warned_about(tmp_path):
    folder = _folder(tmp_path)
    (folder / "img6.png").unlink()
    cv2.imwrite(str(folder / "cover.png"), _grey(20))
    with FolderSource(folder, fps=10) as src:
        frames = list(src)
    assert _level(frames[-1].image) == 20  # unnumbered names come last
    assert len(src.problems) == 2
    assert "cover.png" in src.problems[0] and "1 to 12 but 1 are missing" in src.problems[1]


def test_a_folder_needs_a_frame_rate_and_images(tmp_path):
    folder = _folder(tmp_path)
    with pytest.raises(ConfigError, match="frame rate"):
        open_source(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="empty.*no image frames"):
        FolderSource(empty, fps=10)


# -- CameraSource -----------------------------------------------------------------------------
def test_an_unopenable_camera_is_one_clear_line():
    with pytest.raises(DataError) as e:
        open_source(camera=97)
    msg = str(e.value)
    assert msg.startswith("camera 97 cannot be opened") and "\n" not in msg
    with pytest.raises(DataError, match="^camera 96 cannot be opened"):
        open_source(96)  # an int input is a camera index


def test_camera_frames_are_timed_by_the_clock(video, monkeypatch, caplog):
    # a "camera" that plays the test video, to exercise the camera path without one
    monkeypatch.setattr(cv2, "VideoCapture", lambda index, *a: _RealCapture(str(video)))
    with caplog.at_level(logging.WARNING), CameraSource(0) as src:
        assert src.n_frames is None and src.name == "camera 0" and src.size == (W, H)
        frames = list(src)
    assert [f.index for f in frames] == list(range(20))
    assert frames[0].time_s == 0.0
    times = [f.time_s for f in frames]
    assert times == sorted(times) and times[-1] < 5  # real seconds, not index / fps
    assert "camera 0 stopped delivering frames after frame 19" in caplog.text


# -- PacedSource ------------------------------------------------------------------------------
def _paced_video(tmp_path: Path, n: int = 15, fps: float = 10.0) -> Path:
    return write_video(tmp_path / "paced.avi", n=n, fps=fps)


def test_paced_fast_consumer_gets_every_frame_at_the_real_rate(tmp_path):
    # 15 frames at 10 fps: the last is due 1.4 s after the first
    with PacedSource(VideoSource(_paced_video(tmp_path))) as src:
        got = [(f, time.monotonic()) for f in src]
    frames = [f for f, _ in got]
    assert [f.index for f in frames] == list(range(15)) and src.dropped == 0
    elapsed = got[-1][1] - got[0][1]
    assert 1.3 < elapsed < 4.0, f"15 frames at 10 fps took {elapsed:.2f} s"
    latency = [t - f.captured_s for f, t in got]
    assert all(0 <= x < 1.0 for x in latency)


def test_paced_slow_consumer_drops_frames_and_counts_them(tmp_path):
    delivered = []
    with PacedSource(VideoSource(_paced_video(tmp_path))) as src:
        for f in src:
            delivered.append(f.index)
            time.sleep(0.25)  # 2.5 frame periods per frame
    assert src.dropped >= 5
    assert len(delivered) + src.dropped == 15  # dropped, not queued: nothing lost unaccounted
    assert delivered == sorted(set(delivered)) and delivered[0] == 0 and delivered[-1] == 14


def test_paced_speed_plays_faster(tmp_path):
    t0 = time.monotonic()
    with PacedSource(VideoSource(_paced_video(tmp_path)), speed=4.0) as src:
        n = sum(1 for _ in src)
    assert n == 15 and time.monotonic() - t0 < 1.2  # 0.35 s of playing at 4x, not 1.4 s


def test_paced_clock_stamps_capture_times(tmp_path):
    ticks = []

    def clock() -> float:
        ticks.append(None)
        return time.monotonic() + 1000.0

    with PacedSource(VideoSource(_paced_video(tmp_path, n=3)), speed=10, clock=clock) as src:
        frames = list(src)
    assert all(f.captured_s > 1000.0 for f in frames) and ticks


def test_leaving_a_paced_loop_stops_its_reader_and_close_releases_the_source(tmp_path):
    inner = VideoSource(_paced_video(tmp_path, n=50))
    src = PacedSource(inner, speed=2)
    for f in src:
        if f.index >= 1:
            break
    t0 = time.monotonic()
    src.close()
    assert time.monotonic() - t0 < 2.0
    assert src._thread is not None and not src._thread.is_alive()
    assert list(inner) == []  # closed


class _Failing:
    """A source that breaks after two frames (errors must reach the consumer, not vanish)."""

    fps, n_frames, size, name = 100.0, None, (W, H), "failing"
    dropped = skipped = 0
    problems: list[str] = []

    def __iter__(self):
        for i in range(2):
            yield Frame(i, i / 100, _grey(i))
        raise RuntimeError("decoder exploded")

    def close(self) -> None:
        pass


def test_paced_source_raises_the_reader_error_after_the_frames(tmp_path):
    got = []
    with pytest.raises(RuntimeError, match="decoder exploded"), PacedSource(_Failing()) as src:
        for f in src:
            got.append(f.index)
            time.sleep(0.001)
    assert got[-1] == 1


def test_paced_source_holds_one_waiting_frame(tmp_path):
    # the buffer is one slot: while the consumer is busy, nothing queues up behind it
    src = PacedSource(VideoSource(_paced_video(tmp_path, n=40, fps=100)))
    it = iter(src)
    next(it)
    time.sleep(0.5)  # 50 frames' worth: all due while the consumer holds the first
    with src._cond:
        waiting = src._slot
    assert isinstance(waiting, Frame)
    rest = list(it)
    assert len(rest) <= 2 and src.dropped >= 37
    src.close()


def test_paced_source_threads_end(tmp_path):
    before = threading.active_count()
    with PacedSource(VideoSource(_paced_video(tmp_path, n=3)), speed=20) as src:
        list(src)
    time.sleep(0.05)
    assert threading.active_count() == before


# -- open_source ------------------------------------------------------------------------------
def test_open_source_picks_by_input(video, tmp_path):
    with open_source(video) as src:
        assert isinstance(src, VideoSource)
    with open_source(str(video), fps=50, start=3) as src:
        first = next(iter(src))
        assert src.fps == 50 and first.index == 3 and first.time_s == pytest.approx(0.06)
    with open_source(_folder(tmp_path), fps=30) as src:
        assert isinstance(src, FolderSource)


def test_unknown_inputs_are_one_clear_line(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    for bad, pattern in [(text, "notes.txt.*cannot stream.*'.txt'.*expected a video file"),
                         (tmp_path / "absent.mp4", "absent.mp4.*does not exist"),
                         ("7", "does not exist \\(for camera 7, give it as a camera index\\)")]:
        with pytest.raises(DataError, match=pattern) as e:
            open_source(bad)
        assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="not both"):
        open_source(text, camera=0)
    with pytest.raises(ConfigError, match="start"):
        open_source(text, start=-1)
