"""Scoring micro- and macro-expression spotting in long videos, as the MEGC challenges do.

Definitions (and where they come from):

- **True positive.** A spotted interval ``S`` and a ground-truth interval ``G`` of the same video
  match when ``|S ∩ G| / |S ∪ G| >= 0.5``, counting frames with both ends included (an interval
  from onset 10 to offset 19 has 10 frames). This is the criterion of the first spotting
  challenge (Li, Soladie, Seguier, Wang & Yap, "Spotting micro-expressions on long videos
  sequences", FG 2019 / arXiv:1812.10306, threshold k = 0.5) kept by every MEGC since
  (MEGC 2020: He, Wang, Li et al., arXiv:1912.11985; MEGC 2021-2024). An IoU of exactly 0.5
  counts; the comparison is made on the integer frame counts (``inter >= t * union``), so no
  rounding decides an edge case.
- **One-to-one.** Each ground truth is matched at most once and each spotted interval at most
  once. Matching is the *optimal* one-to-one assignment: the largest possible number of matched
  pairs, and among those the largest total IoU (``scipy.optimize.linear_sum_assignment``). When
  the truths of a kind do not overlap, a spotted interval reaches two of them at 0.5 only at the
  edge (it covers two adjacent truths exactly half each), so on real submissions this agrees
  with greedy matching; where it does not, greedy can lose a true positive that another pairing
  keeps, and the optimum does not depend on the order the intervals are listed in.
- **Micro, macro, overall.** Spotted intervals carry a ``kind`` (``"micro"`` or ``"macro"``);
  spotted micro-expressions are matched against true micro-expressions, macro against macro,
  and the overall counts are the sums (TP, FP and FN of both), as the MEGC 2020 baseline
  reports them (its overall F1 lies between the two kinds', as pooled counts give). A spotted
  interval without a kind takes one from its length when ``fps`` is given: micro when
  ``(offset - onset + 1) / fps <= 0.5 s``, the duration bound of the long-video corpora
  (CAS(ME)^2, Qu et al., IEEE TAC 2018; SAMM Long Videos, Yap et al., FG 2020).
- **Pooled scores.** TP, FP and FN are summed over every video of the set before precision
  ``TP / (TP + FP)``, recall ``TP / (TP + FN)`` and ``F1 = 2PR / (P + R)`` are computed (Li et
  al. 2019: "the F1-score for spotting performance of the whole database"), never averaged over
  videos. A ratio with a zero denominator is 0.
- **STRS** (spot-then-recognise score): ``STRS = F1_spotting x F1_recognition`` (Liong, See &
  Chan, "Spot-then-recognize: a micro-expression analysis network for seamless evaluation of
  long videos", Signal Processing: Image Communication 110, 116875, 2023; the score of the MEGC
  spot-then-recognise task, megc2025.github.io; MEGC 2023 itself scored spotting only).
  Recognition is scored on the spotting true positives only: each matched pair compares the
  spotted emotion with the true one. Following the authors' reference implementation (the
  ``Evaluator`` of their STRS metric code, whose worked example the tests reproduce), pairs whose
  true emotion is outside the classes are left out; per class ``c`` (one-vs-rest over the pairs)
  precision and recall are computed, averaged over the classes (macro precision ``P``, macro
  recall ``R``), and ``F1_recognition = 2PR / (P + R)``. The per-class counts are taken
  directly: the reference code derives them with ``sklearn.metrics.confusion_matrix(...).ravel()``
  inside a ``try`` that scores a class 0 when its one-vs-rest labels are all equal (a class that
  is always recognised right, say), which is not reproduced here. Its spotting loop also lets
  one spotted interval count once per truth it reaches; here it counts once.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mekit.errors import ConfigError, DataError

__all__ = ["KINDS", "MICRO_MAX_SECONDS", "SUBMISSION_COLUMNS", "Interval", "Match", "RecognitionScores",
           "SpotCounts", "SpotResult", "STRSResult", "as_intervals", "interval_iou", "kind_from_duration",
           "match_intervals", "read_megc_submission", "read_truth_csv", "recognition_scores", "spotting_scores", "strs",
           "write_megc_submission"]

KINDS = ("micro", "macro")

#: Longest micro-expression, seconds (CAS(ME)^2, SAMM Long Videos; MEGC 2020-2024).
MICRO_MAX_SECONDS = 0.5

# Spellings of the kinds in files: the challenges write ME / MaE.
_KIND_ALIASES = {"micro": "micro", "me": "micro", "micro-expression": "micro", "microexpression": "micro",
                 "macro": "macro", "mae": "macro", "macro-expression": "macro", "macroexpression": "macro"}


# -- intervals -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    """One interval of one video: a spotted one, or a ground truth.

    ``onset`` and ``offset`` are frame numbers, both included. ``kind`` is ``"micro"``,
    ``"macro"`` or ``""`` (not given); ``emotion`` is the recognised (or true) class, if any.
    """

    video: str
    onset: int
    offset: int
    kind: str = ""
    emotion: str = ""
    apex: int | None = None
    score: float | None = None

    @property
    def length(self) -> int:
        return self.offset - self.onset + 1


def _kind(value: Any, where: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    k = str(value).strip().lower()
    if k == "":
        return ""
    if k not in _KIND_ALIASES:
        raise DataError(f"{where}: unknown interval kind", value=value,
                        expected="micro or macro (or ME / MaE)")
    return _KIND_ALIASES[k]


def _interval(obj: Any, where: str, video: str | None = None) -> Interval:
    """One interval from an Interval, a mapping (a CSV row, a dict) or an object with
    onset/offset attributes (e.g. :class:`mekit.data.synthetic_long.Episode`)."""
    if isinstance(obj, Interval):
        iv = obj
    else:
        get = obj.get if isinstance(obj, Mapping) else (lambda k, d=None: getattr(obj, k, d))
        vid = get("video", None)
        if vid is None:
            vid = get("vid", video)
        onset = get("onset", None)
        if onset is None:
            onset = get("pred_onset", None)
        offset = get("offset", None)
        if offset is None:
            offset = get("pred_offset", None)
        kind = get("kind", None)
        if kind is None:
            kind = get("type", "")
        try:
            on, off = _frame(onset), _frame(offset)
        except (TypeError, ValueError):
            raise DataError(f"{where}: onset and offset must be whole frame numbers", value=(onset, offset),
                            expected="two integers") from None
        apex = get("apex", None)
        try:
            apex_i = None if apex is None or apex == "" or (isinstance(apex, float) and math.isnan(apex)) \
                else _frame(apex)
        except (TypeError, ValueError):
            raise DataError(f"{where}: apex must be a whole frame number", value=apex) from None
        emotion = get("emotion", "")
        score = get("score", None)
        iv = Interval(video="" if vid is None else str(vid), onset=on, offset=off, kind=_kind(kind, where),
                      emotion="" if emotion is None or (isinstance(emotion, float) and math.isnan(emotion))
                      else str(emotion),
                      apex=apex_i, score=None if score in (None, "") else float(score))
    if not iv.video:
        raise DataError(f"{where}: no video name", expected="every interval names its video")
    if iv.onset < 0 or iv.offset < iv.onset:
        raise DataError(f"{where}: interval of video {iv.video!r} is empty or negative", value=(iv.onset, iv.offset),
                        expected="0 <= onset <= offset (frames, both included)")
    if iv.kind not in ("", *KINDS):
        raise DataError(f"{where}: unknown interval kind", value=iv.kind, expected="micro or macro")
    return iv


def _frame(v: Any) -> int:
    if isinstance(v, bool):
        raise TypeError
    if isinstance(v, (int, np.integer)):
        return int(v)
    f = float(v)
    if not f.is_integer():
        raise ValueError
    return int(f)


def as_intervals(items: Any, what: str = "intervals") -> list[Interval]:
    """Intervals from what a caller has: a list of :class:`Interval`, of mappings (CSV rows,
    dicts with video/onset/offset[/kind/emotion/apex]), of objects with those attributes, a
    pandas DataFrame, or a :class:`mekit.data.synthetic_long.LongVideoTruth` (its events, named
    by its video). Bad rows raise one DataError naming the row and value."""
    if hasattr(items, "events") and hasattr(items, "video") and hasattr(items, "fps"):  # a LongVideoTruth
        return [_interval(e, f"{what} {i}", video=items.video) for i, e in enumerate(items.events)]
    if hasattr(items, "to_dict") and hasattr(items, "columns"):  # a DataFrame
        items = items.to_dict("records")
    return [_interval(x, f"{what} {i}") for i, x in enumerate(items)]


def kind_from_duration(onset: int, offset: int, fps: float) -> str:
    """``"micro"`` when the interval lasts at most :data:`MICRO_MAX_SECONDS` (counted in frames,
    both ends included), else ``"macro"``."""
    if not fps or fps <= 0:
        raise ConfigError(f"fps={fps!r}; expected a positive frame rate to tell micro from macro by length")
    return "micro" if (offset - onset + 1) / fps <= MICRO_MAX_SECONDS + 1e-9 else "macro"


def interval_iou(a_onset: int, a_offset: int, b_onset: int, b_offset: int) -> float:
    """Intersection over union of two frame intervals, both ends included."""
    inter, union = _inter_union(a_onset, a_offset, b_onset, b_offset)
    return inter / union


def _inter_union(a0: int, a1: int, b0: int, b1: int) -> tuple[int, int]:
    inter = max(0, min(a1, b1) - max(a0, b0) + 1)
    return inter, (a1 - a0 + 1) + (b1 - b0 + 1) - inter


# -- matching --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Match:
    """A true positive: ``spotted[spot]`` matched ``truth[truth]`` with this IoU."""

    spot: int
    truth: int
    iou: float


def match_intervals(spotted: Sequence[Interval], truth: Sequence[Interval], threshold: float = 0.5) -> list[Match]:
    """Optimal one-to-one matching of spotted to true intervals of the same video (kinds are not
    looked at: group by kind first for per-kind scores). A pair is eligible when its IoU is at
    least ``threshold``; the matching has the most pairs possible, then the largest total IoU.
    Indices refer to the two sequences as given."""
    from scipy.optimize import linear_sum_assignment

    if not 0 < threshold <= 1:
        raise ConfigError(f"IoU threshold={threshold!r}; expected a value in (0, 1] (MEGC uses 0.5)")
    by_video_t: dict[str, list[int]] = defaultdict(list)
    for j, g in enumerate(truth):
        by_video_t[g.video].append(j)
    by_video_s: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(spotted):
        by_video_s[s.video].append(i)
    out: list[Match] = []
    for vid, s_idx in by_video_s.items():
        t_idx = by_video_t.get(vid)
        if not t_idx:
            continue
        iou = np.zeros((len(s_idx), len(t_idx)))
        ok = np.zeros_like(iou, dtype=bool)
        for a, i in enumerate(s_idx):
            s = spotted[i]
            for b, j in enumerate(t_idx):
                g = truth[j]
                inter, union = _inter_union(s.onset, s.offset, g.onset, g.offset)
                if inter and inter >= threshold * union - 1e-9 * union:
                    ok[a, b] = True
                    iou[a, b] = inter / union
        if not ok.any():
            continue
        # weight BIG + IoU per eligible pair, BIG > any total IoU: the most pairs first, then IoU
        big = min(ok.shape) + 1.0
        weight = np.where(ok, big + iou, 0.0)
        rows, cols = linear_sum_assignment(weight, maximize=True)
        out.extend(Match(s_idx[a], t_idx[b], float(iou[a, b])) for a, b in zip(rows, cols) if ok[a, b])
    out.sort(key=lambda m: (m.truth, m.spot))
    return out


# -- spotting scores -------------------------------------------------------------------------
@dataclass(frozen=True)
class SpotCounts:
    """True positives, false positives and false negatives, with the scores they give."""

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: SpotCounts) -> SpotCounts:
        return SpotCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    def as_dict(self) -> dict[str, float]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": self.precision, "recall": self.recall,
                "f1": self.f1}


@dataclass(frozen=True)
class SpotResult:
    """Pooled spotting scores. ``matches`` pairs indices into ``spotted`` and ``truth`` (the
    intervals as scored, kinds filled in); ``by_video`` holds each video's overall counts."""

    micro: SpotCounts
    macro: SpotCounts
    threshold: float
    spotted: tuple[Interval, ...]
    truth: tuple[Interval, ...]
    matches: tuple[Match, ...]
    by_video: dict[str, SpotCounts] = field(default_factory=dict)

    @property
    def overall(self) -> SpotCounts:
        return self.micro + self.macro

    def counts(self, kind: str) -> SpotCounts:
        if kind == "overall":
            return self.overall
        if kind not in KINDS:
            raise ConfigError(f"kind={kind!r}; expected one of {[*KINDS, 'overall']}")
        return getattr(self, kind)

    def as_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "micro": self.micro.as_dict(), "macro": self.macro.as_dict(),
                "overall": self.overall.as_dict()}


