"""What ``mekit app`` is started with: where it listens, which folders it may read, where it
writes, and the password. Validated once, here, before anything listens.

Safety rules decided here:

- The app listens on 127.0.0.1 unless a host is given. Any other host (``0.0.0.0``, a LAN
  address) exposes the app to other machines, so it refuses to start without a password; the
  password is then checked on every request (HTTP Basic auth, compared in constant time, see
  :mod:`mekit.app.server`). There are no share links or tunnels.
- Every path the user gives must resolve inside one of ``roots`` (default: the current folder)
  or the work folder (:mod:`mekit.app.sandbox`).
- Everything the app writes (job outputs, uploads) goes under ``workdir`` (default
  ``./mekit-app``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mekit.errors import ConfigError

#: hosts that only this machine can reach
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
#: the default upload limit (videos of whole recording sessions are large)
DEFAULT_MAX_UPLOAD = 2 * 1024**3
#: environment variable read when no password is given on the command line (a command-line
#: password is visible to other users of the machine in the process list)
PASSWORD_ENV = "MEKIT_APP_PASSWORD"


@dataclass(frozen=True)
class AppSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: folders the user may read datasets and files from (resolved, symlinks included)
    roots: tuple[Path, ...] = field(default_factory=lambda: (Path.cwd(),))
    #: the app's own folder: job outputs (``jobs/<id>/``) and uploads (``uploads/``)
    workdir: Path = field(default_factory=lambda: Path("mekit-app"))
    #: required when ``host`` is not a loopback address; optional otherwise
    password: str | None = None
    #: largest upload accepted, in bytes
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    #: background jobs that run at the same time; more wait their turn (queued)
    max_running_jobs: int = 2

    def __post_init__(self) -> None:
        if not self.password:
            object.__setattr__(self, "password", os.environ.get(PASSWORD_ENV) or None)
        if not self.is_loopback and not self.password:
            raise ConfigError(f"mekit app: listening on {self.host} lets other machines reach the app; give a "
                              f"password (--password or ${PASSWORD_ENV}), or leave out --host to stay on "
                              f"{DEFAULT_HOST}")
        if not self.roots:
            raise ConfigError("mekit app: give at least one --root folder")
        roots = []
        for r in self.roots:
            p = Path(os.path.realpath(Path(r).expanduser()))
            if not p.is_dir():
                raise ConfigError(f"mekit app: --root {r} is not a folder")
            roots.append(p)
        object.__setattr__(self, "roots", tuple(dict.fromkeys(roots)))
        work = Path(os.path.realpath(Path(self.workdir).expanduser()))
        try:
            work.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"mekit app: cannot create the work folder {work} ({e.strerror or e})") from None
        object.__setattr__(self, "workdir", work)
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError(f"mekit app: --port must be 0-65535, got {self.port!r}")
        if self.max_upload_bytes < 1:
            raise ConfigError("mekit app: the upload limit must be positive")
        if self.max_running_jobs < 1:
            raise ConfigError("mekit app: at least one job must be allowed to run")

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK

    @property
    def auth_required(self) -> bool:
        return bool(self.password)

    @property
    def jobs_dir(self) -> Path:
        return self.workdir / "jobs"

    @property
    def uploads_dir(self) -> Path:
        return self.workdir / "uploads"
