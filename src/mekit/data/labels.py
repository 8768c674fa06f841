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

from mekit.config import DuplicateKeyError, UniqueKeyLoader
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


#: Top-level keys of a label-scheme YAML file.
SCHEME_KEYS = ("name", "classes", "mapping", "per_dataset", "description")


def _scheme_name(value: object, p: Path, key: str, what: str) -> str:
    """A class or emotion name in a scheme file: text (or a whole number, as SMIC codes are).

    YAML turns ``null``/``~``/an empty value into None, ``yes``/``no`` into booleans and
    lists into lists; none of those is a name, and ``str()`` of them ('None', 'True',
    "['a']") would silently become a class.
    """
    if isinstance(value, bool) or value is None or not isinstance(value, (str, int)):
        shown = "empty (null)" if value is None else f"{value!r} ({type(value).__name__})"
        raise ConfigError(f"{p}: {key} is {shown}; expected {what}")
    text = str(value).strip()
    if not text:
        raise ConfigError(f"{p}: {key} is an empty name; expected {what}")
    return text


def _emotion_map(raw: object, p: Path, key: str, classes: tuple[str, ...] | None) -> dict[str, str]:
    """``{emotion: class}`` of one mapping in the file, canonical keys, every value checked."""
    if not isinstance(raw, dict):
        kind = "a list" if isinstance(raw, list) else f"{raw!r}"
        raise ConfigError(f"{p}: {key} is {kind}; expected a mapping of emotion -> class "
                          "(lines like 'happiness: positive')")
    out: dict[str, str] = {}
    first: dict[str, str] = {}
    for k, v in raw.items():
        emo = canonical(_scheme_name(k, p, f"{key} key {k!r}", "an emotion name"))
        # a key with a line break or control character is shown quoted, so the message stays one line
        shown = str(k) if str(k).isprintable() else repr(k)
        cls = _scheme_name(v, p, f"{key}.{shown}", "a class name (leave the emotion out to drop it)")
        if classes is not None and cls not in classes:
            raise ConfigError(f"{p}: {key}.{shown} maps to {cls!r}, which is not in classes {list(classes)}")
        if emo in out and out[emo] != cls:
            raise ConfigError(f"{p}: {key} maps {first[emo]!r} to {out[emo]!r} and {k!r} to {cls!r}, but "
                              f"both mean the emotion {emo!r}; expected one class per emotion")
        out[emo] = cls
        first.setdefault(emo, str(k))
    return out


