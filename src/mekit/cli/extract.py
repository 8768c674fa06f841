"""`mekit extract VIDEO --intervals CSV --out DATASET`: cut intervals of a recording into a dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from mekit.cli.main import app


@app.command("extract")
def extract_cmd(
        video: str = typer.Argument(..., help="a video file, or a folder of frames (with --fps)"),
        intervals: Path = typer.Option(..., "--intervals", "-i",
                                       help="CSV of intervals: `mekit analyze`'s intervals.csv, a MEGC spotting "
                                            "submission, a truth CSV, or onset_s/offset_s rows"),
        out: Path = typer.Option(..., "--out", "-o", help="dataset folder to write (new or empty)"),
        subject: str = typer.Option("1", "--subject", help="subject the clips are filed under (1 or sub01)"),
        context: float = typer.Option(0.0, "--context", help="seconds of frames kept before and after each interval"),
        fps: float = typer.Option(None, "--fps", help="frame rate of a frame folder, or to override a video's"),
        kind: list[str] = typer.Option(None, "--kind", help="extract only this kind: micro, macro or other "
                                                            "(repeatable; default all)"),
        crop: str = typer.Option("none", "--crop", help="none (whole frames) or face (the face boxes of "
                                                        "--frames-csv)"),
        frames_csv: Path = typer.Option(None, "--frames-csv", help="frames.csv of `mekit analyze` (face boxes)"),
        layout: str = typer.Option("casme2", "--layout", help="corpus layout to write"),
        sheet_format: str = typer.Option("xlsx", "--sheet-format", help="coding sheet as xlsx or csv"),
        overwrite: bool = typer.Option(False, "--overwrite", help="replace a dataset already in --out"),
        append: bool = typer.Option(False, "--append", help="add clips to a dataset extracted into --out before"),
) -> None:
    """Write each interval's frames as a clip folder plus a coding sheet, in a corpus layout its loader reads."""
    from mekit.cli.render import show_progress
    from mekit.data.extract import extract_intervals

    with show_progress():
        res = extract_intervals(video, intervals, out, subject=subject, context=context, fps=fps, kinds=kind or None,
                                crop=crop, frames_csv=frames_csv, layout=layout, sheet_format=sheet_format,
                                overwrite=overwrite, append=append)
    for line in res.lines():
        typer.echo(line)
