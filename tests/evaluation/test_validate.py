"""validate_config checks every free-form section against what it configures, at load time:
one ConfigError naming the key, never a TypeError mid-run or a setting silently ignored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mekit.config import load_config
from mekit.errors import ConfigError
from mekit.evaluation.validate import validate_config

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "configs").glob("*.yaml")) + [REPO / "src" / "mekit" / "configs" / "run_default.yaml"]


def _check(overrides: dict, match: str | None = None) -> None:
    """Loading and validating refuse the overrides with one line matching ``match`` (typed sections
    such as ``preprocess`` and ``intensity`` refuse a wrong key while the file is loaded)."""
    if match is None:
        validate_config(load_config(overrides=overrides))
        return
    with pytest.raises(ConfigError, match=match) as e:
        validate_config(load_config(overrides=overrides))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    validate_config(load_config(path))


# -- features ------------------------------------------------------------------------------------
def test_feature_param_of_the_wrong_type_names_the_key():
    _check({"features.params": {"grid": "five"}}, r"features.params.grid: expected an integer, got 'five'")


def test_unknown_feature_param_suggests_the_name():
    _check({"features.params.gird": 5}, r"features.params.gird: unknown parameter of feature extractor 'hoof' "
                                        r"\(did you mean 'grid'\?\)")


def test_arguments_the_runner_passes_are_not_params():
    _check({"features.params.progress": False}, r"features.params.progress: not a parameter to set here")


def test_a_list_parameter_refuses_a_string():
    _check({"features.name": "flow_descriptors", "features.params.pairs": "onset_apex"},
           r"features.params.pairs: expected a list")


def test_concat_parts_are_checked_one_by_one():
    parts = [{"name": "hoof", "params": {"grid": 3}}, {"name": "lbp_top", "params": {"n_frame": 4}}]
    _check({"features.name": "concat", "features.params.parts": parts}, r"features.params.parts\[1\].params.n_frame")
    parts = [{"name": "hoof", "preprocess": {"sizee": 64}}]
    _check({"features.name": "concat", "features.params.parts": parts}, r"features.params.parts\[0\].preprocess")


def test_an_input_builder_is_not_a_feature_extractor():
    _check({"features.name": "hsv_flow"}, r"features.name: 'hsv_flow' builds inputs for neural models")


# -- classical model -----------------------------------------------------------------------------
def test_unknown_classifier_param_names_the_key():
    _check({"model.params.Cee": 1.0}, r"model.params.Cee: unknown parameter of classifier 'logreg'")


def test_classifier_value_is_judged_by_its_constraints():
    _check({"model.params.C": "abc"}, r"model.params.C: The 'C' parameter of LogisticRegression must be a float")
    _check({"model.name": "svm", "model.params.kernel": "lin"}, r"model.params.kernel: The 'kernel' parameter of SVC")


def test_values_in_a_grid_are_checked():
    _check({"model.params.grid": {"C": [1.0, "x"]}}, r"model.params.grid.C: The 'C' parameter")
    _check({"model.params.grid": {"C": 1.0}}, r"model.params.grid.C: expected a non-empty list")


def test_keys_set_elsewhere_are_refused():
    _check({"model.params.seed": 3}, r"model.params.seed: not a parameter to set here")
    _check({"model.params.classifier": "svm"}, r"model.params.classifier: .*model.name")
    _check({"model.name": "random_forest", "model.params.n_jobs": 4}, r"model.params.n_jobs")


def test_lightgbm_refuses_names_outside_its_signature():
    pytest.importorskip("lightgbm")
    _check({"model.name": "gbm", "model.params.n_estimatros": 5}, r"model.params.n_estimatros: unknown parameter")


def test_fixed_value_and_explicit_grid_on_the_same_parameter_are_refused():
    _check({"model.params": {"C": 0.5, "grid": {"C": [1.0, 10.0]}}}, r"model.params.grid.C: also fixed")


def test_fixed_value_wins_over_the_registered_grid():
    from mekit.models.classical import ClassicalModel, make_classical

    m = make_classical({"classifier": "logreg", "C": 0.5}, "balanced", None, None, 0)
    assert m.grid == {}  # logreg's registered grid searches C; the fixed value removes it
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(24, 3)), np.repeat(["a", "b"], 12)
    m.fit(X, y, np.repeat(np.arange(6), 4))
    assert m.model_.named_steps["clf"].C == 0.5 and m.selection_["chosen"] == {}
    assert ClassicalModel("logreg").grid == {"C": [0.01, 0.1, 1.0, 10.0]}
    with pytest.raises(ConfigError, match="also fixed"):
        ClassicalModel("logreg", C=0.5, grid={"C": [1.0]})
    with pytest.raises(ConfigError, match="model.params.C"):
        make_classical({"classifier": "logreg", "C": "abc"}, "balanced", None, None, 0)


def test_classical_own_keys_are_checked():
    _check({"model.params.pca": 0}, r"model.params.pca")
    _check({"model.params.inner_folds": 1}, r"model.params.inner_folds")


# -- imbalance -----------------------------------------------------------------------------------
def test_sampler_params_are_checked_against_the_sampler():
    _check({"imbalance.sampler": "smote", "imbalance.sampler_params": {"k_neighbours": 3}},
           r"imbalance.sampler_params.k_neighbours: unknown parameter of sampler 'smote' "
           r"\(did you mean 'k_neighbors'\?\)")
    _check({"imbalance.sampler": "smote", "imbalance.sampler_params": {"k_neighbors": "five"}},
           r"imbalance.sampler_params.k_neighbors: expected an integer")
    _check({"imbalance.sampler": "smote", "imbalance.sampler_params": {"random_state": 1}},
           r"imbalance.sampler_params.random_state: not a parameter to set here")
    _check({"imbalance.sampler": "smoot"}, r"imbalance.sampler: unknown sampler 'smoot'")


# -- protocol ------------------------------------------------------------------------------------
def test_a_parameter_the_protocol_ignores_is_refused():
    _check({"protocol.params.k": 5}, r"protocol.params.k: protocol 'loso' takes no parameters")
    _check({"protocol.name": "group_kfold", "protocol.params.kk": 5}, r"protocol.params.kk: unknown parameter")
    _check({"protocol.name": "group_kfold", "protocol.params.k": "ten"}, r"protocol.params.k: expected an integer")
    _check({"protocol.name": "random_split", "protocol.params.test_size": 1.5}, r"protocol.params.test_size")
    _check({"protocol.name": "loso", "protocol.seeds": [0, 1, 2]})  # several seeds: always accepted


def test_get_protocol_refuses_ignored_parameters():
    from mekit.evaluation.protocols import get_protocol

    with pytest.raises(ConfigError, match="protocol.params.k"):
        get_protocol("loso", k=3)
    assert get_protocol("group_kfold", k=3).k == 3


# -- preprocess and data ---------------------------------------------------------------------------
def test_preprocess_is_checked_at_load_time():
    _check({"preprocess.sizee": 64}, r"preprocess: unknown key\(s\) \['sizee'\]")
    _check({"preprocess.detector": "nope"}, r"preprocess.detector")
    _check({"preprocess.apex_params": {"smooth_sigm": 2.0}}, r"preprocess.apex_params.smooth_sigm: unknown parameter")
    _check({"preprocess.sampling": {"method": "all"}, "preprocess.magnify": {"low_hz": 0.5, "alpha": 4}},
           r"preprocess.magnify: magnification needs 'high_hz'")
    _check({"preprocess.sampling": {"method": "all"},
            "preprocess.magnify": {"low_hz": 0.5, "high_hz": 3.0, "alpha": "x"}}, r"preprocess.magnify.alpha")


def test_data_loader_and_options_are_checked():
    _check({"data.loader": "casme22"}, r"data.loader: unknown dataset loader 'casme22'")
    _check({"data.options": {"n_subject": 3}}, r"data.options: .*n_subject")


# -- neural models ---------------------------------------------------------------------------------
NEURAL = {"model.name": "ststnet", "features.name": "flow"}


def test_neural_training_settings_are_checked():
    pytest.importorskip("torch")
    _check({**NEURAL, "model.params.epochs": "ten"}, r"model.params.epochs: expected an integer, got 'ten'")
    _check({**NEURAL, "model.params.epoch": 3}, r"model.params: unknown key\(s\) \['epoch'\]")
    _check({**NEURAL, "model.params.lr": 0}, r"model.params.lr")
    _check({**NEURAL, "model.params.model_params": {"drop_rat": 0.1}},
           r"model.params.model_params.drop_rat: unknown parameter of model 'ststnet' \(did you mean 'drop_rate'\?\)")
    _check({**NEURAL, "model.params.model_params": {"filters": "big"}}, r"model.params.model_params.filters")
    _check({**NEURAL, "model.params.augment": {"hflp": True}}, r"model.params.augment: unknown key")
    _check({**NEURAL, "model.params.loss": "focall"}, r"model.params.loss: unknown loss 'focall'")
    _check({**NEURAL, "model.params.loss_params": {"gama": 2.0}, "model.params.loss": "focal"},
           r"model.params.loss_params.gama: unknown parameter of loss 'focal'")
    _check({**NEURAL, "model.params.lr": 1e-3, "model.params.model_params": {"drop_rate": 0.2}})


def test_neural_inputs_and_ignored_settings():
    pytest.importorskip("torch")
    _check({**NEURAL, "features.params.size": "big"}, r"features.params.size: expected an integer")
    _check({**NEURAL, "features.params.grid": 5}, r"features.params.grid: unknown parameter of model input builder")
    _check({"model.name": "ststnet", "features.name": "hog"}, r"features.name: 'hog' is a feature extractor")
    _check({"model.name": "ststnet", "features.name": "flw"}, r"features.name: unknown input builder 'flw'")
    _check({**NEURAL, "imbalance.sampler": "smote"}, r"imbalance.sampler: 'smote' synthesises new feature vectors")
    _check({"model.name": "siamese", "features.name": "pair",
            "model.params.model_params": {"backbone_kwargs": {"widths": "x"}}},
           r"model.params.model_params.backbone_kwargs.widths")
    _check({"model.name": "nonet"}, r"model.name: unknown model 'nonet'")


# -- intensity -------------------------------------------------------------------------------------
INTENSITY = {"task": "intensity", "model.name": "ridge", "data.label_scheme": None}


def test_intensity_runs_are_checked_by_the_intensity_rules():
    _check({**INTENSITY, "intensity.sourc": "timing"}, r"intensity: unknown key\(s\) \['sourc'\]")
    _check({**INTENSITY, "model.params.alphaa": [1.0]}, r"model.params: unknown option")
    _check({**INTENSITY, "features.params.grid": 4}, r"features: task intensity builds its own")
    _check({**INTENSITY, "protocol.name": "random_split"}, r"random_split is refused for intensity")
    _check(INTENSITY)


# -- registry sweeps: every component's parameters can be checked -------------------------------
def _closed(fn) -> bool:
    from mekit.registry import keyword_parameters

    return not keyword_parameters(fn)[1]


def test_every_feature_extractor_and_input_builder_has_a_closed_signature():
    from mekit.features import FEATURES, INPUTS, get_extractor, get_input_builder

    assert [n for n in FEATURES.names() if not _closed(get_extractor(n))] == []
    assert [n for n in INPUTS.names() if not _closed(get_input_builder(n))] == []


def test_every_protocol_and_sampler_has_a_closed_signature():
    from mekit.evaluation.protocols import PROTOCOLS
    from mekit.imbalance import SAMPLERS
    from mekit.registry import resolve

    assert [n for n in PROTOCOLS.names() if not _closed(PROTOCOLS.get(n))] == []
    assert [n for n in SAMPLERS.names() if not _closed(resolve(SAMPLERS.get(n)))] == []


def test_every_neural_model_has_a_closed_signature():
    pytest.importorskip("torch")
    from mekit.models import MODELS

    assert [n for n in MODELS.names() if not _closed(MODELS.get(n))] == []


def test_resolved_config_fills_the_defaults_of_free_sections():
    from mekit.evaluation.validate import resolved_config

    d = resolved_config(load_config(None, {"model.name": "ststnet", "model.params": {"epochs": 3},
                                           "features.name": "flow", "features.params": {}}))
    assert d["preprocess"]["margin"] == 0.2 and "flow" in d["preprocess"]
    assert d["model"]["params"]["epochs"] == 3 and "batch_size" in d["model"]["params"]
    d = resolved_config(load_config(None, {"features.params": {"grid": 3}}))
    assert d["features"]["params"]["grid"] == 3 and d["features"]["params"]["bins"] == 8
