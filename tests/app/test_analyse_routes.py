"""The Analyse screen's API: a batch of two synthetic recordings analysed and served, markers
saved and read back, the aligned average, a live camera session fed frame by frame, refused
paths and a refused bundle."""

from __future__ import annotations

import io
import shutil
import time
import zipfile

import pytest

from .helpers import WRITE, wait_job


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    from mekit.data.synthetic_long import generate_long_video

    base = tmp_path_factory.mktemp("analyse-videos")
    out = []
    for seed in (1, 2):
        truth = generate_long_video(base / f"rec{seed}.mp4", seconds=6, fps=30, width=320, height=240, seed=seed,
                                    n_micro=1, n_macro=0, talking=False, head_motion=False)
        out.append(truth)
    return out


@pytest.fixture
def aclient(tmp_path, videos):
    from fastapi.testclient import TestClient

    from mekit.app.server import create_app
    from mekit.app.settings import AppSettings

    root = tmp_path / "root"
    (root / "videos").mkdir(parents=True)
    for t in videos:
        shutil.copy(t.path, root / "videos" / t.path.name)
    settings = AppSettings(roots=(root,), workdir=tmp_path / "work", max_upload_bytes=50 * 1024 * 1024)
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8765") as c:
        c.root = root
        yield c


@pytest.mark.slow
def test_a_batch_of_two_recordings_is_analysed_served_marked_and_averaged(aclient, videos):
    c = aclient
    # one recording by path, one uploaded
    up = c.post("/api/uploads", params={"filename": "second.mp4", "kind": "video"}, headers=WRITE,
                content=videos[1].path.read_bytes()).json()
    job = c.post("/api/analyse/batch", headers=WRITE, json={
        "videos": [str(c.root / "videos" / videos[0].path.name), up["path"]], "web_video": True}).json()
    done = wait_job(c, job["id"], timeout=120)
    assert done["state"] == "done", done["error"]
    recs = done["result"]["recordings"]
    assert [r["name"] for r in recs] == ["rec1.mp4", "second.mp4"]
    assert done["stages"]["recordings"]["done"] == 2
    for r, truth in zip(recs, videos):
        ivs = c.get(f"/api/jobs/{job['id']}/files/{r['files']['intervals.json']}").json()
        assert len(ivs) == r["n_intervals"] >= 1
        # the spotter finds the known micro-expression (an interval overlaps it)
        assert any(iv["onset"] <= e.offset and iv["offset"] >= e.onset for iv in ivs for e in truth.micro), \
            (ivs, truth.micro)
        tl = c.get(f"/api/jobs/{job['id']}/files/{r['files']['timeline']}").json()
        assert tl["intervals"] == ivs and len(tl["curves"]["motion"]) == 180
        video = c.get(f"/api/jobs/{job['id']}/files/{r['files']['web_video']}")
        assert video.status_code == 200 and video.content[:4] == b"\x1a\x45\xdf\xa3"  # WebM (EBML)
        assert c.get(f"/api/jobs/{job['id']}/files/{r['files']['intervals.csv']}").text.startswith("video,onset")

    # markers: saved, sorted, read back; refused in one line when wrong
    put = c.put(f"/api/analyse/{job['id']}/markers/rec00", headers=WRITE,
                json={"markers": [{"t": 3.0, "label": "tone"}, {"t": 1.0, "label": "tone"}]})
    assert put.status_code == 200 and [m["t"] for m in put.json()["markers"]] == [1.0, 3.0]
    c.put(f"/api/analyse/{job['id']}/markers/rec01", headers=WRITE, json={"markers": [2.0]})
    assert c.get(f"/api/analyse/{job['id']}/markers").json()["markers"] == {
        "rec00": [{"t": 1.0, "label": "tone"}, {"t": 3.0, "label": "tone"}], "rec01": [{"t": 2.0, "label": ""}]}
    bad = c.put(f"/api/analyse/{job['id']}/markers/rec00", headers=WRITE, json={"markers": [99]})
    assert bad.status_code == 400 and "after the end" in bad.json()["error"] and "\n" not in bad.json()["error"]
    assert c.put(f"/api/analyse/{job['id']}/markers/rec09", headers=WRITE, json={"markers": []}).status_code == 404
    assert c.put(f"/api/analyse/{job['id']}/markers/rec00", json={"markers": []}).status_code == 403  # no header

    # the average aligned on the markers (3 epochs in 2 recordings), and its CSV
    al = c.post(f"/api/analyse/{job['id']}/aligned", headers=WRITE, json={"before_s": 1, "after_s": 2, "bin_s": 0.5})
    assert al.status_code == 200, al.text
    r = al.json()
    assert r["n_recordings"] == 2 and r["n_epochs"] == 3 and r["t"] == [-0.75, -0.25, 0.25, 0.75, 1.25, 1.75]
    assert all(v is not None for v in r["motion"]["mean"]) and r["motion"]["n"] == [2] * 6
    assert c.get(f"/api/jobs/{job['id']}/files/aligned.csv").text.startswith("t,motion_mean")


