"""The web app's Literature screen: uploads of text exports, checks before a job starts, and a
mapping job whose figures and tables the page can fetch."""

from __future__ import annotations

import pytest

from .helpers import WRITE, wait_job

BIB = ("@article{a, title={Optical flow for micro-expressions}, year={2019}, keywords={optical flow; apex frame}}\n"
       "@article{b, title={Apex frames and optical flow}, year={2020}, keywords={optical flow; apex frame; CNN}}\n"
       "@article{c, title={Graphs of action units}, year={2021}, keywords={action units; graph network; CNN}}\n"
       "@article{d, title={Action unit graphs}, year={2022}, keywords={action units; graph network}}\n"
       "@article{e, title={broken\n")


@pytest.fixture
def client(tmp_path):
    from fastapi.testclient import TestClient

    from mekit.app.server import create_app
    from mekit.app.settings import AppSettings

    root = tmp_path / "root"
    root.mkdir()
    settings = AppSettings(roots=(root,), workdir=tmp_path / "work", max_upload_bytes=1 << 20)
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8765") as c:
        c.root = root
        yield c


def _upload(client, name: str, data: bytes):
    return client.post("/api/litmap/upload", params={"filename": name}, content=data, headers=WRITE)


def test_the_screen_is_listed_and_its_menus_filled(client):
    info = client.get("/api/info").json()
    assert {"id": "litmap", "title": "Literature", "script": "screens/litmap.js"} in info["screens"]
    c = client.get("/api/litmap/choices").json()
    assert {f["name"] for f in c["formats"]} == {"bibtex", "ris", "scopus_csv", "wos", "openalex"}
    assert "louvain" in [x["name"] for x in c["communities"]] and c["defaults"]["min_freq"] == 2
    assert client.get("/static/screens/litmap.js").status_code == 200


def test_uploads_are_text_exports_only(client):
    r = _upload(client, "refs.bib", BIB.encode())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "refs.bib" and body["size"] == len(BIB.encode()) and body["path"].endswith(".bib")
    assert _upload(client, "tool.exe", b"MZ...").status_code == 415
    assert _upload(client, "sneaky.bib", b"@article{x,\x00\x01}").status_code == 415
    assert _upload(client, "empty.ris", b"").status_code == 400
    assert _upload(client, "big.csv", b"x" * ((1 << 20) + 1)).status_code == 413
    assert not [p for p in (client.root.parent / "work" / "uploads").iterdir() if p.suffix == ".part"]


def test_run_is_checked_before_a_job_starts(client, tmp_path):
    path = _upload(client, "refs.bib", BIB.encode()).json()["path"]

    def run(body):
        return client.post("/api/litmap/run", json=body, headers=WRITE)

    r = run({"files": [], "example": False})
    assert r.status_code == 400 and "example" in r.json()["error"]
    r = run({"files": [path], "example": True})
    assert r.status_code == 400
    r = run({"files": [path], "options": {"min_frequency": "2"}})
    assert r.status_code == 400 and "min_freq" in r.json()["error"]
    outside = tmp_path / "outside.bib"
    outside.write_text(BIB)
    r = run({"files": [str(outside)]})
    assert r.status_code == 403
    r = run({"files": [path], "options": {"synonyms_file": str(outside)}})
    assert r.status_code == 403


@pytest.mark.slow
def test_a_mapping_job_on_uploaded_files(client):
    path = _upload(client, "refs.bib", BIB.encode()).json()["path"]
    r = client.post("/api/litmap/run", headers=WRITE,
                    json={"files": [path], "options": {"extractor": "none", "min_freq": "2", "label_top": "5"}})
    assert r.status_code == 200, r.text
    job = wait_job(client, r.json()["id"], timeout=120.0)
    assert job["state"] == "done", job.get("error")
    res = job["result"]
    assert res["n_records"] == 4 and res["issues"]["malformed"] == 1
    assert res["issue_rows"][0]["kind"] == "malformed" and res["issue_rows"][0]["line"] == "5"
    assert {t["term"] for t in res["top_terms"]} >= {"optical flow", "action units"}
    for rel in res["figures"].values():
        png = client.get(f"/api/jobs/{job['id']}/files/{rel}")
        assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    z = client.get(f"/api/jobs/{job['id']}/files/litmap.zip")
    assert z.status_code == 200 and z.content[:4] == b"PK\x03\x04"
    assert "litmap/vosviewer_map.txt" in res["downloads"]
