"""Background jobs: one spawned process each, progress events forwarded, results, one-line
errors, cancel (the process and what it started are gone), queueing."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mekit.app.jobs import JobManager

from .helpers import wait_job

T = "app.job_targets"


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (a reparented child waits for init to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


@pytest.fixture
def manager(tmp_path):
    m = JobManager(tmp_path / "jobs", max_running=1)
    yield m
    m.shutdown()


def _wait(manager: JobManager, job_id: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while manager.get(job_id).state not in ("done", "failed", "cancelled"):
        assert time.time() < deadline, manager.get(job_id)
        time.sleep(0.05)


def test_job_runs_in_its_own_process_and_reports_progress_and_result(manager):
    job = manager.submit("test.steps", f"{T}:steps", {"n": 4})
    assert job.state in ("queued", "running")
    _wait(manager, job.id)
    d = job.to_dict()
    assert d["state"] == "done", d
    assert d["result"] == {"counted": 4, "nan": None, "file": "out.txt"}  # NaN made strict JSON
    assert job.pid and job.pid != os.getpid()
    progress = [e for e in d["events"] if e["kind"] == "progress"]
    assert [e["done"] for e in progress] == [1, 2, 3, 4] and progress[-1]["total"] == 4
    assert d["stages"]["count"]["finished"] is True
    assert [e["seq"] for e in job.to_dict(since=3)["events"]] == list(range(4, job.seq + 1))
    assert (job.out_dir / "out.txt").read_text() == "hello"
    assert (job.out_dir / "job.json").is_file()


def test_user_error_is_one_line_and_a_fault_leaves_its_traceback_in_a_file(manager):
    a = manager.submit("test.user_error", f"{T}:user_error", {})
    b = manager.submit("test.fault", f"{T}:fault", {})
    _wait(manager, a.id)
    _wait(manager, b.id)
    assert a.state == "failed" and a.error == "sheet.xlsx: the sheet has no Subject column second line"
    assert b.state == "failed" and b.error.startswith("internal error: ValueError: boom")
    assert "Traceback" in (b.out_dir / "error.txt").read_text()
    assert "Traceback" not in a.error + b.error


def test_cancel_ends_the_job_process_and_the_processes_it_started(manager):
    job = manager.submit("test.sleeps", f"{T}:sleeps_with_child", {})
    pids = job.out_dir / "pids.txt"
    deadline = time.time() + 30
    while not pids.exists():
        assert time.time() < deadline and job.state in ("queued", "running"), job
        time.sleep(0.05)
    time.sleep(0.1)
    job_pid, child_pid = map(int, pids.read_text().split())
    assert job_pid == job.pid
    t0 = time.time()
    manager.cancel(job.id)
    assert job.state == "cancelled"
    assert time.time() - t0 < 5
    deadline = time.time() + 5
    while not (_gone(job_pid) and _gone(child_pid)) and time.time() < deadline:
        time.sleep(0.05)
    assert _gone(job_pid), "the job process is still running"
    assert _gone(child_pid), "a process the job started is still running"


def test_jobs_beyond_the_limit_wait_and_a_queued_job_can_be_cancelled(manager):
    first = manager.submit("test.steps", f"{T}:steps", {"n": 20, "delay": 0.1})
    second = manager.submit("test.steps", f"{T}:steps", {"n": 1})
    time.sleep(0.5)
    assert first.state == "running" and second.state == "queued"
    manager.cancel(second.id)
    assert second.state == "cancelled" and second.pid is None
    manager.cancel(first.id)
    assert first.state == "cancelled"


def test_jobs_through_the_api(client):
    r = client.get("/api/jobs")
    assert r.status_code == 200 and r.json() == {"jobs": []}
    assert client.get("/api/jobs/nope").status_code == 404
    job = client.app.state.jobs.submit("test.steps", f"{T}:steps", {"n": 2})
    done = wait_job(client, job.id)
    assert done["state"] == "done" and done["progress"]["stage"] == "count"
    assert client.get(f"/api/jobs/{job.id}/files/out.txt").text == "hello"
    assert [j["id"] for j in client.get("/api/jobs").json()["jobs"]] == [job.id]
