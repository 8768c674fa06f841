"""What a result was computed with: Python, platform, package versions, mekit's code.

In the bottom layer so that bundles (engine) and reports (evaluation) record the same thing.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def environment(seed: int) -> dict[str, Any]:
    from importlib import metadata

    pkgs = {}
    for name in ("mekit", "numpy", "scipy", "pandas", "scikit-learn", "imbalanced-learn", "torch",
                 "opencv-contrib-python-headless", "mediapipe", "lightgbm", "flaml"):
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent).stdout.strip() or None
        # a commit hash alone misleads when the working tree had uncommitted changes
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                    text=True, timeout=5, cwd=Path(__file__).resolve().parent).stdout.strip()
                     ) if commit else None
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {"python": sys.version.split()[0], "platform": platform.platform(), "packages": pkgs,
            "seed": seed, "git_commit": commit, "git_dirty": dirty, "code_version": _code_version(),
            "created": datetime.now(timezone.utc).isoformat()}


def _code_version() -> str:
    from mekit.fingerprint import code_version

    return code_version()