def _typed(spotted: list[Interval], fps: float | None) -> list[Interval]:
    out = []
    for i, s in enumerate(spotted):
        if not s.kind:
            if fps is None:
                raise ConfigError(f"spotted interval {i} ({s.video}, frames {s.onset}-{s.offset}) has no kind; "
                                  "expected kind micro or macro on every spotted interval, or fps to tell them "
                                  "apart by length")
            s = Interval(s.video, s.onset, s.offset, kind_from_duration(s.onset, s.offset, fps), s.emotion, s.apex,
                         s.score)
        out.append(s)
    return out


def spotting_scores(spotted: Any, truth: Any, *, threshold: float = 0.5, fps: float | None = None) -> SpotResult:
    """Score spotted intervals against the truth, MEGC style (see the module docstring).

    ``spotted`` and ``truth`` are anything :func:`as_intervals` takes. Every truth needs a kind;
    a spotted interval without one takes it from its length (needs ``fps``). Videos of the
    spotted set that have no truth contribute false positives, videos of the truth with
    nothing spotted false negatives.
    """
    spot = _typed(as_intervals(spotted, "spotted interval"), fps)
    true = as_intervals(truth, "truth interval")
    for j, g in enumerate(true):
        if g.kind not in KINDS:
            raise DataError(f"truth interval {j} ({g.video}, frames {g.onset}-{g.offset}) has no kind",
                            expected="micro or macro on every ground truth")
    matches: list[Match] = []
    counts: dict[str, SpotCounts] = {}
    for kind in KINDS:
        si = [i for i, s in enumerate(spot) if s.kind == kind]
        ti = [j for j, g in enumerate(true) if g.kind == kind]
        m = match_intervals([spot[i] for i in si], [true[j] for j in ti], threshold)
        matches.extend(Match(si[x.spot], ti[x.truth], x.iou) for x in m)
        counts[kind] = SpotCounts(len(m), len(si) - len(m), len(ti) - len(m))
    matched_s = {m.spot for m in matches}
    matched_t = {m.truth for m in matches}
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for i, s in enumerate(spot):
        per[s.video][0 if i in matched_s else 1] += 1
    for j, g in enumerate(true):
        if j not in matched_t:
            per[g.video][2] += 1
    by_video = {v: SpotCounts(*c) for v, c in sorted(per.items())}
    matches.sort(key=lambda m: (m.truth, m.spot))
    return SpotResult(counts["micro"], counts["macro"], threshold, tuple(spot), tuple(true), tuple(matches),
                      by_video)


