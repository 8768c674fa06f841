"""The Data screen's API on the synthetic corpus: menus, check (table, samples, EDA figures),
preview and preprocessing (with progress events), and one-line failures."""

from __future__ import annotations

from .helpers import TINY, WRITE, wait_job


def _run(client, route: str, body: dict) -> dict:
    r = client.post(f"/api/data/{route}", json=body, headers=WRITE)
    assert r.status_code == 200, r.text
    assert r.json()["state"] in ("queued", "running")
    return wait_job(client, r.json()["id"])


def test_choices_fill_the_menus(client):
    c = client.get("/api/data/choices").json()
    names = [x["name"] for x in c["loaders"]]
    assert "synthetic" in names and "casme2" in names
    synthetic = next(x for x in c["loaders"] if x["name"] == "synthetic")
    assert not synthetic["needs_root"]
    assert "progress" not in [o["name"] for o in synthetic["options"]]  # a callable is not a form field
    assert "casme2_5class" in [s["name"] for s in c["label_schemes"]]
    assert {d["name"] for d in c["face_detectors"]} >= {"auto", "none"}
    assert c["preprocess_defaults"]["flow"] == "tvl1"


def test_check_of_the_synthetic_corpus_needs_no_folder(client):
    job = _run(client, "check", {"loader": "synthetic", "options": TINY})
    assert job["state"] == "done", job["error"]
    r = job["result"]
    assert r["n_samples"] == 12 and r["n_subjects"] == 4 and r["ok"]
    assert sum(r["classes"].values()) == 12
    assert sum(sum(c.values()) for c in r["subject_classes"].values()) == 12
    assert len(r["samples"]) == 12 and {"id", "subject", "label"} == set(r["samples"][0])
    assert {e["stage"] for e in job["events"] if e.get("stage")} >= {"load", "reading files", "eda"}
    for rel in r["eda"]["figures"].values():
        png = client.get(f"/api/jobs/{job['id']}/files/{rel}")
        assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_reports_problems_with_reasons(client, app_root):
    folder = app_root / "datasets" / "faces"
    for cls in ("happy", "sad"):
        (folder / cls).mkdir(parents=True)
        for i in range(2):
            (folder / cls / f"S{i}_{cls}.png").write_bytes(_png())
    (folder / "sad" / "S9_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    job = _run(client, "check", {"loader": "image_folder", "root": "datasets/faces", "duplicate_threshold": -1,
                                 "options": {"subject_pattern": "^(S\\d+)_"}})
    assert job["state"] == "done", job["error"]
    r = job["result"]
    assert r["n_samples"] == 4 and not r["ok"]
    assert [p["sample"].endswith("S9_broken") for p in r["problems"]] == [True]
    assert r["problems"][0]["reason"]


def test_a_dataset_that_cannot_load_fails_in_one_line(client, app_root):
    job = _run(client, "check", {"loader": "casme2", "root": str(app_root / "datasets" / "one")})
    assert job["state"] == "failed"
    assert job["error"] and "\n" not in job["error"] and "Traceback" not in job["error"]


def test_preview_draws_the_chosen_sample(client):
    sample = "synthetic/sub01/clip02"
    job = _run(client, "preview", {"loader": "synthetic", "options": TINY, "samples": [sample],
                                   "settings": {"detector": "none", "flow": "farneback", "workers": 1}})
    assert job["state"] == "done", job["error"]
    assert [p["sample"] for p in job["result"]["previews"]] == [sample]
    png = client.get(f"/api/jobs/{job['id']}/files/{job['result']['previews'][0]['file']}")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"


def test_preprocessing_reports_progress_and_a_summary(client):
    job = _run(client, "preprocess", {"loader": "synthetic", "options": TINY,
                                      "settings": {"detector": "none", "flow": "farneback", "size": "64",
                                                   "workers": "1"}})
    assert job["state"] == "done", job["error"]
    s = job["result"]
    assert s["clips"] == 12 and s["done"] == 12 and not s["skipped"]
    steps = [e for e in job["events"] if e["kind"] == "progress" and e["stage"] == "preprocess"]
    assert steps and steps[-1]["total"] == 12 - steps[-1].get("cached", 0)
    assert job["stages"]["preprocess"]["finished"]


def _png() -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((48, 48)) * 255).astype("uint8")).save(buf, "PNG")
    return buf.getvalue()
