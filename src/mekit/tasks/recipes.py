"""Recipes: what a nested search chooses among and what an ensemble combines.

A *recipe* is a whole classification setting (preprocessing, features, model, imbalance
handling); the data, the protocol and the seeds stay the run's. Two parts of a config name
several recipes, each written as a mapping of dotted overrides of the config (the keys
``--set`` takes; a whole section such as ``model: {name: ststnet, params: {epochs: 30}}`` works
too) with an optional ``label``:

- ``search:`` with ``protocol: nested``: the candidates. In every outer fold an inner
  subject-grouped CV on the fold's TRAINING subjects scores each candidate (UF1 pooled over the
  inner folds); the best is refitted on all training subjects of the fold and predicts its
  held-out subjects, which no candidate ever saw. The report lists the recipe each fold chose.
- ``model: {name: ensemble, params: {members: [...], combine: weights}}``: late fusion of the
  members' class probabilities (:mod:`mekit.models.ensemble`); weights or a stacker are learned
  from out-of-fold predictions of an inner subject-grouped CV on the training subjects.

Decisions, each to keep a recipe meaning what it says:

- A recipe that changes ``model.name`` starts from empty ``model.params`` unless it gives them:
  a ``C`` fixed for logistic regression means nothing to an SVM or a network.
- A recipe whose model is a network and that gives no ``features`` reads the network's own
  input when the config's ``features`` names a classical extractor.
- A recipe may not change the data, the protocol, the seeds, the task, the output or the
  compute settings: those define the comparison, not a candidate.
- Ties in the inner score go to the earlier candidate: the order of ``search`` is the prior.
- Inner folds: ``StratifiedGroupKFold`` over the training subjects (k = ``inner_k``, at most the
  number of training subjects), shuffled with the outer fold's seed, so a fold's choice depends
  on nothing but its own training data and seed.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from mekit.config import ExperimentConfig, FeatureConfig, from_dict, set_dotted, to_plain
from mekit.errors import ConfigError, DataError
from mekit.models.ensemble import COMBINERS, ENSEMBLE, make_combiner, pooled_uf1

#: top-level config keys a recipe may not override (see the module docstring)
FIXED_KEYS = ("name", "seed", "task", "data", "protocol", "output", "compute", "intensity", "search")

#: the ensemble's own parameters (``model.params`` of ``model.name: ensemble``)
ENSEMBLE_PARAMS = {"members": "a list of at least two recipes", "combine": f"one of {COMBINERS.names()}",
                   "inner_k": "inner subject-grouped folds (an integer >= 2)",
                   "combine_params": "parameters of the combiner (e.g. step for weights)"}


@dataclass(frozen=True)
class Recipe:
    """One candidate or member: its label, its whole config and, for an ensemble, its members."""

    label: str
    cfg: ExperimentConfig
    members: tuple[Recipe, ...] = ()
    combine: str = "mean"
    combine_params: tuple[tuple[str, Any], ...] = ()
    inner_k: int = 5

    def leaves(self) -> Iterator[Recipe]:
        """The single-model recipes this one fits (itself, or its members)."""
        if self.members:
            for m in self.members:
                yield from m.leaves()
        else:
            yield self


def _default_label(overrides: dict[str, Any]) -> str:
    if not overrides:
        return "base"
    return ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in overrides.items())[:80]


def derive(cfg: ExperimentConfig, spec: Any, where: str) -> tuple[str, ExperimentConfig]:
    """The label and config of recipe ``spec`` (a mapping of dotted overrides) applied to ``cfg``."""
    from mekit.engine.factory import is_neural

    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: {spec!r}; expected a mapping of config keys to values (and an optional label)")
    spec = dict(spec)
    label = spec.pop("label", None)
    if label is not None and (not isinstance(label, str) or not label.strip()):
        raise ConfigError(f"{where}.label: {label!r}; expected a non-empty string")
    for key in spec:
        top = str(key).split(".")[0]
        if top in FIXED_KEYS:
            raise ConfigError(f"{where}.{key}: a recipe may not change {top!r} (the data, protocol, seeds, task, "
                              "output and compute are the run's); give it in the config itself")
    raw = cfg.to_dict()
    raw["search"] = []
    gives = {str(k).split(".")[0] for k in spec}
    gives_params = any(str(k) in ("model", "model.params") or str(k).startswith("model.params.") for k in spec)
    for k, v in spec.items():
        set_dotted(raw, str(k), v)
    model_name = raw["model"].get("name") if isinstance(raw.get("model"), dict) else None
    if model_name != cfg.model.name and not gives_params:
        raw["model"]["params"] = {}
    if "features" not in gives and isinstance(model_name, str) and model_name != ENSEMBLE:
        from mekit.features import INPUTS

        try:
            neural = is_neural(model_name)
        except ConfigError:
            from mekit.models import MODELS
            from mekit.models.classical import CLASSIFIERS

            known = ", ".join([*CLASSIFIERS.names(), *MODELS.names(), ENSEMBLE])
            raise ConfigError(f"{where}.model.name: unknown model {model_name!r}; expected one of: {known}") from None
        if neural and raw["features"]["name"] not in INPUTS:
            raw["features"] = to_plain(FeatureConfig())  # the default: a network reads its own input
    return label or _default_label(spec), from_dict(ExperimentConfig, raw, where)  # errors name where.<key>


def _ensemble(cfg: ExperimentConfig, label: str, where: str, depth: int) -> Recipe:
    params = dict(cfg.model.params)
    unknown = sorted(set(params) - set(ENSEMBLE_PARAMS))
    if unknown:
        raise ConfigError(f"{where}model.params.{unknown[0]}: not a parameter of model ensemble; expected some of "
                          f"{sorted(ENSEMBLE_PARAMS)}")
    members = params.get("members")
    if not isinstance(members, (list, tuple)) or len(members) < 2:
        raise ConfigError(f"{where}model.params.members: {members!r}; expected a list of at least two recipes "
                          "(each a mapping such as {model.name: logreg} or {model: {name: ststnet}})")
    combine = params.get("combine", "weights")
    if combine not in COMBINERS:
        raise ConfigError(f"{where}model.params.combine: {combine!r}; expected one of {COMBINERS.names()}")
    inner_k = params.get("inner_k", 5)
    if isinstance(inner_k, bool) or not isinstance(inner_k, int) or inner_k < 2:
        raise ConfigError(f"{where}model.params.inner_k: {inner_k!r}; expected an integer of at least 2")
    cparams = params.get("combine_params") or {}
    if not isinstance(cparams, dict):
        raise ConfigError(f"{where}model.params.combine_params: {cparams!r}; expected a mapping")
    from mekit.registry import check_params

    check_params(COMBINERS.get(combine), cparams, f"{where}model.params.combine_params", f"combiner {combine!r}")
    base = from_dict(ExperimentConfig, {**cfg.to_dict(), "model": {"name": "logreg", "params": {}}})
    out = []
    for k, spec in enumerate(members):
        at = f"{where}model.params.members[{k}]"
        if not isinstance(spec, dict) or not any(str(key) == "model" or str(key).startswith("model.")
                                                 for key in spec):
            raise ConfigError(f"{at}: {spec!r}; expected a mapping that names the member's model (model.name)")
        m_label, m_cfg = derive(base, spec, at)
        if m_cfg.model.name == ENSEMBLE:
            raise ConfigError(f"{at}.model.name: an ensemble cannot be a member of an ensemble")
        out.append(recipe_of(m_cfg, m_label, f"{at}.", depth + 1))
    labels = [m.label for m in out]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{where}model.params.members: labels {labels} repeat; give each member a distinct label")
    return Recipe(label, cfg, tuple(out), combine, tuple(sorted(cparams.items())), inner_k)


def recipe_of(cfg: ExperimentConfig, label: str, where: str = "", depth: int = 0) -> Recipe:
    """``cfg`` as a recipe (an ensemble's members resolved), checked as a run would check it."""
    if cfg.model.name == ENSEMBLE:
        return _ensemble(cfg, label, where, depth)
    from mekit.evaluation.validate import validate_recipe

    try:
        validate_recipe(cfg)
    except ConfigError as e:
        raise ConfigError(f"{where}{e}" if where else str(e)) from None
    return Recipe(label, cfg)


def candidates(cfg: ExperimentConfig) -> list[Recipe]:
    """The recipes of ``cfg.search`` (each checked, labels distinct)."""
    out = []
    for k, spec in enumerate(cfg.search):
        label, c = derive(cfg, spec, f"search[{k}]")
        out.append(recipe_of(c, label, f"search[{k}]: "))
    labels = [r.label for r in out]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"search: labels {labels} repeat; give each candidate a distinct label")
    return out


