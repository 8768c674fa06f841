"""mekit: micro-expression recognition toolkit.

The front door, for scripts and notebooks::

    import mekit

    table = mekit.load_dataset("synthetic", label_scheme="casme2_5class")
    mekit.catalogue("models")            # every registered choice, with a one-line help
    result = mekit.run_experiment(config, "runs/demo")
    mekit.train(config, "model.mekit")
    predictions = mekit.predict("model.mekit", "clips/")
    mekit.extract("rec.mp4", "analysis/rec/intervals.csv", "datasets/rec")   # intervals -> a corpus

The names are resolved on first use (a module ``__getattr__``, PEP 562): ``import mekit``
imports nothing beyond this file, so a command line, a web app or a test that needs one
corner of the package never pays for torch, OpenCV or pandas.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> "module:attribute" it stands for
_FRONT_DOOR: dict[str, str] = {
    "load_dataset": "mekit.data:load_dataset",
    "preprocess": "mekit.preprocess.pipeline:preprocess",
    "run_experiment": "mekit.experiment:run_experiment",
    "train": "mekit.engine.predict:train_bundle",
    "predict": "mekit.engine.predict:predict",
    "catalogue": "mekit.catalogue:catalogue",
    "analyze": "mekit.analysis.analyze:analyze",
    "extract": "mekit.data.extract:extract_intervals",
}


def _resolve(target: str) -> Any:
    import importlib

    mod, attr = target.split(":")
    return getattr(importlib.import_module(mod), attr)


class _CallableModule(types.ModuleType):
    """A module that can also be called, as the function of the same name.

    ``preprocess`` and ``catalogue`` are both front-door functions and modules of this
    package (``mekit.preprocess`` the subpackage, ``mekit.catalogue`` the module). Importing a
    submodule binds it on the package, so a plain function attribute would be replaced by the
    module the first time anything imports ``mekit.preprocess.face``; ``mekit.preprocess(...)``
    would then work or fail depending on import order. Making the module callable keeps both
    meanings whatever was imported first: ``mekit.preprocess(table)`` runs the pipeline and
    ``mekit.preprocess.face`` is still the stage module (so are mock/monkeypatch paths).
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _resolve(_FRONT_DOOR[self.__name__.rsplit(".", 1)[1]])(*args, **kwargs)


class _Package(types.ModuleType):
    """This package's module type: turns the submodules named like front-door functions into
    callable modules as the import system binds them here (see :class:`_CallableModule`)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if (name in _FRONT_DOOR and isinstance(value, types.ModuleType)
                and value.__name__ == f"{__name__}.{name}" and type(value) is types.ModuleType):
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    target = _FRONT_DOOR.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    import importlib.util

    module_name = f"{__name__}.{name}"
    if importlib.util.find_spec(module_name) is not None:
        # a name that is also a submodule: the (callable) module, the same object whatever
        # was imported before
        importlib.import_module(module_name)
        return globals()[name]
    return _resolve(target)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_FRONT_DOOR))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors only
    from mekit.analysis.analyze import analyze
    from mekit.catalogue import catalogue
    from mekit.data import load_dataset
    from mekit.data.extract import extract_intervals as extract
    from mekit.engine.predict import predict
    from mekit.engine.predict import train_bundle as train
    from mekit.experiment import run_experiment
    from mekit.preprocess.pipeline import preprocess

__all__ = ["__version__", "analyze", "catalogue", "extract", "load_dataset", "predict", "preprocess",
           "run_experiment", "train"]
