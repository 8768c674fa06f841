"""The one table every loader returns: one row per sample, the same columns for every corpus.

Downstream stages (preprocessing, protocols, models, reports) read only this table; no
stage goes back to a corpus's coding sheet. Rows are addressed by ``sample_id``, never
by position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mekit.errors import DataError

#: Columns in order, with what each holds.
COLUMNS: dict[str, str] = {
    "sample_id": "unique, stable id, e.g. 'casme2/sub01/EP02_01f'",
    "dataset": "registered loader name that produced the row, e.g. 'casme2'",
    "subject": "subject qualified by dataset, e.g. 'casme2/sub01' (never collides across corpora)",
    "clip": "clip or file name as the corpus writes it",
    "media": "what `path` points to: 'frames' (a folder), 'image', 'video' or 'flow'",
    "path": "absolute path of the frame folder, image, video or flow image",
    "frame_template": "for media='frames': file name with '{frame}' placeholder, e.g. 'reg_img{frame}.jpg'",
    "onset": "onset frame number (nullable)",
    "apex": "apex frame number (nullable: empty where the corpus has none, for spotting later)",
    "offset": "offset frame number (nullable)",
    "fps": "frame rate (nullable for still images)",
    "emotion": "emotion exactly as the corpus writes it",
    "label": "label after the chosen label scheme (the canonical emotion when no scheme is applied)",
    "action_units": "tuple of AU tokens, intensity letters and L/R prefixes kept, e.g. ('4', 'L12A')",
    "intensity": "optional 0-1 intensity (nullable)",
    "split": "'train'/'test' (or sub-split) where the corpus ships a split, else empty",
}

_INT_COLS = ("onset", "apex", "offset")
_FLOAT_COLS = ("fps", "intensity")
MEDIA = ("frames", "image", "video", "flow")


@dataclass
class Problem:
    """One excluded or suspicious sample, with the reason."""

    sample: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"sample": self.sample, "reason": self.reason}


@dataclass
class LoadReport:
    """What a loader (or a label scheme) saw besides the rows it kept."""

    missing: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)  # emotion -> count dropped by a scheme
    notes: list[str] = field(default_factory=list)
    label_mapping: dict[str, str] = field(default_factory=dict)  # raw class name -> canonical
    #: sample id -> where its label was read ('CASME2.xlsx row 12', 'annotations.csv row 5'), so
    #: a label refused later (by a scheme, or as a typo) is reported at its cell, not only by id.
    sources: dict[str, str] = field(default_factory=dict)
    #: For a composite (MEGC 2019): corpus -> samples it contributed. Empty for one corpus.
    corpora: dict[str, int] = field(default_factory=dict)
    #: For a composite loaded with ``allow_partial``: corpus -> why it is absent.
    corpora_absent: dict[str, str] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        """True for a composite that lacks one of its corpora (see :attr:`corpora_absent`)."""
        return bool(self.corpora_absent)

    def add_problem(self, sample: str, reason: str) -> None:
        self.problems.append(Problem(str(sample), reason))

    def where(self, sample: str) -> str:
        """Where the sample's label was read, for messages ('' when unknown)."""
        return self.sources.get(str(sample), "")

    def merge(self, other: LoadReport) -> LoadReport:
        out = LoadReport(
            missing=self.missing + other.missing,
            problems=self.problems + other.problems,
            dropped=dict(self.dropped),
            notes=self.notes + other.notes,
            label_mapping={**self.label_mapping, **other.label_mapping},
            sources={**self.sources, **other.sources},
            corpora=dict(self.corpora),
            corpora_absent={**self.corpora_absent, **other.corpora_absent},
        )
        for k, v in other.dropped.items():
            out.dropped[k] = out.dropped.get(k, 0) + v
        for k, v in other.corpora.items():
            out.corpora[k] = out.corpora.get(k, 0) + v
        return out