def plan(cfg: ExperimentConfig) -> tuple[Recipe, ...] | None:
    """The recipes a run fits: its search candidates (protocol nested), its ensemble as one
    recipe, or None for a plain single-model config (which runs exactly as before)."""
    if cfg.search:
        return tuple(candidates(cfg))
    if cfg.model.name == ENSEMBLE:
        return (recipe_of(cfg, cfg.name),)
    return None


def check(cfg: ExperimentConfig) -> None:
    """Refuse a ``search`` without ``protocol: nested`` (nothing would read it) and the reverse."""
    if cfg.protocol.name == "nested" and not cfg.search:
        raise ConfigError("protocol.name: nested chooses among the recipes listed under search, and the config "
                          "has none; add search: [{label: a, model.name: logreg}, {label: b, ...}]")
    if cfg.search and cfg.protocol.name != "nested":
        raise ConfigError(f"search: read only by protocol nested (protocol is {cfg.protocol.name!r}); set "
                          f"protocol: {{name: nested, params: {{outer: {cfg.protocol.name}}}}} or remove search")
    if cfg.search and cfg.task != "classification":
        raise ConfigError(f"search: nested selection is available for task classification, not {cfg.task!r}")
    plan(cfg)


def is_neural_recipe(recipe: Recipe) -> bool:
    from mekit.engine.factory import is_neural

    return any(is_neural(leaf.cfg.model.name) for leaf in recipe.leaves())


