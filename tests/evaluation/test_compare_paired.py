"""Paired tests in `compare` (subject-level bootstrap of the UF1 difference, McNemar) and the
warnings when runs differ in data, label scheme, protocol or seeds; on hand-built run folders."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mekit.errors import DataError
from mekit.evaluation.compare import compare_runs, to_markdown
from mekit.evaluation.metrics import classification_metrics, mcnemar, paired_subject_bootstrap

CLASSES = ["negative", "positive", "surprise"]
SUBJECTS = [f"sub{i:02d}" for i in range(1, 7)]
#: 6 subjects x 4 samples, labels cycling through the classes
SAMPLES = [(f"{s}/clip{j}", s, CLASSES[(i * 4 + j) % 3]) for i, s in enumerate(SUBJECTS) for j in range(4)]


def wrong(label: str) -> str:
    return CLASSES[(CLASSES.index(label) + 1) % 3]


def make_run(folder: Path, preds: dict[str, str] | None = None, *, seeds=(0,), samples=SAMPLES,
             per_seed: dict[int, dict[str, str]] | None = None, classes=CLASSES, loader="synthetic",
             root=None, scheme=None, protocol="loso", params=None, fingerprint="abc123") -> Path:
    """A run folder as `mekit evaluate` writes it (predictions.csv, metrics.json of the first seed,
    config.resolved.yaml, folds/stamp.json); ``preds`` maps sample id -> predicted label (true
    label where absent), ``per_seed`` the same per seed."""
    rows = []
    for seed in seeds:
        p = (per_seed or {}).get(seed, preds or {})
        rows += [{"sample_id": sid, "subject": subj, "dataset": "synthetic", "fold": f"loso:{subj}", "seed": seed,
                  "true": true, "pred": p.get(sid, true)} for sid, subj, true in samples]
    df = pd.DataFrame(rows)
    folder.mkdir(parents=True)
    df.to_csv(folder / "predictions.csv", index=False)
    first = df[df.seed == seeds[0]]
    m = classification_metrics(first["true"], first["pred"], classes)
    m.update(protocol=protocol, leaky=False, seeds=list(seeds), n_subjects=first["subject"].nunique())
    (folder / "metrics.json").write_text(json.dumps(m))
    cfg = {"name": folder.name, "seed": seeds[0], "task": "classification",
           "data": {"loader": loader, "root": root, "label_scheme": scheme, "options": {}},
           "protocol": {"name": protocol, "params": params or {}, "seeds": list(seeds)}}
    (folder / "config.resolved.yaml").write_text(yaml.safe_dump(cfg))
    (folder / "folds").mkdir()
    (folder / "folds" / "stamp.json").write_text(json.dumps({"config": "x", "data": fingerprint, "code": "y"}))
    return folder


#: the baseline misses the first clip of every subject; "better" gets every sample right
ONE_MISS_PER_SUBJECT = {sid: wrong(true) for sid, subj, true in SAMPLES if sid.endswith("clip0")}


def test_identical_runs_differ_by_zero_with_p_one(tmp_path):
    a = make_run(tmp_path / "a", ONE_MISS_PER_SUBJECT)
    b = make_run(tmp_path / "b", ONE_MISS_PER_SUBJECT)
    df = compare_runs([a, b])
    r = df.loc["b"]
    assert r["d_uf1_paired"] == 0 and r["d_uf1_paired_ci"] == "[+0.000, +0.000]"
    assert r["p_bootstrap"] == 1 and r["mcnemar_p"] == 1 and (r["mcnemar_b"], r["mcnemar_c"]) == (0, 0)
    assert r["n_paired"] == 24 and df.attrs["warnings"] == [] and df.attrs["notes"] == []
    assert df.loc["a", ["d_uf1_paired", "p_bootstrap"]].isna().all()  # the baseline is not tested against itself


def test_a_run_better_on_every_subject_has_a_ci_above_zero_and_a_small_p(tmp_path):
    base = make_run(tmp_path / "base", ONE_MISS_PER_SUBJECT)
    better = make_run(tmp_path / "better")
    df = compare_runs([base, better], n_boot=2000)
    r = df.loc["better"]
    # same samples, one seed: the paired difference is the headline delta
    assert r["d_uf1_paired"] == pytest.approx(r["d_uf1"]) and r["d_uf1_paired"] > 0.2
    lo, hi = (float(x) for x in r["d_uf1_paired_ci"].strip("[]").split(","))
    assert 0 < lo <= r["d_uf1_paired"] <= hi
    assert r["p_bootstrap"] == pytest.approx(2 / 2001)  # every replicate above 0
    # 6 discordant pairs, all in favour of the run: exact two-sided p = 2 / 2^6
    assert (r["mcnemar_b"], r["mcnemar_c"]) == (0, 6) and r["mcnemar_p"] == pytest.approx(2 / 64)
    # the other way round: the same difference, negated
    rev = compare_runs([better, base]).loc["base"]
    assert rev["d_uf1_paired"] == pytest.approx(-r["d_uf1_paired"]) and rev["p_bootstrap"] == pytest.approx(2 / 2001)


def test_mcnemar_gives_the_textbook_p_values(tmp_path):
    assert mcnemar(10, 2) == pytest.approx(0.0386, abs=5e-5)  # exact: 2 * P(X <= 2 | n=12, 1/2) = 158/4096
    assert mcnemar(2, 10) == mcnemar(10, 2) and mcnemar(0, 0) == 1 and mcnemar(5, 5) == 1
    # 25 or more discordant pairs: chi-square with continuity correction, (|30-10| - 1)^2 / 40 = 9.025
    assert mcnemar(30, 10) == pytest.approx(0.002663, abs=1e-6)
    with pytest.raises(ValueError, match="discordant counts"):
        mcnemar(-1, 2)
    # through the table: 10 samples only the baseline gets right, 2 only the run
    ids = [sid for sid, _, _ in SAMPLES]
    base = make_run(tmp_path / "base", {sid: wrong(t) for sid, _, t in SAMPLES if sid in ids[10:12]})
    run = make_run(tmp_path / "run", {sid: wrong(t) for sid, _, t in SAMPLES if sid in ids[:10]})
    r = compare_runs([base, run]).loc["run"]
    assert (r["mcnemar_b"], r["mcnemar_c"]) == (10, 2) and r["mcnemar_p"] == pytest.approx(0.0386, abs=5e-5)


def test_runs_that_differ_in_data_scheme_protocol_or_seeds_are_warned_about(tmp_path):
    base = make_run(tmp_path / "base")
    same = make_run(tmp_path / "same")
    other_data = make_run(tmp_path / "casme", loader="casme2", root="/data/CASME2", fingerprint="ffff")
    scheme = make_run(tmp_path / "five", classes=CLASSES + ["others"], scheme="casme2_5class")
    kfold = make_run(tmp_path / "kfold", protocol="group_kfold", params={"k": 5})
    seeds = make_run(tmp_path / "seeds", seeds=(0, 1))
    assert compare_runs([base, same]).attrs["warnings"] == []
    w = compare_runs([base, other_data, scheme, kfold, seeds]).attrs["warnings"]
    line = {x.split(":")[0]: x for x in w}
    assert line["runs differ in data loader"] == ("runs differ in data loader: base=synthetic, casme=casme2, "
                                                  "five=synthetic, kfold=synthetic, seeds=synthetic")
    assert "casme=/data/CASME2" in line["runs differ in data root"] and "base=none" in line["runs differ in data root"]
    assert "casme=ffff" in line["runs differ in data fingerprint"]
    assert "five=casme2_5class" in line["runs differ in label scheme"]
    assert 'five=["negative","others","positive","surprise"]' in line["runs differ in classes"]
    assert "base=loso" in line["runs differ in protocol"] and "kfold=group_kfold" in line["runs differ in protocol"]
    assert 'kfold={"k":5}' in line["runs differ in protocol params"]
    assert "seeds=[0,1]" in line["runs differ in seeds"] and "base=[0]" in line["runs differ in seeds"]
    # a run scored on other classes gets no paired test, and a note says why
    df = compare_runs([base, scheme])
    assert pd.isna(df.loc["five", "d_uf1_paired"]) and any("different classes" in n for n in df.attrs["notes"])


def test_samples_in_one_run_only_are_counted_never_silently_dropped(tmp_path):
    extra = [("sub07/clip0", "sub07", "negative")]
    base = make_run(tmp_path / "base")
    run = make_run(tmp_path / "run", samples=SAMPLES[2:] + extra)
    df = compare_runs([base, run])
    assert df.loc["run", "n_paired"] == 22
    (note,) = df.attrs["notes"]
    assert ("run against base: samples left out of the paired tests: 2 only in base (e.g. sub01/clip0, "
            "sub01/clip1); 1 only in run (e.g. sub07/clip0); the tests use the 22 both runs predicted.") == note
    assert "runs differ in their samples (baseline base: 24): run 23 (2 only in base, 1 only in run)" in \
        df.attrs["warnings"]
    md = to_markdown(df)
    assert note in md and "**Warning:** runs differ in their samples" in md and "Paired tests against base" in md


def test_several_seeds_are_paired_seed_by_seed(tmp_path):
    base = make_run(tmp_path / "base", seeds=(0, 1), per_seed={0: ONE_MISS_PER_SUBJECT, 1: {}})
    run = make_run(tmp_path / "run", seeds=(0, 1), per_seed={0: {}, 1: {}})
    df = compare_runs([base, run])
    # seed 0: perfect vs one miss per subject; seed 1: perfect vs perfect -> half the seed-0 gap
    gap = 1 - classification_metrics([t for _, _, t in SAMPLES],
                                     [ONE_MISS_PER_SUBJECT.get(s, t) for s, _, t in SAMPLES], CLASSES)["uf1"]
    assert df.loc["run", "d_uf1_paired"] == pytest.approx(gap / 2) and df.loc["run", "n_paired"] == 24
    assert (df.loc["run", "mcnemar_b"], df.loc["run", "mcnemar_c"]) == (0, 6)  # McNemar: the first shared seed
    assert df.attrs["notes"] == []
    # seeds only one run has are left out of the paired tests, and a note says so
    df = compare_runs([base, make_run(tmp_path / "three", seeds=(0, 1, 2))])
    assert df.attrs["notes"] == ["three against base: the paired tests use the shared seeds [0, 1]; "
                                 "seeds left out: three [2]."]
    # runs sharing no seed are paired first seed with first seed, and a note says so
    other = make_run(tmp_path / "other", seeds=(7,), per_seed={7: {}})
    df = compare_runs([base, other])
    assert df.loc["other", "d_uf1_paired"] == pytest.approx(gap)
    assert df.attrs["notes"] == ["other and base share no seed (base: [0, 1], other: [7]); the paired tests pair "
                                 "base seed 0 with other seed 7."]


def test_the_bootstrap_is_reproducible_with_a_seed(tmp_path):
    # a noisy difference: the run fixes some subjects' misses and makes new ones elsewhere
    ids = [sid for sid, _, _ in SAMPLES]
    base = make_run(tmp_path / "base", {s: wrong(t) for s, _, t in SAMPLES if s in ids[::3]})
    run = make_run(tmp_path / "run", {s: wrong(t) for s, _, t in SAMPLES if s in ids[1::5]})
    cols = ["d_uf1_paired", "d_uf1_paired_ci", "p_bootstrap"]
    one, two = compare_runs([base, run], n_boot=500, seed=3), compare_runs([base, run], n_boot=500, seed=3)
    assert one.loc["run", cols].tolist() == two.loc["run", cols].tolist()
    assert (one.attrs["n_boot"], one.attrs["seed"]) == (500, 3)
    preds = {n: pd.read_csv(tmp_path / n / "predictions.csv", dtype={"true": str, "pred": str})
             for n in ("base", "run")}
    draws = {s: paired_subject_bootstrap(preds["base"], preds["run"], CLASSES, n_boot=200, seed=s)["ci"]
             for s in (0, 1, 2)}
    assert draws[0] == paired_subject_bootstrap(preds["base"], preds["run"], CLASSES, n_boot=200, seed=0)["ci"]
    assert len({tuple(c) for c in draws.values()}) > 1  # the seed does drive the draw


def test_bad_input_is_one_clear_line(tmp_path):
    base = make_run(tmp_path / "base")
    run = make_run(tmp_path / "run")
    with pytest.raises(DataError, match="bootstrap replicates must be a whole number of at least 1"):
        compare_runs([base, run], n_boot=0)
    pd.read_csv(run / "predictions.csv").drop(columns="subject").to_csv(run / "predictions.csv", index=False)
    with pytest.raises(DataError, match=r"predictions.csv: predictions lack the columns \['subject'\]"):
        compare_runs([base, run])
    (run / "predictions.csv").unlink()
    df = compare_runs([base, run])  # no predictions: the table still comes, with a note instead of a test
    assert any("run has no predictions.csv" in n for n in df.attrs["notes"])
    (run / "config.resolved.yaml").write_text("data: [unclosed")
    with pytest.raises(DataError, match="config.resolved.yaml: not valid YAML"):
        compare_runs([base, run])


def test_cli_prints_the_paired_columns_and_the_warnings(tmp_path, monkeypatch, capsys):
    from typer.testing import CliRunner

    import mekit.cli.main as cli_main
    from mekit.cli.main import app

    base = make_run(tmp_path / "base", ONE_MISS_PER_SUBJECT)
    better = make_run(tmp_path / "better", protocol="group_kfold")
    out = tmp_path / "t" / "cmp"
    res = CliRunner().invoke(app, ["compare", str(base), str(better), "--bootstrap", "300", "--seed", "5",
                                   "--out", str(out)], env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.output
    for text in ("d_uf1_paired", "p_bootstrap", "mcnemar_p", "n_paired", "0.007",  # p = 2/301
                 "warning: runs differ in protocol: base=loso, better=group_kfold", "300 replicates, seed 5"):
        assert text in res.output, text
    table = pd.read_csv(out.with_suffix(".csv"), index_col="run")
    assert table.loc["better", "p_bootstrap"] == pytest.approx(2 / 301) and table.loc["better", "n_paired"] == 24
    # bad input through the real entry point: one line, exit code 2
    monkeypatch.setattr(sys, "argv", ["mekit", "compare", str(base), str(better), "--bootstrap", "0"])
    with pytest.raises(SystemExit) as e:
        cli_main.main()
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "bootstrap replicates" in err
