"""Video loader and frame reader on tiny mp4 (h264) and avi (mjpeg) files written with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from mekit.data import get_loader
from mekit.data.video import load_videos, probe_video, read_video_frames
from mekit.errors import ConfigError, DataError


def _grey(i: int) -> int:
    return 20 + 4 * i  # frame i is a flat grey of this level, so frames can be told apart


def write_video(path: Path, n: int, fps: int, codec: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width = s.height = 64
        s.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        for i in range(n):
            img = np.full((64, 64, 3), _grey(i), np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "sub01_take1.mp4", 40, 30, "h264")
    write_video(root / "nested" / "sub02_take1.avi", 24, 25, "mjpeg")
    return root


@pytest.mark.parametrize("name,n,fps,codec", [("sub01_take1.mp4", 40, 30.0, "h264"),
                                               ("nested/sub02_take1.avi", 24, 25.0, "mjpeg")])
def test_probe(videos, name, n, fps, codec):
    info = probe_video(videos / name)
    assert (info.n_frames, info.fps, info.width, info.height, info.codec) == (n, fps, 64, 64, codec)


@pytest.mark.parametrize("name", ["sub01_take1.mp4", "nested/sub02_take1.avi"])
def test_read_selected_frames_in_asked_order(videos, name):
    arr, fps = read_video_frames(videos / name, [5, 2, 2, 20])
    assert arr.shape == (4, 64, 64, 3) and arr.dtype == np.uint8
    means = arr.reshape(4, -1).mean(axis=1)
    np.testing.assert_allclose(means, [_grey(5), _grey(2), _grey(2), _grey(20)], atol=3)
    assert fps in (30.0, 25.0)


def test_read_all_frames_and_out_of_range(videos):
    arr, fps = read_video_frames(videos / "sub01_take1.mp4")
    assert arr.shape == (40, 64, 64, 3) and fps == 30.0
    np.testing.assert_allclose(arr[-1].mean(), _grey(39), atol=3)
    with pytest.raises(DataError, match=r"frame 40 asked for, but the video has 40 frames \(0\.\.39\)"):
        read_video_frames(videos / "sub01_take1.mp4", [0, 40])
    with pytest.raises(DataError, match="negative frame numbers"):
        read_video_frames(videos / "sub01_take1.mp4", [-1])


def test_whole_videos_for_prediction(videos):
    t = load_videos(videos)
    assert t.sample_ids == ["video/nested/sub02_take1", "video/sub01_take1"]
    r = t.row("video/sub01_take1")
    assert (r["media"], r["onset"], r["offset"], r["fps"]) == ("video", 0, 39, 30.0)
    assert r["path"] == str(videos / "sub01_take1.mp4")
    assert r["label"] is None and pd_isna(r["apex"])
    assert t.row("video/nested/sub02_take1")["offset"] == 23
    assert any("its own subject" in n for n in t.report.notes)
    assert get_loader("video") is load_videos


def pd_isna(v) -> bool:
    import pandas as pd

    return bool(pd.isna(v))


def test_single_file_and_subject_pattern(videos):
    t = load_videos(videos / "nested" / "sub02_take1.avi", subject_pattern=r"^(sub\d+)_")
    assert t.sample_ids == ["video/sub02_take1"]
    assert t.subjects == ["video/sub02"]
    with pytest.raises(ConfigError, match="no group"):
        load_videos(videos, subject_pattern=r"sub\d+")


def test_interval_csv(videos, tmp_path):
    csv = tmp_path / "intervals.csv"
    csv.write_text(
        "Video,Onset,Apex,Offset,Emotion,Subject\n"
        "sub01_take1.mp4,2,6,12,happiness,s1\n"
        "sub01_take1,20,/,35,disgust,s1\n"          # stem only; apex '/' = none
        "nested/sub02_take1.avi,0,5,23,surprise,s2\n"
        "sub01_take1.mp4,30,32,45,fear,s1\n"         # offset beyond the last frame (39)
        "sub01_take1.mp4,10,15,12,sadness,s1\n"      # apex after offset
        "sub01_take1.mp4,x,3,5,sadness,s1\n"         # not a number
        "absent.mp4,0,1,2,happiness,s3\n")
    t = load_videos(videos, intervals=csv)
    assert t.sample_ids == ["video/sub01_take1/2-12", "video/sub01_take1/20-35", "video/nested/sub02_take1/0-23"]
    df = t.df.set_index("sample_id")
    assert df.loc["video/sub01_take1/2-12", ["onset", "apex", "offset"]].tolist() == [2, 6, 12]
    assert pd_isna(df.loc["video/sub01_take1/20-35", "apex"])
    assert df["label"].tolist() == ["happy", "disgust", "surprise"]
    assert df["emotion"].tolist() == ["happiness", "disgust", "surprise"]
    assert df["fps"].tolist() == [30.0, 30.0, 25.0]
    assert sorted(t.subjects) == ["video/s1", "video/s2"]
    assert t.report.missing == ["absent.mp4"]
    reasons = " | ".join(p.reason for p in t.report.problems)
    assert "offset 45 not within 0 <= onset <= offset <= 39" in reasons
    assert "apex 15 lies outside onset..offset 10..12" in reasons
    assert "'x' is not a whole number" in reasons
    assert len(t.report.problems) == 3


def test_interval_csv_one_based_single_file(videos, tmp_path):
    csv = tmp_path / "one_based.csv"
    csv.write_text("onset_frame;apex_frame;offset_frame;label\n1;5;40;Surprise\n1;;41;happy\n")
    t = load_videos(videos / "sub01_take1.mp4", intervals=csv, frame_base=1)
    assert t.sample_ids == ["video/sub01_take1/0-39"]
    r = t.row("video/sub01_take1/0-39")
    assert (r["onset"], r["apex"], r["offset"], r["label"]) == (0, 4, 39, "surprise")
    assert "CSV numbers minus frame_base 1" in t.report.problems[0].reason
    with pytest.raises(ConfigError, match="frame_base must be 0 or 1; got 2"):
        load_videos(videos, intervals=csv, frame_base=2)


def test_interval_csv_missing_columns(videos, tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("Video,Start_time,Label\nsub01_take1.mp4,1,happy\n")
    with pytest.raises(DataError) as e:
        load_videos(videos, intervals=csv)
    msg = str(e.value)
    assert "bad.csv" in msg and "no onset / offset column" in msg and "['Video', 'Start_time', 'Label']" in msg
    with pytest.raises(DataError, match="interval CSV not found"):
        load_videos(videos, intervals=tmp_path / "nope.csv")


def test_corrupt_videos_are_reported_rest_loads(videos, tmp_path):
    root = tmp_path / "mixed"
    root.mkdir()
    good = write_video(root / "good.avi", 12, 25, "mjpeg")
    (root / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    (root / "empty.avi").write_bytes(b"")
    data = (videos / "sub01_take1.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 3])
    t = load_videos(root)
    assert t.sample_ids == ["video/good"]
    assert t.row("video/good")["path"] == str(good)
    bad = {p.sample for p in t.report.problems}
    assert bad == {"video/garbage", "video/empty", "video/truncated"}
    assert all("unreadable video" in p.reason for p in t.report.problems)
    with pytest.raises(DataError, match="cannot open the video"):
        read_video_frames(root / "garbage.mp4", [0])


def test_no_videos(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="no videos found"):
        load_videos(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_videos(tmp_path / "absent")
