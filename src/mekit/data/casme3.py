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

from pathlib import Path
from typing import Any

from mekit.data._sheets import (
    SHEET_OPTIONS,
    CellError,
    ClipId,
    Column,
    SheetRow,
    SheetSpec,
    frame_number,
    load_sheet_corpus,
)
from mekit.data.schema import SampleTable

DATASET = "casme3"
#: Part A's colour video runs at 30 fps (Li et al., 2023).
FPS = 30.0
ACCEPTED = SHEET_OPTIONS
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


def _identify(row: SheetRow) -> ClipId:
    sub = row.require("subject", "a subject (spNO.1)")
    video = row.require("filename", "a video name (a, b, ...)")
    try:
        onset = frame_number(row.cell("onset"))
    except CellError:
        onset = None
    # A video holds several clips: its onset names each. A row whose onset is unreadable is
    # refused by the interval check, under a name that still says which row it was.
    return ClipId(sub, video, name=f"{video}_{onset}" if onset is not None else f"{video}@row{row.number}")


def _folders(frames: Path, clip: ClipId, emotion: str) -> list[Path]:
    return [frames / clip.subject / clip.clip / "color", frames / clip.subject / clip.clip]


def _extra(row: SheetRow) -> dict[str, Any]:
    obj = row.text("objective_class")
    return {"objective_class": _ROMAN.get(obj.upper(), obj) if obj else None}


SPEC = SheetSpec(
    dataset=DATASET, title="CAS(ME)^3", fps=FPS, columns=COLUMNS, sheet_patterns=SHEET_PATTERNS,
    frame_dirs=FRAME_DIRS, subject_folder=r"spNO\.\d+", sheet_names=("label",), identify=_identify,
    folders=_folders, template="{frame}.jpg", extra=_extra,
)


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
    return load_sheet_corpus(SPEC, root, sheet=sheet, frames_dir=frames_dir, check_frames=check_frames,
                             sheet_name=sheet_name, **options)
