"""The Data screen's background jobs: each one calls the library functions the ``mekit data
check``, ``mekit eda``, ``mekit preview`` and ``mekit preprocess`` commands call, and returns
what the page shows as JSON.

They run in a job process (:mod:`mekit.app.jobs`), so this module imports nothing heavy at the
top: the server imports it only to name its functions. ``params`` were checked by
:mod:`mekit.app.routes_data` (loader known, paths resolved inside the allowed folders,
option values parsed); what is left to check (a preprocessing setting, a loader option's value)
is checked by the library, whose one-line error the page shows.

The check job also runs the EDA on the samples that passed the check, so one click gives the
table and the plots (the dataset is loaded once).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mekit import events

#: sample ids sent to the page for the preview picker (a corpus has a few hundred clips;
#: an image folder may have tens of thousands)
MAX_SAMPLES_LISTED = 5000


def _loader_args(params: dict[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    options = dict(params.get("options") or {})
    if params["loader"] == "synthetic":
        # generating the corpus the first time takes a while: show it as a stage
        def generated(done: int, total: int) -> None:
            events.emit("progress", stage="generate", done=done, total=total)

        options["progress"] = generated
    return params["loader"], params.get("root"), options


def _load(params: dict[str, Any]) -> Any:
    from mekit.data import load_dataset

    loader, root, options = _loader_args(params)
    events.emit("stage_start", stage="load", total=None, loader=loader)
    table = load_dataset(loader, root, label_scheme=params.get("label_scheme"), **options)
    events.emit("stage_end", stage="load", done=len(table.df), total=len(table.df), loader=loader, ok=True)
    return table


def check(params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """``mekit data check`` and ``mekit eda``: the report (counts, missing, problems, notes),
    the samples that passed (for the preview picker) and the EDA figures (``eda/*.png``)."""
    from mekit.analysis.eda import run_eda
    from mekit.data.check import check_dataset

    def progress(stage: str, done: int, total: int) -> None:
        events.emit("progress", stage=stage, done=done, total=total)

    table = _load(params)
    threshold = params.get("duplicate_threshold", 4)
    report = check_dataset(table, duplicate_threshold=None if threshold is None or threshold < 0 else threshold,
                           check_images=bool(params.get("check_images", True)), progress=progress)
    result: dict[str, Any] = report.to_dict()
    kept = report.table
    rows = [] if kept is None else kept.df[["sample_id", "subject", "label"]].astype(str).values.tolist()
    result["samples"] = [{"id": s, "subject": subj, "label": lab} for s, subj, lab in rows[:MAX_SAMPLES_LISTED]]
    result["samples_truncated"] = len(rows) > MAX_SAMPLES_LISTED
    result["eda"] = None
    if kept is not None and len(kept.df):
        events.emit("stage_start", stage="eda", total=1)
        eda = run_eda(kept, out_dir / "eda", samples_per_class=int(params.get("samples_per_class", 6)))
        events.emit("stage_end", stage="eda", done=1, total=1, ok=True)
        eda["figures"] = {k: f"eda/{v}" for k, v in eda["figures"].items()}
        result["eda"] = eda
    return result


def preview(params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """``mekit preview``: one PNG per chosen sample (crops, landmarks and regions, flow in
    colour, strain), in ``preview/``."""
    from mekit.preprocess.preview import preview as draw

    table = _load(params)
    samples = params.get("samples") or None
    paths = draw(table, dict(params.get("settings") or {}), sample_ids=samples, out_dir=out_dir / "preview",
                 limit=int(params.get("limit", 4)))
    written = {p.name for p in paths}
    asked = samples or table.sample_ids[: int(params.get("limit", 4))]
    from mekit.preprocess.preview import preview_filename

    return {"previews": [{"sample": s, "file": f"preview/{preview_filename(s)}"}
                         for s in asked if preview_filename(s) in written],
            "missing": [s for s in asked if preview_filename(s) not in written]}


def preprocess(params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """``mekit preprocess``: every clip into the cache; the summary (clips done, computed,
    cached, skipped with reasons, seconds per stage)."""
    from mekit.preprocess.pipeline import preprocess as run

    table = _load(params)
    result = run(table, dict(params.get("settings") or {}))
    summary = result.summary()
    result.close()
    if summary["clips"] and not summary["done"]:
        from mekit.errors import DataError

        first = next(iter(summary["skipped"].items()), ("", ""))
        raise DataError(f"every one of the {summary['clips']} clips failed to preprocess "
                        f"(first: {first[0]}: {first[1]})")
    return summary


__all__ = ["check", "preprocess", "preview"]
