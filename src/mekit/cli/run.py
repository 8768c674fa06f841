"""`mekit run` (the main job) and `mekit evaluate` (any config)."""

from __future__ import annotations

from pathlib import Path

import typer

from mekit.cli.main import app


def _run(config: Path | None, overrides: list[str] | None, out: Path | None, default_out: str) -> None:
    from importlib import resources

    from rich.console import Console

    from mekit.cli.common import parse_overrides
    from mekit.config import load_config
    from mekit.evaluation.runner import run_experiment

    path = config or Path(str(resources.files("mekit") / "configs" / "run_default.yaml"))
    cfg = load_config(path, parse_overrides(overrides))
    out_dir = out or Path(cfg.output.dir or Path(default_out) / cfg.name)
    if cfg.task == "intensity":
        from mekit.intensity.runner import run_intensity, summary_line

        Console().print(summary_line(run_intensity(cfg, out_dir)) + f"\nreport: {out_dir / 'report.md'}")
        return
    res = run_experiment(cfg, out_dir)
    m = res.metrics
    con = Console()
    leaky = "  [bold red](LEAKY protocol)[/]" if m["leaky"] else ""
    con.print(f"[bold]{cfg.name}[/]: {m['protocol']} over {m['n_subjects']} subjects, {m['n_samples']} samples{leaky}")
    con.print(f"UF1 {m['uf1']:.3f}  UAR {m['uar']:.3f}  accuracy {m['accuracy']:.3f}  "
              f"weighted F1 {m['weighted_f1']:.3f}  ({m['timing_s']['total']:.1f} s)")
    con.print(f"report: {out_dir / 'report.md'}")


@app.command()
def run(overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. protocol.name=group_kfold"),
        config: Path = typer.Option(None, "--config", "-c", help="experiment YAML (default: the synthetic demo)"),
        out: Path = typer.Option(None, "--out", "-o", help="report folder (default runs/<name>)")) -> None:
    """Run the main job: a complete experiment on the built-in synthetic corpus, with its report."""
    _run(config, overrides, out, "runs")


@app.command()
def evaluate(overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. data.root=PATH"),
             config: Path = typer.Option(..., "--config", "-c", help="experiment YAML (see configs/)"),
             out: Path = typer.Option(None, "--out", "-o", help="report folder (default runs/<name>)")) -> None:
    """Run an evaluation protocol from a config and write its report folder."""
    _run(config, overrides, out, "runs")
