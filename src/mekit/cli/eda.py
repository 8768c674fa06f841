"""``mekit eda``: class balance, subjects and sample faces of a dataset, as PNGs and JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mekit.cli.data import _LOADER_HELP, loader_options
from mekit.cli.main import app


@app.command("eda")
def eda(
    loader: Annotated[str, typer.Argument(help=_LOADER_HELP)],
    out: Annotated[Path, typer.Option("--out", help="Folder for the figures and eda.json.")],
    root: Annotated[Path | None, typer.Option("--root", help="Dataset folder.")] = None,
    subject_pattern: Annotated[str | None, typer.Option(
        "--subject-pattern", help=r"Regex whose first group is the subject, e.g. '^(S\d+)_'.")] = None,
    label_scheme: Annotated[str | None, typer.Option(
        "--label-scheme", help="Label scheme name or YAML file.")] = None,
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o", help="Extra loader option key=value (repeatable).")] = None,
    samples_per_class: Annotated[int, typer.Option(help="Faces per class in the sample grid.")] = 6,
) -> None:
    """Plot class and subject distributions and sample faces; write imbalance per split to eda.json."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from mekit.analysis.eda import run_eda
    from mekit.data import load_dataset

    console = Console(stderr=True)
    with console.status("loading and plotting"):
        table = load_dataset(loader, root, label_scheme=label_scheme, **loader_options(subject_pattern, option))
        result = run_eda(table, out, samples_per_class=samples_per_class)
    t = Table(title=f"{escape(result['dataset'])}: {result['n_samples']} samples, "
                    f"{result['n_subjects']} subjects", title_justify="left")
    for col in ("split", "samples", "subjects", "majority", "minority", "imbalance"):
        t.add_column(col, justify="right" if col in ("samples", "subjects", "imbalance") else "left")
    rows = {"(all)": result["overall"], **result["splits"]}
    for name, st in rows.items():
        ratio = st["imbalance_ratio"]
        t.add_row(escape(name), str(st["n_samples"]), str(st["n_subjects"]), escape(str(st["majority"])),
                  escape(str(st["minority"])), "-" if ratio is None else f"{ratio:.2f}")
    Console().print(t)
    Console().print(f"figures and eda.json in {escape(str(out))}")
