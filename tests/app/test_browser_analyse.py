"""The Analyse screen in a real headless Chromium against a real ``mekit app``: analyse a
synthetic recording with known intervals and see them on the timeline, add markers, average
across recordings; and feed the camera view from Chromium's fake camera (a synthetic face
video given as a y4m file), stop, and see the outputs. Screenshots go to
``runs/test-artifacts/app/``."""

from __future__ import annotations

import csv
import io

import pytest

from .helpers import CHROMIUM, CHROMIUM_ARGS, open_page, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def recording(live_server):
    from mekit.data.synthetic_long import generate_long_video

    folder = live_server["root"] / "videos"
    folder.mkdir(exist_ok=True)
    return generate_long_video(folder / "session.mp4", seconds=12, fps=30, width=320, height=240, seed=1,
                               n_micro=1, n_macro=1, talking=False, head_motion=False)


def test_a_recording_with_known_intervals_shows_them_on_the_timeline(app_page, recording):
    page = app_page
    page.click("#tab-analyse")
    page.wait_for_selector("#run-analyse")
    page.set_input_files("#video-files", str(recording.path))
    page.wait_for_selector("#rec-list li[data-path]")
    page.click("#run-analyse")
    page.wait_for_selector("[data-label=Analysis][data-state=done]", timeout=90_000)
    page.wait_for_selector(".tl-interval")

    job = page.get_attribute("#analyse-result", "data-job")
    text = page.evaluate("u => fetch(u).then(r => r.text())", f"/api/jobs/{job}/files/rec00/intervals.csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    drawn = page.eval_on_selector_all(".tl-interval", "els => els.map(e => [e.dataset.onset, e.dataset.offset, e.dataset.kind])")
    assert drawn == [[r["onset"], r["offset"], r["kind"]] for r in rows]
    # the known expressions are among them (an interval overlaps each)
    for e in (*recording.micro, *recording.macro):
        assert any(int(a) <= e.offset and int(b) >= e.onset for a, b, _ in drawn), (e, drawn)
    assert page.locator("#intervals-table tbody tr").count() == len(rows)

    # the annotated video plays (WebM) and the timeline seeks it
    page.wait_for_function("() => { const v = document.getElementById('player'); return v && v.readyState >= 1 && v.videoWidth > 0; }",
                           timeout=20_000)
    page.click(".tl-interval >> nth=0")
    assert "Interval 1" in page.inner_text("#interval-detail")
    page.wait_for_function("() => document.getElementById('player').currentTime > 0")

    # markers: one at the current time, one by double-clicking the timeline; both saved
    page.click("#add-marker")
    page.wait_for_selector(".tl-marker")
    box = page.locator("#timeline svg").bounding_box()
    page.mouse.dblclick(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.3)
    page.wait_for_function("() => document.querySelectorAll('.tl-marker').length === 2")
    saved = page.evaluate("u => fetch(u).then(r => r.json())", f"/api/analyse/{job}/markers")["markers"]["rec00"]
    assert len(saved) == 2 and saved[1]["t"] > saved[0]["t"] > 0

    page.click("#run-aligned")
    page.wait_for_selector("#aligned-chart")
    assert "2 markers in 1 of 1 recordings" in page.inner_text("#aligned-summary")
    screenshot(page, "analyse-screen")
    assert not page.errors, page.errors


def _y4m(video, path, fps: int = 15, seconds: float = 6.0) -> None:
    """A y4m (YUV 4:2:0) copy of the video, what Chromium's fake camera plays in a loop."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    w, h = int(cap.get(3)), int(cap.get(4))
    step = max(1, round(cap.get(cv2.CAP_PROP_FPS) / fps))
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        i = 0
        while i < seconds * fps * step:
            ok, img = cap.read()
            if not ok:
                break
            if i % step == 0:
                f.write(b"FRAME\n" + cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420).tobytes())
            i += 1
    cap.release()


@pytest.fixture
def camera_page(_browser, live_server, recording, tmp_path):
    fake = tmp_path / "face.y4m"
    _y4m(recording.path, fake)
    browser = _browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True,
        args=[*CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
              f"--use-file-for-fake-video-capture={fake}"])
    page = open_page(browser, live_server["url"] + "/#analyse")
    yield page
    page.context.close()
    browser.close()


def test_the_camera_view_from_a_fake_device(camera_page):
    page = camera_page
    page.wait_for_selector("#camera-start")
    page.click("#camera-start")
    page.wait_for_selector("#live-timeline")
    # frames wait until the session's analysis has loaded, then go through it
    page.wait_for_function("() => Number(document.getElementById('camera-stats').dataset.analysed) >= 24",
                           timeout=40_000)
    page.wait_for_function("() => document.getElementById('camera-video').videoWidth > 0")
    screenshot(page, "analyse-camera", full_page=False)
    page.click("#camera-stop")
    page.wait_for_selector("#live-result[data-state=done]", timeout=60_000)
    page.wait_for_selector("#recording-summary")
    stats = page.inner_text("#camera-stats")
    assert stats.startswith("Session done") and "dropped" in stats
    job = page.get_attribute("#live-result", "data-job")
    done = page.evaluate("u => fetch(u).then(r => r.json())", f"/api/jobs/{job}")
    rec = done["result"]["recordings"][0]
    assert rec["frames"] >= 24 and rec["frames"] + rec["dropped"] == rec["received"]
    assert rec["frames_without_face"] < rec["frames"]  # the fake camera shows the synthetic face
    assert page.evaluate("u => fetch(u).then(r => r.status)", f"/api/jobs/{job}/files/live/intervals.csv") == 200
    page.wait_for_function("() => { const v = document.getElementById('player'); return v && v.readyState >= 1; }",
                           timeout=20_000)
    screenshot(page, "analyse-camera-stopped")
    assert not page.errors, page.errors
