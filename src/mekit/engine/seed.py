"""Seeding and CPU threading, so the same seed and data give identical predictions."""

from __future__ import annotations

import os
import random

import numpy as np


def cpu_threads(requested: int = 0) -> int:
    """Threads for torch: ``requested`` if > 0, else the cores this process may use."""
    if requested > 0:
        return requested
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def seed_everything(seed: int, threads: int = 0) -> None:
    """Seed Python, NumPy and torch; make torch deterministic; fix the thread count
    (float reductions split over a different number of threads can differ in the last bit)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.set_num_threads(cpu_threads(threads))
