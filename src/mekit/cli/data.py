"""``mekit data check``: validate a dataset and show what a loader found; ``mekit data export-flow``:
write its onset->apex flow as a flow-image set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mekit.cli.main import data_app
from mekit.data import LOADERS

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from mekit.data.check import CheckReport

_LOADER_HELP = "Dataset loader: " + ", ".join(LOADERS.names()) + "."
#: Rows shown per table before eliding (the JSON output always has everything).
_MAX_ROWS = 60


def loader_options(subject_pattern: str | None, option: list[str] | None) -> dict[str, Any]:
    """Loader keyword options from the shared flags and repeated ``--option key=value``."""
    from mekit.cli.common import parse_overrides

    opts = parse_overrides(option)
    if subject_pattern:
        opts["subject_pattern"] = subject_pattern
    return opts


@data_app.command("check")
def check(
    loader: Annotated[str, typer.Argument(help=_LOADER_HELP)],
    root: Annotated[Path | None, typer.Option("--root", help="Dataset folder.")] = None,
    subject_pattern: Annotated[str | None, typer.Option(
        "--subject-pattern", help=r"Regex whose first group is the subject, e.g. '^(S\d+)_'.")] = None,
    label_scheme: Annotated[str | None, typer.Option(
        "--label-scheme", help="Label scheme name or YAML file; labels outside it are problems.")] = None,
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o", help="Extra loader option key=value (repeatable).")] = None,
    duplicate_threshold: Annotated[int, typer.Option(
        "--duplicate-threshold", help="Max pHash bit distance for near-duplicates across splits; "
                                      "-1 skips the search.")] = 4,
    no_images: Annotated[bool, typer.Option(
        "--no-images", help="Only check that files exist; do not decode them.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when anything is missing or broken.")] = False,
) -> None:
    """Count samples per class and subject; find missing, broken, mislabelled and duplicated samples."""
    from mekit.data.check import check_dataset

    opts = loader_options(subject_pattern, option)
    with _progress() as progress:
        report = check_dataset(loader, root, label_scheme=label_scheme,
                               duplicate_threshold=None if duplicate_threshold < 0 else duplicate_threshold,
                               check_images=not no_images, progress=progress, **opts)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        show_check_report(report)
    if strict and not report.ok:
        raise typer.Exit(1)


class _progress:
    """A transient rich progress bar on stderr, fed by ``progress(stage, done, total)``.

    It starts on the first update (so a loader error prints nothing else) and only on a
    terminal (a pipe or log file gets no bar).
    """

    def __enter__(self):
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}
        return self.update

    def update(self, stage: str, done: int, total: int) -> None:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            console = Console(stderr=True)
            if not console.is_terminal:
                self._bar = False
                return
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, transient=True)
            self._bar.start()
        if self._bar is False:
            return
        if stage not in self._tasks:
            self._tasks[stage] = self._bar.add_task(stage, total=total)
        self._bar.update(self._tasks[stage], completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._bar:
            self._bar.stop()


def _table(title: str) -> Table:
    """A rich table whose title is never wrapped (it is at least as wide as its title)."""
    from rich.table import Table

    return Table(title=title, title_justify="left", min_width=len(title) + 2)


def _counts_table(title: str, counts: dict[str, int], key: str, console: Console) -> None:
    from rich.markup import escape

    t = _table(title)
    t.add_column(key)
    t.add_column("n", justify="right")
    for k, v in list(counts.items())[:_MAX_ROWS]:
        t.add_row(escape(str(k)) or "(none)", str(v))
    if len(counts) > _MAX_ROWS:
        t.caption = f"... {len(counts) - _MAX_ROWS} more (see --json)"
    console.print(t)


def show_check_report(report: CheckReport, console: Console | None = None) -> None:
    """Render a :class:`CheckReport` as rich tables."""
    from rich.console import Console
    from rich.markup import escape as e

    console = console or Console()
    scheme = f", scheme {report.scheme}" if report.scheme else ""
    console.print(f"[bold]{e(report.dataset)}[/bold]: {report.n_samples} samples, {report.n_subjects} subjects, "
                  f"{len(report.classes)} classes{scheme} ({report.n_checked} checked)")
    _counts_table("Samples per class", report.classes, "class", console)
    if len(report.splits) > 1 or (report.splits and "" not in report.splits):
        classes = list(report.classes)
        t = _table("Samples per split")
        t.add_column("split")
        for c in classes:
            t.add_column(e(c), justify="right")
        t.add_column("total", justify="right")
        for sp, cnt in report.splits.items():
            t.add_row(e(sp) or "(none)", *[str(cnt.get(c, 0)) for c in classes], str(sum(cnt.values())))
        console.print(t)
    if report.subject_classes:
        classes = list(report.classes)
        datasets = {subj.split("/", 1)[0] for subj in report.subject_classes}
        short = len(datasets) == 1  # one corpus: drop its prefix so the ids fit
        t = _table("Samples per subject" + (f" ({next(iter(datasets))}/...)" if short else ""))
        t.add_column("subject", no_wrap=True)
        for c in classes:
            t.add_column(e(c), justify="right")
        t.add_column("total", justify="right")
        items = list(report.subject_classes.items())
        for subj, cnt in items[:_MAX_ROWS]:
            t.add_row(e(subj.split("/", 1)[-1] if short else subj), *[str(cnt.get(c, 0)) for c in classes],
                      str(sum(cnt.values())))
        if len(items) > _MAX_ROWS:
            t.caption = f"... {len(items) - _MAX_ROWS} more (see --json)"
        console.print(t)
    if report.label_mapping:
        t = _table("Label mapping")
        t.add_column("as written")
        t.add_column("label")
        for raw, lab in report.label_mapping.items():
            t.add_row(e(raw), e(lab))
        console.print(t)
    if report.dropped:
        _counts_table("Dropped by the label scheme", report.dropped, "emotion", console)
    if report.missing:
        console.print(f"[yellow]Missing ({len(report.missing)}):[/yellow]")
        for m in report.missing[:_MAX_ROWS]:
            console.print(f"  {m}", markup=False)
        if len(report.missing) > _MAX_ROWS:
            console.print(f"  ... {len(report.missing) - _MAX_ROWS} more (see --json)")
    if report.problems:
        t = _table(f"Problems ({len(report.problems)}, excluded from the counts)")
        t.add_column("sample")
        t.add_column("reason")
        for p in report.problems[:_MAX_ROWS]:
            t.add_row(e(p.sample), e(p.reason))
        if len(report.problems) > _MAX_ROWS:
            t.caption = f"... {len(report.problems) - _MAX_ROWS} more (see --json)"
        console.print(t)
    if report.duplicates:
        t = _table(f"Near-duplicates across splits ({len(report.duplicates)})")
        for c in ("a", "b", "distance"):
            t.add_column(c)
        for d in report.duplicates[:_MAX_ROWS]:
            t.add_row(e(d["a"]), e(d["b"]), str(d["distance"]))
        if len(report.duplicates) > _MAX_ROWS:
            t.caption = f"... {len(report.duplicates) - _MAX_ROWS} more (see --json)"
        console.print(t)
    for n in report.notes:
        console.print(f"[cyan]note:[/cyan] {e(n)}", highlight=False)
    if report.ok:
        console.print("[green]no missing, broken or duplicated samples[/green]")


@data_app.command("export-flow")
def export_flow(
    loader: Annotated[str, typer.Argument(help=_LOADER_HELP)],
    overrides: Annotated[list[str] | None, typer.Argument(
        help="Preprocess settings as key=value (e.g. detector=none size=128 flow=tvl1).")] = None,
    root: Annotated[Path | None, typer.Option("--root", help="Dataset folder.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder to write the flow-image set to.")] = Path("flow_images"),
    layout: Annotated[str, typer.Option("--layout", help="htnet (CSV + '<sub>_<clip> .png') or ststnet "
                                                         "(leave-one-subject-out folders).")] = "htnet",
    label_scheme: Annotated[str | None, typer.Option(
        "--label-scheme", help="Label scheme name or YAML file (e.g. megc_3class).")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", help="YAML file of preprocessing settings (PreprocessConfig fields).")] = None,
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o", help="Extra loader option key=value (repeatable).")] = None,
) -> None:
    """Write a dataset's onset->apex flow as a flow-image set (28x28 u/v/strain PNGs, STSTNet/HTNet layout)."""
    from mekit.cli.common import parse_overrides
    from mekit.cli.render import show_progress
    from mekit.data import load_dataset
    from mekit.preprocess.export import export_flow_image_set
    from mekit.preprocess.pipeline import PreprocessConfig

    pre = PreprocessConfig.from_yaml(config, parse_overrides(overrides)).to_dict()
    with show_progress():
        table = load_dataset(loader, root, label_scheme=label_scheme, **parse_overrides(option))
        done = export_flow_image_set(table, out, layout=layout, preprocess=pre)
    typer.echo(f"wrote {done['written']} flow images ({layout} layout) to {done['out']}; "
               f"{len(done['skipped'])} skipped")
