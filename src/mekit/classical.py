"""Alias of :mod:`mekit.models.classical`, the classical pipelines' former home.

``import mekit.classical`` returns the very module object ``mekit.models.classical``, not a
copy of its names. Two things depend on that:

* bundles written before the move: their ``model.skops`` schema names
  ``mekit.classical.SoftmaxSVC``, and skops rebuilds it with
  ``getattr(importlib.import_module("mekit.classical"), "SoftmaxSVC")``, which must be the
  class the allow-list of :mod:`mekit.engine.bundle` vouches for;
* code that sets an attribute through the old path (a test's ``monkeypatch`` of
  ``mekit.classical.CLASSIFIERS``, say): with a re-exporting module the change would not
  reach the functions that read the name, with one module object it does.

New code imports :mod:`mekit.models.classical`.
"""

from __future__ import annotations

import sys

from mekit.models import classical as _classical

# the import system hands back whatever sys.modules holds under this name once the module has
# run, and binds that as ``mekit.classical`` too
sys.modules[__name__] = _classical
