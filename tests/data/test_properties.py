"""Property-based tests of what loaders build from untrusted cells: sheet parsing, AU strings,
label schemes, label screening and sample ids.

The rule checked throughout: any input gives a parsed value or a clear DataError/ConfigError
(a problem row for one sample), never another exception and never a silent change.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")

import yaml  # noqa: E402
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mekit.data._sheets import CellError, Sheet, frame_number, read_interval, unsafe_name  # noqa: E402
from mekit.data.labels import (  # noqa: E402
    CANONICAL,
    KNOWN_NAMES,
    apply_scheme,
    load_scheme_yaml,
    screen_labels,
)
from mekit.data.schema import LoadReport, SampleTable, parse_action_units  # noqa: E402
from mekit.errors import ConfigError, DataError  # noqa: E402

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: What a spreadsheet cell can hold once pandas/openpyxl have read it.
cells = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["/", "-", "nan", " 46 ", "46.0", "1e3", "4.5", "−3", "٣", "None", "n/a", "0x10"]),
)


# -- cells ------------------------------------------------------------------------------------
@FAST
@given(cells)
def test_frame_number_is_a_whole_number_none_or_a_cell_error(value):
    try:
        n = frame_number(value)
    except CellError as e:
        assert str(e).startswith("expected a frame number")
        return
    assert n is None or (type(n) is int and n >= 0)


def _sheet(rows: list[dict]) -> Sheet:
    df = pd.DataFrame(rows, columns=["onset", "apex", "offset"], dtype=object)
    df.index = range(2, 2 + len(df))
    return Sheet(Path("coding.csv"), None, 1, df, {"onset": "Onset", "apex": "Apex", "offset": "Offset"})


@FAST
@given(st.lists(st.fixed_dictionaries({"onset": cells, "apex": cells, "offset": cells}), min_size=1, max_size=5))
def test_any_frame_cells_give_an_interval_or_a_problem_row(rows):
    sheet = _sheet(rows)
    for row, cells_ in sheet.rows.iterrows():
        report = LoadReport()
        iv = read_interval(sheet, row, cells_, f"s{row}", report, {})
        if iv is None:
            assert len(report.problems) == 1
            assert f"row {row}" in report.problems[0].reason and "excluded" in report.problems[0].reason
            continue
        assert iv.onset >= 0
        if iv.offset is not None:
            assert iv.offset >= iv.onset
        if iv.apex is not None:
            assert iv.onset <= iv.apex and (iv.offset is None or iv.apex <= iv.offset)
        # a value that was set aside is always said
        kept_all = all(getattr(iv, k) == frame_number(cells_[k]) for k in ("apex", "offset"))
        assert kept_all or report.problems


_SAFE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10)


@SLOW
@given(st.lists(st.tuples(cells, _SAFE, cells, cells, cells, _SAFE, cells), min_size=1, max_size=6))
def test_any_csv_sheet_loads_or_fails_with_one_data_error(rows):
    """Whatever the cells, the CASME II loader gives a table where every sheet row is a sample or a
    problem row, or one DataError/ConfigError; never another exception."""
    import re

    from mekit.data._sheets import read_sheet
    from mekit.data.casme2 import COLUMNS, load_casme2

    header = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion"]
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "coding.csv"
        pd.DataFrame([header] + [list(r) for r in rows]).to_csv(p, index=False, header=False)
        try:
            t = load_casme2(sheet=p, check_frames=False)
            sheet_rows = list(read_sheet(p, COLUMNS).rows.index)
        except (DataError, ConfigError) as e:
            assert "\n" not in str(e).strip()
            return
    assert len(t) == len(set(t.sample_ids))
    assert all(s.startswith("casme2/sub") for s in t.sample_ids)
    said = list(t.report.sources.values()) + [p_.reason for p_ in t.report.problems]
    for r in sheet_rows:  # every data row is a sample or a problem row, nothing is dropped silently
        assert any(re.search(rf"\brow {r}\b", x) for x in said), f"row {r} vanished"
    for sid in t.sample_ids:
        assert t.report.where(sid), f"{sid} has no recorded sheet row"


# -- action units ---------------------------------------------------------------------------
@FAST
@given(st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.none()))
def test_au_parsing_never_raises_and_round_trips(value):
    tokens = parse_action_units(value)
    assert all(isinstance(t, str) and t for t in tokens)
    assert parse_action_units("+".join(tokens)) == tokens


au_token = st.builds(lambda side, num, inten: (side, num, inten),
                     st.sampled_from(["", "L", "R", "B", "U", "T"]), st.integers(0, 99),
                     st.sampled_from(["", "A", "B", "C", "D", "E"]))


@FAST
@given(st.lists(au_token, min_size=1, max_size=5), st.sampled_from([" + ", "+", ", ", ";", " & "]),
       st.booleans(), st.booleans())
def test_au_spellings_parse_to_canonical_tokens(aus, sep, prefix, lower):
    def spell(side: str, num: int, inten: str) -> str:
        s = f"{side}{'AU' if prefix else ''}{num:02d}{inten}"
        return s.lower() if lower else s

    text = sep.join(spell(*a) for a in aus)
    assert parse_action_units(text) == [f"{s}{n}{i}" for s, n, i in aus]


# -- label schemes ----------------------------------------------------------------------------
yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=6),
                         st.sampled_from(["happy", "sad", "pos", "neg", "surprise", "others"]))
yaml_values = st.recursive(yaml_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(yaml_scalars, inner, max_size=3)), max_leaves=8)


@FAST
@given(st.dictionaries(st.sampled_from(["name", "classes", "mapping", "per_dataset", "description", "extra"]),
                       yaml_values, max_size=5))
@pytest.mark.slow
def test_any_scheme_file_loads_consistently_or_is_one_config_error(doc):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "s.yaml"
        p.write_text(yaml.safe_dump(doc))
        try:
            s = load_scheme_yaml(p)
        except ConfigError as e:
            assert str(p) in str(e) and "\n" not in str(e)
            return
    assert len(s.classes) >= 2 and len(set(s.classes)) == len(s.classes)
    assert all(isinstance(c, str) and c and c != "None" for c in s.classes)
    targets = set(s.mapping.values()) | {c for m in s.per_dataset.values() for c in m.values()}
    assert targets <= set(s.classes) and set(s.classes) <= targets


def _table(labels: list[str | None], dataset: str = "image_folder") -> SampleTable:
    recs = [{"sample_id": f"{dataset}/x/{i}", "dataset": dataset, "subject": f"{dataset}/s{i % 3}", "clip": str(i),
             "media": "image", "path": f"/data/{i}.png", "emotion": lab, "label": None if lab is None else
             CANONICAL.get(lab.strip().lower(), lab.strip().lower())} for i, lab in enumerate(labels)]
    return SampleTable.from_records(recs, name=dataset)


emotion_names = st.one_of(st.sampled_from(sorted(CANONICAL) + ["Happiness", "SAD ", "banana", "pain", "x"]),
                          st.text(st.characters(whitelist_categories=("Ll", "Lu")), min_size=1, max_size=6))


@FAST
@given(st.lists(st.one_of(st.none(), emotion_names), min_size=1, max_size=12),
       st.sampled_from(["casme2_5class", "casme2_4class", "megc_3class", "basic7", None]))
@pytest.mark.slow
def test_labels_are_scheme_classes_or_known_and_every_drop_is_accounted(labels, scheme):
    t = _table(labels)
    out = apply_scheme(t, scheme) if scheme else screen_labels(t)
    present = out.df["label"].dropna().tolist()
    dropped = len(t) - len(out)
    if scheme:
        assert set(present) <= set(out.scheme.classes)
        assert sum(out.report.dropped.values()) == dropped
    else:
        unknown = {lab for lab in present if lab not in KNOWN_NAMES}
        # unknown labels survive only when no label at all is a known name (the dataset's own classes)
        assert not unknown or not any(lab in KNOWN_NAMES for lab in present)
        assert len([p for p in out.report.problems if "sample dropped" in p.reason]) == dropped
    assert set(out.sample_ids) <= set(t.sample_ids) and len(set(out.sample_ids)) == len(out)


# -- sample ids -------------------------------------------------------------------------------
name_part = st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters="_-. "),
                    min_size=1, max_size=8).filter(lambda s: s.strip(". ") == s and s not in (".", ".."))


@FAST
@given(st.lists(st.tuples(st.sampled_from(["happy", "sad", "train/happy", "test/sad"]), name_part,
                          st.sampled_from([".jpg", ".png", ".JPG", ".bmp"])), min_size=1, max_size=15, unique=True),
       st.randoms())
def test_image_folder_sample_ids_are_unique_and_do_not_depend_on_order(files, rnd):
    from mekit.data.image_folder import _sample_ids

    root = Path("/data/ds")
    images = sorted({root / folder / f"{stem}{ext}" for folder, stem, ext in files})
    ids = _sample_ids(images, root, "ds")
    assert len(set(ids.values())) == len(images)
    shuffled = list(images)
    rnd.shuffle(shuffled)
    assert _sample_ids(shuffled, root, "ds") == ids
    assert all(v.startswith("ds/") and "\\" not in v for v in ids.values())


@FAST
@given(st.text(max_size=20))
def test_clip_names_that_are_paths_are_refused(name):
    bad = unsafe_name(name, "clip")
    if "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
        assert bad is not None and repr(name) in bad
    if bad is None:
        # then it is one folder name: joined under a subject folder it stays there
        base = Path("/frames/sub01")
        assert (base / name).parent == base or name == ""


@FAST
@given(st.one_of(st.booleans(), st.integers(-2, 3), st.text(max_size=6), st.none(), st.floats(),
                 st.sampled_from(["yes", "No", "TRUE", "off", "maybe", "1", "0"])))
def test_boolean_options_are_real_booleans_or_a_config_error(value):
    from mekit.data import check_options

    try:
        out = check_options("casme2", {"check_frames": value})
    except ConfigError as e:
        assert "check_frames" in str(e) and "expected true or false" in str(e)
        return
    assert type(out["check_frames"]) is bool
    assume(not isinstance(value, float) or not math.isnan(value))