# -- recognition on the true positives, and STRS --------------------------------------------
@dataclass(frozen=True)
class RecognitionScores:
    """Recognition of the spotted true positives (Liong et al. 2023): macro precision and
    recall over ``classes``, their harmonic mean ``f1`` (the STRS factor), and for reference the
    mean per-class F1 (``uf1``) and mean per-class recall (``uar``)."""

    classes: tuple[str, ...]
    n_pairs: int
    per_class: dict[str, dict[str, float]]
    precision: float
    recall: float
    f1: float
    uf1: float
    uar: float

    def as_dict(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "n_pairs": self.n_pairs, "precision": self.precision,
                "recall": self.recall, "f1": self.f1, "uf1": self.uf1, "uar": self.uar, "per_class": self.per_class}


def recognition_scores(pairs: Iterable[tuple[str, str]], classes: Sequence[str]) -> RecognitionScores:
    """Scores of (true emotion, spotted emotion) pairs; pairs whose true emotion is not among
    ``classes`` are left out, as in the reference STRS implementation."""
    cls = tuple(dict.fromkeys(str(c) for c in classes))
    if not cls:
        raise ConfigError("recognition: no classes to score; expected the emotion classes of the truth")
    kept = [(str(t), str(p)) for t, p in pairs if str(t) in cls]
    per: dict[str, dict[str, float]] = {}
    for c in cls:
        tp = sum(1 for t, p in kept if t == c and p == c)
        fp = sum(1 for t, p in kept if t != c and p == c)
        fn = sum(1 for t, p in kept if t == c and p != c)
        pr = tp / (tp + fp) if tp + fp else 0.0
        rc = tp / (tp + fn) if tp + fn else 0.0
        per[c] = {"tp": tp, "fp": fp, "fn": fn, "precision": pr, "recall": rc,
                  "f1": 2 * pr * rc / (pr + rc) if pr + rc else 0.0}
    P = float(np.mean([v["precision"] for v in per.values()]))
    R = float(np.mean([v["recall"] for v in per.values()]))
    return RecognitionScores(classes=cls, n_pairs=len(kept), per_class=per, precision=P, recall=R,
                             f1=2 * P * R / (P + R) if P + R else 0.0,
                             uf1=float(np.mean([v["f1"] for v in per.values()])), uar=R)


