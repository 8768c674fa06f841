"""Every choice a config can name, with a one-line help each: what ``mekit list`` prints and
what a GUI fills its menus from.

Built from the registries themselves (and, for the few closed sets that are not
registries, from the tuple the code checks against), so a newly registered model or loader
shows up here without anyone editing this file. The result is plain data: dicts, lists,
strings and numbers, ready for JSON.

Each section is built only when asked for: ``catalogue("loaders")`` imports the loader
modules, not torch; the full catalogue imports what every registry needs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from mekit.errors import ConfigError

Entry = dict[str, Any]


def _plain(value: Any) -> Any:
    """A JSON-ready copy: tuples as lists, paths and other objects as their text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, type):
        return value.__name__
    return str(value)


def _type_text(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    if isinstance(annotation, str):
        return annotation
    from mekit.registry import describe_type

    return describe_type(annotation)


def _parameters(fn: Any, skip: Iterable[str] = ()) -> list[Entry]:
    """``[{name, type, default | required}]`` of the keyword arguments ``fn`` takes."""
    from mekit.registry import keyword_parameters

    params, _ = keyword_parameters(fn)
    out = []
    for name, (tp, default) in params.items():
        if name in skip:
            continue
        item: Entry = {"name": name, "type": _type_text(tp)}
        if default is inspect.Parameter.empty:
            item["required"] = True
        else:
            item["default"] = _plain(default)
        out.append(item)
    return out


def _simple(registry: Any, *extra: str) -> list[Entry]:
    """``{name, help}`` per entry of a registry whose meta carries ``help`` (and ``extra`` keys)."""
    out = []
    for name in registry.names():
        meta = registry.meta(name)
        item: Entry = {"name": name, "help": str(meta.get("help", ""))}
        item.update({k: _plain(meta[k]) for k in extra if k in meta})
        out.append(item)
    return out


# -- sections ------------------------------------------------------------------------------------
def _loaders() -> list[Entry]:
    from mekit.data import LOADERS, get_loader, loader_options

    out = []
    for name in LOADERS.names():
        # the options load_dataset checks (mekit.data.loader_options), not the general keyword
        # reading of registry.keyword_parameters: a loader's **options are not SampleTable's
        fn = get_loader(name)
        sig = inspect.signature(fn).parameters
        # a loader taking **options may list their defaults in an attribute, as it lists their types
        defaults = dict(getattr(fn, "option_defaults", None) or {})
        options = []
        for opt, tp in loader_options(name).items():
            item: Entry = {"name": opt, "type": _type_text(tp)}
            default = sig[opt].default if opt in sig else defaults.get(opt, inspect.Parameter.empty)
            if opt in sig and default is inspect.Parameter.empty:
                item["required"] = True
            elif default is not inspect.Parameter.empty:
                item["default"] = _plain(default)
            options.append(item)
        out.append({"name": name, "help": str(LOADERS.meta(name).get("help", "")), "options": options})
    return out


def _label_schemes() -> list[Entry]:
    from mekit.data.labels import SCHEMES

    return [{"name": n, "help": SCHEMES.get(n).description, "classes": list(SCHEMES.get(n).classes)}
            for n in SCHEMES.names()]


#: one-line help per face detector; the names themselves come from mekit.preprocess.face.DETECTORS
_DETECTOR_HELP = {
    "auto": "MediaPipe BlazeFace, falling back to the OpenCV Haar cascade",
    "mediapipe": "MediaPipe BlazeFace (short then full range) and the 468-point face mesh",
    "haar": "OpenCV frontal-face Haar cascade (eye cascade for the eye line)",
    "none": "no detection: the whole frame is the face",
}


def _face_detectors() -> list[Entry]:
    from mekit.preprocess.face import DETECTORS

    return [{"name": n, "help": _DETECTOR_HELP.get(n, "")} for n in DETECTORS]


def _flow_methods() -> list[Entry]:
    from mekit.preprocess.flow import FLOW_METHODS

    return _simple(FLOW_METHODS)


def _frame_samplers() -> list[Entry]:
    from mekit.preprocess.temporal import SAMPLERS

    out = _simple(SAMPLERS)
    for item in out:
        item["params"] = _plain(SAMPLERS.meta(item["name"]).get("params", {}))
    return out


def _features() -> list[Entry]:
    from mekit.features import FEATURES, get_extractor

    out = _simple(FEATURES)
    for item in out:
        item["params"] = _parameters(get_extractor(item["name"]), skip=("table", "preprocess", "progress"))
    return out


def _model_inputs() -> list[Entry]:
    from mekit.features import INPUTS
    from mekit.models import INPUT_KINDS

    # most builders are named after the input kind they produce, whose description is the help
    return [{"name": n, "help": str(INPUTS.meta(n).get("help") or INPUT_KINDS.get(n, ""))} for n in INPUTS.names()]


def _models() -> list[Entry]:
    from mekit.models import MODELS

    out = []
    for name in MODELS.names():
        meta = _plain(MODELS.meta(name))
        item: Entry = {"name": name, "help": meta.pop("help", "")}
        for key in ("input", "input_size", "channels", "mean", "std"):
            item[key] = meta.pop(key, None)
        item.update(meta)  # min_input_size, intensity, pretrained, ...
        out.append(item)
    return out


def _classifiers() -> list[Entry]:
    from mekit.models.classical import CLASSIFIERS

    return [{"name": n, "help": str(CLASSIFIERS.meta(n).get("help", "")),
             "grid": _plain(CLASSIFIERS.meta(n).get("grid", {}))} for n in CLASSIFIERS.names()]


def _combiners() -> list[Entry]:
    from mekit.models.ensemble import COMBINERS

    return _simple(COMBINERS)


def _samplers() -> list[Entry]:
    from mekit.imbalance import SAMPLERS

    return _simple(SAMPLERS, "indices")


def _losses() -> list[Entry]:
    from mekit.imbalance import LOSSES

    return _simple(LOSSES)


def _protocols() -> list[Entry]:
    from mekit.evaluation.protocols import PROTOCOLS

    out = _simple(PROTOCOLS)
    for item in out:
        item["params"] = _parameters(PROTOCOLS.get(item["name"]))
    return out


#: classification metrics mekit.evaluation.metrics.classification_metrics reports
_CLASSIFICATION_METRICS = {
    "uf1": "unweighted (macro) F1 pooled over all folds, as MEGC defines it",
    "uar": "unweighted average recall pooled over all folds",
    "accuracy": "fraction of samples predicted right",
    "weighted_f1": "F1 averaged with class support as weights",
    "macro_f1": "macro F1 (the same as uf1 here)",
}

_INTENSITY_METRICS = {
    "mae": "mean absolute error", "rmse": "root mean squared error",
    "pearson": "Pearson correlation (does the prediction rise and fall with the target)",
    "spearman": "Spearman rank correlation", "ccc": "Lin's concordance correlation coefficient",
    "icc": "intraclass correlation ICC(3,1)",
}


def _tasks() -> list[Entry]:
    from mekit.tasks import TASKS

    return _simple(TASKS)


def _metrics() -> list[Entry]:
    from mekit.intensity.metrics import REGRESSION_METRICS

    out = [{"name": n, "help": h, "task": "classification"} for n, h in _CLASSIFICATION_METRICS.items()]
    out += [{"name": n, "help": _INTENSITY_METRICS.get(n, ""), "task": "intensity"} for n in REGRESSION_METRICS]
    return out


def _intensity_regressors() -> list[Entry]:
    from mekit.intensity.models import REGRESSORS

    return _simple(REGRESSORS, "needs")


def _intensity_profiles() -> list[Entry]:
    from mekit.intensity.targets import PROFILES

    return _simple(PROFILES)


def _intensity_sources() -> list[Entry]:
    from mekit.intensity.targets import SOURCES

    return [{"name": n, "help": f"one target per {per}", "per": per} for n, per in SOURCES.items()]


#: section name -> (builder, one-line description), in the order a pipeline meets them
SECTIONS: dict[str, tuple[Callable[[], list[Entry]], str]] = {
    "loaders": (_loaders, "dataset loaders (data.loader) and their options (data.options)"),
    "label_schemes": (_label_schemes, "label schemes (data.label_scheme)"),
    "face_detectors": (_face_detectors, "face detectors (preprocess.detector)"),
    "flow_methods": (_flow_methods, "optical flow methods (preprocess.flow)"),
    "frame_samplers": (_frame_samplers, "frame samplers for sequence inputs"),
    "features": (_features, "feature extractors (features.name)"),
    "model_inputs": (_model_inputs, "model input builders, by input kind"),
    "models": (_models, "neural models (model.name) with the input each expects"),
    "classifiers": (_classifiers, "classical classifiers (model.name, with features.name)"),
    "ensemble_combiners": (_combiners, "late-fusion combiners of model.name: ensemble (model.params.combine)"),
    "samplers": (_samplers, "class-imbalance samplers (imbalance.sampler)"),
    "losses": (_losses, "training losses (imbalance.loss)"),
    "protocols": (_protocols, "evaluation protocols (protocol.name)"),
    "tasks": (_tasks, "tasks (task)"),
    "metrics": (_metrics, "metrics reported per task"),
    "intensity_regressors": (_intensity_regressors, "intensity regressors (task: intensity)"),
    "intensity_profiles": (_intensity_profiles, "intensity timing profiles (intensity.profile)"),
    "intensity_sources": (_intensity_sources, "intensity target sources (intensity.source)"),
}


def section_name(what: str) -> str:
    """The section ``what`` names ('label-schemes', 'models', 'model'); ConfigError when none."""
    key = str(what).strip().lower().replace("-", "_")
    if key in SECTIONS:
        return key
    if key + "s" in SECTIONS:  # a singular ('model', 'loader')
        return key + "s"
    import difflib

    close = difflib.get_close_matches(key, list(SECTIONS), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"unknown catalogue section {what!r}{hint}; expected one of: {', '.join(SECTIONS)}")


def catalogue(what: str | Iterable[str] | None = None) -> dict[str, list[Entry]]:
    """Registered choices by section: ``{section: [{name, help, ...}, ...]}``.

    ``what``: one section name (see :data:`SECTIONS`), several, or None for all. Entries carry
    what a menu needs besides the name: loaders their ``options`` (name, type, default or
    ``required``), models their input contract (``input``, ``input_size``, ``channels``,
    ``mean``, ``std``), classifiers their inner-CV ``grid``, protocols and features their
    ``params``, label schemes their ``classes``.
    """
    if what is None:
        names = list(SECTIONS)
    elif isinstance(what, str):
        names = [section_name(what)]
    else:
        names = [section_name(w) for w in what]
    return {n: SECTIONS[n][0]() for n in names}


__all__ = ["SECTIONS", "catalogue", "section_name"]
