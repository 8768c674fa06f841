"""`mekit train`, `mekit predict` and `mekit models` end to end on a tiny synthetic corpus."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from mekit.cli.main import app

SYNTH = {"n_subjects": 4, "clips_per_subject": 3, "size": 64}
PRE = {"detector": "none", "size": 64, "landmarks": False, "workers": 1}
CONFIGS = {
    "classical": {"features": {"name": "hoof", "params": {"grid": 3, "bins": 8}},
                  "model": {"name": "logreg", "params": {"grid": {"C": [0.1, 1.0]}}}},  # small inner-CV grid
    "neural": {"model": {"name": "ststnet", "params": {"epochs": 2, "batch_size": 8, "selection": "fixed",
                                                       "augment": {"affine": 0.0}}}},
}
runner = CliRunner()


def _invoke(*args: str):
    res = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Both bundles trained through `mekit train`, plus inputs cut from the synthetic corpus."""
    root = tmp_path_factory.mktemp("train_predict")
    with pytest.MonkeyPatch.context() as mp:  # the session cache of conftest, set before any test runs
        mp.setenv("MEKIT_CACHE", str(tmp_path_factory.getbasetemp() / "mekit-cache"))
        bundles = {}
        for kind, part in CONFIGS.items():
            cfg = root / f"{kind}.yaml"
            cfg.write_text(yaml.safe_dump({"name": f"tiny_{kind}", "data": {"loader": "synthetic", "options": SYNTH},
                                           "preprocess": PRE, **part}))
            bundles[kind] = root / f"{kind}.mekit"
            res = _invoke("train", "--config", cfg, "--out", bundles[kind], "seed=1")
            assert str(bundles[kind]) in res.output.replace("\n", "")
        from mekit.data import load_dataset

        table = load_dataset("synthetic", None, None, **SYNTH)
    clip = Path(table.df["path"][0])
    frames = shutil.copytree(clip, root / "clipA")
    faces = root / "faces"
    faces.mkdir()
    for i, name in enumerate(["anna.jpg", "ben.jpg", "cleo.jpg"]):
        shutil.copy(next(Path(table.df["path"][3 * i + 1]).glob("*.jpg")), faces / name)
    return {"bundles": bundles, "table": table, "frames": frames, "faces": faces,
            "image": faces / "ben.jpg", "root": root}


def _check(df: pd.DataFrame, classes: list[str], ids: list[str]) -> None:
    assert df["sample_id"].tolist() == ids
    assert list(df.columns[:2 + len(classes)]) == ["sample_id", "pred", *[f"p_{c}" for c in classes]]
    np.testing.assert_allclose(df[[f"p_{c}" for c in classes]].sum(axis=1), 1.0, atol=1e-5)
    assert set(df["pred"]) <= set(classes)
    best = df[[f"p_{c}" for c in classes]].to_numpy().argmax(1)
    assert df["pred"].tolist() == [classes[i] for i in best]


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_predict_each_input(work, kind, tmp_path, monkeypatch):
    from mekit.engine.bundle import load_bundle

    session_cache = os.environ["MEKIT_CACHE"]
    monkeypatch.setenv("MEKIT_CACHE", str(work["root"] / "cache_unused"))  # ad-hoc inputs are never cached
    bundle = work["bundles"][kind]
    b = load_bundle(bundle)
    classes = b.classes
    assert classes == ["negative", "others", "positive", "surprise"]
    assert b.meta["kind"] == kind and b.meta["config"]["seed"] == 1
    cases = {"frames": (work["frames"], ["input/clipA"]), "image": (work["image"], ["input/ben"]),
             "images": (work["faces"], ["input/anna", "input/ben", "input/cleo"])}
    for name, (inp, ids) in cases.items():
        out = tmp_path / f"{name}.csv"
        res = _invoke("predict", bundle, inp, "--out", out)
        assert ids[0] in res.output and str(out) in res.output.replace("\n", "")
        df = pd.read_csv(out)
        _check(df, classes, ids)
        assert "true" not in df.columns
    assert not (work["root"] / "cache_unused").exists()

    monkeypatch.setenv("MEKIT_CACHE", session_cache)
    out = tmp_path / "dataset.csv"
    opts = [x for k, v in SYNTH.items() for x in ("-O", f"{k}={v}")]
    res = _invoke("predict", bundle, "--loader", "synthetic", *opts, "--out", out)
    assert "training data" in res.output  # the note that these are its own training samples
    df = pd.read_csv(out)
    table = work["table"]
    _check(df, classes, table.sample_ids)
    assert df["true"].tolist() == table.df["label"].tolist()


@pytest.mark.parametrize("kind", list(CONFIGS))
@pytest.mark.slow
def test_reloaded_bundle_equals_the_in_memory_model(work, kind):
    from mekit.config import load_config
    from mekit.engine.predict import fit_full, predict

    cfg = load_config(work["root"] / f"{kind}.yaml", {"seed": 1})
    fit = fit_full(cfg, progress=False)  # the same training as `mekit train`, kept in memory
    df = predict(work["bundles"][kind], loader="synthetic", **SYNTH)
    proba = fit.model.predict_proba(fit.inputs.take(df["sample_id"]))
    order = [list(fit.model.classes_).index(c) for c in fit.classes]
    np.testing.assert_allclose(df[[f"p_{c}" for c in fit.classes]].to_numpy(), proba[:, order], atol=1e-6)


def test_predict_refuses_a_file_that_is_not_a_bundle(work, tmp_path, monkeypatch, capsys):
    from mekit.cli.main import main

    fake = tmp_path / "model.mekit"
    fake.write_text("name: not a bundle\n")
    monkeypatch.setattr(sys, "argv", ["mekit", "predict", str(fake), str(work["image"])])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(fake) in err and "not a valid mekit bundle" in err


def test_models_json_lists_every_model():
    from mekit.models.classical import CLASSIFIERS
    from mekit.features import FEATURES
    from mekit.models import MODELS

    out = json.loads(_invoke("models", "--json").stdout)
    assert [m["name"] for m in out["models"]] == MODELS.names()
    for m in out["models"]:
        assert m["input"] == MODELS.meta(m["name"])["input"] and m["input"] in out["input_kinds"]
        assert m["input_size"] == list(MODELS.meta(m["name"])["input_size"]) and m["channels"] >= 1
    assert {m["name"]: m["input"] for m in out["models"]}["ststnet"] == "flow"
    assert [c["name"] for c in out["classifiers"]] == CLASSIFIERS.names()
    assert [f["name"] for f in out["features"]] == FEATURES.names()
    text = _invoke("models").stdout
    assert "ststnet" in text and "logreg" in text and "hoof" in text
