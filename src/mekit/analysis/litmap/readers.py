"""Readers of bibliographic exports: BibTeX, RIS, Scopus CSV, Web of Science plain text, OpenAlex JSON.

Every reader turns one file into :class:`Record` objects and a list of :class:`Issue` objects:
an entry that cannot be read is reported with its file and line (for JSON: its position in the
list) and skipped, and the rest of the file is still read. A reader never raises for a bad
entry; only a file that cannot be opened at all is a :class:`~mekit.errors.DataError`.

Readers live in :data:`READERS` under their format name; :func:`detect_format` picks one from
the file's extension and, where the extension says nothing, its first lines. :func:`read_corpus`
reads several files, reports records without a title or an abstract, and merges duplicates
(same DOI, else same normalised title and year).
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mekit.errors import ConfigError, DataError
from mekit.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Record:
    """One bibliographic record, whatever format it came from.

    ``line`` is the 1-based line where the record starts in its file (None for JSON, where
    ``entry`` says which item of the list it was); ``entry`` is the record's own key where the
    format has one (a BibTeX key, a WoS accession number, an OpenAlex id).
    """

    title: str = ""
    abstract: str = ""
    year: int | None = None
    doi: str = ""
    authors: tuple[str, ...] = ()
    venue: str = ""
    author_keywords: tuple[str, ...] = ()
    index_keywords: tuple[str, ...] = ()
    path: str = ""
    line: int | None = None
    entry: str = ""
    format: str = ""
    #: where the duplicates merged into this record came from (``file:line`` each)
    merged: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return _where(self.path, self.line, self.entry)


@dataclass(frozen=True)
class Issue:
    """Something a reader could not use as it was: ``kind`` is ``malformed`` (entry skipped),
    ``unterminated`` (entry read, but it was not closed), ``no_title`` / ``no_abstract``
    (record kept), ``empty`` (record without title, abstract or keywords: skipped),
    ``encoding`` (file not UTF-8, read as Latin-1) or ``unreadable`` (whole file skipped)."""

    path: str
    line: int | None
    kind: str
    message: str
    entry: str = ""

    @property
    def where(self) -> str:
        return _where(self.path, self.line, self.entry)


def _where(path: str, line: int | None, entry: str) -> str:
    out = path
    if line is not None:
        out += f":{line}"
    if entry:
        out += f" ({entry})"
    return out


Reader = Callable[[str, str], tuple[list[Record], list[Issue]]]

#: Readers by format name; each is ``reader(path, text) -> (records, issues)``. Meta: ``extensions``
#: (lower-case suffixes it claims) and ``help``.
READERS: Registry[Reader] = Registry("literature format")


# -- small text helpers ----------------------------------------------------------------------

_DOI_RE = re.compile(r"10\.\d+(?:\.\d+)*/\S+", re.I)
_YEAR_RE = re.compile(r"(1[5-9]\d\d|20\d\d|2100)")


def clean_text(s: Any) -> str:
    """One line of plain text: NFKC, TeX braces dropped, whitespace collapsed."""
    if s is None:
        return ""
    s = unicodedata.normalize("NFKC", str(s))
    s = s.replace("{", "").replace("}", "")
    return " ".join(s.split())


def normalise_doi(s: Any) -> str:
    """``https://doi.org/10.1/AbC`` -> ``10.1/abc`` (DOIs are case-insensitive); '' when none."""
    m = _DOI_RE.search(str(s or ""))
    return m.group(0).rstrip(".,;").lower() if m else ""


def parse_year(s: Any) -> int | None:
    m = _YEAR_RE.search(str(s or ""))
    return int(m.group(1)) if m else None


def split_keywords(s: Any) -> tuple[str, ...]:
    """Keywords of one field: a list as it is, a string split on ``;`` (on ``,`` where it has no ``;``)."""
    if s is None:
        return ()
    if isinstance(s, (list, tuple)):
        parts: Iterable[Any] = [q for item in s for q in str(item).split(";")]
    else:
        s = str(s)
        parts = s.split(";") if ";" in s else s.split(",")
    out = [clean_text(p) for p in parts]
    return tuple(p for p in out if p)


class _Lines:
    """Character offset -> 1-based line number, for readers that scan a whole text."""

    def __init__(self, text: str) -> None:
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def __call__(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset)


