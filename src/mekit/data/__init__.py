"""Dataset loaders: every format returns one :class:`~mekit.data.schema.SampleTable`.

Loaders are registered by name with the import path of their function, so listing them
(``mekit data check --help``, the GUI's menus) imports nothing heavy.

Every loader has the signature ``load(root, **options) -> SampleTable`` and labels rows
with the canonical emotion; :func:`load_dataset` then applies a label scheme.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from mekit.registry import Registry

#: name -> "module:function"
LOADERS: Registry[str] = Registry("dataset loader")
LOADERS.add("image_folder", "mekit.data.image_folder:load_image_folder",
            help="Kaggle-style image folders: root/{train,test}/<Class>/*, nested sub-splits, or root/<Class>/*")
LOADERS.add("casme2", "mekit.data.casme2:load_casme2",
            help="CASME II: coding sheet + sub<NN>/<Filename>/reg_img<N>.jpg")
LOADERS.add("samm", "mekit.data.samm:load_samm",
            help="SAMM: sheet MICRO_ONLY + <sub>/<Filename>/<sub>_<frame:05d>.jpg")
LOADERS.add("smic", "mekit.data.smic:load_smic", help="SMIC-HS: apex sheet + frame folders")
LOADERS.add("casme3", "mekit.data.casme3:load_casme3", help="CAS(ME)^3 part A: label sheet + frame folders")
LOADERS.add("megc2019", "mekit.data.megc:load_megc2019",
            help="MEGC 2019 composite (SMIC + CASME II + SAMM), negative/positive/surprise")
LOADERS.add("flow_images", "mekit.data.flow_images:load_flow_images",
            help="precomputed optical-flow images (u, v, strain channels) + CSV, as STSTNet/HTNet publish")
LOADERS.add("video", "mekit.data.video:load_videos", help="videos (mp4, avi) + optional CSV of clip intervals")
LOADERS.add("synthetic", "mekit.data.synthetic:load_synthetic",
            help="synthetic micro-expression corpus generated in code (the default for demos and tests)")


def get_loader(name: str):
    """The loader function registered under ``name``."""
    mod, fn = LOADERS.get(name).split(":")
    return getattr(importlib.import_module(mod), fn)


#: Loaders whose classes are declared by the user in code (the synthetic corpus's ``classes``),
#: not read from files: their labels are not screened for typos.
DECLARED_LABELS = frozenset({"synthetic"})


def loader_options(name: str) -> dict[str, Any]:
    """Options the loader ``name`` accepts, with their annotations (strings, as written).

    Named parameters of its function (``root`` excepted), plus, for a loader that takes
    ``**params`` and lists them in a function attribute ``option_types``, those.
    """
    import inspect

    fn = get_loader(name)
    sig = inspect.signature(fn)
    types: dict[str, Any] = {n: p.annotation for n, p in sig.parameters.items()
                             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "root"}
    types.update(getattr(fn, "option_types", None) or {})
    return types


def check_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Validate loader options before they reach the loader; returns them with booleans made real.

    An unknown option is a ConfigError naming it and the accepted ones (a loader that takes
    ``**options`` without listing them checks its own). An option annotated ``bool`` must be
    a boolean: YAML gives real ones, and the text a command-line override may carry
    ('true'/'false', 'yes'/'no', 'on'/'off', '1'/'0') is accepted; anything else ('maybe')
    is refused, where Python's truthiness would have read it as true. ``int``/``float``
    options must be numbers (or text that is one).
    """
    import inspect

    from mekit.errors import ConfigError

    fn = get_loader(name)
    types = loader_options(name)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())
    if not takes_any or getattr(fn, "option_types", None) is not None:
        unknown = sorted(set(options) - set(types))
        if unknown:
            hint = " (the dataset folder is data.root, not an option)" if "root" in unknown else ""
            raise ConfigError(f"unknown option(s) {unknown} for the {name} loader{hint}; accepted: "
                              f"{', '.join(sorted(types))}")
    out = dict(options)
    for key, value in options.items():
        ann = types.get(key)
        ann = getattr(ann, "__name__", ann)
        if ann == "bool":
            out[key] = _option_bool(name, key, value)
        elif ann in ("int", "float"):
            out[key] = _option_number(name, key, value, int if ann == "int" else float)
    return out


def _option_bool(loader: str, key: str, value: Any) -> bool:
    from mekit.errors import ConfigError

    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ConfigError(f"option {key} of the {loader} loader is {value!r}; expected true or false")


def _option_number(loader: str, key: str, value: Any, kind: type) -> Any:
    from mekit.errors import ConfigError

    what = "a whole number" if kind is int else "a number"
    if isinstance(value, bool):
        raise ConfigError(f"option {key} of the {loader} loader is {value!r}; expected {what}")
    try:
        f = float(value) if isinstance(value, (int, float, str)) else None
    except ValueError:
        f = None
    if f is None or f != f or (kind is int and not f.is_integer()):
        raise ConfigError(f"option {key} of the {loader} loader is {value!r}; expected {what}")
    if kind is int:
        return int(value) if isinstance(value, int) else int(f)
    return value if isinstance(value, (int, float)) else f


def load_dataset(name: str, root: str | Path | None = None, label_scheme: Any = None, **options: Any):
    """Load a dataset by loader name and apply a label scheme (name, YAML path or LabelScheme).

    Options are checked first (:func:`check_options`). Without a scheme, labels that are not
    emotion names are screened (:func:`mekit.data.labels.screen_labels`): a typo is dropped
    as a problem row instead of becoming a class of its own.
    """
    from mekit.data.labels import apply_scheme, screen_labels

    fn = get_loader(name)
    options = check_options(name, options)
    table = fn(Path(root) if root is not None else None, **options)
    if label_scheme is not None:
        return apply_scheme(table, label_scheme)
    return table if name in DECLARED_LABELS else screen_labels(table)


__all__ = ["LOADERS", "get_loader", "load_dataset", "check_options", "loader_options"]
