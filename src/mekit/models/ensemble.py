"""Late fusion of several fitted models' class probabilities: the combiners of ``model: ensemble``.

An ensemble config names members (each a whole recipe: features and model) and a combiner;
:mod:`mekit.tasks.recipes` fits the members inside a fold. A combiner that learns something
(weights, a stacker) learns it from *out-of-fold* probabilities: each member's predictions on
the training subjects of the fold, made by members fitted in an inner subject-grouped CV on
those training subjects only. The held-out subjects' probabilities are only combined.

Combiners are registered (:data:`COMBINERS`) and answer ``fit(oof, y, n_classes, seed)`` then
``combine(probas)``, where ``oof`` and ``probas`` are lists with one ``[n, n_classes]`` array
per member (rows summing to 1) and ``y`` holds class indices.

- ``mean``: the plain average (nothing learned; no inner CV is run).
- ``weights``: a convex combination; the weights are searched on a grid over the simplex (step
  ``step``, 0.1 by default: 66 points for three members) for the best pooled UF1 of the
  out-of-fold predictions. Ties go to the point nearest the uniform weights, so a member is
  dropped only when that helps the training subjects' score.
- ``stacker``: class-balanced multinomial logistic regression (C = 1) on the members'
  out-of-fold log-probabilities, as in stacked generalisation (Wolpert 1992).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from mekit.registry import Registry

#: the model name of a late-fusion ensemble in a config (``model.name: ensemble``)
ENSEMBLE = "ensemble"

COMBINERS: Registry[type] = Registry("ensemble combiner")

_EPS = 1e-6


def pooled_uf1(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Macro F1 over the classes present in ``y`` (the MEGC UF1), from class indices."""
    f1 = []
    for c in range(n_classes):
        tp = int(np.sum((pred == c) & (y == c)))
        fp = int(np.sum((pred == c) & (y != c)))
        fn = int(np.sum((pred != c) & (y == c)))
        if tp + fn == 0:
            continue
        f1.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(f1)) if f1 else 0.0


@COMBINERS.register("mean", help="plain average of the members' probabilities (nothing learned)")
class MeanCombiner:
    learns = False

    def __init__(self) -> None:
        self.selection_: dict[str, Any] = {}

    def fit(self, oof: list[np.ndarray], y: np.ndarray, n_classes: int, seed: int = 0) -> MeanCombiner:
        return self

    def combine(self, probas: list[np.ndarray]) -> np.ndarray:
        return np.mean(probas, axis=0)


@COMBINERS.register("weights", help="convex weights searched on the simplex for the best out-of-fold UF1")
class WeightCombiner:
    learns = True

    def __init__(self, step: float = 0.1) -> None:
        self.step = float(step)
        self.selection_: dict[str, Any] = {}

    def fit(self, oof: list[np.ndarray], y: np.ndarray, n_classes: int, seed: int = 0) -> WeightCombiner:
        m = len(oof)
        n = max(1, int(round(1 / self.step)))
        stack = np.stack(oof)  # [members, samples, classes]
        best: tuple[float, float, tuple[float, ...]] | None = None
        for parts in itertools.product(range(n + 1), repeat=m - 1):
            if sum(parts) > n:
                continue
            w = np.array([*parts, n - sum(parts)], dtype=float) / n
            score = pooled_uf1(y, np.tensordot(w, stack, axes=1).argmax(1), n_classes)
            spread = float(np.abs(w - 1 / m).sum())
            key = (score, -spread)
            if best is None or key > best[:2]:
                best = (score, -spread, tuple(w))
        assert best is not None
        self.weights_ = np.array(best[2])
        self.selection_ = {"weights": [round(float(v), 3) for v in self.weights_], "inner_uf1": round(best[0], 4)}
        return self

    def combine(self, probas: list[np.ndarray]) -> np.ndarray:
        return np.tensordot(self.weights_, np.stack(probas), axes=1)


@COMBINERS.register("stacker", help="class-balanced logistic regression on the members' out-of-fold log-probabilities")
class StackCombiner:
    learns = True

    def __init__(self, C: float = 1.0) -> None:
        self.C = float(C)
        self.selection_: dict[str, Any] = {}

    @staticmethod
    def _x(probas: list[np.ndarray]) -> np.ndarray:
        return np.hstack([np.log(np.clip(p, _EPS, 1.0)) for p in probas])

    def fit(self, oof: list[np.ndarray], y: np.ndarray, n_classes: int, seed: int = 0) -> StackCombiner:
        from sklearn.linear_model import LogisticRegression

        self.n_classes_ = n_classes
        self.model_ = LogisticRegression(C=self.C, class_weight="balanced", max_iter=2000, random_state=seed)
        self.model_.fit(self._x(oof), y)
        self.selection_ = {"stacker": f"logistic regression C={self.C:g} on {len(oof)} members"}
        return self

    def combine(self, probas: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(probas[0]), self.n_classes_))
        out[:, self.model_.classes_] = self.model_.predict_proba(self._x(probas))
        return out


def make_combiner(name: str, **params: Any) -> Any:
    return COMBINERS.get(name)(**params)
