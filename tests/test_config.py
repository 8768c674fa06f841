import pytest

from mekit.config import ExperimentConfig, load_config
from mekit.errors import ConfigError


def test_defaults_and_dotted_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: x\ndata: {loader: casme2, root: /a}\nprotocol: {name: loso}\n")
    cfg = load_config(p, {"data.root": "/b", "protocol.seeds": [1, 2], "model.params.C": 0.5})
    assert cfg.name == "x" and cfg.data.loader == "casme2" and cfg.data.root == "/b"
    assert cfg.protocol.seeds == (1, 2)
    assert cfg.model.params == {"C": 0.5}


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match="rooot"):
        load_config(overrides={"data.rooot": "/x"})


def test_type_errors_are_clear():
    with pytest.raises(ConfigError, match="config.seed: expected an integer"):
        load_config(overrides={"seed": "abc"})


def test_round_trip_yaml(tmp_path):
    cfg = load_config(overrides={"protocol.name": "group_kfold", "protocol.params.k": 5})
    p = tmp_path / "r.yaml"
    p.write_text(cfg.to_yaml())
    assert load_config(p) == cfg
    assert isinstance(cfg, ExperimentConfig)


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/nonexistent/c.yaml")
