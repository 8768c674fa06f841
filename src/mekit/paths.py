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


def prepare_out_dir(path: str | Path, what: str = "output folder") -> Path:
    """Create (if needed) and return a folder mekit will write into; one clear error when the
    path is a file, lies under a file, or cannot be written."""
    from mekit.errors import DataError

    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DataError(f"the {what} is a file, not a folder (or lies under a file)", path=p,
                        expected="a folder (new or existing)") from None
    except OSError as e:
        raise DataError(f"cannot create the {what} ({e.strerror or e})", path=p, expected="a writable folder") from None
    try:
        probe_writable(p)
    except OSError:
        raise DataError(f"the {what} is not writable", path=p, expected="a writable folder") from None
    return p


def probe_writable(folder: str | Path) -> None:
    """Create and delete a file in ``folder``; OSError when that fails. A real file, because
    permission bits say nothing for root, nor for a read-only or full file system."""
    import tempfile

    fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=folder)
    os.close(fd)
    os.unlink(probe)


def move_into_place(staged: str | Path, out: str | Path, *, replace: bool, what: str = "output folder") -> None:
    """Rename a finished folder ``staged`` (built beside ``out``) to ``out`` in one step, so a
    reader never sees half of it. An empty ``out`` is replaced; a non-empty one only with
    ``replace`` (moved aside first, then deleted), otherwise refused: it appeared while the
    folder was being built."""
    import shutil
    import tempfile

    from mekit.errors import DataError

    staged, out = Path(staged), Path(out)
    if out.exists():
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        elif replace:
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
            shutil.rmtree(old, ignore_errors=True)
        else:
            raise DataError(f"the {what} appeared while it was being written", path=out,
                            expected="a new or empty folder")
    os.replace(staged, out)
