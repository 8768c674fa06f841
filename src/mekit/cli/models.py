"""`mekit models`: the registered neural models (with the input each expects), classifiers and features.

The model-related sections of `mekit list`, kept as a command of its own because it is the
question asked most often."""

from __future__ import annotations

import typer

from mekit.cli.main import app

_SECTIONS = ("models", "model_inputs", "classifiers", "features")


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="machine-readable JSON on stdout")) -> None:
    """List neural models with their input kind, size and channels, classical classifiers and feature extractors."""
    import json

    from mekit.catalogue import catalogue

    cat = catalogue(_SECTIONS)
    if as_json:
        # "input_kinds" (kind -> what one batch is) is this command's JSON shape since its first release
        out = {"models": cat["models"], "classifiers": cat["classifiers"], "features": cat["features"],
               "input_kinds": {m["name"]: m["help"] for m in cat["model_inputs"]}}
        typer.echo(json.dumps(out, indent=2))
        return
    from mekit.cli.list import show

    show(cat)
