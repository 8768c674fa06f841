"""Cut the intervals of a recording into a dataset in a corpus layout, which every loader then reads.

:func:`extract_intervals` takes a video (or a folder of frames), a list of intervals and an
output folder, and writes each interval's frames as a clip folder plus one coding sheet, laid
out as a released corpus is, so the result loads with that corpus's own loader and goes through
preprocessing, training and evaluation like any corpus. The default (and for now only) layout is
CASME II's (:mod:`mekit.data.casme2`)::

    DATASET/CASME2-coding-extracted.xlsx        (Subject, Filename, OnsetFrame, ApexFrame,
                                                 OffsetFrame, Action Units, Estimated Emotion)
    DATASET/sub01/<video>_<onset>-<offset>/reg_img<N>.jpg

``N`` is the frame's index in the recording (0-based, decode order for a video, name order for a
frame folder: :class:`mekit.media.Frame`), so the sheet's onset, apex and offset name the files
and the recording's own frames. A clip folder holds onset..offset inclusive, or with ``context``
that many seconds of frames more on each side (the sheet still gives the interval's own onset
and offset; its ``First Frame``/``Last Frame`` columns give the folder's). ``Source Video``, ``FPS``,
``Kind``, ``Score``, ``First Frame`` and ``Last Frame`` record where a clip came from; the CASME II
loader reads ``FPS`` (so a clip cut from a 30 fps recording is not taken for a 200 fps one) and
ignores the others.

The intervals come as a CSV file or as rows (mappings); this module reads the layouts mekit
writes and reads elsewhere, by their column names:

- ``mekit analyze``'s ``intervals.csv``: video, onset, apex, offset, onset_s, ..., kind, score,
  label, p_*;
- a MEGC spotting submission: ``vid, pred_onset, pred_offset, type`` or
  ``video, onset, offset[, kind][, emotion]``;
- the truth of a synthetic long video (``<stem>.truth.csv``: video, onset, apex, offset,
  onset_s, offset_s, kind, emotion, ...);
- rows timed in seconds only (``onset_s``, ``offset_s``, optionally ``apex_s``), converted
  with the recording's frame rate.

The parser is here, not in :mod:`mekit.analysis.spot_metrics` (whose readers raise at the first
bad row): this module sits in the data layer, below analysis, and a bad row here is reported by
its number and skipped so the others are still extracted.

An emotion comes from a ``label`` column (a recognition bundle's class), else ``emotion``; a row
with neither gets :data:`PLACEHOLDER_EMOTION`, ``others``: CASME II's own word for a clip outside
its basic classes. The loader refuses a row with a blank emotion, and ``load_dataset`` without a
label scheme drops a word it does not know when other rows hold known ones (taken for a typo);
``others`` is a known word, so it is kept, and every CASME II label scheme maps it to its
``others`` class (MEGC 2019's three-class scheme drops it, as it drops CASME II's own ``others``).

Whole frames are written by default. ``crop="face"`` cuts one square box per clip from the face
boxes of a ``frames.csv`` as ``mekit analyze`` writes it (the median box over the interval's
frames, widened by ``margin``), so a clip's frames stay registered to each other. Face detection
itself lives in layers above this one (preprocessing, the tracker) and is not run here: a whole
frame is what preprocessing's face detection expects anyway.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mekit import events
from mekit.errors import ConfigError, DataError
from mekit.registry import Registry

log = logging.getLogger(__name__)

#: The emotion written for an interval that has none (see the module docstring).
PLACEHOLDER_EMOTION = "others"
#: JPEG quality of the written frames (OpenCV's scale, 0-100). CASME II ships JPEGs; 95 keeps the
#: sub-pixel motion a micro-expression is made of (a grey level or two of error per pixel).
JPEG_QUALITY = 95
#: Intervals further apart than this many seconds are read with a fresh, seeking source instead of
#: decoding every frame between them (VideoSource checks that a seek lands where it was asked).
SEEK_GAP_S = 10.0
#: At most this many problems are listed in an error raised when no interval could be extracted.
_SHOWN_PROBLEMS = 5

# Column names as they come (lower-cased, letters and digits only) -> the key read here.
_ALIASES: dict[str, tuple[str, ...]] = {
    "video": ("video", "vid", "videoname", "sourcevideo"),
    "onset": ("onset", "predonset", "onsetframe"),
    "apex": ("apex", "apexframe"),
    "offset": ("offset", "predoffset", "offsetframe"),
    "onset_s": ("onsets", "onsetseconds", "onsettime"),
    "apex_s": ("apexs", "apexseconds", "apextime"),
    "offset_s": ("offsets", "offsetseconds", "offsettime"),
    "kind": ("kind", "type"),
    "label": ("label", "pred", "predictedlabel"),
    "emotion": ("emotion", "estimatedemotion"),
    "action_units": ("actionunits", "aus", "au"),
}
_KINDS = {"micro": "micro", "me": "micro", "macro": "macro", "mae": "macro"}
_EMPTY = frozenset({"", "nan", "none", "null", "n/a", "na", "/", "-"})


def _norm(name: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


# -- layouts ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """How a corpus lays out its clips and sheet: what :func:`extract_intervals` writes."""

    name: str
    dataset: str  # the loader that reads it
    sheet_stem: str  # file name of the coding sheet without its extension
    header: tuple[str, ...]  # the sheet's columns, in order
    frame_name: str  # file name of frame N, with {frame}

    def subject_folder(self, number: int) -> str:
        return f"sub{number:02d}"


LAYOUTS: Registry[Layout] = Registry("dataset layout")
LAYOUTS.add("casme2", Layout(
    name="casme2", dataset="casme2", sheet_stem="CASME2-coding-extracted",
    # The first seven are the columns mekit.data.casme2 reads (as the corpus names them); the rest
    # record where each clip came from and are ignored by the loader.
    header=("Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion",
            "Source Video", "FPS", "Kind", "Score", "First Frame", "Last Frame"),
    frame_name="reg_img{frame}.jpg"), help="CASME II: subNN/<clip>/reg_img<N>.jpg and a coding sheet")

SHEET_FORMATS = ("xlsx", "csv")
CROPS = ("none", "face")


# -- intervals --------------------------------------------------------------------------------
@dataclass(frozen=True)
class IntervalRow:
    """One interval to extract, with ``where`` naming its row for messages."""

    where: str
    onset: int
    apex: int | None
    offset: int
    kind: str = ""
    emotion: str = ""
    action_units: str = ""
    score: float | None = None


@dataclass
class ParsedIntervals:
    """The usable intervals of the input, and what was left out and why."""

    rows: list[IntervalRow]
    source: str
    taken: int = 0  # rows of this video (or all rows, when no row names a video)
    other_videos: int = 0  # rows of other videos, skipped
    other_kinds: int = 0  # rows of a kind not asked for, skipped
    problems: list[str] = field(default_factory=list)
    videos_seen: list[str] = field(default_factory=list)


class _BadRow(Exception):
    pass


def _blank(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and v.strip().lower() in _EMPTY


def _number(v: Any, key: str, expected: str) -> float | None:
    if _blank(v):
        return None
    if isinstance(v, bool):
        raise _BadRow(f"{key} holds {v!r}; expected {expected}")
    try:
        f = float(v.strip() if isinstance(v, str) else v)
    except (TypeError, ValueError):
        raise _BadRow(f"{key} holds {v!r}; expected {expected}") from None
    if not math.isfinite(f) or f < 0:
        raise _BadRow(f"{key} holds {v!r}; expected {expected}")
    return f


def _frame_of(cells: Mapping[str, Any], key: str, fps: float) -> int | None:
    """Frame ``key`` of a row: its frame column, else its seconds column times ``fps``."""
    f = _number(cells.get(key), key, "a frame number (a whole number >= 0)")
    if f is not None:
        if not f.is_integer():
            raise _BadRow(f"{key} holds {cells.get(key)!r}; expected a frame number (a whole number >= 0)")
        return int(f)
    s = _number(cells.get(f"{key}_s"), f"{key}_s", "a time in seconds (a number >= 0)")
    return None if s is None else int(round(s * fps))


def _text(v: Any) -> str:
    if _blank(v):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _matches_video(name: str, stem: str) -> bool:
    n = name.strip()
    return n == stem or Path(n).stem == stem or Path(n).name == stem


def _read_csv(path: Path) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    """(header, [(where, {header: cell})]) of a CSV; row numbers as a spreadsheet shows them."""
    if not path.is_file():
        raise DataError("intervals file not found" if not path.exists() else "is not a file", path=path,
                        expected="a CSV of intervals (intervals.csv, a MEGC submission or a truth CSV)")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise DataError("the intervals file is empty", path=path,
                                expected="a header row (video, onset, offset, ...) and one row per interval")
            rows = [(f"{path.name} row {n}", dict(zip(header, r))) for n, r in enumerate(reader, start=2)
                    if any(c.strip() for c in r)]
    except UnicodeDecodeError:
        raise DataError("cannot decode the file as UTF-8 text", path=path, expected="a CSV file") from None
    except csv.Error as e:
        raise DataError(f"not a readable CSV ({e})", path=path, expected="a CSV file") from None
    except OSError as e:
        raise DataError(f"cannot read the intervals file ({e.strerror or e})", path=path) from None
    return header, rows


def read_intervals(intervals: str | Path | Iterable[Mapping[str, Any]] | Any, *, fps: float,
                   n_frames: int | None = None, video: str | None = None,
                   kinds: Sequence[str] | None = None) -> ParsedIntervals:
    """The intervals to extract from a CSV path, a DataFrame or rows (mappings).

    Rows whose ``video`` is not ``video`` (compared with and without an extension) are counted
    and left out; with no video column, or ``video=None``, every row is taken. Each taken row
    needs an onset and an offset (frames, or seconds converted with ``fps``); an apex is
    optional. A row with a value that is not a whole frame number or a time, an offset before
    its onset, or (when ``n_frames`` is known) a frame past the recording's end is recorded in
    ``problems`` (its row number, the value and what was expected) and left out; an apex outside
    onset..offset is recorded and left empty, the row kept. The columns are found by name, so
    ``intervals.csv``, MEGC submissions and truth CSVs all read (see the module docstring).
    """
    fps = float(fps)
    if isinstance(intervals, (str, os.PathLike)):
        path = Path(intervals).expanduser()
        header, raw = _read_csv(path)
        source = str(path)
    else:
        if hasattr(intervals, "to_dict") and hasattr(intervals, "columns"):  # a DataFrame
            intervals = intervals.to_dict("records")
        try:
            items = list(intervals)
        except TypeError:
            raise ConfigError(f"intervals must be a CSV path or a list of rows (mappings); got "
                              f"{type(intervals).__name__}") from None
        for i, r in enumerate(items):
            if not isinstance(r, Mapping):
                raise ConfigError(f"intervals[{i}] is a {type(r).__name__}; expected a mapping with onset and "
                                  "offset (frames) or onset_s and offset_s (seconds)")
        header = list(dict.fromkeys(k for r in items for k in r))
        raw = [(f"intervals[{i}]", dict(r)) for i, r in enumerate(items)]
        source = "intervals"
    found: dict[str, str] = {}
    for key, names in _ALIASES.items():
        hit = next((h for name in names for h in header if _norm(h) == name), None)
        if hit is not None:
            found[key] = hit
    has_frames = "onset" in found and "offset" in found
    has_seconds = "onset_s" in found and "offset_s" in found
    if not (has_frames or has_seconds):
        raise DataError(f"no onset/offset columns (columns found: {header})", path=source,
                        expected="onset and offset (frames; also pred_onset/pred_offset) or onset_s and "
                                 "offset_s (seconds)")
    want = None
    if kinds:
        want = set()
        for k in kinds:
            if _norm(k) not in _KINDS and _norm(k) != "other":
                raise ConfigError(f"kind {k!r} is not a kind of interval; expected micro, macro or other")
            want.add(_KINDS.get(_norm(k), "other"))
    out = ParsedIntervals([], source)
    seen: list[str] = []
    for where, row in raw:
        cells = {key: row.get(col) for key, col in found.items()}
        name = _text(cells.get("video"))
        if name and name not in seen:
            seen.append(name)
        if video is not None and "video" in found and not _matches_video(name, video):
            out.other_videos += 1
            continue
        kind_raw = _text(cells.get("kind"))
        kind = _KINDS.get(_norm(kind_raw), kind_raw.lower())
        if want is not None and (kind if kind in ("micro", "macro") else "other") not in want:
            out.other_kinds += 1
            continue
        out.taken += 1
        try:
            iv = _interval(where, cells, fps, n_frames, kind, out.problems)
        except _BadRow as e:
            out.problems.append(f"{where}: {e}; row skipped")
            continue
        out.rows.append(iv)
    out.videos_seen = seen
    return out


def _interval(where: str, cells: Mapping[str, Any], fps: float, n_frames: int | None, kind: str,
              problems: list[str]) -> IntervalRow:
    onset = _frame_of(cells, "onset", fps)
    offset = _frame_of(cells, "offset", fps)
    if onset is None or offset is None:
        which = "onset" if onset is None else "offset"
        raise _BadRow(f"{which} is empty; expected a frame number ({which}) or a time in seconds ({which}_s)")
    if offset < onset:
        raise _BadRow(f"offset {offset} is before onset {onset}; expected onset <= offset")
    if n_frames is not None and offset >= n_frames:
        raise _BadRow(f"offset {offset} is past the recording's last frame {n_frames - 1}; expected frames "
                      f"0..{n_frames - 1}")
    try:
        apex = _frame_of(cells, "apex", fps)
    except _BadRow as e:
        problems.append(f"{where}: {e}; apex left empty, row kept")
        apex = None
    if apex is not None and not onset <= apex <= offset:
        problems.append(f"{where}: apex {apex} is outside onset..offset {onset}..{offset}; apex left empty, "
                        "row kept")
        apex = None
    emotion = _text(cells.get("label")) or _text(cells.get("emotion"))
    try:
        score = _number(cells.get("score"), "score", "a number")
    except _BadRow:
        score = None
    return IntervalRow(where, onset, apex, offset, kind, emotion, _text(cells.get("action_units")), score)


# -- face boxes -------------------------------------------------------------------------------
def _read_boxes(path: Path, wanted: set[int]) -> dict[int, tuple[float, float, float, float]]:
    """Face boxes of the frames in ``wanted`` from a frames.csv (index, x0, y0, x1, y1; empty box
    cells for a frame without a face)."""
    if not path.is_file():
        raise DataError("frames file not found", path=path,
                        expected="the frames.csv `mekit analyze` writes beside intervals.csv")
    need = ("index", "x0", "y0", "x1", "y1")
    boxes: dict[int, tuple[float, float, float, float]] = {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in need if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"no column(s) {missing} (columns found: {reader.fieldnames})", path=path,
                            expected="a frames.csv with index, x0, y0, x1, y1 (as `mekit analyze` writes)")
        for n, r in enumerate(reader, start=2):
            try:
                i = int(float(r["index"]))
            except (TypeError, ValueError):
                raise DataError("index is not a frame number", path=path, row=n, value=r["index"],
                                expected="a whole number") from None
            if i not in wanted or any(_blank(r[c]) for c in need[1:]):
                continue
            try:
                boxes[i] = tuple(float(r[c]) for c in need[1:])  # type: ignore[assignment]
            except ValueError:
                raise DataError("a face box holds a value that is not a number", path=path, row=n,
                                value=[r[c] for c in need[1:]], expected="four numbers (x0, y0, x1, y1)") from None
    return boxes


def _clip_box(boxes: Sequence[tuple[float, float, float, float]], size: tuple[int, int],
              margin: float) -> tuple[int, int, int, int]:
    """One square crop for a whole clip: the median face box, widened by ``margin`` of its side on
    each side, moved inside the frame where it fits (cut to the frame where it does not)."""
    w, h = size
    x0, y0, x1, y1 = np.median(np.asarray(boxes, dtype=float), axis=0)
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    side = min(side, w, h)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(round(min(max(cx - side / 2, 0), w - side)))
    top = int(round(min(max(cy - side / 2, 0), h - side)))
    s = int(round(side))
    return left, top, min(left + s, w), min(top + s, h)


# -- writing ----------------------------------------------------------------------------------
@dataclass
class _Clip:
    iv: IntervalRow
    name: str
    first: int  # first frame written (onset minus context)
    last: int  # last frame written (offset plus context)
    box: tuple[int, int, int, int] | None = None
    written: int = 0
    folder: Path | None = None


@dataclass
class ExtractResult:
    """What :func:`extract_intervals` wrote and left out.

    ``clips`` holds one dict per clip written (its sample id as the loader names it, folder,
    onset, apex, offset, first and last frame on disk, emotion, source row). ``problems`` lists
    every row or clip left out, one line each naming its row. ``table`` is the dataset read back
    with its loader.
    """

    out: Path
    sheet: Path
    layout: str
    clips: list[dict[str, Any]]
    taken: int
    other_videos: int
    other_kinds: int
    problems: list[str]
    notes: list[str]
    table: Any = None  # SampleTable

    def lines(self) -> list[str]:
        """A short account for a terminal or a log: counts, then every problem."""
        head = (f"{len(self.clips)} clip(s) written to {self.out} ({self.layout} layout, sheet {self.sheet.name}) "
                f"from {self.taken} row(s) taken")
        left = [f"{n} row(s) of other videos" for n in [self.other_videos] if n]
        left += [f"{n} row(s) of other kinds" for n in [self.other_kinds] if n]
        if left:
            head += "; skipped " + ", ".join(left)
        return [head, *self.notes, *self.problems]


def _safe_name(text: str) -> str:
    name = re.sub(r"[\\/\x00-\x1f]", "_", text).strip() or "video"
    return "video" if name in (".", "..") else name


def _subject_number(subject: int | str) -> int:
    from mekit.data._sheets import subject_number

    n = None if isinstance(subject, bool) else subject_number(subject)
    if n is None:
        raise ConfigError(f"subject {subject!r} is not a subject number; expected a whole number (1) or a name "
                          "like sub01, as CASME II numbers its subjects")
    return n


def _existing_sheet(out: Path, layout: Layout) -> Path | None:
    hits = [out / f"{layout.sheet_stem}.{fmt}" for fmt in SHEET_FORMATS]
    return next((p for p in hits if p.is_file()), None)


def _read_own_sheet(path: Path, layout: Layout) -> list[dict[str, Any]]:
    import pandas as pd

    try:
        df = (pd.read_excel(path, dtype=object) if path.suffix == ".xlsx"
              else pd.read_csv(path, dtype=object, keep_default_na=False))
    except Exception as e:  # noqa: BLE001 - openpyxl and the CSV parser raise many kinds
        raise DataError(f"cannot read the dataset's coding sheet ({type(e).__name__}: {e})", path=path,
                        expected=f"the sheet an earlier extraction wrote ({', '.join(layout.header)})") from None
    if list(df.columns) != list(layout.header):
        raise DataError(f"the coding sheet's columns are {list(df.columns)}", path=path,
                        expected=f"the columns an extraction writes ({', '.join(layout.header)}) to append to it")
    return [{k: (None if _blank(v) else v) for k, v in r.items()} for r in df.to_dict("records")]


def _write_sheet(path: Path, layout: Layout, rows: list[dict[str, Any]]) -> None:
    """Write the sheet under a temporary name and rename it: a reader never sees half a sheet."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    try:
        if path.suffix == ".xlsx":
            import pandas as pd

            pd.DataFrame(rows, columns=list(layout.header)).to_excel(tmp, index=False, sheet_name="Sheet1")
        else:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, fieldnames=list(layout.header))
                w.writeheader()
                w.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _runs(clips: list[_Clip], gap: int) -> list[list[_Clip]]:
    """Clips (sorted by first frame) grouped so that each group is read by one pass of a source."""
    runs: list[list[_Clip]] = []
    end = 0
    for c in clips:
        if runs and c.first - end <= gap:
            runs[-1].append(c)
            end = max(end, c.last)
        else:
            runs.append([c])
            end = c.last
    return runs


