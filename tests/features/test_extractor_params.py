"""Values a signature check cannot judge (ranges) are refused by the extractor in one line."""

from __future__ import annotations

import pytest

from mekit.data import load_dataset
from mekit.errors import ConfigError
from mekit.features.extractors import hoof_features


@pytest.mark.parametrize("params", [{"grid": 0}, {"bins": 0}, {"grid": -2}, {"grid": True}])
def test_hoof_grid_and_bins_must_be_positive(params):
    table = load_dataset("synthetic", None, None, n_subjects=2, clips_per_subject=1, size=48)
    with pytest.raises(ConfigError, match=f"features.params.{next(iter(params))}"):
        hoof_features(table, {"detector": "none"}, progress=False, **params)
