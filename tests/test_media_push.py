"""PushSource: frames handed over from outside through a bounded queue that drops the oldest."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from mekit.errors import ConfigError, DataError
from mekit.media import FrameSource, PushSource


def _img(v: int, w: int = 32, h: int = 24) -> np.ndarray:
    return np.full((h, w, 3), v, np.uint8)


def test_a_full_queue_drops_the_oldest_and_counts_it():
    src = PushSource(10, (32, 24), maxsize=3)
    assert isinstance(src, FrameSource) and src.n_frames is None
    for i in range(5):
        assert src.push(_img(i * 10), time_s=i / 10)
    assert src.received == 5 and src.dropped == 2 and src.waiting == 3
    src.end()
    frames = list(src)
    assert [f.index for f in frames] == [2, 3, 4]  # the two oldest went; their indices stay gaps
    assert [int(f.image[0, 0, 0]) for f in frames] == [20, 30, 40]
    assert not src.push(_img(0))  # ended: nothing more is taken


def test_indices_follow_the_pushed_times_and_never_repeat():
    src = PushSource(10, (32, 24), maxsize=10)
    for t in (0.0, 0.31, 0.32, 0.33, 1.0):
        src.push(_img(1), time_s=t)
    src.end()
    assert [f.index for f in src] == [0, 3, 4, 5, 10]


def test_a_consumer_in_another_thread_gets_every_frame_it_keeps_up_with():
    src = PushSource(30, (32, 24), maxsize=100)
    got: list[int] = []
    assert not src.reading.is_set()
    th = threading.Thread(target=lambda: got.extend(f.index for f in src))
    th.start()
    assert src.reading.wait(5)  # the consumer has started: a pusher holding frames back may go
    for i in range(50):
        src.push(_img(i), time_s=i / 30)
    src.end()
    th.join(5)
    assert got == list(range(50)) and src.dropped == 0


def test_encoded_frames_are_decoded_resized_and_damaged_ones_refused():
    src = PushSource(10, (32, 24))
    ok, jpg = cv2.imencode(".jpg", _img(128, 64, 48))
    assert src.push_encoded(jpg.tobytes(), 0.0)
    with pytest.raises(DataError, match="truncated JPEG"):
        src.push_encoded(jpg.tobytes()[:-40], 0.1)
    with pytest.raises(DataError):
        src.push(np.zeros((4, 4), np.float32))
    src.end()
    (frame,) = list(src)
    assert frame.image.shape == (24, 32, 3)


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError):
        PushSource(0, (32, 24))
    with pytest.raises(ConfigError):
        PushSource(10, (1, 24))
    with pytest.raises(ConfigError):
        PushSource(10, (32, 24), maxsize=0)


def test_close_discards_what_waits():
    src = PushSource(10, (32, 24))
    src.push(_img(1))
    src.close()
    assert list(src) == [] and src.ended
