"""Shared reading of corpus coding sheets and frame folders.

Every corpus ships its annotations as a spreadsheet whose details drift between
releases: SAMM's official xlsx has about ten preamble rows above the header, some
CASME II copies add blank columns or give an apex as ``/``, column names come as
``OnsetFrame``, ``Onset Frame`` or ``onset_frame``. Each corpus module declares what is
its own in a :class:`SheetSpec` (the columns it needs as :class:`Column`, where its sheet
and frames lie, how a row names its clip and frame folder) and calls
:func:`load_sheet_corpus`, one loop for all of them: it finds the columns, turns the
cells into frame numbers with a clear per-row problem when a cell is not one, resolves
each clip's frame folder and builds the :class:`~mekit.data.schema.SampleTable`. One
loop means a broken row, a missing folder or a repeated clip is reported in the same
words whichever corpus it comes from.

Row numbers in messages are the ones a spreadsheet application shows (1-based, the
header row included), so a user can go straight to the cell.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from numbers import Number
from pathlib import Path
from typing import Any

import pandas as pd

from mekit.data.labels import canonical
from mekit.data.schema import LoadReport, SampleTable, parse_action_units
from mekit.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

#: How many rows from the top are searched for the header (SAMM's release has ~10 above it).
HEADER_SEARCH_ROWS = 60
#: Cell texts that mean "no value" in a frame-number column (CASME II writes an unknown apex as '/').
EMPTY_CELLS = frozenset({"", "/", "-", "--", "nan", "none", "null", "n/a", "na", "?"})
IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})
SHEET_EXTS = (".xlsx", ".xlsm", ".xls", ".csv")


def norm_name(text: Any) -> str:
    """Column name for matching: lower-case letters and digits only ('Onset Frame' -> 'onsetframe')."""
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


def is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


# -- sheets ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """A column a loader reads: its key in the loader and the header names it may carry."""

    key: str
    aliases: tuple[str, ...]
    required: bool = True

    @property
    def names(self) -> frozenset[str]:
        return frozenset(norm_name(a) for a in (self.key, *self.aliases))


@dataclass
class Sheet:
    """The rows of a coding sheet with its columns found and renamed to the loader's keys.

    ``rows`` is indexed by the row number a spreadsheet application shows. Absent
    optional columns are present and empty, so loaders read every key alike.
    """

    path: Path
    sheet_name: str | None
    header_row: int
    rows: pd.DataFrame
    found: dict[str, str]  # key -> header as written in the sheet
    headers: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.path.name} [{self.sheet_name}]" if self.sheet_name else self.path.name

    def where(self, row: int, key: str | None = None) -> str:
        """'CASME2.xlsx [Sheet1] row 12, column OnsetFrame' for messages."""
        text = f"{self.label} row {row}"
        if key is not None:
            text += f", column {self.found.get(key, key)!r}"
        return text

    def has(self, key: str) -> bool:
        return key in self.found


def _read_raw(path: Path, sheet: str | Sequence[str] | None) -> tuple[pd.DataFrame, str | None]:
    """All cells of the sheet as objects, no header, row i = spreadsheet row i + 1."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv_raw(path), None
    if suffix not in SHEET_EXTS:
        raise DataError("unsupported coding-sheet format", path=path, expected="an .xlsx, .xls or .csv file")
    try:
        book = pd.ExcelFile(path)
    except ImportError as e:  # .xls needs xlrd, which mekit does not depend on
        raise DataError(f"cannot open this spreadsheet ({e})", path=path,
                        expected="an .xlsx or .csv file (save an .xls sheet as .xlsx)") from None
    except Exception as e:  # a corrupt or non-spreadsheet file: openpyxl/zipfile raise many kinds
        raise DataError(f"cannot read spreadsheet ({type(e).__name__}: {e})", path=path,
                        expected="a readable .xlsx file") from None
    with book:
        names = [str(n) for n in book.sheet_names]
        wanted = [sheet] if isinstance(sheet, str) else list(sheet or [])
        chosen = None
        for w in wanted:
            hit = [n for n in names if n.strip().lower() == w.strip().lower()]
            if hit:
                chosen = hit[0]
                break
        if chosen is None and isinstance(sheet, str):
            raise DataError(f"no sheet named {sheet!r}", path=path, expected=f"one of {names}")
        if chosen is not None:
            return pd.read_excel(book, sheet_name=chosen, header=None, dtype=object), chosen
        # Fall back to the first sheet that holds anything (CASME II's file has empty Sheet2/3).
        for n in names:
            raw = pd.read_excel(book, sheet_name=n, header=None, dtype=object)
            if not raw.dropna(how="all").empty:
                if wanted:
                    logger.info("%s: no sheet named %s; reading the first non-empty sheet %r",
                                path.name, " or ".join(map(repr, wanted)), n)
                return raw, n
    raise DataError("the spreadsheet holds no data", path=path, expected="a sheet with a header row and rows")


