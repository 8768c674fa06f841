"""Worker processes that never outlive the run that started them."""

from __future__ import annotations

import os
import sys


def die_with_parent(parent: int) -> None:
    """Call first thing in a forked worker: the kernel kills it when ``parent`` (the pid of the
    process that started it) dies. A run killed with SIGKILL would otherwise leave its workers
    computing, orphaned, for hours. Linux only (``prctl(PR_SET_PDEATHSIG)``); elsewhere workers
    still end with their pool when the parent exits normally."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # no prctl: workers end with the pool as before
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
