"""Readers of bibliographic exports: every format, malformed entries reported by file and line,
records without title or abstract reported, duplicates merged."""

from __future__ import annotations

import json

import pytest

from mekit.analysis.litmap.readers import (READERS, abstract_from_inverted_index, deduplicate, detect_format,
                                           read_corpus, read_file)
from mekit.errors import ConfigError, DataError

BIB = r"""% a comment line
@string{tac = "IEEE Transactions on Affective Computing"}

@article{good1,
  title = {A {CASME} Study of Micro-Expressions},
  author = {M{\"u}ller, Jan and Doe, John},
  journal = tac,
  year = 2018,
  doi = {https://doi.org/10.1109/TAC.2018.1},
  author_keywords = {optical flow; apex frame},
  keywords = {Index Term; Another},
  abstract = {Something about flow.}
}

@article{broken,
  title = {Unbalanced {braces,
  year = {2019}

@inproceedings{good2,
  title = {Second Paper},
  booktitle = {FG},
  year = {2020},
  keywords = {LBP-TOP, spotting}
}
@article{nokey title = {x}, year = 2020}
@article{weird,
  title = {x} year = {2020} !!! ,
}
"""


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_bibtex_reads_good_entries_and_reports_broken_ones_by_line(tmp_path):
    p = _write(tmp_path, "refs.bib", BIB)
    recs, issues, fmt = read_file(p)
    assert fmt == "bibtex"
    assert [r.entry for r in recs] == ["good1", "good2"]
    a, b = recs
    assert (a.line, b.line) == (4, 19)
    assert a.title == "A CASME Study of Micro-Expressions"
    assert a.authors == ("Müller, Jan", "Doe, John")
    assert a.venue == "IEEE Transactions on Affective Computing"  # @string macro resolved
    assert a.doi == "10.1109/tac.2018.1" and a.year == 2018
    # Scopus layout: author_keywords apart, `keywords` are index keywords
    assert a.author_keywords == ("optical flow", "apex frame") and a.index_keywords == ("Index Term", "Another")
    assert b.author_keywords == ("LBP-TOP", "spotting") and b.index_keywords == ()
    by_line = {i.line: i for i in issues}
    assert set(by_line) == {15, 25, 26}
    assert all(i.kind == "malformed" and i.path == str(p) for i in issues)
    assert "not closed" in by_line[15].message and by_line[15].entry == "broken"
    assert "citation key" in by_line[25].message
    assert by_line[26].entry == "weird" and f"{p}:26" in by_line[26].where


RIS = """TY  - JOUR
TI  - Micro-expression recognition with
  optical flow
AB  - An abstract.
KW  - optical flow
KW  - apex frame; CNN
PY  - 2019///
DO  - 10.1000/ABC
T2  - Pattern Recognition
ER  - 

stray text outside a record
TY  - CONF
TI - wrong spacing here
TI  - Second record
PY  - 2021
ER  - 
TY  - JOUR
TI  - Unterminated at the end
PY  - 2022
"""


def test_ris_reports_bad_lines_and_unterminated_records(tmp_path):
    p = _write(tmp_path, "refs.ris", RIS)
    recs, issues, fmt = read_file(p)
    assert fmt == "ris"
    assert [r.title for r in recs] == ["Micro-expression recognition with optical flow", "Second record",
                                       "Unterminated at the end"]
    a = recs[0]
    assert (a.year, a.doi, a.venue, a.line) == (2019, "10.1000/abc", "Pattern Recognition", 1)
    assert a.author_keywords == ("optical flow", "apex frame", "CNN")
    assert [r.line for r in recs] == [1, 13, 18]
    got = {(i.line, i.kind) for i in issues}
    assert got == {(12, "malformed"), (14, "malformed"), (18, "unterminated")}


CSV = ('\ufeff"Authors","Title","Year","Source title","DOI","Abstract","Author Keywords","Index Keywords"\n'
       '"Li X.; Doe J.","Spotting micro-expressions","2018","IEEE TAC","10.1/x","We spot things.",'
       '"spotting; long videos","Face recognition; Video"\n'
       '"A B.","Too few cells","2019"\n'
       '"C D.","No abstract here","2020","J","","[No abstract available]","",""\n'
       '"E F.","Multi-line\ntitle","2021","J","","An abstract","kw",""\n')


def test_scopus_csv(tmp_path):
    p = _write(tmp_path, "scopus.csv", CSV)
    recs, issues, fmt = read_file(p)
    assert fmt == "scopus_csv"
    assert [r.title for r in recs] == ["Spotting micro-expressions", "No abstract here", "Multi-line title"]
    a = recs[0]
    assert a.author_keywords == ("spotting", "long videos") and a.index_keywords == ("Face recognition", "Video")
    assert a.authors == ("Li X.", "Doe J.") and a.doi == "10.1/x" and a.line == 2
    assert recs[1].abstract == ""  # Scopus' placeholder is no abstract
    assert [r.line for r in recs] == [2, 4, 5]
    (bad,) = issues
    assert bad.line == 3 and bad.kind == "malformed" and "3 cells" in bad.message


