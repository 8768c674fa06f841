"""`mekit spotter train`: fit a learned spotter and save it as a spotter file for `mekit analyze --spotter`."""

from __future__ import annotations

from pathlib import Path

import typer

from mekit.cli.main import app

spotter_app = typer.Typer(no_args_is_help=True, help="Train spotters for `mekit analyze --spotter FILE`.")
app.add_typer(spotter_app, name="spotter")


@spotter_app.command("train")
def train_cmd(
        out: Path = typer.Argument(..., help="spotter file to write (JSON), e.g. spotter.json"),
        synthetic: int = typer.Option(0, "--synthetic", help="train on this many generated synthetic long videos"),
        seconds: float = typer.Option(60.0, "--seconds", help="length of each synthetic video"),
        fps: float = typer.Option(None, "--fps", help="frame rate of the synthetic videos (default 30, or the "
                                                      "corpus's)"),
        corpus: str = typer.Option(None, "--corpus", help="registered clip loader (e.g. casme2): its clips are set "
                                                          "between still stretches of their own first and last frames"),
        root: Path = typer.Option(None, "--root", help="the corpus's folder"),
        model: str = typer.Option("logistic", "--model", help="logistic or mlp"),
        span: float = typer.Option(None, "--span", help="reference lag (s) of the motion measure (default 4)"),
        seed: int = typer.Option(0, "--seed", help="seed of the synthetic videos, still stretches and folds"),
) -> None:
    """Fit a learned spotter (thresholds chosen by subject-grouped inner CV on the training data only)."""
    from rich.console import Console

    from mekit.analysis.learned_spotter import train_spotter
    from mekit.cli.render import show_progress

    with show_progress():
        path, sp = train_spotter(out, synthetic=synthetic, seconds=seconds, fps=fps, corpus=corpus, root=root,
                                 model=model, span=span, seed=seed)
    t = sp.training
    sel = t["selection"]
    Console().print(f"learned spotter ({t['model']}) on {t['sequences']} sequences, {t['frames']} frames, truth "
                    f"{t['truth']}: release {sel['release']:g}, threshold {sel['threshold']:g}, merge gap "
                    f"{sel['merge_gap']:g} s (training F1 {sel['f1']:.3f}); saved {path}", soft_wrap=True)
