"""Terms of a literature map: keywords and keyphrases, normalised and counted per document.

A document's terms are its author keywords, its index keywords and keyphrases taken from its
title and abstract (YAKE where installed, else word n-grams between stop words). Every term is
reduced to a *key*: NFKC, lower case, hyphens as set (``micro-expression`` -> ``micro expression``),
punctuation dropped, each word made singular by simple suffix rules, and finally mapped through
the synonym list (``optical flow = optic flow`` maps the second to the first). Two spellings
with one key are one term; the term is shown under its most frequent spelling (or the synonym
line's first entry). Counting is binary, as in VOSviewer: a term occurs in a document or not.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mekit.analysis.litmap.readers import Record
from mekit.analysis.litmap.settings import LitmapSettings
from mekit.errors import ConfigError

log = logging.getLogger(__name__)

# English function words, and the boilerplate of abstracts that names no topic.
_ENGLISH = """
a about above across after again against all almost along already also although always am among an and
another any anyone anything are around as at be became because become been before being below between
both but by can cannot could did do does doing done down during each either else enough etc even ever
every few for from further had has have having he her here hers herself him himself his how however i if
in into is it its itself just least less like many may me might more most much must my myself neither
no nor not now of off often on once one only onto or other others otherwise our ours ourselves out over
own per perhaps rather same several shall she should since so some such than that the their theirs them
themselves then there therefore these they this those though through thus to together too toward towards
two under until up upon us very via was we well were what whatever when where whereas whether which
while who whom whose why will with within without would yet you your yours yourself yourselves
"""
_ACADEMIC = """
paper article study studies work works approach approaches method methods methodology propose proposed
proposes present presented presents show shows shown demonstrate demonstrates result results achieve
achieves achieved novel new based use used uses using existing different various extensive experiment
experiments experimental effectiveness effective performance outperform outperforms better best state art
furthermore moreover addition additionally respectively first second third finally recently however
aim aims goal problem problems issue issues important main significant significantly number good way ways
compute computes computed introduce introduces introduced describe describes described investigate
investigates investigated explore explores obtain obtains obtained provide provides provided report reports
reported apply applies applied consider considers considered argue argues argued
"""
#: the built-in stop words (a user list adds to these)
STOPWORDS: frozenset[str] = frozenset((_ENGLISH + _ACADEMIC).split())

_IRREGULAR = {"analyses": "analysis", "indices": "index", "matrices": "matrix", "vertices": "vertex",
              "theses": "thesis", "hypotheses": "hypothesis", "bases": "basis", "axes": "axis",
              "criteria": "criterion", "phenomena": "phenomenon", "people": "person", "faces": "face",
              "databases": "database", "cases": "case", "phases": "phase", "releases": "release"}
_KEEP = {"bias", "alias", "atlas", "canvas", "lens", "news", "series", "species", "gas", "chaos", "cos",
         "less", "ross", "mars", "siamese", "yes", "its", "was", "has", "does", "this", "thus", "always"}


def singular(word: str) -> str:
    """A simple English singular (suffix rules with a short list of exceptions); words of three
    letters or fewer, acronyms ending in -ss/-us/-is/-ics and anything not alphanumeric stay."""
    if len(word) <= 3 or not word.endswith("s") or not word.isalnum():
        return word
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word in _KEEP or word.endswith(("ss", "us", "is", "ics")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    return word[:-1]


def read_word_list(path: str | Path, what: str = "stop-word") -> list[str]:
    """Words or phrases, one a line (commas also separate); ``#`` starts a comment."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} file {p} does not exist")
    out: list[str] = []
    for line in p.read_text(encoding="utf-8-sig").splitlines():
        line = line.split("#", 1)[0]
        out += [w.strip() for w in line.split(",") if w.strip()]
    return out


