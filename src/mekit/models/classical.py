"""Classical pipelines on scikit-learn's estimator API (the ``logreg``, ``svm``, ... models).

They live beside the neural families but are not in :data:`mekit.models.MODELS`: their
classifiers are :data:`CLASSIFIERS`, and importing this module imports neither torch nor the
neural families. :mod:`mekit.classical`, their former home, is an alias of this module, so
code and bundles that name the old path keep working.

scaler -> optional PCA -> optional resampler (imbalanced-learn, fitted on the training part
only, inside the pipeline) -> classifier. Hyper-parameters named in ``grid`` are chosen by
an inner subject-grouped cross-validation on the TRAINING subjects of each fold: the
held-out subjects never influence a choice.

A hyper-parameter given a fixed value in ``model.params`` is not searched: the classifier's
registered grid drops it (``model.params.C: 0.5`` with logreg fits C = 0.5 and searches
nothing). A ``grid`` written in the config that also searches a fixed parameter contradicts
itself and is refused. :func:`check_classical_params` checks every key and value against the
classifier's own parameters when the config is loaded.
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


# Meta of each classifier: ``grid`` (searched by default), ``estimator`` (the class whose keyword
# arguments model.params may fix), ``constraints`` (the scikit-learn class whose parameter
# constraints judge the values, where that is another class) and ``fixed`` (keywords the builder
# sets itself, with the reason).
_N_JOBS = "fixed at 1: folds run in parallel with protocol.workers instead"
CLASSIFIERS.add("logreg", _logreg, help="logistic regression", grid={"C": [0.01, 0.1, 1.0, 10.0]},
                estimator="sklearn.linear_model:LogisticRegression")
CLASSIFIERS.add("svm", _svm, help="support vector machine (linear by default); scores via softmax of margins",
                grid={"C": [0.01, 0.1, 1.0, 10.0]}, estimator=SoftmaxSVC, constraints="sklearn.svm:SVC")
CLASSIFIERS.add("random_forest", _rf, help="random forest", grid={},
                estimator="sklearn.ensemble:RandomForestClassifier", fixed={"n_jobs": _N_JOBS})
# LightGBM also takes native parameter names and aliases through **kwargs; they are refused
# here, so a misspelt name fails at load time instead of being a LightGBM warning mid-run
# (every setting has a name in LGBMClassifier's own signature).
CLASSIFIERS.add("gbm", _gbm, help="LightGBM gradient boosting", grid={}, estimator="lightgbm:LGBMClassifier",
                fixed={"n_jobs": _N_JOBS}, closed=True)
# FLAML's extra keywords go to AutoML.fit, whose settings are many and version-dependent: they
# pass unchecked, except the ones FlamlClassifier.fit sets itself.
CLASSIFIERS.add("flaml", _flaml, help="FLAML AutoML (subject-grouped inner CV; time_budget seconds per fold)",
                grid={}, groups=True, estimator=FlamlClassifier,
                fixed={k: "set by mekit's FLAML wrapper" for k in ("task", "verbose", "n_jobs", "groups", "split_type",
                                                                    "eval_method", "sample_weight")})

#: model.params keys that belong to other config keys, with where they are set
_SET_ELSEWHERE = {"classifier": "the classifier is model.name",
                  "class_weight": "set by imbalance.class_weight",
                  "sampler": "set by imbalance.sampler",
                  "sampler_params": "set by imbalance.sampler_params",
                  "seed": "set by the config's seed and protocol.seeds",
                  "random_state": "set by the config's seed and protocol.seeds"}


def _estimator_params(name: str) -> tuple[Any, dict[str, str], bool]:
    """(class, reserved keywords with reasons, closed) of classifier ``name``."""
    from mekit.registry import resolve

    meta = CLASSIFIERS.meta(name)
    return resolve(meta["estimator"]), {**_SET_ELSEWHERE, **meta.get("fixed", {})}, bool(meta.get("closed"))


def _check_value(name: str, key: str, value: Any, where: str) -> None:
    """Judge one value by scikit-learn's own parameter constraints, where the class has them
    (``C: abc`` -> "The 'C' parameter of LogisticRegression must be a float in the range ...")."""
    from mekit.registry import resolve

    meta = CLASSIFIERS.meta(name)
    cls = resolve(meta.get("constraints", meta["estimator"]))
    if key not in getattr(cls, "_parameter_constraints", {}) or not hasattr(cls, "_validate_params"):
        return
    try:
        cls(**{key: value})._validate_params()
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None


def check_classifier_params(name: str, params: dict[str, Any], where: str = "model.params") -> None:
    """Refuse fixed classifier parameters ``name`` does not take, or values it would reject."""
    from mekit.registry import check_params, keyword_parameters

    est, reserved, closed = _estimator_params(name)
    accepted, _ = keyword_parameters(est)
    if closed:
        unknown = [k for k in params if k not in accepted and k not in reserved]
        if unknown:
            settable = sorted(k for k in accepted if k not in reserved)
            raise ConfigError(f"{where}.{unknown[0]}: unknown parameter of classifier {name!r}; "
                              f"expected some of {settable}")
    check_params(est, params, where, f"classifier {name!r}", reserved)
    for key, value in params.items():
        _check_value(name, key, value, f"{where}.{key}")


def check_classical_params(classifier: str, params: dict[str, Any] | None, where: str = "model.params") -> None:
    """Check the ``model.params`` of a classical pipeline: its own keys (``pca``, ``grid``,
    ``inner_folds``) and every fixed or searched classifier parameter, naming the key."""
    CLASSIFIERS.get(classifier)
    params = dict(params or {})
    for key, why in _SET_ELSEWHERE.items():
        if key in params:
            raise ConfigError(f"{where}.{key}: not a parameter to set here ({why})")
    pca = params.pop("pca", None)
    if pca is not None and (isinstance(pca, bool) or not (isinstance(pca, int) and pca >= 1 or
                                                          isinstance(pca, float) and 0 < pca < 1)):
        raise ConfigError(f"{where}.pca: expected a number of components (an integer of at least 1) or a share "
                          f"of variance between 0 and 1, got {pca!r}")
    if "inner_folds" in params:
        k = params.pop("inner_folds")
        if isinstance(k, bool) or not isinstance(k, int) or k < 2:
            raise ConfigError(f"{where}.inner_folds: expected an integer of at least 2, got {k!r}")
    grid = params.pop("grid", None)
    check_classifier_params(classifier, params, where)
    if grid is None:
        return
    if not isinstance(grid, dict):
        raise ConfigError(f"{where}.grid: expected a mapping parameter -> list of values, got {grid!r}")
    both = sorted(set(grid) & set(params))
    if both:
        raise ConfigError(f"{where}.grid.{both[0]}: also fixed by {where}.{both[0]}; a fixed value is never "
                          "searched, so give either the fixed value or the grid")
    for key, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"{where}.grid.{key}: expected a non-empty list of values to search, got {values!r}")
        for v in values:
            check_classifier_params(classifier, {key: v}, f"{where}.grid")


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
        if grid is None:
            # a value fixed in model.params wins: the registered grid does not search it
            self.grid = {k: v for k, v in CLASSIFIERS.meta(classifier).get("grid", {}).items() if k not in clf_params}
        else:
            both = sorted(set(grid) & set(clf_params))
            if both:
                raise ConfigError(f"model.params.grid.{both[0]}: also fixed by model.params.{both[0]}; a fixed "
                                  "value is never searched, so give either the fixed value or the grid")
            self.grid = dict(grid)
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
    """A ClassicalModel from ``{"classifier": name, **model.params}``; bad parameters raise a
    ConfigError naming the key (the same check as at load time, for configs built in code)."""
    params = dict(params)
    name = params.pop("classifier", "logreg")
    check_classical_params(name, params)
    params["classifier"] = name
    try:
        return ClassicalModel(class_weight=class_weight, sampler=sampler, sampler_params=sampler_params,
                              seed=seed, **params)
    except TypeError as e:
        raise ConfigError(f"model parameters {params}: {e}") from None
