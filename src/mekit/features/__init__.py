"""Feature extractors for classical pipelines and input builders for neural models.

An extractor takes a SampleTable and the preprocessing config and returns a
:class:`~mekit.features.base.FeatureSet` (sample ids, array, and the ids it skipped with reasons).
Registered by name with the import path of the function, so listing them imports nothing.

Each entry also names, under ``needs``, the function that declares what the extractor reads
from the preprocessing pipeline given its parameters (see :mod:`mekit.features.planning`), so
a run can preprocess once, as a stage of its own, for everything the features read
(:func:`preprocessed_for`).
"""

from __future__ import annotations

import importlib

from mekit.registry import Registry

#: name -> "module:function"; the function is ``(table, preprocess: dict, progress, **params) -> FeatureSet``.
#: Meta ``needs``: "module:function" ``(params with defaults, preprocess: dict) -> list[Need]``.
FEATURES: Registry[str] = Registry("feature extractor")
_E = "mekit.features.extractors"
FEATURES.add("hoof", f"{_E}:hoof_features", needs=f"{_E}:hoof_needs",
             help="magnitude-weighted histograms of onset->apex flow orientation on a grid + mean strain per cell")
FEATURES.add("hog", f"{_E}:hog_features", needs=f"{_E}:face_needs",
             help="HOG of the apex face crop (or the still's aligned face crop)")
FEATURES.add("lbp_top", f"{_E}:lbp_top_features", needs=f"{_E}:sampled_frames_needs",
             help="LBP on three orthogonal planes over sampled frames")
FEATURES.add("frozen_cnn", f"{_E}:frozen_cnn_features", needs=f"{_E}:face_needs",
             help="frozen pretrained CNN embeddings (EfficientNet-Lite0 ImageNet, or a user state dict)")

#: model input kind -> builder (for neural models; see mekit.models INPUT_KINDS); meta ``needs`` as above
INPUTS: Registry[str] = Registry("model input")
INPUTS.add("flow", f"{_E}:flow_input", needs=f"{_E}:flow_stack_needs")
INPUTS.add("dual_flow", f"{_E}:flow_input", needs=f"{_E}:flow_stack_needs")
INPUTS.add("roi_flow", f"{_E}:roi_flow_input", needs=f"{_E}:roi_flow_needs")
INPUTS.add("image", f"{_E}:image_input", needs=f"{_E}:face_needs")
INPUTS.add("pair", f"{_E}:pair_input", needs=f"{_E}:face_needs")
INPUTS.add("sequence", f"{_E}:sequence_input", needs=f"{_E}:sampled_frames_needs")
INPUTS.add("clip3d", f"{_E}:sequence_input", needs=f"{_E}:sampled_frames_needs")

_C = "mekit.features.combined"
FEATURES.add("flow_descriptors", f"{_C}:flow_descriptors", needs=f"{_C}:flow_descriptors_needs",
             help="HOOF on several grids, onset->apex and apex->offset, strain means/histograms, MDMO in ROIs")
FEATURES.add("concat", f"{_C}:concat_features", needs=f"{_C}:concat_needs",
             help="several registered extractors side by side (params.parts)")
INPUTS.add("hsv_flow", f"{_C}:hsv_flow_input", needs=f"{_C}:hsv_flow_needs",
           help="onset->apex flow rendered as an HSV colour image (for ImageNet-style CNNs)")


def _resolve(path: str):
    mod, fn = path.split(":")
    return getattr(importlib.import_module(mod), fn)


#: arguments every extractor and input builder receives from the runner, never from features.params
_PASSED = {"table": "the samples are passed by the runner",
           "preprocess": "set by the config's preprocess section",
           "progress": "set by the runner"}


def check_extractor_params(name: str, params: dict | None, where: str = "features.params") -> None:
    """Refuse ``params`` that extractor ``name`` does not take (or values of the wrong type),
    naming the key; the parts of ``concat`` are checked the same way, one by one."""
    from mekit.errors import ConfigError
    from mekit.registry import check_params

    params = dict(params or {})
    check_params(get_extractor(name), params, where, f"feature extractor {name!r}", _PASSED)
    if name != "concat":
        return
    parts = params.get("parts")
    if not parts:
        raise ConfigError(f"{where}.parts: feature extractor 'concat' needs a list of {{name, params}}")
    for k, part in enumerate(parts):
        at = f"{where}.parts[{k}]"
        if not isinstance(part, dict) or "name" not in part:
            raise ConfigError(f"{at}: expected a mapping {{name, params, preprocess}}, got {part!r}")
        extra = sorted(set(part) - {"name", "params", "preprocess"})
        if extra:
            raise ConfigError(f"{at}: unknown key(s) {extra}; expected some of ['name', 'params', 'preprocess']")
        if part["name"] == "concat":
            raise ConfigError(f"{at}.name: 'concat' cannot contain itself")
        if part["name"] not in FEATURES:
            raise ConfigError(f"{at}.name: unknown feature extractor {part['name']!r}; expected one of: "
                              f"{', '.join(FEATURES.names())}")
        pre = part.get("preprocess")
        if pre is not None and not isinstance(pre, dict):
            raise ConfigError(f"{at}.preprocess: expected a mapping of preprocess settings, got {pre!r}")
        check_extractor_params(part["name"], part.get("params"), f"{at}.params")


def check_input_params(kind: str, params: dict | None, where: str = "features.params") -> None:
    """Refuse ``params`` that input builder ``kind`` does not take, naming the key."""
    from mekit.registry import check_params

    check_params(get_input_builder(kind), dict(params or {}), where, f"model input builder {kind!r}", _PASSED)


def get_extractor(name: str):
    return _resolve(FEATURES.get(name))


def get_input_builder(kind: str):
    return _resolve(INPUTS.get(kind))


# the planner imports nothing heavy at import time (the pipeline is imported when it runs)
from mekit.features.planning import Need, plan_preprocessing, preprocess_needs, preprocessed_for  # noqa: E402

__all__ = ["FEATURES", "INPUTS", "Need", "check_extractor_params", "check_input_params", "get_extractor",
           "get_input_builder", "plan_preprocessing", "preprocess_needs", "preprocessed_for"]
