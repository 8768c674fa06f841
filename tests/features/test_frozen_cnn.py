"""frozen_cnn embeddings from a run's typed preprocessing settings (the form every run passes)."""

from __future__ import annotations

import numpy as np
import pytest

import mekit.data
from mekit.features.extractors import frozen_cnn_features
from mekit.preprocess.pipeline import PreprocessConfig


@pytest.mark.slow
def test_frozen_cnn_takes_the_typed_preprocessing_config_and_caches():
    table = mekit.data.load_dataset("synthetic", None, None, n_subjects=2, clips_per_subject=2, size=64)
    pre = PreprocessConfig.from_dict({"detector": "none", "size": 64, "landmarks": False, "workers": 1})
    first = frozen_cnn_features(table, pre, size=64, crop_size=48)
    assert first.X.shape[0] == len(table) and np.isfinite(first.X).all()
    # the same settings with another worker count read the same embeddings back
    again = frozen_cnn_features(table, PreprocessConfig.from_dict({**pre.to_dict(), "workers": 2}), size=64,
                                crop_size=48)
    np.testing.assert_array_equal(first.X, again.X)
