"""`mekit sweep CONFIG --grid key=v1,v2 ... --out DIR`."""

from __future__ import annotations

from pathlib import Path

import typer

from mekit.cli.main import app


@app.command()
def sweep(config: Path = typer.Argument(..., help="experiment YAML (see configs/)"),
          overrides: list[str] = typer.Argument(None, help="key=value overrides of the config, e.g. data.root=PATH"),
          grid: list[str] = typer.Option(..., "--grid", "-g", help="key=value1,value2: a dotted config key and "
                                                                   "the values to try (repeatable; the points are "
                                                                   "their product)"),
          seeds: str = typer.Option(None, "--seeds", help="seeds of every point: a range 0..4 or a list 0,1,2 "
                                                          "(default the config's protocol.seeds)"),
          out: Path = typer.Option(..., "--out", "-o", help="sweep folder: a run per point, nested/, sweep.csv, "
                                                            "sweep.md"),
          executor: str = typer.Option(None, "--executor", help="where folds run: local, processes or ray (default "
                                                                "the config's protocol.executor)"),
          address: str = typer.Option(None, "--address", help="HOST:PORT of the Ray cluster for --executor ray "
                                                              "(default $RAY_ADDRESS)"),
          nested: bool = typer.Option(True, "--nested/--no-nested", help="also run the nested selection over the "
                                                                          "points (the sweep's honest best)"),
          bootstrap: int = typer.Option(2000, "--bootstrap", help="subject-bootstrap replicates of the paired "
                                                                  "tests")) -> None:
    """Run every point of a grid as a full run (finished ones are reused), the nested selection over
    the points, and write sweep.csv and sweep.md comparing them."""
    from rich.console import Console
    from rich.markup import escape

    from mekit.cli.common import parse_overrides
    from mekit.cli.render import show_progress
    from mekit.evaluation.sweep import parse_grid, parse_seeds
    from mekit.executors.sweep import run_sweep

    with show_progress():
        res = run_sweep(config, parse_grid(grid), out, overrides=parse_overrides(overrides), seeds=parse_seeds(seeds),
                        executor=executor, address=address, nested=nested, n_boot=bootstrap)
    con = Console()
    for name, r in res.table.iterrows():
        sd = "" if r["uf1_std"] is None or r["uf1_std"] != r["uf1_std"] else f" ± {r['uf1_std']:.3f}"
        con.print(f"{escape(str(name))}: UF1 {r['uf1_mean']:.3f}{sd}" + ("  (reused)" if name in res.reused else ""))
    if res.nested is not None:
        con.print(f"[bold]honest best[/] (nested selection): UF1 {res.nested['uf1']:.3f}; chosen most often: "
                  f"{escape(str(res.nested['most_chosen']))}")
    else:
        con.print(f"[yellow]no nested selection: {escape(str(res.nested_note))}[/]")
    con.print(f"table: {res.out_dir / 'sweep.md'}  ({res.out_dir / 'sweep.csv'})", soft_wrap=True)
