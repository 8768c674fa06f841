"""mekit.catalogue: every registered choice, as plain data built from the registries."""

from __future__ import annotations

import json

import pytest

import mekit
from mekit.catalogue import SECTIONS, catalogue, section_name
from mekit.errors import ConfigError


@pytest.fixture(scope="module")
def cat():
    return catalogue()


def test_every_section_is_plain_data_with_name_and_help(cat):
    assert list(cat) == list(SECTIONS)
    assert json.loads(json.dumps(cat)) == cat  # JSON-ready as it is: a GUI fills menus from it
    for section, entries in cat.items():
        assert entries, section
        for e in entries:
            assert isinstance(e["name"], str) and isinstance(e["help"], str), (section, e)


def test_sections_follow_the_registries(cat):
    from mekit.models.classical import CLASSIFIERS
    from mekit.data import LOADERS
    from mekit.data.labels import SCHEMES
    from mekit.evaluation.protocols import PROTOCOLS
    from mekit.features import FEATURES, INPUTS
    from mekit.imbalance import LOSSES, SAMPLERS
    from mekit.intensity.models import REGRESSORS
    from mekit.models import MODELS
    from mekit.preprocess.face import DETECTORS
    from mekit.preprocess.flow import FLOW_METHODS

    names = {s: [e["name"] for e in entries] for s, entries in cat.items()}
    assert names["loaders"] == LOADERS.names()
    assert names["label_schemes"] == SCHEMES.names()
    assert names["face_detectors"] == list(DETECTORS)
    assert names["flow_methods"] == FLOW_METHODS.names()
    assert names["features"] == FEATURES.names()
    assert names["model_inputs"] == INPUTS.names()
    assert names["models"] == MODELS.names()
    assert names["classifiers"] == CLASSIFIERS.names()
    assert names["samplers"] == SAMPLERS.names()
    assert names["losses"] == LOSSES.names()
    assert names["protocols"] == PROTOCOLS.names()
    assert names["intensity_regressors"] == REGRESSORS.names()
    assert names["tasks"] == ["classification", "intensity"]
    assert {"uf1", "uar", "mae", "ccc"} <= set(names["metrics"])
    assert all(e["help"] for s in ("loaders", "models", "classifiers", "protocols") for e in cat[s])


def test_models_carry_their_input_contract(cat):
    from mekit.models import MODELS

    for m in cat["models"]:
        meta = MODELS.meta(m["name"])
        assert m["input"] == meta["input"]
        assert m["input_size"] == list(meta["input_size"]) and m["channels"] == meta["channels"]
        assert m["mean"] == list(meta["mean"]) and m["std"] == list(meta["std"])


def test_loader_options_come_from_the_signature(cat):
    loaders = {e["name"]: e for e in cat["loaders"]}
    opts = {o["name"]: o for o in loaders["image_folder"]["options"]}
    assert "root" not in opts
    assert opts["dataset"]["default"] == "image_folder"
    assert "subject_pattern" in opts
    # a loader taking **options lists them by name (and type)
    assert {"n_subjects", "clips_per_subject"} <= {o["name"] for o in loaders["synthetic"]["options"]}


def test_one_section_and_aliases():
    assert list(catalogue("protocols")) == ["protocols"]
    assert section_name("label-schemes") == "label_schemes" and section_name("model") == "models"
    assert list(catalogue(["tasks", "losses"])) == ["tasks", "losses"]
    with pytest.raises(ConfigError, match="did you mean 'protocols'"):
        catalogue("protocol_s")


def test_front_door_catalogue_is_the_same():
    assert mekit.catalogue("tasks") == catalogue("tasks")
