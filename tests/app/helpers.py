"""Helpers for the web app's tests (fixtures are in conftest.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "runs" / "test-artifacts" / "app"
CHROMIUM = os.environ.get("MEKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
#: the tiny synthetic corpus the app tests check (4 subjects x 3 clips at 64 px: about a second)
TINY = {"n_subjects": "4", "clips_per_subject": "3", "size": "64", "frames": "[20, 28]"}
WRITE = {"X-Mekit": "1"}


def wait_job(client, job_id: str, timeout: float = 60.0) -> dict:
    """Poll ``/api/jobs/<id>`` until the job is finished; returns its last state."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {job}")


def screenshot(page, name: str, full_page: bool = True) -> Path:
    """Save a screenshot as a test artifact (``runs/test-artifacts/app/<name>.png``)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def open_page(browser, url: str):
    """A page in a fresh context of ``browser`` opened on ``url``; uncaught script errors are
    collected in ``page.errors``. Close it with ``page.context.close()``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(url)
    return page