def test_csv_without_title_column_is_an_unreadable_issue_not_a_crash(tmp_path):
    p = _write(tmp_path, "other.csv", "a,b\n1,2\n")
    recs, issues, _ = read_file(p)
    assert recs == [] and issues[0].kind == "unreadable" and issues[0].line == 1


WOS = """FN Clarivate Analytics Web of Science
VR 1.0
PT J
AU Li, X
   Hong, X
TI Towards reading hidden emotions: a comparative study of spontaneous
   micro-expression spotting and recognition methods
SO IEEE TRANSACTIONS ON AFFECTIVE COMPUTING
DE Micro-expression; spotting; optical
   flow
ID FACIAL EXPRESSIONS; RECOGNITION
AB Micro-expressions are brief.
PY 2018
DI 10.1109/TAFFC.2017.2667642
UT WOS:000001
ER

PT J
TI Second record
this line is broken
PY 2020
ER

PT J
TI Not closed
PY 2021
EF
"""


def test_wos_plain_text(tmp_path):
    p = _write(tmp_path, "savedrecs.txt", WOS)
    recs, issues, fmt = read_file(p)
    assert fmt == "wos"
    a, b, c = recs
    assert a.title.startswith("Towards reading hidden emotions") and a.title.endswith("recognition methods")
    assert a.authors == ("Li, X", "Hong, X")
    assert a.author_keywords == ("Micro-expression", "spotting", "optical flow")
    assert a.index_keywords == ("FACIAL EXPRESSIONS", "RECOGNITION")
    assert (a.year, a.doi, a.entry, a.line) == (2018, "10.1109/taffc.2017.2667642", "WOS:000001", 3)
    assert (b.title, b.line, c.title, c.line) == ("Second record", 18, "Not closed", 24)
    assert {(i.line, i.kind) for i in issues} == {(20, "malformed"), (24, "unterminated")}


WORKS = [
    {"id": "https://openalex.org/W1", "title": "Deep learning for micro-expressions", "publication_year": 2022,
     "doi": "https://doi.org/10.1/DL", "abstract_inverted_index": {"Deep": [0], "networks": [1, 3], "and": [2]},
     "keywords": [{"display_name": "Deep learning"}, {"display_name": "Micro-expression"}],
     "authorships": [{"author": {"display_name": "Ann Author"}}],
     "primary_location": {"source": {"display_name": "Some Journal"}}},
    "not a work",
    {"display_name": "Only a display name", "publication_year": 2020,
     "concepts": [{"display_name": "Computer science", "level": 0, "score": 0.9},
                  {"display_name": "Optical flow", "level": 2, "score": 0.6}]},
]


def test_openalex_list_and_results_page(tmp_path):
    p = _write(tmp_path, "works.json", json.dumps(WORKS))
    recs, issues, fmt = read_file(p)
    assert fmt == "openalex"
    a, b = recs
    assert a.abstract == "Deep networks and networks"
    assert (a.doi, a.year, a.venue, a.authors) == ("10.1/dl", 2022, "Some Journal", ("Ann Author",))
    assert a.index_keywords == ("Deep learning", "Micro-expression") and a.entry == "#1 W1"
    assert b.title == "Only a display name" and b.index_keywords == ("Optical flow",)
    (bad,) = issues
    assert bad.entry == "#2" and bad.kind == "malformed"
    page = _write(tmp_path, "page.json", json.dumps({"meta": {}, "results": WORKS[:1]}))
    assert [r.title for r in read_file(page)[0]] == ["Deep learning for micro-expressions"]


def test_openalex_json_lines_and_broken_json(tmp_path):
    lines = _write(tmp_path, "works.jsonl", json.dumps(WORKS[0]) + "\n{broken\n" + json.dumps(WORKS[2]) + "\n")
    recs, issues, _ = read_file(lines)
    assert len(recs) == 2 and [(i.line, i.kind) for i in issues] == [(2, "malformed")]
    broken = _write(tmp_path, "broken.json", '[\n {"title": "x"},\n {"title": \n')
    recs, issues, _ = read_file(broken)
    assert recs == [] and issues[0].kind == "unreadable" and issues[0].line is not None


def test_inverted_index_order():
    assert abstract_from_inverted_index({"b": [1], "a": [0], "c": [2, 4], "d": [3]}) == "a b c d c"
    assert abstract_from_inverted_index(None) == ""


def test_detect_format_from_content(tmp_path):
    assert detect_format("x.txt", "FN Clarivate\nVR 1.0\nPT J\n") == "wos"
    assert detect_format("x.txt", "\n\nTY  - JOUR\nTI  - a\n") == "ris"
    assert detect_format("x.dat", "@article{a, title={b}}") == "bibtex"
    assert detect_format("x.dat", '[{"title": "a"}]') == "openalex"
    assert detect_format("refs.BIB", "") == "bibtex"
    with pytest.raises(DataError, match="cannot tell the format"):
        detect_format("x.dat", "just words")


