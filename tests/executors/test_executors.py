"""The executor seam: the registry, the local and process executors (same results, events forwarded
with their unit's tags, results put back in order), a unit's folder sent and brought back, fixed
thread counts, and the run setting that never changes a result or the resume stamp."""

from __future__ import annotations

import filecmp
import os
import time

import pytest
from typer.testing import CliRunner

import mekit.experiment as experiment
from mekit import events
from mekit.cli.main import app
from mekit.config import load_config
from mekit.errors import ConfigError, DataError
from mekit.executors import EXECUTORS, Executor, Work, check_executor, get_executor
from mekit.executors.base import THREAD_VARIABLES, changed_files, fixed_threads, read_files, write_files

# the tiny synthetic LOSO of tests/evaluation/test_runner.py: 12 clips at 64 px, a second or two
BASE = {"name": "tiny", "data.options": {"n_subjects": 4, "clips_per_subject": 3, "size": 64},
        "preprocess": {"detector": "none", "size": 64, "landmarks": False, "flow": "farneback", "workers": 1},
        "features.name": "hoof", "features.params": {"grid": 3, "bins": 8},
        "model.name": "logreg", "model.params": {"grid": {"C": [0.1, 10.0]}, "inner_folds": 2},
        "protocol.name": "loso", "output.plots": False}


def square(unit: int, state: dict) -> int:
    """A unit of work: emits a message, takes longer for the first units (so they finish last)."""
    time.sleep(state["delay"] * (4 - unit) if unit < 4 else 0)
    events.emit("message", text=f"unit {unit}")
    return unit * unit + state["add"]


def tags(unit: int) -> dict:
    return {"fold": f"f{unit}", "seed": 7}


@pytest.mark.parametrize("name", EXECUTORS.names())
def test_every_registered_executor_is_built_by_name_and_says_what_it_is(name):
    ex = get_executor(name, address="127.0.0.2:1" if name == "ray" else None)
    assert isinstance(ex, Executor) and ex.name == name and name in ex.describe()
    ex.close()  # nothing was connected or started: closing is a no-op
    assert EXECUTORS.meta(name)["help"]


def test_an_unknown_executor_or_an_address_for_a_local_one_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="unknown executor 'rey'.*local, processes, ray"):
        check_executor("rey")
    with pytest.raises(ConfigError, match="read by the ray executor only"):
        get_executor("processes", address="10.0.0.1:6379")
    with pytest.raises(ConfigError, match="protocol.executor"):
        load_config(None, {"protocol.executor": "Not A Name"})
    with pytest.raises(ConfigError, match="workers"):
        get_executor("processes", workers=0)


@pytest.mark.parametrize("name,workers", [("local", None), ("processes", 1), ("processes", 3)])
def test_local_and_process_executors_give_the_same_results_and_forward_every_event(name, workers):
    work = Work(square, {"add": 1, "delay": 0.05}, tags=tags, workers=workers or 1)
    got: list = []
    with events.listen(got.append), get_executor(name) as ex:
        out = list(ex.map(work, list(range(6))))
    assert sorted(out) == [(i, i * i + 1) for i in range(6)]
    if name == "local" or workers == 1:
        assert [pos for pos, _ in out] == list(range(6))  # in this process: in the order given
    msgs = [e for e in got if e.kind == "message"]
    # every unit's event reached this thread's listener, tagged with that unit's fields
    assert sorted((e["text"], e["fold"], e["seed"]) for e in msgs) == [(f"unit {i}", f"f{i}", 7) for i in range(6)]


def test_a_unit_s_events_arrive_before_its_result_from_worker_processes():
    work = Work(square, {"add": 0, "delay": 0.05}, tags=tags, workers=3)
    got: list = []
    with events.listen(got.append):
        for pos, _ in get_executor("processes").map(work, list(range(5))):
            assert any(e.kind == "message" and e["text"] == f"unit {pos}" for e in got)


def test_run_folds_returns_folds_in_seed_and_fold_order_whatever_order_they_finish(tmp_path):
    from mekit.evaluation.protocols import get_protocol

    from mekit.data import load_dataset

    table = load_dataset("synthetic", None, None, n_subjects=4, clips_per_subject=2, size=32)
    cfg = load_config(None, {"protocol.seeds": [3, 1], "protocol.workers": 3})
    seen: list = []

    class Reversed(Executor):
        """Finishes the units last to first, as a cluster may."""

        name = "reversed"

        def map(self, work, units):
            for pos in reversed(range(len(units))):
                seen.append((units[pos].seed, units[pos].index))
                yield pos, work.fn(units[pos], work.state)

    got: list = []
    with events.listen(got.append):
        res, n = experiment.run_folds(get_protocol("loso"), table, cfg, None, fold_result, {}, None,
                                      executor=Reversed())
    assert n == 0 and seen[0] == (1, 3)  # the last fold of the last seed finished first
    assert res == [(s, i) for s in (3, 1) for i in range(4)]
    stages = [(e.kind, e["seed"]) for e in got if e.kind in ("stage_start", "stage_end")]
    assert stages == [("stage_start", 3), ("stage_end", 3), ("stage_start", 1), ("stage_end", 1)]
    # a later seed's folds that finished first are reported inside their own seed's stage
    folds = [(e["seed"], e["done"]) for e in got if e.kind == "fold"]
    assert folds == [(3, 1), (3, 2), (3, 3), (3, 4), (1, 1), (1, 2), (1, 3), (1, 4)]


def fold_result(job, state):
    return job.index, (job.seed, job.index)


