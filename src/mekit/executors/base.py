"""What every executor shares: a unit of work, the contract an executor keeps, and the helpers a
unit needs where it runs far from the process that asked for it.

A :class:`Work` is one function run over many units (``fn(unit, state)`` for each): a fold x seed
(:class:`mekit.tasks.FoldJob`), one clip's preprocessing, one recording's analysis. Everything
the function needs comes in its two arguments (the unit and the state shared by all units):
seeds come from the unit, never from the process it lands in, and thread counts are fixed per
unit, so where a unit runs never changes its result.

A unit that writes files names its folder (``folder``) and how to point it at another one
(``relocate``): an executor whose units run on other machines runs each in a scratch folder
there, sends the files the local folder already holds with it (a checkpoint to resume from),
and writes what the unit wrote back into the local folder, in the order it was written. Nothing
lives only on a worker.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mekit.errors import DataError

#: the environment variables native libraries read their thread count from when they start
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS")


@dataclass(frozen=True)
class Work:
    """``fn(unit, state)`` for every unit, and what an executor needs to run it anywhere.

    ``fn`` and the hooks are module-level functions (a spawned process or a cluster task gets them
    by reference); ``state`` travels once per worker (a process pool's initializer) or once per
    run (a cluster's object store), never through module globals.
    """

    #: the unit's function: ``fn(unit, state) -> result``
    fn: Callable[[Any, Any], Any]
    #: what every unit shares (features, labels, the run's config)
    state: Any = None
    #: the event fields of a unit (a fold's ``fold`` and ``seed``): every event the unit emits carries them
    tags: Callable[[Any], dict[str, Any]] | None = None
    #: the folder a unit writes to on this machine (None: it writes nothing)
    folder: Callable[[Any], Path | str | None] | None = None
    #: the unit made to write into another folder (a cluster task's scratch folder)
    relocate: Callable[[Any, Path], Any] | None = None
    #: the files of a unit's folder (paths relative to it) sent with it; None: every file there
    inputs: Callable[[Any], list[str] | None] | None = None
    #: names of the files that say a unit is done (a fold's ``predictions.csv``): brought back
    #: after all the others, whatever their times (file times are only as fine as the clock tick)
    last: tuple[str, ...] = ()
    #: the unit trains a torch model (a cluster gives it a GPU where it has one)
    neural: bool = False
    #: units at a time and how worker processes start (``fork`` or ``spawn``), for executors that
    #: start processes on this machine
    workers: int = 1
    start: str = "fork"
    #: the first call of every worker process of a pool: ``init(parent_pid, fn, state, queue)``
    #: (None: :func:`mekit.executors.processes.init_worker`)
    init: Callable[..., None] | None = None
    #: what a unit is, in messages ("fold", "clip", "video")
    what: str = "unit"

    def tags_of(self, unit: Any) -> dict[str, Any]:
        return dict(self.tags(unit)) if self.tags is not None else {}

    def folder_of(self, unit: Any) -> Path | None:
        if self.folder is None or self.relocate is None:
            return None
        f = self.folder(unit)
        return None if f is None else Path(f)


class Executor:
    """Runs a :class:`Work` over units: :meth:`map` yields ``(position, result)`` for each unit as
    it finishes (in any order; ``position`` is the unit's place in ``units``), and delivers the
    events the unit emitted before its result, in the caller's thread and context. An executor
    may hold a connection (a cluster's): use it as a context manager, or call :meth:`close`."""

    name = "executor"

    def map(self, work: Work, units: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name

    def close(self) -> None:
        """Release what the executor holds (nothing for the local ones)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------
# fixed thread counts
# ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def fixed_threads(n: int) -> Iterator[None]:
    """Native thread pools limited to ``n`` for the block: the environment variables libraries
    read when they first load (a unit that imports torch or BLAS for the first time), the pools
    already loaded (threadpoolctl: BLAS, OpenMP), torch's and OpenCV's own counts. Everything is
    put back afterwards, so a worker process that runs units of several sizes gives each its own."""
    n = max(1, int(n))
    old_env = {k: os.environ.get(k) for k in THREAD_VARIABLES}
    os.environ.update({k: str(n) for k in THREAD_VARIABLES})
    torch = sys.modules.get("torch")
    cv2 = sys.modules.get("cv2")
    old_torch = torch.get_num_threads() if torch is not None else None
    old_cv2 = cv2.getNumThreads() if cv2 is not None else None
    try:
        from threadpoolctl import threadpool_limits

        limits: Any = threadpool_limits(limits=n)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        limits = contextlib.nullcontext()
    try:
        if torch is not None:
            torch.set_num_threads(n)
        if cv2 is not None:
            cv2.setNumThreads(n)
        with limits:
            yield
    finally:
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if torch is not None and old_torch is not None:
            torch.set_num_threads(old_torch)
        if cv2 is not None and old_cv2 is not None:
            cv2.setNumThreads(old_cv2)


# ---------------------------------------------------------------------------------------
# log records of a unit run elsewhere
# ---------------------------------------------------------------------------------------
class RecordCollector(logging.Handler):
    """Keeps mekit's log records of a unit as plain dicts (the message formatted, an exception as
    text), so they can be sent back and handled by the process that asked for the unit: its
    run.log and console then hold what a forked worker's would have written."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        d = {k: v for k, v in record.__dict__.items() if v is None or isinstance(v, (str, int, float, bool))}
        d["msg"], d["args"] = record.getMessage(), None
        if record.exc_info:
            d["exc_text"] = logging.Formatter().formatException(record.exc_info)
        d.pop("message", None)
        self.records.append(d)


@contextlib.contextmanager
def collect_records(level: int) -> Iterator[list[dict[str, Any]]]:
    """The ``mekit`` log records from ``level`` up while the block runs (see :class:`RecordCollector`)."""
    logger = logging.getLogger("mekit")
    handler = RecordCollector(level)
    old = logger.level
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def replay_records(records: list[dict[str, Any]]) -> None:
    """Handle records a unit sent back as if they were logged here (same handlers, same times)."""
    for d in records:
        logging.getLogger(str(d.get("name", "mekit"))).handle(logging.makeLogRecord(d))


# ---------------------------------------------------------------------------------------
# a unit's folder, sent and brought back
# ---------------------------------------------------------------------------------------
def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _safe_rel(rel: str, folder: Path) -> Path:
    """``folder / rel`` for a relative path that stays inside ``folder`` (anything else is refused)."""
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise DataError(f"a unit sent back the file {rel!r}; expected a path inside its folder", path=folder)
    return folder / p


def read_files(folder: Path, names: list[str] | None = None) -> list[tuple[str, bytes]]:
    """The files of ``folder`` (all, or the relative paths ``names`` that exist) as
    ``(relative path, bytes)``, oldest first."""
    if not folder.is_dir():
        return []
    if names is None:
        paths = [p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".tmp")]
    else:
        paths = [p for p in (_safe_rel(n, folder) for n in names) if p.is_file()]
    paths.sort(key=lambda p: (p.stat().st_mtime_ns, str(p)))
    return [(p.relative_to(folder).as_posix(), p.read_bytes()) for p in paths]


def write_files(folder: Path, files: list[tuple[str, bytes]], removed: Sequence[str] = ()) -> None:
    """Write ``files`` under ``folder`` in the order given, each atomically (a temporary file
    moved over the final name, so a file a run reads to decide it is done is never seen half
    written), then remove ``removed``."""
    for rel, data in files:
        p = _safe_rel(rel, folder)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=p.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, p)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    for rel in removed:
        _safe_rel(rel, folder).unlink(missing_ok=True)


def changed_files(folder: Path, sent: list[tuple[str, bytes]],
                  last: tuple[str, ...] = ()) -> tuple[list[tuple[str, bytes]], list[str]]:
    """What a unit did to its scratch ``folder``, which started with the files ``sent``: the files
    it wrote or changed (in the order written, those named in ``last`` at the end) and the sent
    files it removed."""
    before = {rel: _digest(data) for rel, data in sent}
    now = read_files(folder)
    present = {rel for rel, _ in now}
    new = [(rel, data) for rel, data in now if before.get(rel) != _digest(data)]
    new.sort(key=lambda f: Path(f[0]).name in last)  # stable: the order written, the done markers last
    return new, sorted(set(before) - present)


__all__ = ["Executor", "RecordCollector", "THREAD_VARIABLES", "Work", "changed_files", "collect_records",
           "fixed_threads", "read_files", "replay_records", "write_files"]