def read_synonyms(path: str | Path) -> list[tuple[str, list[str]]]:
    """Synonym lines ``canonical = variant = variant ...`` (``#`` comments); the first entry is
    the name shown. A line without ``=`` is a ConfigError naming the file and line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"synonym file {p} does not exist")
    out: list[tuple[str, list[str]]] = []
    for n, line in enumerate(p.read_text(encoding="utf-8-sig").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [s.strip() for s in line.split("=")]
        if len(parts) < 2 or not all(parts):
            raise ConfigError(f"{p}:{n}: synonym line {line!r} is not 'canonical = variant [= variant ...]'")
        out.append((parts[0], parts[1:]))
    return out


_PUNCT = re.compile(r"[^\w\s\-+#]")
_ACRONYM = re.compile(r"^[A-Z0-9][A-Z0-9\-+&]*[A-Z][A-Z0-9\-+&]*$")


class Normaliser:
    """Phrase -> key (what terms are matched on) and phrase -> spelling (what is shown)."""

    def __init__(self, stopwords: Iterable[str] = STOPWORDS, synonyms: Sequence[tuple[str, list[str]]] = (),
                 lemmatize: bool = True, hyphens: str = "space") -> None:
        self.lemmatize = lemmatize
        self.hyphens = hyphens
        self.stopwords: set[str] = set()
        for s in stopwords:
            self.stopwords.add(" ".join(s.lower().split()))
            self.stopwords.add(self.base(s))
        self.synonyms: dict[str, str] = {}
        self.canonical_label: dict[str, str] = {}
        for canonical, variants in synonyms:
            ckey = self.base(canonical)
            self.canonical_label[ckey] = " ".join(canonical.split())
            for v in variants:
                vkey = self.base(v)
                if vkey != ckey:
                    self.synonyms[vkey] = ckey

    def base(self, phrase: str) -> str:
        """The key of a phrase before synonyms are applied."""
        s = unicodedata.normalize("NFKC", phrase).lower().replace("\u2010", "-").replace("\u2013", "-")
        s = s.replace("'s ", " ").replace("\u2019s ", " ")
        s = _PUNCT.sub(" ", s).replace("_", " ")
        if self.hyphens == "space":
            s = s.replace("-", " ")
        elif self.hyphens == "join":
            s = s.replace("-", "")
        words = [w.strip("-") for w in s.split()]
        words = [w for w in words if w]
        if self.lemmatize:
            words = [singular(w) for w in words]
        return " ".join(words)

    def key(self, phrase: str) -> str:
        """The key of a phrase: normalised, then mapped through the synonyms ('' for nothing)."""
        k = self.base(phrase)
        return self.synonyms.get(k, k)

    def spelling(self, phrase: str) -> str:
        """How a phrase is shown: whitespace collapsed, lower case except acronyms (``CNN``, ``LBP-TOP``)."""
        words = unicodedata.normalize("NFKC", phrase).strip(" .,;:()[]{}\"'").split()
        return " ".join(w if _ACRONYM.match(w) else w.lower() for w in words)

    def is_stop(self, key: str, extracted: bool) -> bool:
        """Whether a term is no term: empty, a number, one character, a stop word; an extracted
        phrase also when any of its words is a stop word (keywords are the author's choice)."""
        if len(key) < 2 or key.replace(" ", "").isdigit() or key in self.stopwords:
            return True
        words = key.split()
        if all(w.isdigit() or len(w) < 2 for w in words):
            return True
        return extracted and any(w in self.stopwords or w.isdigit() for w in words)


# -- keyphrase extraction --------------------------------------------------------------------

_SPLIT = re.compile(r"[.,;:!?()\[\]{}\"\u201c\u201d/|]+|\s[-\u2013\u2014]\s")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-+']*")


def ngram_phrases(text: str, n_min: int, n_max: int, stopwords: set[str]) -> list[str]:
    """Word n-grams of ``text`` that cross no punctuation, stop word or number: a cheap stand-in
    for noun phrases (the candidate rule of RAKE; Rose et al. 2010)."""
    out: list[str] = []
    for chunk in _SPLIT.split(text):
        run: list[str] = []
        for tok in [*_TOKEN.findall(chunk), ""]:
            low = tok.lower()
            if tok and low not in stopwords and not low.replace("-", "").isdigit():
                run.append(tok)
                continue
            for n in range(n_min, n_max + 1):
                out += [" ".join(run[i:i + n]) for i in range(len(run) - n + 1)]
            run = []
    seen: set[str] = set()
    return [p for p in out if not (p.lower() in seen or seen.add(p.lower()))]


def yake_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("yake") is not None


class _Yake:
    def __init__(self, n_max: int, top: int) -> None:
        import yake

        self.top = top
        self._kw = yake.KeywordExtractor(lan="en", n=n_max, top=top * 3, dedup_lim=0.9)

    def __call__(self, text: str) -> list[str]:
        if not text.strip():
            return []
        return [kw for kw, _score in self._kw.extract_keywords(text)]


# -- the term table --------------------------------------------------------------------------

@dataclass
class Terms:
    """Terms per document and their counts.

    ``docs[i]``: the keys of record ``i``'s terms (every term, before ``min_freq``).
    ``occurrences``: documents per key. ``labels``: key -> shown spelling. ``sources``: key ->
    the fields it came from. ``kept``: keys with at least ``min_freq`` documents, most frequent
    first (ties by key). ``extractor``: the keyphrase extractor that ran.
    """

    docs: list[set[str]]
    occurrences: Counter[str]
    labels: dict[str, str]
    sources: dict[str, set[str]]
    kept: list[str]
    extractor: str
    spellings: dict[str, Counter[str]] = field(default_factory=dict)


def make_normaliser(settings: LitmapSettings) -> Normaliser:
    stop = set(STOPWORDS) | set(settings.stopwords)
    if settings.stopwords_file:
        stop |= set(read_word_list(settings.stopwords_file))
    syn = read_synonyms(settings.synonyms_file) if settings.synonyms_file else []
    return Normaliser(stop, syn, lemmatize=settings.lemmatize, hyphens=settings.hyphens)


def resolve_extractor(name: str) -> str:
    if name == "yake" and not yake_available():
        raise ConfigError("litmap option extractor='yake' needs the yake package (pip install yake)")
    if name == "auto":
        return "yake" if yake_available() else "ngram"
    return name


def extract_terms(records: Sequence[Record], settings: LitmapSettings,
                  normaliser: Normaliser | None = None) -> Terms:
    """Every record's terms, counted once per record, and the terms kept by ``min_freq``."""
    norm = normaliser or make_normaliser(settings)
    extractor = resolve_extractor(settings.extractor) if {"title", "abstract"} & set(settings.fields) else "none"
    lo, hi = settings.ngram_range
    yk = _Yake(hi, settings.keyphrases_per_doc) if extractor == "yake" else None
    docs: list[set[str]] = []
    spellings: dict[str, Counter[str]] = {}
    sources: dict[str, set[str]] = {}
    for r in records:
        found: set[str] = set()

        def usable(phrase: str, extracted: bool) -> str:
            key = norm.key(phrase)
            if norm.is_stop(key, extracted) or (extracted and not lo <= len(key.split()) <= hi):
                return ""
            return key

        def add(phrase: str, key: str, source: str) -> None:
            found.add(key)
            spellings.setdefault(key, Counter())[norm.spelling(phrase)] += 1
            sources.setdefault(key, set()).add(source)

        raw: list[str] = []
        for fld in ("author_keywords", "index_keywords"):
            if fld in settings.fields:
                for kw in getattr(r, fld):
                    if key := usable(kw, extracted=False):
                        add(kw, key, fld)
                        raw.append(norm.base(kw))
        text = ". ".join(t for t, f in ((r.title, "title"), (r.abstract, "abstract"))
                         if t and f in settings.fields)
        if extractor != "none" and text:
            if yk is not None:
                picked: list[tuple[str, str]] = []
                for ph in yk(text):
                    if len(picked) >= settings.keyphrases_per_doc:
                        break
                    if (key := usable(ph, extracted=True)) and key not in (k for _, k in picked):
                        picked.append((ph, key))
                # YAKE also returns parts of its phrases ("optical", "convolutional neural" beside
                # "convolutional neural network"); a part of a longer term of the same document
                # only repeats it, so the document counts the longer term alone
                # (compared before synonyms too: "facial micro-expression" may be shown as
                # "micro-expression", and it still holds "facial")
                longer = found | {k for _, k in picked} | set(raw) | {norm.base(ph) for ph, _ in picked}
                for ph, key in picked:
                    base = norm.base(ph)
                    if not any(o not in (key, base) and (f" {key} " in f" {o} " or f" {base} " in f" {o} ")
                               for o in longer):
                        add(ph, key, "text")
            else:
                for ph in ngram_phrases(text, lo, hi, norm.stopwords):
                    if key := usable(ph, extracted=True):
                        add(ph, key, "text")
        docs.append(found)
    occ: Counter[str] = Counter()
    for d in docs:
        occ.update(d)
    labels = {}
    for key, sp in spellings.items():
        labels[key] = norm.canonical_label.get(key) or min(sp, key=lambda s: (-sp[s], s))
    kept = sorted((k for k, c in occ.items() if c >= settings.min_freq), key=lambda k: (-occ[k], k))
    log.info("%d distinct terms, %d occur in at least %d documents (extractor: %s)", len(occ), len(kept),
             settings.min_freq, extractor)
    return Terms(docs, occ, labels, sources, kept, extractor, spellings)
