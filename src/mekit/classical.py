"""Classical pipelines on scikit-learn's estimator API.

scaler -> optional PCA -> optional resampler (imbalanced-learn, fitted on the training part
only, inside the pipeline) -> classifier. Hyper-parameters named in ``grid`` are chosen by
an inner subject-grouped cross-validation on the TRAINING subjects of each fold: the
held-out subjects never influence a choice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mekit.errors import ConfigError
from mekit.registry import Registry

CLASSIFIERS: Registry[Any] = Registry("classifier")


def _logreg(class_weight=None, seed=0, **kw):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=kw.pop("max_iter", 5000), class_weight=class_weight, random_state=seed, **kw)


def _svm(class_weight=None, seed=0, **kw):
    return SoftmaxSVC(class_weight=class_weight, random_state=seed, **kw)


def _rf(class_weight=None, seed=0, **kw):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(class_weight=class_weight, random_state=seed, n_jobs=1,
                                  **{"n_estimators": 300, **kw})


def _gbm(class_weight=None, seed=0, **kw):
    from lightgbm import LGBMClassifier

    return LGBMClassifier(class_weight=class_weight, random_state=seed, verbose=-1, n_jobs=1,
                          **{"n_estimators": 200, "learning_rate": 0.05, **kw})


def _sk_bases():
    from sklearn.base import BaseEstimator, ClassifierMixin

    return ClassifierMixin, BaseEstimator


class SoftmaxSVC(*_sk_bases()):
    """An SVM whose class scores are a softmax of its one-vs-rest margins.

    SVC(probability=True) is deprecated in scikit-learn 1.9, and calibrating with an inner CV
    fails on the tiny per-class counts of LOSO folds. The softmax of margins is not a calibrated
    probability, but its argmax is the SVM's own decision, which is what the metrics score.
    """

    def __init__(self, C: float = 1.0, kernel: str = "linear", gamma: Any = "scale",
                 class_weight: Any = None, random_state: int = 0) -> None:
        self.C, self.kernel, self.gamma, self.class_weight, self.random_state = C, kernel, gamma, class_weight, random_state

    def fit(self, X, y):
        from sklearn.svm import SVC

        self.svc_ = SVC(C=self.C, kernel=self.kernel, gamma=self.gamma, class_weight=self.class_weight,
                        decision_function_shape="ovr", random_state=self.random_state).fit(X, y)
        self.classes_ = self.svc_.classes_
        return self

    def predict_proba(self, X):
        d = self.svc_.decision_function(X)
        if d.ndim == 1:  # binary: one margin, positive for classes_[1]
            d = np.stack([-d, d], axis=1) / 2.0
        e = np.exp(d - d.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(1)]


class FlamlClassifier(*_sk_bases()):
    """FLAML AutoML as a scikit-learn classifier.

    FLAML searches learners and hyper-parameters with its own cross-validation; it is given
    the training subjects as groups (``split_type="group"``) so its inner folds never split a
    subject, and it never sees the held-out fold (it is fitted inside a fold like any step).
    """

    # xgboost is left out of the default search: it refuses inner folds that miss a class
    # ("Expected [0 1 2], got [0 1 3]"), which LOSO on small corpora produces routinely.
    def __init__(self, time_budget: float = 30.0, metric: str = "macro_f1",
                 estimator_list: Any = ("lgbm", "rf", "extra_tree"),
                 n_splits: int = 5, class_weight=None, seed: int = 0, **kw: Any) -> None:
        self.time_budget, self.metric, self.estimator_list = time_budget, metric, estimator_list
        self.n_splits, self.class_weight, self.seed, self.kw = n_splits, class_weight, seed, kw

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"time_budget": self.time_budget, "metric": self.metric, "estimator_list": self.estimator_list,
                "n_splits": self.n_splits, "class_weight": self.class_weight, "seed": self.seed, **self.kw}

    def set_params(self, **p: Any) -> FlamlClassifier:
        for k, v in p.items():
            setattr(self, k, v)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "automl_")

    def fit(self, X, y, groups=None):
        import logging as _logging

        from flaml import AutoML

        _logging.getLogger("flaml.automl.logger").setLevel(_logging.WARNING)
        self.automl_ = AutoML()
        split = {}
        if groups is not None and len(groups) == len(y) and len(np.unique(groups)) >= 2:
            split = {"groups": np.asarray(groups), "split_type": "group", "eval_method": "cv",
                     "n_splits": min(self.n_splits, len(np.unique(groups)))}
        if self.class_weight is not None:  # FLAML has no class_weight; it takes per-sample weights
            from sklearn.utils.class_weight import compute_sample_weight

            split["sample_weight"] = compute_sample_weight(self.class_weight, np.asarray(y))
        self.automl_.fit(np.asarray(X), np.asarray(y), task="classification", metric=self.metric,
                         time_budget=self.time_budget, estimator_list=list(self.estimator_list)
                         if not isinstance(self.estimator_list, str) else self.estimator_list, seed=self.seed,
                         verbose=0, n_jobs=1, **split, **self.kw)
        self.classes_ = np.asarray(self.automl_.classes_)
        return self

    def predict_proba(self, X):
        return self.automl_.predict_proba(np.asarray(X))

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(1)]


def _flaml(class_weight=None, seed=0, **kw):
    return FlamlClassifier(class_weight=class_weight, seed=seed, **kw)


CLASSIFIERS.add("logreg", _logreg, help="logistic regression", grid={"C": [0.01, 0.1, 1.0, 10.0]})
CLASSIFIERS.add("svm", _svm, help="support vector machine (linear by default); scores via softmax of margins",
                grid={"C": [0.01, 0.1, 1.0, 10.0]})
CLASSIFIERS.add("random_forest", _rf, help="random forest", grid={})
CLASSIFIERS.add("gbm", _gbm, help="LightGBM gradient boosting", grid={})
CLASSIFIERS.add("flaml", _flaml, help="FLAML AutoML (subject-grouped inner CV; time_budget seconds per fold)",
                grid={}, groups=True)


def build_pipeline(classifier: str = "logreg", class_weight: str | dict | None = "balanced",
                   pca: int | float | None = None, sampler: str | None = None,
                   sampler_params: dict | None = None, seed: int = 0, **clf_params: Any):
    """An (imbalanced-learn) Pipeline; the sampler only ever resamples the data ``fit`` sees."""
    from imblearn.pipeline import Pipeline
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    steps: list[tuple[str, Any]] = [("scale", StandardScaler())]
    if pca:
        steps.append(("pca", PCA(n_components=pca, random_state=seed)))
    if sampler:
        from mekit.imbalance import get_sampler

        steps.append(("resample", get_sampler(sampler, seed=seed, **(sampler_params or {}))))
    steps.append(("clf", CLASSIFIERS.get(classifier)(class_weight=class_weight, seed=seed, **clf_params)))
    return Pipeline(steps)


class ClassicalModel:
    """A classical pipeline with inner grouped-CV model selection on the training subjects.

    ``params``: classifier name (``classifier``), ``pca``, ``grid`` (e.g. ``{"C": [0.1, 1]}``;
    defaults to the classifier's registered grid; ``{}`` for none), ``inner_folds`` (default 5)
    and any fixed classifier parameter.
    """

    def __init__(self, classifier: str = "logreg", class_weight: str | dict | None = "balanced",
                 pca: int | float | None = None, sampler: str | None = None,
                 sampler_params: dict | None = None, grid: dict | None = None, inner_folds: int = 5,
                 seed: int = 0, **clf_params: Any) -> None:
        if classifier not in CLASSIFIERS:
            CLASSIFIERS.get(classifier)  # raises a ConfigError naming the choices
        self.classifier = classifier
        self.kw = dict(class_weight=class_weight, pca=pca, sampler=sampler, sampler_params=sampler_params,
                       seed=seed, **clf_params)
        self.grid = CLASSIFIERS.meta(classifier).get("grid", {}) if grid is None else dict(grid)
        self.inner_folds = int(inner_folds)
        self.seed = seed
        self.selection_: dict[str, Any] = {}

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> ClassicalModel:
        from sklearn.model_selection import GridSearchCV, GroupKFold

        pipe = build_pipeline(self.classifier, **self.kw)
        n_groups = len(np.unique(groups))
        if self.grid and n_groups >= 2 and len(np.unique(y)) > 1:
            prefix = "clf__" + CLASSIFIERS.meta(self.classifier).get("param_prefix", "")
            grid = {f"{prefix}{k}": list(v) for k, v in self.grid.items()}
            cv = GroupKFold(n_splits=min(self.inner_folds, n_groups))
            search = GridSearchCV(pipe, grid, scoring="f1_macro", cv=cv, n_jobs=1, error_score=0.0)
            search.fit(X, y, groups=groups)
            self.model_ = search.best_estimator_
            self.selection_ = {"method": f"inner {cv.get_n_splits()}-fold subject-grouped CV on the "
                                         "training subjects only (macro F1)",
                               "chosen": {k.removeprefix(prefix): v for k, v in search.best_params_.items()}}
        elif CLASSIFIERS.meta(self.classifier).get("groups"):
            self.model_ = pipe.fit(X, y, clf__groups=None if self.kw.get("sampler") else groups)
            self.selection_ = {"method": "FLAML AutoML with subject-grouped inner CV on the training subjects",
                               "chosen": {"learner": pipe.named_steps["clf"].automl_.best_estimator}}
        else:
            self.model_ = pipe.fit(X, y)
            self.selection_ = {"method": "fixed hyper-parameters (no selection)", "chosen": {}}
        self.classes_ = np.asarray(self.model_.classes_)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(X)


def make_classical(params: dict, class_weight, sampler, sampler_params, seed) -> ClassicalModel:
    params = dict(params)
    try:
        return ClassicalModel(class_weight=class_weight, sampler=sampler, sampler_params=sampler_params,
                              seed=seed, **params)
    except TypeError as e:
        raise ConfigError(f"model parameters {params}: {e}") from None
