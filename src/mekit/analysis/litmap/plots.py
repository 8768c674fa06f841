"""Figures of a literature map: the word cloud, the network and the thematic map.

Figures are drawn on matplotlib ``Figure`` objects with the Agg canvas (no pyplot state, so two
maps drawn in two threads of the web app never meet). Labels are placed by :func:`place_labels`:
in rank order, each nudged outwards from its point to the nearest spot clear of the labels
already placed and of the node markers, with a leader line where it had to move; a label with
no free spot left is left out rather than drawn over another. adjustText is not needed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# tab10 then the light halves of tab20: distinct for the first ten communities, then softer
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
            "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"]
GREY = "#9a9a9a"
# zlib level 3: files about 10% larger than the default level, written several times faster
_PNG = {"compress_level": 3}


def community_colour(k: int | None) -> str:
    """The colour of community ``k`` (1-based); grey for terms outside the network."""
    return GREY if not k else _PALETTE[(k - 1) % len(_PALETTE)]


def _figure(w: float, h: float, dpi: int = 150) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _candidate_shifts(max_shift: float, step: float = 4.0, per_ring: int = 48) -> np.ndarray:
    """Displacements to try, nearest first: rings of growing radius, each starting straight up."""
    out = [(0.0, 0.0)]
    for k in range(1, int(max_shift // step) + 1):
        r = k * step
        m = min(per_ring, max(8, int(2 * math.pi * r / step)))
        ang = math.pi / 2 + 2 * math.pi * np.arange(m) / m
        out += list(zip(r * np.cos(ang), r * np.sin(ang), strict=True))
    return np.asarray(out)


def place_labels(anchors: np.ndarray, sizes: np.ndarray, bounds: tuple[float, float, float, float],
                 offsets: np.ndarray | None = None, pad: float = 2.0, obstacles: np.ndarray | None = None,
                 max_shift: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Centres for labels of ``sizes`` (w, h) near ``anchors`` (pixels), none overlapping another.

    Labels are placed one at a time in rank order (the first is the most important). Each
    starts at ``anchors + offsets`` and, where that spot is taken, is nudged outwards ring by
    ring (up to ``max_shift`` pixels, a quarter of the diagonal by default) to the nearest spot
    that overlaps no label already placed and no obstacle (fixed boxes ``(cx, cy, w, h)``, such
    as node markers) and lies inside ``bounds`` (x0, y0, x1, y1). Where only spots on obstacles
    are left, a label may cover an obstacle, never another label; where none is left it is
    dropped. Returns the centres and a mask of the labels kept. Deterministic: no randomness.
    """
    n = len(anchors)
    start = np.asarray(anchors, dtype=float) + (0.0 if offsets is None else np.asarray(offsets, dtype=float))
    sizes = np.asarray(sizes, dtype=float)
    x0, y0, x1, y1 = bounds
    shifts = _candidate_shifts(max_shift if max_shift is not None else 0.25 * math.hypot(x1 - x0, y1 - y0))
    obs = np.zeros((0, 4)) if obstacles is None else np.asarray(obstacles, dtype=float).reshape(-1, 4)
    placed = np.zeros((0, 4))
    pos = start.copy()
    keep = np.zeros(n, dtype=bool)

    def clear(c: np.ndarray, w: float, h: float, boxes: np.ndarray) -> np.ndarray:
        if not len(boxes):
            return np.ones(len(c), dtype=bool)
        ox = np.abs(c[:, None, 0] - boxes[None, :, 0]) < (w + boxes[None, :, 2]) / 2 + pad
        oy = np.abs(c[:, None, 1] - boxes[None, :, 1]) < (h + boxes[None, :, 3]) / 2 + pad
        return ~(ox & oy).any(axis=1)

    for i in range(n):
        w, h = sizes[i]
        c = start[i] + shifts
        inside = (c[:, 0] - w / 2 >= x0) & (c[:, 0] + w / 2 <= x1) & (c[:, 1] - h / 2 >= y0) & (c[:, 1] + h / 2 <= y1)
        free = inside & clear(c, w, h, placed)
        best = free & clear(c, w, h, obs)
        hits = np.flatnonzero(best) if best.any() else np.flatnonzero(free)
        if len(hits):
            pos[i] = c[hits[0]]
            keep[i] = True
            placed = np.vstack([placed, [pos[i][0], pos[i][1], w, h]])
    return pos, keep


