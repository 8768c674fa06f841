"""``mekit litmap``: the example bibliography end to end through the command line."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from mekit.analysis.litmap import OUTPUTS, example_bibliography
from mekit.cli.main import app
from mekit.errors import ConfigError, DataError

runner = CliRunner()


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("litmap") / "example"
    t0 = time.perf_counter()
    res = runner.invoke(app, ["litmap", "--example", "--out", str(out)])
    seconds = time.perf_counter() - t0
    # not asserted (machines differ); shown with -s so a slowdown is seen
    print(f"\nmekit litmap --example took {seconds:.2f} s")
    return res, out


def test_example_writes_every_output(example_run):
    res, out = example_run
    assert res.exit_code == 0, res.output
    for name in OUTPUTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert "1 duplicate(s) merged" in res.output
    assert "communities" in res.output and str(out) in res.output.replace("\n", "")


def test_example_bibliography_is_shipped_and_has_no_problems(example_run):
    from mekit.analysis.litmap.readers import read_corpus

    corpus = read_corpus([example_bibliography()])
    assert 40 <= len(corpus.records) <= 60
    assert not [i for i in corpus.issues if i.kind not in ("no_abstract",)]
    assert all(r.title and r.year and r.author_keywords for r in corpus.records)


def test_example_map_finds_the_fields_themes(example_run):
    import csv

    _, out = example_run
    with open(out / "terms.csv", newline="") as f:
        terms = {r["term"]: r for r in csv.DictReader(f)}
    for t in ("micro-expression recognition", "optical flow", "deep learning", "LBP-TOP",
              "micro-expression spotting", "micro-expression database"):
        assert t in terms and terms[t]["in_network"] == "true", t
    # hand-crafted descriptors and deep networks are different themes of the field
    assert terms["LBP-TOP"]["cluster"] != terms["deep learning"]["cluster"]
    assert terms["micro-expression recognition"]["id"] == "1"
    settings = (out / "settings.json").read_text()
    assert "example_synonyms.txt" in settings


def test_options_reach_the_settings(tmp_path):
    out = tmp_path / "o"
    res = runner.invoke(app, ["litmap", "--example", "--out", str(out), "--min-freq", "3", "--ngram", "2,3",
                              "--extractor", "ngram", "-o", "label_top=10", "-o", "core_fraction=0.3"])
    assert res.exit_code == 0, res.output
    import json

    s = json.loads((out / "settings.json").read_text())["settings"]
    assert (s["min_freq"], s["ngram_range"], s["extractor"], s["label_top"], s["core_fraction"]) == \
        (3, [2, 3], "ngram", 10, 0.3)


def test_command_line_errors(tmp_path):
    res = runner.invoke(app, ["litmap", "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and isinstance(res.exception, ConfigError)
    res = runner.invoke(app, ["litmap", str(tmp_path / "missing.bib"), "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and isinstance(res.exception, DataError) and "missing.bib" in str(res.exception)
    res = runner.invoke(app, ["litmap", "--example", "--out", str(tmp_path / "x"), "-o", "min_frequency=2"])
    assert res.exit_code != 0 and "min_freq" in str(res.exception)
