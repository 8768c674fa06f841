"""`mekit run` (the main job) and `mekit evaluate` (any config)."""

from __future__ import annotations

from pathlib import Path

import typer

from mekit.cli.main import app


_RESUME_HELP = ("reuse folds saved in the report folder by an earlier run: auto (only when config, data and "
                "mekit code are the same; otherwise start over), strict (stop if they differ), off (always start "
                "over).")


_DEVICE_HELP = "where neural models train: auto, cpu, cuda, cuda:N or mps (sets compute.device)"


_EXECUTOR_HELP = ("where folds run: local (this process), processes (protocol.workers worker processes; the "
                  "default) or ray (tasks of a Ray cluster); never changes a result (sets protocol.executor)")
_ADDRESS_HELP = "HOST:PORT of the Ray cluster for --executor ray (default $RAY_ADDRESS; sets protocol.address)"


def _with_device(overrides: list[str] | None, device: str | None, executor: str | None = None,
                 address: str | None = None) -> list[str]:
    """--device, --executor and --address are the overrides compute.device=..., protocol.executor=...
    and protocol.address=..., replacing the config file's values."""
    extra = {"compute.device": device, "protocol.executor": executor, "protocol.address": address}
    return [*(overrides or []), *(f"{k}={v}" for k, v in extra.items() if v)]


def _run(config: Path | None, overrides: list[str] | None, out: Path | None, default_out: str,
         resume: str = "auto") -> None:
    from importlib import resources

    from rich.console import Console

    from mekit.cli.common import load_experiment
    from mekit.cli.render import show_progress
    from mekit.experiment import run_experiment, summary_line

    path = config or Path(str(resources.files("mekit") / "configs" / "run_default.yaml"))
    cfg = load_experiment(path, overrides)
    out_dir = out or Path(cfg.output.dir or Path(default_out) / cfg.name)
    with show_progress():
        res = run_experiment(cfg, out_dir, resume=resume)
    con = Console()
    _show_resume(con, res.metrics["resume"], out_dir)
    _show_excluded(con, res.metrics, out_dir)
    con.print(summary_line(res))
    con.print(f"report: {out_dir / 'report.md'}  (log: {out_dir / 'run.log'})", soft_wrap=True)


def _show_resume(con, r: dict, out_dir: Path) -> None:
    if r.get("discarded"):
        con.print(f"[yellow]saved folds in {out_dir / 'folds'} were discarded: {r['discarded']}[/]", soft_wrap=True)
    if r.get("folds_resumed"):
        con.print(f"[yellow]resumed:[/] {r['folds_resumed']} of {r['folds_total']} folds read back from "
                  f"{out_dir / 'folds'} (same config, data and code)", soft_wrap=True)


def _show_excluded(con, m: dict, out_dir: Path) -> None:
    from mekit.evaluation.report import excluded_summary

    text = excluded_summary(m).replace("excluded.csv", str(out_dir / "excluded.csv"))
    con.print(f"[yellow]{text}[/]" if (m.get("excluded") or {}).get("total") else text, soft_wrap=True)


@app.command()
def run(overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. protocol.name=group_kfold"),
        config: Path = typer.Option(None, "--config", "-c", help="experiment YAML (default: the synthetic demo)"),
        out: Path = typer.Option(None, "--out", "-o", help="report folder (default runs/<name>)"),
        resume: str = typer.Option("auto", "--resume", help=_RESUME_HELP),
        device: str = typer.Option(None, "--device", help=_DEVICE_HELP),
        executor: str = typer.Option(None, "--executor", help=_EXECUTOR_HELP),
        address: str = typer.Option(None, "--address", help=_ADDRESS_HELP)) -> None:
    """Run the main job: a complete experiment on the built-in synthetic corpus, with its report."""
    _run(config, _with_device(overrides, device, executor, address), out, "runs", resume)


@app.command()
def evaluate(overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. data.root=PATH"),
             config: Path = typer.Option(..., "--config", "-c", help="experiment YAML (see configs/)"),
             out: Path = typer.Option(None, "--out", "-o", help="report folder (default runs/<name>)"),
             resume: str = typer.Option("auto", "--resume", help=_RESUME_HELP),
             device: str = typer.Option(None, "--device", help=_DEVICE_HELP),
             executor: str = typer.Option(None, "--executor", help=_EXECUTOR_HELP),
             address: str = typer.Option(None, "--address", help=_ADDRESS_HELP)) -> None:
    """Run an evaluation protocol from a config and write its report folder."""
    _run(config, _with_device(overrides, device, executor, address), out, "runs", resume)
