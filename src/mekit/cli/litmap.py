"""``mekit litmap CORPUS... --out DIR``: map a research literature from bibliographic exports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mekit.cli.main import app


@app.command("litmap")
def litmap_cmd(
    out: Annotated[Path, typer.Option("--out", help="Folder for the tables, graphs, figures and report.")],
    corpus: Annotated[list[Path] | None, typer.Argument(
        help="Bibliographic exports: .bib, .ris, Scopus .csv, Web of Science plain .txt, OpenAlex .json.")] = None,
    example: Annotated[bool, typer.Option(
        "--example", help="Map the example bibliography of micro-expression papers shipped with mekit.")] = False,
    fmt: Annotated[str | None, typer.Option(
        "--format", help="Read every file as this format (bibtex, ris, scopus_csv, wos, openalex); "
                         "default: detected per file.")] = None,
    min_freq: Annotated[int | None, typer.Option(
        "--min-freq", help="Documents a term must occur in (default 2).")] = None,
    ngram: Annotated[str | None, typer.Option(
        "--ngram", help="Words per extracted phrase, MIN,MAX (default 1,3).")] = None,
    max_terms: Annotated[int | None, typer.Option("--max-terms", help="Terms in the network (default 100).")] = None,
    extractor: Annotated[str | None, typer.Option(
        "--extractor", help="Keyphrases from titles and abstracts: auto, yake, ngram, none (default auto).")] = None,
    stopwords: Annotated[Path | None, typer.Option("--stopwords", help="File of extra stop words, one a line.")] = None,
    synonyms: Annotated[Path | None, typer.Option(
        "--synonyms", help="Synonym file, lines 'optical flow = optic flow' (first entry is shown).")] = None,
    community: Annotated[str | None, typer.Option(
        "--community", help="Community method: louvain, leiden (needs leidenalg) (default louvain).")] = None,
    seed: Annotated[int | None, typer.Option(
        "--seed", help="Seed of communities, layout and word cloud (default 0).")] = None,
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o",
        help="Any other setting key=value, e.g. -o resolution=1.2 -o label_top=40 (repeatable).")] = None,
) -> None:
    """Read, de-duplicate and map the literature: term frequencies and trends, co-occurrence network
    with communities and centralities, thematic map, VOSviewer and Gephi files, figures, report.md."""
    from rich.console import Console
    from rich.markup import escape

    from mekit.analysis.litmap import litmap, litmap_example
    from mekit.cli.common import parse_overrides
    from mekit.errors import ConfigError

    if bool(corpus) == example:
        raise ConfigError("give bibliography files or --example (not both, not neither)")
    given = {"format": fmt, "min_freq": min_freq, "ngram_range": ngram, "max_terms": max_terms,
             "extractor": extractor, "stopwords_file": None if stopwords is None else str(stopwords),
             "synonyms_file": None if synonyms is None else str(synonyms), "community": community, "seed": seed}
    options = {k: v for k, v in given.items() if v is not None} | parse_overrides(option)
    console = Console(stderr=True)
    with console.status("mapping the literature"):
        res = litmap_example(out, **options) if example else litmap(corpus or [], out, **options)
    show = Console()
    issues = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in res.issues.items()) or "none"
    show.print(f"{res.n_read} records read from {res.n_files} file(s), {res.n_duplicates} duplicate(s) merged: "
               f"{res.n_records} documents; issues: {escape(issues)}")
    show.print(f"{res.n_kept_terms} terms in at least {res.settings.min_freq} documents; network of "
               f"{res.n_network_terms} terms, {res.n_links} links, {len(res.communities)} communities")
    for c in res.communities[:10]:
        quad = f" [{c['quadrant']}]" if c["quadrant"] else ""
        show.print(f"  {c['cluster']}.{escape(quad)} {escape(', '.join(c['central']))}")
    show.print(f"tables, graphs, figures and report.md in {escape(str(res.out_dir))}")
