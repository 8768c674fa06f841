"""The Train and evaluate screen's API: menus from the catalogue, configs checked (and refused in
one line) before any job starts, paths kept inside the allowed folders, an evaluation on the
tiny synthetic corpus whose metrics and confusion matrix are served, the report folder as a zip
that cannot leave the work folder, the final model as a bundle, and a comparison of two runs."""

from __future__ import annotations

import io
import zipfile

import pytest

from .helpers import TINY, WRITE, wait_job

#: the tiny synthetic corpus with the fastest classical recipe (what tests/evaluation use)
MENUS = {"loader": "synthetic", "options": TINY, "detector": "none", "flow": "farneback", "size": "64",
         "features": "hoof", "model": "logreg", "class_weight": "balanced", "protocol": "loso"}
FAST = "preprocess.landmarks=false\nfeatures.params={grid: 3, bins: 8}\nmodel.params={grid: {}}"


def _spec(**over) -> dict:
    return {"source": "menus", "menus": MENUS, "device": "cpu", "overrides": FAST, **over}


def test_choices_fill_the_menus(client):
    c = client.get("/api/train/choices").json()
    assert "mekit:run_default.yaml" in [r["id"] for r in c["ready_configs"]]
    assert "synthetic" in [x["name"] for x in c["loaders"]]
    assert {"hoof", "flow_descriptors"} <= {x["name"] for x in c["features"]}
    assert {"logreg", "svm"} <= {x["name"] for x in c["classifiers"]}
    assert "compact_cnn" in [x["name"] for x in c["models"]]
    assert "smote" in [x["name"] for x in c["samplers"]] and "focal" in [x["name"] for x in c["losses"]]
    group = next(p for p in c["protocols"] if p["name"] == "group_kfold")
    assert group["params"][0]["name"] == "k"
    assert [d["name"] for d in c["devices"]][:2] == ["auto", "cpu"]
    assert "uf1" in [m["name"] for m in c["metrics"]]


def test_ready_configs_include_those_under_an_allowed_folder(client, app_root):
    (app_root / "configs").mkdir()
    (app_root / "configs" / "mine.yaml").write_text("# my recipe\nname: mine\nmodel: {name: svm}\n")
    ready = {r["id"]: r for r in client.get("/api/train/choices").json()["ready_configs"]}
    mine = ready[str(app_root / "configs" / "mine.yaml")]
    assert mine["name"] == "mine" and mine["help"] == "my recipe"
    r = client.post("/api/train/config", json={"source": "ready", "ready": mine["id"], "device": "cpu"}, headers=WRITE)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "mine" and r.json()["model"] == "svm"


def test_a_config_from_menus_is_checked_and_resolved(client):
    r = client.post("/api/train/config", json=_spec(), headers=WRITE)
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["name"] == "synthetic_hoof_logreg_loso" and c["task"] == "classification" and not c["neural"]
    assert "detector: none" in c["yaml"] and "flow: farneback" in c["yaml"] and "device: cpu" in c["yaml"]
    assert "n_subjects: 4" in c["yaml"] and "grid: 3" in c["yaml"]

    ready = client.post("/api/train/config", json={"source": "ready", "ready": "mekit:run_default.yaml"},
                        headers=WRITE).json()
    assert ready["name"] == "synthetic_hoof_logreg_loso" and "flow: tvl1" in ready["yaml"]


@pytest.mark.parametrize(("overrides", "expected"), [
    ("protocol.name=nope", "protocol.name"),
    ("model.params.C", "not of the form key=value"),
    ("features.params={grid: [3}", "not valid YAML"),
    ("modle.name=svm", "unknown key"),
    ("model.params.C=-1", "model.params"),
    ("output.mlflow=true", "output.mlflow"),
])
def test_a_bad_config_is_refused_in_one_line_before_any_job(client, overrides, expected):
    r = client.post("/api/train/evaluate", json=_spec(overrides=overrides), headers=WRITE)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert expected in error and "\n" not in error and "Traceback" not in error
    assert client.get("/api/jobs").json()["jobs"] == []


