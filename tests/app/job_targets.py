"""Job functions for the job-manager tests (run in spawned job processes)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from mekit import events
from mekit.errors import DataError


def steps(params: dict, out_dir: Path) -> dict:
    """Report ``n`` progress steps, ``delay`` seconds apart; write a file; return a summary."""
    n, delay = int(params.get("n", 3)), float(params.get("delay", 0.05))
    with events.Stage("count", total=n) as st:
        for _ in range(n):
            time.sleep(delay)
            st.advance()
    (out_dir / "out.txt").write_text("hello")
    return {"counted": n, "nan": float("nan"), "file": "out.txt"}


def sleeps_with_child(params: dict, out_dir: Path) -> dict:
    """Start a child process (like a worker pool), note both pids, then wait to be cancelled."""
    child = subprocess.Popen(["sleep", "120"])
    import os

    (out_dir / "pids.txt").write_text(f"{os.getpid()} {child.pid}")
    events.emit("progress", stage="waiting", done=0, total=1)
    time.sleep(120)
    return {}


def user_error(params: dict, out_dir: Path) -> dict:
    raise DataError("the sheet has no Subject column\nsecond line", path="sheet.xlsx")


def fault(params: dict, out_dir: Path) -> dict:
    raise ValueError("boom")
