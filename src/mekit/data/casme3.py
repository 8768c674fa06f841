"""CAS(ME)^3 part A (Li et al., 2023, IEEE TPAMI 45(3)): micro-expressions coded in long
recordings at 30 fps (the label sheet users hold codes 860 of them, from 94 subjects).

On disk, as the corpus is distributed::

    <root>/part_A/data/part_A/spNO.1/a/color/0.jpg      (one folder per recorded task video)
    <root>/part_A/data/part_A/spNO.1/a/depth/0.png
    <root>/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx   (sheet ``label``: Subject, Filename,
                                                         Onset, Apex, Offset, AU, Objective class, emotion)

``Filename`` names a task video (``a``, ``b``, ``e``...), not a micro-expression: one
video holds several coded micro-expressions, so a clip here is identified by its video
and its onset frame, ``casme3/spNO.1/e_62``. The path points at the whole video's
``color`` folder and onset/apex/offset select the micro-expression within it. The sheet
writes ``others`` and ``Others``; the label is the canonical ``others`` for both.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mekit.data._sheets import (
    CellError,
    ClipRow,
    Column,
    as_bool,
    assemble,
    au_text,
    find_frames_dir,
    find_sheet,
    frame_number,
    has_subfolder,
    interval_notes,
    parse_aus,
    read_interval,
    read_sheet,
    reject_unknown,
    row_problem,
    text,
)
from mekit.data.schema import LoadReport, SampleTable

logger = logging.getLogger(__name__)

DATASET = "casme3"
#: Part A's colour video runs at 30 fps (Li et al., 2023).
FPS = 30.0
ACCEPTED = ("sheet", "frames_dir", "check_frames", "sheet_name")
_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7}

COLUMNS = (
    Column("subject", ("Subject", "sub", "Subject ID")),
    Column("filename", ("Filename", "File name", "Video", "Material")),
    Column("onset", ("Onset", "OnsetFrame", "Onset Frame", "onset_frame")),
    Column("apex", ("Apex", "ApexFrame", "Apex Frame", "apex_frame")),
    Column("offset", ("Offset", "OffsetFrame", "Offset Frame", "offset_frame")),
    Column("action_units", ("AU", "AUs", "Action Units"), required=False),
    Column("objective_class", ("Objective class", "Objective classes"), required=False),
    Column("emotion", ("emotion", "Estimated Emotion", "Emotion")),
)
SHEET_PATTERNS = ("casme3*.xls*", "cas(me)3*part_A*.xls*", "*part_A*.xls*", "*casme3*.csv", "*.xlsx", "*.csv")
FRAME_DIRS = ("part_A/data/part_A", "data/part_A", "part_A", "part_A/data/part_A_split/part_A")


def load_casme3(root: str | Path | None = None, *, sheet: str | Path | None = None,
                frames_dir: str | Path | None = None, check_frames: bool = True,
                sheet_name: str | None = None, **options: Any) -> SampleTable:
    """Load CAS(ME)^3 part A: one row per coded micro-expression, canonical emotion labels.

    The sheet ``label`` is read (the first non-empty sheet where there is none).
    ``frames_dir`` defaults to the first of ``part_A/data/part_A``, ``data/part_A``,
    ``part_A``, ``root`` that holds ``spNO.<N>`` folders; a clip's frames are
    ``<Subject>/<Filename>/color/<N>.jpg`` (or ``<Subject>/<Filename>/<N>.jpg``). Extra
    columns: ``objective_class`` (I-VII as 1-7), ``au_raw``.
    """
    reject_unknown(options, "CAS(ME)^3", ACCEPTED)
    check_frames = as_bool(check_frames, "check_frames")
    root_p = Path(root).expanduser() if root is not None else None
    sheet_path = find_sheet(root_p, sheet, SHEET_PATTERNS, "CAS(ME)^3")
    sh = read_sheet(sheet_path, COLUMNS, sheet=sheet_name if sheet_name is not None else ["label"])
    fdir = find_frames_dir(root_p, frames_dir, FRAME_DIRS, has_subfolder(r"spNO\.\d+"), sheet_path.parent,
                           check_frames, "CAS(ME)^3")
    report = LoadReport()
    counts: dict[str, int] = {}

    def clips():
        for row, cells in sh.rows.iterrows():
            sub, video = text(cells.get("subject")), text(cells.get("filename"))
            if sub is None:
                row_problem(report, None, sh, row, "subject", None, "a subject (spNO.1)", DATASET)
                continue
            if video is None:
                row_problem(report, None, sh, row, "filename", None, "a video name (a, b, ...)", DATASET)
                continue
            try:
                onset = frame_number(cells.get("onset"))
            except CellError:
                onset = None
            sid = f"{DATASET}/{sub}/{video}_{onset}" if onset is not None else f"{DATASET}/{sub}/{video}@row{row}"
            iv = read_interval(sh, row, cells, sid, report, counts)
            if iv is None:
                continue
            emotion = text(cells.get("emotion"))
            if emotion is None:
                row_problem(report, sid, sh, row, "emotion", None, "an emotion")
                continue
            obj = text(cells.get("objective_class"))
            yield ClipRow(sample_id=sid, subject=f"{DATASET}/{sub}", clip=video,
                          folders=[fdir / sub / video / "color", fdir / sub / video],
                          template="{frame}.jpg", onset=iv.onset, apex=iv.apex, offset=iv.offset,
                          emotion=emotion, action_units=parse_aus(cells.get("action_units")), row=int(row),
                          extra={"au_raw": au_text(cells.get("action_units")),
                                 "objective_class": _ROMAN.get(obj.upper(), obj) if obj else None})

    table = assemble(DATASET, clips(), fps=FPS, report=report, check_frames=check_frames, frames_dir=fdir,
                     sheet=sh)
    interval_notes(sh, counts, report)
    return table
