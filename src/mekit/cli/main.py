"""The ``mekit`` command line. Each command lives in its own module and is a few lines:
parse, call one library function, show the result. Heavy libraries are imported inside
the commands, so ``mekit --help`` stays fast."""

from __future__ import annotations

import importlib
import sys

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="mekit: facial micro-expression recognition toolkit.")
data_app = typer.Typer(no_args_is_help=True, help="Check and inspect datasets.")
app.add_typer(data_app, name="data")

# Modules that add commands to `app` / `data_app` when imported.
_COMMAND_MODULES = ("run", "data", "eda", "preprocess", "preview", "train", "predict", "models",
                    "evaluate", "compare")
for _m in _COMMAND_MODULES:
    try:
        importlib.import_module(f"mekit.cli.{_m}")
    except ModuleNotFoundError as e:  # a command module not written yet
        if e.name != f"mekit.cli.{_m}":
            raise


def main() -> None:
    """Entry point: user errors are one clear line on stderr and exit code 2, never a traceback."""
    from mekit.errors import MekitError

    try:
        app()
    except MekitError as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        sys.exit(2)