def load_scheme_yaml(path: str | Path) -> LabelScheme:
    """A user scheme: ``name``, ``classes`` (ordered) and ``mapping`` (emotion -> class).

    Optional ``per_dataset: {dataset: {emotion: class}}`` and ``description``. Emotions not
    in the mapping are dropped. Every mistake is one :class:`ConfigError` naming the file and
    the key: a list where a mapping belongs, an empty (null) class, a string for
    ``classes``, a target not among the classes, fewer than two classes, a class no emotion
    maps to, a key written twice, an unknown top-level key.
    """
    p = Path(path)
    try:
        d = yaml.load(p.read_text(encoding="utf-8-sig"), Loader=UniqueKeyLoader)  # noqa: S506 - safe subclass
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read label scheme ({e})") from None
    except DuplicateKeyError as e:
        raise ConfigError(f"{p}: not valid YAML (line {e.line}): key {e.key!r} appears twice in one mapping") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"{p}: not valid YAML{line}: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(d, dict) or "mapping" not in d:
        got = "an empty file" if d is None else (f"keys {sorted(map(str, d))}" if isinstance(d, dict) else
                                                  f"a {type(d).__name__}")
        raise ConfigError(f"{p}: a label scheme needs a 'mapping' of emotion -> class; got {got}")
    unknown = sorted(str(k) for k in d if k not in SCHEME_KEYS)
    if unknown:
        raise ConfigError(f"{p}: unknown key(s) {unknown}; expected {', '.join(SCHEME_KEYS)}")

    classes: tuple[str, ...] | None = None
    if d.get("classes") is not None:
        raw = d["classes"]
        if isinstance(raw, str):
            # tuple('abc') would be the classes a, b, c.
            raise ConfigError(f"{p}: classes is the string {raw!r}; expected a list, e.g. "
                              "classes: [negative, positive, surprise]")
        if not isinstance(raw, list):
            raise ConfigError(f"{p}: classes is {raw!r}; expected a list of class names")
        classes = tuple(_scheme_name(c, p, f"classes[{i}]", "a class name") for i, c in enumerate(raw))
        dup = sorted({c for c in classes if classes.count(c) > 1})
        if dup:
            raise ConfigError(f"{p}: classes lists {dup} more than once; expected each class once")
    mapping = _emotion_map(d["mapping"], p, "mapping", classes)
    per_raw = d.get("per_dataset")
    per: dict[str, dict[str, str]] = {}
    if per_raw is not None:
        if not isinstance(per_raw, dict):
            raise ConfigError(f"{p}: per_dataset is {per_raw!r}; expected a mapping of dataset -> "
                              "{emotion: class}")
        for ds, m in per_raw.items():
            name = _scheme_name(ds, p, f"per_dataset key {ds!r}", "a dataset (loader) name")
            per[name] = _emotion_map(m, p, f"per_dataset.{name}", classes)
    if classes is None:
        classes = tuple(dict.fromkeys([*mapping.values(), *(c for m in per.values() for c in m.values())]))
    if len(classes) < 2:
        raise ConfigError(f"{p}: the scheme has {len(classes)} class(es) {list(classes)}; expected at least 2 "
                          "(a classifier needs something to tell apart)")
    reached = set(mapping.values()) | {c for m in per.values() for c in m.values()}
    unreached = [c for c in classes if c not in reached]
    if unreached:
        raise ConfigError(f"{p}: classes {unreached} are listed but no mapping entry leads to them; "
                          "expected every class to be the target of at least one emotion")
    name = d.get("name", p.stem)
    name = _scheme_name(name, p, "name", "a scheme name") if name is not None else p.stem
    desc = d.get("description")
    return LabelScheme(name, classes, mapping, per, "" if desc is None else str(desc))


def get_scheme(name_or_path: str | LabelScheme) -> LabelScheme:
    if isinstance(name_or_path, LabelScheme):
        return name_or_path
    s = str(name_or_path)
    if s.endswith((".yaml", ".yml")):
        return load_scheme_yaml(s)
    return SCHEMES.get(s)


#: Every emotion name mekit recognises (synonyms and canonical names), lower-case.
KNOWN_NAMES: frozenset[str] = frozenset(CANONICAL) | frozenset(CANONICAL.values())


def is_known(name: object) -> bool:
    """True when ``name`` is an emotion name mekit knows (any case, synonyms included)."""
    return str(name).strip().lower() in KNOWN_NAMES


def _scheme_vocabulary(sc: LabelScheme) -> set[str]:
    """Canonical emotions a scheme names anywhere (its mapping or a per-dataset mapping)."""
    return set(sc.mapping) | {e for m in sc.per_dataset.values() for e in m}


def _where(report, sid: str, path: object) -> str:
    src = report.where(sid)
    return src if src else (f"{path}" if path else sid)


