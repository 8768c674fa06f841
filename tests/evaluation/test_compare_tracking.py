"""`compare` across run folders (library and CLI) and MLflow logging one flag away."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from mekit.config import load_config
from mekit.errors import DataError
from mekit.evaluation.compare import compare_runs, to_markdown
from mekit.experiment import run_experiment

BASE = {"data.options": {"n_subjects": 4, "clips_per_subject": 3, "size": 64},
        "preprocess": {"detector": "none", "size": 64, "landmarks": False, "flow": "farneback", "workers": 1},
        "features.name": "hoof", "features.params": {"grid": 3, "bins": 8},
        "model.params": {"grid": {}}, "output.plots": False}
METRICS = ("uf1", "uar", "accuracy", "weighted_f1")


def cfg(**over):
    return load_config(None, {**BASE, **over})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three methods on the same corpus: two honest (LOSO), one leaky (random split)."""
    root = tmp_path_factory.mktemp("cmp")
    run_experiment(cfg(name="logreg"), root / "logreg", progress=False)
    run_experiment(cfg(**{"name": "rf", "model.name": "random_forest",
                          "model.params": {"grid": {}, "n_estimators": 25}}), root / "rf", progress=False)
    run_experiment(cfg(**{"name": "leaky", "protocol.name": "random_split",
                          "protocol.params": {"test_size": 0.5, "stratify": False}}), root / "leaky", progress=False)
    return root


def _metrics(d: Path) -> dict:
    return json.loads((d / "metrics.json").read_text())


def test_table_has_methods_as_rows_metrics_as_columns_and_deltas(runs):
    dirs = [runs / "logreg", runs / "rf", runs / "leaky"]
    df = compare_runs(dirs, baseline="rf")
    assert list(df.index) == ["logreg", "rf", "leaky"] and df.attrs["baseline"] == "rf"
    for k in METRICS:
        assert k in df.columns and f"d_{k}" in df.columns
        for d in dirs:
            assert df.loc[d.name, k] == pytest.approx(_metrics(d)[k])
            assert df.loc[d.name, f"d_{k}"] == pytest.approx(_metrics(d)[k] - _metrics(runs / "rf")[k])
    assert (df.loc["rf", [f"d_{k}" for k in METRICS]] == 0).all()
    assert df.loc["logreg", "n"] == 12 and df.loc["leaky", "n"] == 6
    # honest runs carry a subject-bootstrap CI; the leaky one does not claim one
    assert df.loc["logreg", "uf1_ci"].count("-") == 1 and pd.isna(df.loc["leaky", "uf1_ci"])


def test_leaky_runs_are_marked(runs):
    df = compare_runs([runs / "logreg", runs / "leaky"])
    assert df.attrs["baseline"] == "logreg"  # default: the first run
    assert df.loc["leaky", "protocol"] == "random_split (LEAKY)" and bool(df.loc["leaky", "leaky"])
    assert df.loc["logreg", "protocol"] == "loso" and not bool(df.loc["logreg", "leaky"])
    md = to_markdown(df)
    assert "random_split (LEAKY)" in md and "sample-level split" in md
    assert "| logreg | loso |" in md and "Deltas (d_*) are against `logreg`" in md
    assert "sample-level split" not in to_markdown(compare_runs([runs / "logreg", runs / "rf"]))


def test_bad_inputs_name_the_problem(runs, tmp_path):
    with pytest.raises(DataError, match="baseline 'nope'"):
        compare_runs([runs / "logreg"], baseline="nope")
    with pytest.raises(DataError, match="no metrics.json"):
        compare_runs([tmp_path])
    (tmp_path / "metrics.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        compare_runs([tmp_path])
    with pytest.raises(DataError, match="no run folders"):
        compare_runs([])


def test_same_folder_names_are_told_apart_by_their_parent(runs, tmp_path):
    for parent in ("a", "b"):
        shutil.copytree(runs / "logreg", tmp_path / parent / "exp")
    df = compare_runs([tmp_path / "a" / "exp", tmp_path / "b" / "exp"])
    assert list(df.index) == ["a/exp", "b/exp"] and df["d_uf1"].tolist() == [0.0, 0.0]


def test_cli_compare_prints_and_writes_the_table(runs, tmp_path):
    from typer.testing import CliRunner

    from mekit.cli.main import app

    out = tmp_path / "tables" / "cmp"
    res = CliRunner().invoke(app, ["compare", str(runs / "logreg"), str(runs / "rf"), str(runs / "leaky"),
                                   "--baseline", "rf", "--out", str(out)], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "baseline: rf" in res.output and "random_split (LEAKY)" in res.output
    table = pd.read_csv(out.with_suffix(".csv"), index_col="run")
    assert list(table.index) == ["logreg", "rf", "leaky"]
    assert table.loc["logreg", "d_uf1"] == pytest.approx(_metrics(runs / "logreg")["uf1"] - _metrics(runs / "rf")["uf1"])
    assert "random_split (LEAKY)" in out.with_suffix(".md").read_text()


def test_cli_compare_reports_a_bad_folder_without_a_traceback(tmp_path):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "mekit", "compare", str(tmp_path)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2
    assert "no metrics.json" in res.stderr and "Traceback" not in res.stderr + res.stdout


@pytest.fixture
def fast_tmp(tmp_path):
    """A scratch folder in memory where there is one: creating MLflow's sqlite schema runs
    dozens of migrations, each synced to disk (about 11 s on a busy disk, 3 s in /dev/shm)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and shm.stat().st_mode & 0o002:
        d = Path(tempfile.mkdtemp(prefix="mekit-test-", dir=shm))
        yield d
        shutil.rmtree(d, ignore_errors=True)
    else:
        yield tmp_path


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside mlflow's sqlalchemy store
def test_mlflow_is_one_flag_away(fast_tmp, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # nothing may land in the working folder (no ./mlruns)
    out = fast_tmp / "runs" / "tracked"
    res = run_experiment(cfg(**{"name": "tracked", "output.mlflow": True}), out, progress=False)
    db = fast_tmp / "runs" / "mlflow.db"
    assert db.is_file()
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = client.get_experiment_by_name("synthetic")
    assert exp is not None and Path(exp.artifact_location.removeprefix("file://")).parent == db.parent
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.run_name == "tracked"
    m = _metrics(out)
    for k in METRICS:
        assert run.data.metrics[k] == pytest.approx(m[k])
        assert run.data.metrics[k] == pytest.approx(res.metrics[k])
    assert run.data.params["model"] == "logreg" and run.data.params["protocol"] == "loso"
    assert run.data.params["leaky"] == "False"
    logged = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "predictions.csv", "report.md", "config.resolved.yaml"} <= logged
    assert "folds" not in logged  # resume checkpoints are not artifacts
    assert list(tmp_path.iterdir()) == []
