"""The Build-a-dataset screen's background jobs: the spotter's suggestions (what ``mekit analyze``
finds) and the export of the marked clips (what ``mekit extract`` writes), followed by the data
check the Data screen shows.

They run in a job process (:mod:`mekit.app.jobs`), so this module imports nothing heavy at the
top. ``params`` were checked by :mod:`mekit.app.routes_build` (paths resolved inside the allowed
folders); the rest is checked by the library, whose one-line error the page shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mekit import events

#: the columns of a suggestion sent to the page
_SUGGESTION = ("onset", "apex", "offset", "onset_s", "offset_s", "kind", "score")


def spot(params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """The training-free spotter over the recording (:func:`mekit.analysis.analyze.analyze`
    without bundles and without the annotated video): its intervals, as suggestions, and its
    report folder (``analysis/``: intervals.csv, frames.csv, timeline.png)."""
    from mekit.analysis.analyze import analyze

    res = analyze(params["video"], out=out_dir / "analysis", video=False, fps=params.get("fps"))
    df = res.intervals
    rows = [] if df is None or not len(df) else df[[c for c in _SUGGESTION if c in df.columns]].to_dict("records")
    s = res.summary
    return {"intervals": rows, "frames": s.get("frames"), "fps": s.get("fps"),
            "frames_without_face": s.get("frames_without_face"),
            "timeline": "analysis/timeline.png" if (out_dir / "analysis" / "timeline.png").is_file() else None}


def export(params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """``mekit extract`` of the marked clips, then ``mekit data check`` of the dataset written:
    what was written and left out, the check report, and the clips as the loader reads them."""
    from mekit.data.check import check_dataset
    from mekit.data.extract import extract_intervals

    rows = [{"onset": c["onset"], "apex": c.get("apex"), "offset": c["offset"], "emotion": c.get("emotion") or "",
             "action_units": c.get("action_units") or "", "kind": c.get("kind") or ""} for c in params["clips"]]
    res = extract_intervals(params["video"], rows, params["out"], subject=params.get("subject", "1"),
                            context=float(params.get("context") or 0.0), fps=params.get("fps"),
                            sheet_format=params.get("sheet_format", "xlsx"), overwrite=bool(params.get("overwrite")),
                            append=bool(params.get("append")))

    def progress(stage: str, done: int, total: int) -> None:
        events.emit("progress", stage=stage, done=done, total=total)

    report = check_dataset(res.table, duplicate_threshold=None, check_images=True, progress=progress)
    cols = [c for c in ("sample_id", "subject", "onset", "apex", "offset", "emotion", "label") if c in res.table.df]
    loaded = res.table.df[cols].astype(object).where(res.table.df[cols].notna(), None).to_dict("records")
    return {"out": str(res.out), "sheet": str(res.sheet), "layout": res.layout, "loader": res.layout,
            "clips": res.clips, "problems": res.problems, "notes": res.notes, "lines": res.lines(),
            "check": report.to_dict(), "loaded": loaded}


__all__ = ["export", "spot"]
