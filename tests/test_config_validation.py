"""Config loading refuses what it would otherwise keep silently: keys given twice, seeds that
disagree, settings nothing reads; and the CLI reports each as one line with exit code 2."""

from __future__ import annotations

import sys

import pytest

from mekit.config import ConfigLoader, ExperimentConfig, load_config, load_yaml
from mekit.errors import ConfigError


def _write(tmp_path, text: str):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


# -- YAML ----------------------------------------------------------------------------------------
def test_duplicate_top_level_key_names_the_key_and_both_lines(tmp_path):
    p = _write(tmp_path, "name: a\nseed: 1\nname: b\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert str(p) in msg and "'name'" in msg and "line 3" in msg and "line 1" in msg


def test_duplicate_key_inside_free_params_is_refused(tmp_path):
    p = _write(tmp_path, "features:\n  name: hoof\n  params:\n    grid: 3\n    bins: 8\n    grid: 5\n")
    with pytest.raises(ConfigError, match=r"line 6: duplicate key 'grid' \(first given on line 4\)"):
        load_config(p)


def test_duplicate_key_in_flow_mapping_is_refused():
    with pytest.raises(ConfigError, match="duplicate key 'C'"):
        load_yaml("model: {params: {C: 1, C: 2}}", "x.yaml")


def test_merge_keys_still_override():
    # '<<' merges are YAML's way to reuse a block and change some keys: not a duplicate
    data = load_yaml("base: &b {a: 1, b: 2}\nuse:\n  <<: *b\n  b: 3\n")
    assert data["use"] == {"a": 1, "b": 3}


def test_exponent_without_a_dot_is_a_number():
    assert load_yaml("lr: 1e-3\nwd: 5E-4\nn: 10\nname: 1e3x") == {"lr": 0.001, "wd": 0.0005, "n": 10, "name": "1e3x"}
    assert issubclass(ConfigLoader, __import__("yaml").SafeLoader)


def test_invalid_yaml_is_one_line(tmp_path):
    p = _write(tmp_path, "name: [unclosed\nseed: 1\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


# -- seeds -----------------------------------------------------------------------------------------
def test_seed_alone_sets_the_protocol_seeds():
    cfg = load_config(overrides={"seed": 3})
    assert cfg.seed == 3 and cfg.protocol.seeds == (3,)


def test_protocol_seeds_alone_set_the_seed():
    cfg = load_config(overrides={"protocol.seeds": [4, 5]})
    assert cfg.seed == 4 and cfg.protocol.seeds == (4, 5)


def test_defaults_are_seed_zero():
    cfg = load_config()
    assert cfg.seed == 0 and cfg.protocol.seeds == (0,)
    assert ExperimentConfig().protocol.seeds == (0,)


def test_seed_and_seeds_that_disagree_are_refused(tmp_path):
    p = _write(tmp_path, "seed: 7\nprotocol: {name: loso, seeds: [0, 1]}\n")
    with pytest.raises(ConfigError, match=r"config.seed: 7 disagrees with protocol.seeds \[0, 1\]"):
        load_config(p)


def test_seed_equal_to_the_first_seed_is_accepted(tmp_path):
    p = _write(tmp_path, "seed: 0\nprotocol: {name: loso, seeds: [0, 1, 2]}\n")
    cfg = load_config(p)
    assert cfg.seed == 0 and cfg.protocol.seeds == (0, 1, 2)


def test_an_override_of_one_replaces_both(tmp_path):
    p = _write(tmp_path, "seed: 0\nprotocol: {name: loso, seeds: [0, 1, 2]}\n")
    cfg = load_config(p, {"protocol.seeds": [1, 2]})
    assert cfg.seed == 1 and cfg.protocol.seeds == (1, 2)
    cfg = load_config(p, {"seed": 5})
    assert cfg.seed == 5 and cfg.protocol.seeds == (5,)
    with pytest.raises(ConfigError, match="disagrees"):
        load_config(p, {"seed": 5, "protocol.seeds": [1]})


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(overrides={"protocol.seeds": [2, 3]})
    p = _write(tmp_path, cfg.to_yaml())
    assert load_config(p) == cfg


def test_repeated_or_empty_seeds_and_bad_workers_are_refused():
    with pytest.raises(ConfigError, match="protocol.seeds"):
        load_config(overrides={"protocol.seeds": [1, 1]})
    with pytest.raises(ConfigError, match="protocol.seeds"):
        load_config(overrides={"protocol.seeds": []})
    with pytest.raises(ConfigError, match="protocol.workers"):
        load_config(overrides={"protocol.workers": 0})


# -- settings nothing would read -------------------------------------------------------------------
def test_sampler_params_without_a_sampler_are_refused():
    with pytest.raises(ConfigError, match="imbalance.sampler_params"):
        load_config(overrides={"imbalance.sampler_params": {"k_neighbors": 3}})


def test_unknown_class_weight_mode_is_refused():
    with pytest.raises(ConfigError, match="imbalance.class_weight: 'balancd'"):
        load_config(overrides={"imbalance.class_weight": "balancd"})


def test_intensity_settings_need_task_intensity():
    with pytest.raises(ConfigError, match="task: intensity"):
        load_config(overrides={"intensity": {"source": "timing"}})


# -- command-line overrides ----------------------------------------------------------------------
def test_override_given_twice_is_refused():
    from mekit.cli.common import parse_overrides

    with pytest.raises(ConfigError, match="'model.params.C' is given twice"):
        parse_overrides(["model.params.C=1", "model.params.C=2"])


def test_override_values_use_the_config_loader():
    from mekit.cli.common import parse_overrides

    assert parse_overrides(["model.params.lr=1e-3", "name=x"]) == {"model.params.lr": 0.001, "name": "x"}
    with pytest.raises(ConfigError, match="override features.params: .*duplicate key 'grid'"):
        parse_overrides(["features.params={grid: 3, grid: 4}"])


# -- the CLI: one line, exit code 2 ------------------------------------------------------------------
# The data root does not exist: a config that got past validation fails on loading the data
# with a message that names none of the keys below, so these fail if validation is skipped.
BASE = "name: t\ndata: {loader: casme2, root: /nonexistent/casme2}\npreprocess: {detector: none}\n"

CLI_CASES = {
    "feature param type": (BASE + "features: {name: hoof, params: {grid: five}}\n", [],
                           ["features.params.grid", "integer", "'five'"]),
    "feature param typo": (BASE + "features: {name: hoof, params: {gird: 5}}\n", [],
                           ["features.params.gird", "did you mean 'grid'"]),
    "classifier param typo": (BASE + "model: {name: logreg, params: {Cee: 1.0}}\n", [], ["model.params.Cee"]),
    "classifier param value": (BASE + "model: {name: logreg}\n", ["model.params.C=abc"], ["model.params.C", "'abc'"]),
    "fixed and searched": (BASE + "model: {name: logreg, params: {C: 0.5, grid: {C: [1, 10]}}}\n", [],
                           ["model.params.grid.C", "fixed"]),
    "duplicate key": (BASE + "model: {name: logreg}\nmodel: {name: svm}\n", [], ["duplicate key 'model'", "line"]),
    "protocol param ignored": (BASE + "protocol: {name: loso, params: {k: 5}}\n", [],
                               ["protocol.params.k", "takes no parameters"]),
    "override protocol param": (BASE, ["protocol.name=group_kfold", "protocol.params.k=ten"],
                                ["protocol.params.k", "'ten'"]),
    "override twice": (BASE, ["seed=1", "seed=2"], ["'seed' is given twice"]),
    "seeds disagree": (BASE + "seed: 3\nprotocol: {name: loso, seeds: [0]}\n", [], ["config.seed", "protocol.seeds"]),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_reports_one_line_and_exit_code_2(case, tmp_path, monkeypatch, capsys):
    from mekit.cli.main import main

    text, overrides, needles = CLI_CASES[case]
    p = _write(tmp_path, text)
    monkeypatch.setattr(sys, "argv", ["mekit", "evaluate", "--config", str(p), *overrides])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


def test_a_config_that_is_binary_or_a_folder_is_one_line(tmp_path):
    from mekit.config import load_config

    bad = tmp_path / "garbage.yaml"
    bad.write_bytes(bytes(range(128, 256)))
    with pytest.raises(ConfigError, match="not a text file"):
        load_config(bad)
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)
