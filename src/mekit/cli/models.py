"""`mekit models`: the registered neural models (with the input each expects), classifiers and features."""

from __future__ import annotations

import typer

from mekit.cli.main import app


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="machine-readable JSON on stdout")) -> None:
    """List neural models with their input kind, size and channels, classical classifiers and feature extractors."""
    import json

    from mekit.engine.predict import catalogue

    cat = catalogue()
    if as_json:
        typer.echo(json.dumps(cat, indent=2, default=str))
        return
    show(cat)


def show(cat: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t = Table(title="neural models (model.name)")
    for c in ("name", "input", "input size", "channels", "help"):
        t.add_column(c, overflow="fold")
    for m in cat["models"]:
        t.add_row(m["name"], m["input"], "x".join(str(s) for s in m["input_size"]), str(m["channels"]), m["help"])
    con.print(t)
    k = Table(title="input kinds")
    k.add_column("kind")
    k.add_column("one batch", overflow="fold")
    for name, what in cat["input_kinds"].items():
        k.add_row(name, what)
    con.print(k)
    c = Table(title="classical classifiers (model.name, with features.name)")
    for col in ("name", "help", "inner-CV grid"):
        c.add_column(col, overflow="fold")
    for m in cat["classifiers"]:
        c.add_row(m["name"], m["help"], ", ".join(f"{p}: {v}" for p, v in m["grid"].items()) or "-")
    con.print(c)
    f = Table(title="feature extractors (features.name)")
    f.add_column("name")
    f.add_column("help", overflow="fold")
    for m in cat["features"]:
        f.add_row(m["name"], m["help"])
    con.print(f)
