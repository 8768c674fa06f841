"""Mapping the research literature: ``litmap(paths, out_dir, **options)``.

Bibliographic exports (BibTeX, RIS, Scopus CSV, Web of Science plain text, OpenAlex JSON) are
read and de-duplicated (:mod:`.readers`); their keywords and the keyphrases of their titles and
abstracts are normalised and counted (:mod:`.terms`); the terms make a co-occurrence network with
communities, centralities, a core and a periphery, a thematic map and yearly trends
(:mod:`.network`); everything is written as tables, graph files, VOSviewer files, figures
(:mod:`.plots`) and a short Markdown report. The same input and options give the same files.

``mekit litmap`` and the web app's literature screen call :func:`litmap` (or
:func:`litmap_example`, on the bibliography of micro-expression recognition papers shipped
with mekit).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mekit.analysis.litmap.readers import READERS, Corpus, Issue, Record, read_corpus
from mekit.analysis.litmap.settings import LitmapSettings

log = logging.getLogger(__name__)

DATA = Path(__file__).parent.parent / "litmap_data"

#: every file :func:`litmap` writes
OUTPUTS = ("terms.csv", "term_years.csv", "years.csv", "trends.csv", "communities.csv", "edges.csv",
           "documents.csv", "issues.csv", "duplicates.csv", "network.graphml", "network.gexf",
           "vosviewer_map.txt", "vosviewer_network.txt", "wordcloud.png", "network.png", "thematic_map.png",
           "report.md", "settings.json")


def example_bibliography() -> Path:
    """The bibliography of micro-expression recognition papers shipped with mekit."""
    return DATA / "example_mer.bib"


def example_synonyms() -> Path:
    """The synonym list that goes with the example (spellings of the field's terms)."""
    return DATA / "example_synonyms.txt"


@dataclass
class LitmapResult:
    """What a literature map found, in brief (the files in ``out_dir`` have it all)."""

    out_dir: Path
    settings: LitmapSettings
    n_files: int
    n_read: int
    n_records: int
    n_duplicates: int
    issues: dict[str, int]
    n_terms: int
    n_kept_terms: int
    n_network_terms: int
    n_links: int
    extractor: str
    #: per community: ``{"cluster", "n_terms", "central", "peripheral", "quadrant"}`` (labels)
    communities: list[dict[str, Any]] = field(default_factory=list)
    emerging: list[str] = field(default_factory=list)
    declining: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("settings", "out_dir")}
        return {"out_dir": str(self.out_dir), **d, "settings": self.settings.to_dict()}


