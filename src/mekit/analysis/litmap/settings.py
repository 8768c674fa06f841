"""The options of a literature map, as one frozen, validated value.

:func:`mekit.analysis.litmap.litmap` takes them as keyword arguments; every one is written to
``settings.json`` so that a map can be made again exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mekit.errors import ConfigError

#: the fields of a record that terms can come from
FIELDS = ("author_keywords", "index_keywords", "title", "abstract")
EXTRACTORS = ("auto", "yake", "ngram", "none")
HYPHENS = ("space", "join", "keep")
CORE_METHODS = ("strength", "kcore")


@dataclass(frozen=True)
class LitmapSettings:
    """Every choice a literature map depends on.

    ``fields``: where terms come from. ``extractor``: how keyphrases are taken from titles and
    abstracts (``auto`` is YAKE where it is installed, else ``ngram``: word n-grams between stop
    words and punctuation; ``none`` uses keywords only). ``ngram_range``: lengths, in words, of
    extracted phrases (keywords are kept whatever their length). ``min_freq``: documents a term
    must occur in. ``max_terms``: the most frequent terms that make the network.
    ``hyphens``: ``space`` reads "micro-expression" as "micro expression", ``join`` as
    "microexpression", ``keep`` leaves it. ``community``: ``louvain`` (networkx) or ``leiden``
    (needs leidenalg). ``core_method``: ``strength`` puts the ``core_fraction`` of terms with the
    highest total link strength in the core; ``kcore`` the terms of the network's main k-core.
    """

    format: str | None = None
    fields: tuple[str, ...] = FIELDS
    extractor: str = "auto"
    keyphrases_per_doc: int = 10
    ngram_range: tuple[int, int] = (1, 3)
    min_freq: int = 2
    max_terms: int = 100
    min_cooccurrence: int = 1
    stopwords_file: str | None = None
    stopwords: tuple[str, ...] = ()
    synonyms_file: str | None = None
    lemmatize: bool = True
    hyphens: str = "space"
    community: str = "louvain"
    resolution: float = 1.0
    seed: int = 0
    core_method: str = "strength"
    core_fraction: float = 0.2
    label_top: int = 30
    min_cluster_size: int = 2
    trend_min_years: int = 3
    trend_top: int = 10
    wordcloud_max_words: int = 150

    def __post_init__(self) -> None:
        def bad(name: str, expected: str) -> ConfigError:
            return ConfigError(f"litmap option {name}: expected {expected}, got {getattr(self, name)!r}")

        for name in ("keyphrases_per_doc", "min_freq", "max_terms", "min_cooccurrence", "label_top",
                     "min_cluster_size", "trend_min_years", "trend_top", "wordcloud_max_words", "seed"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < (0 if name in ("seed", "label_top") else 1):
                raise bad(name, "a positive integer")
        unknown = [f for f in self.fields if f not in FIELDS]
        if not self.fields or unknown:
            raise bad("fields", f"some of {list(FIELDS)}")
        for name, allowed in (("extractor", EXTRACTORS), ("hyphens", HYPHENS), ("core_method", CORE_METHODS)):
            if getattr(self, name) not in allowed:
                raise bad(name, f"one of {list(allowed)}")
        lo, hi = self.ngram_range
        if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi <= 6):
            raise bad("ngram_range", "two integers 1 <= min <= max <= 6")
        if not 0 < float(self.core_fraction) <= 1:
            raise bad("core_fraction", "a number in (0, 1]")
        if not float(self.resolution) > 0:
            raise bad("resolution", "a positive number")
        from mekit.analysis.litmap.network import COMMUNITIES
        from mekit.analysis.litmap.readers import READERS

        COMMUNITIES.get(self.community)
        if self.format is not None:
            READERS.get(self.format)

    @classmethod
    def from_options(cls, **options: Any) -> LitmapSettings:
        """Settings from keyword options; an unknown option is a ConfigError naming it. Lists
        are accepted where tuples are meant (they come from JSON, YAML or a command line)."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - set(known))
        if unknown:
            import difflib

            close = difflib.get_close_matches(unknown[0], list(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown litmap option {unknown[0]!r}{hint}; expected some of {sorted(known)}")
        clean: dict[str, Any] = {}
        for k, v in options.items():
            if v is None and known[k].default is not None:
                continue  # "not given": keep the default
            if k in ("fields", "stopwords") and isinstance(v, str):
                v = tuple(s.strip() for s in v.split(",") if s.strip())
            if k == "ngram_range" and isinstance(v, str):
                try:
                    v = tuple(int(x) for x in v.replace("-", ",").split(","))
                except ValueError:
                    raise ConfigError(f"litmap option ngram_range: expected 'MIN,MAX', got {v!r}") from None
            if isinstance(v, list):
                v = tuple(v)
            if k == "ngram_range" and (not isinstance(v, tuple) or len(v) != 2):
                raise ConfigError(f"litmap option ngram_range: expected two integers, got {v!r}")
            clean[k] = v
        return cls(**clean)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}