@dataclass(frozen=True)
class STRSResult:
    """Spot-then-recognise score of one kind (``micro``, ``macro`` or ``overall``)."""

    kind: str
    spotting: SpotCounts
    recognition: RecognitionScores
    strs: float

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "strs": self.strs, "spotting": self.spotting.as_dict(),
                "recognition": self.recognition.as_dict()}


def strs(spotted: Any, truth: Any, *, kind: str = "micro", threshold: float = 0.5, fps: float | None = None,
         classes: Sequence[str] | None = None) -> STRSResult:
    """Spot-then-recognise score: spotting F1 of ``kind`` times the recognition F1 of its true
    positives (Liong, See & Chan 2023; see the module docstring). ``classes`` default to the
    emotions of the truth intervals of that kind; the spotted intervals carry their recognised
    class in ``emotion``. ``kind="overall"`` scores both kinds together."""
    res = spotting_scores(spotted, truth, threshold=threshold, fps=fps)
    counts = res.counts(kind)
    want = KINDS if kind == "overall" else (kind,)
    if classes is None:
        classes = sorted({g.emotion for g in res.truth if g.kind in want and g.emotion})
        if not classes:
            raise DataError(f"STRS: no {kind} ground truth carries an emotion",
                            expected="an emotion on each ground-truth interval, or classes=[...]")
    pairs = [(res.truth[m.truth].emotion, res.spotted[m.spot].emotion) for m in res.matches
             if res.truth[m.truth].kind in want]
    rec = recognition_scores(pairs, classes)
    return STRSResult(kind=kind, spotting=counts, recognition=rec, strs=counts.f1 * rec.f1)