# -- BibTeX ----------------------------------------------------------------------------------

_BIB_START = re.compile(r"^[ \t]*@[ \t]*(\w+)[ \t]*([{(])", re.M)
_BIB_KEY = re.compile(r"\s*([^,\s{}()]*)\s*,")
_BIB_SKIP = {"comment", "preamble"}


def _bib_chunks(path: str, text: str) -> tuple[list[tuple[int, str, str, str]], list[str], list[Issue]]:
    """Split BibTeX text into entries by balanced delimiters: ``(line, type, key, text)`` per
    entry, the ``@string`` definitions, and an issue for every entry not closed before the next."""
    lines = _Lines(text)
    starts = list(_BIB_START.finditer(text))
    chunks: list[tuple[int, str, str, str]] = []
    strings: list[str] = []
    issues: list[Issue] = []
    for k, m in enumerate(starts):
        kind = m.group(1).lower()
        limit = starts[k + 1].start() if k + 1 < len(starts) else len(text)
        opener = m.group(2)
        depth_brace, end = 0, None
        if opener == "{":
            for pos in range(m.end() - 1, limit):
                c = text[pos]
                if c == "{":
                    depth_brace += 1
                elif c == "}":
                    depth_brace -= 1
                    if depth_brace == 0:
                        end = pos
                        break
        else:
            for pos in range(m.end(), limit):
                c = text[pos]
                if c == "{":
                    depth_brace += 1
                elif c == "}":
                    depth_brace -= 1
                elif c == ")" and depth_brace == 0:
                    end = pos
                    break
        line = lines(m.start())
        if kind in _BIB_SKIP:
            continue
        km = _BIB_KEY.match(text, m.end())
        key = km.group(1) if km and kind != "string" else ""
        if end is None:
            issues.append(Issue(path, line, "malformed", f"@{kind} entry is not closed (unbalanced "
                                f"braces) before line {lines(limit)}; entry skipped", key))
            continue
        body = text[m.start():end + 1]
        if kind == "string":
            strings.append(body)
        elif not key:
            issues.append(Issue(path, line, "malformed", f"@{kind} entry has no citation key; entry skipped"))
        else:
            chunks.append((line, kind, key, body))
    return chunks, strings, issues


def _bib_parse(text: str) -> list[dict[str, Any]]:
    import bibtexparser
    from bibtexparser.bparser import BibTexParser
    from bibtexparser.customization import convert_to_unicode

    parser = BibTexParser(common_strings=True, ignore_nonstandard_types=False, interpolate_strings=True)
    parser.customization = convert_to_unicode
    return list(bibtexparser.loads(text, parser=parser).entries)


def _bib_record(path: str, line: int, e: dict[str, Any]) -> Record:
    f = {k.lower(): v for k, v in e.items()}
    if "author_keywords" in f:  # Scopus' BibTeX: author keywords apart, `keywords` are the index terms
        author_kw, index_kw = split_keywords(f.get("author_keywords")), split_keywords(f.get("keywords"))
    else:  # WoS' BibTeX: `keywords` are the author's, `keywords-plus` the index terms
        author_kw = split_keywords(f.get("keywords"))
        index_kw = split_keywords(f.get("keywords-plus") or f.get("keywords_plus"))
    authors = tuple(clean_text(a) for a in re.split(r"\s+and\s+", f.get("author", "")) if clean_text(a))
    return Record(title=clean_text(f.get("title")), abstract=clean_text(f.get("abstract")),
                  year=parse_year(f.get("year") or f.get("date")),
                  doi=normalise_doi(f.get("doi") or f.get("url")), authors=authors,
                  venue=clean_text(f.get("journal") or f.get("booktitle") or f.get("publisher")),
                  author_keywords=author_kw, index_keywords=index_kw, path=path, line=line,
                  entry=str(e.get("ID", "")), format="bibtex")


