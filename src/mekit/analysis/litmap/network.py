"""The co-occurrence network of terms and what is measured on it.

* **Links** join two terms that occur in the same document; their *co-occurrence* is the number
  of such documents. Link *weight* is VOSviewer's association strength (van Eck & Waltman 2009,
  "How to normalize cooccurrence data", JASIST 60(8)): ``a_ij = 2m c_ij / (s_i s_j)`` where
  ``s_i`` is the total link strength of term ``i`` (its co-occurrences summed) and ``m`` the
  total of all links, so a weight of 1 is what chance would give.
* **Communities**: a registered method (:data:`COMMUNITIES`: ``louvain`` from networkx with a
  fixed seed, ``leiden`` through leidenalg where installed) on the association-strength graph,
  numbered 1, 2, ... from the largest.
* **Centralities**: degree, betweenness (shortest paths with distance ``1 / c_ij``, so terms
  that often occur together are close) and eigenvector (on co-occurrence weights).
* **Core and periphery**: the ``core_fraction`` of terms with the highest total link strength
  (``strength``), or the terms of the main k-core (``kcore``).
* **Thematic map** (Callon et al. 1991; Cobo et al. 2011, as bibliometrix's ``thematicMap``):
  per community, Callon *centrality* is 10 x the sum of the equivalence index
  ``e_ij = c_ij^2 / (c_i c_j)`` over links leaving it, Callon *density* 100 x the sum over its
  internal links divided by its number of terms. Split at the medians: motor (central, dense),
  basic (central, loose), niche (peripheral, dense), emerging or declining (peripheral, loose).
* **Trends**: each term's share of a year's documents, and the least-squares slope of that
  share over the years (emerging terms rise, declining terms fall).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mekit.errors import ConfigError
from mekit.registry import Registry

log = logging.getLogger(__name__)

#: community detection methods: ``fn(graph, resolution, seed) -> list of node sets``
COMMUNITIES: Registry[Any] = Registry("community method")


@COMMUNITIES.register("louvain", help="Louvain modularity (networkx), fixed seed")
def louvain(graph: Any, resolution: float = 1.0, seed: int = 0) -> list[set[str]]:
    import networkx as nx

    if graph.number_of_edges() == 0:
        return [{n} for n in graph.nodes]
    return [set(c) for c in nx.community.louvain_communities(graph, weight="weight", resolution=resolution,
                                                             seed=seed)]


@COMMUNITIES.register("leiden", help="Leiden (leidenalg + python-igraph, where installed), fixed seed")
def leiden(graph: Any, resolution: float = 1.0, seed: int = 0) -> list[set[str]]:
    try:
        import igraph
        import leidenalg
    except ImportError:
        raise ConfigError("community method 'leiden' needs the leidenalg and igraph packages "
                          "(pip install leidenalg); 'louvain' needs nothing more") from None
    nodes = list(graph.nodes)
    idx = {n: i for i, n in enumerate(nodes)}
    g = igraph.Graph(n=len(nodes), edges=[(idx[u], idx[v]) for u, v in graph.edges()])
    g.es["weight"] = [float(d["weight"]) for _, _, d in graph.edges(data=True)]
    part = leidenalg.find_partition(g, leidenalg.RBConfigurationVertexPartition, weights="weight",
                                    resolution_parameter=resolution, seed=seed)
    return [{nodes[i] for i in c} for c in part]


@dataclass
class Network:
    """The term network and every measure on it; node keys are term keys, in id order
    (``ids[key]`` is 1 for the most frequent term)."""

    graph: Any
    keys: list[str]
    ids: dict[str, int]
    cluster: dict[str, int]
    measures: dict[str, dict[str, float]]
    role: dict[str, str]
    positions: dict[str, tuple[float, float]]
    isolated: list[str] = field(default_factory=list)
    #: per community: ``{"cluster", "terms", "central", "peripheral", "occurrences", ...}``
    communities: list[dict[str, Any]] = field(default_factory=list)


def cooccurrence(docs: Sequence[set[str]], keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(occurrences, C)``: documents per key and the symmetric co-occurrence counts (zero diagonal)."""
    index = {k: i for i, k in enumerate(keys)}
    x = np.zeros((len(docs), len(keys)), dtype=np.int32)
    for d, terms in enumerate(docs):
        for t in terms:
            i = index.get(t)
            if i is not None:
                x[d, i] = 1
    c = x.T @ x
    occ = np.diag(c).copy()
    np.fill_diagonal(c, 0)
    return occ, c