def extract_intervals(video: str | Path, intervals: str | Path | Iterable[Mapping[str, Any]] | Any,
                      out: str | Path, *, subject: int | str = 1, context: float = 0.0, layout: str = "casme2",
                      fps: float | None = None, kinds: Sequence[str] | None = None, crop: str = "none",
                      frames_csv: str | Path | None = None, margin: float = 0.1, sheet_format: str = "xlsx",
                      overwrite: bool = False, append: bool = False) -> ExtractResult:
    """Cut ``intervals`` of ``video`` into a dataset in ``out`` that ``layout``'s loader reads.

    Args:
        video: a video file, or a folder of frames (then give ``fps``).
        intervals: a CSV path (``intervals.csv``, a MEGC submission, a truth CSV, seconds-only
            rows), a DataFrame or a list of mappings; see :func:`read_intervals`. Rows naming
            another video are skipped and counted.
        out: the dataset folder. It must be new or empty, unless ``overwrite`` (replace what is
            there) or ``append`` (add clips to a dataset an earlier extraction wrote there, in
            its sheet's format; a clip already there is reported and skipped).
        subject: the subject the clips are filed under (a number, or ``sub01``).
        context: seconds of frames written before the onset and after the offset (within the
            recording); the sheet still gives the interval's own onset and offset.
        fps: the frame rate (required for a frame folder; overrides a video's declared rate).
        kinds: extract only intervals of these kinds (micro, macro, other); default all.
        crop: ``"none"`` (whole frames) or ``"face"``: a square face crop per clip from the
            boxes of ``frames_csv`` (see the module docstring), widened by ``margin``.
        sheet_format: ``"xlsx"`` (the corpus's own format) or ``"csv"``; the loader reads both.

    Returns an :class:`ExtractResult` whose ``table`` is the dataset read back by the loader.
    Progress is emitted as ``extract`` stage events. Bad rows never stop the extraction: each
    is listed in ``problems`` and skipped. Raises :class:`DataError` when the video cannot be
    read, the CSV has no onset/offset columns, or no interval at all could be extracted.
    """
    from mekit.media import open_source

    lay = LAYOUTS.get(layout)
    if sheet_format not in SHEET_FORMATS:
        raise ConfigError(f"sheet format {sheet_format!r}; expected one of {', '.join(SHEET_FORMATS)}")
    if crop not in CROPS:
        raise ConfigError(f"crop {crop!r}; expected one of {', '.join(CROPS)}")
    if crop == "face" and frames_csv is None:
        raise ConfigError("crop='face' cuts the face boxes of a frames.csv (as `mekit analyze` writes it); pass "
                          "frames_csv, or crop='none' for whole frames (preprocessing finds the face)")
    if crop == "none" and frames_csv is not None:
        log.info("frames_csv given without crop='face': whole frames are written")
    try:
        context = float(context)
        margin = float(margin)
    except (TypeError, ValueError):
        raise ConfigError(f"context and margin must be numbers; got {context!r} and {margin!r}") from None
    if not (math.isfinite(context) and context >= 0):
        raise ConfigError(f"context must be a number of seconds >= 0; got {context!r}")
    if not (math.isfinite(margin) and margin >= 0):
        raise ConfigError(f"margin must be a fraction >= 0 of the face box's side; got {margin!r}")
    if overwrite and append:
        raise ConfigError("give overwrite or append, not both")
    number = _subject_number(subject)
    out = Path(out).expanduser()
    existing = _check_out(out, lay, overwrite, append)

    video_path = Path(video).expanduser()
    with open_source(video_path, fps=fps) as probe:
        rate, n_frames, size = float(probe.fps), probe.n_frames, probe.size
    stem = video_path.name if video_path.is_dir() else video_path.stem
    parsed = read_intervals(intervals, fps=rate, n_frames=n_frames, video=stem, kinds=kinds)
    if parsed.taken == 0:
        named = f"rows name {parsed.videos_seen[:5]}" if parsed.videos_seen else "it has no rows"
        raise DataError(f"no interval of video {stem!r} to extract ({named})", path=parsed.source,
                        expected=f"rows whose video column is {stem!r} (or no video column)")
    problems = list(parsed.problems)
    notes: list[str] = []
    pad = int(round(context * rate))
    last_frame = (n_frames - 1) if n_frames is not None else None

    subject_dir = lay.subject_folder(number)
    taken_names: set[str] = set()
    old_rows: list[dict[str, Any]] = []
    if existing is not None:
        old_rows = _read_own_sheet(existing, lay)
        taken_names = {str(r["Filename"]) for r in old_rows if _subject_number(r["Subject"]) == number}
    clips: list[_Clip] = []
    for iv in parsed.rows:
        name = f"{_safe_name(stem)}_{iv.onset:06d}-{iv.offset:06d}"
        if name in taken_names:
            problems.append(f"{iv.where}: clip {subject_dir}/{name} (onset {iv.onset}, offset {iv.offset}) is "
                            "already in the dataset; expected each interval once; row skipped")
            continue
        taken_names.add(name)
        first = max(0, iv.onset - pad)
        last = iv.offset + pad if last_frame is None else min(iv.offset + pad, last_frame)
        clips.append(_Clip(iv, name, first, last))

    if crop == "face" and clips:
        wanted = {i for c in clips for i in range(c.first, c.last + 1)}
        boxes = _read_boxes(Path(frames_csv).expanduser(), wanted)  # type: ignore[arg-type]
        kept = []
        for c in clips:
            own = [boxes[i] for i in range(c.iv.onset, c.iv.offset + 1) if i in boxes]
            if not own:
                problems.append(f"{c.iv.where}: {frames_csv} gives no face box for frames {c.iv.onset}..{c.iv.offset}; "
                                "expected the tracker's boxes of the same recording; row skipped")
                continue
            c.box = _clip_box(own, size, margin)
            kept.append(c)
        clips = kept

    def nothing_left() -> DataError:
        shown = "; ".join(problems[:_SHOWN_PROBLEMS]) + (" ..." if len(problems) > _SHOWN_PROBLEMS else "")
        return DataError(f"none of the {parsed.taken} interval(s) of video {stem!r} could be extracted: {shown}",
                         path=parsed.source, expected="intervals within the recording")

    if not clips:  # before anything is created on disk
        raise nothing_left()
    from mekit.paths import prepare_out_dir

    prepare_out_dir(out, "dataset folder")  # one clear error when it cannot be created or written
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        _write_frames(video_path, rate, clips, stage / subject_dir, lay, problems, open_source)
        done = [c for c in clips if c.folder is not None]
        if not done:
            raise nothing_left()
        rows = old_rows + [_sheet_row(lay, number, c, stem, rate) for c in done]
        sheet = (existing if existing is not None else out / f"{lay.sheet_stem}.{sheet_format}")
        if existing is not None and sheet.suffix.lstrip(".") != sheet_format:
            notes.append(f"appended to the existing {sheet.name} (its own format, not {sheet_format})")
        _write_sheet(stage / sheet.name, lay, rows)
        _move_into_place(stage, out, subject_dir, append=existing is not None, replace=overwrite)
    finally:
        shutil.rmtree(stage, ignore_errors=True)

    # Each problem is in the result, which the caller shows (the command prints every line); logged at
    # info so a terminal without a logging setup does not print each one twice.
    for p in problems:
        log.info("%s", p)
    from mekit.data import load_dataset

    table = load_dataset(lay.dataset, root=out)
    for p in table.report.problems:  # nothing is expected here: the loader reads what was written
        notes.append(f"loader: {p.sample}: {p.reason}")
    result_clips = [{"sample_id": f"{lay.dataset}/{subject_dir}/{c.name}", "folder": str(out / subject_dir / c.name),
                     "onset": c.iv.onset, "apex": c.iv.apex, "offset": c.iv.offset, "first_frame": c.first,
                     "last_frame": c.last, "emotion": c.iv.emotion or PLACEHOLDER_EMOTION, "kind": c.iv.kind,
                     "row": c.iv.where} for c in clips if c.folder is not None]
    if any(not c.iv.emotion for c in clips if c.folder is not None):
        notes.append(f"intervals without a label or emotion are filed as {PLACEHOLDER_EMOTION!r}")
    log.info("extracted %d clip(s) of %s into %s (%d problem(s))", len(result_clips), stem, out, len(problems))
    return ExtractResult(out, out / sheet.name, lay.name, result_clips, parsed.taken, parsed.other_videos,
                         parsed.other_kinds, problems, notes, table)