@pytest.mark.parametrize("spec", [
    {"source": "ready", "ready": "/etc/passwd"},
    {"source": "ready", "ready": "mekit:../../pyproject.toml"},
    {"source": "menus", "menus": {**MENUS, "loader": "casme2", "root": "../../etc"}},
    {"source": "menus", "menus": MENUS, "root": "/etc"},
    {"source": "menus", "menus": MENUS, "overrides": "model.params.weights=/etc/secret.pt"},
    {"source": "menus", "menus": MENUS, "overrides": "preprocess.cache_dir=/tmp/elsewhere"},
])
def test_paths_in_a_config_stay_inside_the_allowed_folders(client, spec):
    r = client.post("/api/train/config", json=spec, headers=WRITE)
    assert r.status_code in (400, 403), r.text
    assert "\n" not in r.json()["error"]
    if r.status_code == 403:
        assert r.json()["error"].startswith("refused")


# -- one app with two finished evaluations, shared by the tests below ---------------------------------
@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """An app with two finished evaluations of the tiny corpus (logistic regression and a random
    forest), run at the same time: ``{client, workdir, root, logreg, forest}`` (the jobs)."""
    from fastapi.testclient import TestClient

    from mekit.app.server import create_app
    from mekit.app.settings import AppSettings

    base = tmp_path_factory.mktemp("train-app")
    (base / "root").mkdir()
    settings = AppSettings(roots=(base / "root",), workdir=base / "work")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8765") as c:
        forest = FAST.replace("model.params={grid: {}}", "model.params={grid: {}, n_estimators: 25}")
        submitted = [c.post("/api/train/evaluate", json=body, headers=WRITE) for body in (
            _spec(), _spec(menus={**MENUS, "model": "random_forest"}, overrides=forest))]
        assert all(r.status_code == 200 for r in submitted), [r.text for r in submitted]
        jobs = [wait_job(c, r.json()["id"], timeout=180) for r in submitted]
        for j in jobs:
            assert j["state"] == "done", j["error"]
        yield {"client": c, "workdir": settings.workdir, "root": base / "root", "logreg": jobs[0], "forest": jobs[1]}


@pytest.mark.slow
def test_an_evaluation_reports_progress_and_serves_its_metrics_and_confusion_matrix(done):
    c, job = done["client"], done["logreg"]
    r = job["result"]
    assert r["name"] == "synthetic_hoof_logreg_loso" and r["run"] == r["name"]
    m = r["metrics"]
    assert m["n_samples"] == 12 and m["n_folds"] == 4 and m["protocol"] == "loso"
    for k in ("uf1", "uar", "accuracy"):
        lo, hi = m["bootstrap_ci95"][k]
        assert 0 <= lo <= hi <= 1 and r["headline"][k] == m[k]
    assert set(m["per_class"]) == set(m["classes"]) and len(m["per_subject"]) == 4
    assert "selection_per_fold" not in m  # long, and in the report
    folds = [e for e in job["events"] if e["kind"] == "fold"]
    assert [e["done"] for e in folds] == [1, 2, 3, 4] and {e["total"] for e in folds} == {4}
    png = c.get(f"/api/jobs/{job['id']}/files/{r['run']}/confusion_matrix.png")
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"metrics.json", "predictions.csv", "report.md", "confusion_matrix.png"} <= set(r["files"])
    runs = c.get("/api/train/runs").json()["runs"]
    assert {x["job"] for x in runs} == {done["logreg"]["id"], done["forest"]["id"]}


