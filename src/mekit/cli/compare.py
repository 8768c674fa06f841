"""`mekit compare RUN_DIR...`."""

from __future__ import annotations

from pathlib import Path

import typer

from mekit.cli.main import app


@app.command()
def compare(runs: list[Path] = typer.Argument(..., help="run folders written by mekit run/evaluate"),
            baseline: str = typer.Option(None, help="folder name of the baseline run (default: the first)"),
            out: Path = typer.Option(None, help="write the table here as .csv and .md")) -> None:
    """Print and save one table across runs, with deltas against a baseline."""
    from rich.console import Console
    from rich.table import Table

    from mekit.evaluation.compare import compare_runs, to_markdown

    df = compare_runs(runs, baseline)
    t = Table(title=f"baseline: {df.attrs['baseline']}")
    t.add_column("run")
    for c in df.columns:
        t.add_column(c, justify="right")
    for run, r in df.iterrows():
        t.add_row(str(run), *[f"{v:+.3f}" if c.startswith("d_") and isinstance(v, float) else
                              f"{v:.3f}" if isinstance(v, float) else str(v) for c, v in r.items()])
    Console().print(t)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(out.with_suffix(".csv"))
        out.with_suffix(".md").write_text(to_markdown(df))
