"""Writers of a literature map's files: CSV tables, GraphML, GEXF and VOSviewer's map and network files.

Every writer gives the same bytes for the same map: rows in a fixed order, numbers with a fixed
number of significant digits, and no dates (networkx stamps GEXF files with today's date; that
attribute is left out, as the format allows).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def fmt(v: Any) -> str:
    """A cell: floats to 6 significant digits, None as empty."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v != v:  # NaN
            return ""
        return f"{v:.6g}"
    return str(v)


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            w.writerow([fmt(v) for v in r])


def _clean_label(s: str) -> str:
    return " ".join(str(s).replace("\t", " ").split())


#: the columns of :func:`write_vosviewer_map` (VOSviewer manual, "Map files")
VOS_MAP_COLUMNS = ("id", "label", "x", "y", "cluster", "weight<Occurrences>", "weight<Links>",
                   "weight<Total link strength>", "score<Avg. pub. year>")


def write_vosviewer_map(path: str | Path, net: Any, mean_year: dict[str, float | None]) -> None:
    """VOSviewer map file: tab-separated, one header line, one item a line. ``score<Avg. pub.
    year>`` is left out when no record has a year."""
    g = net.graph
    with_year = any(mean_year.get(k) is not None for k in net.keys)
    cols = VOS_MAP_COLUMNS if with_year else VOS_MAP_COLUMNS[:-1]
    lines = ["\t".join(cols)]
    for k in net.keys:
        m = net.measures[k]
        x, y = net.positions[k]
        row = [net.ids[k], _clean_label(g.nodes[k]["label"]), f"{x:.4f}", f"{y:.4f}", net.cluster[k],
               g.nodes[k]["occurrences"], int(m["links"]), int(m["total_link_strength"])]
        if with_year:
            my = mean_year.get(k)
            row.append("" if my is None else f"{my:.2f}")
        lines.append("\t".join(str(v) for v in row))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_vosviewer_network(path: str | Path, net: Any) -> None:
    """VOSviewer network file: ``id1<TAB>id2<TAB>strength`` a line, no header, each link once
    (``id1 < id2``). The strength is the raw co-occurrence count: VOSviewer normalises it
    (association strength by default) itself when it opens the file."""
    g = net.graph
    links = sorted((min(net.ids[u], net.ids[v]), max(net.ids[u], net.ids[v]), d["cooccurrence"])
                   for u, v, d in g.edges(data=True))
    Path(path).write_text("".join(f"{a}\t{b}\t{s}\n" for a, b, s in links), encoding="utf-8")


def annotated_graph(net: Any) -> Any:
    """A copy of the network with every measure as a node attribute (all plain scalars, as
    GraphML and GEXF want), in id order."""
    import networkx as nx

    g = nx.Graph()
    for k in net.keys:
        nd = net.graph.nodes[k]
        m = net.measures[k]
        g.add_node(k, label=str(nd["label"]), occurrences=int(nd["occurrences"]), cluster=int(net.cluster[k]),
                   role=net.role[k], vos_id=int(net.ids[k]), x=float(net.positions[k][0]),
                   y=float(net.positions[k][1]),
                   **{name: float(round(v, 8)) for name, v in m.items()})
    for u, v, d in sorted(net.graph.edges(data=True), key=lambda e: (net.ids[e[0]], net.ids[e[1]])):
        g.add_edge(u, v, weight=float(round(d["weight"], 8)), cooccurrence=int(d["cooccurrence"]))
    return g


def write_graphml(path: str | Path, net: Any) -> None:
    import networkx as nx

    nx.write_graphml(annotated_graph(net), str(path))


def write_gexf(path: str | Path, net: Any, colours: dict[int, str]) -> None:
    """GEXF for Gephi, with each node's position, size and community colour (``viz``)."""
    import networkx as nx

    g = annotated_graph(net)
    occ_max = max((d["occurrences"] for _, d in g.nodes(data=True)), default=1)
    for n, d in g.nodes(data=True):
        hexcol = colours.get(d["cluster"], "#9a9a9a").lstrip("#")
        r, gg, b = (int(hexcol[i:i + 2], 16) for i in (0, 2, 4))
        d["viz"] = {"color": {"r": r, "g": gg, "b": b, "a": 1.0},
                    "position": {"x": round(d["x"] * 500, 3), "y": round(d["y"] * 500, 3), "z": 0.0},
                    "size": round(4 + 20 * (d["occurrences"] / occ_max) ** 0.5, 3)}
    text = "\n".join(nx.generate_gexf(g))
    text = re.sub(r'\s*lastmodifieddate="[^"]*"', "", text, count=1)
    Path(path).write_text(text + "\n", encoding="utf-8")
