"""The Literature screen's background job: :func:`mekit.analysis.litmap.litmap` (what ``mekit
litmap`` calls) on uploaded exports or the example bibliography, and what the page shows of it.

It runs in a job process (:mod:`mekit.app.jobs`), so this module imports nothing heavy at the
top. ``params`` were checked by :mod:`mekit.app.routes_litmap` (files resolved inside the
allowed folders, options validated).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from mekit import events

#: rows of terms.csv sent to the page (the whole table is a download)
TOP_TERMS = 40
#: issues sent to the page (all of them are in issues.csv)
MAX_ISSUES = 100


def _rows(path: Path, limit: int) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        out = []
        for i, row in enumerate(csv.DictReader(f)):
            if i >= limit:
                break
            out.append(row)
        return out


def run(params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Map the literature into ``litmap/``; returns the summary, the top terms, the communities,
    the issues, the figures and every file (plus ``litmap.zip`` with all of them)."""
    import zipfile

    from mekit.analysis.litmap import OUTPUTS, litmap, litmap_example

    dest = out_dir / "litmap"
    options = dict(params.get("options") or {})
    events.emit("stage_start", stage="litmap", total=None)
    if params.get("example"):
        res = litmap_example(dest, **options)
    else:
        res = litmap(params["files"], dest, **options)
    events.emit("stage_end", stage="litmap", done=1, total=1, ok=True)
    with zipfile.ZipFile(out_dir / "litmap.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for name in OUTPUTS:
            z.write(dest / name, f"litmap/{name}")
    summary = res.to_dict()
    summary.pop("out_dir", None)
    return {
        **summary,
        "top_terms": _rows(dest / "terms.csv", TOP_TERMS),
        "issue_rows": _rows(dest / "issues.csv", MAX_ISSUES),
        "figures": {"network": "litmap/network.png", "thematic_map": "litmap/thematic_map.png",
                    "wordcloud": "litmap/wordcloud.png"},
        "downloads": [f"litmap/{n}" for n in OUTPUTS] + ["litmap.zip"],
        "report": (dest / "report.md").read_text(encoding="utf-8"),
    }


__all__ = ["run"]
