"""Showing the library's progress events (:mod:`mekit.events`) on the command line.

In a terminal, each running stage is a rich progress bar (created by ``stage_start``, moved by
``progress``, removed by ``stage_end``) and neural training adds a ``train`` line with the epoch,
the training loss and the validation metric. Anywhere else (a pipe, a batch job's log file) the
same events become plain timestamped lines, few enough to read: a stage's start and end, at most
one progress line per stage and one epoch line per fold every ``interval`` seconds::

    14:02:11 preprocess 0/40
    14:02:16 preprocess 17/40 eta 7s
    14:02:23 preprocess done 40/40 in 12.1s
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from mekit import events

if TYPE_CHECKING:
    from rich.console import Console

#: seconds between two plain progress lines of one stage (or two epoch lines of one fold)
INTERVAL_S = 5.0


def format_eta(seconds: float | None) -> str:
    """``12s``, ``3m05s``, ``2h10m``; empty when unknown."""
    if seconds is None:
        return ""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _label(d: dict[str, Any]) -> str:
    """A stage's name with what tells two of its kind apart (the loader, the seed)."""
    extra = [str(d[k]) for k in ("loader", "name") if d.get(k)]
    if d.get("seed") is not None and d.get("stage") == "folds":
        extra.append(f"seed {d['seed']}")
    return " ".join([str(d.get("stage", "?")), *extra])


def _epoch_count(d: dict[str, Any]) -> str:
    return f"epoch {d.get('epoch', '?')}/{d.get('epochs', '?')}"  # epoch events count from 1


class PlainRenderer:
    """Events as timestamped lines passed to ``write``, throttled to one line per stage (and
    one epoch line per fold) every ``interval`` seconds, measured on the events' own times."""

    def __init__(self, write: Callable[[str], None], interval: float = INTERVAL_S) -> None:
        self.write = write
        self.interval = interval
        self._last: dict[Any, float] = {}
        self._fold: dict[str, str] = {}

    def _due(self, key: Any, t: float) -> bool:
        if t - self._last.get(key, -float("inf")) < self.interval:
            return False
        self._last[key] = t
        return True

    def _line(self, ev: events.Event, text: str) -> None:
        self.write(f"{time.strftime('%H:%M:%S', time.localtime(ev.time))} {text}")

    def __call__(self, ev: events.Event) -> None:
        d = ev.data
        stage = str(d.get("stage", ""))
        if ev.kind == "stage_start":
            self._last[("stage", stage)] = ev.time  # the start line counts as this stage's last line
            self._line(ev, _label(d) + (f" 0/{d['total']}" if d.get("total") else ""))
        elif ev.kind == "progress":
            last = d.get("total") is not None and d.get("done") == d.get("total")
            if last or not self._due(("stage", stage), ev.time):
                return  # the stage_end line follows the last item
            text = f"{_label(d)} {d.get('done')}/{d.get('total') or '?'}"
            if d.get("eta_s") is not None:
                text += f" eta {format_eta(d['eta_s'])}"
            if stage in self._fold:
                text += f" (last: {self._fold[stage]})"
            self._line(ev, text)
        elif ev.kind == "stage_end":
            self._last.pop(("stage", stage), None)
            count = f" {d.get('done')}/{d['total']}" if d.get("total") else ""
            state = "done" if d.get("ok", True) else "stopped"
            self._line(ev, f"{_label(d)} {state}{count} in {float(d.get('seconds') or 0):.1f}s")
        elif ev.kind == "fold":
            self._fold[stage] = str(d.get("fold"))
            # the next fold's first epoch gets its line at once
            self._last = {k: v for k, v in self._last.items() if k[0] != "epoch"}
        elif ev.kind == "epoch":
            fold = d.get("fold")
            if self._due(("epoch", fold), ev.time):
                where = f" fold {fold}" if fold is not None else ""
                self._line(ev, f"train{where} {_epoch_count(d)} {events.epoch_text(d)}".rstrip())
        elif ev.kind == "message":
            self._line(ev, str(d.get("text", d)))
        elif ev.kind == "interval":
            self._line(ev, interval_text(d))