@READERS.register("bibtex", extensions=(".bib", ".bibtex"), help="BibTeX (.bib), e.g. from Scopus, WoS, Zotero")
def read_bibtex(path: str, text: str) -> tuple[list[Record], list[Issue]]:
    """BibTeX through bibtexparser (v1 API). Entries are first cut out by balanced braces, which
    gives each its line; the whole file is parsed in one go and only when that loses entries is
    each entry parsed on its own, so one broken entry costs only itself."""
    chunks, strings, issues = _bib_chunks(path, text)
    prefix = "\n".join(strings) + "\n"
    try:
        parsed = _bib_parse(prefix + "\n".join(c[3] for c in chunks))
    except Exception:  # noqa: BLE001 - the slow path below reports the entry at fault
        parsed = []
    if [e.get("ID") for e in parsed] != [c[2] for c in chunks]:
        parsed = []
        for line, kind, key, body in chunks:
            try:
                one = _bib_parse(prefix + body)
            except Exception as ex:  # noqa: BLE001 - a parser error is this entry's problem
                one, why = [], f"{type(ex).__name__}: {str(ex).splitlines()[0] if str(ex) else ''}"
            else:
                why = "bibtexparser could not read it"
            if len(one) == 1:
                parsed.append(one[0])
            else:
                issues.append(Issue(path, line, "malformed", f"@{kind} entry could not be parsed ({why}); "
                                    "entry skipped", key))
                parsed.append({})
    records = [_bib_record(path, c[0], e) for c, e in zip(chunks, parsed, strict=True) if e]
    return records, issues


# -- RIS -------------------------------------------------------------------------------------

_RIS_TAG = re.compile(r"^([A-Z][A-Z0-9])  - ?(.*)$")
_RIS_BADTAG = re.compile(r"^([A-Z][A-Z0-9])\s*-(\s|$)")


def _ris_record(path: str, line: int, d: dict[str, Any]) -> Record:
    authors = [*(d.get("authors") or []), *(d.get("first_authors") or [])]
    return Record(title=clean_text(d.get("title") or d.get("primary_title") or d.get("translated_title")),
                  abstract=clean_text(d.get("abstract") or d.get("notes_abstract")),
                  year=parse_year(d.get("year") or d.get("publication_year") or d.get("date")),
                  doi=normalise_doi(d.get("doi")), authors=tuple(clean_text(a) for a in authors),
                  venue=clean_text(d.get("secondary_title") or d.get("journal_name") or d.get("alternate_title3")
                                   or d.get("alternate_title1")),
                  author_keywords=split_keywords(d.get("keywords") or []), path=path, line=line,
                  entry=clean_text(d.get("id") or ""), format="ris")


@READERS.register("ris", extensions=(".ris",), help="RIS (.ris), e.g. from Scopus, PubMed, Zotero, EndNote")
def read_ris(path: str, text: str) -> tuple[list[Record], list[Issue]]:
    """RIS through rispy, one record at a time: records are cut at ``TY  -`` and ``ER  -`` here
    (so each has its line), tag lines with a wrong layout are reported and left out, and a record
    that rispy cannot read is reported and skipped."""
    import rispy

    issues: list[Issue] = []
    records: list[Record] = []
    current: list[str] | None = None
    start = 0

    def close(end_line: int | None) -> None:
        assert current is not None
        if end_line is None:
            issues.append(Issue(path, start, "unterminated", "record has no closing 'ER  -' line; read as it is"))
        try:
            got = rispy.loads("\n".join([*current, "ER  - "]) + "\n")
        except Exception as ex:  # noqa: BLE001 - rispy fails on some broken records; report and go on
            issues.append(Issue(path, start, "malformed", f"record could not be parsed ({type(ex).__name__}: "
                                f"{ex}); record skipped"))
            return
        if len(got) != 1:
            issues.append(Issue(path, start, "malformed", "record could not be parsed; record skipped"))
            return
        records.append(_ris_record(path, start, got[0]))

    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        m = _RIS_TAG.match(line)
        tag = m.group(1) if m else None
        if tag is None and line.strip() and _RIS_BADTAG.match(line):
            issues.append(Issue(path, n, "malformed", f"tag line {line[:40]!r} is not laid out as "
                                "'XX  - value' (two spaces, hyphen, space); line left out"))
            continue
        if tag == "TY":
            if current is not None:
                close(None)
            current, start = [line], n
        elif tag == "ER":
            if current is None:
                issues.append(Issue(path, n, "malformed", "'ER  -' without a record opened by 'TY  -'"))
            else:
                close(n)
            current = None
        elif current is not None:
            current.append(line)
        elif line.strip():
            issues.append(Issue(path, n, "malformed", "text outside a record (records start with 'TY  -'); "
                                "line left out"))
    if current is not None:
        close(None)
    return records, issues


