"""``mekit preview``: one PNG per sample showing crops, flow, strain, landmarks and ROIs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mekit.cli.main import app
from mekit.data import LOADERS

_LOADER_HELP = "Dataset loader: " + ", ".join(LOADERS.names()) + "."


@app.command("preview")
def preview_cmd(
    loader: Annotated[str, typer.Argument(help=_LOADER_HELP)],
    overrides: Annotated[list[str] | None, typer.Argument(
        help="Preprocessing settings as key=value (e.g. detector=none size=224).")] = None,
    root: Annotated[Path | None, typer.Option("--root", help="Dataset folder.")] = None,
    samples: Annotated[list[str] | None, typer.Option(
        "--samples", "-s", help="Sample id to draw (repeatable; default: the first --limit samples).")] = None,
    limit: Annotated[int, typer.Option("--limit", help="How many samples when --samples is not given.")] = 8,
    out: Annotated[Path, typer.Option("--out", help="Folder for the PNG files.")] = Path("preview"),
    config: Annotated[Path | None, typer.Option(
        "--config", help="YAML file of preprocessing settings (PreprocessConfig fields).")] = None,
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o", help="Extra loader option key=value (repeatable).")] = None,
) -> None:
    """Write one PNG per sample: onset/apex/offset crops, flow in colour, strain, landmarks and ROIs."""
    from mekit.cli.common import parse_overrides
    from mekit.data import load_dataset
    from mekit.preprocess.pipeline import PreprocessConfig
    from mekit.preprocess.preview import preview

    cfg = PreprocessConfig.from_yaml(config, parse_overrides(overrides))
    table = load_dataset(loader, root, **parse_overrides(option))
    from mekit.cli.render import show_progress

    with show_progress():
        paths = preview(table, cfg, sample_ids=samples, out_dir=out, limit=limit, progress=True)
    typer.echo(f"wrote {len(paths)} preview(s) to {out}")
