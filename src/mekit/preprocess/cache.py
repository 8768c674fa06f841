"""On-disk cache of preprocessing results: one file per (stage, sample), keyed by parameters.

Layout::

    <root>/<stage>/<key>/<sample file>.npz

``<key>`` is a short SHA-256 of a canonical JSON of ``{"stage", "version", "params"}``, where
``params`` holds every parameter that changes the stage's output (including those of the stages
it builds on). A changed parameter therefore lands in a new folder and only the stages that
depend on it recompute; stages that do not depend on it (face alignment when the flow method
changes, say) keep their key and are reused. Bump a stage's version when its code changes
what it writes. ``<sample file>`` is the sample id made file-safe plus a short hash of the
exact id, so ids that differ only in characters a file name cannot hold never collide.

Each entry is an uncompressed ``.npz`` holding the arrays plus ``__meta__`` (a JSON string:
stage, key, sample id, small scalar results) and ``__checksum__`` (CRC-32 of every array's
name, dtype, shape and bytes). Writes are atomic: the file is written to a temporary name in
the same folder, flushed, fsync'd and moved over the final name with :func:`os.replace`, so a
killed run leaves either the old entry, the new one or nothing (stray ``*.tmp`` files are
ignored and cleaned by :meth:`Cache.clear`). A truncated, garbage or checksum-mismatched entry
is logged, deleted and reported as missing, so the caller recomputes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_META = "__meta__"
_CHECKSUM = "__checksum__"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def canonical_json(obj: Any) -> str:
    """Stable JSON: sorted keys, no whitespace; tuples as lists, numpy scalars as Python ones."""

    def default(o: Any) -> Any:
        if isinstance(o, (np.integer,)):
            return int(o)
        if isinstance(o, (np.floating,)):
            return float(o)
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, (set, frozenset)):
            return sorted(o)
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"cannot hash parameter of type {type(o).__name__}: {o!r}")

    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=default, allow_nan=True)


def param_key(stage: str, params: Mapping[str, Any], version: int = 1) -> str:
    """Short stable hash of a stage's name, version and parameters (16 hex digits)."""
    text = canonical_json({"stage": stage, "version": int(version), "params": dict(params)})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sample_filename(sample_id: str) -> str:
    """File name for a sample id: readable, file-safe, and unique per exact id."""
    safe = _SAFE.sub("_", sample_id).strip("._") or "sample"
    digest = hashlib.sha1(sample_id.encode()).hexdigest()[:8]
    return f"{safe[-120:]}-{digest}.npz"


def _checksum(arrays: Mapping[str, np.ndarray]) -> int:
    crc = 0
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        crc = zlib.crc32(f"{name}|{a.dtype.str}|{a.shape}".encode(), crc)
        crc = zlib.crc32(a.data if a.size else b"", crc)  # type: ignore[arg-type]
    return crc


class Cache:
    """Per-stage, per-sample ``.npz`` entries under ``root`` (default ``cache_dir()/preprocess``).

    ``enabled=False`` makes every lookup a miss and every save a no-op, so the same code path
    runs with and without a cache.
    """

    def __init__(self, root: str | Path | None = None, enabled: bool = True, fsync: bool = True) -> None:
        if root is None:
            from mekit.paths import cache_dir

            root = cache_dir() / "preprocess"
        self.root = Path(root)
        self.enabled = bool(enabled)
        self.fsync = bool(fsync)

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r}, enabled={self.enabled})"

    # -- addressing -------------------------------------------------------------------------
    def path(self, stage: str, key: str, sample_id: str) -> Path:
        return self.root / stage / key / sample_filename(sample_id)

    # -- read -------------------------------------------------------------------------------
    def load(self, stage: str, key: str, sample_id: str,
             names: tuple[str, ...] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """``(arrays, meta)`` of a valid entry, or None when absent or corrupt (then deleted).

        ``names`` restricts the arrays returned (the checksum is still verified over all).
        """
        if not self.enabled:
            return None
        p = self.path(stage, key, sample_id)
        try:
            with np.load(p, allow_pickle=False) as z:
                files = set(z.files)
                if _META not in files or _CHECKSUM not in files:
                    raise ValueError("no metadata or checksum")
                meta = json.loads(str(z[_META]))
                stored = int(z[_CHECKSUM])
                arrays = {n: z[n] for n in z.files if n not in (_META, _CHECKSUM)}
        except FileNotFoundError:
            return None
        except Exception as e:  # truncated zip, garbage bytes, bad JSON, CRC error, ...
            self._discard(p, f"unreadable ({type(e).__name__}: {e})")
            return None
        if _checksum(arrays) != stored:
            self._discard(p, "checksum mismatch")
            return None
        if meta.get("sample_id") != sample_id or meta.get("key") != key or meta.get("stage") != stage:
            self._discard(p, f"belongs to {meta.get('stage')}/{meta.get('key')}/{meta.get('sample_id')}")
            return None
        if names is not None:
            arrays = {n: arrays[n] for n in names if n in arrays}
        return arrays, meta

    def contains(self, stage: str, key: str, sample_id: str) -> bool:
        """Whether a valid entry exists (reads and verifies it)."""
        return self.load(stage, key, sample_id) is not None

    def _discard(self, p: Path, why: str) -> None:
        log.warning("cache entry %s is corrupt (%s); it will be recomputed", p, why)
        try:
            p.unlink()
        except OSError:
            pass

    # -- write ------------------------------------------------------------------------------
    def save(self, stage: str, key: str, sample_id: str, arrays: Mapping[str, np.ndarray] | None = None,
             meta: Mapping[str, Any] | None = None) -> Path | None:
        """Write an entry atomically; returns its path (None when the cache is disabled)."""
        if not self.enabled:
            return None
        arrs = {str(k): np.ascontiguousarray(v) for k, v in (arrays or {}).items()}
        for k in arrs:
            if k in (_META, _CHECKSUM):
                raise ValueError(f"array name {k!r} is reserved")
        m = {**(meta or {}), "stage": stage, "key": key, "sample_id": sample_id}
        p = self.path(stage, key, sample_id)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=p.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrs, **{_META: np.array(json.dumps(m)),
                                        _CHECKSUM: np.array(_checksum(arrs), dtype=np.int64)})
                fh.flush()
                if self.fsync:
                    os.fsync(fh.fileno())
            os.replace(tmp, p)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return p

    # -- housekeeping -----------------------------------------------------------------------
    def clear(self, stage: str | None = None) -> None:
        """Delete every entry (of one stage, or all)."""
        target = self.root / stage if stage else self.root
        if target.exists():
            shutil.rmtree(target)

    def entries(self, stage: str) -> list[Path]:
        """Every entry file of a stage (all keys)."""
        d = self.root / stage
        return sorted(d.glob("*/*.npz")) if d.exists() else []


__all__ = ["Cache", "canonical_json", "param_key", "sample_filename"]
