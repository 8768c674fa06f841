"""SAMM (Davison et al., 2018, IEEE Trans. Affective Computing 9(1)): 159 micro-movements of
32 subjects filmed at 200 fps.

On disk, as the corpus is distributed::

    <root>/SAMM_Micro_FACS_Codes_v2.xlsx     (sheet MICRO_ONLY; ~10 preamble rows above the header)
    <root>/SAMM/006/006_1_2/006_05562.jpg    (<subject>/<Filename>/<subject>_<frame:05d>.jpg)

Subjects are written as ``6`` or ``006``; both become ``samm/006``. Action-unit cells
carry intensity letters, sides and alternatives (``15A+17``, ``(R6 or R12)+R15``); they
are kept as written in ``au_raw`` and parsed into tokens in ``action_units``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mekit.data._sheets import (
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
    subject_number,
    text,
)
from mekit.data.schema import LoadReport, SampleTable

logger = logging.getLogger(__name__)

DATASET = "samm"
#: SAMM was recorded at 200 fps (Davison et al., 2018).
FPS = 200.0
ACCEPTED = ("sheet", "frames_dir", "check_frames", "sheet_name")

COLUMNS = (
    Column("subject", ("Subject", "Sub", "Subject ID")),
    Column("filename", ("Filename", "File name", "Clip", "Video")),
    Column("onset", ("Onset Frame", "OnsetFrame", "Onset", "onset_frame")),
    Column("apex", ("Apex Frame", "ApexFrame", "Apex", "apex_frame")),
    Column("offset", ("Offset Frame", "OffsetFrame", "Offset", "offset_frame")),
    Column("action_units", ("Action Units", "ActionUnits", "AU", "AUs"), required=False),
    Column("emotion", ("Estimated Emotion", "EstimatedEmotion", "Emotion")),
    Column("objective_class", ("Objective Classes", "Objective Class", "ObjectiveClasses"), required=False),
    Column("inducement_code", ("Inducement Code",), required=False),
    Column("duration", ("Duration",), required=False),
    Column("micro", ("Micro",), required=False),
    Column("notes", ("Notes", "Note"), required=False),
)
SHEET_PATTERNS = ("SAMM_Micro_FACS_Codes*.xls*", "SAMM*.xls*", "*SAMM*.csv", "*.xlsx", "*.csv")
FRAME_DIRS = ("SAMM", "SAMM_Cropped", "SAMM_CROP", "SAMM_cropped", "samm")


def load_samm(root: str | Path | None = None, *, sheet: str | Path | None = None,
              frames_dir: str | Path | None = None, check_frames: bool = True,
              sheet_name: str | None = None, **options: Any) -> SampleTable:
    """Load SAMM: one row per coded micro-movement, labelled with the canonical emotion.

    The sheet ``MICRO_ONLY`` is read (the first sheet where there is none), with or
    without preamble rows. ``frames_dir`` defaults to the first of ``SAMM``,
    ``SAMM_Cropped``, ``root`` that holds three-digit subject folders. Extra columns:
    ``objective_class`` (Davison et al.'s objective classes I-VII written as numbers),
    ``inducement_code``, ``duration``, ``micro``, ``notes``, ``au_raw``.
    """
    reject_unknown(options, "SAMM", ACCEPTED)
    check_frames = as_bool(check_frames, "check_frames")
    root_p = Path(root).expanduser() if root is not None else None
    sheet_path = find_sheet(root_p, sheet, SHEET_PATTERNS, "SAMM")
    sh = read_sheet(sheet_path, COLUMNS, sheet=sheet_name if sheet_name is not None else ["MICRO_ONLY"])
    fdir = find_frames_dir(root_p, frames_dir, FRAME_DIRS, has_subfolder(r"\d{3}"), sheet_path.parent,
                           check_frames, "SAMM")
    report = LoadReport()
    counts: dict[str, int] = {}

    def clips():
        for row, cells in sh.rows.iterrows():
            n, clip = subject_number(cells.get("subject")), text(cells.get("filename"))
            if n is None:
                row_problem(report, None, sh, row, "subject", cells.get("subject"),
                            "a subject number (6 or 006)", DATASET)
                continue
            if clip is None:
                row_problem(report, None, sh, row, "filename", cells.get("filename"), "a clip name", DATASET)
                continue
            sub = f"{n:03d}"
            sid = f"{DATASET}/{sub}/{clip}"
            iv = read_interval(sh, row, cells, sid, report, counts)
            if iv is None:
                continue
            emotion = text(cells.get("emotion"))
            if emotion is None:
                row_problem(report, sid, sh, row, "emotion", None, "an emotion")
                continue
            yield ClipRow(sample_id=sid, subject=f"{DATASET}/{sub}", clip=clip,
                          folders=[fdir / sub / clip, fdir / str(n) / clip],
                          template=f"{sub}_{{frame:05d}}.jpg",
                          onset=iv.onset, apex=iv.apex, offset=iv.offset, emotion=emotion,
                          action_units=parse_aus(cells.get("action_units")), row=int(row),
                          extra={"au_raw": au_text(cells.get("action_units")),
                                 "objective_class": _int_or_text(cells.get("objective_class")),
                                 "inducement_code": _int_or_text(cells.get("inducement_code")),
                                 "duration": _int_or_text(cells.get("duration")),
                                 "micro": text(cells.get("micro")),
                                 "notes": text(cells.get("notes"))})

    table = assemble(DATASET, clips(), fps=FPS, report=report, check_frames=check_frames, frames_dir=fdir,
                     sheet=sh)
    interval_notes(sh, counts, report)
    return table


def _int_or_text(value: Any) -> int | str | None:
    """Whole numbers as int (3.0 -> 3), anything else as text, blank as None."""
    try:
        return frame_number(value)
    except ValueError:
        return text(value)
