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


def _print_version(value: bool) -> None:
    if value:
        from mekit import __version__

        typer.echo(f"mekit {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                          help="print mekit's version and exit")) -> None:
    """Options taken before any command."""

# Modules that add commands to `app` / `data_app` when imported.
_COMMAND_MODULES = ("run", "data", "eda", "preprocess", "preview", "train", "predict", "models",
                    "evaluate", "compare", "sweep", "list", "doctor", "config_cmd", "analyze", "extract", "spotter",
                    "litmap", "app")
for _m in _COMMAND_MODULES:
    try:
        importlib.import_module(f"mekit.cli.{_m}")
    except ModuleNotFoundError as e:  # a command module not written yet
        if e.name != f"mekit.cli.{_m}":
            raise


def main() -> None:
    """Entry point: user errors are one clear line on stderr and exit code 2, never a traceback.

    An interrupted command exits 130 with one line (what finished is kept: folds and cache
    entries are written as they complete). Any other exception is a fault in mekit, not in the
    user's input: it gets one line too, exit code 1, and the full traceback goes to a file
    (``$MEKIT_CACHE/last-error.txt``) to attach to a bug report; ``MEKIT_DEBUG=1`` shows it here.
    """
    import os

    from mekit.errors import MekitError

    try:
        app()
    except MekitError as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted: finished folds and cache entries are kept; run the same command again to "
                    "resume", fg="yellow", err=True)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - the last line of defence against a traceback
        if os.environ.get("MEKIT_DEBUG"):
            raise
        import traceback

        where = "(traceback not saved)"
        try:
            from mekit.paths import cache_dir

            path = cache_dir() / "last-error.txt"
            path.write_text(traceback.format_exc())
            where = f"full traceback in {path}"
        except Exception:  # noqa: BLE001
            pass
        first = str(e).splitlines()[0] if str(e) else ""
        typer.secho(f"internal error: {type(e).__name__}: {first} ({where}; MEKIT_DEBUG=1 shows it)",
                    fg="red", err=True)
        sys.exit(1)

