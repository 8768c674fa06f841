"""``mekit preprocess``: align faces, spot apexes, compute flow/strain and sample frames, cached."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mekit.cli.main import app
from mekit.data import LOADERS

if TYPE_CHECKING:
    from mekit.preprocess.pipeline import PreprocessResult

_LOADER_HELP = "Dataset loader: " + ", ".join(LOADERS.names()) + "."


@app.command("preprocess")
def preprocess_cmd(
    loader: Annotated[str, typer.Argument(help=_LOADER_HELP)],
    overrides: Annotated[list[str] | None, typer.Argument(
        help="Settings as key=value (e.g. size=224 flow=dis flow_params.nscales=5 workers=2).")] = None,
    root: Annotated[Path | None, typer.Option("--root", help="Dataset folder.")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", help="YAML file of preprocessing settings (PreprocessConfig fields).")] = None,
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o", help="Extra loader option key=value (repeatable).")] = None,
    executor: Annotated[str | None, typer.Option(
        "--executor", help="Where clips are computed: processes (the default: `workers` processes here), local "
                           "(this process) or ray (one task per clip on a Ray cluster; the frames must be on a "
                           "folder every machine mounts).")] = None,
    address: Annotated[str | None, typer.Option(
        "--address", help="HOST:PORT of the Ray cluster for --executor ray (default $RAY_ADDRESS).")] = None,
) -> None:
    """Preprocess every clip of a dataset into the cache and print what was done and where the time went."""
    from mekit.cli.common import parse_overrides
    from mekit.cli.render import show_progress
    from mekit.data import load_dataset
    from mekit.preprocess.pipeline import PreprocessConfig, preprocess

    cfg = PreprocessConfig.from_yaml(config, parse_overrides(overrides))
    with show_progress():
        result = preprocess(load_dataset(loader, root, **parse_overrides(option)), cfg, executor=executor,
                            address=address)
    show_summary(result)
    s = result.summary()
    if s["clips"] and not s["done"]:  # nothing usable came out: a failure, whatever the reasons
        from mekit.errors import DataError

        first = next(iter(s["skipped"].items()), ("", ""))
        raise DataError(f"every one of the {s['clips']} clips failed to preprocess (first: {first[0]}: {first[1]})")


def show_summary(result: PreprocessResult) -> None:
    """Rich tables: clips done/computed/cached/skipped, the skipped reasons, seconds per stage."""
    from rich.console import Console
    from rich.table import Table

    s = result.summary()
    console = Console()
    t = Table(title="preprocessing", show_header=False)
    for k in ("clips", "done", "computed", "cached"):
        t.add_row(k, str(s[k]))
    t.add_row("skipped", str(len(s["skipped"])))
    t.add_row("cache", s["cache"])
    console.print(t)
    if s["skipped"]:
        sk = Table(title="skipped clips")
        sk.add_column("sample")
        sk.add_column("reason", overflow="fold")
        for sid, why in s["skipped"].items():
            sk.add_row(sid, why)
        console.print(sk)
    tm = Table(title="time by stage", caption="seconds; stages summed over worker processes")
    tm.add_column("stage")
    tm.add_column("s", justify="right")
    for k, v in s["timings"].items():
        if v >= 0.005 or k == "total":
            tm.add_row("total (wall)" if k == "total" else k, f"{v:.2f}")
    console.print(tm)