class TerminalRenderer:
    """Events as rich progress bars, one per running stage, plus a ``train`` line per fold.

    The display is redrawn when an event arrives (at most every ``refresh_s``), never by a
    background thread: runs fork worker processes (clips, folds), and a fork taken while such a
    thread held the console's lock would leave the worker's copy of that lock held for ever."""

    def __init__(self, console: Console, refresh_s: float = 0.1) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=console,
                                 transient=True, auto_refresh=False)
        self.refresh_s = refresh_s
        self._tasks: dict[str, Any] = {}
        self._shown = 0.0

    def __enter__(self) -> TerminalRenderer:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._shown >= self.refresh_s:
            self._shown = now
            self.progress.refresh()

    def _drop(self, key: str) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            self.progress.remove_task(task)

    def __call__(self, ev: events.Event) -> None:
        d, p = ev.data, self.progress
        stage = str(d.get("stage", ""))
        if ev.kind == "stage_start":
            self._drop(stage)
            self._tasks[stage] = p.add_task(_label(d), total=d.get("total"), info="")
            self._refresh(force=True)
        elif ev.kind == "progress" and stage in self._tasks:
            eta = format_eta(d.get("eta_s"))
            p.update(self._tasks[stage], completed=d.get("done") or 0, total=d.get("total"),
                     info=f"eta {eta}" if eta else "")
            self._refresh()
        elif ev.kind == "stage_end":
            self._drop(stage)
            if stage == "folds":
                self._drop("train")
            self._refresh(force=True)
        elif ev.kind == "fold":
            self._drop("train")  # the next fold's training starts a fresh line
            self._refresh()
        elif ev.kind == "epoch":
            fold = f" fold {d['fold']}" if d.get("fold") is not None else ""
            if "train" not in self._tasks:
                self._tasks["train"] = p.add_task(f"train{fold}", total=d.get("epochs"), info="")
            p.update(self._tasks["train"], description=f"train{fold}", completed=int(d.get("epoch", 0)),
                     total=d.get("epochs"), info=events.epoch_text(d))
            self._refresh()
        elif ev.kind == "message":
            p.console.print(str(d.get("text", d)), markup=False, highlight=False)
        elif ev.kind == "interval":
            p.console.print(interval_text(d), markup=False, highlight=False)


def interval_text(d: dict) -> str:
    """One spotted interval of ``mekit analyze``, as a line: times, kind, label, intensity."""
    label = f" {d['label']}" if d.get("label") else ""
    peak = f" intensity {float(d['intensity_peak']):.2f}" if d.get("intensity_peak") is not None else ""
    return (f"{d.get('interval_kind', 'interval')} {float(d.get('onset_s', 0)):.2f}-{float(d.get('offset_s', 0)):.2f} s"
            f" (frames {d.get('onset')}-{d.get('offset')}){label}{peak}")


@contextlib.contextmanager
def show_progress(console: Console | None = None, terminal: bool | None = None,
                  interval: float = INTERVAL_S) -> Iterator[Callable[[events.Event], None]]:
    """Show the progress events of the calls made inside the block.

    ``console`` defaults to one on stderr (standard output keeps the results alone);
    ``terminal`` forces bars (True) or plain lines (False) instead of asking the console."""
    from rich.console import Console

    console = console or Console(stderr=True)
    if terminal is None:
        terminal = console.is_terminal
    if terminal:
        with TerminalRenderer(console) as renderer, events.listen(renderer):
            yield renderer
        return

    def write(line: str) -> None:
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    renderer = PlainRenderer(write, interval)
    with events.listen(renderer):
        yield renderer


__all__ = ["INTERVAL_S", "PlainRenderer", "TerminalRenderer", "format_eta", "show_progress"]
