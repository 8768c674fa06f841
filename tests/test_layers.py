"""The import contract: no module imports a layer above its own.

Every ``import mekit.x`` / ``from mekit.x import ...`` statement in ``src/mekit`` counts, the
ones inside functions too (a lazy import is still an arrow). Layers, bottom to top, are those
of the design: the foundation (errors, paths, registry, config, events, media, ...), data,
the building blocks (preprocess, features, models with the classical pipelines, imbalance; the
top-level ``classical`` is the alias kept for the pipelines' former import path), engine
(training, bundles, prediction), the tasks (evaluation, intensity, analysis), the front-door
helpers (catalogue, doctor) and the doors (cli, app). Modules of one layer may import each
other. A plug-in that a lower layer must reach (a task's bundle predictor, say) is named in a
registry by a ``"module:attr"`` string, which is resolved at run time and is not an arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mekit

SRC = Path(mekit.__file__).parent

LAYERS: list[set[str]] = [
    {"errors", "paths", "registry", "config", "events", "fingerprint", "media", "environment", "procs"},
    {"data"},
    {"preprocess", "features", "models", "imbalance", "classical"},
    {"engine"},
    {"tasks", "evaluation", "intensity", "analysis"},
    {"experiment", "executors", "catalogue", "doctor"},
    {"cli", "app", "__init__", "__main__"},
]


def _layer(top: str) -> int | None:
    return next((i for i, names in enumerate(LAYERS) if top in names), None)


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _arrows():
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module]
            else:
                continue
            for t in targets:
                if t.startswith("mekit."):
                    yield module, node.lineno, t


def test_every_top_level_module_has_a_layer():
    tops = {_top(m) for m, _, _ in _arrows()} | {_top(t) for _, _, t in _arrows()}
    assert not [t for t in tops if _layer(t) is None], "add new top-level modules to LAYERS"


def test_no_module_imports_a_layer_above_its_own():
    up = [f"{m}:{line} imports {t}" for m, line, t in _arrows()
          if _layer(_top(t)) is not None and _layer(_top(m)) is not None and _layer(_top(t)) > _layer(_top(m))]
    assert not up, "upward imports:\n" + "\n".join(sorted(up))