# -- Scopus CSV ------------------------------------------------------------------------------

# column name (lower case) -> field; Scopus names first, then WoS/Lens/generic spellings
_CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "title": ("title", "article title", "document title", "ti"),
    "abstract": ("abstract", "ab"),
    "year": ("year", "publication year", "py", "publication_year"),
    "doi": ("doi", "di"),
    "authors": ("authors", "author full names", "author", "au"),
    "venue": ("source title", "source", "journal", "so"),
    "author_keywords": ("author keywords", "keywords", "de"),
    "index_keywords": ("index keywords", "keywords plus", "id"),
}


@READERS.register("scopus_csv", extensions=(".csv",),
                  help="Scopus CSV export (Title, Abstract, Year, DOI, Author Keywords, Index Keywords)")
def read_scopus_csv(path: str, text: str) -> tuple[list[Record], list[Issue]]:
    """A Scopus CSV export (or any CSV with a Title column). A row with the wrong number of cells
    or broken quoting is reported with its line and skipped."""
    issues: list[Issue] = []
    records: list[Record] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        return [], [Issue(path, 1, "unreadable", "no CSV header row; file skipped")]
    lower = [h.strip().lower() for h in header]
    cols: dict[str, int] = {}
    for fld, names in _CSV_COLUMNS.items():
        for name in names:
            if name in lower:
                cols[fld] = lower.index(name)
                break
    if "title" not in cols and "abstract" not in cols:
        return [], [Issue(path, 1, "unreadable", f"CSV has no Title or Abstract column (columns: {header[:8]}); "
                          "expected a Scopus export; file skipped")]
    last = reader.line_num
    while True:
        start = last + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as ex:
            issues.append(Issue(path, start, "malformed", f"CSV row could not be read ({ex}); row skipped"))
            last = reader.line_num
            continue
        last = reader.line_num
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            issues.append(Issue(path, start, "malformed", f"row has {len(row)} cells, the header {len(header)}; "
                                "row skipped"))
            continue

        def get(fld: str, row: list[str] = row) -> str:
            return row[cols[fld]] if fld in cols else ""

        authors = split_keywords(get("authors"))
        records.append(Record(title=clean_text(get("title")), abstract=_no_abstract_marker(get("abstract")),
                              year=parse_year(get("year")), doi=normalise_doi(get("doi")), authors=authors,
                              venue=clean_text(get("venue")), author_keywords=split_keywords(get("author_keywords")),
                              index_keywords=split_keywords(get("index_keywords")), path=path, line=start,
                              format="scopus_csv"))
    return records, issues


def _no_abstract_marker(s: str) -> str:
    """Scopus writes ``[No abstract available]`` where a record has none."""
    s = clean_text(s)
    return "" if s.lower().strip("[]") == "no abstract available" else s


# -- Web of Science plain text ---------------------------------------------------------------

_WOS_LINE = re.compile(r"^([A-Z][A-Z0-9]) (.*)$")
_WOS_CONT = re.compile(r"^   (.*)$")
_WOS_HEAD = {"FN", "VR", "EF"}
# tags whose continuation lines are separate values (one author or reference a line)
_WOS_LISTS = {"AU", "AF", "CR", "C1"}


def _wos_record(path: str, line: int, tags: dict[str, list[str]]) -> Record:
    def one(tag: str) -> str:
        return clean_text(" ".join(tags.get(tag, [])))

    return Record(title=one("TI"), abstract=one("AB"), year=parse_year(one("PY") or one("EA")),
                  doi=normalise_doi(one("DI")), authors=tuple(clean_text(a) for a in tags.get("AU", [])),
                  venue=one("SO"), author_keywords=split_keywords(one("DE")),
                  index_keywords=split_keywords(one("ID")), path=path, line=line, entry=one("UT"), format="wos")


