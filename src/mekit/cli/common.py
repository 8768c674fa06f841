"""Small helpers shared by command modules (option parsing, config loading, output)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mekit.errors import ConfigError


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """``['a.b=1', 'c=x']`` -> ``{'a.b': 1, 'c': 'x'}``; values parsed as YAML (the loader of
    config files: ``1e-3`` is a number, a mapping may not repeat a key). A key given twice is
    refused: which of the two was meant is not for the program to guess."""
    from mekit.config import load_yaml

    out: dict[str, Any] = {}
    for p in pairs or []:
        if "=" not in p:
            raise ConfigError(f"override {p!r} is not of the form key=value")
        k, v = p.split("=", 1)
        k = k.strip()
        if not k:
            raise ConfigError(f"override {p!r} has no key; expected key=value")
        if k in out:
            raise ConfigError(f"override {k!r} is given twice; give each key once")
        out[k] = load_yaml(v, f"override {k}") if v.strip() else ""
    return out


def load_experiment(config: Path | str | None, overrides: list[str] | None):
    """The experiment config of a command: the YAML file (or defaults) with ``key=value``
    overrides, checked against every component it names
    (:func:`mekit.evaluation.validate.validate_config`) before any work starts."""
    from mekit.config import load_config
    from mekit.evaluation.validate import validate_config

    cfg = load_config(config, parse_overrides(overrides))
    validate_config(cfg)
    return cfg