def test_paths_outside_the_roots_and_wrong_files_are_refused_in_one_line(aclient, tmp_path):
    c = aclient
    for path in ("/etc/passwd", "../../etc/hosts.mp4", str(tmp_path / "elsewhere.mp4")):
        r = c.post("/api/analyse/batch", headers=WRITE, json={"videos": [path]})
        assert r.status_code in (403, 404) and r.json()["error"].startswith("refused"), (path, r.json())
    (c.root / "notes.txt").write_text("x")
    r = c.post("/api/analyse/batch", headers=WRITE, json={"videos": [str(c.root / "notes.txt")]})
    assert r.status_code == 400 and "not a video" in r.json()["error"]
    r = c.post("/api/analyse/batch", headers=WRITE, json={"videos": []})
    assert r.status_code == 400 and "at least one recording" in r.json()["error"]
    vid = str(next((c.root / "videos").iterdir()))
    r = c.post("/api/analyse/batch", headers=WRITE, json={"videos": [vid], "model": "/etc/passwd"})
    assert r.status_code == 403
    r = c.post("/api/analyse/batch", headers=WRITE, json={"videos": [vid], "model": str(c.root / "notes.txt")})
    assert r.status_code == 400 and "not a mekit bundle" in r.json()["error"]
    r = c.post("/api/analyse/batch", headers=WRITE, json={"videos": [vid], "detector": "nope"})
    assert r.status_code == 400 and "unknown face detector" in r.json()["error"]


def test_a_bad_bundle_fails_the_job_in_one_line_before_any_recording(aclient):
    c = aclient
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("meta.json", "{}")
        z.writestr("evil.pkl", b"cos\nsystem\n")
    up = c.post("/api/uploads", params={"filename": "model.mekit", "kind": "bundle"}, headers=WRITE,
                content=buf.getvalue()).json()
    vid = str(next((c.root / "videos").iterdir()))
    job = c.post("/api/analyse/batch", headers=WRITE, json={"videos": [vid], "model": up["path"]}).json()
    done = wait_job(c, job["id"], timeout=60)
    assert done["state"] == "failed" and "\n" not in done["error"] and "bundle" in done["error"].lower()
    assert "Traceback" not in done["error"]
    r = c.put(f"/api/analyse/{job['id']}/markers/rec00", headers=WRITE, json={"markers": []})
    assert r.status_code == 400 and "failed" in r.json()["error"]


def test_a_live_session_takes_frames_reports_drops_and_stop_writes_the_outputs(aclient, videos):
    import cv2

    c = aclient
    job = c.post("/api/analyse/live", headers=WRITE, json={"size": [320, 240], "fps": 15, "web_video": False}).json()
    cap = cv2.VideoCapture(str(videos[0].path))
    sent = accepted = 0
    for i in range(90):  # 6 s at 15 fps (every second frame of the 30 fps video), as fast as possible
        ok, img = cap.read()
        ok2, _ = cap.read()
        if not ok:
            break
        jpg = cv2.imencode(".jpg", img)[1].tobytes()
        r = c.post(f"/api/analyse/live/{job['id']}/frame", params={"t": int(i * 1000 / 15)}, headers=WRITE,
                   content=jpg).json()
        sent += 1
        accepted += r["accepted"]
        if not r["accepted"]:
            time.sleep(0.05)  # the session is starting or busy: the inbox is full
    cap.release()
    assert accepted > 0
    bad = c.post(f"/api/analyse/live/{job['id']}/frame", headers=WRITE, content=b"not a jpeg")
    assert bad.status_code == 400 and "JPEG" in bad.json()["error"]
    c.post(f"/api/analyse/live/{job['id']}/stop", headers=WRITE)
    done = wait_job(c, job["id"], timeout=90)
    assert done["state"] == "done", done["error"]
    (rec,) = done["result"]["recordings"]
    assert rec["key"] == "live" and rec["received"] == accepted
    assert rec["frames"] + rec["dropped"] == accepted
    progress = [e for e in c.get(f"/api/jobs/{job['id']}").json()["events"] if e.get("stage") == "camera"]
    assert progress and progress[-1]["done"] == accepted
    for name in ("intervals.csv", "frames.csv", "timeline.json"):
        assert c.get(f"/api/jobs/{job['id']}/files/live/{name}").status_code == 200
    r = c.post(f"/api/analyse/live/{job['id']}/frame", headers=WRITE, content=b"\xff\xd8\xff\xe0")
    assert r.status_code == 400 and "has ended" in r.json()["error"]
