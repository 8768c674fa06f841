"""SMIC-HS (Li et al., 2013, IEEE FG): 164 micro-expression clips of 16 subjects at 100 fps,
labelled negative, positive or surprise.

On disk, as users hold it (either release)::

    <root>/HS/s1/micro/negative/s1_ne_01/image058831.bmp      SMIC-HS (also SMIC_all_cropped/HS,
                                                              where files are reg_image058831.bmp)
    <root>/HS_long/SMIC_HS_E/s01/s1_ne_01/image058831.jpg     SMIC-E (the extended release)
    <root>/<subject>/<clip>/...                               any other copy, as a fallback

File names carry the frame number of the original recording, which the sheet's onset,
apex and offset columns use; the naming is detected per clip. The widely shared
``smic_apex.xlsx`` sheet (columns subject, clip, label, onset_frame, apex_frame,
offset_frame, three *_path columns) codes the label as 0/1/2; every one of its 164 rows
pairs 0 with an ``_ne_`` clip, 1 with ``_po_`` and 2 with ``_sur_``, which is the
decoding used here. SMIC's own release gives no apex: a sheet without one loads with the
apex left empty, for spotting later. Seven rows of ``smic_apex.xlsx`` give no offset;
with frames checked in the SMIC-HS layout it is taken from the clip folder, which holds
onset..offset there (SMIC-E's folders run longer, so there it stays empty).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from mekit.data._sheets import (
    CellError,
    ClipRow,
    Column,
    as_bool,
    assemble,
    find_frames_dir,
    find_sheet,
    frame_number,
    has_subfolder,
    interval_notes,
    read_interval,
    read_sheet,
    reject_unknown,
    row_problem,
    subject_number,
    text,
)
from mekit.data.schema import LoadReport, SampleTable

logger = logging.getLogger(__name__)

DATASET = "smic"
#: SMIC-HS was filmed with a 100 fps high-speed camera (Li et al., 2013).
FPS = 100.0
ACCEPTED = ("sheet", "frames_dir", "check_frames", "sheet_name")
#: Numeric label codes of smic_apex.xlsx (checked against the clip names, see the module docstring).
LABEL_CODES = {0: "negative", 1: "positive", 2: "surprise"}
#: Emotion code inside a clip name (s1_ne_01) and the folder SMIC-HS files it under.
CLIP_CODES = {"ne": "negative", "po": "positive", "sur": "surprise"}

COLUMNS = (
    Column("subject", ("subject", "Subject", "sub")),
    Column("clip", ("clip", "Filename", "File name", "video", "Clip name", "material")),
    Column("emotion", ("label", "emotion", "Estimated Emotion", "class")),
    Column("onset", ("onset_frame", "OnsetFrame", "Onset Frame", "Onset", "OnsetF")),
    Column("apex", ("apex_frame", "ApexFrame", "Apex Frame", "Apex", "ApexF"), required=False),
    Column("offset", ("offset_frame", "OffsetFrame", "Offset Frame", "Offset", "OffsetF"), required=False),
)
SHEET_PATTERNS = ("smic_apex*.xls*", "smic*.xls*", "SMIC*.csv", "*.xlsx", "*.csv")
FRAME_DIRS = ("HS", "SMIC_all_cropped/HS", "SMIC/HS", "SMIC/SMIC_all_cropped/HS", "SMIC_all_raw/HS",
              "HS_long/SMIC_HS_E", "smic/HS_long/SMIC_HS_E", "SMIC_HS_E")
_CLIP_RX = re.compile(r"^s(?P<sub>\d+)_(?P<code>[a-z]+)_\d+", re.IGNORECASE)


def load_smic(root: str | Path | None = None, *, sheet: str | Path | None = None,
              frames_dir: str | Path | None = None, check_frames: bool = True,
              sheet_name: str | None = None, **options: Any) -> SampleTable:
    """Load SMIC-HS: one row per clip; emotion negative/positive/surprise (codes 0/1/2 decoded).

    ``frames_dir`` defaults to the first of ``HS``, ``SMIC_all_cropped/HS``,
    ``HS_long/SMIC_HS_E``, ``root`` that holds ``s<N>`` subject folders. Extra columns:
    ``emotion_code`` (the label cell as written where it was a code).
    """
    reject_unknown(options, "SMIC", ACCEPTED)
    check_frames = as_bool(check_frames, "check_frames")
    root_p = Path(root).expanduser() if root is not None else None
    sheet_path = find_sheet(root_p, sheet, SHEET_PATTERNS, "SMIC")
    sh = read_sheet(sheet_path, COLUMNS, sheet=sheet_name)
    fdir = find_frames_dir(root_p, frames_dir, FRAME_DIRS, has_subfolder(r"s\d+"), sheet_path.parent,
                           check_frames, "SMIC")
    report = LoadReport()
    if not sh.has("apex"):
        report.notes.append(f"{sh.label} has no apex column; apex left empty (an apex can be spotted later)")
    counts: dict[str, int] = {}

    def clips():
        for row, cells in sh.rows.iterrows():
            clip = text(cells.get("clip"))
            m = _CLIP_RX.match(clip or "")
            n = subject_number(cells.get("subject"))
            if n is None and m:
                n = int(m["sub"])
            if clip is None:
                row_problem(report, None, sh, row, "clip", cells.get("clip"), "a clip name (s1_ne_01)", DATASET)
                continue
            if n is None:
                row_problem(report, None, sh, row, "subject", cells.get("subject"), "a subject number (1 or s1)",
                            DATASET)
                continue
            sid = f"{DATASET}/s{n:02d}/{clip}"
            iv = read_interval(sh, row, cells, sid, report, counts)
            if iv is None:
                continue
            raw = cells.get("emotion")
            code: int | None = None
            try:
                code = frame_number(raw)
            except CellError:
                pass
            if code is not None:
                if code not in LABEL_CODES:
                    row_problem(report, sid, sh, row, "emotion", raw,
                                "0 (negative), 1 (positive), 2 (surprise) or the name")
                    continue
                emotion = LABEL_CODES[code]
            else:
                emotion = text(raw)
            from_name = CLIP_CODES.get(m["code"].lower()) if m else None
            if emotion is None and from_name is not None:
                emotion = from_name
                counts["from_name"] = counts.get("from_name", 0) + 1
            if emotion is None:
                row_problem(report, sid, sh, row, "emotion", None, "a label")
                continue
            if from_name is not None and emotion.lower() != from_name:
                report.add_problem(sid, f"{sh.where(row, 'emotion')}: label {emotion!r} disagrees with the clip "
                                        f"name {clip!r} ({from_name}); sheet label kept")
            folder_emotion = (from_name or emotion).lower()
            # SMIC-HS first: it is the layout the corpus ships and the one paths point to when
            # frames are not checked; then SMIC-E's <s01>/<clip> and plain fallbacks.
            # only SMIC's own three class names become a folder name: a label cell such as
            # "../../x" must never turn into a path that leaves the corpus
            folders = ([fdir / f"s{n}" / "micro" / folder_emotion / clip]
                       if folder_emotion in ("negative", "positive", "surprise") else [])
            folders += [fdir / f"s{n:02d}" / clip, fdir / f"s{n}" / clip, fdir / clip]
            yield ClipRow(sample_id=sid, subject=f"{DATASET}/s{n:02d}", clip=clip, folders=folders,
                          template="image{frame:06d}.bmp", onset=iv.onset, apex=iv.apex, offset=iv.offset,
                          emotion=emotion, action_units=[], row=int(row),
                          extra={"emotion_code": code})

    table = assemble(DATASET, clips(), fps=FPS, report=report, check_frames=check_frames, frames_dir=fdir,
                     sheet=sh, offset_from_folder=True)
    if sh.has("apex"):
        interval_notes(sh, {k: v for k, v in counts.items() if k != "from_name"}, report)
    elif counts.get("no_offset"):
        interval_notes(sh, {"no_offset": counts["no_offset"]}, report)
    if counts.get("from_name"):
        report.notes.append(f"{counts['from_name']} row(s) had no label; taken from the clip name (ne/po/sur)")
    return table
