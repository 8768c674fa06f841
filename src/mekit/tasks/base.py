"""What a task is: the contract between a task plug-in and the one fold loop of :mod:`mekit.experiment`.

A task says what an experiment learns and how it is scored; the loop does everything else
(load, resume, protocol folds, where folds run, run.log, excluded samples, timings) the same way
for every task. A task is an object with:

- ``name``, ``help`` and ``inputs_stage`` (the name of its inputs stage in events and in
  ``metrics.json``'s ``timing_s``); optionally ``samples``, what a dataset must hold for it in
  words (``"labelled samples"``; ``"samples"`` when absent);
- ``check(cfg) -> settings``: the task's own checks after :func:`~mekit.evaluation.validate.validate_config`,
  returning whatever settings object its other calls take;
- ``prepare(cfg, settings, table) -> Prepared``: targets and inputs of every usable sample
  (preprocessing runs here, through the inputs the task builds, in its own ``preprocess`` stage);
- ``fold`` and ``read_fold``: module-level functions (so a process pool or a cluster can run
  them): ``fold(job, state) -> (index, result)`` fits on ``job.fold.train_ids`` and predicts
  ``job.fold.test_ids`` from the arguments alone and saves the fold under ``job.fold_dir``;
  ``read_fold(folder)`` reads a saved fold back exactly;
- ``neural(cfg) -> bool``: whether folds train a torch model (CUDA folds run one at a time);
- ``summarise(cfg, settings, prepared, protocol, results) -> result``: metrics and the task's
  result object (with ``config``, ``predictions``, ``metrics``, ``out_dir``, ``skipped``,
  ``excluded``);
- ``write_report(result, out_dir, table) -> Path`` and ``summary_line(result) -> str`` (rich markup,
  what the command line prints).

Tasks are registered in :data:`mekit.tasks.TASKS` under the name ``config.task`` gives.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd


class FoldJob(NamedTuple):
    """One unit of work of the fold loop: everything a fold function needs besides the run's state."""

    #: position of the fold in its seed's fold list (results are put back in this order)
    index: int
    seed: int
    #: a :class:`mekit.evaluation.protocols.Fold` (name, train ids, test ids)
    fold: Any
    #: where the fold saves itself (None: the run has no folder)
    fold_dir: Path | None


@dataclass
class Prepared:
    """What a task built before the folds: the samples folds are drawn from and their inputs."""

    #: the samples with targets and inputs, in the loaded table's order
    usable: Any
    #: the fold function's state (passed to every fold as an argument, never through globals)
    state: dict[str, Any]
    #: sample id -> why it was left out (preprocessing, features, targets)
    skipped: dict[str, str] = field(default_factory=dict)
    #: sample id -> the stage that left it out, where not "preprocess" (e.g. "targets")
    skipped_stage: dict[str, str] = field(default_factory=dict)
    #: what the resume stamp must also match beyond config, table and code (e.g. ratings read
    #: from a column the table fingerprint does not cover); any JSON-able value
    stamp_extra: Any = None


def fold_dir_name(fold: str) -> str:
    """A file-safe folder name for a fold, unique per exact fold name: a readable slug plus a
    short hash of the name (subjects ``P:1`` and ``P_1`` share a slug, never a folder)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", fold).strip("._")[:80] or "fold"
    return f"{slug}-{hashlib.sha1(fold.encode()).hexdigest()[:8]}"


def fold_dir(out_dir: Path | None, seed: int, fold: str) -> Path | None:
    """Where fold ``fold`` of seed ``seed`` is saved in run folder ``out_dir``."""
    if out_dir is None:
        return None
    return out_dir / "folds" / f"seed{seed}" / fold_dir_name(fold)


def save_fold_table(df: pd.DataFrame, path: Path) -> None:
    """Write a fold's table atomically: a fold counts as done once its ``predictions.csv``
    exists, so that file must never be seen half written (write it after the fold's other files)."""
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(path)