def association_strength(c: np.ndarray) -> np.ndarray:
    """VOSviewer's association strength ``2m c_ij / (s_i s_j)`` (0 where a term has no links)."""
    s = c.sum(axis=1).astype(float)
    m = c.sum() / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(c > 0, 2.0 * m * c / np.outer(s, s), 0.0)
    return np.nan_to_num(a)


def build_graph(keys: Sequence[str], labels: dict[str, str], occ: np.ndarray, c: np.ndarray,
                min_cooccurrence: int = 1) -> Any:
    """A networkx graph: nodes ``key`` with ``label`` and ``occurrences``; edges with ``weight``
    (association strength), ``cooccurrence`` and ``distance`` (``1 / cooccurrence``). Nodes and
    edges are added in id order, so every algorithm sees the same graph on every run."""
    import networkx as nx

    a = association_strength(np.where(c >= min_cooccurrence, c, 0))
    g = nx.Graph()
    for i, k in enumerate(keys):
        g.add_node(k, label=labels.get(k, k), occurrences=int(occ[i]))
    ii, jj = np.nonzero(np.triu(c >= max(1, min_cooccurrence), 1))
    for i, j in zip(ii.tolist(), jj.tolist(), strict=True):
        g.add_edge(keys[i], keys[j], weight=float(a[i, j]), cooccurrence=int(c[i, j]), distance=1.0 / float(c[i, j]))
    return g


def detect_communities(graph: Any, method: str = "louvain", resolution: float = 1.0, seed: int = 0) -> dict[str, int]:
    """Community of each node, numbered from 1 by size (then total occurrences, then first key)."""
    from mekit.registry import resolve

    found = resolve(COMMUNITIES.get(method))(graph, resolution=resolution, seed=seed)
    occ = {n: graph.nodes[n].get("occurrences", 0) for n in graph.nodes}
    order = sorted(found, key=lambda s: (-len(s), -sum(occ[n] for n in s), min(s)))
    return {n: k for k, members in enumerate(order, 1) for n in members}


def centralities(graph: Any) -> dict[str, dict[str, float]]:
    """Per node: ``links`` (degree), ``total_link_strength`` (co-occurrences summed), degree,
    betweenness (distance ``1/c_ij``) and eigenvector (co-occurrence weights) centralities."""
    import networkx as nx

    if graph.number_of_nodes() == 0:
        return {}
    deg = nx.degree_centrality(graph) if graph.number_of_nodes() > 1 else {n: 0.0 for n in graph.nodes}
    btw = nx.betweenness_centrality(graph, weight="distance", normalized=True)
    try:
        eig = nx.eigenvector_centrality(graph, weight="cooccurrence", max_iter=2000, tol=1e-10)
    except (nx.PowerIterationFailedConvergence, nx.NetworkXException):
        eig = nx.eigenvector_centrality_numpy(graph, weight="cooccurrence") if graph.number_of_edges() else {}
    out: dict[str, dict[str, float]] = {}
    for n in graph.nodes:
        out[n] = {"links": float(graph.degree(n)),
                  "total_link_strength": float(graph.degree(n, weight="cooccurrence")),
                  "degree_centrality": float(deg.get(n, 0.0)), "betweenness": float(btw.get(n, 0.0)),
                  "eigenvector": abs(float(eig.get(n, 0.0)))}
    return out