@pytest.mark.slow
def test_experiments_on_local_and_process_executors_write_the_same_predictions_and_share_a_stamp(tmp_path):
    cfg = load_config(None, {**BASE, "protocol.seeds": [0, 1]})
    a = experiment.run_experiment(cfg, tmp_path / "local", executor="local")
    b = experiment.run_experiment(load_config(None, {**BASE, "protocol.seeds": [0, 1], "protocol.workers": 2,
                                                     "protocol.executor": "processes"}), tmp_path / "pool")
    assert filecmp.cmp(tmp_path / "local" / "predictions.csv", tmp_path / "pool" / "predictions.csv", shallow=False)
    assert a.config.protocol.executor == "local" and b.config.protocol.executor == "processes"
    assert "executor: local" in (tmp_path / "local" / "config.resolved.yaml").read_text()
    # where folds ran is not in the resume stamp: another executor reads every fold back
    again = experiment.run_experiment(cfg, tmp_path / "pool", executor="local")
    assert again.metrics["resume"]["folds_resumed"] == 8
    assert cfg.results_yaml() == load_config(None, {**BASE, "protocol.seeds": [0, 1], "protocol.executor": "ray",
                                                    "protocol.address": "h:1"}).results_yaml()


def test_a_unit_s_folder_goes_and_comes_back_with_its_changes_done_markers_last(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "keep.txt").write_text("same")
    (src / "sub" / "state.pt").write_bytes(b"\x00checkpoint")
    sent = read_files(src)
    assert sorted(r for r, _ in sent) == ["keep.txt", "sub/state.pt"]
    scratch = tmp_path / "scratch"
    write_files(scratch, sent)
    (scratch / "predictions.csv").write_text("a,b\n")
    (scratch / "selection.json").write_text("{}")
    (scratch / "sub" / "state.pt").unlink()
    files, removed = changed_files(scratch, sent, last=("predictions.csv",))
    assert [r for r, _ in files][-1] == "predictions.csv" and "keep.txt" not in dict(files)
    assert removed == ["sub/state.pt"]
    write_files(src, files, removed)
    assert (src / "predictions.csv").read_text() == "a,b\n" and not (src / "sub" / "state.pt").exists()
    assert not list(src.rglob("*.tmp"))
    with pytest.raises(DataError, match="inside its folder"):
        write_files(src, [("../evil.txt", b"x")])
    assert read_files(tmp_path / "absent") == [] and read_files(src, ["nope.txt"]) == []


def test_fixed_threads_sets_every_thread_variable_and_puts_them_back(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    with fixed_threads(2):
        assert all(os.environ[k] == "2" for k in THREAD_VARIABLES)
    assert os.environ["OMP_NUM_THREADS"] == "7" and "MKL_NUM_THREADS" not in os.environ


def test_the_command_line_sets_where_folds_run_and_refuses_an_address_without_ray(tmp_path):
    runner = CliRunner()
    over = [f"{k}={v}" for k, v in {**BASE, "protocol.seeds": [0]}.items()]
    res = runner.invoke(app, ["run", *over, "--executor", "local", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "executor: local" in (tmp_path / "r" / "config.resolved.yaml").read_text()
    bad = runner.invoke(app, ["run", *over, "--executor", "local", "--address", "h:1", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "read by the ray executor only" in str(bad.exception)


def test_preprocess_names_its_executor_and_refuses_an_unknown_one(tmp_path):
    from mekit.preprocess.pipeline import preprocess

    runner = CliRunner()
    args = ["preprocess", "synthetic", "detector=none", "landmarks=false", "flow=farneback", "size=32",
            f"cache_dir={tmp_path / 'cache'}", "-o", "n_subjects=2", "-o", "clips_per_subject=2", "-o", "size=32"]
    res = runner.invoke(app, [*args, "--executor", "local"])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "cache").rglob("*.npz"))) > 0
    bad = runner.invoke(app, [*args, "--executor", "rey"])
    assert bad.exit_code != 0 and "unknown executor 'rey'" in str(bad.exception)
    with pytest.raises(ConfigError, match="read by the ray executor only"):
        preprocess(None, {}, address="h:1")


@pytest.mark.slow
def test_analyze_takes_several_recordings_and_writes_a_report_folder_each(tmp_path):
    from mekit.data.synthetic_long import generate_long_video

    videos = [str(generate_long_video(tmp_path / f"r{i}.avi", seconds=2, fps=25, seed=i).path) for i in range(2)]
    res = CliRunner().invoke(app, ["analyze", *videos, "--out", str(tmp_path / "out"), "--detector", "haar",
                                   "--no-video", "--executor", "local"])
    assert res.exit_code == 0, res.output
    for name in ("r0", "r1"):
        assert (tmp_path / "out" / name / "analysis.json").is_file() and f"{name}:" in res.output
    one = CliRunner().invoke(app, ["analyze", videos[0], "--out", str(tmp_path / "one"), "--detector", "haar",
                                   "--no-video", "--executor", "local"])
    assert one.exit_code == 0 and (tmp_path / "one" / "analysis.json").is_file()  # one recording: --out is its folder
    cam = CliRunner().invoke(app, ["analyze", "--camera", "0", "--executor", "ray"])
    assert cam.exit_code != 0 and "live camera" in str(cam.exception)


def test_a_ray_address_where_nothing_listens_fails_at_once_in_one_line():
    pytest.importorskip("ray", reason="needs ray (pip install ray==2.60.0)")
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match="nothing answers at 127.0.0.2:1"):
        get_executor("ray", address="127.0.0.2:1").connect()
    assert time.monotonic() - t0 < 10