def _check_out(out: Path, lay: Layout, overwrite: bool, append: bool) -> Path | None:
    """The sheet to append to (None for a new dataset); refuses a non-empty folder otherwise."""
    if out.exists() and not out.is_dir():
        raise DataError("the dataset folder is a file", path=out, expected="a new or empty folder")
    busy = out.is_dir() and any(out.iterdir())
    if busy and append:
        sheet = _existing_sheet(out, lay)
        if sheet is None:
            raise DataError(f"no {lay.sheet_stem}.xlsx or .csv to append to", path=out,
                            expected=f"a dataset an earlier extraction wrote ({lay.name} layout), or a new folder")
        return sheet
    if busy and not overwrite:
        raise DataError("the dataset folder exists and is not empty", path=out,
                        expected="a new or empty folder, overwrite (--overwrite) to replace what is there, or "
                                 "append (--append) to add clips to a dataset extracted there")
    return None


def _write_frames(video: Path, fps: float, clips: list[_Clip], folder: Path, lay: Layout, problems: list[str],
                  open_source: Any) -> None:
    """Decode the frames the clips need, once each, and write them into the clips' folders."""
    import cv2

    clips.sort(key=lambda c: (c.first, c.last))
    runs = _runs(clips, int(round(SEEK_GAP_S * fps)))
    total = sum(max(c.last for c in run) - run[0].first + 1 for run in runs)
    params = [int(cv2.IMWRITE_JPEG_QUALITY), JPEG_QUALITY]
    with events.Stage("extract", total, video=video.name, clips=len(clips)) as stage:
        for run in runs:
            lo, hi = run[0].first, max(c.last for c in run)
            for c in run:
                c.folder = folder / c.name
                c.folder.mkdir(parents=True, exist_ok=True)
            try:
                source = open_source(video, fps=fps, start=lo)
            except DataError as e:
                for c in run:
                    problems.append(f"{c.iv.where}: frames {c.first}..{c.last} cannot be read ({e}); row skipped")
                    shutil.rmtree(c.folder, ignore_errors=True)  # type: ignore[arg-type]
                    c.folder = None
                continue
            with source:
                for frame in source:
                    i = frame.index
                    if i > hi:
                        break
                    for c in run:
                        if c.first <= i <= c.last:
                            img = frame.image
                            if c.box is not None:
                                x0, y0, x1, y1 = c.box
                                img = img[y0:y1, x0:x1]
                            target = c.folder / lay.frame_name.format(frame=i)  # type: ignore[operator]
                            if not cv2.imwrite(str(target), img, params):
                                raise DataError("cannot write a frame (disk full, or no permission?)", path=target,
                                                expected="a writable folder")
                            c.written += 1
                    stage.advance(1)
            for c in run:
                want = c.last - c.first + 1
                if c.written < want:
                    problems.append(f"{c.iv.where}: only {c.written} of frames {c.first}..{c.last} could be decoded "
                                    f"from {video} (it ends early or holds damaged frames); expected every frame "
                                    "of the interval; row skipped")
                    shutil.rmtree(c.folder, ignore_errors=True)  # type: ignore[arg-type]
                    c.folder = None


def _sheet_row(lay: Layout, number: int, c: _Clip, stem: str, fps: float) -> dict[str, Any]:
    values = (number, c.name, c.iv.onset, c.iv.apex, c.iv.offset, c.iv.action_units or None,
              c.iv.emotion or PLACEHOLDER_EMOTION, stem, round(fps, 6), c.iv.kind or None, c.iv.score, c.first,
              c.last)
    return dict(zip(lay.header, values))


def _move_into_place(stage: Path, out: Path, subject_dir: str, *, append: bool, replace: bool) -> None:
    """Put the staged dataset at ``out``: the whole folder for a new one (replacing what is there
    when asked), or its clip folders and sheet into the existing one when appending."""
    if append:
        (out / subject_dir).mkdir(parents=True, exist_ok=True)
        staged = stage / subject_dir
        for clip in sorted(staged.iterdir()) if staged.is_dir() else ():
            os.replace(clip, out / subject_dir / clip.name)
        for sheet in stage.iterdir():
            if sheet.is_file():
                os.replace(sheet, out / sheet.name)
        return
    from mekit.paths import move_into_place

    move_into_place(stage, out, replace=replace, what="dataset folder")