def apply_scheme(table, scheme: str | LabelScheme | None):
    """Return a new SampleTable labelled by ``scheme``; dropped emotions are counted in the report.

    With ``scheme=None`` the label is the canonical emotion name. An emotion the scheme does
    not map is dropped and counted in ``report.dropped``; when it is not even an emotion
    name (not one mekit knows, not one the scheme names: a typo like 'banana'), the drop is
    also a problem row naming where the label was read, the value and the names expected.
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
    problems = LoadReport()
    vocab = _scheme_vocabulary(sc)
    expected = sorted(vocab)
    for sid, e, path in zip(df.loc[~keep, "sample_id"], df.loc[~keep, "emotion"], df.loc[~keep, "path"]):
        dropped[str(e)] = dropped.get(str(e), 0) + 1
        if e is None or e != e:
            continue
        if not is_known(e) and canonical(e) not in vocab:
            problems.add_problem(sid, f"{_where(table.report, sid, path)}: label {e!r} is not an emotion "
                                      f"scheme {sc.name} knows; expected one of {expected}; sample dropped")
    rep = table.report.merge(LoadReport(dropped=dropped, problems=problems.problems,
                                        notes=[f"label scheme {sc.name}: kept {int(keep.sum())}, "
                                               f"dropped {int((~keep).sum())}"]))
    return SampleTable(df.loc[keep].reset_index(drop=True), rep, table.name, sc)


def screen_labels(table):
    """Without a scheme: drop labels that are not emotion names mekit knows, as problem rows.

    A typo ('banana' among 'happy' and 'sad') must not become a class of its own. But a
    user's dataset may have its own vocabulary ('pain', 'no_pain'), so the rule is:

    - some labels are known emotion names and some are not: the unknown ones are taken
      for typos; their samples are dropped, each with a problem row naming where the
      label was read, the value and the names expected (and how to keep them: a label
      scheme that maps them);
    - no label is a known name: the dataset has its own classes; they are kept as they
      are, with a note and a warning listing them, since a typo cannot be told from a
      class then.

    Unlabelled samples (prediction inputs) are kept as they are.
    """
    import logging

    from mekit.data.schema import LoadReport, SampleTable

    df = table.df
    labelled = df["label"].notna()
    if not labelled.any():
        return table
    raw = [e if e is not None and e == e else lab for e, lab in zip(df["emotion"], df["label"])]
    known = [lab is None or lab != lab or is_known(lab) for lab in df["label"]]
    unknown_names = sorted({str(lab) for lab, k in zip(df["label"], known) if not k})
    if not unknown_names:
        return table
    if not any(k for k, has in zip(known, labelled) if has):
        msg = (f"labels {unknown_names} are not emotion names mekit knows; kept as this dataset's own "
               "classes (check their spelling: a typo cannot be told from a class here)")
        logging.getLogger(__name__).warning("%s: %s", table.name or "dataset", msg)
        return SampleTable(df, table.report.merge(LoadReport(notes=[msg])), table.name)
    rep = LoadReport()
    expected = sorted(set(CANONICAL.values()))
    drop = [not k for k in known]
    for sid, lab, r, path, bad in zip(df["sample_id"], df["label"], raw, df["path"], drop):
        if bad:
            rep.add_problem(sid, f"{_where(table.report, sid, path)}: label {r!r} is not an emotion name mekit "
                                 f"knows; expected one of {expected} (a label scheme that maps it keeps it); "
                                 "sample dropped")
    rep.notes.append(f"dropped {sum(drop)} sample(s) whose label is not an emotion name: {unknown_names}")
    keep = [not b for b in drop]
    out = SampleTable(df.loc[keep].reset_index(drop=True), table.report.merge(rep), table.name)
    return out


def check_trainable(table, classes: list[str] | tuple[str, ...] | None = None, min_samples: int = 2,
                    min_subjects: int = 2) -> None:
    """Refuse a table a classifier cannot be trained and evaluated on honestly.

    Every class (``classes``, else the table's scheme's classes, else the labels present)
    needs at least ``min_samples`` labelled samples from at least ``min_subjects``
    subjects: with one sample a class is never in both a training and a test fold, and with
    one subject leave-one-subject-out tests it on a model that never saw it. Raises one
    :class:`DataError` naming every such class with its counts.
    """
    from mekit.errors import DataError

    df = table.df.loc[table.df["label"].notna()]
    if classes is None:
        sc = getattr(table, "scheme", None)
        classes = sc.classes if sc is not None else sorted(df["label"].unique().tolist())
    if len(classes) < 2:
        raise DataError(f"{table.name or 'the dataset'} has {len(classes)} class(es) {list(classes)}",
                        expected="at least 2 classes to train a classifier")
    bad = []
    for c in classes:
        rows = df.loc[df["label"] == c]
        n, k = len(rows), int(rows["subject"].nunique())
        if n < min_samples or k < min_subjects:
            bad.append(f"{c!r} ({n} sample{'s' if n != 1 else ''}, {k} subject{'s' if k != 1 else ''})")
    if bad:
        raise DataError(f"{table.name or 'the dataset'}: class(es) {', '.join(bad)} are too small to train "
                        "and evaluate", expected=f"at least {min_samples} samples from at least {min_subjects} "
                        "subjects per class (drop or merge such classes with a label scheme)")