@pytest.mark.parametrize("name", READERS.names())
def test_every_reader_survives_garbage(name):
    """A reader reports what it cannot read; it never raises on a bad file."""
    for text in ("", "\x00\x01 garbage }{ \n@@@\nTY  -\nPT\nER\n,,,\n", "{" * 50 + "\n" + "}" * 3):
        recs, issues = READERS.get(name)("garbage.x", text)
        assert isinstance(recs, list) and isinstance(issues, list)


def test_readers_registry_names():
    assert set(READERS.names()) == {"bibtex", "ris", "scopus_csv", "wos", "openalex"}


def test_read_corpus_reports_missing_title_and_abstract_and_skips_empty(tmp_path):
    p = _write(tmp_path, "refs.bib", "@article{a, title={Has title}, year={2020}}\n"
                                     "@article{b, abstract={Only an abstract}, year={2021}}\n"
                                     "@article{c, year={2021}}\n")
    corpus = read_corpus([p])
    assert [r.entry for r in corpus.records] == ["a", "b"]
    kinds = {(i.entry, i.kind) for i in corpus.issues}
    assert kinds == {("a", "no_abstract"), ("b", "no_title"), ("c", "empty")}
    assert all(i.path == str(p) and i.line is not None for i in corpus.issues)


def test_read_corpus_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_corpus([tmp_path / "missing.bib"])
    bad = _write(tmp_path, "bad.bib", "@article{x, title = {unclosed\n")
    with pytest.raises(DataError, match="no bibliographic record"):
        read_corpus([bad])
    with pytest.raises(ConfigError, match="unknown literature format"):
        read_corpus([bad], "endnote")


def test_latin1_file_is_read_with_an_encoding_issue(tmp_path):
    p = tmp_path / "latin.bib"
    p.write_bytes("@article{a, title={Caf\u00e9 faces}, year={2020}}\n".encode("latin-1"))
    corpus = read_corpus([p])
    assert corpus.records[0].title == "Café faces"
    assert "encoding" in {i.kind for i in corpus.issues}


def test_duplicates_merged_by_doi_then_title_and_year(tmp_path):
    bib = _write(tmp_path, "a.bib", "@article{a, title={Optical Flow for MER}, year={2019}, doi={10.5/XYZ},"
                                    " keywords={optical flow}}\n"
                                    "@article{b, title={Same Title, Other Paper}, year={2020}, doi={10.5/one}}\n"
                                    "@article{c, title={A Title Without DOI}, year={2018}}\n")
    ris = _write(tmp_path, "b.ris", "TY  - JOUR\nTI  - A different title wording\nPY  - 2019\nDO  - 10.5/xyz\n"
                                    "AB  - The abstract only this copy has.\nKW  - apex frame\nER  - \n"
                                    "TY  - JOUR\nTI  - Same title, other paper\nPY  - 2020\nDO  - 10.5/two\nER  - \n"
                                    "TY  - JOUR\nTI  - A title without DOI!\nPY  - 2018\nER  - \n"
                                    "TY  - JOUR\nTI  - A title without DOI\nPY  - 2017\nER  - \n")
    corpus = read_corpus([bib, ris])
    assert len(corpus.records) == 5 and len(corpus.merges) == 2
    by = {m[2] for m in corpus.merges}
    assert by == {"doi", "title+year"}
    a = corpus.records[0]
    assert a.abstract == "The abstract only this copy has."
    assert a.author_keywords == ("optical flow", "apex frame")
    assert a.merged == (f"{ris}:1",)
    # different DOIs are never merged on title; different years are different records
    assert sum(r.title.lower().startswith("same title") for r in corpus.records) == 2
    assert sum(r.title.lower().startswith("a title without doi") for r in corpus.records) == 2


def test_deduplicate_keeps_order_and_counts():
    from mekit.analysis.litmap.readers import Record

    recs = [Record(title="X", year=1, path="f", line=i) for i in range(4)]
    out, merges = deduplicate(recs)
    assert len(out) == 1 and len(merges) == 3 and out[0].line == 0 and len(out[0].merged) == 3


def test_a_file_of_unknown_format_is_an_issue_and_the_others_are_read(tmp_path):
    good = _write(tmp_path, "good.bib", "@article{a, title={Kept}, year={2020}}\n")
    junk = _write(tmp_path, "notes.dat", "just some words\n")
    corpus = read_corpus([junk, good])
    assert [r.title for r in corpus.records] == ["Kept"]
    (bad,) = [i for i in corpus.issues if i.kind == "unreadable"]
    assert bad.path == str(junk) and "cannot tell the format" in bad.message
    assert [f["format"] for f in corpus.files] == ["?", "bibtex"]