@READERS.register("wos", extensions=(), help="Web of Science plain text ('PT J' ... 'ER' records)")
def read_wos(path: str, text: str) -> tuple[list[Record], list[Issue]]:
    """Web of Science 'Plain text file' export: two-letter tags, continuation lines indented by
    three spaces, each record closed by ``ER``. A line that is neither is reported and left out."""
    issues: list[Issue] = []
    records: list[Record] = []
    tags: dict[str, list[str]] | None = None
    last_tag = ""
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        m = _WOS_LINE.match(line)
        if m is None and line.rstrip() in ("ER", "EF"):
            m = _WOS_LINE.match(line.rstrip() + " ")
        c = _WOS_CONT.match(line)
        if m:
            tag, value = m.group(1), m.group(2).strip()
            if tag in _WOS_HEAD:
                if tags is not None and tag == "EF":
                    issues.append(Issue(path, start, "unterminated", "record has no closing 'ER' line; read as it is"))
                    records.append(_wos_record(path, start, tags))
                    tags = None
                continue
            if tag == "PT":
                if tags is not None:
                    issues.append(Issue(path, start, "unterminated", "record has no closing 'ER' line; read as it is"))
                    records.append(_wos_record(path, start, tags))
                tags, start, last_tag = {"PT": [value]}, n, "PT"
                continue
            if tags is None:
                issues.append(Issue(path, n, "malformed", f"tag {tag!r} outside a record (records start with 'PT'); "
                                    "line left out"))
                continue
            if tag == "ER":
                records.append(_wos_record(path, start, tags))
                tags = None
                continue
            tags.setdefault(tag, []).append(value)
            last_tag = tag
        elif c and tags is not None and last_tag:
            value = c.group(1).strip()
            if last_tag in _WOS_LISTS:
                tags[last_tag].append(value)
            else:
                tags[last_tag][-1] += " " + value
        else:
            issues.append(Issue(path, n, "malformed", f"line {line[:40]!r} is neither 'XX value' nor a continuation "
                                "indented by three spaces; line left out"))
    if tags is not None:
        issues.append(Issue(path, start, "unterminated", "record has no closing 'ER' line; read as it is"))
        records.append(_wos_record(path, start, tags))
    return records, issues


# -- OpenAlex JSON ---------------------------------------------------------------------------

def abstract_from_inverted_index(index: Any) -> str:
    """OpenAlex's ``abstract_inverted_index`` (word -> positions) back to plain text."""
    if not isinstance(index, dict):
        return ""
    slots: dict[int, str] = {}
    for word, positions in index.items():
        for p in positions if isinstance(positions, list) else []:
            if isinstance(p, int):
                slots[p] = str(word)
    return clean_text(" ".join(slots[k] for k in sorted(slots)))


def _openalex_record(path: str, line: int | None, entry: str, w: dict[str, Any]) -> Record:
    abstract = w.get("abstract") if isinstance(w.get("abstract"), str) else ""
    abstract = abstract or abstract_from_inverted_index(w.get("abstract_inverted_index"))
    kws = [k.get("display_name") if isinstance(k, dict) else k for k in w.get("keywords") or []]
    if not kws:  # older snapshots: concepts below the top level, with a reasonable score
        kws = [c.get("display_name") for c in w.get("concepts") or []
               if isinstance(c, dict) and (c.get("level") or 0) >= 1 and (c.get("score") or 0) >= 0.3]
    authors = [((a.get("author") or {}).get("display_name") if isinstance(a, dict) else None)
               for a in w.get("authorships") or []]
    loc = w.get("primary_location") or {}
    src = (loc.get("source") or {}) if isinstance(loc, dict) else {}
    wid = str(w.get("id") or "").rsplit("/", 1)[-1]
    return Record(title=clean_text(w.get("title") or w.get("display_name")), abstract=clean_text(abstract),
                  year=parse_year(w.get("publication_year") or w.get("publication_date")),
                  doi=normalise_doi(w.get("doi")), authors=tuple(clean_text(a) for a in authors if a),
                  venue=clean_text(src.get("display_name") if isinstance(src, dict) else ""),
                  index_keywords=tuple(clean_text(k) for k in kws if k), path=path, line=line,
                  entry=" ".join(x for x in (entry, wid) if x), format="openalex")


@READERS.register("openalex", extensions=(".json", ".jsonl"),
                  help="OpenAlex works as JSON (a list, or {'results': [...]}) or JSON lines")
