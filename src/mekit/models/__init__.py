"""Neural model families behind one contract and one registry.

``build_model(name, num_classes, **options)`` builds any registered family;
``MODELS.meta(name)`` (or :func:`get_data_config`) tells what it consumes: input kind,
sample shape, channels, mean/std and a one-line help. The contract every model answers
(``forward``, ``forward_features``, ``forward_head``, ``reset_classifier``,
``num_features``, the optional intensity head) is documented in :mod:`mekit.models._base`.

Importing this package imports torch and nothing heavier (no torchvision, no timm).
The classical scikit-learn pipelines live in :mod:`mekit.classical` and are not
imported here.
"""

from __future__ import annotations

from mekit.models._base import (INPUT_KINDS, MODELS, MEModel, build_model, check_model_options, count_parameters,
                                get_data_config, load_backbone_weights, register_model)

# one module per family; importing registers it
from mekit.models import compact, ststnet, off_apexnet, resnet, siamese  # noqa: E402,F401,I001
from mekit.models import cnn_lstm, video3d, htnet, efficientnet  # noqa: E402,F401,I001
from mekit.models.efficientnet import frozen_features, resize_for_model  # noqa: E402

__all__ = ["INPUT_KINDS", "MODELS", "MEModel", "build_model", "check_model_options", "count_parameters",
           "frozen_features", "get_data_config", "load_backbone_weights", "register_model", "resize_for_model"]