@pytest.mark.slow
def test_the_report_zip_holds_the_run_and_never_leaves_the_work_folder(done):
    c, r, work = done["client"], done["logreg"]["result"], done["workdir"]
    z = c.get("/api/train/report.zip", params={"run": r["run_dir"]})
    assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
    names = set(zipfile.ZipFile(io.BytesIO(z.content)).namelist())
    assert {f"{r['run']}/{f}" for f in r["files"]} <= names
    assert any(n.startswith(f"{r['run']}/folds/") for n in names)
    # relative to the work folder works too
    rel = str(__import__("pathlib").Path(r["run_dir"]).relative_to(work))
    assert c.get("/api/train/report.zip", params={"run": rel}).status_code == 200

    (done["root"] / "data").mkdir(exist_ok=True)
    (done["root"] / "data" / "metrics.json").write_text("{}")
    for run, status in [(str(done["root"] / "data"), 403), (f"{r['run_dir']}/../..", 403), ("/etc", 403),
                        ("%2e%2e%2f%2e%2e%2fetc", 403), (str(work / "jobs"), 404), ("jobs/nothing-here", 404)]:
        res = c.get("/api/train/report.zip", params={"run": run})
        assert res.status_code == status, (run, res.text)
        assert "\n" not in res.json()["error"]


@pytest.mark.slow
def test_a_link_inside_a_run_folder_is_not_packed(done):
    c, r = done["client"], done["forest"]["result"]
    from pathlib import Path

    (Path(r["run_dir"]) / "escape").symlink_to("/etc")
    (Path(r["run_dir"]) / "hosts.txt").symlink_to("/etc/hosts")
    z = c.get("/api/train/report.zip", params={"run": r["run_dir"]})
    names = zipfile.ZipFile(io.BytesIO(z.content)).namelist()
    assert not [n for n in names if "escape" in n or "hosts" in n]


@pytest.mark.slow
def test_compare_of_two_runs(done):
    c = done["client"]
    runs = [done["forest"]["result"]["run_dir"], done["logreg"]["result"]["run_dir"]]
    r = c.post("/api/train/compare", json={"runs": runs}, headers=WRITE)
    assert r.status_code == 200, r.text
    job = wait_job(c, r.json()["id"])
    assert job["state"] == "done", job["error"]
    res = job["result"]
    assert res["baseline"] == "synthetic_hoof_random_forest_loso"
    assert [row["run"] for row in res["rows"]] == ["synthetic_hoof_random_forest_loso", "synthetic_hoof_logreg_loso"]
    logreg = res["rows"][1]
    m = done["logreg"]["result"]["metrics"]
    forest = done["forest"]["result"]["metrics"]
    assert logreg["uf1"] == pytest.approx(m["uf1"]) and logreg["d_uf1"] == pytest.approx(m["uf1"] - forest["uf1"])
    assert res["rows"][0]["d_uf1"] == 0 and logreg["uf1_ci"].count("-") == 1
    assert any("Deltas" in n for n in res["notes"])
    assert c.get(f"/api/jobs/{job['id']}/files/compare.md").status_code == 200

    bad = c.post("/api/train/compare", json={"runs": ["/etc"]}, headers=WRITE)
    assert bad.status_code == 403 and bad.json()["error"].startswith("refused")
    not_a_run = wait_job(c, c.post("/api/train/compare", json={"runs": [str(done["root"])]}, headers=WRITE).json()["id"])
    assert not_a_run["state"] == "failed" and "metrics.json" in not_a_run["error"]


@pytest.mark.slow
def test_the_final_model_is_trained_into_a_bundle(done):
    c = done["client"]
    r = c.post("/api/train/bundle", json={"job": done["logreg"]["id"]}, headers=WRITE)
    assert r.status_code == 200, r.text
    job = wait_job(c, r.json()["id"], timeout=120)
    assert job["state"] == "done", job["error"]
    res = job["result"]
    assert res["bundle"] == "synthetic_hoof_logreg_loso.mekit" and res["evaluation"] == done["logreg"]["id"]
    f = c.get(f"/api/jobs/{job['id']}/files/{res['bundle']}")
    assert f.status_code == 200 and f.content[:4] == b"PK\x03\x04" and len(f.content) == res["size"]

    missing = c.post("/api/train/bundle", json={"job": "no-such-job"}, headers=WRITE)
    assert missing.status_code == 404 and "\n" not in missing.json()["error"]