# -- files -----------------------------------------------------------------------------------
#: Header of the submission CSV this module writes (see :func:`write_megc_submission`).
SUBMISSION_COLUMNS = ("vid", "pred_onset", "pred_offset", "type")
_TYPE_OUT = {"micro": "me", "macro": "mae"}


def write_megc_submission(intervals: Any, path: str | Path, *, emotion: bool | None = None) -> Path:
    """Write spotted intervals as a MEGC spotting submission CSV: one row per interval with the
    video name, onset and offset frames and the type, ``me`` (micro) or ``mae`` (macro).

    The MEGC 2022-2025 spotting leaderboards take one such row per spotted interval (video,
    onset, offset, micro or macro); each year gives its exact header in a sample file that comes
    with the licensed test set and could not be consulted for this module, so the header written
    here, ``vid,pred_onset,pred_offset,type``, is a layout that carries those fields: rename the
    columns if a year's sample differs.
    :func:`read_megc_submission` reads this layout and the common variants. ``emotion`` adds
    the recognised class (the spot-then-recognise tasks); by default it is written when any
    interval has one. Frame numbers are written as given: use the numbering of the truth
    (the corpora number frames from their first image; mekit's synthetic videos from 0).
    """
    ivs = as_intervals(intervals, "interval")
    with_emotion = any(iv.emotion for iv in ivs) if emotion is None else bool(emotion)
    path = Path(path)
    cols = list(SUBMISSION_COLUMNS) + (["emotion"] if with_emotion else [])
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for iv in sorted(ivs, key=lambda v: (v.video, v.onset, v.offset)):
            row = [iv.video, iv.onset, iv.offset, _TYPE_OUT.get(iv.kind, "")]
            if with_emotion:
                row.append(iv.emotion)
            w.writerow(row)
    return path


