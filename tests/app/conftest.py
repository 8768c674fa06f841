"""Fixtures for the web app's tests, shared by every screen's tests.

- ``app_settings`` / ``client``: an app over a temporary allowed root and work folder, driven
  in-process with FastAPI's TestClient (addressed to 127.0.0.1, as a browser on this machine).
- ``live_server``: a real ``mekit app`` (uvicorn) in a subprocess on a free 127.0.0.1 port, one
  per test session; yields its base URL and its allowed root.
- ``app_page``: a Playwright page in Debian's headless Chromium (``/usr/bin/chromium``, never a
  downloaded browser) opened on the live server. Tests using it skip with one line saying what
  to install when Chromium or Playwright is missing.

Plain helpers (``wait_job``, ``screenshot``, the tiny corpus ``TINY``) are in :mod:`helpers`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import CHROMIUM, CHROMIUM_ARGS, open_page


@pytest.fixture
def app_root(tmp_path) -> Path:
    root = tmp_path / "root"
    (root / "datasets" / "one").mkdir(parents=True)
    return root


@pytest.fixture
def app_settings(tmp_path, app_root):
    from mekit.app.settings import AppSettings

    return AppSettings(roots=(app_root,), workdir=tmp_path / "work", max_upload_bytes=4096)


@pytest.fixture
def client(app_settings):
    from fastapi.testclient import TestClient

    from mekit.app.server import create_app

    with TestClient(create_app(app_settings), base_url="http://127.0.0.1:8765") as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """``mekit app`` in a subprocess; yields ``{"url", "root", "workdir"}``."""
    import urllib.request

    base = tmp_path_factory.mktemp("live-app")
    root, work = base / "root", base / "work"
    (root / "datasets").mkdir(parents=True)
    port = _free_port()
    env = {**os.environ, "MEKIT_CACHE": str(tmp_path_factory.getbasetemp() / "mekit-cache")}
    log = open(base / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "mekit", "app", "--port", str(port), "--root", str(root),
                             "--workdir", str(work)], stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/api/info", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise AssertionError(f"mekit app did not start: {(base / 'server.log').read_text()[-2000:]}")
            time.sleep(0.1)
    yield {"url": url, "root": root, "workdir": work, "process": proc}
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="session")
def _browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM}: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need Playwright: pip install playwright (never `playwright install`)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def app_page(_browser, live_server):
    """A fresh page on the live app; uncaught script errors are collected in ``page.errors``."""
    page = open_page(_browser, live_server["url"] + "/")
    yield page
    page.context.close()