class SampleTable:
    """A validated DataFrame of samples plus the loader's report.

    ``table.df`` is the frame (columns :data:`COLUMNS`, plus any extra columns a corpus
    carries, such as ``objective_class``). It is indexed by position but every
    operation that matters keys on ``sample_id``.

    ``table.scheme`` is the label scheme (a :class:`~mekit.data.labels.LabelScheme`) that
    produced the ``label`` column, or None when labels are canonical emotion names. It is
    part of the table, not of the frame: a subset keeps it, so the runner, the bundle and
    the reports of a fold read the same class order as the whole corpus.
    """

    def __init__(self, df: pd.DataFrame, report: LoadReport | None = None, name: str = "",
                 scheme: Any = None) -> None:
        self.df = normalise_frame(df)
        self.report = report or LoadReport()
        self.name = name
        self.scheme = scheme
        validate(self.df)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_records(cls, records: list[dict[str, Any]], report: LoadReport | None = None,
                     name: str = "", scheme: Any = None) -> SampleTable:
        return cls(pd.DataFrame.from_records(records, columns=None if records else list(COLUMNS)),
                   report, name, scheme)

    # -- views ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.df)

    def __repr__(self) -> str:
        return (f"SampleTable({self.name or 'samples'}: {len(self)} samples, "
                f"{self.df['subject'].nunique()} subjects, classes={self.class_counts()})")

    @property
    def sample_ids(self) -> list[str]:
        return self.df["sample_id"].tolist()

    @property
    def subjects(self) -> list[str]:
        return sorted(self.df["subject"].unique().tolist())

    @property
    def classes(self) -> list[str]:
        """Labels present, sorted (a label scheme's own order is in the scheme)."""
        return sorted(self.df["label"].dropna().unique().tolist())

    def class_counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.df["label"].value_counts(dropna=True).sort_index().items()}

    def row(self, sample_id: str) -> pd.Series:
        hit = self.df.loc[self.df["sample_id"] == sample_id]
        if hit.empty:
            raise KeyError(sample_id)
        return hit.iloc[0]

    def subset(self, mask_or_ids: Any) -> SampleTable:
        """Rows selected by a boolean mask or a list of sample ids; the report and scheme are kept."""
        if isinstance(mask_or_ids, pd.Series) and mask_or_ids.dtype == bool:
            df = self.df.loc[mask_or_ids.values]
        else:
            ids = list(mask_or_ids)
            pos = {s: i for i, s in enumerate(ids)}
            df = self.df.loc[self.df["sample_id"].isin(pos)]
            df = df.iloc[df["sample_id"].map(pos).argsort()]
        return SampleTable(df.reset_index(drop=True), self.report, self.name, self.scheme)

    def concat(self, *others: SampleTable, name: str = "") -> SampleTable:
        """Rows of this table then of ``others``. The scheme is kept when every table has the
        same one; tables labelled by different schemes (or one by none) mix label spaces, so
        the result claims none."""
        rep = self.report
        for o in others:
            rep = rep.merge(o.report)
        df = pd.concat([self.df] + [o.df for o in others], ignore_index=True)
        schemes = [getattr(t, "scheme", None) for t in (self, *others)]
        scheme = schemes[0] if all(s == schemes[0] for s in schemes[1:]) else None
        return SampleTable(df, rep, name or self.name, scheme)

    def frame_path(self, sample_id_or_row: Any, frame: int) -> Path:
        """Path of frame number ``frame`` of a frame-folder clip."""
        r = self.row(sample_id_or_row) if isinstance(sample_id_or_row, str) else sample_id_or_row
        return frame_path(r, frame)


def frame_path(row: Any, frame: int) -> Path:
    if row["media"] != "frames":
        raise DataError(f"sample {row['sample_id']} is a {row['media']}, not a frame folder")
    return Path(row["path"]) / str(row["frame_template"]).format(frame=int(frame))


