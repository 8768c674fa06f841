"""The Build-a-dataset screen's API on a synthetic recording: frames as mekit.media reads them,
refused indices and paths, the flow image, frame sampling, the spotter's suggestions, and an
export that the CASME II loader reads back."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from mekit.media import open_source

from .helpers import WRITE, wait_job

FPS = 30.0


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """6 s at 30 fps, 320x240 MJPG (180 frames), one micro-expression at 54..66 (apex 59)."""
    from mekit.data.synthetic_long import generate_long_video

    truth = generate_long_video(tmp_path_factory.mktemp("rec") / "rec.avi", seconds=6, fps=FPS, width=320,
                                height=240, seed=1, n_micro=1, n_macro=0)
    assert [(e.onset, e.apex, e.offset) for e in truth.events] == [(54, 59, 66)]
    return truth


@pytest.fixture
def video(recording, app_root):
    """The recording copied into the app's allowed root."""
    target = app_root / "videos" / "rec.avi"
    target.parent.mkdir(parents=True)
    shutil.copy(recording.path, target)
    return target


def _decoded(path, index: int) -> np.ndarray:
    with open_source(path, start=index) as src:
        frame = next(iter(src))
    assert frame.index == index
    return frame.image


def test_choices_fill_the_menus(client):
    c = client.get("/api/build/choices").json()
    assert {"happy", "surprise", "disgust", "repression", "others"} <= set(c["emotions"])
    assert {s["name"] for s in c["samplers"]} >= {"uniform", "apex", "window"}
    window = next(s for s in c["samplers"] if s["name"] == "window")
    assert set(window["params"]) == {"window", "stride"}
    assert c["flow_default"] in {m["name"] for m in c["flow_methods"]}
    assert "build" in [s["id"] for s in client.get("/api/info").json()["screens"] if not s.get("planned")]


def test_video_info_and_listing(client, video):
    info = client.get("/api/build/video", params={"video": str(video)}).json()
    assert (info["n_frames"], info["fps"], info["width"], info["height"]) == (180, FPS, 320, 240)
    listing = client.get("/api/build/videos", params={"folder": str(video.parent)}).json()
    assert [v["name"] for v in listing["videos"]] == ["rec.avi"] and listing["images"] == 0


