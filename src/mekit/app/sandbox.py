"""Every path and file the app touches on the user's behalf goes through here.

Rules (each one has a test in ``tests/app/test_sandbox.py``):

- A path the user gives (a dataset folder, a sheet, a bundle, a folder to browse) must resolve,
  with :func:`os.path.realpath` (so symlinks are followed to where they really point), inside one
  of the allowed roots (``--root``) or the app's work folder. Anything else is refused with
  :class:`Forbidden` (HTTP 403) and one message. ``..`` is refused outright, whatever it would
  resolve to, and so is a NUL byte; percent-encoded text (``%2e%2e%2f``, also encoded twice) is
  decoded before it is judged, so an encoded traversal is refused like a plain one.
- Uploads are written only to ``<workdir>/uploads/`` under a generated name (a random token plus a
  cleaned copy of the original stem), never under the name the client sent. Their size is capped
  while they stream in (a lying or absent Content-Length changes nothing) and their type is
  checked twice: the extension must be one of the kind asked for, and the first bytes must be
  that format's signature (``magic``). A refused upload leaves no file behind.

How to use it from a route: ``sandbox.resolve(text, want="dir")`` returns a real, allowed
:class:`~pathlib.Path` or raises; ``sandbox.browse(text)`` lists sub-folders for the folder
picker; ``await sandbox.save_upload(request.stream(), filename, kind)`` stores an upload. To
accept a new kind of upload, add it to :data:`UPLOAD_KINDS` (extensions and signatures).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from mekit.errors import MekitError


class Forbidden(MekitError):
    """A path outside the allowed folders (HTTP 403)."""

    status = 403


class UploadRefused(MekitError):
    """An upload of the wrong type (415), too large (413) or malformed (400)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class NotFound(MekitError):
    """An allowed path that does not exist, or is not what was asked for (HTTP 404)."""

    status = 404


@dataclass(frozen=True)
class UploadKind:
    extensions: tuple[str, ...]
    #: (offset, bytes) pairs; the file must match at least one
    magic: tuple[tuple[int, bytes], ...]
    what: str


_ZIP = ((0, b"PK\x03\x04"),)
#: what each kind of upload may be. ftyp at offset 4 is the ISO base media box (mp4, mov, m4v);
#: RIFF is AVI's container; 1A45DFA3 is EBML (mkv, webm)
UPLOAD_KINDS: dict[str, UploadKind] = {
    "video": UploadKind((".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm"),
                        ((4, b"ftyp"), (0, b"RIFF"), (0, b"\x1a\x45\xdf\xa3")), "a video (mp4, mov, avi, mkv, webm)"),
    "bundle": UploadKind((".mekit", ".zip"), _ZIP, "a mekit bundle (.mekit, a zip file)"),
    "image": UploadKind((".jpg", ".jpeg", ".png", ".bmp"),
                        ((0, b"\xff\xd8\xff"), (0, b"\x89PNG\r\n\x1a\n"), (0, b"BM")), "an image (jpg, png, bmp)"),
}
#: bytes read before the type is sniffed
_SNIFF = 16


def _decoded(text: str) -> str:
    """Percent-decoding applied until nothing changes (at most 3 times): ``%252e`` -> ``%2e`` -> ``.``."""
    for _ in range(3):
        if not re.search(r"%[0-9a-fA-F]{2}", text):
            break
        text = unquote(text)
    return text


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


