"""Progress is an event, not a print.

Long work in mekit (loading a corpus, preprocessing clips, running folds, training epochs)
reports what it is doing by calling :func:`emit`; it never draws a progress bar itself. Whoever
wants to show progress (the command line, a web app, a log file, a test) subscribes with
:func:`listen` for the length of a call::

    from mekit import events

    def show(e: events.Event) -> None:
        print(e.kind, e.data)

    with events.listen(show):
        run_experiment(cfg, "runs/x")

An event has a ``kind`` (see :data:`KINDS`) and a flat dict of JSON-friendly fields. The
common fields are ``stage`` (``load``, ``preprocess``, ``features``, ``folds``, ``train``),
``done`` and ``total`` (counts of what the stage works through), ``fold``, ``seed``, ``epoch``,
``epochs``, ``loss`` (mean training loss of the epoch), ``val`` (a validation metric where there
is one) and ``eta_s`` (seconds left, estimated by the emitter where it can). An ``interval`` event
is an expression spotted in a recording (``mekit analyze``: onset, apex, offset, ``interval_kind``
micro or macro, and the label and intensity where bundles give them), emitted as soon as it closes.

Listeners are held in a :class:`contextvars.ContextVar`, so they belong to the thread (or
asyncio task) that registered them and two runs in two threads of one process (a GUI) never see
each other's events. With no listener, :func:`emit` costs one context-variable lookup. A
listener that raises is logged and removed for the rest of that ``listen`` block; it never stops
the work it watches.

Events emitted while one fold is computed carry that fold's ``fold`` and ``seed`` (see
:func:`fields`), so the ``epoch`` events of several folds can be told apart. Folds computed in
forked worker processes send their events back to the process that runs the folds, which emits
them to its own listeners as the folds run: a listener sees the same events whatever the number of
workers, only interleaved differently. The parent also emits a ``fold`` event when each fold's
result arrives, after that fold's own events.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: the kinds of event mekit emits
KINDS = ("stage_start", "progress", "stage_end", "fold", "epoch", "message", "interval")


@dataclass(frozen=True)
class Event:
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


Listener = Callable[[Event], None]
_LISTENERS: contextvars.ContextVar[tuple[Listener, ...]] = contextvars.ContextVar("mekit_listeners", default=())
_FIELDS: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("mekit_event_fields", default={})


def emit(kind: str, **data: Any) -> None:
    """Send one event to every listener of the current context (nothing happens without one)."""
    if not _LISTENERS.get():
        return
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}; expected one of {KINDS}")
    extra = _FIELDS.get()
    deliver(Event(kind, {**extra, **data} if extra else data))


def deliver(ev: Event) -> None:
    """Send an event built elsewhere (one a fold worker process sent back) to every listener of
    the current context, as it is: its fields and its time are kept."""
    listeners = _LISTENERS.get()
    for fn in listeners:
        try:
            fn(ev)
        except Exception:  # noqa: BLE001 - a broken display must never stop a run
            log.exception("progress listener %r failed; it gets no more events", fn)
            _LISTENERS.set(tuple(f for f in _LISTENERS.get() if f is not fn))


def active() -> bool:
    """Whether anyone listens (emitters may skip computing costly fields when nobody does)."""
    return bool(_LISTENERS.get())


@contextlib.contextmanager
def listen(listener: Listener) -> Iterator[Listener]:
    """Receive every event emitted in this context until the block ends."""
    token = _LISTENERS.set((*_LISTENERS.get(), listener))
    try:
        yield listener
    finally:
        _LISTENERS.reset(token)


@contextlib.contextmanager
def fields(**data: Any) -> Iterator[None]:
    """Add ``data`` to every event emitted in this context until the block ends (an event's own
    fields win): the fold loop tags what a fold emits with its ``fold`` and ``seed``."""
    token = _FIELDS.set({**_FIELDS.get(), **data})
    try:
        yield
    finally:
        _FIELDS.reset(token)


class Stage:
    """Helper for an emitter that works through ``total`` items: ``stage_start`` on entry,
    ``progress`` with an ETA after each item, ``stage_end`` on exit."""

    def __init__(self, stage: str, total: int | None = None, **data: Any) -> None:
        self.stage, self.total, self.data = stage, total, data
        self.done = 0
        self.t0 = 0.0

    def __enter__(self) -> Stage:
        self.t0 = time.perf_counter()
        emit("stage_start", stage=self.stage, total=self.total, **self.data)
        return self

    def advance(self, n: int = 1, **data: Any) -> None:
        self.done += n
        elapsed = time.perf_counter() - self.t0
        eta = (elapsed / self.done * (self.total - self.done)) if self.total and self.done else None
        emit("progress", stage=self.stage, done=self.done, total=self.total,
             eta_s=None if eta is None else round(eta, 1), **{**self.data, **data})

    def __exit__(self, *exc: object) -> None:
        emit("stage_end", stage=self.stage, done=self.done, total=self.total,
             seconds=round(time.perf_counter() - self.t0, 3), ok=exc[0] is None, **self.data)


def epoch_text(data: dict[str, Any]) -> str:
    """``loss 0.693 val_uf1 0.412 lr 0.001`` from an ``epoch`` event's fields (those it has; the
    validation value under the name of its metric when the event gives one), as every display
    and log writes it."""
    names = (("loss", "loss"), ("val", data.get("metric") or "val"), ("lr", "lr"))
    return " ".join(f"{name} {data[k]:.4g}" for k, name in names if isinstance(data.get(k), (int, float)))


__all__ = ["Event", "KINDS", "Stage", "active", "deliver", "emit", "epoch_text", "fields", "listen"]
