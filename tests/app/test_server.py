"""The server: start-up rules (a password beyond 127.0.0.1), auth, host and cross-site guards,
one-line errors, the page and its static files served with no outside source."""

from __future__ import annotations

import base64

import pytest

from mekit.app.settings import AppSettings
from mekit.errors import ConfigError

from .helpers import WRITE


def _basic(password: str, user: str = "me") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_a_host_beyond_this_machine_needs_a_password(tmp_path, monkeypatch):
    monkeypatch.delenv("MEKIT_APP_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="password"):
        AppSettings(host="0.0.0.0", roots=(tmp_path,), workdir=tmp_path / "w")
    assert AppSettings(host="0.0.0.0", roots=(tmp_path,), workdir=tmp_path / "w", password="pw").auth_required
    monkeypatch.setenv("MEKIT_APP_PASSWORD", "from-env")
    assert AppSettings(host="0.0.0.0", roots=(tmp_path,), workdir=tmp_path / "w").password == "from-env"


def test_mekit_app_refuses_to_start_without_a_password(tmp_path, monkeypatch, capsys):
    from conftest import cli_error_line

    monkeypatch.delenv("MEKIT_APP_PASSWORD", raising=False)
    monkeypatch.chdir(tmp_path)
    line = cli_error_line(["app", "--host", "0.0.0.0", "--port", "0"], monkeypatch, capsys)
    assert "password" in line
    line = cli_error_line(["app", "--root", str(tmp_path / "missing")], monkeypatch, capsys)
    assert "not a folder" in line


@pytest.fixture
def locked(tmp_path):
    from fastapi.testclient import TestClient

    from mekit.app.server import create_app

    settings = AppSettings(host="0.0.0.0", roots=(tmp_path,), workdir=tmp_path / "w", password="s3cret")
    with TestClient(create_app(settings), base_url="http://192.168.1.20:8765") as c:
        yield c


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/api/info", "/api/browse", "/api/jobs"])
def test_requests_without_the_password_get_401(locked, path):
    r = locked.get(path)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    assert locked.get(path, headers=_basic("wrong")).status_code == 401
    assert locked.get(path, headers={"Authorization": "Basic !!notbase64"}).status_code == 401
    assert locked.get(path, headers=_basic("s3cret")).status_code == 200


def test_writes_with_the_password_still_need_the_page_header(locked):
    r = locked.post("/api/data/check", json={"loader": "synthetic"}, headers=_basic("s3cret"))
    assert r.status_code == 403 and "X-Mekit" in r.json()["error"]


def test_loopback_app_answers_only_requests_addressed_to_this_machine(client):
    assert client.get("/api/info").status_code == 200
    r = client.get("/api/info", headers={"Host": "attacker.example:8765"})
    assert r.status_code == 403 and "127.0.0.1" in r.json()["error"]
    assert client.get("/api/info", headers={"Host": "localhost:8765"}).status_code == 200


def test_requests_that_change_anything_need_the_page_header(client):
    r = client.post("/api/data/check", json={"loader": "synthetic"})
    assert r.status_code == 403
    assert client.get("/api/jobs").json()["jobs"] == []


def test_errors_are_one_line_of_json(client):
    for r in (client.post("/api/data/check", json={"loader": "nope"}, headers=WRITE),
              client.post("/api/data/check", json={"loader": "image_folder"}, headers=WRITE),
              client.post("/api/data/check", json={"root": "x"}, headers=WRITE),
              client.post("/api/data/check", json={"loader": "synthetic", "options": {"n_subjects": "many"}},
                          headers=WRITE),
              client.post("/api/data/check", json={"loader": "synthetic", "options": {"shoe_size": "3"}},
                          headers=WRITE),
              client.post("/api/data/preprocess", json={"loader": "synthetic", "settings": {"flow": "magic"}},
                          headers=WRITE),
              client.get("/api/catalogue/nope")):
        assert 400 <= r.status_code < 500, r.text
        body = r.json()
        assert list(body) == ["error"] and "\n" not in body["error"] and "Traceback" not in body["error"], body
    r = client.post("/api/data/check", json={"loader": "image_folder"}, headers=WRITE)
    assert r.json()["error"] == "choose a folder for the image_folder loader"


def test_the_page_loads_nothing_from_outside(client):
    from mekit.app.server import STATIC

    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    for f in [*STATIC.glob("*.*"), *STATIC.glob("screens/*.js")]:
        text = f.read_text()
        assert "http://" not in text and "https://" not in text, f"{f.name} names an outside source"
        assert client.get(f"/static/{f.relative_to(STATIC)}").status_code == 200
    assert client.get("/docs").status_code == 404  # FastAPI's docs load from a CDN: off


def test_info_lists_the_screens(client, app_root):
    info = client.get("/api/info").json()
    assert info["roots"] == [str(app_root)]
    assert [s["id"] for s in info["screens"]][0] == "data"
    assert info["screens"][0]["script"] == "screens/data.js"