def core_periphery(graph: Any, method: str = "strength",
                   fraction: float = 0.2) -> tuple[dict[str, str], dict[str, int]]:
    """``(role, kcore)``: ``core`` or ``periphery`` for each node, and its k-core number."""
    import networkx as nx

    kcore = {n: int(k) for n, k in nx.core_number(graph).items()} if graph.number_of_nodes() else {}
    if method == "kcore":
        top = max(kcore.values(), default=0)
        return {n: "core" if kcore[n] == top and top > 0 else "periphery" for n in graph.nodes}, kcore
    strength = {n: graph.degree(n, weight="cooccurrence") for n in graph.nodes}
    ranked = sorted(graph.nodes, key=lambda n: (-strength[n], -graph.nodes[n].get("occurrences", 0), n))
    n_core = max(1, math.ceil(fraction * len(ranked))) if ranked else 0
    core = set(ranked[:n_core])
    return {n: "core" if n in core else "periphery" for n in graph.nodes}, kcore


def thematic_map(graph: Any, cluster: dict[str, int], min_size: int = 2) -> list[dict[str, Any]]:
    """Callon centrality and density of each community of at least ``min_size`` terms, and its
    quadrant (split at the medians over those communities)."""
    members: dict[int, list[str]] = {}
    for n, k in cluster.items():
        members.setdefault(k, []).append(n)
    occ = {n: graph.nodes[n]["occurrences"] for n in graph.nodes}
    ext: dict[int, float] = dict.fromkeys(members, 0.0)
    inn: dict[int, float] = dict.fromkeys(members, 0.0)
    for u, v, d in graph.edges(data=True):
        e = d["cooccurrence"] ** 2 / (occ[u] * occ[v])
        if cluster[u] == cluster[v]:
            inn[cluster[u]] += e
        else:
            ext[cluster[u]] += e
            ext[cluster[v]] += e
    rows = []
    for k in sorted(members):
        if len(members[k]) < min_size:
            continue
        rows.append({"cluster": k, "centrality": 10.0 * ext[k], "density": 100.0 * inn[k] / len(members[k]),
                     "n_terms": len(members[k]), "occurrences": int(sum(occ[n] for n in members[k]))})
    if rows:
        mc = float(np.median([r["centrality"] for r in rows]))
        md = float(np.median([r["density"] for r in rows]))
        for r in rows:
            hi_c, hi_d = r["centrality"] >= mc, r["density"] >= md
            r["quadrant"] = ("motor" if hi_d else "basic") if hi_c else ("niche" if hi_d else "emerging or declining")
            r["median_centrality"], r["median_density"] = mc, md
    return rows


def community_summary(graph: Any, cluster: dict[str, int], n_central: int = 5,
                      n_peripheral: int = 3) -> list[dict[str, Any]]:
    """Per community: its terms by within-community link strength (co-occurrences with members
    of the same community); the strongest are its central terms, the weakest its peripheral ones."""
    members: dict[int, list[str]] = {}
    for n, k in cluster.items():
        members.setdefault(k, []).append(n)
    inner = {n: sum(d["cooccurrence"] for m, d in graph[n].items() if cluster.get(m) == cluster[n]) for n in cluster}
    out = []
    for k in sorted(members):
        ranked = sorted(members[k], key=lambda n: (-inner[n], -graph.nodes[n]["occurrences"], n))
        n_c = min(n_central, max(1, math.ceil(len(ranked) / 3)))
        n_p = min(n_peripheral, len(ranked) - n_c)
        out.append({"cluster": k, "terms": ranked, "central": ranked[:n_c],
                    "peripheral": ranked[len(ranked) - n_p:] if n_p > 0 else [],
                    "inner_strength": {n: inner[n] for n in ranked},
                    "occurrences": int(sum(graph.nodes[n]["occurrences"] for n in ranked))})
    return out