def _read_csv_raw(path: Path) -> pd.DataFrame:
    # The csv module copes with ragged preamble lines that pandas' parser rejects.
    # Excel's "Unicode text" export is UTF-16 with a byte-order mark; read as cp1252 it would
    # come out as letters between NUL bytes, and every column would be reported missing.
    with open(path, "rb") as f:
        bom = f.read(2)
    encodings = ("utf-16",) if bom in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig", "cp1252")
    for enc in encodings:
        try:
            with open(path, newline="", encoding=enc) as f:
                sample = f.read(4096)
                f.seek(0)
                try:
                    dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
                except csv.Error:
                    dialect = csv.excel
                try:
                    rows = list(csv.reader(f, dialect))
                except csv.Error as e:  # NUL bytes, a file that is not text at all
                    raise DataError(f"cannot parse as CSV ({e})", path=path, expected="a text CSV file") from None
            break
        except UnicodeError:
            continue
    else:  # cp1252 decodes nearly anything; a broken UTF-16 file does not
        raise DataError("cannot decode the file", path=path, expected="UTF-8, UTF-16 or Windows-1252 text")
    width = max((len(r) for r in rows), default=0)
    cells = [[(c if c.strip() else None) for c in r] + [None] * (width - len(r)) for r in rows]
    return pd.DataFrame(cells, dtype=object)