def _place_labels(fig: Any, ax: Any, points: Sequence[tuple[float, float]], texts: Sequence[str],
                  fontsizes: Sequence[float], radii_px: Sequence[float], colours: Sequence[str] | None = None,
                  weight: str = "normal", markers: Sequence[tuple[float, float, float]] = ()) -> list[dict[str, Any]]:
    """Draw labels for data ``points`` (in rank order) without overlaps, kept off ``markers``
    (``(x, y, radius in pixels)`` in data coordinates); returns each drawn label's text and box in
    pixels ``(x0, y0, x1, y1)``. A label moved away from its point gets a leader line."""
    if not texts:
        return []
    renderer = fig.canvas.get_renderer()
    arts = [ax.text(0, 0, t, fontsize=fs, ha="center", va="center", zorder=5, fontweight=weight,
                    color="#1a1a1a", bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75})
            for t, fs in zip(texts, fontsizes, strict=True)]
    sizes = []
    for a in arts:
        bb = a.get_window_extent(renderer=renderer)
        sizes.append((bb.width + 4.0, bb.height + 2.0))
    sz = np.array(sizes)
    anchors = ax.transData.transform(np.asarray(points, dtype=float))
    offsets = np.column_stack([np.zeros(len(texts)), np.asarray(radii_px) + sz[:, 1] / 2 + 3.0])
    axbb = ax.get_window_extent(renderer=renderer)
    obstacles = None
    if len(markers):
        mk = np.asarray(markers, dtype=float)
        centres = ax.transData.transform(mk[:, :2])
        # a marker's box a little inside its circle: a label may graze its rim
        side = 2 * mk[:, 2] * 0.85
        obstacles = np.column_stack([centres, side, side])
    pos, keep = place_labels(anchors, sz, (axbb.x0, axbb.y0, axbb.x1, axbb.y1), offsets, obstacles=obstacles)
    inv = ax.transData.inverted()
    drawn = []
    for i, a in enumerate(arts):
        if not keep[i]:
            a.remove()
            continue
        a.set_position(tuple(inv.transform(pos[i])))
        if colours is not None:
            a.get_bbox_patch().set_edgecolor(colours[i])
            a.get_bbox_patch().set_linewidth(0.8)
        moved = np.hypot(*(pos[i] - anchors[i] - offsets[i]))
        if moved > 6:
            # leader from the point to the nearest point of the label's box
            cx = np.clip(anchors[i][0], pos[i][0] - sz[i][0] / 2, pos[i][0] + sz[i][0] / 2)
            cy = np.clip(anchors[i][1], pos[i][1] - sz[i][1] / 2, pos[i][1] + sz[i][1] / 2)
            p0, p1 = inv.transform(anchors[i]), inv.transform((cx, cy))
            ax.plot([p0[0], p1[0]], [p0[1], p1[1]], color="#555555", lw=0.6, zorder=4)
        drawn.append({"text": texts[i], "box": (float(pos[i][0] - sz[i][0] / 2), float(pos[i][1] - sz[i][1] / 2),
                                                float(pos[i][0] + sz[i][0] / 2), float(pos[i][1] + sz[i][1] / 2))})
    if not keep.all():
        log.info("%d labels left out where they could not be placed without overlap", int((~keep).sum()))
    return drawn


def plot_network(net: Any, path: str | Path, label_top: int = 30, title: str = "") -> list[dict[str, Any]]:
    """The term network: nodes sized by occurrences and coloured by community, links within a
    community in its colour, the ``label_top`` most frequent terms labelled. Returns the labels
    drawn with their boxes in pixels."""
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    g = net.graph
    fig = _figure(14, 9.5)
    # the legend gets a column of its own on the right, so it never hides a node
    ax = fig.add_axes((0.01, 0.01, 0.80, 0.93 if title else 0.98))
    ax.set_axis_off()
    nodes = list(net.keys)
    if not nodes:
        ax.text(0.5, 0.5, "no terms with links (lower min_freq?)", ha="center", va="center", transform=ax.transAxes)
        fig.savefig(path, dpi=150, pil_kwargs=_PNG)
        return []
    xy = np.array([net.positions[n] for n in nodes])
    ax.set_xlim(-1.12, 1.12)
    ax.set_ylim(-1.1, 1.12)
    ax.set_autoscale_on(False)
    occ = np.array([g.nodes[n]["occurrences"] for n in nodes], dtype=float)
    sizes = 30 + 900 * np.sqrt(occ / occ.max())
    edges = sorted(g.edges(data=True), key=lambda e: (e[2]["cooccurrence"], e[0], e[1]))
    if edges:
        wmax = max(d["cooccurrence"] for _, _, d in edges)
        segs = [(net.positions[u], net.positions[v]) for u, v, _ in edges]
        cols = []
        for u, v, d in edges:
            same = net.cluster[u] == net.cluster[v]
            alpha = 0.10 + 0.45 * d["cooccurrence"] / wmax
            rgb = community_colour(net.cluster[u]) if same else "#8c8c8c"
            from matplotlib.colors import to_rgba

            cols.append(to_rgba(rgb, alpha if same else alpha * 0.6))
        lws = [0.4 + 2.2 * d["cooccurrence"] / wmax for _, _, d in edges]
        ax.add_collection(LineCollection(segs, colors=cols, linewidths=lws, zorder=1))
    ax.scatter(xy[:, 0], xy[:, 1], s=sizes, c=[community_colour(net.cluster[n]) for n in nodes],
               edgecolors="white", linewidths=0.8, zorder=3)
    rank = sorted(range(len(nodes)), key=lambda i: (-occ[i], nodes[i]))[:label_top]
    fs = [8 + 6 * math.sqrt(occ[i] / occ.max()) for i in rank]
    radii = [math.sqrt(sizes[i]) / 2 * 150 / 72 for i in rank]  # marker radius in pixels at 150 dpi
    markers = [(float(xy[i, 0]), float(xy[i, 1]), math.sqrt(sizes[i]) / 2 * 150 / 72) for i in range(len(nodes))]
    drawn = _place_labels(fig, ax, [tuple(xy[i]) for i in rank], [g.nodes[nodes[i]]["label"] for i in rank], fs,
                          radii, [community_colour(net.cluster[nodes[i]]) for i in rank], markers=markers)
    if title:
        fig.suptitle(title, fontsize=14, y=0.985)
    clusters = sorted(set(net.cluster.values()))
    handles = [Line2D([], [], ls="none", marker="o", ms=8, color=community_colour(k),
                      label=f"{k}: {g.nodes[c['central'][0]]['label']}")
               for k, c in zip(clusters, net.communities, strict=True) if c["central"]][:12]
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9, frameon=False,
                  title="community: central term", title_fontsize=9, alignment="left")
    fig.savefig(path, dpi=150, pil_kwargs=_PNG)
    return drawn


