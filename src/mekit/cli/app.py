"""``mekit app``: start the web app (:mod:`mekit.app`) on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mekit.cli.main import app


@app.command("app")
def app_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on; anything but 127.0.0.1/localhost "
                                           "needs a password.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    root: Annotated[list[Path] | None, typer.Option(
        "--root", help="Folder the app may read datasets and files from (repeatable; default: the current folder).")] = None,
    workdir: Annotated[Path, typer.Option(help="The app's own folder: job outputs and uploads.")] = Path("mekit-app"),
    password: Annotated[str | None, typer.Option(
        help="Password asked by the browser (HTTP Basic auth); or set MEKIT_APP_PASSWORD.")] = None,
    max_upload_mb: Annotated[int, typer.Option(help="Largest upload accepted, in MB.")] = 2048,
) -> None:
    """Start the web app: check, preview and preprocess datasets in the browser."""
    from mekit.app.server import serve
    from mekit.app.settings import AppSettings

    serve(AppSettings(host=host, port=port, roots=tuple(root or [Path.cwd()]), workdir=workdir,
                      password=password, max_upload_bytes=max_upload_mb * 1024**2))
