import pytest

from mekit.config import ExperimentConfig, from_dict, load_config
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


# -- typed sections ----------------------------------------------------------------------------------
def test_preprocess_and_intensity_are_typed_frozen_sections_checked_at_load():
    import dataclasses

    from mekit.intensity.models import IntensitySettings
    from mekit.preprocess.pipeline import PreprocessConfig

    cfg = load_config(None, {"preprocess.size": 96})
    assert isinstance(cfg.preprocess, PreprocessConfig) and cfg.preprocess.size == 96
    assert cfg.preprocess.flow == "tvl1" and cfg.intensity is None  # defaults filled in; no intensity section
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.preprocess.size = 64  # type: ignore[misc]
    # it still reads as the mapping of its settings (per-part overrides merge into it)
    assert {**cfg.preprocess, "size": 64}["size"] == 64 and dict(cfg.preprocess)["margin"] == 0.2
    with pytest.raises(ConfigError, match=r"^preprocess.margin must be between 0 and 3, got 9"):
        load_config(None, {"preprocess.margin": 9})
    with pytest.raises(ConfigError, match=r"^preprocess.size: expected an integer, got 'big'"):
        load_config(None, {"preprocess.size": "big"})
    icfg = load_config(None, {"task": "intensity", "intensity.source": "synthetic", "model.name": "ridge"})
    assert isinstance(icfg.intensity, IntensitySettings) and icfg.intensity.source == "synthetic"
    with pytest.raises(ConfigError, match=r"^intensity.loss: 'l3'"):
        load_config(None, {"task": "intensity", "intensity.loss": "l3"})
    with pytest.raises(ConfigError, match="read only with task: intensity"):
        load_config(None, {"intensity.loss": "mae"})


def test_a_loaded_config_round_trips_and_its_stamp_ignores_how_settings():
    cfg = load_config(None, {"preprocess.workers": 2})
    again = from_dict(ExperimentConfig, cfg.to_dict())
    assert again.to_yaml() == cfg.to_yaml()
    # workers and cache settings change how preprocessing runs, never its result
    assert load_config(None, {"preprocess.workers": 1, "preprocess.cache_dir": "/tmp/x"}).results_yaml() \
        == cfg.results_yaml()
    assert load_config(None, {"preprocess.size": 64}).results_yaml() != cfg.results_yaml()