class Sandbox:
    """The allowed roots and the work folder, and the checks against them."""

    def __init__(self, roots: Iterable[Path], workdir: Path, max_upload_bytes: int) -> None:
        self.roots = tuple(Path(os.path.realpath(r)) for r in roots)
        self.workdir = Path(os.path.realpath(workdir))
        self.max_upload_bytes = int(max_upload_bytes)

    @property
    def allowed(self) -> tuple[Path, ...]:
        return (*self.roots, self.workdir)

    def is_allowed(self, path: str | Path) -> bool:
        real = Path(os.path.realpath(path))
        return any(_inside(real, a) for a in self.allowed)

    def describe(self) -> str:
        return ", ".join(str(a) for a in self.allowed)

    # -- paths ---------------------------------------------------------------------------------
    def resolve(self, text: str | os.PathLike[str], *, want: str | None = None, base: Path | None = None) -> Path:
        """The real path ``text`` names, checked to lie in an allowed folder.

        Args:
            want: ``"dir"`` or ``"file"``: it must exist and be one (404 otherwise); ``None``: it
                need not exist (a folder to write into), but where it would be must be allowed.
            base: what a relative path is relative to (default: the first root).
        """
        raw = os.fspath(text)
        if not isinstance(raw, str) or not raw.strip():
            raise Forbidden("no path given")
        s = _decoded(raw.strip())
        if "\x00" in s:
            raise Forbidden("refused: the path contains a NUL byte")
        if ".." in re.split(r"[\\/]+", s):
            raise Forbidden(f"refused: '..' is not allowed in paths ({raw!r}); give the folder itself")
        p = Path(s).expanduser() if s.startswith("~") else Path(s)
        if not p.is_absolute():
            p = (base or self.roots[0]) / p
        real = Path(os.path.realpath(p))
        if not any(_inside(real, a) for a in self.allowed):
            raise Forbidden(f"refused: {raw} is outside the folders this app may use ({self.describe()}); "
                            f"start the app with --root to allow another folder")
        if want == "dir" and not real.is_dir():
            raise NotFound(f"{raw} is not a folder" if real.exists() else f"{raw} does not exist")
        if want == "file" and not real.is_file():
            raise NotFound(f"{raw} is not a file" if real.exists() else f"{raw} does not exist")
        return real

    def child(self, folder: Path, relative: str) -> Path:
        """A file inside ``folder`` (a job's output folder) named by a relative path from a URL:
        the same checks, with ``folder`` as the only allowed place."""
        s = _decoded(relative)
        if "\x00" in s or ".." in re.split(r"[\\/]+", s) or s.startswith(("/", "\\")):
            raise Forbidden(f"refused: {relative!r} is not a plain path inside this job's folder")
        folder = Path(os.path.realpath(folder))
        real = Path(os.path.realpath(folder / s))
        if not _inside(real, folder):
            raise Forbidden(f"refused: {relative!r} leaves this job's folder")
        if not real.is_file():
            raise NotFound(f"{relative} does not exist")
        return real

    def browse(self, text: str | None = None) -> dict[str, Any]:
        """The folder picker: ``text=None`` lists the allowed folders themselves; a folder lists
        its sub-folders (hidden ones and those whose real place is not allowed are left out)."""
        if not text:
            entries = [{"name": str(a), "path": str(a)} for a in self.roots]
            entries.append({"name": f"{self.workdir} (work folder)", "path": str(self.workdir)})
            return {"path": None, "parent": None, "folders": entries, "files": 0, "truncated": False}
        folder = self.resolve(text, want="dir")
        folders, files, limit = [], 0, 500
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    if entry.name.startswith("."):
                        continue
                    try:
                        is_dir = entry.is_dir()
                    except OSError:
                        continue
                    if not is_dir:
                        files += 1
                    elif self.is_allowed(entry.path):
                        folders.append(entry.name)
        except OSError as e:
            raise Forbidden(f"cannot list {folder} ({e.strerror or e})") from None
        folders.sort(key=_natural)
        parent = folder.parent if folder not in self.allowed and self.is_allowed(folder.parent) else None
        return {"path": str(folder), "parent": None if parent is None else str(parent),
                "folders": [{"name": n, "path": str(folder / n)} for n in folders[:limit]],
                "files": files, "truncated": len(folders) > limit}

    # -- uploads -------------------------------------------------------------------------------
    async def save_upload(self, chunks: AsyncIterator[bytes], filename: str, kind: str,
                          declared_size: int | None = None) -> Path:
        """Stream an upload into ``<workdir>/uploads/`` and return where it went.

        Checked: the kind is known, the extension is one of its extensions, the declared and
        actual sizes stay under the limit, the first bytes carry the format's signature.
        Anything refused is deleted before the error is raised.
        """
        spec = UPLOAD_KINDS.get(kind)
        if spec is None:
            raise UploadRefused(f"unknown upload kind {kind!r}; expected one of {sorted(UPLOAD_KINDS)}")
        name = _decoded(os.path.basename(str(filename or "").replace("\\", "/")))
        ext = os.path.splitext(name)[1].lower()
        if ext not in spec.extensions:
            raise UploadRefused(f"refused: {filename!r} is not {spec.what}; expected a name ending in "
                                f"{', '.join(spec.extensions)}", 415)
        limit = self.max_upload_bytes
        if declared_size is not None and declared_size > limit:
            raise UploadRefused(f"refused: the upload is {declared_size} bytes, over the limit of {limit} bytes", 413)
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", os.path.splitext(name)[0]).strip("_")[:60] or "upload"
        folder = self.workdir / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{secrets.token_hex(8)}-{stem}{ext}"
        part = target.with_name(target.name + ".part")
        size, head, ok = 0, b"", False
        try:
            with open(part, "xb") as f:
                async for chunk in chunks:
                    if not chunk:
                        continue
                    size += len(chunk)
                    if size > limit:
                        raise UploadRefused(f"refused: the upload is over the limit of {limit} bytes", 413)
                    if len(head) < _SNIFF:
                        head += chunk[: _SNIFF - len(head)]
                        if len(head) >= _SNIFF and not _sniff(head, spec):
                            raise UploadRefused(f"refused: {filename!r} does not look like {spec.what} "
                                                f"(its first bytes are not that format's)", 415)
                    f.write(chunk)
            if size == 0:
                raise UploadRefused("refused: the upload is empty")
            if len(head) < _SNIFF and not _sniff(head, spec):
                raise UploadRefused(f"refused: {filename!r} does not look like {spec.what}", 415)
            os.replace(part, target)
            ok = True
        finally:
            if not ok:
                part.unlink(missing_ok=True)
        return target


def _sniff(head: bytes, spec: UploadKind) -> bool:
    return any(head[off:off + len(sig)] == sig for off, sig in spec.magic)


def _natural(s: str) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


__all__ = ["Forbidden", "NotFound", "Sandbox", "UPLOAD_KINDS", "UploadKind", "UploadRefused"]