def _sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("mekit", "networkx", "bibtexparser", "rispy", "yake", "wordcloud", "matplotlib", "leidenalg"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def litmap(paths: Sequence[str | Path], out_dir: str | Path, **options: Any) -> LitmapResult:
    """Map the literature in the bibliographic exports ``paths`` into ``out_dir``.

    ``options`` are the fields of :class:`~mekit.analysis.litmap.settings.LitmapSettings`
    (``min_freq``, ``ngram_range``, ``synonyms_file``, ``community``, ...); an unknown one is a
    ConfigError. Problems in the input (malformed entries, records without a title or
    abstract) are written to ``issues.csv`` and the report, not raised; a missing file, or no
    readable record at all, is a DataError. Writes the files of :data:`OUTPUTS`.
    """
    from mekit.analysis.litmap.network import build_network, trend_slopes, year_counts
    from mekit.analysis.litmap.terms import extract_terms, make_normaliser

    settings = LitmapSettings.from_options(**options)
    out = Path(out_dir)
    corpus = read_corpus(list(paths), settings.format)
    records = corpus.records
    norm = make_normaliser(settings)
    terms = extract_terms(records, settings, norm)
    net = build_network(terms.docs, terms.kept[:settings.max_terms], terms.labels,
                        min_cooccurrence=settings.min_cooccurrence, community=settings.community,
                        resolution=settings.resolution, seed=settings.seed, core_method=settings.core_method,
                        core_fraction=settings.core_fraction, min_cluster_size=settings.min_cluster_size)
    years = [r.year for r in records]
    ys, n_docs, counts = year_counts(terms.docs, years, terms.kept)
    used_years = int((n_docs > 0).sum())
    slopes = trend_slopes(ys, n_docs, counts) if used_years >= settings.trend_min_years else \
        np.full(len(terms.kept), np.nan)
    out.mkdir(parents=True, exist_ok=True)
    _write_all(out, settings, corpus, terms, net, ys, n_docs, counts, slopes, norm)
    result = _result(out, settings, corpus, terms, net, slopes)
    _write_report(out, result, corpus, terms, net, ys, n_docs, slopes)
    log.info("literature map written to %s", out)
    return result


def litmap_example(out_dir: str | Path, **options: Any) -> LitmapResult:
    """:func:`litmap` on the example bibliography, with its synonym list unless one is given."""
    options.setdefault("synonyms_file", str(example_synonyms()))
    return litmap([example_bibliography()], out_dir, **options)


# -- writing ---------------------------------------------------------------------------------

def _trend_direction(slope: float) -> str:
    if slope != slope:
        return ""
    return "emerging" if slope > 1e-9 else "declining" if slope < -1e-9 else "flat"


def _write_all(out: Path, settings: LitmapSettings, corpus: Corpus, terms: Any, net: Any, ys: list[int],
               n_docs: np.ndarray, counts: np.ndarray, slopes: np.ndarray, norm: Any) -> None:
    from mekit.analysis.litmap import export, plots

    records = corpus.records
    n = len(records)
    kept = terms.kept
    row_of = {k: i for i, k in enumerate(kept)}
    mean_year: dict[str, float | None] = {}
    first_year: dict[str, int | None] = {}
    for k in kept:
        c = counts[row_of[k]]
        tot = int(c.sum())
        mean_year[k] = float(np.dot(c, ys) / tot) if tot else None
        first_year[k] = int(ys[int(np.nonzero(c)[0][0])]) if tot else None

    term_rows = []
    for k in kept:
        m = net.measures.get(k, {})
        x, y = net.positions.get(k, (None, None))
        term_rows.append([net.ids.get(k), terms.labels[k], k, terms.occurrences[k], terms.occurrences[k] / n,
                          ";".join(sorted(terms.sources.get(k, ()))), first_year[k], mean_year[k],
                          float(slopes[row_of[k]]), k in net.ids, net.cluster.get(k), net.role.get(k),
                          *(m.get(c) for c in ("links", "total_link_strength", "degree_centrality", "betweenness",
                                               "eigenvector", "kcore")), x, y])
    export.write_csv(out / "terms.csv", ["id", "term", "key", "occurrences", "share", "sources", "first_year",
                                         "mean_year", "trend_slope", "in_network", "cluster", "role", "links",
                                         "total_link_strength", "degree_centrality", "betweenness", "eigenvector",
                                         "kcore", "x", "y"], term_rows)
    export.write_csv(out / "term_years.csv", ["term", "key", "year", "documents", "share"],
                     ([terms.labels[k], k, y, int(counts[i, j]), counts[i, j] / n_docs[j] if n_docs[j] else 0.0]
                      for i, k in enumerate(kept) for j, y in enumerate(ys)))
    export.write_csv(out / "years.csv", ["year", "documents"], zip(ys, n_docs.tolist(), strict=True))
    order = sorted(range(len(kept)), key=lambda i: (-(slopes[i] if slopes[i] == slopes[i] else 0.0), kept[i]))
    export.write_csv(out / "trends.csv", ["term", "key", "occurrences", "slope", "direction"],
                     ([terms.labels[kept[i]], kept[i], terms.occurrences[kept[i]], float(slopes[i]),
                       _trend_direction(float(slopes[i]))] for i in order))
    g = net.graph

    def names(keys: Sequence[str]) -> str:
        return "; ".join(g.nodes[t]["label"] for t in keys)

    export.write_csv(out / "communities.csv", ["cluster", "n_terms", "occurrences", "central_terms",
                                               "peripheral_terms", "callon_centrality", "callon_density",
                                               "quadrant", "terms"],
                     ([c["cluster"], len(c["terms"]), c["occurrences"], names(c["central"]), names(c["peripheral"]),
                       c.get("centrality"), c.get("density"), c.get("quadrant", ""), names(c["terms"])]
                      for c in net.communities))
    export.write_csv(out / "edges.csv", ["source", "target", "source_id", "target_id", "cooccurrence",
                                         "association_strength"],
                     sorted(([g.nodes[u]["label"], g.nodes[v]["label"], net.ids[u], net.ids[v], d["cooccurrence"],
                              d["weight"]] for u, v, d in g.edges(data=True)), key=lambda r: (r[2], r[3])))
    export.write_csv(out / "documents.csv", ["doc", "source", "entry", "title", "year", "doi", "merged",
                                             "n_terms", "terms"],
                     ([i + 1, f"{r.path}:{r.line}" if r.line is not None else r.path, r.entry, r.title, r.year, r.doi,
                       "; ".join(r.merged), len(terms.docs[i]),
                       "; ".join(sorted(terms.labels[t] for t in terms.docs[i]))] for i, r in enumerate(records)))
    export.write_csv(out / "issues.csv", ["path", "line", "entry", "kind", "message"],
                     ([i.path, i.line, i.entry, i.kind, i.message] for i in corpus.issues))
    export.write_csv(out / "duplicates.csv", ["kept", "merged", "by"], corpus.merges)
    colours = {k: plots.community_colour(k) for k in set(net.cluster.values())}
    export.write_graphml(out / "network.graphml", net)
    export.write_gexf(out / "network.gexf", net, colours)
    export.write_vosviewer_map(out / "vosviewer_map.txt", net, mean_year)
    export.write_vosviewer_network(out / "vosviewer_network.txt", net)

    freqs: dict[str, int] = {}
    wcol: dict[str, str] = {}
    for k in kept[:settings.wordcloud_max_words]:
        lab = terms.labels[k]
        freqs[lab] = freqs.get(lab, 0) + terms.occurrences[k]
        wcol.setdefault(lab, plots.community_colour(net.cluster.get(k)))
    plots.plot_wordcloud(freqs, wcol, out / "wordcloud.png", settings.wordcloud_max_words, settings.seed)
    plots.plot_network(net, out / "network.png", settings.label_top,
                       title=f"Co-occurrence network: {len(net.keys)} terms, {len(net.communities)} communities")
    plots.plot_thematic_map(net, out / "thematic_map.png")

    settings_doc = {
        "settings": settings.to_dict(),
        "resolved": {"extractor": terms.extractor, "stopwords": len(norm.stopwords),
                     "synonym_variants": len(norm.synonyms),
                     "stopwords_file_sha256": _sha256(settings.stopwords_file) if settings.stopwords_file else None,
                     "synonyms_file_sha256": _sha256(settings.synonyms_file) if settings.synonyms_file else None,
                     "association_strength": "2m c_ij / (s_i s_j) (van Eck & Waltman 2009)",
                     "counting": "binary (a term counts once per document)"},
        "inputs": [{**f, "sha256": _sha256(f["path"])} for f in corpus.files],
        "versions": _versions(),
    }
    (out / "settings.json").write_text(json.dumps(settings_doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _result(out: Path, settings: LitmapSettings, corpus: Corpus, terms: Any, net: Any,
            slopes: np.ndarray) -> LitmapResult:
    from collections import Counter

    g = net.graph
    lab = terms.labels
    order = [i for i in np.argsort(-np.nan_to_num(slopes), kind="stable") if slopes[i] == slopes[i]]
    emerging = [lab[terms.kept[i]] for i in order if slopes[i] > 1e-9][:settings.trend_top]
    declining = [lab[terms.kept[i]] for i in reversed(order) if slopes[i] < -1e-9][:settings.trend_top]
    comms = [{"cluster": c["cluster"], "n_terms": len(c["terms"]), "occurrences": c["occurrences"],
              "central": [g.nodes[t]["label"] for t in c["central"]],
              "peripheral": [g.nodes[t]["label"] for t in c["peripheral"]],
              "quadrant": c.get("quadrant", ""), "centrality": c.get("centrality"), "density": c.get("density")}
             for c in net.communities]
    return LitmapResult(out_dir=out, settings=settings, n_files=len(corpus.files), n_read=corpus.n_read,
                        n_records=len(corpus.records), n_duplicates=len(corpus.merges),
                        issues=dict(sorted(Counter(i.kind for i in corpus.issues).items())),
                        n_terms=len(terms.occurrences), n_kept_terms=len(terms.kept), n_network_terms=len(net.keys),
                        n_links=g.number_of_edges(), extractor=terms.extractor, communities=comms,
                        emerging=emerging, declining=declining, files=list(OUTPUTS))


def _md(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _write_report(out: Path, res: LitmapResult, corpus: Corpus, terms: Any, net: Any, ys: list[int],
                  n_docs: np.ndarray, slopes: np.ndarray) -> None:
    s = res.settings
    g = net.graph
    iss = res.issues
    lines = ["# Literature map", ""]
    fmts = ", ".join(sorted({f["format"] for f in corpus.files}))
    lines.append(f"{res.n_read} records read from {res.n_files} file(s) ({fmts}); {res.n_duplicates} duplicate(s) "
                 f"merged (same DOI, else same title and year), leaving **{res.n_records} documents**"
                 + (f" published {ys[0]}-{ys[-1]}." if ys else "."))
    problems = [f"{iss[k]} {what}" for k, what in (("malformed", "malformed entries skipped"),
                                                   ("unterminated", "unterminated entries read as they were"),
                                                   ("unreadable", "unreadable files"),
                                                   ("empty", "records without any text skipped"),
                                                   ("no_title", "records without a title"),
                                                   ("no_abstract", "records without an abstract"),
                                                   ("encoding", "files not in UTF-8")) if iss.get(k)]
    if problems:
        lines.append(f"Reported in `issues.csv`: {'; '.join(problems)}.")
    lines += ["", f"Terms come from {', '.join(s.fields).replace('_', ' ')} (keyphrases: {res.extractor}, "
              f"{s.ngram_range[0]}-{s.ngram_range[1]} words); {res.n_terms} distinct terms, {res.n_kept_terms} in at "
              f"least {s.min_freq} documents. The network holds the {res.n_network_terms} most frequent terms with "
              f"links ({res.n_links} links, weighted by association strength) in {len(net.communities)} communities "
              f"({s.community}, resolution {s.resolution:g}, seed {s.seed}). Every setting is in `settings.json`.", ""]
    lines += ["![co-occurrence network](network.png)", "", "![thematic map](thematic_map.png)", "",
              "![word cloud](wordcloud.png)", ""]
    lines += ["## Most frequent terms", "", "| term | documents | community | role | betweenness |",
              "|---|---:|---:|---|---:|"]
    for k in terms.kept[:20]:
        m = net.measures.get(k)
        lines.append(f"| {_md(terms.labels[k])} | {terms.occurrences[k]} | {net.cluster.get(k, '-')} | "
                     f"{net.role.get(k, '-')} | {'-' if m is None else format(m['betweenness'], '.3f')} |")
    lines += ["", "## Communities", "",
              "Central terms have the strongest links inside their community, peripheral terms the weakest. "
              "The quadrant places the community on the thematic map (Callon centrality and density against "
              "their medians).", ""]
    for c in res.communities:
        head = c["central"][0] if c["central"] else f"community {c['cluster']}"
        quad = f"{c['quadrant']} theme; " if c["quadrant"] else ""
        lines.append(f"### {c['cluster']}. {_md(head)}")
        lines += ["", f"{quad}{c['n_terms']} terms, {c['occurrences']} occurrences.", "",
                  f"- central: {_md(', '.join(c['central']))}",
                  f"- peripheral: {_md(', '.join(c['peripheral'])) or '(none: too few terms)'}", ""]
    if net.isolated:
        lines += [f"{len(net.isolated)} frequent term(s) have no link to another and are not in the network: "
                  + _md(", ".join(terms.labels[k] for k in net.isolated[:15])) + ".", ""]
    core = [g.nodes[k]["label"] for k in net.keys if net.role[k] == "core"]
    lines += ["## Core and periphery", "",
              (f"Core ({s.core_method}"
               + (f", top {s.core_fraction:.0%} by total link strength" if s.core_method == "strength" else
                  ", main k-core") + f"): {_md(', '.join(core))}."), ""]
    lines += ["## Emerging and declining terms", ""]
    if res.emerging or res.declining:
        lines += [f"By the slope of each term's yearly share of documents over {ys[0]}-{ys[-1]}.", "",
                  f"- emerging: {_md(', '.join(res.emerging)) or '(none)'}",
                  f"- declining: {_md(', '.join(res.declining)) or '(none)'}", ""]
    else:
        lines += [f"Not computed: fewer than {s.trend_min_years} years with dated documents.", ""]
    serious = [i for i in corpus.issues if i.kind not in ("no_title", "no_abstract")]
    if serious:
        lines += ["## Problems in the input", ""]
        lines += [f"- `{_md(i.where)}`: {_md(i.message)}" for i in serious[:20]]
        if len(serious) > 20:
            lines.append(f"- ... and {len(serious) - 20} more in `issues.csv`")
        lines.append("")
    lines += ["## Files", "", "Tables: `terms.csv` (frequencies, centralities, community, core/periphery, trend), "
              "`term_years.csv`, `years.csv`, `trends.csv`, `communities.csv`, `edges.csv`, `documents.csv`, "
              "`issues.csv`, `duplicates.csv`. Graphs: `network.graphml`, `network.gexf` (Gephi), "
              "`vosviewer_map.txt` and `vosviewer_network.txt` (VOSviewer: *Create map* > *Create a map based on "
              "network data*).", ""]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")


__all__ = ["OUTPUTS", "READERS", "Issue", "LitmapResult", "LitmapSettings", "Record", "example_bibliography",
           "example_synonyms", "litmap", "litmap_example", "read_corpus"]
