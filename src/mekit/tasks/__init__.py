"""Registered tasks: what an experiment learns and how it is scored (see :mod:`mekit.tasks.base`).

``config.task`` names one of them; :func:`mekit.experiment.run_experiment` runs any of them
through the same fold loop. Entries are lazy (``"module:attr"``), so naming the tasks imports
neither scikit-learn nor torch.
"""

from __future__ import annotations

from typing import Any

from mekit.registry import Registry, resolve
from mekit.tasks.base import FoldJob, Prepared, fold_dir, fold_dir_name, save_fold_table

TASKS: Registry[Any] = Registry("task")
TASKS.add("classification", "mekit.tasks.classification:TASK",
          help="one emotion class per sample; scored by UF1, UAR, accuracy")
TASKS.add("intensity", "mekit.tasks.intensity:TASK",
          help="continuous 0-1 intensity per frame, clip or image (see mekit.intensity); scored by MAE, "
               "CCC, ICC and apex timing")


def get_task(name: str) -> Any:
    """The task object registered as ``name`` (a ConfigError naming the known tasks otherwise)."""
    return resolve(TASKS.get(name))


__all__ = ["TASKS", "FoldJob", "Prepared", "fold_dir", "fold_dir_name", "get_task", "save_fold_table"]
