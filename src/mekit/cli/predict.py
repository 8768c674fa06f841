"""`mekit predict BUNDLE INPUT`: predict images, frame folders, videos or a dataset with a bundle."""

from __future__ import annotations

from pathlib import Path

import typer

from mekit.cli.main import app

_SHOWN = 15


@app.command("predict")
def predict_cmd(
        bundle: Path = typer.Argument(..., help="a .mekit bundle written by `mekit train`"),
        input: str = typer.Argument(None, help="an image, a folder of images, a frame folder or a video "
                                               "(or the dataset root with --loader)"),
        loader: str = typer.Option(None, "--loader", "-l", help="dataset loader name (see `mekit data`)"),
        root: Path = typer.Option(None, "--root", help="dataset folder for --loader"),
        option: list[str] = typer.Option(None, "--option", "-O", help="loader option key=value (repeatable)"),
        kind: str = typer.Option("auto", "--as", help="read INPUT as: auto, image, images, frames or video"),
        fps: float = typer.Option(None, "--fps", help="frame rate of a frame folder (for motion magnification)"),
        out: Path = typer.Option(Path("predictions.csv"), "--out", "-o",
                                 help="CSV of predictions to write; an existing folder gets predictions.csv "
                                      "inside it"),
        device: str = typer.Option(None, "--device", help="where a neural model runs: auto (default), cpu, cuda, "
                                                          "cuda:N or mps")) -> None:
    """Predict every sample of INPUT and write sample_id, pred, p_<class> (and true, where known) to a CSV."""
    from mekit.cli.common import parse_overrides
    from mekit.engine.predict import predict

    from mekit.cli.render import show_progress

    with show_progress():
        df = predict(bundle, input, loader, root, out, kind=kind, progress=True, fps=fps, device=device,
                     **parse_overrides(option))
    show(df, out)


def show(df, out: Path) -> None:
    """A short rich table of the predictions, then skipped samples and caveats."""
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    con = Console()
    if not isinstance(df, pd.DataFrame):  # an intensity runner's own result
        con.print(df)
        return
    probs = [c for c in df.columns if c.startswith("p_")]
    t = Table(title=f"{len(df)} predictions" + (f" (first {_SHOWN})" if len(df) > _SHOWN else ""))
    cols = [c for c in ("sample_id", "frame", "pred", "target") if c in df.columns]  # frame/target: intensity
    for c in cols:
        t.add_column(c)
    if probs:
        t.add_column("confidence", justify="right")
    if "true" in df.columns:
        t.add_column("true")
    for _, r in df.head(_SHOWN).iterrows():
        row = ["" if pd.isna(r[c]) else f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols]
        if probs:
            row.append(f"{max(r[c] for c in probs):.2f}")
        if "true" in df.columns:
            row.append("" if pd.isna(r["true"]) else str(r["true"]))
        t.add_row(*row)
    con.print(t)
    # only inputs left out of the predictions; problems of predicted inputs are among the notes
    skipped = df.attrs.get("skipped") or {}
    for sid, why in list(skipped.items())[:10]:
        con.print(f"[yellow]skipped[/] {sid}: {why}", soft_wrap=True)
    if len(skipped) > 10:
        con.print(f"[yellow]... and {len(skipped) - 10} more skipped[/]")
    for note in df.attrs.get("notes") or []:
        con.print(f"[dim]note: {note}[/]", soft_wrap=True)
    con.print(f"predictions: {df.attrs.get('written_to', out)}")
