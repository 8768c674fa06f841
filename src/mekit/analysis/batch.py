"""Several recordings analysed as units of work: one recording per unit, each with its own
report folder, on any executor of :mod:`mekit.executors` (this process, worker processes or the
tasks of a Ray cluster).

A recording analysed elsewhere writes its report in a scratch folder there and sends it back;
its folder here then holds what :func:`mekit.analysis.analyze.analyze` would have written
(``analysis.json``, the file that says an analysis is finished, last). The recordings and the
bundles named by path must be readable where the units run (a folder every machine mounts).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mekit import events
from mekit.errors import ConfigError


def batch_folders(inputs: Sequence[str | Path], out: str | Path) -> list[Path]:
    """A report folder under ``out`` per input, named by the input's file or folder name; two
    inputs of the same name are told apart by their parent folder, then by their position."""
    stems = [re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(p)).stem).strip("._") or "recording" for p in inputs]
    names = []
    for i, (p, stem) in enumerate(zip(inputs, stems)):
        if stems.count(stem) > 1:
            parent = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(p)).resolve().parent.name).strip("._")
            stem = f"{parent}_{stem}" if parent else stem
        names.append(stem)
    names = [n if names.count(n) == 1 else f"{n}_{i + 1}" for i, n in enumerate(names)]
    return [Path(out) / n for n in names]


def analyze_batch(inputs: Sequence[str | Path], out: str | Path | None = None, *, folders: Sequence[str | Path] |
                  None = None, executor: Any = "local", address: str | None = None, workers: int | None = None,
                  resume: bool = False, video: bool = True, **options: Any) -> list[Any]:
    """Analyse every recording of ``inputs`` (videos or frame folders) into ``out/<name>/``
    (:func:`batch_folders`; or into ``folders``, one per input), one unit of work each, on
    ``executor``: ``local`` (one after
    another, here), ``processes`` (``workers`` spawned processes, default one per recording up to
    the cores) or ``ray`` (one task per recording on the cluster at ``address``, default
    ``$RAY_ADDRESS``), or an executor object. ``resume``, ``video`` and ``options`` are those of
    :func:`~mekit.analysis.analyze.analyze`, the same for every recording. Returns each
    recording's :class:`~mekit.analysis.analyze.AnalysisResult`, in the order of ``inputs``.

    Events: an ``analyze_batch`` stage (one ``progress`` event per finished recording) around
    the recordings' own events, each of which carries its recording's ``video`` name."""
    from mekit.registry import resolve

    # absolute paths: a unit may run in another working folder (a cluster worker's)
    inputs = [_absolute(p) for p in inputs]
    options = {k: _absolute(v) if k in _PATH_OPTIONS else v for k, v in options.items()}
    if not inputs:
        raise ConfigError("analyze a batch: no recordings given; expected one or more videos or frame folders")
    if options.get("camera") is not None:
        raise ConfigError("analyze a batch: a camera is live and analysed on its own; give recordings, or "
                          "analyse the camera without a batch")
    if folders is not None:
        folders = [Path(f) for f in folders]
        if len(folders) != len(inputs):
            raise ConfigError(f"analyze a batch: {len(folders)} report folders for {len(inputs)} recordings; "
                              "expected one folder per recording")
    elif out is None:
        raise ConfigError("analyze a batch: give the parent folder of the reports (out) or a folder per recording")
    else:
        folders = batch_folders(inputs, out)
    units = [(inp, str(folder), bool(resume), bool(video), dict(options)) for inp, folder in zip(inputs, folders)]
    work = resolve("mekit.executors.base:Work")(
        _video_unit, None, tags=_video_tags, folder=_video_folder, relocate=_video_at, last=("analysis.json",),
        workers=workers or min(len(units), os.cpu_count() or 1), start="spawn", what="recording")
    results: list[Any] = [None] * len(units)
    get_executor = resolve("mekit.executors:get_executor")
    owned = isinstance(executor, str) or executor is None
    ex = get_executor(executor or "local", address=address) if owned else executor
    try:
        with events.Stage("analyze_batch", len(units), recordings=len(units)) as stage:
            for pos, res in ex.map(work, units):
                results[pos] = dataclasses.replace(res, out_dir=folders[pos])
                stage.advance(video=folders[pos].name)
    finally:
        if owned:
            ex.close()
    return results


#: options of analyze that may name a file (a bundle, a spotter file)
_PATH_OPTIONS = ("model", "intensity", "spotter")


def _absolute(p: Any) -> Any:
    """A path that exists here, made absolute; anything else (a bundle object, a registered
    spotter's name) as it is."""
    if isinstance(p, (str, Path)) and Path(p).expanduser().exists():
        return str(Path(p).expanduser().resolve())
    return p


def _video_unit(unit: tuple, state: Any = None) -> Any:
    """One recording's analysis (a unit of work; recordings share no state)."""
    from mekit.analysis.analyze import analyze

    inp, folder, resume, video, options = unit
    return analyze(inp, out=folder, resume=resume, video=video, **options)


def _video_tags(unit: tuple) -> dict[str, Any]:
    return {"video": Path(unit[1]).name}


def _video_folder(unit: tuple) -> str:
    return unit[1]


def _video_at(unit: tuple, folder: Path) -> tuple:
    """The recording analysed into ``folder`` (an executor's scratch folder) instead."""
    inp, _, resume, video, options = unit
    return inp, str(folder), resume, video, options


__all__ = ["analyze_batch", "batch_folders"]