def test_frames_are_the_frames_mekit_media_reads(client, video):
    quality = [int(cv2.IMWRITE_JPEG_QUALITY), 90]
    # forward, a jump back, a step back, the last frame: each answer is exactly that frame
    for index in (0, 1, 2, 120, 57, 56, 179, 56):
        r = client.get("/api/build/frame", params={"video": str(video), "index": index})
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg", r.text
        want = cv2.imencode(".jpg", _decoded(video, index), quality)[1].tobytes()
        assert r.content == want, f"frame {index} differs from mekit.media's"
    small = client.get("/api/build/frame", params={"video": str(video), "index": 3, "size": 100})
    img = cv2.imdecode(np.frombuffer(small.content, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (75, 100, 3)


def test_out_of_range_frames_and_paths_outside_the_roots_are_refused(client, video, tmp_path):
    past = client.get("/api/build/frame", params={"video": str(video), "index": 180})
    assert past.status_code == 404 and "past the end" in past.json()["error"]
    negative = client.get("/api/build/frame", params={"video": str(video), "index": -1})
    assert negative.status_code == 422
    outside = tmp_path / "elsewhere.avi"
    shutil.copy(video, outside)
    for bad in (str(outside), "../elsewhere.avi", "videos/../../elsewhere.avi", "%2e%2e/elsewhere.avi", "/etc/passwd"):
        r = client.get("/api/build/frame", params={"video": bad, "index": 0})
        assert r.status_code == 403, (bad, r.text)
        assert r.json()["error"].startswith("refused") and "\n" not in r.json()["error"]
    assert client.get("/api/build/video", params={"video": "videos/none.avi"}).status_code == 404
    (video.parent / "notes.txt").write_text("x")
    assert client.get("/api/build/video", params={"video": "videos/notes.txt"}).status_code == 400
    assert client.get("/api/build/videos", params={"folder": str(tmp_path)}).status_code == 403


def test_flow_image_between_onset_and_apex(client, video):
    r = client.get("/api/build/flow", params={"video": str(video), "onset": 54, "apex": 59})
    assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n", r.text
    assert r.headers["X-Flow-Region"] == "face" and float(r.headers["X-Flow-Max"]) > 0.5
    whole = client.get("/api/build/flow", params={"video": str(video), "onset": 54, "apex": 59, "face": "false",
                                                   "method": "dis"})
    assert whole.status_code == 200 and whole.headers["X-Flow-Region"] == "whole frame"
    backwards = client.get("/api/build/flow", params={"video": str(video), "onset": 59, "apex": 54})
    assert backwards.status_code == 400 and "after the onset" in backwards.json()["error"]
    unknown = client.get("/api/build/flow", params={"video": str(video), "onset": 54, "apex": 59, "method": "magic"})
    assert unknown.status_code == 400 and "magic" in unknown.json()["error"]


def test_sampling_gives_the_registered_samplers_frames(client):
    from mekit.preprocess.temporal import uniform, window_sparse

    r = client.get("/api/build/sampling", params={"sampler": "window", "onset": 54, "apex": 59, "offset": 66,
                                                  "params": '{"window": "3", "stride": "4"}'}).json()
    assert r["frames"] == window_sparse(54, 59, 66, 3, 4).tolist()
    r = client.get("/api/build/sampling", params={"sampler": "uniform", "onset": 10, "offset": 40,
                                                  "params": '{"n": 8}'}).json()
    assert r["frames"] == uniform(10, 40, 8).tolist()
    bad = client.get("/api/build/sampling", params={"sampler": "window", "onset": 54, "offset": 66,
                                                    "params": '{"window": "0", "stride": "4"}'})
    assert bad.status_code == 400 and "window" in bad.json()["error"]


@pytest.mark.slow
def test_spotter_suggests_the_micro_expression(client, video):
    r = client.post("/api/build/spot", json={"video": str(video)}, headers=WRITE)
    assert r.status_code == 200, r.text
    job = wait_job(client, r.json()["id"], timeout=120)
    assert job["state"] == "done", job["error"]
    found = job["result"]["intervals"]
    assert any(s["onset"] <= 59 <= s["offset"] for s in found), found
    assert {"onset", "apex", "offset", "kind", "score"} <= set(found[0])


@pytest.mark.slow
def test_export_of_two_clips_loads_back_with_the_casme2_loader(client, video, app_root):
    from mekit.data.casme2 import load_casme2

    clips = [{"onset": 54, "apex": 59, "offset": 66, "emotion": "disgust", "action_units": "4"},
             {"onset": 100, "apex": 110, "offset": 130, "emotion": "happy", "action_units": "12"}]
    out = app_root / "datasets" / "built"
    r = client.post("/api/build/export", json={"video": "videos/rec.avi", "clips": clips, "out": str(out),
                                               "subject": "sub03"}, headers=WRITE)
    assert r.status_code == 200, r.text
    job = wait_job(client, r.json()["id"], timeout=120)
    assert job["state"] == "done", job["error"]
    res = job["result"]
    assert res["check"]["n_samples"] == 2 and res["check"]["ok"] and res["problems"] == []
    table = load_casme2(out)
    df = table.df.sort_values("onset").reset_index(drop=True)
    assert [(r.onset, r.apex, r.offset) for r in df.itertuples()] == [(54, 59, 66), (100, 110, 130)]
    assert list(df["emotion"]) == ["disgust", "happy"] and set(df["subject"].astype(str)) == {"casme2/sub03"}
    assert [(c["onset"], c["offset"]) for c in res["loaded"]] == [(54, 66), (100, 130)]

    # the folder is not empty now: refused in one line, unless overwrite or append is asked for
    again = client.post("/api/build/export", json={"video": str(video), "clips": clips[:1], "out": str(out)},
                        headers=WRITE)
    refused = wait_job(client, again.json()["id"], timeout=60)
    assert refused["state"] == "failed" and "not empty" in refused["error"] and "\n" not in refused["error"]
    more = client.post("/api/build/export", json={"video": str(video), "out": str(out), "append": True, "subject": "3",
                                                  "clips": [{"onset": 150, "apex": 155, "offset": 160}]}, headers=WRITE)
    appended = wait_job(client, more.json()["id"], timeout=60)
    assert appended["state"] == "done", appended["error"]
    assert len(load_casme2(out).df) == 3


def test_export_refuses_folders_outside_or_that_would_lose_data(client, video, app_root, tmp_path):
    clip = [{"onset": 54, "apex": 59, "offset": 66}]
    for out, status in ((str(tmp_path / "elsewhere"), 403), ("../x", 403), (str(app_root), 400),
                        (str(video.parent), 400), ("", 400)):
        r = client.post("/api/build/export", json={"video": str(video), "clips": clip, "out": out, "overwrite": True},
                        headers=WRITE)
        assert r.status_code == status, (out, r.text)
        assert "\n" not in r.json()["error"]
    empty = client.post("/api/build/export", json={"video": str(video), "clips": [], "out": "datasets/x"}, headers=WRITE)
    assert empty.status_code == 400 and "no clips" in empty.json()["error"]
    unsent = client.post("/api/build/export", json={"video": str(video), "clips": clip, "out": "datasets/x"})
    assert unsent.status_code == 403  # no X-Mekit header: not from the page
