"""Every screen of the web app on real CASME II (../shared/data; skipped where absent): the Data
screen checks the corpus, the Build screen opens a clip's frame folder and serves its frames,
the Train screen evaluates a quick recipe under LOSO, and the Analyse screen spots a real
micro-expression in a recording made of a clip between still stretches. Nothing derived from
the corpus is written outside pytest's temporary folders."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from .helpers import WRITE, wait_job

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.fixture
def real_client(tmp_path, casme2_root):
    from fastapi.testclient import TestClient

    from mekit.app.server import create_app
    from mekit.app.settings import AppSettings

    root = tmp_path / "root"
    root.mkdir()
    settings = AppSettings(roots=(casme2_root, root), workdir=tmp_path / "work")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8765") as c:
        c.root = root
        yield c


def _job(c, route: str, body: dict, timeout: float = 600) -> dict:
    r = c.post(route, json=body, headers=WRITE)
    assert r.status_code == 200, r.text
    job = wait_job(c, r.json()["id"], timeout=timeout)
    assert job["state"] == "done", job["error"]
    return {**job["result"], "job_id": job["id"]}


def test_data_and_build_screens_read_casme2(real_client, casme2_root):
    c = real_client
    res = _job(c, "/api/data/check", {"loader": "casme2", "root": str(casme2_root)})
    assert res["n_samples"] == 244 and res["n_subjects"] == 26
    assert res["classes"]["others"] == 96 and len(res["missing"]) == 11
    # a clip folder opens in the Build screen at the corpus's 200 fps, frame by frame
    clip = casme2_root / "Cropped" / "sub01" / "EP02_01f"
    info = c.get("/api/build/video", params={"video": str(clip), "fps": 200}).json()
    assert info["fps"] == 200 and info["n_frames"] == len(list(clip.glob("*.jpg")))
    frame = c.get("/api/build/frame", params={"video": str(clip), "index": 3, "fps": 200})
    assert frame.status_code == 200 and frame.content[:2] == b"\xff\xd8"


def test_train_screen_evaluates_casme2_under_loso(real_client, casme2_root):
    c = real_client
    menus = {"loader": "casme2", "root": str(casme2_root), "label_scheme": "megc_3class", "detector": "none",
             "flow": "farneback", "size": "64", "features": "hoof", "model": "logreg", "class_weight": "balanced",
             "protocol": "loso"}
    res = _job(c, "/api/train/evaluate", {"source": "menus", "menus": menus, "device": "cpu",
                                          "overrides": "preprocess.landmarks=false\nmodel.params={grid: {}}"})
    m = res["metrics"]
    assert res["protocol"] == "loso" and res["label_scheme"] == "megc_3class"
    assert 0.33 < m["uf1"] <= 1.0, m  # above the chance level of three classes
    preds = c.get(f"/api/jobs/{res['job_id']}/files/{res['run']}/predictions.csv")
    assert preds.status_code == 200 and len(preds.text.strip().splitlines()) == 139 + 1


def test_analyse_screen_spots_a_real_micro_expression(real_client, casme2_root):
    from mekit.data.casme2 import load_casme2

    c = real_client
    row = load_casme2(casme2_root).df.query("sample_id == 'casme2/sub01/EP02_01f'").iloc[0]
    frames = [cv2.imread(str(casme2_root / "Cropped" / "sub01" / "EP02_01f" / f"reg_img{i}.jpg"))
              for i in range(int(row.onset), int(row.offset) + 1)]
    h, w = frames[0].shape[:2]
    # the clip between 1.5 s still stretches of its own first and last frames, with sensor noise
    rng = np.random.default_rng(0)
    path = c.root / "sub01_EP02_01f.avi"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 200.0, (w, h))
    still = 300
    for img in [frames[0]] * still + frames + [frames[-1]] * still:
        out.write(np.clip(img + rng.normal(0, 1.5, img.shape), 0, 255).astype(np.uint8))
    out.release()
    res = _job(c, "/api/analyse/batch", {"videos": [str(path)], "detector": "none", "web_video": False})
    rec = res["recordings"][0]
    ivs = c.get(f"/api/jobs/{res['job_id']}/files/{rec['files']['intervals.json']}").json()
    # the clip lies at frames still .. still + len(frames) - 1: a spotted interval overlaps it
    on, off = still, still + len(frames) - 1
    assert any(iv["onset"] <= off and iv["offset"] >= on for iv in ivs), (ivs, on, off)
