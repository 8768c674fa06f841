"""The ``processes`` executor: units in a pool of worker processes on this machine.

Workers are forked (they start in milliseconds with everything imported, and work from a user's
script or notebook without a ``__main__`` guard) or, where a forked child cannot work, spawned
(neural folds on CUDA: a forked child cannot use its parent's CUDA context, a spawned one makes
its own, so ``workers`` spawned processes are GPU slots). One worker, or one unit, runs in this
process (:class:`~mekit.executors.local.LocalExecutor`).

The function and the state reach workers as the arguments of the pool's initializer (once per
worker), never through shared module state: a spawned worker receives them pickled (the function
must then be a module-level one), a forked one inherits them without a copy.

The events a unit emits carry its tags (a fold's ``fold`` and ``seed``). Workers send theirs back
through a pipe (only when this context has listeners); they are emitted here, in the calling
thread and context, while the units run, and all of a unit's events before its result.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

from mekit import events
from mekit.executors.base import Executor, Work
from mekit.executors.local import LocalExecutor
from mekit.procs import die_with_parent

#: in a worker process: the function, the state and the event queue, received as the arguments
#: of the pool's initializer (:func:`init_worker`). Set only in workers.
_WORKER: dict[str, Any] = {}


class ProcessExecutor(Executor):
    """``workers`` processes started by ``start`` (``fork`` or ``spawn``); None takes the work's own
    (``Work.workers``, ``Work.start``: for folds, ``protocol.workers`` and
    :func:`mekit.experiment.fold_workers`'s choice). Results arrive in the order units finish."""

    name = "processes"

    def __init__(self, workers: int | None = None, start: str | None = None) -> None:
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            from mekit.errors import ConfigError

            raise ConfigError(f"executor processes: workers {workers!r}; expected a positive integer")
        self.workers, self.start = workers, start

    def describe(self) -> str:
        return f"processes ({self.workers} workers)" if self.workers else "processes"

    def map(self, work: Work, units: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        workers = int(self.workers or work.workers)
        start = self.start or work.start
        if workers <= 1 or len(units) <= 1:
            yield from LocalExecutor().map(work, units)
            return
        import multiprocessing as mp

        ctx = mp.get_context(start)
        # a SimpleQueue writes each event to its pipe before ``put`` returns (no feeder thread), so
        # a unit's events are all in the pipe before its result reaches this process
        queue = ctx.SimpleQueue() if events.active() else None

        def drain() -> None:
            while queue is not None and not queue.empty():
                events.deliver(queue.get())

        try:
            with ctx.Pool(min(workers, len(units)), initializer=work.init or init_worker,
                          initargs=(os.getpid(), work.fn, work.state, queue)) as pool:
                results = pool.imap_unordered(_run_detached, [(i, u, work.tags_of(u)) for i, u in enumerate(units)])
                while True:
                    try:
                        res = results.next(timeout=0.1)
                    except mp.TimeoutError:
                        drain()
                        continue
                    except StopIteration:
                        break
                    drain()
                    yield res
            drain()
        finally:
            if queue is not None:
                queue.close()


def init_worker(parent: int, fn: Any, state: Any, queue: Any) -> None:
    """A worker's start: die with the parent, keep the function, the state and the event queue."""
    die_with_parent(parent)
    _WORKER.update(fn=fn, state=state, queue=queue)


def _run_detached(item: tuple[int, Any, dict[str, Any]]) -> tuple[int, Any]:
    """The function in a worker, in a fresh context. A fork copies the parent's listeners (a
    terminal display, the run.log writer) together with any lock one of their threads held at
    that moment, so a worker calling them could hang or draw over the parent's display. Its only
    listener, when the parent listens, puts each event on the parent's queue; the parent emits
    them and reports each unit as its result arrives."""
    import contextvars

    return contextvars.Context().run(_in_worker, *item)


def _in_worker(pos: int, unit: Any, tags: dict[str, Any]) -> tuple[int, Any]:
    queue = _WORKER.get("queue")
    with contextlib.ExitStack() as stack:
        if queue is not None:
            stack.enter_context(events.listen(queue.put))
        stack.enter_context(events.fields(**tags))
        return pos, _WORKER["fn"](unit, _WORKER["state"])


__all__ = ["ProcessExecutor", "init_worker"]
