"""The result type every feature extractor returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FeatureSet:
    sample_ids: list[str]
    X: np.ndarray
    skipped: dict[str, str] = field(default_factory=dict)
    names: list[str] | None = None

    def take(self, ids) -> np.ndarray:
        """Rows for ``ids`` in that order (keyed by sample id, never by position)."""
        pos = {s: i for i, s in enumerate(self.sample_ids)}
        return self.X[[pos[s] for s in ids]]
