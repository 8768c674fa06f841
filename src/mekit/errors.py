"""Errors a user can act on. The CLI prints them as one clear message, never a traceback."""

from __future__ import annotations

from pathlib import Path


class MekitError(Exception):
    """Base class: the message alone tells the user what is wrong and what was expected."""


class ConfigError(MekitError):
    """A configuration value, override or name is invalid."""


class DataError(MekitError):
    """Input data is missing or malformed.

    The message names the file (and row or value where there is one) and what was expected.
    """

    def __init__(self, message: str, path: str | Path | None = None, row: int | None = None,
                 value: object = None, expected: str | None = None) -> None:
        parts = []
        if path is not None:
            parts.append(str(path))
        if row is not None:
            parts.append(f"row {row}")
        where = ", ".join(parts)
        text = f"{where}: {message}" if where else message
        if value is not None:
            text += f" (got {value!r})"
        if expected:
            text += f"; expected {expected}"
        super().__init__(text)
        self.path = None if path is None else Path(path)
        self.row = row
        self.value = value
        self.expected = expected
