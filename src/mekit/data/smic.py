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

import re
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
    subject_number,
    text,
)
from mekit.data.schema import SampleTable

DATASET = "smic"
#: SMIC-HS was filmed with a 100 fps high-speed camera (Li et al., 2013).
FPS = 100.0
ACCEPTED = SHEET_OPTIONS
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


def _name_emotion(clip: str | None) -> str | None:
    """The emotion a clip name codes (s1_ne_01 -> negative), None where it codes none."""
    m = _CLIP_RX.match(clip or "")
    return CLIP_CODES.get(m["code"].lower()) if m else None


def _identify(row: SheetRow) -> ClipId:
    clip = row.text("clip")
    m = _CLIP_RX.match(clip or "")
    n = subject_number(row.cell("subject"))
    if n is None and m:  # no subject cell: the clip name carries it (s3_po_02)
        n = int(m["sub"])
    if clip is None:
        raise row.refuse("clip", "a clip name (s1_ne_01)")
    if n is None:
        raise row.refuse("subject", "a subject number (1 or s1)")
    return ClipId(f"s{n:02d}", clip, number=n)


def _label(row: SheetRow, clip: ClipId) -> tuple[str, dict[str, Any]]:
    """The label cell as a name or a code (0/1/2), else the clip name's code; ``emotion_code`` as written."""
    raw = row.cell("emotion")
    code: int | None = None
    try:
        code = frame_number(raw)
    except CellError:
        pass
    if code is not None:
        if code not in LABEL_CODES:
            raise row.refuse("emotion", "0 (negative), 1 (positive), 2 (surprise) or the name")
        emotion = LABEL_CODES[code]
    else:
        emotion = text(raw)
    from_name = _name_emotion(clip.clip)
    if emotion is None and from_name is not None:
        emotion = from_name
        row.count("from_name")
    if emotion is None:
        raise row.refuse("emotion", "a label")
    if from_name is not None and emotion.lower() != from_name:
        row.report.add_problem(row.sample, f"{row.where('emotion')}: label {emotion!r} disagrees with the clip "
                                           f"name {clip.clip!r} ({from_name}); sheet label kept")
    return emotion, {"emotion_code": code}


def _folders(frames: Path, clip: ClipId, emotion: str) -> list[Path]:
    n, folder_emotion = clip.number, (_name_emotion(clip.clip) or emotion).lower()
    # SMIC-HS first: it is the layout the corpus ships and the one paths point to when
    # frames are not checked; then SMIC-E's <s01>/<clip> and plain fallbacks.
    # only SMIC's own three class names become a folder name: a label cell such as
    # "../../x" must never turn into a path that leaves the corpus
    folders = ([frames / f"s{n}" / "micro" / folder_emotion / clip.clip]
               if folder_emotion in ("negative", "positive", "surprise") else [])
    return folders + [frames / f"s{n:02d}" / clip.clip, frames / f"s{n}" / clip.clip, frames / clip.clip]


SPEC = SheetSpec(
    dataset=DATASET, title="SMIC", fps=FPS, columns=COLUMNS, sheet_patterns=SHEET_PATTERNS,
    frame_dirs=FRAME_DIRS, subject_folder=r"s\d+", identify=_identify, label=_label, folders=_folders,
    template="image{frame:06d}.bmp", offset_from_folder=True,
    count_notes=(("from_name", "{n} row(s) had no label; taken from the clip name (ne/po/sur)"),),
)


def load_smic(root: str | Path | None = None, *, sheet: str | Path | None = None,
              frames_dir: str | Path | None = None, check_frames: bool = True,
              sheet_name: str | None = None, **options: Any) -> SampleTable:
    """Load SMIC-HS: one row per clip; emotion negative/positive/surprise (codes 0/1/2 decoded).

    ``frames_dir`` defaults to the first of ``HS``, ``SMIC_all_cropped/HS``,
    ``HS_long/SMIC_HS_E``, ``root`` that holds ``s<N>`` subject folders. Extra columns:
    ``emotion_code`` (the label cell as written where it was a code).
    """
    return load_sheet_corpus(SPEC, root, sheet=sheet, frames_dir=frames_dir, check_frames=check_frames,
                             sheet_name=sheet_name, **options)
