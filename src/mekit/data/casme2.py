"""CASME II (Yan et al., 2014, PLoS ONE 9(1): e86041): 255 coded clips of 26 subjects at 200 fps.

On disk, as the corpus is distributed::

    <root>/CASME2-coding-20140508.xlsx            (the coding sheet)
    <root>/Cropped/sub01/EP02_01f/reg_img46.jpg   (face-cropped, registered frames)
    <root>/CASME2_RAW_selected/sub01/EP02_01f/img46.jpg   (or the raw frames)

The number in a frame's file name is the frame number the sheet's OnsetFrame,
ApexFrame and OffsetFrame columns use; a clip folder holds onset..offset inclusive.
Which naming a folder uses (``reg_img<N>`` or ``img<N>``) is detected per clip.

Rows read from a ``Cropped`` folder are marked ``face_cropped=True``: those frames are the
corpus's own face crops (registered faces filling the frame), so preprocessing with the default
detector ``'auto'`` uses them whole (detector ``'none'``) rather than detecting a face box whose
margin would run past the frame (measured with detector ``'auto'`` and the default margin on
the onset frames of every 12th clip: 38-55 % of each crop was replicated border, median 48 %).
Rows from a ``RAW`` folder are marked False (faces are searched for); a folder named neither way
is left unmarked (None), which searches too.
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
    load_sheet_corpus,
    subject_number,
)
from mekit.data.schema import SampleTable

DATASET = "casme2"
#: Recording rate of CASME II's high-speed camera (Yan et al., 2014).
FPS = 200.0

COLUMNS = (
    Column("subject", ("Subject", "Sub", "Subject ID")),
    Column("filename", ("Filename", "File name", "Clip", "Video", "Material")),
    Column("onset", ("OnsetFrame", "Onset Frame", "Onset", "OnsetF", "onset_frame")),
    Column("apex", ("ApexFrame", "Apex Frame", "Apex", "ApexF", "ApexF1", "apex_frame")),
    Column("offset", ("OffsetFrame", "Offset Frame", "Offset", "OffsetF", "offset_frame")),
    Column("action_units", ("Action Units", "ActionUnits", "AU", "AUs"), required=False),
    Column("emotion", ("Estimated Emotion", "EstimatedEmotion", "Emotion")),
    # Not in the corpus's own sheet: clips cut from other recordings (``mekit extract``) keep
    # their recording's frame rate here, so a 30 fps clip is not read as a 200 fps one.
    Column("fps", ("FPS", "Frame Rate", "frame_rate"), required=False),
)
SHEET_PATTERNS = ("CASME2-coding*.xls*", "CASME2*coding*.*", "*coding*.xls*", "*CASME*.xls*", "*.xlsx", "*.csv")
ACCEPTED = SHEET_OPTIONS
FRAME_DIRS = ("Cropped", "CASME2_Cropped", "CASME2-Cropped", "CASME2_RAW_selected", "CASME2_RAW", "CASME2-RAW",
              "RAW_selected", "CASME2/Cropped")


def _identify(row: SheetRow) -> ClipId:
    n = row.require("subject", "a subject number (1 or sub01)", subject_number)
    return ClipId(f"sub{n:02d}", row.require("filename", "a clip name"), number=n)


def _folders(frames: Path, clip: ClipId, emotion: str) -> list[Path]:
    # sub01 as the corpus names it, sub1 as some copies do
    return [frames / clip.subject / clip.clip, frames / f"sub{clip.number}" / clip.clip]


def _template(frames: Path, clip: ClipId) -> str:
    # The raw release names frames img<N>.jpg, the cropped one reg_img<N>.jpg; detected per clip
    # when frames are checked, guessed from the folder name otherwise.
    return "img{frame}.jpg" if "raw" in frames.name.lower() else "reg_img{frame}.jpg"


def _fps(row: SheetRow) -> dict[str, Any]:
    """The clip's frame rate where the sheet has an FPS column (else the corpus's 200 fps)."""
    raw = row.cell("fps")
    if raw is None or (isinstance(raw, float) and raw != raw) or str(raw).strip() == "":
        return {}
    try:
        fps = float(raw)
    except (TypeError, ValueError):
        fps = float("nan")
    if not (fps > 0 and fps < float("inf")):
        row.report.notes.append(f"{row.sheet.where(row.number, 'fps')}: frame rate {raw!r} is not a positive "
                                f"number; the corpus's {FPS:g} fps is used")
        return {}
    return {"fps": fps}


def _face_cropped(frames_dir: Path) -> bool | None:
    """True for the corpus's ``Cropped`` release, False for its ``RAW`` one, None when the frame
    folder's name says neither (see the module's note)."""
    name = frames_dir.name.lower()
    if "crop" in name:
        return True
    if "raw" in name:
        return False
    return None


SPEC = SheetSpec(
    dataset=DATASET, title="CASME II", fps=FPS, columns=COLUMNS, sheet_patterns=SHEET_PATTERNS,
    frame_dirs=FRAME_DIRS, subject_folder=r"sub\d+", identify=_identify, folders=_folders, template=_template,
    extra=lambda row: {"face_cropped": _face_cropped(row.frames_dir), **_fps(row)},
)


def load_casme2(root: str | Path | None = None, *, sheet: str | Path | None = None,
                frames_dir: str | Path | None = None, check_frames: bool = True,
                sheet_name: str | None = None, **options: Any) -> SampleTable:
    """Load CASME II: one row per coded clip, labelled with the canonical emotion.

    ``sheet`` defaults to the coding sheet found under ``root``; ``frames_dir`` to the
    first of ``Cropped``/``CASME2_RAW_selected``/``root`` that holds ``subNN`` folders.
    With ``check_frames`` clips with no folder go to ``report.missing`` and clips whose
    onset or apex frame is absent are excluded as problems; without it rows come from
    the sheet alone.
    """
    return load_sheet_corpus(SPEC, root, sheet=sheet, frames_dir=frames_dir, check_frames=check_frames,
                             sheet_name=sheet_name, **options)