def layout(graph: Any, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Positions in [-1, 1]^2: a seeded force-directed layout on association strengths (log-damped,
    so one very strong pair does not collapse onto itself); components are laid out side by side."""
    import networkx as nx

    if graph.number_of_nodes() == 0:
        return {}
    h = nx.Graph()
    h.add_nodes_from(graph.nodes)
    h.add_edges_from((u, v, {"w": math.log1p(d["weight"])}) for u, v, d in graph.edges(data=True))
    n = graph.number_of_nodes()
    pos = nx.spring_layout(h, weight="w", seed=seed, iterations=300, k=1.6 / math.sqrt(max(n, 1)))
    xy = np.array([pos[v] for v in graph.nodes], dtype=float)
    xy -= xy.mean(axis=0)
    scale = np.abs(xy).max() or 1.0
    xy /= scale
    return {v: (round(float(x), 6), round(float(y), 6)) for v, (x, y) in zip(graph.nodes, xy, strict=True)}


def build_network(docs: Sequence[set[str]], keys: Sequence[str], labels: dict[str, str], *,
                  min_cooccurrence: int = 1, community: str = "louvain", resolution: float = 1.0, seed: int = 0,
                  core_method: str = "strength", core_fraction: float = 0.2, min_cluster_size: int = 2) -> Network:
    """The network of ``keys`` (terms with no link are left out and listed in ``isolated``)."""
    occ, c = cooccurrence(docs, keys)
    g = build_graph(keys, labels, occ, c, min_cooccurrence)
    isolated = [n for n in keys if g.degree(n) == 0]
    g.remove_nodes_from(isolated)
    kept = [k for k in keys if k in g]
    ids = {k: i for i, k in enumerate(kept, 1)}
    cluster = detect_communities(g, community, resolution, seed)
    measures = centralities(g)
    role, kcore = core_periphery(g, core_method, core_fraction)
    for n in measures:
        measures[n]["kcore"] = float(kcore.get(n, 0))
    comms = community_summary(g, cluster)
    tmap = {r["cluster"]: r for r in thematic_map(g, cluster, min_cluster_size)}
    for cm in comms:
        cm.update({k: v for k, v in tmap.get(cm["cluster"], {}).items() if k != "cluster"})
    log.info("network: %d terms, %d links, %d communities (%d terms without links left out)", g.number_of_nodes(),
             g.number_of_edges(), len(comms), len(isolated))
    return Network(g, kept, ids, cluster, measures, role, layout(g, seed), isolated, comms)


# -- trends ----------------------------------------------------------------------------------

def year_counts(docs: Sequence[set[str]], years: Sequence[int | None],
                keys: Sequence[str]) -> tuple[list[int], np.ndarray, np.ndarray]:
    """``(years, documents per year, counts[key, year])`` over the documents with a year."""
    ys = sorted({y for y in years if y is not None})
    col = {y: j for j, y in enumerate(ys)}
    index = {k: i for i, k in enumerate(keys)}
    n_docs = np.zeros(len(ys), dtype=int)
    counts = np.zeros((len(keys), len(ys)), dtype=int)
    for terms, y in zip(docs, years, strict=True):
        if y is None:
            continue
        n_docs[col[y]] += 1
        for t in terms:
            if t in index:
                counts[index[t], col[y]] += 1
    return ys, n_docs, counts


def trend_slopes(ys: Sequence[int], n_docs: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Least-squares slope of each term's yearly share of documents, in shares per year (NaN
    for every term when fewer than two years have documents)."""
    used = n_docs > 0
    if used.sum() < 2:
        return np.full(counts.shape[0], np.nan)
    x = np.asarray(ys, dtype=float)[used]
    share = counts[:, used] / n_docs[used]
    xc = x - x.mean()
    return (share - share.mean(axis=1, keepdims=True)) @ xc / float(xc @ xc)
