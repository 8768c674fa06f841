"""One small registry for every open set of choices (datasets, schemes, models, ...).

Names are stable snake_case strings; configs refer to components by name, never by
pickled objects. Registering a name twice is an error, so two plugins cannot
silently shadow each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from mekit.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of factories (classes or functions)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator: ``@REG.register("name", help="...")``."""

        def deco(obj: T) -> T:
            self.add(name, obj, **meta)
            return obj

        return deco

    def add(self, name: str, obj: T, **meta: Any) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj
        self._meta[name] = dict(meta)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "(none)"
            raise ConfigError(f"unknown {self.kind} {name!r}; expected one of: {known}") from None

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return dict(self._meta[name])

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