def plot_thematic_map(net: Any, path: str | Path) -> list[dict[str, Any]]:
    """Communities by Callon centrality (x) and density (y), bubbles sized by occurrences,
    quadrants split at the medians and named as bibliometrix names them."""
    rows = [c for c in net.communities if "centrality" in c]
    fig = _figure(10, 8)
    ax = fig.add_axes((0.09, 0.08, 0.88, 0.85))
    ax.set_xlabel("Callon centrality (relevance degree)")
    ax.set_ylabel("Callon density (development degree)")
    ax.set_title("Thematic map of the communities")
    if not rows:
        ax.text(0.5, 0.5, "no community with enough terms", ha="center", va="center", transform=ax.transAxes)
        fig.savefig(path, dpi=150, pil_kwargs=_PNG)
        return []
    x = np.array([r["centrality"] for r in rows])
    y = np.array([r["density"] for r in rows])
    occ = np.array([r["occurrences"] for r in rows], dtype=float)

    def span(v: np.ndarray) -> tuple[float, float]:
        lo, hi = float(v.min()), float(v.max())
        pad = (hi - lo) * 0.18 or max(abs(hi) * 0.25, 1.0)
        return lo - pad, hi + pad

    ax.set_xlim(*span(x))
    ax.set_ylim(*span(y))
    ax.set_autoscale_on(False)
    mc, md = rows[0]["median_centrality"], rows[0]["median_density"]
    ax.axvline(mc, color="#777777", ls="--", lw=1)
    ax.axhline(md, color="#777777", ls="--", lw=1)
    for txt, (hx, hy) in (("Niche themes", (0.02, 0.97)), ("Motor themes", (0.98, 0.97)),
                          ("Emerging or declining themes", (0.02, 0.03)), ("Basic themes", (0.98, 0.03))):
        ax.text(hx, hy, txt, transform=ax.transAxes, ha="left" if hx < 0.5 else "right",
                va="top" if hy > 0.5 else "bottom", fontsize=12, color="#9a9a9a", fontweight="bold", zorder=0)
    sizes = 200 + 2800 * np.sqrt(occ / occ.max())
    ax.scatter(x, y, s=sizes, c=[community_colour(r["cluster"]) for r in rows], alpha=0.7, edgecolors="white",
               linewidths=1.0, zorder=3)
    g = net.graph
    texts = [f"{r['cluster']}: " + ", ".join(g.nodes[t]["label"] for t in r["central"][:3]) for r in rows]
    order = sorted(range(len(rows)), key=lambda i: (-occ[i], rows[i]["cluster"]))
    radii = [math.sqrt(sizes[i]) / 2 * 150 / 72 for i in order]
    drawn = _place_labels(fig, ax, [(x[i], y[i]) for i in order], [texts[i] for i in order], [9.0] * len(order),
                          radii, [community_colour(rows[i]["cluster"]) for i in order],
                          markers=[(x[i], y[i], r) for i, r in zip(order, radii, strict=True)])
    fig.savefig(path, dpi=150, pil_kwargs=_PNG)
    return drawn


def plot_wordcloud(freqs: dict[str, int], colours: dict[str, str], path: str | Path, max_words: int = 150,
                   seed: int = 0) -> None:
    """A word cloud of term occurrences (the ``wordcloud`` package, seeded), each word in its
    community's colour (grey outside the network)."""
    from wordcloud import WordCloud

    if not freqs:
        fig = _figure(8, 4, dpi=100)
        fig.text(0.5, 0.5, "no terms", ha="center", va="center")
        fig.savefig(path, dpi=100, pil_kwargs=_PNG)
        return

    def colour(word: str, **_: Any) -> str:
        return colours.get(word, GREY)

    # laid out on a 600 x 350 canvas and drawn at twice that size: four times less layout work
    wc = WordCloud(width=600, height=350, scale=2, background_color="white", max_words=max_words,
                   random_state=seed, prefer_horizontal=0.9, color_func=colour, collocations=False, margin=2,
                   relative_scaling=0.5, min_font_size=5)
    wc.generate_from_frequencies(freqs)
    wc.to_image().save(str(path), **_PNG)
