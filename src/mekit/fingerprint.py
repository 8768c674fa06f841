"""Fingerprints of the files behind a sample, of a whole sample table, and of mekit's code.

They decide when something computed earlier may be reused: a preprocessing cache entry
(its key holds the fingerprint of the sample's files) and the folds of an interrupted run
(its resume stamp holds the table's fingerprint and the code version).

What a file fingerprint holds, and why:

- a folder of frames: the name, size and modification time (ns) of every file in it. Hashing
  the contents of every frame would cost more than decoding them (CASME II: 16,000 JPEGs);
  size + mtime catches a frame that was re-exported, fixed or deleted, which is what happens in
  practice. A file edited in place with the same size within the same nanosecond is the one
  case it misses.
- a single still image or flow image (small files): a BLAKE2 hash of its bytes, plus its size.
  Cheap (CK+48: 981 files of ~2 KB), and unlike mtime it survives copying a corpus.
- a video: size + mtime (hashing hundreds of MB per recording is too slow to do on every run).
- a missing file or folder: the word "missing", so it changes when the file appears.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: single files up to this size are fingerprinted by content, bigger ones by size + mtime
CONTENT_HASH_MAX = 4 * 1024 * 1024


def _stat_sig(st: os.stat_result) -> str:
    return f"{st.st_size}:{st.st_mtime_ns}"


def file_fingerprint(path: str | Path) -> str:
    """Fingerprint of one file (content hash when small, else size + mtime)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return "missing"
    if p.is_dir():
        return folder_fingerprint(p)
    if st.st_size <= CONTENT_HASH_MAX:
        try:
            return f"{st.st_size}:{hashlib.blake2b(p.read_bytes(), digest_size=12).hexdigest()}"
        except OSError:
            return "unreadable"
    return _stat_sig(st)


def folder_fingerprint(path: str | Path) -> str:
    """Fingerprint of a folder's files (name, size, mtime of each, not recursive)."""
    h = hashlib.blake2b(digest_size=12)
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError:
        return "missing"
    for e in entries:
        try:
            st = e.stat()
        except OSError:
            continue
        h.update(f"{e.name}\0{_stat_sig(st)}\n".encode())
    return h.hexdigest()


def sample_fingerprint(row: Mapping[str, Any]) -> str:
    """Fingerprint of the files one sample is read from (its ``path`` by ``media`` kind)."""
    path = row.get("path")
    if path is None or (isinstance(path, float) and path != path):
        return "no-path"
    media = row.get("media")
    p = Path(str(path))
    if media == "frames" or p.is_dir():
        return folder_fingerprint(p)
    if media == "video":
        try:
            return _stat_sig(p.stat())
        except OSError:
            return "missing"
    return file_fingerprint(p)


def table_fingerprint(rows: Iterable[Mapping[str, Any]]) -> str:
    """One hash over every sample's id, label, subject, key frames and file fingerprint.

    A relabelled, added or removed sample, a moved apex, or a changed file changes it.
    """
    h = hashlib.sha256()
    folders: dict[str, str] = {}  # several samples can share one folder (CAS(ME)^3 long clips)
    for r in sorted(rows, key=lambda r: str(r["sample_id"])):
        path = str(r.get("path"))
        if path not in folders:
            folders[path] = sample_fingerprint(r)
        fields = [r.get(k) for k in ("sample_id", "label", "subject", "dataset", "onset", "apex", "offset")]
        h.update(("\0".join("" if v is None else str(v) for v in fields) + "\0" + folders[path] + "\n").encode())
    return h.hexdigest()[:24]


def code_version() -> str:
    """mekit's version plus a hash of its source files: a changed line of code changes it."""
    import mekit

    root = Path(mekit.__file__).parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        h.update(str(p.relative_to(root)).encode() + b"\0")
        try:
            h.update(p.read_bytes())
        except OSError:
            continue
    return f"{mekit.__version__}+{h.hexdigest()[:12]}"


__all__ = ["code_version", "file_fingerprint", "folder_fingerprint", "sample_fingerprint", "table_fingerprint"]
