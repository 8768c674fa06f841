"""`mekit doctor`: can this installation run mekit? (versions, face models, TV-L1, devices, cache)."""

from __future__ import annotations

import typer

from mekit.cli.main import app


@app.command()
def doctor(as_json: bool = typer.Option(False, "--json", help="machine-readable JSON on stdout")) -> None:
    """Check Python and library versions, MediaPipe face models, OpenCV TV-L1, torch devices, the cache
    folder and the EfficientNet-Lite0 weights. Exits 1 when a required check fails."""
    import json

    from mekit.doctor import checks, healthy

    results = checks()
    if as_json:
        typer.echo(json.dumps(results, indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table(title="mekit doctor", title_justify="left")
        for c in ("check", "status", "detail"):
            t.add_column(c, overflow="fold")
        for c in results:
            status = "[green]ok[/]" if c["ok"] else ("[red]FAIL[/]" if c["required"] else "[yellow]missing[/]")
            t.add_row(c["name"], status, c["detail"])
        Console().print(t)
    if not healthy(results):
        raise typer.Exit(1)
