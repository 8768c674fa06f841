"""`mekit sweep`: a grid expanded into points, each point a full run (finished runs reused), the
nested selection over the points as the sweep's honest best, and sweep.csv / sweep.md."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from mekit.cli.main import app
from mekit.errors import ConfigError
from mekit.evaluation.sweep import expand, nested_refusal, parse_grid, parse_seeds, search_of, split_values

runner = CliRunner()

TINY = {"name": "tiny", "data": {"loader": "synthetic", "options": {"n_subjects": 4, "clips_per_subject": 3,
                                                                    "size": 64}},
        "preprocess": {"detector": "none", "size": 64, "landmarks": False, "flow": "farneback", "workers": 1},
        "features": {"name": "hoof", "params": {"grid": 3, "bins": 8}}, "model": {"name": "logreg"},
        "protocol": {"name": "loso"}, "output": {"plots": False}}


def test_a_grid_is_parsed_as_yaml_values_and_expanded_into_named_points():
    grid = parse_grid(["model.name=svm_linear,logreg", "model.params.C=0.1,1", "features.params.grid=[2, 3],4"])
    assert grid == {"model.name": ["svm_linear", "logreg"], "model.params.C": [0.1, 1],
                    "features.params.grid": [[2, 3], 4]}
    points = expand(grid)
    assert len(points) == 8 and points[0].overrides == {"model.name": "svm_linear", "model.params.C": 0.1,
                                                        "features.params.grid": [2, 3]}
    assert points[0].name == "name-svm_linear__C-0.1__grid-2_3" and len({p.name for p in points}) == 8
    assert search_of(points[:1]) == [{"label": points[0].name, **points[0].overrides}]
    # a key whose last part is not unique keeps its whole path
    twice = expand(parse_grid(["model.params.C=1", "imbalance.sampler_params.C=2"]))
    assert twice[0].name == "model_params_C-1__imbalance_sampler_params_C-2"
    assert split_values("a,'b,c',{x: 1, y: 2}") == ["a", "'b,c'", "{x: 1, y: 2}"]


@pytest.mark.parametrize("bad,match", [(["model.name"], "key=value1,value2"), (["=1,2"], "no key"),
                                       (["a=1", "a=2"], "given twice"), (["a=1,,2"], "empty value"),
                                       (["a=1,1"], "repeated"), ([], "at least one --grid")])
def test_a_bad_grid_is_refused_in_one_line(bad, match):
    with pytest.raises(ConfigError, match=match):
        parse_grid(bad)


def test_seeds_are_a_range_or_a_list():
    assert parse_seeds("0..4") == [0, 1, 2, 3, 4] and parse_seeds("3,1") == [3, 1] and parse_seeds("5") == [5]
    assert parse_seeds(None) is None
    for bad in ("4..0", "a..b", "1,1", "x"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)


def test_a_grid_over_the_data_or_the_protocol_gets_no_nested_run():
    assert nested_refusal({"model.name": ["a", "b"]}, "loso") is None
    assert "data.options" in nested_refusal({"data.options.size": [32, 64]}, "loso")
    assert "random_split" in nested_refusal({"model.name": ["a", "b"]}, "random_split")


@pytest.mark.slow
def test_a_sweep_runs_every_point_compares_them_and_reuses_finished_runs(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "sweep"
    args = ["sweep", str(config), "--grid", "model.params.C=0.1,10", "--seeds", "0..1", "--out", str(out),
            "--executor", "local", "--bootstrap", "200"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "sweep.csv", index_col="point")
    assert list(table.index) == ["C-0.1", "C-10", "nested"]
    assert (table["n_seeds"] == 2).all() and table["uf1_mean"].between(0, 1).all()
    assert pd.isna(table.at["C-0.1", "d_uf1_paired"]) and table.at["C-10", "n_paired"] == 12
    md = (out / "sweep.md").read_text()
    assert "Do not pick the best row" in md and "Honest best: nested selection" in md
    nested = json.loads((out / "nested" / "metrics.json").read_text())
    chosen = [s["chosen"]["recipe"] for s in nested["selection_per_fold"]]
    assert len(chosen) == 8 and set(chosen) <= {"C-0.1", "C-10"}
    assert all(f"| {c} |" in md for c in set(chosen))
    for point, c in (("C-0.1", 0.1), ("C-10", 10)):
        resolved = yaml.safe_load((out / point / "config.resolved.yaml").read_text())
        assert resolved["model"]["params"]["C"] == c and resolved["protocol"]["seeds"] == [0, 1]
    stamp = (out / "C-10" / "metrics.json").stat().st_mtime_ns
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert again.output.count("(reused)") == 3 and (out / "C-10" / "metrics.json").stat().st_mtime_ns == stamp
    # a grid over the data: every point runs, the nested run is left out with the reason
    data = runner.invoke(app, ["sweep", str(config), "--grid", "data.options.n_subjects=4,5", "--out",
                               str(tmp_path / "data"), "--executor", "local", "--bootstrap", "50"])
    assert data.exit_code == 0, data.output
    assert "no nested selection" in data.output and not (tmp_path / "data" / "nested").exists()
    assert "No nested run: the grid varies" in (tmp_path / "data" / "sweep.md").read_text()
