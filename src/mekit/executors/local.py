"""The ``local`` executor: every unit in this process, one after another, in the order given."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from mekit import events
from mekit.executors.base import Executor, Work


class LocalExecutor(Executor):
    """Runs each unit here, in order: its events reach this context's listeners as it emits them
    (tagged with the unit's fields), its files go straight to its folder."""

    name = "local"

    def map(self, work: Work, units: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        for pos, unit in enumerate(units):
            with events.fields(**work.tags_of(unit)):
                res = work.fn(unit, work.state)
            yield pos, res


__all__ = ["LocalExecutor"]