def _read_rows(path: str | Path, required: Sequence[Sequence[str]], what: str) -> tuple[Path, list[str], list[dict]]:
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v.strip() if isinstance(v, str) else v) for k, v in r.items()}
                    for r in reader]
    except OSError as e:
        raise DataError(f"cannot read the {what} ({e.strerror or e})", path=path) from None
    except (csv.Error, UnicodeDecodeError) as e:
        raise DataError(f"not a readable CSV ({e})", path=path, expected=f"a {what} CSV") from None
    lower = {h.lower(): h for h in header}
    for options in required:
        if not any(o in lower for o in options):
            raise DataError(f"the {what} has no {options[0]!r} column (header {header})", path=path,
                            expected=f"a column named one of {list(options)}")
    return path, header, [{k.lower(): v for k, v in r.items()} for r in rows]


def _rows_to_intervals(path: Path, rows: list[dict], what: str, need_kind: bool) -> list[Interval]:
    out = []
    for n, r in enumerate(rows, start=2):  # row numbers as a spreadsheet shows them (header = 1)
        vid = r.get("video") or r.get("vid")
        onset = r.get("onset", r.get("pred_onset"))
        offset = r.get("offset", r.get("pred_offset"))
        kind = r.get("kind", r.get("type", ""))
        apex = r.get("apex")
        try:
            on, off = _frame(onset), _frame(offset)
        except (TypeError, ValueError):
            raise DataError("onset and offset must be whole frame numbers", path=path, row=n, value=(onset, offset),
                            expected="two integers") from None
        try:
            apex_i = None if apex in (None, "") else _frame(apex)
        except (TypeError, ValueError):
            raise DataError("apex must be a whole frame number", path=path, row=n, value=apex) from None
        try:
            k = _kind(kind, f"{what} kind")
        except DataError:
            raise DataError("unknown interval kind", path=path, row=n, value=kind,
                            expected="micro or macro (or ME / MaE)") from None
        if need_kind and not k:
            raise DataError("no kind", path=path, row=n, expected="micro or macro on every ground truth")
        if not vid:
            raise DataError("no video name", path=path, row=n, expected="the video the interval belongs to")
        if on < 0 or off < on:
            raise DataError("interval is empty or negative", path=path, row=n, value=(on, off),
                            expected="0 <= onset <= offset (frames, both included)")
        score = r.get("score")
        out.append(Interval(str(vid), on, off, k, r.get("emotion") or "", apex_i,
                            None if score in (None, "") else float(score)))
    return out


def read_megc_submission(path: str | Path) -> list[Interval]:
    """Spotted intervals from a submission CSV (:func:`write_megc_submission`'s layout, or
    ``video,onset,offset[,kind][,emotion]``). The type may be ``me``/``mae``,
    ``micro``/``macro`` or empty (then give ``fps`` when scoring)."""
    p, _, rows = _read_rows(path, (("vid", "video"), ("pred_onset", "onset"), ("pred_offset", "offset")),
                            "spotting submission")
    return _rows_to_intervals(p, rows, "submission", need_kind=False)


def read_truth_csv(path: str | Path) -> list[Interval]:
    """Ground-truth intervals from a truth CSV: ``video, onset, offset, kind`` and optionally
    ``apex, emotion`` (the layout :func:`mekit.data.synthetic_long.generate_long_video` writes;
    other columns are ignored). Kinds may be written micro/macro or ME/MaE."""
    p, _, rows = _read_rows(path, (("video", "vid"), ("onset",), ("offset",), ("kind", "type")), "truth")
    return _rows_to_intervals(p, rows, "truth", need_kind=True)
