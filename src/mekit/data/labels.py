"""Emotion-name canonicalisation and registered label schemes.

A scheme maps the emotion a corpus writes to a class label (or drops it). Dropped
samples are counted in the table's report, never silently lost. Some mappings depend
on the corpus (MEGC 2019 maps SAMM's sadness to negative but the CASME II part of the
composite drops it), so a scheme may carry per-dataset mappings that take precedence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mekit.errors import ConfigError
from mekit.registry import Registry

#: Case-insensitive synonyms -> canonical class name (used by image folders and schemes).
CANONICAL: dict[str, str] = {
    "happiness": "happy", "happy": "happy", "joy": "happy",
    "surprise": "surprise", "surprised": "surprise", "suprise": "surprise",
    "anger": "anger", "angry": "anger",
    "sadness": "sad", "sad": "sad",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "fearfull": "fear", "scared": "fear",
    "contempt": "contempt",
    "neutral": "neutral",
    "repression": "repression",
    "others": "others", "other": "others",
    "positive": "positive", "negative": "negative",
}


def canonical(name: str) -> str:
    """Canonical emotion name: lower-cased, synonyms merged; unknown names kept (lower-cased)."""
    key = str(name).strip().lower()
    return CANONICAL.get(key, key)


@dataclass(frozen=True)
class LabelScheme:
    """Ordered classes and a mapping from canonical emotion names to them."""

    name: str
    classes: tuple[str, ...]
    mapping: dict[str, str]  # canonical emotion -> class
    per_dataset: dict[str, dict[str, str]] = field(default_factory=dict)
    description: str = ""

    def map(self, emotion: str, dataset: str | None = None) -> str | None:
        key = canonical(emotion)
        if dataset is not None and dataset in self.per_dataset:
            return self.per_dataset[dataset].get(key)
        return self.mapping.get(key)

    def describe(self) -> str:
        lines = [f"{self.name}: {', '.join(self.classes)}"]
        for emo, cls in sorted(self.mapping.items()):
            lines.append(f"  {emo} -> {cls}")
        for ds, m in sorted(self.per_dataset.items()):
            lines.append(f"  [{ds}] " + ", ".join(f"{e}->{c}" for e, c in sorted(m.items())))
        return "\n".join(lines)


SCHEMES: Registry[LabelScheme] = Registry("label scheme")


def _scheme(name: str, classes: list[str], mapping: dict[str, str], description: str,
            per_dataset: dict[str, dict[str, str]] | None = None) -> None:
    SCHEMES.add(name, LabelScheme(name, tuple(classes), {canonical(k): v for k, v in mapping.items()},
                                  {d: {canonical(k): v for k, v in m.items()} for d, m in (per_dataset or {}).items()},
                                  description))


_scheme("casme2_5class", ["happiness", "disgust", "repression", "surprise", "others"],
        {"happy": "happiness", "disgust": "disgust", "repression": "repression",
         "surprise": "surprise", "others": "others"},
        "CASME II 5-class LOSO literature set; sadness and fear are dropped.")
_scheme("casme2_4class", ["positive", "negative", "surprise", "other"],
        {"happy": "positive", "disgust": "negative", "fear": "negative", "repression": "negative",
         "sad": "negative", "anger": "negative", "contempt": "negative",
         "surprise": "surprise", "others": "other", "positive": "positive", "negative": "negative"},
        "4-class: positive = happiness; negative = disgust, fear, repression, sadness; surprise; other.")
_MEGC_SAMM = {"anger": "negative", "contempt": "negative", "disgust": "negative", "fear": "negative",
              "sad": "negative", "happy": "positive", "surprise": "surprise"}
_scheme("megc_3class", ["negative", "positive", "surprise"],
        {"negative": "negative", "positive": "positive", "surprise": "surprise",
         "disgust": "negative", "repression": "negative", "happy": "positive"},
        "MEGC 2019 composite: CASME II disgust+repression -> negative, happiness -> positive; "
        "SAMM anger/contempt/disgust/fear/sadness -> negative; SMIC labels as they are; "
        "others (and CASME II sadness/fear) dropped.",
        per_dataset={
            "casme2": {"disgust": "negative", "repression": "negative", "happy": "positive",
                       "surprise": "surprise"},
            "samm": _MEGC_SAMM,
            "smic": {"negative": "negative", "positive": "positive", "surprise": "surprise"},
        })
_scheme("basic7", ["anger", "contempt", "disgust", "fear", "happy", "sad", "surprise"],
        {e: e for e in ["anger", "contempt", "disgust", "fear", "happy", "sad", "surprise"]},
        "Seven basic emotions as CK+ labels them (six basic + contempt).")
_scheme("six_class", ["anger", "disgust", "fear", "happy", "neutral", "surprise"],
        {e: e for e in ["anger", "disgust", "fear", "happy", "neutral", "surprise"]},
        "The 6-class set anger, disgust, fear, happy, neutral, surprise.")


def load_scheme_yaml(path: str | Path) -> LabelScheme:
    """A user scheme: ``name``, ``classes`` (ordered) and ``mapping`` (emotion -> class).

    Optional ``per_dataset: {dataset: {emotion: class}}``. Emotions not in the mapping are dropped.
    """
    p = Path(path)
    try:
        d = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{p}: cannot read label scheme ({e})") from None
    if not isinstance(d, dict) or "mapping" not in d:
        raise ConfigError(f"{p}: a label scheme needs a 'mapping' of emotion -> class")
    mapping = {canonical(k): str(v) for k, v in d["mapping"].items()}
    classes = tuple(d.get("classes") or dict.fromkeys(mapping.values()))
    unknown = sorted(set(mapping.values()) - set(classes))
    if unknown:
        raise ConfigError(f"{p}: mapping targets {unknown} are not in classes {list(classes)}")
    per = {ds: {canonical(k): str(v) for k, v in m.items()} for ds, m in (d.get("per_dataset") or {}).items()}
    return LabelScheme(str(d.get("name", p.stem)), classes, mapping, per, str(d.get("description", "")))


def get_scheme(name_or_path: str | LabelScheme) -> LabelScheme:
    if isinstance(name_or_path, LabelScheme):
        return name_or_path
    s = str(name_or_path)
    if s.endswith((".yaml", ".yml")):
        return load_scheme_yaml(s)
    return SCHEMES.get(s)


def apply_scheme(table, scheme: str | LabelScheme | None):
    """Return a new SampleTable labelled by ``scheme``; dropped emotions are counted in the report.

    With ``scheme=None`` the label is the canonical emotion name.
    """
    from mekit.data.schema import LoadReport, SampleTable

    df = table.df.copy()
    if scheme is None:
        df["label"] = [None if e is None or e != e else canonical(e) for e in df["emotion"]]
        return SampleTable(df, table.report, table.name)
    sc = get_scheme(scheme)
    labels = [None if e is None or e != e else sc.map(e, ds) for e, ds in zip(df["emotion"], df["dataset"])]
    df["label"] = labels
    keep = df["label"].notna()
    dropped: dict[str, int] = {}
    for e in df.loc[~keep, "emotion"]:
        dropped[str(e)] = dropped.get(str(e), 0) + 1
    rep = table.report.merge(LoadReport(dropped=dropped,
                                        notes=[f"label scheme {sc.name}: kept {int(keep.sum())}, "
                                               f"dropped {int((~keep).sum())}"]))
    out = SampleTable(df.loc[keep].reset_index(drop=True), rep, table.name)
    out.scheme = sc  # type: ignore[attr-defined]
    return out
