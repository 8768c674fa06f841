"""`mekit compare RUN_DIR...`."""

from __future__ import annotations

from pathlib import Path

import typer

from mekit.cli.main import app


@app.command()
def compare(runs: list[Path] = typer.Argument(..., help="run folders written by mekit run/evaluate"),
            baseline: str = typer.Option(None, help="folder name of the baseline run (default: the first)"),
            bootstrap: int = typer.Option(2000, "--bootstrap", help="subject-bootstrap replicates of the paired test"),
            seed: int = typer.Option(0, "--seed", help="seed of the bootstrap (same seed, same table)"),
            out: Path = typer.Option(None, help="write the table here as .csv and .md")) -> None:
    """Print and save one table across runs, with deltas and paired tests against a baseline,
    and warnings where runs differ in data, label scheme, protocol or seeds."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from mekit.evaluation.compare import PAIRED_COLUMNS, compare_runs, format_cell, paired_note, to_markdown

    df = compare_runs(runs, baseline, n_boot=bootstrap, seed=seed)
    base = df.attrs["baseline"]
    console = Console()
    # the figures, then the paired tests as a table of their own (one table would be too wide to read)
    paired = [c for c in df.columns if c in PAIRED_COLUMNS]
    for title, cols, rows in ((f"baseline: {base}", [c for c in df.columns if c not in PAIRED_COLUMNS], df.index),
                              (f"paired tests against {base}", paired, [r for r in df.index if r != base])):
        if not cols:
            continue
        t = Table(title=title)
        t.add_column("run")
        for c in cols:
            t.add_column(c, justify="right")
        for run in rows:
            t.add_row(str(run), *[format_cell(c, df.at[run, c]) for c in cols])
        console.print(t)
    for line in [paired_note(df), *df.attrs["notes"]]:
        if line:
            console.print(escape(line))
    for w in df.attrs["warnings"]:
        console.print(f"[bold yellow]warning:[/] {escape(w)}")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(out.with_suffix(".csv"))
        out.with_suffix(".md").write_text(to_markdown(df))
