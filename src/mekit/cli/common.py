"""Small helpers shared by command modules (option parsing, output)."""

from __future__ import annotations

from typing import Any

from mekit.errors import ConfigError


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """``['a.b=1', 'c=x']`` -> ``{'a.b': 1, 'c': 'x'}``; values parsed as YAML scalars."""
    import yaml

    out: dict[str, Any] = {}
    for p in pairs or []:
        if "=" not in p:
            raise ConfigError(f"override {p!r} is not of the form key=value")
        k, v = p.split("=", 1)
        out[k.strip()] = yaml.safe_load(v) if v.strip() else ""
    return out