def input_key(cfg: ExperimentConfig) -> str:
    """Recipes with the same key read the same inputs (built once per run)."""
    from mekit.engine.factory import input_name, is_neural

    model = None
    if is_neural(cfg.model.name):
        from mekit.models import MODELS

        meta = MODELS.meta(cfg.model.name)
        model = [meta["input"], list(meta.get("mean", ())), list(meta.get("std", ()))]
    return json.dumps([input_name(cfg), cfg.features.params, cfg.to_dict()["preprocess"], model],
                      sort_keys=True, default=str)


# -- fitting inside one outer fold ---------------------------------------------------------------

#: ``fit_leaf(cfg, train_ids, test_ids) -> (probabilities [len(test), n_classes], selection)``
FitLeaf = Callable[[ExperimentConfig, list[str], list[str]], tuple[np.ndarray, dict[str, Any]]]


@dataclass(frozen=True)
class FoldData:
    """What recipes need to know about the samples of a fold besides their inputs."""

    labels: dict[str, str]
    subjects: dict[str, str]
    classes: tuple[str, ...]
    seed: int


def inner_splits(ids: list[str], data: FoldData, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Subject-grouped, class-stratified inner folds over ``ids`` (the training part of a fold)."""
    from sklearn.model_selection import StratifiedGroupKFold

    groups = np.array([data.subjects[s] for s in ids])
    n_groups = len(set(groups))
    if n_groups < 2:
        raise DataError(f"inner cross-validation needs at least two training subjects, found {n_groups}")
    y = np.array([data.labels[s] for s in ids])
    splitter = StratifiedGroupKFold(n_splits=min(k, n_groups), shuffle=True, random_state=data.seed)
    with warnings.catch_warnings():  # "the least populated class has only n members": expected here
        warnings.simplefilter("ignore", UserWarning)
        return [(tr, va) for tr, va in splitter.split(np.zeros(len(ids)), y, groups)]


def _y(ids: list[str], data: FoldData) -> np.ndarray:
    return np.array([data.classes.index(data.labels[s]) for s in ids])


def out_of_fold(recipe: Recipe, fit_leaf: FitLeaf, ids: list[str], data: FoldData,
                splits: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """``recipe``'s probabilities for every sample of ``ids``, each predicted by a copy fitted on
    the other inner folds (never on its own subject)."""
    oof = np.zeros((len(ids), len(data.classes)))
    for tr, va in splits:
        proba, _ = fit_predict(recipe, fit_leaf, [ids[i] for i in tr], [ids[i] for i in va], data)
        oof[va] = proba
    return oof


def fit_predict(recipe: Recipe, fit_leaf: FitLeaf, train: list[str], test: list[str],
                data: FoldData) -> tuple[np.ndarray, dict[str, Any]]:
    """Fit ``recipe`` on ``train`` and return its probabilities for ``test`` and its selection."""
    if not recipe.members:
        return fit_leaf(recipe.cfg, train, test)
    combiner = make_combiner(recipe.combine, **dict(recipe.combine_params))
    inner = "no inner CV (nothing learned)"
    if combiner.learns:
        splits = inner_splits(train, data, recipe.inner_k)
        oof = [out_of_fold(m, fit_leaf, train, data, splits) for m in recipe.members]
        combiner.fit(oof, _y(train, data), len(data.classes), data.seed)
        inner = f"learned on out-of-fold predictions of an inner {len(splits)}-fold subject-grouped CV on the " \
                "training subjects only"
    probas, members = [], {}
    for m in recipe.members:
        p, sel = fit_predict(m, fit_leaf, train, test, data)
        probas.append(p)
        sel.pop("history", None)
        members[m.label] = sel
    sel = {"method": f"ensemble of {len(recipe.members)} members, combiner {recipe.combine} ({inner})",
           "chosen": {"combine": recipe.combine, **{k: json.dumps(v) if isinstance(v, list) else v
                                                    for k, v in combiner.selection_.items()}},
           "members": members}
    return combiner.combine(probas), sel


def choose(recipes: tuple[Recipe, ...], fit_leaf: FitLeaf, train: list[str], data: FoldData,
           inner_k: int) -> tuple[int, dict[str, float], int]:
    """The index of the recipe with the best inner UF1 on ``train`` (ties: the earlier), every
    recipe's inner score, and the number of inner folds. Only ``train`` is ever fitted or scored."""
    splits = inner_splits(train, data, inner_k)
    y = _y(train, data)
    scores: dict[str, float] = {}
    best, best_score = 0, -1.0
    for i, r in enumerate(recipes):
        oof = out_of_fold(r, fit_leaf, train, data, splits)
        score = pooled_uf1(y, oof.argmax(1), len(data.classes))
        scores[r.label] = round(score, 4)
        if score > best_score + 1e-12:
            best, best_score = i, score
    return best, scores, len(splits)


def nested_fit_predict(recipes: tuple[Recipe, ...], fit_leaf: FitLeaf, train: list[str], test: list[str],
                       data: FoldData, inner_k: int) -> tuple[np.ndarray, dict[str, Any]]:
    """One outer fold of ``protocol: nested``: choose on ``train``, refit the winner on all of
    ``train``, predict ``test``."""
    best, scores, k = choose(recipes, fit_leaf, train, data, inner_k)
    proba, sel = fit_predict(recipes[best], fit_leaf, train, test, data)
    sel.pop("history", None)
    return proba, {"method": f"nested: {len(recipes)} recipes scored by an inner {k}-fold subject-grouped CV on "
                             "the training subjects only (pooled UF1); the best refitted on all of them",
                   "chosen": {"recipe": recipes[best].label}, "inner_uf1": scores, "recipe_selection": sel}