def normalise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Add absent optional columns and coerce dtypes (nullable ints for frame numbers)."""
    df = df.copy()
    for col in COLUMNS:
        if col not in df.columns:
            df[col] = None
    for col in _INT_COLS:
        df[col] = pd.array(pd.to_numeric(df[col], errors="raise"), dtype="Int64") if len(df) else \
            pd.array([], dtype="Int64")
    for col in _FLOAT_COLS:
        df[col] = pd.to_numeric(df[col], errors="raise").astype("float64") if len(df) else \
            pd.Series([], dtype="float64")
    df["action_units"] = [tuple(a) if isinstance(a, (list, tuple)) else
                          (tuple(parse_action_units(a)) if isinstance(a, str) else ())
                          for a in df["action_units"]]
    # Plain Python strings (object dtype), missing values as None: Arrow/NA-backed strings
    # break scikit-learn indexing and make `x != x` checks ambiguous.
    for col in ("sample_id", "dataset", "subject", "clip", "media", "path", "emotion", "label", "split"):
        df[col] = pd.Series([None if _missing(v) else str(v) for v in df[col]], index=df.index, dtype=object)
    extra = [c for c in df.columns if c not in COLUMNS]
    return df[list(COLUMNS) + extra].reset_index(drop=True)


def _missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def validate(df: pd.DataFrame) -> None:
    """Structural checks every table must pass (loaders report per-sample problems themselves)."""
    if df["sample_id"].isna().any():
        raise DataError("a sample has no sample_id")
    dup = df["sample_id"][df["sample_id"].duplicated()].tolist()
    if dup:
        raise DataError(f"duplicate sample ids: {dup[:5]}", expected="unique sample ids")
    bad_media = sorted(set(df["media"].dropna()) - set(MEDIA))
    if bad_media:
        raise DataError(f"unknown media kinds {bad_media}", expected=f"one of {MEDIA}")
    for sid, subj, ds in zip(df["sample_id"], df["subject"], df["dataset"]):
        if not isinstance(subj, str) or not subj.startswith(f"{ds}/"):
            raise DataError(f"sample {sid}: subject {subj!r} is not qualified by its dataset",
                            expected=f"'{ds}/<subject>'")


# -- action units -------------------------------------------------------------------------
#: Cell texts that mean "no action unit".
_NO_AU = frozenset({"nan", "none", "/", "-"})
_AU_TOKEN = re.compile(r"^(?P<side>[LRBUT]?)(?:AU)?(?P<num>\d+)(?P<int>[A-E]?)$", re.IGNORECASE)


def parse_action_units(text: Any) -> list[str]:
    """Parse an AU cell into tokens, keeping side prefixes and FACS intensity letters.

    ``'4+L12A'`` -> ``['4', 'L12A']``; ``'(R6 or R12)+R15'`` -> ``['R6/R12', 'R15']``
    (alternatives joined by '/'); ``'AU1, AU2'`` -> ``['1', '2']``. Unknown text is kept
    verbatim as one token rather than dropped, so nothing the corpus says is lost.
    """
    if text is None or (isinstance(text, float) and text != text):
        return []
    s = str(text).strip()
    if not s or s.lower() in _NO_AU:
        return []
    # A number cell is one AU (4 or 4.0 -> '4'); only whole finite numbers lose their '.0', so
    # inf or 4.5 stay as written rather than raise or be rounded into another AU.
    if isinstance(text, float) and text.is_integer():
        s = str(int(text))
    tokens: list[str] = []
    for part in re.split(r"\s*[+,;&]\s*", s):
        part = part.strip().strip("()").strip()
        # A part that says "none" ('4+-') is no AU, as the whole cell saying it is; kept as a
        # token it would not survive a round trip ('-' alone parses to no AU at all).
        if not part or part.lower() in _NO_AU:
            continue
        alts = re.split(r"\s+or\s+|/", part, flags=re.IGNORECASE)
        parsed = []
        for a in alts:
            a = a.strip().strip("()").strip()
            m = _AU_TOKEN.match(a.replace(" ", ""))
            parsed.append(f"{m['side'].upper()}{int(m['num'])}{m['int'].upper()}" if m else a)
        tokens.append("/".join(parsed))
    return tokens


def au_intensity(tokens: tuple[str, ...] | list[str]) -> float | None:
    """Strongest FACS intensity letter among the tokens, A..E -> 0.2..1.0 (None if no letter)."""
    best = None
    for tok in tokens:
        for m in re.finditer(r"\d+([A-E])", tok):
            v = (ord(m.group(1)) - ord("A") + 1) / 5.0
            best = v if best is None else max(best, v)
    return best
