"""Terms, network and outputs of a literature map on a corpus with a known structure: two
planted themes that share only one hub term, and terms that rise and fall over the years."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from mekit.analysis.litmap import OUTPUTS, LitmapSettings, litmap
from mekit.analysis.litmap.network import (COMMUNITIES, association_strength, build_network, cooccurrence,
                                           thematic_map, trend_slopes, year_counts)
from mekit.analysis.litmap.plots import place_labels
from mekit.analysis.litmap.readers import Record
from mekit.analysis.litmap.terms import Normaliser, extract_terms, ngram_phrases, read_synonyms, singular
from mekit.errors import ConfigError

THEME_A = ["optical flow", "apex frame", "optical strain", "motion magnification", "flow histogram"]
THEME_B = ["graph network", "action units", "facial landmarks", "attention module", "node embedding"]
HUB = "micro-expression"


def planted_records() -> list[Record]:
    """Twelve documents per theme, each with four of its theme's five terms and the hub; the
    theme A documents also carry 'handcrafted features' early and 'transformer' late."""
    recs = []
    for t, theme in enumerate((THEME_A, THEME_B)):
        for i in range(12):
            kws = [theme[j] for j in range(5) if j != i % 5] + [HUB]
            year = 2010 + i
            if t == 0:
                kws.append("handcrafted features" if i < 6 else "transformer")
            recs.append(Record(title=f"Paper {t}-{i}", year=year, author_keywords=tuple(kws), path="planted.bib",
                               line=1 + 10 * (12 * t + i), entry=f"p{t}_{i}"))
    return recs


def write_bib(path, recs) -> None:
    entries = []
    for r in recs:
        entries.append(f"@article{{{r.entry},\n  title = {{{r.title}}},\n  year = {{{r.year}}},\n"
                       f"  keywords = {{{'; '.join(r.author_keywords)}}}\n}}\n")
    path.write_text("\n".join(entries), encoding="utf-8")


SETTINGS = LitmapSettings(extractor="none", min_freq=2)


def planted_network():
    recs = planted_records()
    terms = extract_terms(recs, SETTINGS, Normaliser())
    net = build_network(terms.docs, terms.kept, terms.labels, seed=0)
    return recs, terms, net


# -- terms -----------------------------------------------------------------------------------

def test_singular_rules():
    assert [singular(w) for w in ("expressions", "studies", "analyses", "process", "processes", "series",
                                  "dynamics", "bias", "cnns", "boxes", "flow", "focus")] == \
        ["expression", "study", "analysis", "process", "process", "series", "dynamics", "bias", "cnn", "box",
         "flow", "focus"]


def test_normaliser_case_hyphens_plurals_synonyms_and_spelling(tmp_path):
    syn = tmp_path / "syn.txt"
    syn.write_text("# comment\noptical flow = optic flow = OF\nCNN = convolutional neural networks\n")
    n = Normaliser(synonyms=read_synonyms(syn))
    assert n.key("Micro-Expressions") == n.key("micro expression") == "micro expression"
    assert n.key("Optic Flows") == n.key("optical flow") == n.key("OF") == "optical flow"
    assert n.key("Convolutional Neural Networks") == n.key("cnn")
    assert n.canonical_label[n.key("cnn")] == "CNN"
    assert n.spelling("  LBP-TOP Features ") == "LBP-TOP features"
    assert Normaliser(hyphens="join").key("micro-expression") == "microexpression"
    assert Normaliser(hyphens="keep").key("micro-expression") == "micro-expression"
    assert Normaliser(lemmatize=False).key("networks") == "networks"


def test_synonym_file_errors_name_file_and_line(tmp_path):
    syn = tmp_path / "syn.txt"
    syn.write_text("a = b\n\nno equals sign here\n")
    with pytest.raises(ConfigError, match=r"syn\.txt:3"):
        read_synonyms(syn)
    with pytest.raises(ConfigError, match="does not exist"):
        read_synonyms(tmp_path / "missing.txt")


def test_stop_words_and_ngram_phrases(tmp_path):
    n = Normaliser()
    assert n.is_stop("the", extracted=False) and n.is_stop("2019", extracted=False)
    assert n.is_stop("flow and apex", extracted=True) and not n.is_stop("optical flow", extracted=True)
    phrases = ngram_phrases("We propose optical flow features, and a new apex frame spotter (2019).", 1, 2,
                            n.stopwords)
    assert "optical flow" in phrases and "apex frame" in phrases and "features and" not in phrases
    assert "flow features" in phrases and all("2019" not in p for p in phrases)
    stop = tmp_path / "stop.txt"
    stop.write_text("apex frame\nspotter, features\n")
    recs = [Record(title="Optical flow features and apex frame spotter", year=2020, path="x", line=1)] * 2
    terms = extract_terms(recs, LitmapSettings(extractor="ngram", min_freq=1, stopwords_file=str(stop)))
    assert "apex frame" not in terms.occurrences and "optical flow" in terms.occurrences
    assert not any("spotter" in k.split() for k in terms.occurrences)


def test_terms_count_documents_not_mentions_and_respect_min_freq():
    recs = [Record(title="t", author_keywords=("Optical flow", "optical flows", "optical-flow"), path="x"),
            Record(title="t", author_keywords=("optical flow", "rare term"), path="x")]
    terms = extract_terms(recs, LitmapSettings(extractor="none", min_freq=2))
    assert terms.occurrences["optical flow"] == 2 and terms.kept == ["optical flow"]
    assert terms.labels["optical flow"] == "optical flow"
    assert terms.sources["optical flow"] == {"author_keywords"}


def test_yake_keyphrases_from_titles_and_abstracts():
    pytest.importorskip("yake")
    recs = [Record(title="Optical flow for micro-expression recognition",
                   abstract="We compute optical flow between onset and apex frames.", path="x")] * 3
    terms = extract_terms(recs, LitmapSettings(extractor="yake", min_freq=2))
    assert terms.extractor == "yake" and "optical flow" in terms.kept
    # a lone word inside a longer keyphrase of the same document is dropped
    assert "optical" not in terms.occurrences


def test_settings_are_validated():
    with pytest.raises(ConfigError, match="unknown litmap option 'min_frq'.*min_freq"):
        LitmapSettings.from_options(min_frq=3)
    with pytest.raises(ConfigError, match="ngram_range"):
        LitmapSettings.from_options(ngram_range=(3, 1))
    with pytest.raises(ConfigError, match="unknown community method"):
        LitmapSettings.from_options(community="girvan")
    s = LitmapSettings.from_options(ngram_range="1,2", fields="title,abstract", stopwords=["foo"])
    assert s.ngram_range == (1, 2) and s.fields == ("title", "abstract") and s.stopwords == ("foo",)


# -- network ---------------------------------------------------------------------------------

def test_association_strength_by_hand():
    c = np.array([[0, 2, 1], [2, 0, 0], [1, 0, 0]])
    a = association_strength(c)
    # s = (3, 2, 1), m = 3: a_01 = 2*3*2 / (3*2) = 2, a_02 = 2*3*1 / (3*1) = 2, a_12 = 0
    assert a[0, 1] == pytest.approx(2.0) and a[0, 2] == pytest.approx(2.0) and a[1, 2] == 0.0
    occ, cc = cooccurrence([{"a", "b"}, {"a", "b", "c"}, {"c"}], ["a", "b", "c"])
    assert occ.tolist() == [2, 2, 2] and cc.tolist() == [[0, 2, 1], [2, 0, 1], [1, 1, 0]]


def test_two_planted_themes_are_two_communities():
    _, _, net = planted_network()
    norm = Normaliser()
    ca = {net.cluster[norm.key(t)] for t in THEME_A}
    cb = {net.cluster[norm.key(t)] for t in THEME_B}
    assert len(ca) == 1 and len(cb) == 1 and ca != cb


def test_planted_hub_is_most_central():
    _, _, net = planted_network()
    hub = Normaliser().key(HUB)
    for measure in ("links", "degree_centrality", "betweenness", "total_link_strength"):
        values = {k: m[measure] for k, m in net.measures.items()}
        assert max(values, key=values.get) == hub, measure
        assert sorted(values.values())[-2] < values[hub], measure
    assert net.role[hub] == "core"
    assert net.ids[hub] == 1  # the most frequent term


def test_communities_have_central_and_peripheral_terms_and_a_quadrant():
    _, _, net = planted_network()
    for c in net.communities:
        assert c["central"] and set(c["central"]) <= set(c["terms"])
        assert not set(c["central"]) & set(c["peripheral"])
        if len(c["terms"]) >= 2:
            assert c["quadrant"] in ("motor", "basic", "niche", "emerging or declining")
    rows = thematic_map(net.graph, net.cluster)
    assert all(r["centrality"] >= 0 and r["density"] > 0 for r in rows)


def test_communities_and_layout_do_not_depend_on_the_order_of_runs():
    _, _, a = planted_network()
    _, _, b = planted_network()
    assert a.cluster == b.cluster and a.positions == b.positions and a.measures == b.measures


def test_emerging_and_declining_terms():
    recs, terms, _ = planted_network()
    ys, n_docs, counts = year_counts(terms.docs, [r.year for r in recs], terms.kept)
    slopes = dict(zip(terms.kept, trend_slopes(ys, n_docs, counts), strict=True))
    assert slopes["transformer"] > 0 > slopes["handcrafted feature"]
    assert max(slopes, key=slopes.get) == "transformer"
    assert min(slopes, key=slopes.get) == "handcrafted feature"
    assert np.isnan(trend_slopes([2020], np.array([3]), np.array([[1]]))).all()


def test_leiden_needs_leidenalg():
    import importlib.util

    _, terms, _ = planted_network()
    if importlib.util.find_spec("leidenalg") is None:
        with pytest.raises(ConfigError, match="leidenalg"):
            build_network(terms.docs, terms.kept, terms.labels, community="leiden")
    else:
        net = build_network(terms.docs, terms.kept, terms.labels, community="leiden")
        assert len(set(net.cluster.values())) >= 2


# -- labels ----------------------------------------------------------------------------------

def _overlaps(boxes):
    out = []
    for i in range(len(boxes)):
        for j in range(i):
            a, b = boxes[i], boxes[j]
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                out.append((i, j))
    return out


def test_place_labels_leaves_no_overlap():
    rng = np.random.default_rng(0)
    anchors = rng.uniform(100, 300, size=(40, 2))  # forty labels crowded into a small square
    sizes = np.column_stack([rng.uniform(40, 120, 40), np.full(40, 14.0)])
    pos, keep = place_labels(anchors, sizes, (0, 0, 1000, 800))
    boxes = [(x - w / 2, y - h / 2, x + w / 2, y + h / 2) for (x, y), (w, h), k in zip(pos, sizes, keep, strict=True)
             if k]
    assert not _overlaps(boxes)
    assert keep.sum() >= 35  # there is room: nearly all are placed
    assert (pos[:, 0] - sizes[:, 0] / 2 >= -1e-9).all() and (pos[:, 1] + sizes[:, 1] / 2 <= 800 + 1e-9).all()
    pos2, keep2 = place_labels(anchors, sizes, (0, 0, 1000, 800))
    assert np.array_equal(pos, pos2) and np.array_equal(keep, keep2)


# -- the whole map ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def planted_map(tmp_path_factory):
    d = tmp_path_factory.mktemp("planted")
    bib = d / "planted.bib"
    write_bib(bib, planted_records())
    res = litmap([bib], d / "out", extractor="none", min_freq=2, label_top=12)
    return res, d / "out"


def test_litmap_writes_every_output(planted_map):
    res, out = planted_map
    for name in OUTPUTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert res.n_records == 24 and res.n_duplicates == 0 and len(res.communities) == 2
    assert res.emerging[0] == "transformer" and res.declining[0] == "handcrafted features"


def test_graph_files_parse_back_with_networkx(planted_map):
    import networkx as nx

    res, out = planted_map
    for reader in (nx.read_graphml, nx.read_gexf):
        g = reader(out / ("network.graphml" if reader is nx.read_graphml else "network.gexf"))
        assert g.number_of_nodes() == res.n_network_terms and g.number_of_edges() == res.n_links
        hub = Normaliser().key(HUB)
        assert hub in g.nodes
        attrs = g.nodes[hub]
        assert int(attrs["cluster"]) >= 1 and int(attrs["occurrences"]) == 24
        assert float(attrs["betweenness"]) > 0
        u, v, d = next(iter(g.edges(data=True)))
        assert float(d["weight"]) > 0 and int(d["cooccurrence"]) >= 1


def test_vosviewer_files_follow_the_layout(planted_map):
    res, out = planted_map
    lines = (out / "vosviewer_map.txt").read_text().splitlines()
    header = lines[0].split("\t")
    assert header[:6] == ["id", "label", "x", "y", "cluster", "weight<Occurrences>"]
    assert "weight<Links>" in header and "weight<Total link strength>" in header
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(r) == len(header) for r in rows)
    ids = [int(r[0]) for r in rows]
    assert ids == list(range(1, len(rows) + 1))
    for r in rows:
        float(r[2]), float(r[3])
        assert int(r[4]) >= 1 and int(r[5]) >= 2
    links = [line.split("\t") for line in (out / "vosviewer_network.txt").read_text().splitlines()]
    assert len(links) == res.n_links and all(len(x) == 3 for x in links)
    for a, b, s in links:
        assert int(a) < int(b) and int(a) in ids and int(b) in ids and int(s) >= 1
    # total link strength in the map is the sum of the link strengths in the network file
    tls = {int(r[0]): int(r[header.index("weight<Total link strength>")]) for r in rows}
    summed = dict.fromkeys(ids, 0)
    for a, b, s in links:
        summed[int(a)] += int(s)
        summed[int(b)] += int(s)
    assert summed == tls


def test_tables_and_settings(planted_map):
    res, out = planted_map
    with open(out / "terms.csv", newline="") as f:
        terms = list(csv.DictReader(f))
    hub = next(t for t in terms if t["term"] == HUB)
    assert hub["role"] == "core" and hub["id"] == "1" and hub["occurrences"] == "24"
    assert {t["role"] for t in terms if t["in_network"] == "true"} == {"core", "periphery"}
    with open(out / "communities.csv", newline="") as f:
        comms = list(csv.DictReader(f))
    assert len(comms) == 2 and all(c["central_terms"] and c["quadrant"] for c in comms)
    settings = json.loads((out / "settings.json").read_text())
    assert settings["settings"]["min_freq"] == 2 and settings["settings"]["extractor"] == "none"
    assert settings["resolved"]["extractor"] == "none" and settings["inputs"][0]["format"] == "bibtex"
    assert len(settings["inputs"][0]["sha256"]) == 64
    report = (out / "report.md").read_text()
    assert "## Communities" in report and "central:" in report and "peripheral:" in report


def test_network_png_labels_do_not_overlap(tmp_path):
    from mekit.analysis.litmap.plots import plot_network

    _, _, net = planted_network()
    drawn = plot_network(net, tmp_path / "n.png", label_top=20)
    assert len(drawn) >= 10
    assert not _overlaps([d["box"] for d in drawn])


def test_outputs_are_deterministic(planted_map, tmp_path):
    res, out = planted_map
    bib = out.parent / "planted.bib"
    litmap([bib], tmp_path / "again", extractor="none", min_freq=2, label_top=12)
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


def test_bad_input_is_reported_not_raised(tmp_path):
    bib = tmp_path / "mixed.bib"
    write_bib(bib, planted_records()[:6])
    with open(bib, "a") as f:
        f.write("\n@article{oops,\n  title = {never closed\n")
    res = litmap([bib], tmp_path / "out", extractor="none", min_freq=2)
    assert res.issues.get("malformed") == 1
    issues = (tmp_path / "out" / "issues.csv").read_text()
    assert "mixed.bib" in issues and ",malformed," in issues
    assert "never closed" not in (tmp_path / "out" / "documents.csv").read_text()


def test_a_map_without_any_frequent_term_still_writes_every_file(tmp_path):
    bib = tmp_path / "two.bib"
    bib.write_text("@article{a, title={Optical flow}}\n@article{b, title={Apex frames}}\n")
    res = litmap([bib], tmp_path / "out", min_freq=5, extractor="ngram")
    assert res.n_network_terms == 0 and res.communities == [] and res.emerging == []
    for name in OUTPUTS:
        assert (tmp_path / "out" / name).is_file(), name
    assert "Not computed" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.parametrize("method", COMMUNITIES.names())
def test_every_community_method_partitions_the_nodes_or_says_what_it_needs(method):
    _, terms, _ = planted_network()
    try:
        net = build_network(terms.docs, terms.kept, terms.labels, community=method, seed=3)
    except ConfigError as e:
        assert "needs" in str(e)
        return
    assert set(net.cluster) == set(net.graph.nodes) and min(net.cluster.values()) == 1
    sizes = [len(c["terms"]) for c in net.communities]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == net.graph.number_of_nodes()
