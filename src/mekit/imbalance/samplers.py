"""Resamplers in the imbalanced-learn style, fitted on the training part of a fold only.

Conventions (imbalanced-learn's ``imblearn/base.py``): ``__init__`` only stores its
keyword arguments (so scikit-learn's ``clone``/``get_params`` work and a sampler can sit
inside an ``imblearn.pipeline.Pipeline``); the public :meth:`BaseSampler.fit_resample`
validates once and calls a private ``_fit_resample``; fitted attributes end in ``_``.

Index samplers (``random_over``, ``random_under``, ``class_balanced``) expose
``sample_indices_``, the rows of the input that make up the output, so a torch data loader
can resample a training set by index without touching pixels: pass ``X=None`` (or sample
ids) with the training labels. Feature-space samplers (``smote``, ``borderline_smote``,
``adasyn``, ``smoteenn``) wrap imbalanced-learn and create synthetic rows that have no
source index: they have no ``sample_indices_`` and need a 2-D numeric ``X``.

``target`` says how many samples each class should end with:
``"auto"`` (over-samplers: every class up to the majority count; under-samplers: every
class down to the minority count), ``"median"`` (up to -- or down to -- the median class
count, the compromise used in published MER ablations that found full balancing of
CASME II's long tail over-fits), an int (every class to at least / at most that count), or
a mapping class -> count.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from mekit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

Target = str | int | Mapping[Any, int]


def target_counts(counts: Mapping[Any, int], target: Target, direction: str) -> dict[Any, int]:
    """Desired count per class for ``direction`` "over" (only raises counts) or "under"
    (only lowers them)."""
    values = np.array(list(counts.values()))
    if isinstance(target, Mapping):
        unknown = [c for c in target if c not in counts]
        if unknown:
            raise ConfigError(f"target counts given for classes {unknown} absent from the training labels")
        out = {c: int(target.get(c, n)) for c, n in counts.items()}
        wrong = [c for c, n in counts.items() if (out[c] < n if direction == "over" else out[c] > n)]
        if wrong:
            verb = "below" if direction == "over" else "above"
            raise ConfigError(f"{direction}-sampling cannot set classes {wrong} {verb} their current count "
                              f"({ {c: counts[c] for c in wrong} })")
        return out
    if isinstance(target, str):
        if target == "auto":
            level = int(values.max() if direction == "over" else values.min())
        elif target == "median":
            level = int(np.round(np.median(values)))
        else:
            raise ConfigError(f"target {target!r} is not 'auto', 'median', an int or a mapping class -> count")
    elif isinstance(target, (int, np.integer)) and not isinstance(target, bool) and target > 0:
        level = int(target)
    else:
        raise ConfigError(f"target {target!r} is not 'auto', 'median', a positive int or a mapping class -> count")
    pick = max if direction == "over" else min
    return {c: pick(int(n), level) for c, n in counts.items()}


class BaseSampler(BaseEstimator):
    """Validate once, then ``_fit_resample``; index samplers fill ``sample_indices_``."""

    #: whether output rows map to input rows (``sample_indices_``)
    provides_indices = True
    #: whether the output class counts equal ``target_counts_`` exactly
    exact_counts = True

    def _validate(self, X: Any, y: Any) -> tuple[Any, np.ndarray]:
        y_arr = np.asarray(y)
        if y_arr.ndim != 1 or y_arr.size == 0:
            raise DataError("resampling needs a non-empty 1-D array of training labels", value=y_arr.shape)
        if y_arr.dtype.kind == "f" and np.isnan(y_arr).any():
            raise DataError("training labels contain NaN", value=int(np.isnan(y_arr).sum()),
                            expected="a label for every training sample")
        if X is None:
            X = np.arange(len(y_arr))
        n = X.shape[0] if hasattr(X, "shape") else len(X)
        if n != len(y_arr):
            raise DataError("X and y have different lengths", value=(n, len(y_arr)), expected="one label per row")
        return X, y_arr

    def fit_resample(self, X: Any, y: Any) -> tuple[Any, np.ndarray]:
        """Resample the TRAINING rows ``X`` (array, DataFrame, list of ids or None) and
        labels ``y``; returns ``(X_resampled, y_resampled)``. Inputs are not modified."""
        X, y = self._validate(X, y)
        classes, counts = np.unique(y, return_counts=True)
        self.classes_ = classes
        self.class_counts_ = dict(zip(classes.tolist(), counts.tolist()))
        return self._fit_resample(X, y)

    def fit(self, X: Any, y: Any) -> BaseSampler:
        self.fit_resample(X, y)
        return self

    def _fit_resample(self, X: Any, y: np.ndarray) -> tuple[Any, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _take(self, X: Any, y: np.ndarray, idx: np.ndarray) -> tuple[Any, np.ndarray]:
        self.sample_indices_ = idx
        if hasattr(X, "iloc"):
            return X.iloc[idx], y[idx]
        if isinstance(X, (list, tuple)):
            return [X[i] for i in idx], y[idx]
        return np.asarray(X)[idx], y[idx]


class RandomOverSampler(BaseSampler):
    """Duplicate random rows of each class (with replacement) up to its target count.

    ``sample_indices_``: every original row once, in order, then the drawn duplicates."""

    def __init__(self, target: Target = "auto", random_state: int | None = None) -> None:
        self.target = target
        self.random_state = random_state

    def _fit_resample(self, X: Any, y: np.ndarray) -> tuple[Any, np.ndarray]:
        self.target_counts_ = target_counts(self.class_counts_, self.target, "over")
        rng = np.random.default_rng(self.random_state)
        extra = []
        for c in self.classes_.tolist():
            rows = np.flatnonzero(y == c)
            need = self.target_counts_[c] - len(rows)
            if need > 0:
                extra.append(rng.choice(rows, size=need, replace=True))
        idx = np.concatenate([np.arange(len(y)), *extra]).astype(np.int64)
        return self._take(X, y, idx)


class RandomUnderSampler(BaseSampler):
    """Keep a random subset of each class (without replacement) of its target count.

    ``sample_indices_`` are sorted, so the kept rows stay in their original order."""

    def __init__(self, target: Target = "auto", random_state: int | None = None) -> None:
        self.target = target
        self.random_state = random_state

    def _fit_resample(self, X: Any, y: np.ndarray) -> tuple[Any, np.ndarray]:
        self.target_counts_ = target_counts(self.class_counts_, self.target, "under")
        rng = np.random.default_rng(self.random_state)
        keep = [rng.choice(np.flatnonzero(y == c), size=self.target_counts_[c], replace=False)
                for c in self.classes_.tolist()]
        return self._take(X, y, np.sort(np.concatenate(keep)).astype(np.int64))


class ClassBalancedSampler(BaseSampler):
    """Draw indices with probability proportional to ``1 / count(class) ** power``.

    Usable directly as the ``sampler`` of a ``torch.utils.data.DataLoader`` (it iterates
    indices and has a length): ``DataLoader(train_set, sampler=ClassBalancedSampler(
    random_state=0).fit(None, y_train))``. Every iteration is one epoch, drawn from a
    generator seeded by ``(random_state, epoch)``; the epoch advances after each pass
    (or is set with :meth:`set_epoch`), so runs are reproducible and epochs differ.
    ``fit_resample`` returns the draw of epoch 0. ``power=1`` gives every class the same
    expected share; ``power=0.5`` is square-root sampling.
    """

    exact_counts = False

    def __init__(self, num_samples: int | None = None, replacement: bool = True, power: float = 1.0,
                 random_state: int | None = 0) -> None:
        self.num_samples = num_samples
        self.replacement = replacement
        self.power = power
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> ClassBalancedSampler:
        X, y = self._validate(X, y)
        classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
        self.classes_ = classes
        self.class_counts_ = dict(zip(classes.tolist(), counts.tolist()))
        w = 1.0 / counts[inverse].astype(np.float64) ** self.power
        self.weights_ = w / w.sum()
        self.num_samples_ = int(self.num_samples or len(y))
        if not self.replacement and self.num_samples_ > len(y):
            raise ConfigError(f"cannot draw {self.num_samples_} of {len(y)} samples without replacement")
        self.epoch_ = 0
        return self

    def _fit_resample(self, X: Any, y: np.ndarray) -> tuple[Any, np.ndarray]:  # pragma: no cover - unused
        raise NotImplementedError

    def fit_resample(self, X: Any, y: Any) -> tuple[Any, np.ndarray]:
        self.fit(X, y)
        X, y = self._validate(X, y)
        return self._take(X, y, self.draw(0))

    def draw(self, epoch: int) -> np.ndarray:
        """The indices of one epoch (deterministic given ``random_state`` and ``epoch``)."""
        if not hasattr(self, "weights_"):
            raise ConfigError("ClassBalancedSampler is not fitted; call fit(None, y_train) first")
        seed = None if self.random_state is None else [int(self.random_state), int(epoch)]
        rng = np.random.default_rng(seed)
        return rng.choice(len(self.weights_), size=self.num_samples_, replace=self.replacement,
                          p=self.weights_).astype(np.int64)

    def set_epoch(self, epoch: int) -> None:
        self.epoch_ = int(epoch)

    def __iter__(self) -> Iterator[int]:
        idx = self.draw(self.epoch_)
        self.epoch_ += 1
        return iter(idx.tolist())

    def __len__(self) -> int:
        if not hasattr(self, "num_samples_"):
            raise ConfigError("ClassBalancedSampler is not fitted; call fit(None, y_train) first")
        return self.num_samples_


# -- feature-space wrappers around imbalanced-learn -------------------------------------------------
class _ImblearnOverSampler(BaseSampler):
    """Common part: target counts -> an imbalanced-learn sampler on 2-D features."""

    provides_indices = False
    _neighbors_arg = "k_neighbors"

    def __init__(self, target: Target = "auto", k_neighbors: int = 5, random_state: int | None = None,
                 sampler_kwargs: dict[str, Any] | None = None) -> None:
        self.target = target
        self.k_neighbors = k_neighbors
        self.random_state = random_state
        self.sampler_kwargs = sampler_kwargs

    def _make(self, strategy: dict[Any, int], k: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit_resample(self, X: Any, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X)
        if X.ndim != 2 or not np.issubdtype(X.dtype, np.number):
            raise DataError(f"{type(self).__name__} interpolates feature vectors", value=X.shape,
                            expected="a 2-D numeric feature matrix (for images use an index sampler)")
        self.target_counts_ = target_counts(self.class_counts_, self.target, "over")
        strategy = {c: n for c, n in self.target_counts_.items() if n > self.class_counts_[c]}
        if not strategy:
            self.n_synthetic_ = 0
            return X.copy(), y.copy()
        smallest = min(self.class_counts_[c] for c in strategy)
        if smallest < 2:
            small = [c for c in strategy if self.class_counts_[c] < 2]
            raise DataError(f"{type(self).__name__} needs at least 2 training samples in each class it "
                            f"over-samples; classes {small} have 1", expected="an index sampler (random_over)")
        # small MER classes (e.g. 'fear' with 2 clips in a fold) have fewer than k neighbours
        k = min(int(self.k_neighbors), smallest - 1)
        if k < self.k_neighbors:
            log.info("%s: k_neighbors lowered from %d to %d (smallest class to over-sample has %d rows)",
                     type(self).__name__, self.k_neighbors, k, smallest)
        self.k_neighbors_ = k
        self.sampler_ = self._make(strategy, k)
        try:
            X_res, y_res = self.sampler_.fit_resample(X, y)
        except (RuntimeError, ValueError) as e:  # e.g. ADASYN on classes with no overlap
            raise DataError(f"{type(self).__name__} cannot resample these training features: {e}",
                            expected="another sampler (smote, random_over)") from None
        self.n_synthetic_ = len(y_res) - len(y)
        return X_res, y_res


class SMOTESampler(_ImblearnOverSampler):
    """SMOTE (Chawla et al. 2002) via imbalanced-learn: interpolate between a row and one of
    its ``k_neighbors`` nearest same-class neighbours. Output: the input rows, then the
    synthetic ones."""

    def _make(self, strategy, k):
        from imblearn.over_sampling import SMOTE

        return SMOTE(sampling_strategy=strategy, k_neighbors=k, random_state=self.random_state,
                     **(self.sampler_kwargs or {}))


class BorderlineSMOTESampler(_ImblearnOverSampler):
    """Borderline-SMOTE (Han et al. 2005) via imbalanced-learn: SMOTE from the rows near the
    class border only. Where a class has no border rows it gains fewer rows than asked."""

    exact_counts = False

    def _make(self, strategy, k):
        from imblearn.over_sampling import BorderlineSMOTE

        return BorderlineSMOTE(sampling_strategy=strategy, k_neighbors=k, random_state=self.random_state,
                               **(self.sampler_kwargs or {}))


class ADASYNSampler(_ImblearnOverSampler):
    """ADASYN (He et al. 2008) via imbalanced-learn: more synthetic rows where a class is
    harder to learn; counts reach the target only approximately (rounding per row)."""

    exact_counts = False

    def _make(self, strategy, k):
        from imblearn.over_sampling import ADASYN

        return ADASYN(sampling_strategy=strategy, n_neighbors=k, random_state=self.random_state,
                      **(self.sampler_kwargs or {}))


class SMOTEENNSampler(_ImblearnOverSampler):
    """SMOTE followed by Edited Nearest Neighbours cleaning (Batista et al. 2004) via
    imbalanced-learn; the cleaning removes rows, so counts end below the target."""

    exact_counts = False

    def _make(self, strategy, k):
        from imblearn.combine import SMOTEENN
        from imblearn.over_sampling import SMOTE

        smote = SMOTE(sampling_strategy=strategy, k_neighbors=k, random_state=self.random_state)
        return SMOTEENN(smote=smote, random_state=self.random_state, **(self.sampler_kwargs or {}))