def read_openalex(path: str, text: str) -> tuple[list[Record], list[Issue]]:
    """OpenAlex works: a JSON list, an API page ``{"results": [...]}`` or JSON lines (one work a
    line). An item that is not a work (not a mapping) is reported by its position and skipped."""
    issues: list[Issue] = []
    records: list[Record] = []
    items: list[tuple[int | None, str, Any]] = []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as ex:
        lines = [s for s in text.splitlines() if s.strip()]
        if len(lines) > 1 and lines[0].lstrip().startswith("{"):  # JSON lines
            for n, s in enumerate(text.splitlines(), 1):
                if not s.strip():
                    continue
                try:
                    items.append((n, "", json.loads(s)))
                except json.JSONDecodeError as e2:
                    issues.append(Issue(path, n, "malformed", f"not valid JSON ({e2.msg}); line skipped"))
        else:
            return [], [Issue(path, ex.lineno, "unreadable", f"not valid JSON ({ex.msg}, column {ex.colno}); "
                              "file skipped")]
    else:
        if isinstance(data, dict) and isinstance(data.get("results"), list):
            data = data["results"]
        elif isinstance(data, dict) and ("title" in data or "display_name" in data):
            data = [data]
        if not isinstance(data, list):
            return [], [Issue(path, 1, "unreadable", "JSON is neither a list of works nor {'results': [...]}; "
                              "file skipped")]
        items = [(None, f"#{i + 1}", w) for i, w in enumerate(data)]
    for line, entry, w in items:
        if not isinstance(w, dict):
            issues.append(Issue(path, line, "malformed", f"item is a {type(w).__name__}, not a work; skipped", entry))
            continue
        records.append(_openalex_record(path, line, entry, w))
    return records, issues


# -- detection, corpus -----------------------------------------------------------------------

def detect_format(path: str | Path, text: str) -> str:
    """The format of a file: from its extension, else from its first non-blank lines."""
    suffix = Path(path).suffix.lower()
    for name in READERS.names():
        if suffix in READERS.meta(name).get("extensions", ()):
            return name
    head = "\n".join(s for s in text.lstrip("\ufeff").splitlines()[:40] if s.strip())
    first_line = head.lstrip().splitlines()[0] if head.strip() else ""
    if re.search(r"^(FN |VR |PT [A-Z])", head, re.M):
        return "wos"
    if re.search(r"^TY  - ", head, re.M):
        return "ris"
    if first_line[:1] in ("[", "{"):
        return "openalex"
    if _BIB_START.search(head):
        return "bibtex"
    if "," in first_line:
        return "scopus_csv"
    raise DataError("cannot tell the format of this file from its extension or first lines", path=path,
                    expected=f"one of {READERS.names()} (give the format explicitly)")


def read_text(path: str | Path) -> tuple[str, list[Issue]]:
    """The file's text: UTF-8 (a BOM dropped), else Latin-1 with an ``encoding`` issue."""
    p = Path(path)
    if not p.is_file():
        raise DataError("no such file", path=p, expected="a bibliographic export (.bib, .ris, .csv, .txt, .json)")
    raw = p.read_bytes()
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as ex:
        return raw.decode("latin-1"), [Issue(str(path), None, "encoding", f"not UTF-8 (byte {ex.start}); read as "
                                             "Latin-1")]


def read_file(path: str | Path, fmt: str | None = None) -> tuple[list[Record], list[Issue], str]:
    """One file's records and issues, and the format it was read as."""
    text, issues = read_text(path)
    name = fmt or detect_format(path, text)
    reader = READERS.get(name)
    recs, more = reader(str(path), text)
    log.info("read %d records from %s (%s, %d issues)", len(recs), path, name, len(more))
    return recs, issues + more, name


@dataclass
class Corpus:
    """What :func:`read_corpus` returns: the merged records, every issue, what was merged."""

    records: list[Record]
    issues: list[Issue]
    #: ``(kept, merged, by)`` for each duplicate merged away; ``by`` is ``doi`` or ``title+year``
    merges: list[tuple[str, str, str]] = field(default_factory=list)
    #: per file: ``{"path", "format", "records", "issues"}``
    files: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_read(self) -> int:
        return sum(f["records"] for f in self.files)


def title_key(title: str) -> str:
    """A title for matching: lower case, accents and punctuation dropped, spaces collapsed."""
    t = unicodedata.normalize("NFKD", title.lower())
    t = "".join(c for c in t if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^a-z0-9]+", " ", t).split())


