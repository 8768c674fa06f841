"""`mekit analyze INPUT`: spot, recognise and measure the expressions of a recording."""

from __future__ import annotations

from pathlib import Path

import typer

from mekit.cli.main import app


@app.command("analyze")
def analyze_cmd(
        input: str = typer.Argument(None, help="a video file (mp4, avi, mov, mkv) or a folder of frames"),
        model: Path = typer.Option(None, "--model", "-m", help="classification bundle that labels each interval"),
        intensity: Path = typer.Option(None, "--intensity", help="intensity bundle that measures each interval"),
        out: Path = typer.Option(None, "--out", "-o", help="report folder (default analysis/<input name>)"),
        camera: int = typer.Option(None, "--camera", help="analyse live camera N instead of INPUT"),
        fps: float = typer.Option(None, "--fps", help="frame rate of a frame folder, or to override a video's"),
        live: bool = typer.Option(False, "--live", help="play INPUT at its real frame rate as a camera would, "
                                                        "dropping the frames the machine cannot keep up with"),
        spotter: str = typer.Option("motion", "--spotter", help="registered spotter (see `mekit list spotters`) "
                                                                "or a spotter file (`mekit spotter train`)"),
        detector: str = typer.Option("auto", "--detector", help="face detector: auto, mediapipe, haar or none"),
        max_frames: int = typer.Option(None, "--max-frames", help="stop after this many frames (a camera runs "
                                                                  "until interrupted otherwise)"),
        device: str = typer.Option(None, "--device", help="where neural bundles run: auto, cpu, cuda, cuda:N, mps"),
        resume: bool = typer.Option(False, "--resume", help="continue the analysis interrupted in the --out folder "
                                                            "(same input and settings)"),
        video: bool = typer.Option(True, "--video/--no-video", help="write the annotated video (annotated.mp4)"),
) -> None:
    """Spot micro- and macro-expressions in a recording, label and measure each, and write intervals.csv,
    frames.csv, annotated.mp4, megc_spotting.csv, timeline.png and analysis.json."""
    from rich.console import Console

    from mekit.analysis.analyze import analyze
    from mekit.cli.render import show_progress
    from mekit.errors import DataError

    if (input is None) == (camera is None):
        raise DataError("give either INPUT (a video or a frame folder) or --camera N",
                        expected="`mekit analyze video.mp4 --model model.mekit` or `mekit analyze --camera 0`")
    name = f"camera{camera}" if camera is not None else Path(input).stem
    out_dir = out or Path("analysis") / name
    with show_progress():
        res = analyze(input, out=out_dir, camera=camera, model=model, intensity=intensity, fps=fps, live=live,
                      spotter=spotter, detector=detector, max_frames=max_frames, device=device, resume=resume,
                      video=video)
    con = Console()
    s = res.summary
    if s.get("already_finished"):
        con.print(f"[bold]{name}[/]: the analysis in {out_dir} is finished; nothing to resume", soft_wrap=True)
    elif s.get("resumed_from") is not None:
        con.print(f"[bold]{name}[/]: resumed from frame {s['resumed_from']}")
    con.print(f"[bold]{name}[/]: {s['frames']} frames at {s['fps']:g} fps, {s['frames_without_face']} without a "
              f"face, {s.get('dropped', 0)} dropped; {len(res.intervals)} intervals {s.get('kinds', {})} "
              f"({s.get('frames_per_s')} frames/s)")
    cols = [c for c in ("onset_s", "offset_s", "kind", "label", "intensity_peak") if c in res.intervals.columns]
    for r in res.intervals.head(15).itertuples():
        con.print("  " + "  ".join(str(getattr(r, c)) for c in cols))
    con.print(f"report: {out_dir / 'intervals.csv'}  (timeline: {out_dir / 'timeline.png'})", soft_wrap=True)
