"""The front door: lazy names on ``import mekit``, and `mekit --version / list / doctor / config show`."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mekit.cli.main import app

HEAVY = ["torch", "cv2", "mediapipe", "pandas", "sklearn", "matplotlib", "scipy", "av", "flaml", "lightgbm"]
runner = CliRunner()


def test_import_mekit_is_cheap_and_names_resolve():
    code = ("import sys, mekit; names = dir(mekit); "
            f"heavy = [m for m in {HEAVY!r} if m in sys.modules]; "
            "print(','.join(heavy)); print(','.join(n for n in ('load_dataset', 'preprocess', 'run_experiment', "
            "'train', 'predict', 'analyze', 'catalogue') if n in names))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, listed = out.stdout.splitlines()
    assert heavy == "", f"import mekit imported {heavy}"
    assert listed.split(",") == ["load_dataset", "preprocess", "run_experiment", "train", "predict", "analyze",
                                 "catalogue"]


def test_front_door_names_are_the_library_functions():
    import mekit
    from mekit.data import load_dataset
    from mekit.engine.predict import predict, train_bundle
    from mekit.experiment import run_experiment

    assert mekit.load_dataset is load_dataset
    assert mekit.run_experiment is run_experiment
    assert mekit.train is train_bundle
    assert mekit.predict is predict
    assert callable(mekit.preprocess) and callable(mekit.catalogue)
    from mekit.analysis.analyze import analyze

    assert mekit.analyze is analyze
    with pytest.raises(AttributeError):
        mekit.no_such_thing  # noqa: B018


def test_preprocess_stays_callable_whatever_was_imported_first():
    # mekit.preprocess is both the pipeline function and the subpackage of stages
    code = ("import mekit.preprocess.temporal, mekit, mekit.preprocess.pipeline as p; "
            "from unittest import mock; "
            "called = []; "
            "mock.patch.object(p, 'preprocess', lambda *a, **k: called.append(a) or 'done').start(); "
            "print(mekit.preprocess('table'), called, mekit.preprocess.temporal.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "done [('table',)] mekit.preprocess.temporal"


def test_version():
    import mekit

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"mekit {mekit.__version__}"


def test_list_json_and_tables():
    res = runner.invoke(app, ["list", "protocols", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert "loso" in [p["name"] for p in out["protocols"]]
    res = runner.invoke(app, ["list", "label-schemes"])
    assert res.exit_code == 0 and "casme2_5class" in res.output
    res = runner.invoke(app, ["list", "nonsense"])
    assert res.exit_code != 0


def test_doctor_reports_every_check(monkeypatch):
    from mekit import doctor

    results = doctor.checks()
    assert [c["name"] for c in results] == [name for name, _, _ in doctor.CHECKS]
    by = {c["name"]: c for c in results}
    assert by["python"]["ok"] and by["mekit"]["ok"] and "cpu" in by["torch devices"]["detail"]
    res = runner.invoke(app, ["doctor", "--json"])
    assert json.loads(res.output) and res.exit_code == (0 if doctor.healthy(results) else 1)

    def broken() -> str:
        raise RuntimeError("not writable")

    monkeypatch.setattr(doctor, "CHECKS", [("cache folder", broken, True), ("extra", lambda: "fine", False)])
    res = runner.invoke(app, ["doctor"])
    assert res.exit_code == 1 and "not writable" in res.output


def test_config_show_prints_the_resolved_config():
    path = Path(str(resources.files("mekit") / "configs" / "run_default.yaml"))
    res = runner.invoke(app, ["config", "show", str(path), "protocol.name=group_kfold"])
    assert res.exit_code == 0, res.output
    d = yaml.safe_load(res.output)
    assert d["protocol"]["name"] == "group_kfold"
    assert "preprocess" in d and "seed" in d  # defaults filled in