def _merge(a: Record, b: Record) -> Record:
    """``a`` with what only ``b`` has filled in, keywords united (``a``'s order first)."""
    def union(x: tuple[str, ...], y: tuple[str, ...]) -> tuple[str, ...]:
        seen = {s.lower() for s in x}
        return x + tuple(s for s in y if s.lower() not in seen)

    return replace(a, title=a.title or b.title,
                   abstract=a.abstract if len(a.abstract) >= len(b.abstract) else b.abstract,
                   year=a.year or b.year, doi=a.doi or b.doi, authors=a.authors or b.authors,
                   venue=a.venue or b.venue, author_keywords=union(a.author_keywords, b.author_keywords),
                   index_keywords=union(a.index_keywords, b.index_keywords), merged=(*a.merged, b.where, *b.merged))


def deduplicate(records: Sequence[Record]) -> tuple[list[Record], list[tuple[str, str, str]]]:
    """Merge records with the same DOI, else the same normalised title and year (two records
    with different DOIs are never merged on their titles). The first record of each group is
    kept, in input order; returns the records and ``(kept, merged, by)`` for each merge."""
    out: list[Record] = []
    by_doi: dict[str, int] = {}
    by_title: dict[tuple[str, int | None], int] = {}
    merges: list[tuple[str, str, str]] = []
    for r in records:
        tkey = (title_key(r.title), r.year) if title_key(r.title) else None
        idx, by = None, ""
        if r.doi and r.doi in by_doi:
            idx, by = by_doi[r.doi], "doi"
        elif tkey is not None and tkey in by_title:
            j = by_title[tkey]
            if not (r.doi and out[j].doi and r.doi != out[j].doi):
                idx, by = j, "title+year"
        if idx is None:
            out.append(r)
            idx = len(out) - 1
        else:
            merges.append((out[idx].where, r.where, by))
            out[idx] = _merge(out[idx], r)
        if out[idx].doi:
            by_doi.setdefault(out[idx].doi, idx)
        if tkey is not None:
            by_title.setdefault(tkey, idx)
    return out, merges


def read_corpus(paths: Sequence[str | Path], fmt: str | None = None) -> Corpus:
    """Read every file (format detected per file unless ``fmt`` is given), report records
    without a title or abstract, skip (and report) records with no text at all, merge duplicates.

    A file that cannot be found is a DataError; a file that is there but unreadable as any
    format is an ``unreadable`` issue, so one bad export never stops the others. Raises a
    DataError when no file gave a single record.
    """
    if fmt is not None and fmt not in READERS:
        raise ConfigError(f"unknown literature format {fmt!r}; expected one of {READERS.names()}")
    if not paths:
        raise ConfigError("no bibliography files given")
    records: list[Record] = []
    issues: list[Issue] = []
    files: list[dict[str, Any]] = []
    for p in paths:
        try:
            recs, iss, name = read_file(p, fmt)
        except DataError as ex:
            if not Path(p).is_file():
                raise
            recs, iss, name = [], [Issue(str(p), None, "unreadable", f"{ex}; file skipped")], "?"
        kept = []
        for r in recs:
            if not (r.title or r.abstract or r.author_keywords or r.index_keywords):
                iss.append(Issue(r.path, r.line, "empty", "record has no title, abstract or keywords; skipped",
                                 r.entry))
                continue
            if not r.title:
                iss.append(Issue(r.path, r.line, "no_title", "record has no title", r.entry))
            if not r.abstract:
                iss.append(Issue(r.path, r.line, "no_abstract", "record has no abstract", r.entry))
            kept.append(r)
        files.append({"path": str(p), "format": name, "records": len(kept),
                      "issues": sum(i.kind not in ("no_title", "no_abstract") for i in iss)})
        records += kept
        issues += iss
    if not records:
        problems = "; ".join(f"{i.where}: {i.message}" for i in issues[:3])
        raise DataError(f"no bibliographic record could be read{': ' + problems if problems else ''}",
                        path=", ".join(str(p) for p in paths))
    merged, merges = deduplicate(records)
    if merges:
        log.info("merged %d duplicate records", len(merges))
    return Corpus(merged, issues, merges, files)
