"""Feature extractors for classical pipelines and input builders for neural models.

An extractor takes a SampleTable and the preprocessing config and returns a
:class:`~mekit.features.base.FeatureSet` (sample ids, array, and the ids it skipped with reasons).
Registered by name with the import path of the function, so listing them imports nothing.
"""

from __future__ import annotations

import importlib

from mekit.registry import Registry

#: name -> "module:function"; the function is ``(table, preprocess: dict, progress, **params) -> FeatureSet``.
FEATURES: Registry[str] = Registry("feature extractor")
_E = "mekit.features.extractors"
FEATURES.add("hoof", f"{_E}:hoof_features",
             help="magnitude-weighted histograms of onset->apex flow orientation on a grid + mean strain per cell")
FEATURES.add("hog", f"{_E}:hog_features", help="HOG of the apex face crop (or the image)")
FEATURES.add("lbp_top", f"{_E}:lbp_top_features", help="LBP on three orthogonal planes over sampled frames")
FEATURES.add("frozen_cnn", f"{_E}:frozen_cnn_features",
             help="frozen pretrained CNN embeddings (EfficientNet-Lite0 ImageNet, or a user state dict)")

#: model input kind -> builder (for neural models; see mekit.models INPUT_KINDS)
INPUTS: Registry[str] = Registry("model input")
INPUTS.add("flow", f"{_E}:flow_input")
INPUTS.add("dual_flow", f"{_E}:flow_input")
INPUTS.add("roi_flow", f"{_E}:roi_flow_input")
INPUTS.add("image", f"{_E}:image_input")
INPUTS.add("pair", f"{_E}:pair_input")
INPUTS.add("sequence", f"{_E}:sequence_input")
INPUTS.add("clip3d", f"{_E}:sequence_input")

_C = "mekit.features.combined"
FEATURES.add("flow_descriptors", f"{_C}:flow_descriptors",
             help="HOOF on several grids, onset->apex and apex->offset, strain means/histograms, MDMO in ROIs")
FEATURES.add("concat", f"{_C}:concat_features", help="several registered extractors side by side (params.parts)")
INPUTS.add("hsv_flow", f"{_C}:hsv_flow_input",
           help="onset->apex flow rendered as an HSV colour image (for ImageNet-style CNNs)")


def _resolve(path: str):
    mod, fn = path.split(":")
    return getattr(importlib.import_module(mod), fn)


def get_extractor(name: str):
    return _resolve(FEATURES.get(name))


def get_input_builder(kind: str):
    return _resolve(INPUTS.get(kind))
