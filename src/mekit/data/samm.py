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

from pathlib import Path
from typing import Any

from mekit.data._sheets import (
    SHEET_OPTIONS,
    ClipId,
    Column,
    SheetRow,
    SheetSpec,
    frame_number,
    load_sheet_corpus,
    subject_number,
    text,
)
from mekit.data.schema import SampleTable

DATASET = "samm"
#: SAMM was recorded at 200 fps (Davison et al., 2018).
FPS = 200.0
ACCEPTED = SHEET_OPTIONS

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


def _identify(row: SheetRow) -> ClipId:
    n = row.require("subject", "a subject number (6 or 006)", subject_number)
    return ClipId(f"{n:03d}", row.require("filename", "a clip name"), number=n)


def _folders(frames: Path, clip: ClipId, emotion: str) -> list[Path]:
    # 006 as the corpus names it, 6 as the sheet may write it
    return [frames / clip.subject / clip.clip, frames / str(clip.number) / clip.clip]


def _int_or_text(value: Any) -> int | str | None:
    """Whole numbers as int (3.0 -> 3), anything else as text, blank as None."""
    try:
        return frame_number(value)
    except ValueError:
        return text(value)


def _extra(row: SheetRow) -> dict[str, Any]:
    return {"objective_class": _int_or_text(row.cell("objective_class")),
            "inducement_code": _int_or_text(row.cell("inducement_code")),
            "duration": _int_or_text(row.cell("duration")),
            "micro": row.text("micro"),
            "notes": row.text("notes")}


SPEC = SheetSpec(
    dataset=DATASET, title="SAMM", fps=FPS, columns=COLUMNS, sheet_patterns=SHEET_PATTERNS,
    frame_dirs=FRAME_DIRS, subject_folder=r"\d{3}", sheet_names=("MICRO_ONLY",), identify=_identify,
    folders=_folders, template=lambda frames, clip: f"{clip.subject}_{{frame:05d}}.jpg", extra=_extra,
)


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
    return load_sheet_corpus(SPEC, root, sheet=sheet, frames_dir=frames_dir, check_frames=check_frames,
                             sheet_name=sheet_name, **options)
