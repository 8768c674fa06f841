"""Where mekit keeps generated data and caches (never inside a corpus folder)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Root of mekit's on-disk caches: $MEKIT_CACHE, else $XDG_CACHE_HOME/mekit, else ~/.cache/mekit."""
    env = os.environ.get("MEKIT_CACHE")
    if env:
        p = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        p = Path(base) / "mekit"
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        from mekit.errors import ConfigError

        raise ConfigError(f"mekit cache folder {p} cannot be created ({e.strerror or e}); expected a writable "
                          f"folder: set MEKIT_CACHE to one") from None
    return p
