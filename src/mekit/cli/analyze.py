"""`mekit analyze INPUT`: spot, recognise and measure the expressions of a recording."""

from __future__ import annotations

from pathlib import Path

import typer

from mekit.cli.main import app


@app.command("analyze")
def analyze_cmd(
        inputs: list[str] = typer.Argument(None, help="video files (mp4, avi, mov, mkv) or folders of frames; "
                                                      "several are analysed one per unit of work, each into "
                                                      "--out/<name>"),
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
        executor: str = typer.Option(None, "--executor", help="where recordings are analysed, one per unit: local "
                                                              "(here, one after another), processes or ray (one "
                                                              "task per recording on a Ray cluster)"),
        address: str = typer.Option(None, "--address", help="HOST:PORT of the Ray cluster for --executor ray "
                                                            "(default $RAY_ADDRESS)"),
) -> None:
    """Spot micro- and macro-expressions in a recording, label and measure each, and write intervals.csv,
    frames.csv, annotated.mp4, megc_spotting.csv, timeline.png and analysis.json."""
    from mekit.errors import DataError

    if bool(inputs) == (camera is not None):
        raise DataError("give either INPUT (a video or a frame folder) or --camera N",
                        expected="`mekit analyze video.mp4 --model model.mekit` or `mekit analyze --camera 0`")
    opts = dict(model=model, intensity=intensity, fps=fps, live=live, spotter=spotter, detector=detector,
                max_frames=max_frames, device=device, resume=resume, video=video)
    if camera is not None and (executor or address):
        from mekit.errors import ConfigError

        raise ConfigError("--executor/--address: a live camera is analysed here, as it streams; give recordings "
                          "to analyse elsewhere")
    if len(inputs or []) > 1 or executor or address:
        return _batch(inputs, out, executor, address, opts)
    from mekit.analysis.analyze import analyze
    from mekit.cli.render import show_progress

    input = inputs[0] if inputs else None
    name = f"camera{camera}" if camera is not None else Path(input).stem
    out_dir = out or Path("analysis") / name
    with show_progress():
        res = analyze(input, out=out_dir, camera=camera, **opts)
    _show(name, out_dir, res)


def _batch(inputs: list[str], out: Path | None, executor: str | None, address: str | None, opts: dict) -> None:
    """Several recordings: one report folder each under --out (default analysis/); one recording
    on an executor: --out is its folder, as without one."""
    from mekit.analysis.batch import analyze_batch
    from mekit.cli.render import show_progress

    one = [out or Path("analysis") / Path(inputs[0]).stem] if len(inputs) == 1 else None
    with show_progress():
        results = analyze_batch(inputs, out or Path("analysis"), folders=one, executor=executor or "local",
                                address=address, **opts)
    for res in results:
        _show(res.out_dir.name, res.out_dir, res)


def _show(name: str, out_dir: Path, res) -> None:
    from rich.console import Console

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