def read_sheet(path: str | Path, columns: Sequence[Column], sheet: str | Sequence[str] | None = None) -> Sheet:
    """Read a coding sheet (xlsx or csv), find its header row and the loader's columns.

    ``sheet`` is a sheet name (must exist) or a list of preferred names (the first
    non-empty sheet is read when none exists). Blank and unnamed columns are ignored,
    as are fully blank rows. A missing required column raises :class:`DataError`
    naming the sheet, the missing column and the columns found.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("coding sheet not found", path=path, expected="an existing .xlsx or .csv file")
    raw, sheet_name = _read_raw(path, sheet)
    label = f"{path} [{sheet_name}]" if sheet_name else str(path)  # full path: errors must name the file
    required = [c for c in columns if c.required]

    def matches(cells: list[str]) -> dict[str, int]:
        hit: dict[str, int] = {}
        for c in columns:
            for j, cell in enumerate(cells):
                if cell and cell in c.names:
                    hit[c.key] = j
                    break
        return hit

    best: tuple[int, int, dict[str, int], list[str]] | None = None  # (n required matched, row, hits, cells)
    for i in range(min(len(raw), HEADER_SEARCH_ROWS)):
        cells = ["" if is_blank(v) else norm_name(v) for v in raw.iloc[i].tolist()]
        if not any(cells):
            continue
        hit = matches(cells)
        score = sum(c.key in hit for c in required)
        if best is None or score > best[0]:
            best = (score, i, hit, cells)
        if score == len(required):
            break
    if best is None:
        raise DataError(f"{label}: the sheet is empty", expected="a header row and data rows")
    score, hrow, hit, _ = best
    headers = [str(v).strip() for v in raw.iloc[hrow].tolist() if not is_blank(v)]
    if score < len(required):
        missing = [c.key for c in required if c.key not in hit]
        expect = "; ".join(f"{c.key}: one of {list(c.aliases)}" for c in required if c.key in missing)
        raise DataError(f"{label}: missing column(s) {missing}; columns found: {headers}",
                        expected=f"a header row with {expect}")
    body = raw.iloc[hrow + 1:]
    rows = pd.DataFrame({c.key: (body.iloc[:, hit[c.key]] if c.key in hit else None) for c in columns},
                        index=body.index)
    blank = rows.apply(lambda r: all(is_blank(v) for v in r), axis=1) if len(rows) else pd.Series([], dtype=bool)
    rows = rows.loc[~blank]
    rows.index = rows.index + 1  # spreadsheet row numbers
    found = {k: str(raw.iat[hrow, j]).strip() for k, j in hit.items()}
    logger.debug("%s: header on row %d, %d data rows, columns %s", label, hrow + 1, len(rows), found)
    return Sheet(path, sheet_name, hrow + 1, rows, found, headers)


# -- cells ----------------------------------------------------------------------------------
class CellError(ValueError):
    """A cell that does not hold what its column needs; the message says what was expected."""


#: the largest frame number a sheet may give: a billion frames is 58 days at 200 fps
MAX_FRAME_NUMBER = 10**9


def frame_number(value: Any) -> int | None:
    """A frame number from a cell: 46, 46.0, '46', ' 46.0 ' -> 46; empty or '/' -> None.

    Raises :class:`CellError` for text or a fractional or negative number.
    """
    if is_blank(value):
        return None
    if isinstance(value, bool):
        raise CellError("expected a frame number (a whole number), got a true/false value")
    if isinstance(value, Number):
        try:
            f = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):  # complex, or a number float cannot hold
            raise CellError("expected a frame number (a whole number)") from None
    else:
        s = str(value).strip()
        if s.lower() in EMPTY_CELLS:
            return None
        try:
            f = float(s)
        except ValueError:
            raise CellError("expected a frame number (a whole number)") from None
    if math.isnan(f):
        return None
    if math.isinf(f) or not f.is_integer() or f < 0:
        raise CellError("expected a frame number (a whole number >= 0)")
    if f > MAX_FRAME_NUMBER:  # a 64-bit column cannot hold it, and no recording is that long
        raise CellError(f"expected a frame number (a whole number up to {MAX_FRAME_NUMBER:.0e})")
    return int(f)


def text(value: Any) -> str | None:
    """Cell as stripped text; integral floats lose their '.0' (Subject 1.0 -> '1'); blank -> None."""
    if is_blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def subject_number(value: Any) -> int | None:
    """The number in a subject cell: 6, '006', 'sub06', 's6' -> 6; None when there is none."""
    s = text(value)
    if s is None:
        return None
    m = re.fullmatch(r"(?:sub|s|subject)?[\s_.-]*0*(\d+)", s, flags=re.IGNORECASE)
    return int(m.group(1)) if m else None


def au_text(value: Any) -> str | None:
    """AU cell as written (ints stay ints: 4 -> '4')."""
    return text(value)


# -- rows -> clips --------------------------------------------------------------------------
@dataclass
class ClipRow:
    """One sheet row, parsed, before its frame folder is checked."""

    sample_id: str
    subject: str
    clip: str
    folders: list[Path]  # candidate frame folders; the first is where frames are expected
    template: str  # file-name template used when the folder is not checked
    onset: int
    apex: int | None
    offset: int | None
    emotion: str | None
    action_units: list[str]
    row: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Interval:
    onset: int
    apex: int | None
    offset: int | None


def read_interval(sheet: Sheet, row: int, cells: pd.Series, sample: str, report: LoadReport,
                  counts: dict[str, int], need_offset: bool = False) -> Interval | None:
    """Onset/apex/offset of one row, or None (problem recorded) when the row is unusable.

    Text in a frame column, or no onset, excludes the row. An empty apex (or ``/``) is
    left empty and counted in ``counts['no_apex']`` for one summary note. Values out of
    order (offset before onset, apex outside onset..offset) are recorded as problems and
    the offending value is left empty; the row is kept.
    """
    vals: dict[str, int | None] = {}
    for key in ("onset", "apex", "offset"):
        raw = cells.get(key)
        try:
            vals[key] = frame_number(raw)
        except CellError as e:
            report.add_problem(sample, f"{sheet.where(row, key)} holds {raw!r}; {e}; row excluded")
            return None
    on, ap, off = vals["onset"], vals["apex"], vals["offset"]
    if on is None:
        report.add_problem(sample, f"{sheet.where(row, 'onset')} is empty; expected an onset frame; row excluded")
        return None
    if off is None and need_offset:
        report.add_problem(sample, f"{sheet.where(row, 'offset')} is empty; expected an offset frame; "
                                   "row excluded")
        return None
    if off is None:
        counts["no_offset"] = counts.get("no_offset", 0) + 1
    elif off < on:
        report.add_problem(sample, f"{sheet.where(row)}: offset {off} is before onset {on}; "
                                   "offset left empty, row kept")
        off = None
    if ap is None:
        counts["no_apex"] = counts.get("no_apex", 0) + 1
    elif ap < on or (off is not None and ap > off):
        report.add_problem(sample, f"{sheet.where(row)}: apex {ap} is outside onset..offset {on}..{off}; "
                                   "apex left empty, row kept")
        ap = None
    return Interval(on, ap, off)


def row_problem(report: LoadReport, sample: str | None, sheet: Sheet, row: int, key: str, value: Any,
                expected: str, dataset: str = "") -> None:
    """Record an unusable row: where it is, what the cell holds and what was expected.

    ``sample`` may be None when the row is too broken to name one; it is then named by
    its sheet row.
    """
    what = "is empty" if is_blank(value) else f"holds {value!r}"
    report.add_problem(sample or f"{dataset}/{sheet.label}:row{row}",
                       f"{sheet.where(row, key)} {what}; expected {expected}; row excluded")


def interval_notes(sheet: Sheet, counts: dict[str, int], report: LoadReport) -> None:
    if counts.get("no_apex"):
        report.notes.append(f"{sheet.label}: {counts['no_apex']} row(s) give no apex frame; apex left empty "
                            "(an apex can be spotted later)")
    if counts.get("no_offset"):
        report.notes.append(f"{sheet.label}: {counts['no_offset']} row(s) give no offset frame; offset left "
                            "empty unless the frame folder supplies it")


# -- frame folders --------------------------------------------------------------------------
_FRAME_FILE = re.compile(r"^(?P<prefix>.*?)(?P<num>\d+)(?P<ext>\.[A-Za-z]+)$")


@dataclass(frozen=True)
class FrameNaming:
    """One naming pattern found in a frame folder, e.g. 'reg_img{frame}.jpg' with its frame numbers."""

    template: str
    frames: frozenset[int]


def scan_frames(folder: Path) -> list[FrameNaming]:
    """Naming patterns of the image files in ``folder``, the most populous first.

    ``reg_img46.jpg`` -> ``reg_img{frame}.jpg``; ``006_05562.jpg`` -> ``006_{frame:05d}.jpg``
    (fixed width when numbers are zero-padded); ``62.jpg`` -> ``{frame}.jpg``.
    """
    groups: dict[tuple[str, str], dict[int, set[int]]] = {}
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    for name in names:
        m = _FRAME_FILE.match(name)
        if not m or m["ext"].lower() not in IMAGE_EXTS:
            continue
        num = m["num"]
        widths = groups.setdefault((m["prefix"], m["ext"]), {})
        widths.setdefault(len(num), set()).add(int(num))
    out = []
    for (prefix, ext), by_width in groups.items():
        nums = [n for s in by_width.values() for n in s]
        esc = prefix.replace("{", "{{").replace("}", "}}")
        padded = len(by_width) == 1 and any(len(str(n)) < w for w, s in by_width.items() for n in s)
        if padded:
            (w,) = by_width
            tpl = f"{esc}{{frame:0{w}d}}{ext}"
        else:
            tpl = f"{esc}{{frame}}{ext}"
        out.append(FrameNaming(tpl, frozenset(nums)))
    out.sort(key=lambda f: -len(f.frames))
    return out


def _short_ranges(frames: Sequence[int], limit: int = 6) -> str:
    shown = ", ".join(map(str, frames[:limit]))
    return shown + (f", ... ({len(frames)} in all)" if len(frames) > limit else "")


def check_clip_frames(clip: ClipRow, folder: Path, namings: list[FrameNaming], report: LoadReport,
                      offset_from_folder: bool = False) -> tuple[str, int | None] | None:
    """The clip's frame template and offset, or None (problem recorded) when it is unusable.

    The naming that holds the onset frame is used. An absent onset or apex frame
    excludes the clip; other frames absent between onset and offset are a problem, the
    clip is kept. With ``offset_from_folder`` a clip the sheet gives no offset ends at
    the last frame of the unbroken run that starts at its onset.
    """
    if not namings:
        report.add_problem(clip.sample_id, f"frame folder {folder} holds no image files; clip excluded")
        return None
    hit = [n for n in namings if clip.onset in n.frames]
    if not hit:
        have = sorted(namings[0].frames)
        report.add_problem(clip.sample_id,
                           f"onset frame {clip.onset} (sheet row {clip.row}) is not in {folder} "
                           f"(it holds frames {have[0]}..{have[-1]} named like "
                           f"{namings[0].template.format(frame=have[0])}); clip excluded")
        return None
    naming = hit[0]
    if clip.apex is not None and clip.apex not in naming.frames:
        report.add_problem(clip.sample_id, f"apex frame {clip.apex} (sheet row {clip.row}) is not in "
                                           f"{folder}; clip excluded")
        return None
    offset = clip.offset
    if offset is None and offset_from_folder:
        offset = clip.onset
        while offset + 1 in naming.frames:
            offset += 1
    elif offset is not None:
        absent = [f for f in range(clip.onset, offset + 1) if f not in naming.frames]
        if absent:
            report.add_problem(clip.sample_id, f"{len(absent)} of {offset - clip.onset + 1} frames between "
                                               f"onset {clip.onset} and offset {offset} are absent from "
                                               f"{folder}: {_short_ranges(absent)}; clip kept")
    return naming.template, offset


def _assemble(spec: SheetSpec, clips: Iterable[ClipRow], *, report: LoadReport, check_frames: bool,
              frames_dir: Path, sheet: Sheet) -> SampleTable:
    """Resolve frame folders (when ``check_frames``) and build the table.

    Repeats of a sample id are problems (excluded). Clips with no frame folder go to
    ``report.missing``. ``spec.offset_from_folder`` fills an offset the sheet leaves empty
    from the folder, only where the clip lies in its first (primary) candidate folder:
    SMIC-HS clip folders hold exactly onset..offset, SMIC-E's longer ones do not.
    """
    dataset, fps, offset_from_folder = spec.dataset, spec.fps, spec.offset_from_folder
    if sheet.rows.empty:
        raise DataError(f"{sheet.label} has a header (row {sheet.header_row}) but no data rows", path=sheet.path,
                        expected="one row per coded clip below the header")
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    scans: dict[Path, list[FrameNaming]] = {}  # CAS(ME)^3 videos hold many clips: list each folder once
    n_rows = 0
    filled = 0
    outside = 0
    real_root = os.path.realpath(frames_dir)
    for c in clips:
        n_rows += 1
        bad = unsafe_name(c.clip, "clip") or unsafe_name(c.subject.split("/", 1)[-1], "subject")
        if bad:
            report.add_problem(c.sample_id, f"{sheet.where(c.row)}: {bad}; row excluded")
            continue
        if c.sample_id in seen:
            report.add_problem(c.sample_id, f"{sheet.where(c.row)} repeats sample {c.sample_id} "
                                            f"(first on row {seen[c.sample_id]}); row excluded")
            continue
        seen[c.sample_id] = c.row
        template, offset = c.template, c.offset
        found = next((f for f in c.folders if _is_dir(f)), None)
        if found is not None:
            leak = _leaves_subject(found, frames_dir, real_root)
            if leak == "leak":
                report.add_problem(c.sample_id, f"{sheet.where(c.row)}: clip folder {found} is a link to "
                                                f"{os.path.realpath(found)}, another subject's folder; a clip "
                                                "must lie in its own subject's folder; row excluded")
                continue
            outside += leak == "outside"
        if check_frames:
            if found is None:
                report.missing.append(c.sample_id)
                continue
            if found not in scans:
                scans[found] = scan_frames(found)
            res = check_clip_frames(c, found, scans[found], report, offset_from_folder and found == c.folders[0])
            if res is None:
                continue
            template, offset = res
            filled += c.offset is None and offset is not None
        folder = found if found is not None else c.folders[0]
        try:
            resolved = folder.resolve()
        except (OSError, ValueError) as e:
            report.add_problem(c.sample_id, f"{sheet.where(c.row)}: clip folder {str(folder)!r} is not a usable "
                                            f"path ({e}); row excluded")
            continue
        emotion = c.emotion
        records.append({
            "sample_id": c.sample_id, "dataset": dataset, "subject": c.subject, "clip": c.clip,
            "media": "frames", "path": str(resolved), "frame_template": template,
            "onset": c.onset, "apex": c.apex, "offset": offset, "fps": float(fps),
            "emotion": emotion, "label": canonical(emotion) if emotion is not None else None,
            "action_units": tuple(c.action_units), "intensity": None, "split": None,
            **c.extra,
        })
        if emotion is not None:
            report.label_mapping.setdefault(str(emotion), canonical(emotion))
        report.sources[c.sample_id] = sheet.where(c.row, "emotion")
    if outside:
        report.notes.append(f"{dataset}: {outside} clip folder(s) under {frames_dir} are links to folders outside "
                            "it (kept: a link farm, not another subject's clip)")
    if report.missing:
        report.notes.append(f"{dataset}: {len(report.missing)} of {n_rows} clips in {sheet.label} have no "
                            f"frame folder under {frames_dir} (listed in report.missing); they were skipped")
    if filled:
        report.notes.append(f"{dataset}: {filled} clip(s) with no offset in the sheet took it from the last "
                            "frame of their folder")
    if not check_frames:
        report.notes.append(f"{dataset}: frame folders not checked (check_frames=False): paths point where "
                            "frames are expected")
    table = SampleTable.from_records(records, report, name=dataset)
    logger.info("%s: %d clips from %d sheet rows (%d missing, %d problems)", dataset, len(table), n_rows,
                len(report.missing), len(report.problems))
    return table


# -- path safety ----------------------------------------------------------------------------
_DRIVE = re.compile(r"^[A-Za-z]:")


def _is_dir(p: Path) -> bool:
    """``p.is_dir()``, False for a name the file system cannot hold (too long, a NUL byte)."""
    try:
        return p.is_dir()
    except (OSError, ValueError):
        return False


def unsafe_name(name: str, what: str) -> str | None:
    """Why a sheet cell cannot be used as one folder name, or None when it can.

    Clip and subject cells become path components (``<frames>/<subject>/<clip>``). A cell
    holding ``../sub02/EP01_01``, an absolute path or any separator would point at another
    subject's clip and load it under this subject: a subject leak that makes
    leave-one-subject-out test on training data. Every corpus names a clip with one
    folder name, so a separator is refused outright.
    """
    text = str(name)
    if text in (".", ".."):
        return f"{what} name {text!r} is not a folder name"
    if len(text.encode("utf-8", "surrogatepass")) > 255:
        return f"{what} name is {len(text.encode('utf-8', 'surrogatepass'))} bytes long; a folder name holds at most 255"
    if "/" in text or "\\" in text or _DRIVE.match(text) or "\x00" in text:
        return (f"{what} name {text!r} is a path; expected one folder name (a path could leave the subject's "
                "folder and load another subject's clip)")
    return None


def _leaves_subject(folder: Path, frames_dir: Path, real_root: str) -> str:
    """'ok', 'leak' (resolves into another subject's folder) or 'outside' (outside the frames folder).

    The subject's folder is the first component of the clip folder below ``frames_dir``.
    A symlinked clip folder that resolves into another subject's folder of the same
    corpus is a subject leak and refused. One that resolves outside the corpus entirely
    is allowed (some users keep frames elsewhere and link them in); it is counted in a note.
    """
    try:
        rel = folder.relative_to(frames_dir)
    except ValueError:
        return "ok"
    if not rel.parts:
        return "ok"
    real = os.path.realpath(folder)
    home = os.path.realpath(frames_dir / rel.parts[0])
    if real == home or real.startswith(home + os.sep):
        return "ok"
    if real == real_root or real.startswith(real_root + os.sep):
        return "leak"
    return "outside"


# -- locating files -------------------------------------------------------------------------
def find_sheet(root: Path | None, sheet: str | Path | None, patterns: Sequence[str], what: str) -> Path:
    """The coding sheet: ``sheet`` if given, else the first file under ``root`` matching ``patterns``.

    Searched in ``root`` and one folder below, pattern by pattern (so a specific name
    beats a generic ``*.xlsx``); Excel's ``~$`` lock files are skipped.
    """
    if sheet is not None:
        p = Path(sheet).expanduser()
        if not p.is_file():
            raise DataError(f"{what} coding sheet not found", path=p, expected="an existing .xlsx or .csv file")
        return p
    if root is None:
        raise DataError(f"{what}: give the corpus folder (root) or the coding sheet (sheet=PATH)")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{what} folder not found", path=root, expected="an existing folder")
    for pat in patterns:
        hits = sorted(p for p in [*root.glob(pat), *root.glob(f"*/{pat}")]
                      if p.is_file() and not p.name.startswith("~$") and p.suffix.lower() in SHEET_EXTS)
        if hits:
            return hits[0]
    raise DataError(f"no {what} coding sheet found in {root} or its sub-folders",
                    expected=f"a file matching {list(patterns)}, or pass sheet=PATH")


def find_frames_dir(root: Path | None, frames_dir: str | Path | None, candidates: Sequence[str],
                    looks_right: Callable[[Path], bool], fallback: Path, check_frames: bool, what: str) -> Path:
    """Folder that holds the per-subject frame folders.

    ``frames_dir`` if given; else the first of ``root/<candidate>`` (then ``root``) that
    ``looks_right``; else ``root/<first existing candidate>`` or ``root``. With no root,
    ``fallback`` (the sheet's folder).
    """
    if frames_dir is not None:
        p = Path(frames_dir).expanduser()
        if check_frames and not p.is_dir():
            raise DataError(f"{what} frames folder not found", path=p,
                            expected="the folder that holds the per-subject frame folders")
        return p
    if root is None:
        return fallback
    root = Path(root).expanduser()
    options = [root / c for c in candidates] + [root]
    for p in options:
        if p.is_dir() and looks_right(p):
            return p
    return next((p for p in options if p.is_dir()), root)


def has_subfolder(pattern: str) -> Callable[[Path], bool]:
    """``looks_right`` test: the folder has a sub-folder whose name matches ``pattern`` (a regex)."""
    rx = re.compile(pattern, re.IGNORECASE)

    def test(p: Path) -> bool:
        try:
            return any(rx.fullmatch(e.name) and e.is_dir() for e in os.scandir(p))
        except OSError:
            return False

    return test


def parse_aus(value: Any) -> list[str]:
    return parse_action_units(au_text(value))


def as_bool(value: Any, name: str) -> bool:
    """A boolean option that may arrive as text from a CLI flag or config ('false', 'no', '0')."""
    if isinstance(value, bool):
        return value
    key = str(value).strip().lower()
    if key in {"true", "yes", "1", "on"}:
        return True
    if key in {"false", "no", "0", "off"}:
        return False
    raise ConfigError(f"option {name} must be true or false, got {value!r}")


def reject_unknown(options: dict[str, Any], what: str, accepted: Sequence[str]) -> None:
    """Loaders take ``**options`` (the registry's contract) but refuse names they do not know."""
    if options:
        raise ConfigError(f"unknown option(s) for the {what} loader: {sorted(options)}; "
                          f"accepted: {', '.join(accepted)}")


# -- corpus specs: one loop for every sheet corpus ------------------------------------------
#: Options every sheet loader takes besides ``root``; anything else is refused by name.
SHEET_OPTIONS = ("sheet", "frames_dir", "check_frames", "sheet_name")


class RowRefused(Exception):
    """Raised by a spec's hook for a row it cannot use; the loop records it as one problem.

    The problem names the cell (sheet, row, column), what it holds and ``expected``, and
    the row is excluded. Hooks raise it rather than record it so every corpus words a
    refused row the same way (:func:`row_problem`).
    """

    def __init__(self, key: str, value: Any, expected: str) -> None:
        super().__init__(f"{key}: expected {expected}")
        self.key, self.value, self.expected = key, value, expected


@dataclass(frozen=True)
class SheetRow:
    """One data row of a coding sheet as a spec's hooks see it.

    ``number`` is the row number a spreadsheet application shows. ``sample`` is None
    while the row is being identified and the row's sample id afterwards, so a hook
    that records a kept-row problem names the sample.
    """

    sheet: Sheet
    number: int
    cells: pd.Series
    frames_dir: Path
    report: LoadReport
    counts: dict[str, int]
    sample: str | None = None

    def cell(self, key: str) -> Any:
        """The cell of column ``key`` as read (None where the sheet lacks an optional column)."""
        return self.cells.get(key)

    def text(self, key: str) -> str | None:
        return text(self.cell(key))

    def require(self, key: str, expected: str, parse: Callable[[Any], Any] | None = None) -> Any:
        """``parse`` of the cell (default: its text), refusing the row (:class:`RowRefused`) when that
        gives None."""
        value = (parse or text)(self.cell(key))  # not a default of text: the class body's text is the method
        if value is None:
            raise RowRefused(key, self.cell(key), expected)
        return value

    def refuse(self, key: str, expected: str) -> RowRefused:
        """The refusal of this row for column ``key``, for the hook to raise."""
        return RowRefused(key, self.cell(key), expected)

    def where(self, key: str | None = None) -> str:
        return self.sheet.where(self.number, key)

    def count(self, key: str) -> None:
        """Count a per-row event for a summary note (see :attr:`SheetSpec.count_notes`)."""
        self.counts[key] = self.counts.get(key, 0) + 1


@dataclass(frozen=True)
class ClipId:
    """Which clip a row codes: its subject, its clip (folder) name and its sample id.

    The sample id is ``<dataset>/<subject>/<name>``; ``name`` defaults to the clip name
    (CAS(ME)^3 adds the onset, since one video there holds several clips). ``number`` is
    the subject's number where the corpus numbers subjects, for folder names that write
    it unpadded.
    """

    subject: str
    clip: str
    name: str | None = None
    number: int | None = None


def emotion_cell(row: SheetRow, clip: ClipId) -> tuple[str, dict[str, Any]]:
    """The default label hook: the emotion cell as written, no extra columns; a row without one is refused."""
    return row.require("emotion", "an emotion"), {}


def _no_extra(row: SheetRow) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class SheetSpec:
    """What differs between sheet corpora; :func:`load_sheet_corpus` does the rest alike.

    The shared loop finds the sheet (``sheet_patterns``, preferring the sheets named in
    ``sheet_names``) and the frames folder (the first of ``frame_dirs`` holding a folder
    whose name matches ``subject_folder``), reads the ``columns``, and for every row:
    ``identify`` names the clip, the interval is read, ``label`` gives the emotion (and
    label-derived extra columns), ``folders`` lists the clip's candidate frame folders
    (the first is where frames are expected) and ``template`` its frame file names (used
    when folders are not checked; checked folders are scanned). Extra columns are
    ``au_raw`` where the corpus has an action-unit column, then ``extra``, then the
    label's. Hooks refuse a row by raising :class:`RowRefused`, so every corpus reports an
    unusable row the same way.
    """

    dataset: str  # the registered loader name; first part of every sample id
    title: str  # the corpus as messages name it ('CASME II')
    fps: float
    columns: tuple[Column, ...]
    sheet_patterns: tuple[str, ...]
    frame_dirs: tuple[str, ...]
    subject_folder: str  # regex a subject folder's name matches
    identify: Callable[[SheetRow], ClipId]
    folders: Callable[[Path, ClipId, str], list[Path]]  # (frames folder, clip, emotion) -> candidates
    template: str | Callable[[Path, ClipId], str]  # or (frames folder, clip) -> template
    sheet_names: tuple[str, ...] = ()  # preferred sheets of a workbook; else its first non-empty one
    label: Callable[[SheetRow, ClipId], tuple[str, dict[str, Any]]] = emotion_cell
    extra: Callable[[SheetRow], dict[str, Any]] = _no_extra
    offset_from_folder: bool = False  # an offset the sheet lacks ends the unbroken run of frames
    count_notes: tuple[tuple[str, str], ...] = ()  # (count key, note with {n}) added when counted


def load_sheet_corpus(spec: SheetSpec, root: str | Path | None = None, *, sheet: str | Path | None = None,
                      frames_dir: str | Path | None = None, check_frames: bool = True,
                      sheet_name: str | None = None, **options: Any) -> SampleTable:
    """Load the corpus ``spec`` describes: one row per coded clip, with the canonical emotion.

    Every sheet loader is this call with its spec; the options are those of
    :data:`SHEET_OPTIONS` (see the loaders' docstrings). A label scheme is applied by
    :func:`mekit.data.load_dataset`, not here, as for every loader.
    """
    reject_unknown(options, spec.title, SHEET_OPTIONS)
    check_frames = as_bool(check_frames, "check_frames")
    root_p = Path(root).expanduser() if root is not None else None
    sheet_path = find_sheet(root_p, sheet, spec.sheet_patterns, spec.title)
    sh = read_sheet(sheet_path, spec.columns,
                    sheet=sheet_name if sheet_name is not None else (list(spec.sheet_names) or None))
    fdir = find_frames_dir(root_p, frames_dir, spec.frame_dirs, has_subfolder(spec.subject_folder),
                           sheet_path.parent, check_frames, spec.title)
    report = LoadReport()
    counts: dict[str, int] = {}
    if not sh.has("apex"):  # only an optional apex column can be absent (SMIC's own release gives none)
        report.notes.append(f"{sh.label} has no apex column; apex left empty (an apex can be spotted later)")
    table = _assemble(spec, _clip_rows(spec, sh, fdir, report, counts), report=report,
                      check_frames=check_frames, frames_dir=fdir, sheet=sh)
    # With no apex column every row lacks one: the note above says so once, not per row.
    interval_notes(sh, counts if sh.has("apex") else {k: v for k, v in counts.items() if k != "no_apex"}, report)
    for key, note in spec.count_notes:
        if counts.get(key):
            report.notes.append(note.format(n=counts[key]))
    return table


def _clip_rows(spec: SheetSpec, sheet: Sheet, frames_dir: Path, report: LoadReport,
               counts: dict[str, int]) -> Iterator[ClipRow]:
    """The sheet's usable rows as clips; every other row is recorded as one problem naming its row."""
    has_aus = any(c.key == "action_units" for c in spec.columns)
    for number, cells in sheet.rows.iterrows():
        row = SheetRow(sheet, int(number), cells, frames_dir, report, counts)
        try:
            clip = spec.identify(row)
            row = replace(row, sample=f"{spec.dataset}/{clip.subject}/{clip.name or clip.clip}")
            iv = read_interval(sheet, row.number, cells, row.sample, report, counts)
            if iv is None:
                continue
            emotion, label_extra = spec.label(row, clip)
        except RowRefused as e:
            # Before the row is identified it has no sample id and is named by its sheet row.
            row_problem(report, row.sample, sheet, row.number, e.key, e.value, e.expected, spec.dataset)
            continue
        aus = cells.get("action_units")
        template = spec.template if isinstance(spec.template, str) else spec.template(frames_dir, clip)
        yield ClipRow(sample_id=row.sample, subject=f"{spec.dataset}/{clip.subject}", clip=clip.clip,
                      folders=spec.folders(frames_dir, clip, emotion), template=template,
                      onset=iv.onset, apex=iv.apex, offset=iv.offset, emotion=emotion,
                      action_units=parse_aus(aus), row=row.number,
                      extra={**({"au_raw": au_text(aus)} if has_aus else {}), **spec.extra(row), **label_extra})
