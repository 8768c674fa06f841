"""A run killed with SIGKILL while its fold workers are busy resumes to the results of an
uninterrupted run, byte for byte, and leaves no worker process behind.
(benchmarks/faults.py does the same at random points, for preprocessing and training too.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

import mekit.experiment as runner
from mekit.config import load_config

MARKER = "MEKIT_FAULT_TEST"
# 6 subjects -> 6 LOSO folds; an inner grid makes each fold a few tens of milliseconds, so the
# parent is killed while folds are still running in its workers
CONFIG = {"name": "fault", "seed": 0,
          "data": {"loader": "synthetic", "label_scheme": None,
                   "options": {"n_subjects": 6, "clips_per_subject": 3, "size": 64}},
          "preprocess": {"detector": "none", "size": 64, "landmarks": False, "flow": "farneback", "workers": 1},
          "features": {"name": "hoof", "params": {"grid": 3, "bins": 8}},
          "model": {"name": "logreg", "params": {"grid": {"C": [0.01, 0.1, 1.0, 10.0, 100.0]}, "inner_folds": 3}},
          "protocol": {"name": "loso", "workers": 2}, "output": {"plots": False}}


def _marked(token: str) -> list[int]:
    """Live processes whose environment carries ``MARKER=token`` (every fork inherits it)."""
    needle = f"{MARKER}={token}".encode()
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if needle in (d / "environ").read_bytes().split(b"\0") and \
                        (d / "stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


def _metrics(out: Path) -> dict:
    m = json.loads((out / "metrics.json").read_text())
    for k in ("timing_s", "figures", "resume"):  # how the run went, not what it found
        m.pop(k, None)
    return m


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_parent_killed_mid_run_resumes_identically_and_leaves_no_workers(tmp_path):
    cfg_path = tmp_path / "fault.yaml"
    cfg_path.write_text(yaml.safe_dump(CONFIG))
    ref, out = tmp_path / "ref", tmp_path / "out"
    runner.run_experiment(load_config(cfg_path), ref, progress=False)  # also fills the cache

    token = uuid.uuid4().hex
    proc = subprocess.Popen([sys.executable, "-m", "mekit", "evaluate", "--config", str(cfg_path), "--out", str(out)],
                            env={**os.environ, MARKER: token}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob("folds/seed0/*/predictions.csv")):
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before any fold finished"
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)  # the parent only, as the OOM killer would
        proc.wait()
        time.sleep(1.0)
        orphans = _marked(token)
    finally:
        for pid in _marked(token):
            os.kill(pid, signal.SIGKILL)
    assert not (out / "metrics.json").exists(), "the kill came after the run had finished"
    done = len(list(out.glob("folds/seed0/*/predictions.csv")))
    assert orphans == [], f"fold workers outlived their killed parent: {orphans}"

    res = runner.run_experiment(load_config(cfg_path), out, progress=False)
    assert res.metrics["timing_s"]["folds_resumed"] == done >= 1
    assert (out / "predictions.csv").read_bytes() == (ref / "predictions.csv").read_bytes()
    assert _metrics(out) == _metrics(ref)
