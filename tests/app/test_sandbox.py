"""No path outside the allowed folders is read or written, however it is spelled; uploads are
capped in size, checked in type and land only in the work folder's uploads/ under a safe name."""

from __future__ import annotations

import os

import pytest

from mekit.app.sandbox import Forbidden, Sandbox

from .helpers import TINY, WRITE

TRAVERSALS = [
    "../..",
    "..",
    "datasets/../../..",
    "datasets/../..//etc",
    "/etc",
    "/",
    "%2e%2e/%2e%2e",
    "%2E%2E%2F%2E%2E%2Fetc",
    "%252e%252e%252f%252e%252e",  # encoded twice
    "..%2f..%2fetc",
    "..\\..\\etc",
    "~",
    "datasets/\x00/x",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_browse_refuses_every_form_of_traversal(client, path):
    r = client.get("/api/browse", params={"path": path})
    assert r.status_code == 403, r.text
    body = r.json()
    assert list(body) == ["error"] and body["error"].startswith("refused")
    assert "\n" not in body["error"]


def test_symlink_out_of_a_root_is_refused_and_not_listed(client, app_root, tmp_path):
    outside = tmp_path / "outside"
    (outside / "secret").mkdir(parents=True)
    os.symlink(outside, app_root / "datasets" / "escape")
    os.symlink(app_root / "datasets" / "one", app_root / "datasets" / "inside")
    r = client.get("/api/browse", params={"path": str(app_root / "datasets" / "escape")})
    assert r.status_code == 403 and "outside the folders" in r.json()["error"]
    listing = client.get("/api/browse", params={"path": str(app_root / "datasets")}).json()
    assert sorted(f["name"] for f in listing["folders"]) == ["inside", "one"]
    r = client.post("/api/data/check", json={"loader": "image_folder", "root": str(app_root / "datasets" / "escape")},
                    headers=WRITE)
    assert r.status_code == 403


def test_browse_lists_the_allowed_folders_and_their_subfolders(client, app_root, app_settings):
    top = client.get("/api/browse").json()
    assert [f["path"] for f in top["folders"]] == [str(app_root), str(app_settings.workdir)]
    sub = client.get("/api/browse", params={"path": "datasets"}).json()  # relative to the first root
    assert sub["path"] == str(app_root / "datasets") and sub["parent"] == str(app_root)
    assert [f["name"] for f in sub["folders"]] == ["one"]
    assert client.get("/api/browse", params={"path": str(app_root)}).json()["parent"] is None
    assert client.get("/api/browse", params={"path": "nothing-here"}).status_code == 404


def test_sandbox_unit(tmp_path):
    root = tmp_path / "r"
    (root / "a").mkdir(parents=True)
    sb = Sandbox([root], tmp_path / "w", 10)
    assert sb.resolve("a", want="dir") == root.resolve() / "a"
    assert sb.resolve(str(tmp_path / "w" / "new")) == (tmp_path / "w" / "new").resolve()  # need not exist
    with pytest.raises(Forbidden):
        sb.resolve(str(tmp_path))
    with pytest.raises(Forbidden):
        sb.child(root, "../w")
    with pytest.raises(Forbidden):
        sb.child(root, "/etc/passwd")


@pytest.mark.parametrize("rel", ["..%2f..%2fjob.json", "%2e%2e/%2e%2e/settings", "../../..", "%252e%252e%252fjob.json"])
def test_job_files_never_leave_the_job_folder(client, rel):
    from .test_jobs import T

    job = client.app.state.jobs.submit("test.steps", f"{T}:steps", {"n": 1})
    (job.out_dir.parent / "job.json").write_text("{}")  # something to reach for one level up
    r = client.get(f"/api/jobs/{job.id}/files/{rel}")
    assert r.status_code in (403, 404) and list(r.json()) == ["error"]
    if "%" in rel:  # a plain '../' is folded away by the HTTP client (404: no such route); encoded, it arrives
        assert r.status_code == 403 and r.json()["error"].startswith("refused")


def test_data_routes_refuse_paths_outside(client, tmp_path, app_root):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "sheet.xlsx").write_bytes(b"x")
    (outside / "scheme.yaml").write_text("name: x\nclasses: [a]\n")
    cases = [
        {"loader": "image_folder", "root": str(outside)},
        {"loader": "image_folder", "root": "../elsewhere"},
        {"loader": "casme2", "root": str(app_root), "options": {"sheet": str(outside / "sheet.xlsx")}},
        {"loader": "casme2", "root": str(app_root), "options": {"sheet": "../../elsewhere/sheet.xlsx"}},
        {"loader": "synthetic", "label_scheme": str(outside / "scheme.yaml"), "options": TINY},
    ]
    for body in cases:
        r = client.post("/api/data/check", json=body, headers=WRITE)
        assert r.status_code == 403, (body, r.text)
    r = client.post("/api/data/preprocess", json={"loader": "synthetic", "options": TINY,
                                                  "settings": {"cache_dir": str(outside)}}, headers=WRITE)
    assert r.status_code == 403
    assert client.get("/api/jobs").json()["jobs"] == []  # nothing started


# -- uploads ---------------------------------------------------------------------------------
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100


def _upload(client, data: bytes, filename: str, kind: str = "video"):
    return client.post("/api/uploads", params={"filename": filename, "kind": kind}, content=data,
                       headers={**WRITE, "Content-Type": "application/octet-stream"})


def _uploads(settings) -> list[str]:
    folder = settings.workdir / "uploads"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_upload_lands_in_the_work_folder_under_a_generated_name(client, app_settings):
    r = _upload(client, MP4, "../../../my video.mp4")
    assert r.status_code == 200, r.text
    saved = r.json()["path"]
    assert os.path.dirname(saved) == str(app_settings.workdir / "uploads")
    assert saved.endswith("-my_video.mp4") and ".." not in os.path.basename(saved)
    assert open(saved, "rb").read() == MP4


@pytest.mark.parametrize("filename,data,status", [
    ("clip.exe", MP4, 415),                                 # extension not of the kind
    ("clip.mp4.sh", MP4, 415),
    ("clip", MP4, 415),
    ("clip.mp4", b"#!/bin/sh\nrm -rf /\n" + b"x" * 40, 415),  # fake magic
    ("clip.avi", b"\x89PNG\r\n\x1a\n" + b"x" * 40, 415),
    ("clip.mp4", MP4 + b"\x00" * 5000, 413),                # over the 4096-byte limit of the test app
    ("clip.mp4", b"", 400),
])
def test_bad_uploads_are_refused_and_leave_nothing(client, app_settings, filename, data, status):
    r = _upload(client, data, filename)
    assert r.status_code == status, r.text
    assert r.json()["error"].startswith("refused")
    assert _uploads(app_settings) == []


def test_upload_over_the_limit_is_refused_without_a_content_length(client, app_settings):
    def chunks():
        yield MP4
        for _ in range(10):
            yield b"\x00" * 1000

    r = client.post("/api/uploads", params={"filename": "a.mp4"}, content=chunks(), headers=WRITE)
    assert r.status_code == 413
    assert _uploads(app_settings) == []


def test_upload_kinds_are_checked(client):
    assert _upload(client, b"PK\x03\x04" + b"\x00" * 40, "model.mekit", kind="bundle").status_code == 200
    assert _upload(client, MP4, "model.mekit", kind="bundle").status_code == 415
    assert _upload(client, MP4, "a.mp4", kind="script").status_code == 400
