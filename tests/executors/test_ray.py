"""The ray executor on a real cluster: a head and a worker node started as separate processes on
the loopback interface (``ray start --head`` and ``ray start --address``), stopped with every
process they started when the module ends. A LOSO run, a sweep, preprocessing and a batch of
recordings through the cluster give the files a local run writes, byte for byte, and a worker
killed part-way through a fold is retried without changing a result."""

from __future__ import annotations

import filecmp
import os
import signal
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the ray executor's tests need `ray` (pip install ray==2.60.0)")

from mekit import events  # noqa: E402
from mekit.config import load_config  # noqa: E402
from mekit.experiment import run_experiment  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.ray]

# the tiny synthetic LOSO of tests/evaluation/test_runner.py, two seeds: 8 folds
BASE = {"name": "tiny", "data.options": {"n_subjects": 4, "clips_per_subject": 3, "size": 64},
        "preprocess": {"detector": "none", "size": 64, "landmarks": False, "flow": "farneback", "workers": 1},
        "features.name": "hoof", "features.params": {"grid": 3, "bins": 8},
        "model.name": "logreg", "model.params": {"grid": {"C": [0.1, 10.0]}, "inner_folds": 2},
        "protocol.name": "loso", "protocol.seeds": [0, 1], "output.plots": False}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The address of a two-node cluster (1 CPU each) and this process connected to it."""
    from mekit.executors.ray_cluster import local_cluster

    cache = tmp_path_factory.mktemp("ray-cache")
    t0 = time.perf_counter()
    with local_cluster(nodes=2, cpus=1, env={"MEKIT_CACHE": str(cache)}) as address:
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
        print(f"cluster up in {time.perf_counter() - t0:.1f} s")
        try:
            yield address
        finally:
            ray.shutdown()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "run"
    run_experiment(load_config(None, BASE), out, executor="local")
    return out


def same_files(a: Path, b: Path, pattern: str = "**/*") -> list[str]:
    """Relative paths of the files under ``a`` that ``b`` lacks or holds with other bytes."""
    return [str(p.relative_to(a)) for p in sorted(a.glob(pattern)) if p.is_file()
            and not filecmp.cmp(p, b / p.relative_to(a), shallow=False)] if b.exists() else ["(no folder)"]


@pytest.mark.timeout(180)
def test_a_loso_run_on_the_cluster_writes_the_local_predictions_byte_for_byte(cluster, local_run, tmp_path):
    got: list = []
    with events.listen(got.append):
        res = run_experiment(load_config(None, BASE), tmp_path / "ray", executor="ray", address=cluster)
    out = tmp_path / "ray"
    assert filecmp.cmp(local_run / "predictions.csv", out / "predictions.csv", shallow=False)
    # every fold's own files too, saved here by this process from what the tasks sent back
    assert same_files(local_run / "folds", out / "folds", "seed*/*/*") == []
    assert res.metrics["resume"]["folds_total"] == 8 and res.config.protocol.executor == "ray"
    folds = [e for e in got if e.kind == "fold"]
    assert sorted((e["seed"], e["fold"]) for e in folds) == sorted(
        (int(s), f) for s, f in res.predictions[["seed", "fold"]].drop_duplicates().itertuples(index=False))
    log = (out / "run.log").read_text()
    assert "8 folds to compute, on ray" in log and log.count("done") >= 8
    # the executor is not in the resume stamp: a local run in the same folder reads every fold back
    again = run_experiment(load_config(None, BASE), out, executor="local")
    assert again.metrics["resume"]["folds_resumed"] == 8


@pytest.mark.timeout(180)
def test_a_worker_killed_mid_fold_is_retried_and_the_run_gives_the_same_predictions(cluster, local_run, tmp_path,
                                                                                    monkeypatch):
    import mekit.tasks.classification as classification

    marks = tmp_path / "marks"
    marks.mkdir()

    def slow_fold(job, state):  # sent to the workers by value (a closure)
        import os
        import time
        from pathlib import Path

        from mekit.tasks.classification import run_fold

        here = Path(str(marks))
        if job.seed == 0 and job.index == 1:
            if not (here / "killed").exists():
                (here / "first.pid").write_text(str(os.getpid()))
                time.sleep(60)  # killed long before this ends
            else:
                (here / "retry.pid").write_text(str(os.getpid()))
        return run_fold(job, state)

    monkeypatch.setattr(classification.Classification, "fold", staticmethod(slow_fold))

    def killer() -> None:
        pid_file = marks / "first.pid"
        t0 = time.monotonic()
        while not pid_file.exists() and time.monotonic() - t0 < 120:
            time.sleep(0.05)
        time.sleep(0.2)
        (marks / "killed").write_text("")
        os.kill(int(pid_file.read_text()), signal.SIGKILL)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    res = run_experiment(load_config(None, BASE), tmp_path / "ray", executor="ray", address=cluster)
    t.join(5)
    assert (marks / "killed").exists() and (marks / "retry.pid").exists()
    assert (marks / "retry.pid").read_text() != (marks / "first.pid").read_text()
    assert filecmp.cmp(local_run / "predictions.csv", tmp_path / "ray" / "predictions.csv", shallow=False)
    assert res.metrics["resume"]["folds_total"] == 8


@pytest.mark.timeout(180)
def test_clips_preprocessed_as_tasks_fill_this_machine_s_cache_as_a_local_run_does(cluster, tmp_path):
    import numpy as np

    import mekit.data
    from mekit.preprocess.pipeline import preprocess

    table = mekit.data.load_dataset("synthetic", None, None, n_subjects=2, clips_per_subject=2, size=64)
    pre = {"detector": "none", "size": 64, "landmarks": False, "flow": "farneback", "workers": 1}
    here = preprocess(table, {**pre, "cache_dir": str(tmp_path / "local")}, executor="local")
    there = preprocess(table, {**pre, "cache_dir": str(tmp_path / "ray")}, executor="ray", address=cluster)
    assert there.n_computed == 4 and not there.skipped
    assert same_files(tmp_path / "local", tmp_path / "ray", "*/*/*.npz") == []
    assert all(np.array_equal(here[s]["flow"], there[s]["flow"]) for s in table.sample_ids)


@pytest.mark.timeout(240)
def test_a_two_point_sweep_on_the_cluster_gives_the_points_of_local_runs(cluster, tmp_path):
    import yaml

    from mekit.executors.sweep import run_sweep

    raw = {"name": "tiny", "data": {"options": BASE["data.options"]}, "preprocess": BASE["preprocess"],
           "features": {"name": "hoof", "params": BASE["features.params"]}, "model": {"name": "logreg"},
           "protocol": {"name": "loso"}, "output": {"plots": False}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    grid = {"model.params.C": [0.1, 10.0]}
    res = run_sweep(path, grid, tmp_path / "sweep", seeds=[0, 1], executor="ray", address=cluster, n_boot=200)
    names = [p.name for p in res.points]
    assert names == ["C-0.1", "C-10.0"] and (tmp_path / "sweep" / "sweep.md").is_file()
    assert list(res.table.index[:2]) == names and (res.table["n_seeds"] == 2).all()
    # a point run on the cluster is the local run of the same recipe
    local = tmp_path / "local"
    run_experiment(load_config(path, {"model.params.C": 10.0, "protocol.seeds": [0, 1], "name": "C-10.0"}),
                   local, executor="local")
    assert filecmp.cmp(local / "predictions.csv", tmp_path / "sweep" / "C-10.0" / "predictions.csv", shallow=False)
    # the nested selection over the two points: a recipe chosen in each of the 8 outer folds
    assert res.nested is not None, res.nested_note
    assert res.nested["n_folds"] == 8 and set(res.nested["counts"]) <= set(names)
    assert "Honest best: nested selection" in (tmp_path / "sweep" / "sweep.md").read_text()


@pytest.mark.timeout(240)
def test_a_batch_of_recordings_runs_one_per_task_and_writes_each_report_here(cluster, tmp_path):
    from mekit.analysis.batch import analyze_batch
    from mekit.data.synthetic_long import generate_long_video

    videos = [generate_long_video(tmp_path / f"rec{i}.avi", seconds=3, fps=25, seed=i).path for i in range(2)]
    # OpenCV's face detector and no annotated video: the shortest analysis that still writes every report file
    opts = {"video": False, "detector": "haar"}
    local = analyze_batch(videos, tmp_path / "local", executor="local", **opts)
    got: list = []
    with events.listen(got.append):
        there = analyze_batch(videos, tmp_path / "ray", executor="ray", address=cluster, **opts)
    for a, b in zip(local, there):
        assert b.out_dir == tmp_path / "ray" / a.out_dir.name and b.intervals.equals(a.intervals)
        for name in ("frames.csv", "intervals.csv", "intervals.json", "megc_spotting.csv"):
            assert filecmp.cmp(a.out_dir / name, b.out_dir / name, shallow=False), name
        assert (b.out_dir / "analysis.json").is_file() and (b.out_dir / "timeline.png").is_file()
    # each recording's events came back, tagged with its name, and a batch progress per recording
    assert {e["video"] for e in got if e.kind == "stage_start" and e["stage"] == "analyze"} == {"rec0", "rec1"}
    assert [e["done"] for e in got if e.kind == "progress" and e["stage"] == "analyze_batch"] == [1, 2]
