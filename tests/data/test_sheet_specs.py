"""Every sheet corpus is a :class:`SheetSpec` over the one shared loop, and that loop reports a broken
row in the same words for each corpus.

The tests sweep every registered loader rather than naming corpus modules one by one: a sheet
corpus that loses its spec or grows a loop of its own fails the first test, and a loop that words
a bad interval, an unnamed row or a missing folder differently for one corpus fails the second.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest
from _layouts import write_frames, write_sheet

from mekit.data import LOADERS
from mekit.data._sheets import SHEET_OPTIONS, SheetSpec

#: The loaders that read a coding sheet; each must be a spec over load_sheet_corpus.
SHEET_CORPORA = ("casme2", "samm", "smic", "casme3")


def _module(name: str):
    return importlib.import_module(LOADERS.get(name).split(":")[0])


def _spec(name: str) -> SheetSpec:
    return _module(name).SPEC


def test_every_registered_sheet_corpus_has_a_spec_and_uses_the_shared_loop(monkeypatch):
    specs = {name: getattr(_module(name), "SPEC", None) for name in LOADERS}
    assert sorted(n for n, s in specs.items() if isinstance(s, SheetSpec)) == sorted(SHEET_CORPORA)
    for name in SHEET_CORPORA:
        module, fn_name = LOADERS.get(name).split(":")
        mod = importlib.import_module(module)
        spec = specs[name]
        assert spec.dataset == name
        fn = getattr(mod, fn_name)
        params = inspect.signature(fn).parameters
        assert [p for p in params if p not in ("root", "options")] == list(SHEET_OPTIONS)
        calls = []
        monkeypatch.setattr(mod, "load_sheet_corpus", lambda s, root, **kw: calls.append((s, root, kw)))
        fn("/corpus", check_frames=False, extra_option=1)
        assert calls == [(spec, "/corpus", {"sheet": None, "frames_dir": None, "check_frames": False,
                                             "sheet_name": None, "extra_option": 1})], name


# One sheet per corpus, built from the spec's own columns; rows as a spreadsheet numbers them.
ROWS = [
    # (sheet row, subject, clip, onset, apex, offset)
    (2, 1, "A01", 10, 12, 14),      # good, frames present
    (3, 1, "A02", 10, 12, 14),      # good, no frame folder: report.missing
    (4, 1, "A03", "abc", 12, 14),   # text in the onset column: excluded
    (5, 1, "A04", 10, 12, 5),       # offset before onset: offset left empty, kept
    (6, None, "A05", 10, 12, 14),   # no subject: excluded, named by its sheet row
    (7, 1, "A06", 10, 12, 14),      # folder present without the onset frame: excluded
]
FRAMES = {"A01": range(10, 15), "A04": range(10, 15), "A06": range(11, 15)}


def _sheet(spec: SheetSpec, path: Path) -> tuple[Path, dict[str, str]]:
    """A CSV sheet with every column of ``spec`` under its first header name; returns it and the headers."""
    headers = {c.key: c.aliases[0] for c in spec.columns}
    clip_key = "clip" if "clip" in headers else "filename"
    rows = []
    for _, subject, clip, onset, apex, offset in ROWS:
        cells = {"subject": subject, clip_key: clip, "onset": onset, "apex": apex, "offset": offset,
                 "emotion": "happiness", "action_units": "4"}
        rows.append([cells.get(k) for k in headers])
    return write_sheet(path, list(headers.values()), rows), headers


def _row_named(reason: str) -> int | str:
    """The sheet row a problem starts by naming, or the whole reason where it names none."""
    m = re.match(r"coding\.csv row (\d+)\b", reason)
    return int(m[1]) if m else reason


@pytest.mark.parametrize("name", SHEET_CORPORA)
def test_the_shared_loop_reports_bad_rows_alike_for_every_corpus(tmp_path, name):
    spec = _spec(name)
    load = getattr(_module(name), LOADERS.get(name).split(":")[1])
    sheet, headers = _sheet(spec, tmp_path / "coding.csv")
    frames = tmp_path / "frames"
    frames.mkdir()

    # Sheet alone: the rows with a bad interval or no subject are the only problems.
    t = load(sheet=sheet, frames_dir=frames, check_frames=False)
    assert t.df["clip"].tolist() == ["A01", "A02", "A04", "A06"]
    assert [_row_named(p.reason) for p in t.report.problems] == [4, 5, 6]
    # Frames where the spec says they lie, by its own path and file-name template.
    for clip, numbers in FRAMES.items():
        r = t.df.loc[t.df["clip"] == clip].iloc[0]
        write_frames(Path(r["path"]), numbers, r["frame_template"])

    t = load(sheet=sheet, frames_dir=frames)
    assert t.df["clip"].tolist() == ["A01", "A04"]
    assert all(s.startswith(f"{name}/") for s in t.sample_ids)
    assert "row 2" in t.report.where(t.sample_ids[0])
    (missing,) = t.report.missing
    assert missing.startswith(f"{name}/") and "A02" in missing
    assert (f"{name}: 1 of 4 clips in coding.csv have no frame folder under {frames} (listed in report.missing); "
            "they were skipped") in t.report.notes

    by_row = {}
    for p in t.report.problems:
        rows = [r for r, *_ in ROWS if f"row {r}" in p.reason]
        assert len(rows) == 1, f"{name}: {p.reason!r} names no single sheet row"
        assert rows[0] not in by_row, f"{name}: row {rows[0]} reported twice"
        by_row[rows[0]] = p
    assert sorted(by_row) == [4, 5, 6, 7]
    assert by_row[4].sample.startswith(f"{name}/") and "A03" in by_row[4].sample
    assert by_row[4].reason == (f"coding.csv row 4, column {headers['onset']!r} holds 'abc'; "
                                "expected a frame number (a whole number); row excluded")
    assert by_row[5].reason == "coding.csv row 5: offset 5 is before onset 10; offset left empty, row kept"
    assert by_row[6].sample == f"{name}/coding.csv:row6"
    assert by_row[6].reason.startswith(f"coding.csv row 6, column {headers['subject']!r} is empty; expected ")
    assert by_row[6].reason.endswith("; row excluded")
    assert by_row[7].reason.startswith("onset frame 10 (sheet row 7) is not in ")
    assert by_row[7].reason.endswith("; clip excluded")
