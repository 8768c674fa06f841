"""`mekit list [what]`: every registered choice (loaders, schemes, models, ...) with a one-line help."""

from __future__ import annotations

from typing import Any

import typer

from mekit.cli.main import app


@app.command("list")
def list_(what: str = typer.Argument(None, help="one section, e.g. loaders, label_schemes, models, protocols "
                                                "(default: all)"),
          as_json: bool = typer.Option(False, "--json", help="machine-readable JSON on stdout")) -> None:
    """List what a config can name: loaders and their options, label schemes, face detectors, flow methods,
    features, models and their input, classifiers, samplers, losses, protocols, tasks, metrics."""
    import json

    from mekit.catalogue import catalogue

    cat = catalogue(what)
    if as_json:
        typer.echo(json.dumps(cat, indent=2))
        return
    show(cat)


def _cell(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, (int, float)) for v in value):
        return "x".join(str(v) for v in value) if all(isinstance(v, int) for v in value) else \
            ", ".join(f"{v:g}" for v in value)
    if isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
        # options / params: name=default, a required one marked
        return ", ".join(f"{v['name']} (required)" if v.get("required") else
                         f"{v['name']}={v['default']!r}" if "default" in v else v["name"] for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return "-" if value is None else str(value)


def show(cat: dict[str, list[dict[str, Any]]]) -> None:
    """One table per section: name, help, and the rest of an entry as one line per key (a column
    per key made the model table, with its input contract, too wide for a terminal)."""
    from rich.console import Console
    from rich.table import Table

    from mekit.catalogue import SECTIONS

    con = Console()
    for section, entries in cat.items():
        t = Table(title=f"{section}: {SECTIONS[section][1]}" if section in SECTIONS else section,
                  title_justify="left", show_lines=any(len(e) > 2 for e in entries))
        t.add_column("name", no_wrap=True)
        t.add_column("help", overflow="fold", ratio=3)
        if any(len(e) > 2 for e in entries):
            t.add_column("details", overflow="fold", ratio=2)
        for e in entries:
            extra = [f"{k.replace('_', ' ')}: {_cell(v)}" for k, v in e.items()
                     if k not in ("name", "help") and v not in (None, [], {})]
            t.add_row(e["name"], e.get("help", ""), *(["\n".join(extra)] if len(t.columns) > 2 else []))
        con.print(t)
