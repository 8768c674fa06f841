"""Synthetic long videos with a known truth: the test bed of micro-expression spotting.

A spotter has to find a few brief, subtle facial movements in minutes of video and ignore
everything else a face does. Real long-video corpora (CAS(ME)^2, SAMM Long Videos, CAS(ME)^3) are
licensed and their labels are partial; these videos are free, any length, and their truth is
exact, so a spotter can be developed, regression-tested and scored (with
:mod:`mekit.analysis.spot_metrics`) anywhere.

What a video shows: the face of :func:`mekit.data.synthetic.render_face` on a head-and-shoulders
canvas like :func:`mekit.data.synthetic.render_photo`'s, with

- **micro-expressions** (the truth, kind ``"micro"``): the corpus's facial actions
  (:data:`mekit.data.synthetic.ACTIONS`, recipes of :data:`~mekit.data.synthetic.DEFAULT_CLASSES`)
  at the corpus's relative amplitude, lasting 1/25 to 1/2 s, onset to offset, with the
  raised-cosine rise and fall of :func:`~mekit.data.synthetic.intensity_curve`;
- **macro-expressions** (also in the truth, kind ``"macro"``): the same actions two to four
  times as far as the largest micro-expression (7-14 px on a 240 px face against 1-4 px),
  lasting over 1/2 s and up to 4 s, rising to a held apex;
- **distractors**, which are not expressions and never appear in the truth (they are listed
  apart, in :attr:`LongVideoTruth.distractors`, so a false positive can be traced to its cause):
  eye **blinks** (100-400 ms closures, as brief as a micro-expression), slow **head turns and
  nods** (rigid motion of the whole head, 1-2.5 s), **talking**-like mouth motion (syllables at
  3.5-6 Hz for 1.5-3.5 s), a slow sub-pixel sway of the head, and camera noise.

Events and distractors never overlap and are separated by neutral face (at least 0.4 s); most of
the video is neutral face. Frame numbers are 0-based indices of the decoded frames (frame ``i``
shows time ``i / fps``); ``onset`` and ``offset`` are the first and last frames of the movement
(intensity 0 at both), ``apex`` the frame of peak intensity. A micro-expression's duration is
``(offset - onset) / fps`` and lies in [1/25, 1/2) s so that ``(offset - onset + 1) / fps`` (the
frame-count convention) is at most 1/2 s too: the 500 ms bound of the long-video corpora
(Yap et al., FG 2020, SAMM Long Videos; Qu et al., IEEE TAC 2018, CAS(ME)^2) holds either way.

Time is cut into 6-second cells; each cell's content is drawn from a generator seeded by
``(seed, cell)`` alone and no event crosses a cell boundary. So, with the default event counts
(``n_micro=None, n_macro=None``: a rate of :data:`MICRO_PER_MINUTE` and
:data:`MACRO_PER_MINUTE`), a video does not depend on its length: a 10-minute video with a seed
begins with exactly the frames of the 20-second one (every random draw, camera noise included,
is keyed by seed and cell or frame, never by a running stream). An event cut by the end of the
video is rendered as far as it goes but is not in the truth (it is listed as a distractor of
kind ``"micro_cut"`` / ``"macro_cut"``). Exact counts (``n_micro=3``) place one expression in
each of that many whole cells, chosen by the seed among the cells of the video, which then does
depend on the length. The same parameters always give the same pixels on one OpenCV/NumPy
build; the encoded file may differ across builds.

Rendering streams: one frame at a time is warped from a precomputed face tile (the rigid head
pose composed with the current local displacement field, in one warp) and composited onto the
static canvas, so memory does not grow with the length. Rendering and encoding 640x480 mp4 ran
at about 200 frames/s on one core of a shared 2-core machine (OpenCV 4.14): a 10-minute 30 fps
video in about 90 s, much less than its own length.
"""

from __future__ import annotations

import csv
import functools
import logging
import math
import numbers
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mekit.data.synthetic import (DEFAULT_CLASS_WEIGHTS, DEFAULT_CLASSES, Identity, _bump, _geometry,
                                  _identity, action_field, intensity_curve, render_face)
from mekit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

__all__ = ["CELL_SECONDS", "DISTRACTOR_KINDS", "GENERATOR_VERSION", "MACRO_PER_MINUTE", "MICRO_PER_MINUTE",
           "TRUTH_COLUMNS", "Episode", "LongVideoTruth", "generate_long_video", "iter_long_video_frames",
           "plan_long_video"]

#: Bump whenever the pixels (or the truth) a given parameter set produces change.
GENERATOR_VERSION = 1

#: Length of a planning cell: at most one expression per cell, nothing crosses a cell boundary.
#: 6 s holds the longest macro-expression (4 s) with neutral margins on both sides.
CELL_SECONDS = 6.0

#: Expected expressions per minute with the default counts (one cell in 2.5 holds a micro-, one
#: in 5 a macro-expression). Denser than the corpora (CAS(ME)^2: 57 micro- and 300
#: macro-expressions in 97 videos averaging 148 s, about 0.24 and 1.3 per minute), so that a
#: short video scores a spotter on enough events.
MICRO_PER_MINUTE = 4.0
MACRO_PER_MINUTE = 2.0

#: Columns of the truth CSV, in order.
TRUTH_COLUMNS = ("video", "onset", "apex", "offset", "onset_s", "offset_s", "kind", "emotion", "action",
                 "amplitude_px")

#: Kinds of distractor episodes (never micro-expressions).
DISTRACTOR_KINDS = ("blink", "head_turn", "nod", "talk", "micro_cut", "macro_cut")
# what moves in each kind of distractor (the truth CSV's ``action`` column)
_MOVES = {"blink": "eyelids", "head_turn": "head yaw", "nod": "head pitch", "talk": "jaw and lips"}

# -- amplitudes and timings (fractions of the face tile's size, seconds) -----------------------
# Micro-expressions move the skin by the synthetic clip corpus's amplitudes, 0.6-2.0 px on its
# 128 px faces (SyntheticParams.amplitude), scaled to the tile: 1.1-3.8 px on a 240 px tile.
_MICRO_AMP = (0.6 / 128, 2.0 / 128)
# Macro-expressions: 2-4x the largest micro amplitude (7-14 px at 240 px), visible at a glance.
_MACRO_AMP = (0.03, 0.06)
# Blinks: 100-400 ms from the start of the closure to the reopened eye, the range usually given
# for spontaneous blinks (see e.g. Caffier, Erdmann & Ullsperger, Eur. J. Appl. Physiol. 89, 2003).
_BLINK_S = (0.10, 0.40)
# Blinks per cell: 0-3, 1.4 on average, 14 per minute, near the 15-20 per minute of adults at
# rest (Bentivoglio et al., Movement Disorders 1997: 17/min) minus those that would overlap events.
_BLINKS_PER_CELL = (0.15, 0.40, 0.35, 0.10)
_HEAD_P, _HEAD_S = 0.30, (1.0, 2.5)        # chance of a head turn or nod per cell, duration
_TURN_AMP, _NOD_AMP = (0.04, 0.09), (0.025, 0.05)  # peak translation, of the tile size
_ROLL_DEG = 1.5                             # head roll during a turn or nod, at most
_TALK_P, _TALK_S = 0.25, (1.5, 3.5)         # chance of a talking burst per cell, duration
_SYLLABLE_HZ = (3.5, 6.0)                   # syllables/s: speech's envelope peaks near 4-5 Hz
                                            # (Ding et al., Neurosci. Biobehav. Rev. 81, 2017)
_TALK_AMP = (0.02, 0.05)                    # mouth opening per syllable, of the tile size
_SWAY_PX, _SWAY_DEG = 0.35, 0.1             # slow head sway, largest amplitude
_NOISE_SIGMA = 1.5                          # camera noise, grey levels (standard deviation)
_LID_TRAVEL = 0.9                           # upper-lid slide at full closure, of the eye's half-height
_NOISE_BANK = 4                             # noise frames drawn once per video
_MARGIN_S = 0.3                             # nothing within this of a cell boundary
_GAP_S = 0.4                                # neutral face between any two episodes, at least
_MAX_MICRO_S, _MIN_MICRO_S = 0.5, 1 / 25


# -- episodes --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Episode:
    """One inserted movement: an expression (the truth) or a distractor.

    ``onset``/``apex``/``offset`` are frame indices; ``action`` names the facial actions
    (``+``-joined, see :data:`mekit.data.synthetic.ACTIONS`) or, for a distractor, what moves;
    ``amplitude_px`` is the peak displacement of the primary action (expressions, talking), of
    the lids (blinks) or of the head (turns, nods; signed, negative to the left or up), in
    pixels of the frame.
    """

    kind: str
    onset: int
    apex: int
    offset: int
    emotion: str = ""
    action: str = ""
    amplitude_px: float = 0.0


@dataclass(frozen=True)
class _Ep:
    """An episode with what the renderer needs (the public view is :class:`Episode`)."""

    kind: str
    onset: int
    apex: int
    offset: int
    curve: np.ndarray               # per-frame intensity (expressions, blinks, talking) or head profile
    emotion: str = ""
    actions: tuple[str, ...] = ()
    amplitudes: tuple[float, ...] = ()   # px, per action (expressions) or (amplitude,) otherwise
    roll: float = 0.0                     # degrees at the peak of a head turn or nod

    def public(self, kind: str | None = None) -> Episode:
        label = "+".join(self.actions) if self.actions else _MOVES.get(self.kind, "")
        return Episode(kind or self.kind, self.onset, self.apex, self.offset, self.emotion, label,
                       round(float(self.amplitudes[0]) if self.amplitudes else 0.0, 3))


@dataclass(frozen=True)
class LongVideoTruth:
    """The ground truth of one synthetic long video (and where it was written, if it was).

    ``events`` are the micro- and macro-expressions (what a spotter should find); ``distractors``
    are the blinks, head turns, nods, talking bursts and cut-off expressions (what it should
    not). ``face_box`` is the face oval's extent in the neutral pose, ``(x0, y0, x1, y1)`` in
    frame pixels.
    """

    video: str
    fps: float
    n_frames: int
    width: int
    height: int
    seed: int
    events: tuple[Episode, ...]
    distractors: tuple[Episode, ...]
    face_box: tuple[float, float, float, float]
    path: Path | None = None
    codec: str = ""
    truth_path: Path | None = None

    @property
    def micro(self) -> tuple[Episode, ...]:
        return tuple(e for e in self.events if e.kind == "micro")

    @property
    def macro(self) -> tuple[Episode, ...]:
        return tuple(e for e in self.events if e.kind == "macro")

    @property
    def seconds(self) -> float:
        return self.n_frames / self.fps

    def rows(self, which: str = "events") -> list[dict[str, Any]]:
        """The truth (``which="events"``) or the distractors as rows of :data:`TRUTH_COLUMNS`."""
        if which not in ("events", "distractors"):
            raise ConfigError(f"which={which!r}; expected 'events' (the truth) or 'distractors'")
        eps = self.events if which == "events" else self.distractors
        return [{"video": self.video, "onset": e.onset, "apex": e.apex, "offset": e.offset,
                 "onset_s": round(e.onset / self.fps, 4), "offset_s": round(e.offset / self.fps, 4),
                 "kind": e.kind, "emotion": e.emotion, "action": e.action, "amplitude_px": e.amplitude_px}
                for e in eps]

    def write_csv(self, path: str | Path, which: str = "events") -> Path:
        """Write :meth:`rows` as CSV (header :data:`TRUTH_COLUMNS`); returns the path."""
        path = Path(path)
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=TRUTH_COLUMNS)
            w.writeheader()
            w.writerows(self.rows(which))
        return path


# -- parameters ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Params:
    seconds: float
    fps: float
    width: int
    height: int
    seed: int
    n_micro: int | None
    n_macro: int | None
    blinks: bool
    head_motion: bool
    talking: bool
    face_size: int
    noise: float
    eye_h_px: float                 # half-height of the eye opening, px (a blink's lid travel)

    @property
    def n_frames(self) -> int:
        return int(round(self.seconds * self.fps))

    def cell_start(self, k: int) -> int:
        return int(round(k * CELL_SECONDS * self.fps))


def _params(seconds: float, fps: float, width: int, height: int, seed: int, n_micro: int | None,
            n_macro: int | None, blinks: bool, head_motion: bool, talking: bool, face_size: int | None,
            noise: float) -> _Params:
    def bad(name: str, value: object, expected: str) -> ConfigError:
        return ConfigError(f"synthetic long video: {name}={value!r}; expected {expected}")

    def real(v: object) -> bool:
        return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))

    def integer(v: object) -> bool:
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    if not (real(seconds) and seconds > 0):
        raise bad("seconds", seconds, "a positive length in seconds")
    if not (real(fps) and 10 <= fps <= 1000):
        # below 10 fps a 1/2 s micro-expression has fewer than 5 frames: no room for a shape
        raise bad("fps", fps, "a frame rate between 10 and 1000")
    for name, v in (("width", width), ("height", height)):
        if not integer(v) or not 96 <= v <= 2048:
            raise bad(name, v, "an integer number of pixels between 96 and 2048")
    if width % 2 or height % 2:
        raise bad("width x height", (width, height), "even sizes (video encoders need them)")
    if not integer(seed) or seed < 0:
        raise bad("seed", seed, "an integer >= 0")
    for name, v in (("n_micro", n_micro), ("n_macro", n_macro)):
        if v is not None and (not integer(v) or v < 0):
            raise bad(name, v, "None (a rate per minute) or an integer >= 0")
    fs = face_size if face_size is not None else 2 * int(round(0.25 * min(width, height)))
    if not integer(fs) or not 48 <= fs <= int(min(width, height) / 1.35):
        raise bad("face_size", face_size, f"an integer between 48 and {int(min(width, height) / 1.35)} "
                                         "(the face and its head motion must fit in the frame)")
    if not (real(noise) and 0 <= noise <= 20):
        raise bad("noise", noise, "a standard deviation in grey levels, 0-20")
    eye_h = _identity(np.random.default_rng([int(seed), 1, 0])).eye_h * int(fs)
    return _Params(float(seconds), float(fps), int(width), int(height), int(seed),
                   None if n_micro is None else int(n_micro), None if n_macro is None else int(n_macro),
                   bool(blinks), bool(head_motion), bool(talking), int(fs), float(noise), float(eye_h))


# -- planning --------------------------------------------------------------------------------
def _frames_between(lo_s: float, hi_s: float, fps: float) -> tuple[int, int]:
    return int(math.ceil(lo_s * fps - 1e-9)), int(math.floor(hi_s * fps + 1e-9))


def _micro_frames(fps: float) -> tuple[int, int]:
    """Range of ``offset - onset`` for a micro-expression: >= 1/25 s (and 2 frames, so the apex
    lies strictly inside) and < 1/2 s counted either as (offset - onset) or frame count."""
    lo = max(2, int(math.ceil(_MIN_MICRO_S * fps - 1e-9)))
    hi = int(math.floor(_MAX_MICRO_S * fps + 1e-9)) - 1  # (hi + 1) / fps <= 1/2
    return lo, hi


def _macro_frames(fps: float) -> tuple[int, int]:
    """Range of ``offset - onset`` for a macro-expression: over 1/2 s (by either count), up to 4 s."""
    return int(math.floor(_MAX_MICRO_S * fps)) + 1, int(math.floor(4.0 * fps))


def _held_curve(n: int, rise: int, hold: int) -> np.ndarray:
    """Raised-cosine rise over ``rise`` frames, held at 1 for ``hold`` frames, then the fall."""
    t = np.arange(n, dtype=np.float64)
    fall_start = rise + hold
    fall_len = max(1, n - 1 - fall_start)
    up = 0.5 * (1 - np.cos(np.pi * np.clip(t / rise, 0, 1)))
    down = 0.5 * (1 + np.cos(np.pi * np.clip((t - fall_start) / fall_len, 0, 1)))
    return np.where(t <= rise, up, np.where(t <= fall_start, 1.0, down))


def _expression(rng: np.random.Generator, kind: str, fs: int, fps: float) -> dict[str, Any]:
    """Draw one expression (class, actions, amplitudes, timing); always the same number of draws."""
    classes = list(DEFAULT_CLASSES)
    w = np.array([DEFAULT_CLASS_WEIGHTS[c] for c in classes], np.float64)
    cls = classes[int(rng.choice(len(classes), p=w / w.sum()))]
    recipes = DEFAULT_CLASSES[cls]
    actions = recipes[int(rng.integers(len(recipes)))]
    lo, hi = _MICRO_AMP if kind == "micro" else _MACRO_AMP
    amp = float(rng.uniform(lo, hi)) * fs
    secondary = rng.uniform(0.5, 1.0, 3)  # the other actions of the recipe: 50-100 % of the first
    amps = (amp,) + tuple(amp * float(f) for f in secondary[: len(actions) - 1])
    dlo, dhi = _micro_frames(fps) if kind == "micro" else _macro_frames(fps)
    d = int(rng.integers(dlo, dhi + 1))
    n = d + 1
    u_apex, u_hold = rng.uniform(0.3, 0.55), rng.uniform(0.2, 0.45)
    if kind == "micro":
        apex_i = min(max(int(round(u_apex * d)), 1), d - 1)
        curve = intensity_curve(n, apex_i)
    else:
        rise = max(1, int(round(u_apex * 0.7 * d)))
        hold = int(round(u_hold * d))
        hold = min(hold, d - rise - 1)
        curve = _held_curve(n, rise, hold)
        apex_i = rise
    return {"emotion": cls, "actions": tuple(actions), "amplitudes": amps, "n": n, "apex": apex_i, "curve": curve}


def _free_start(occupied: np.ndarray, length: int, gap: int, lo: int, hi: int, u: float) -> int | None:
    """A start s in [lo, hi] such that frames [s - gap, s + length + gap) are all free, chosen at
    fraction ``u`` of the free starts (so a draw maps to a position deterministically); None if
    there is none."""
    if hi < lo:
        return None
    n = len(occupied)
    c = np.concatenate([[0], np.cumsum(occupied, dtype=np.int64)])
    s = np.arange(lo, hi + 1)
    a = np.clip(s - gap, 0, n)
    b = np.clip(s + length + gap, 0, n)
    ok = (c[b] - c[a]) == 0
    free = s[ok]
    if free.size == 0:
        return None
    return int(free[min(int(u * free.size), free.size - 1)])


def _plan_cell(p: _Params, k: int, expression: str | None) -> list[_Ep]:
    """The episodes of cell ``k`` (frames from cell_start(k) to cell_start(k + 1)).

    ``expression`` is "micro", "macro", None (no expression) or "rate" (drawn from the cell's
    own generator). Every draw is made whether or not it is used, so a cell's content depends
    only on the seed, the cell and what is asked of it.
    """
    rng = np.random.default_rng([p.seed, 20, k])
    f0, f1 = p.cell_start(k), p.cell_start(k + 1)
    n = f1 - f0
    fps, fs = p.fps, p.face_size
    margin, gap = int(round(_MARGIN_S * fps)), int(round(_GAP_S * fps))
    occupied = np.zeros(n, np.int8)
    out: list[_Ep] = []

    u_kind = rng.random()
    micro = _expression(rng, "micro", fs, fps)
    macro = _expression(rng, "macro", fs, fps)
    u_expr = rng.random()
    if expression == "rate":
        pm, pM = MICRO_PER_MINUTE * CELL_SECONDS / 60, MACRO_PER_MINUTE * CELL_SECONDS / 60
        expression = "micro" if u_kind < pm else "macro" if u_kind < pm + pM else None

    def place(length: int, u: float) -> int | None:
        s = _free_start(occupied, length, gap, margin, n - margin - length, u)
        if s is not None:
            occupied[s:s + length] = 1
        return s

    if expression is not None:
        e = micro if expression == "micro" else macro
        s = place(e["n"], u_expr)
        if s is not None:  # a 6 s cell always holds one 4 s expression
            out.append(_Ep(expression, f0 + s, f0 + s + e["apex"], f0 + s + e["n"] - 1, e["curve"],
                           e["emotion"], e["actions"], e["amplitudes"]))

    # head turn or nod
    u_head, u_nod, u_hs, u_ha, u_sign, u_roll, u_hpos = rng.random(7)
    if p.head_motion and u_head < _HEAD_P:
        kind = "nod" if u_nod < 0.5 else "head_turn"
        hn = int(round((_HEAD_S[0] + u_hs * (_HEAD_S[1] - _HEAD_S[0])) * fps))
        lo, hi = _NOD_AMP if kind == "nod" else _TURN_AMP
        amp = (lo + u_ha * (hi - lo)) * fs * (1 if u_sign < 0.5 else -1)
        s = place(hn, u_hpos)
        if s is not None:
            rise = max(1, int(round(0.4 * (hn - 1))))
            hold = max(0, hn - 1 - 2 * rise)
            curve = _held_curve(hn, rise, hold)
            out.append(_Ep(kind, f0 + s, f0 + s + rise, f0 + s + hn - 1, curve, amplitudes=(amp,),
                           roll=(2 * u_roll - 1) * _ROLL_DEG))

    # talking burst: syllables as raised-cosine pulses of random height
    u_talk, u_ts, u_rate, u_ta, u_tpos = rng.random(5)
    syll = rng.uniform(0.35, 1.0, 32)
    jitter = rng.uniform(-0.15, 0.15, 32)
    if p.talking and u_talk < _TALK_P:
        tn = int(round((_TALK_S[0] + u_ts * (_TALK_S[1] - _TALK_S[0])) * fps))
        rate = _SYLLABLE_HZ[0] + u_rate * (_SYLLABLE_HZ[1] - _SYLLABLE_HZ[0])
        period = fps / rate
        t = np.arange(tn, dtype=np.float64)
        curve = np.zeros(tn)
        for j in range(min(32, int(tn / period))):
            c0 = (j + 0.5 + jitter[j]) * period
            x = (t - c0) / (0.5 * period)
            curve += syll[j] * np.where(np.abs(x) < 1, 0.5 * (1 + np.cos(np.pi * x)), 0.0)
        curve = np.clip(curve, 0, 1)
        curve[0] = curve[-1] = 0.0
        s = place(tn, u_tpos)
        if s is not None and curve.max() > 0:
            amp = (_TALK_AMP[0] + u_ta * (_TALK_AMP[1] - _TALK_AMP[0])) * fs
            out.append(_Ep("talk", f0 + s, f0 + s + int(np.argmax(curve)), f0 + s + tn - 1, curve,
                           amplitudes=(amp,)))

    # blinks
    u_nb = rng.random()
    u_bd, u_bp = rng.random(3), rng.random(3)
    nb = int(np.searchsorted(np.cumsum(_BLINKS_PER_CELL), u_nb, side="right"))
    blo, bhi = _frames_between(*_BLINK_S, fps)
    blo = max(blo, 2)
    for j in range(min(nb, 3) if p.blinks else 0):
        bn = blo + int(u_bd[j] * (bhi - blo + 1)) + 1
        bn = min(bn, bhi + 1)
        apex_i = min(max(int(round(0.35 * (bn - 1))), 1), bn - 2)
        s = place(bn, u_bp[j])
        if s is not None:
            out.append(_Ep("blink", f0 + s, f0 + s + apex_i, f0 + s + bn - 1, intensity_curve(bn, apex_i),
                           amplitudes=(_LID_TRAVEL * p.eye_h_px,)))
    out.sort(key=lambda e: e.onset)
    return out


@dataclass
class _Schedule:
    """Which episode (if any) is active at each frame; cells are planned lazily and forgotten."""

    p: _Params
    assigned: dict[int, str] | None  # cell -> "micro"/"macro" with exact counts; None: by rate
    _cache: dict[int, list[_Ep]] = field(default_factory=dict)

    def cell_of(self, i: int) -> int:
        k = int(i // (CELL_SECONDS * self.p.fps))
        while self.p.cell_start(k) > i:
            k -= 1
        while self.p.cell_start(k + 1) <= i:
            k += 1
        return k

    def cell(self, k: int) -> list[_Ep]:
        if k not in self._cache:
            if len(self._cache) > 4:
                self._cache.pop(min(self._cache))
            mode = "rate" if self.assigned is None else self.assigned.get(k)
            self._cache[k] = _plan_cell(self.p, k, mode)
        return self._cache[k]

    def active(self, i: int) -> _Ep | None:
        for e in self.cell(self.cell_of(i)):
            if e.onset <= i <= e.offset:
                return e
        return None

    def n_cells(self) -> int:
        return self.cell_of(max(self.p.n_frames - 1, 0)) + 1


def _assign_cells(p: _Params) -> dict[int, str] | None:
    """With exact counts, the whole cells that hold a micro- or macro-expression."""
    if p.n_micro is None and p.n_macro is None:
        return None
    minutes = p.seconds / 60
    n_micro = p.n_micro if p.n_micro is not None else int(round(MICRO_PER_MINUTE * minutes))
    n_macro = p.n_macro if p.n_macro is not None else int(round(MACRO_PER_MINUTE * minutes))
    whole = 0
    while p.cell_start(whole + 1) <= p.n_frames:
        whole += 1
    if n_micro + n_macro > whole:
        raise ConfigError(f"synthetic long video: n_micro={n_micro} + n_macro={n_macro} expressions do not fit "
                          f"in {p.seconds:g} s; expected at most {whole} (one per whole {CELL_SECONDS:g} s "
                          f"cell), or a longer video")
    rng = np.random.default_rng([p.seed, 21])
    cells = rng.permutation(whole)[: n_micro + n_macro]
    kinds = ["micro"] * n_micro + ["macro"] * n_macro
    order = rng.permutation(len(kinds))
    return {int(c): kinds[int(j)] for c, j in zip(cells, order)}


def _truth(p: _Params, schedule: _Schedule, video: str, face_box: tuple[float, float, float, float],
           **where: Any) -> LongVideoTruth:
    n = p.n_frames
    events: list[Episode] = []
    distractors: list[Episode] = []
    for k in range(schedule.n_cells()):
        for e in schedule.cell(k):
            if e.onset >= n:
                continue
            if e.kind in ("micro", "macro"):
                if e.offset < n:
                    events.append(e.public())
                else:
                    distractors.append(e.public(f"{e.kind}_cut"))
            else:
                distractors.append(e.public())
    return LongVideoTruth(video=video, fps=p.fps, n_frames=n, width=p.width, height=p.height, seed=p.seed,
                          events=tuple(events), distractors=tuple(distractors), face_box=face_box, **where)


# -- rendering -------------------------------------------------------------------------------
class _Renderer:
    """Frames of one video, one at a time (random access: frame i depends only on i)."""

    def __init__(self, p: _Params, schedule: _Schedule) -> None:
        import cv2

        self.p, self.schedule = p, schedule
        W, H, fs = p.width, p.height, p.face_size
        idn, x0, y0, m = _placement(p)
        self.identity: Identity = idn
        self.origin = (x0, y0)
        self.roi = (max(0, x0 - m), max(0, y0 - m), min(W, x0 + fs + m), min(H, y0 + fs + m))
        rx0, ry0, rx1, ry1 = self.roi
        self.face_box = _face_box(idn, x0, y0, fs)
        rng = np.random.default_rng([p.seed, 3])

        self.background = self._background(rng)
        self.bg_u8 = np.clip(np.rint(self.background), 0, 255).astype(np.uint8)
        self.bg_roi = np.ascontiguousarray(self.background[ry0:ry1, rx0:rx1])

        face = render_face(idn, fs)
        alpha = self._head_mask()
        self.tile = np.dstack([face * alpha[..., None], alpha]).astype(np.float32)  # premultiplied BGRA
        closed = self._closed_eyes(face)
        self.blink_diff = np.dstack([(closed - face) * alpha[..., None], np.zeros_like(alpha)]).astype(np.float32)
        g = _geometry(idn, fs)
        self.geometry = g
        self.pivot = (idn.cx * fs, idn.cy * fs)
        self.face_px = (idn.face_w * fs, idn.face_h * fs)

        self.grid_u, self.grid_v = np.meshgrid(np.arange(rx0, rx1, dtype=np.float32),
                                               np.arange(ry0, ry1, dtype=np.float32))
        self.fields: dict[str, np.ndarray] = {}
        sway = np.random.default_rng([p.seed, 10])
        # three slow sinusoids per axis (0.03-0.25 Hz), amplitudes summing to the sway bound
        self.sway = [(sway.dirichlet(np.ones(3)), sway.uniform(0.03, 0.25, 3), sway.uniform(0, 2 * np.pi, 3))
                     for _ in range(3)]
        # camera noise: a bank of noise frames, each frame drawing one and an offset into it
        # (4 x 32 x 32 = 4096 patterns; each frame's choice is keyed by its index, not a stream)
        nrng = np.random.default_rng([p.seed, 30])
        self.noise_pos = np.empty((_NOISE_BANK, H + 32, W + 32, 3), np.uint8)
        self.noise_neg = np.empty_like(self.noise_pos)
        for j in range(_NOISE_BANK):
            r = np.rint(nrng.standard_normal((H + 32, W + 32, 3), dtype=np.float32) * np.float32(p.noise))
            self.noise_pos[j] = np.clip(r, 0, 255)
            self.noise_neg[j] = np.clip(-r, 0, 255)
        self._cv2 = cv2

    # -- static parts ------------------------------------------------------------------------
    def _background(self, rng: np.random.Generator) -> np.ndarray:
        """A head-and-shoulders canvas like render_photo's: colour gradient, blotches, shoulders."""
        import cv2

        W, H, fs = self.p.width, self.p.height, self.p.face_size
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        xx /= W
        yy /= H
        c0, c1 = rng.uniform(60, 200, 3).astype(np.float32), rng.uniform(60, 200, 3).astype(np.float32)
        img = c0 * (1 - xx[..., None]) + c1 * yy[..., None] * 0.6 + 0.4 * c1 * xx[..., None]
        img += cv2.GaussianBlur(rng.normal(0, 25, (H, W)).astype(np.float32), (0, 0), 6)[..., None]
        img += rng.normal(0, 4, (H, W, 3)).astype(np.float32)
        idn = self.identity
        cx = self.origin[0] + idn.cx * fs
        top = self.origin[1] + 0.97 * fs
        sh = np.zeros((H, W), np.float32)
        cv2.ellipse(sh, (int(round(cx)), int(round(top + H + 0.45 * fs))), (int(1.2 * fs), int(H + 0.45 * fs)),
                    0, 0, 360, 1.0, -1)
        sh = cv2.GaussianBlur(sh, (0, 0), 2.5)[..., None]
        img = img * (1 - sh) + sh * rng.uniform(30, 150, 3).astype(np.float32)
        return np.clip(img, 0, 255).astype(np.float32)

    def _head_mask(self) -> np.ndarray:
        """Alpha of the head in its tile: the shapes render_face draws for the hair, face, ears and
        neck (so none of the tile's own background shows as a halo), softened by a pixel; the neck
        fades out at the tile's bottom so it joins the shoulders whatever the pose."""
        import cv2

        idn, fs = self.identity, self.p.face_size
        g = _geometry(idn, fs)
        cx, cy = g.centre
        fw, fh = idn.face_w * fs, idn.face_h * fs
        P = lambda v: int(round(v))  # noqa: E731 - pixel coordinates for cv2 drawing
        m = np.zeros((fs, fs), np.float32)
        cv2.ellipse(m, (P(cx), P(cy - 0.12 * fh)), (P(1.1 * fw), P(0.98 * fh)), 0, 0, 360, 1.0, -1)  # hair
        cv2.ellipse(m, (P(cx), P(cy)), (P(fw), P(fh)), 0, 0, 360, 1.0, -1)                         # face
        for sx in (-1, 1):                                                                           # ears
            cv2.ellipse(m, (P(cx + sx * 0.98 * fw), P(g.eyes[0][1] + 0.1 * fh)), (P(0.12 * fw), P(0.22 * fh)),
                        0, 0, 360, 1.0, -1)
        cv2.rectangle(m, (P(cx - 0.55 * fw), P(cy + 0.5 * fh)), (P(cx + 0.55 * fw), fs), 1.0, -1)   # neck
        m = cv2.erode(m, np.ones((3, 3), np.uint8))
        m = cv2.GaussianBlur(m, (0, 0), max(0.5, 0.6 * fs / 144))
        fade = np.clip((fs - 1 - np.arange(fs, dtype=np.float32)) / (0.06 * fs), 0, 1)
        return m * fade[:, None]

    def _closed_eyes(self, face: np.ndarray) -> np.ndarray:
        """The face with both eyes closed: lids in shaded skin over the eyes, a dark lash line."""
        import cv2

        idn, fs = self.identity, self.p.face_size
        g = _geometry(idn, fs)
        ew, eh = g.eye_size
        out = face.copy()
        for ex, ey in g.eyes:
            lid = np.zeros((fs, fs), np.float32)
            cv2.ellipse(lid, (int(round(ex)), int(round(ey))), (int(round(1.2 * ew)), int(round(1.5 * eh))),
                        0, 0, 360, 1.0, -1)
            lid = cv2.GaussianBlur(lid, (0, 0), max(0.6, 0.35 * eh))[..., None]
            out = out * (1 - lid) + lid * (np.asarray(idn.skin, np.float32) * 0.8)
            lash = np.zeros((fs, fs), np.float32)
            cv2.ellipse(lash, (int(round(ex)), int(round(ey - 0.3 * eh))),
                        (int(round(1.05 * ew)), int(round(0.9 * eh))), 0, 20, 160, 1.0,
                        max(1, int(round(0.35 * eh))), cv2.LINE_AA)
            lash = cv2.GaussianBlur(lash, (0, 0), 0.6)[..., None]
            out = out * (1 - lash) + lash * (np.asarray(idn.hair, np.float32) * 0.5)
        return out.astype(np.float32)

    # -- displacement fields (tile pixels, peak 1 px) ----------------------------------------
    def _field(self, key: str) -> np.ndarray:
        if key not in self.fields:
            fs, idn, g = self.p.face_size, self.identity, self.geometry
            if key == "blink":
                xs = np.arange(fs, dtype=np.float32)[None, :]
                ys = np.arange(fs, dtype=np.float32)[:, None]
                ew, eh = g.eye_size
                dx = np.zeros((fs, fs), np.float32)
                dy = np.zeros((fs, fs), np.float32)
                for ex, ey in g.eyes:  # the upper lid slides down over the eye
                    bx, by = _bump(xs, ys, (ex, ey - 0.9 * eh), (1.1 * ew, 1.2 * eh), (0.0, 1.0))
                    dx += bx
                    dy += by
                f = np.stack([dx, dy], -1)
            elif key == "talk":
                xs = np.arange(fs, dtype=np.float32)[None, :]
                ys = np.arange(fs, dtype=np.float32)[:, None]
                mx, my = g.mouth
                mw = (g.corners[1][0] - g.corners[0][0]) / 2
                lh = idn.lip_h * fs
                # jaw drop: lower lip and chin down; the upper lip a little up
                lx, ly = _bump(xs, ys, (mx, my + 1.6 * lh), (0.95 * mw, 2.4 * lh), (0.0, 1.0))
                ux, uy = _bump(xs, ys, (mx, my - 0.9 * lh), (0.7 * mw, 0.8 * lh), (0.0, -1.0), 0.3)
                f = np.stack([lx + ux, ly + uy], -1).astype(np.float32)
            else:
                f = action_field(key, idn, fs).astype(np.float32)
            peak = float(np.sqrt((f ** 2).sum(-1)).max())
            self.fields[key] = (f / peak if peak > 0 else f).astype(np.float32)
        return self.fields[key]

    def _local(self, e: _Ep, i: int) -> tuple[np.ndarray | None, float]:
        """The displacement field (scaled to pixels at frame i) of the active episode."""
        c = float(e.curve[i - e.onset])
        if c <= 0:
            return None, 0.0
        if e.kind in ("micro", "macro"):
            key = "expr:" + "+".join(f"{a}@{x:.6f}" for a, x in zip(e.actions, e.amplitudes))
            if key not in self.fields:
                total = np.zeros((self.p.face_size, self.p.face_size, 2), np.float32)
                for a, x in zip(e.actions, e.amplitudes):
                    total += np.float32(x) * self._field(a)
                if len(self.fields) > 64:  # bounded: expression fields are rebuilt when needed
                    for k in [k for k in self.fields if k.startswith("expr:")]:
                        del self.fields[k]
                self.fields[key] = total
            return self.fields[key], c
        if e.kind == "blink":
            return self._field("blink"), c * e.amplitudes[0]
        if e.kind == "talk":
            return self._field("talk"), c * e.amplitudes[0]
        return None, 0.0

    # -- pose ----------------------------------------------------------------------------------
    def _pose(self, i: int, e: _Ep | None) -> tuple[float, float, float, float, float]:
        """(tx, ty, roll degrees, sx, sy) of the head at frame i."""
        tx = ty = rot = 0.0
        sx = sy = 1.0
        if self.p.head_motion:
            t = i / self.p.fps
            vals = [float(np.sum(a * np.sin(2 * np.pi * f * t + ph))) for a, f, ph in self.sway]
            tx, ty = _SWAY_PX * vals[0], _SWAY_PX * vals[1]
            rot = _SWAY_DEG * vals[2]
            if e is not None and e.kind in ("head_turn", "nod"):
                c = float(e.curve[i - e.onset])
                a = e.amplitudes[0] * c
                rot += e.roll * c
                fw, fh = self.face_px
                if e.kind == "head_turn":  # yaw: the face slides sideways and narrows
                    tx += a
                    sx = 1.0 - 0.5 * (a / fw) ** 2
                else:                      # pitch: up or down, foreshortened
                    ty += a
                    sy = 1.0 - 0.5 * (a / fh) ** 2
        return tx, ty, rot, sx, sy

    def _inverse_affine(self, pose: tuple[float, float, float, float, float]) -> np.ndarray:
        """2x3 matrix from frame pixels to tile pixels (the inverse of the head's placement)."""
        tx, ty, rot, sx, sy = pose
        cx, cy = self.pivot
        ox, oy = self.origin
        th = math.radians(rot)
        c, s = math.cos(th), math.sin(th)
        # forward: q = o + pivot + t + R @ S @ (p - pivot); inverse: p = pivot + S^-1 R^T (q - o - pivot - t)
        inv = np.array([[c / sx, s / sx], [-s / sy, c / sy]], np.float64)
        off = -inv @ np.array([ox + cx + tx, oy + cy + ty]) + np.array([cx, cy])
        return np.hstack([inv, off[:, None]]).astype(np.float32)

    # -- one frame -------------------------------------------------------------------------------
    def frame(self, i: int) -> np.ndarray:
        cv2 = self._cv2
        e = self.schedule.active(i)
        minv = self._inverse_affine(self._pose(i, e))
        rx0, ry0, rx1, ry1 = self.roi
        tile = self.tile
        d, scale = (None, 0.0) if e is None else self._local(e, i)
        if e is not None and e.kind == "blink":
            c = float(e.curve[i - e.onset])
            tile = tile + np.float32(c) * self.blink_diff
        if d is None:
            m = minv.copy()
            m[:, 2] += minv[:, 0] * rx0 + minv[:, 1] * ry0  # ROI pixel (0, 0) is frame pixel (rx0, ry0)
            warped = cv2.warpAffine(tile, m, (rx1 - rx0, ry1 - ry0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        else:
            # backward warping as in the clip corpus: output pixel x samples the neutral tile at
            # p - s * d(p), p = A^-1(x), so the skin around each feature moves by s * d
            u, v = self.grid_u, self.grid_v
            px = minv[0, 0] * u + minv[0, 1] * v + minv[0, 2]
            py = minv[1, 0] * u + minv[1, 1] * v + minv[1, 2]
            dd = cv2.remap(d, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            px -= np.float32(scale) * dd[..., 0]
            py -= np.float32(scale) * dd[..., 1]
            warped = cv2.remap(tile, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        a = warped[..., 3]
        inv = 1.0 - a
        out = cv2.multiply(self.bg_roi, cv2.merge([inv, inv, inv]))
        out += warped[..., :3]
        frame = self.bg_u8.copy()
        cv2.convertScaleAbs(out, dst=frame[ry0:ry1, rx0:rx1])
        if self.p.noise > 0:
            r = np.random.default_rng([self.p.seed, 31, i])
            k, oy, ox = int(r.integers(_NOISE_BANK)), int(r.integers(32)), int(r.integers(32))
            H, W = self.p.height, self.p.width
            cv2.add(frame, self.noise_pos[k, oy:oy + H, ox:ox + W], dst=frame)
            cv2.subtract(frame, self.noise_neg[k, oy:oy + H, ox:ox + W], dst=frame)
        return frame


def _setup(seconds: float, fps: float, width: int, height: int, seed: int, n_micro: int | None,
           n_macro: int | None, blinks: bool, head_motion: bool, talking: bool, face_size: int | None,
           noise: float) -> tuple[_Params, _Schedule]:
    p = _params(seconds, fps, width, height, seed, n_micro, n_macro, blinks, head_motion, talking, face_size,
                noise)
    return p, _Schedule(p, _assign_cells(p))


def _placement(p: _Params) -> tuple[Identity, int, int, int]:
    """The face (identity) and where its tile sits: (identity, x0, y0, margin for head motion).
    Near the centre of the frame and a little high, jittered by the seed."""
    idn = _identity(np.random.default_rng([p.seed, 1, 0]))
    jx, jy = np.random.default_rng([p.seed, 2]).uniform(-1, 1, 2)
    W, H, fs = p.width, p.height, p.face_size
    m = int(math.ceil(0.15 * fs))  # the largest head turn (0.09) plus roll, sway and foreshortening
    x0 = int(round((W - fs) / 2 + jx * max(0.0, (W - fs) / 2 - m) * 0.5))
    y0 = int(round((H - fs) / 2 - 0.04 * H + jy * 0.02 * H))
    return idn, min(max(x0, m), W - fs - m), min(max(y0, m), H - fs - m), m


def _face_box(idn: Identity, x0: int, y0: int, fs: int) -> tuple[float, float, float, float]:
    return (x0 + (idn.cx - idn.face_w) * fs, y0 + (idn.cy - idn.face_h) * fs,
            x0 + (idn.cx + idn.face_w) * fs, y0 + (idn.cy + idn.face_h) * fs)


# -- public API ------------------------------------------------------------------------------
def plan_long_video(*, seconds: float = 60.0, fps: float = 30.0, width: int = 640, height: int = 480, seed: int = 0,
                    n_micro: int | None = None, n_macro: int | None = None, blinks: bool = True,
                    head_motion: bool = True, talking: bool = True, face_size: int | None = None,
                    noise: float = _NOISE_SIGMA, video: str = "synthetic_long") -> LongVideoTruth:
    """The truth of the video :func:`generate_long_video` would write with these parameters,
    without rendering a frame (milliseconds for an hour of video)."""
    p, schedule = _setup(seconds, fps, width, height, seed, n_micro, n_macro, blinks, head_motion, talking,
                         face_size, noise)
    idn, x0, y0, _ = _placement(p)
    return _truth(p, schedule, video, _face_box(idn, x0, y0, p.face_size))


def iter_long_video_frames(*, seconds: float = 60.0, fps: float = 30.0, width: int = 640, height: int = 480,
                           seed: int = 0, n_micro: int | None = None, n_macro: int | None = None,
                           blinks: bool = True, head_motion: bool = True, talking: bool = True,
                           face_size: int | None = None, noise: float = _NOISE_SIGMA,
                           start: int = 0) -> Iterator[np.ndarray]:
    """The frames of :func:`generate_long_video` (BGR uint8, ``height`` x ``width``), one at a
    time and without encoding, from frame ``start``. Pair with :func:`plan_long_video` for
    the truth. Nothing but the current frame is held, so any length streams."""
    p, schedule = _setup(seconds, fps, width, height, seed, n_micro, n_macro, blinks, head_motion, talking,
                         face_size, noise)
    if not isinstance(start, (int, np.integer)) or not 0 <= start <= p.n_frames:
        raise ConfigError(f"synthetic long video: start={start!r}; expected a frame index in 0..{p.n_frames}")
    renderer = _Renderer(p, schedule)
    for i in range(int(start), p.n_frames):
        yield renderer.frame(i)


#: Codecs tried for each container when ``codec="auto"``, in order.
_AUTO_CODECS = {".mp4": ("mp4v",), ".avi": ("MJPG",)}


@functools.lru_cache(maxsize=None)
def _round_trips(fourcc: str, suffix: str) -> bool:
    """Whether this OpenCV build writes ``fourcc`` in a ``suffix`` container and reads back the
    same number of frames with about the same pixels (a tiny file in a temporary folder)."""
    import cv2

    frames = [np.full((48, 64, 3), v, np.uint8) for v in (40, 120, 200)]
    for f, v in zip(frames, (40, 120, 200)):
        f[8:24, 8:40] = 255 - v
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "probe" + suffix)
        w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), 25.0, (64, 48))
        try:
            if not w.isOpened():
                return False
            for f in frames:
                w.write(f)
        finally:
            w.release()
        cap = cv2.VideoCapture(path)
        try:
            got = []
            while True:
                ok, f = cap.read()
                if not ok:
                    break
                got.append(f)
        finally:
            cap.release()
    return len(got) == len(frames) and all(
        g.shape == f.shape and float(np.abs(g.astype(np.int16) - f).mean()) < 12 for g, f in zip(got, frames))


def _choose_codec(path: Path, codec: str) -> tuple[Path, str]:
    suffix = path.suffix.lower()
    if codec != "auto":
        if not (isinstance(codec, str) and len(codec) == 4):
            raise ConfigError(f"synthetic long video: codec={codec!r}; expected 'auto' or a four-character code "
                              "such as 'mp4v' or 'MJPG'")
        if not _round_trips(codec, suffix):
            raise ConfigError(f"synthetic long video: this OpenCV build cannot write and read back codec {codec!r} "
                              f"in a {suffix or 'suffix-less'} file ({path}); expected codec='auto', or 'mp4v' "
                              "in .mp4 / 'MJPG' in .avi")
        return path, codec
    if suffix not in _AUTO_CODECS:
        raise ConfigError(f"synthetic long video: cannot choose a codec for {path} (suffix {suffix!r}); expected a "
                          ".mp4 or .avi path, or an explicit codec")
    for c in _AUTO_CODECS[suffix]:
        if _round_trips(c, suffix):
            return path, c
    if _round_trips("MJPG", ".avi"):
        alt = path.with_suffix(".avi")
        log.warning("this OpenCV build cannot round-trip %s video; writing Motion-JPEG to %s instead", suffix, alt)
        return alt, "MJPG"
    raise DataError("this OpenCV build can neither write nor read back mp4 (mp4v) or avi (MJPG) video",
                    path=path, expected="an OpenCV with its FFmpeg video backend (opencv-python wheels have it)")


def generate_long_video(path: str | Path, *, seconds: float = 60.0, fps: float = 30.0, width: int = 640,
                        height: int = 480, seed: int = 0, n_micro: int | None = None, n_macro: int | None = None,
                        blinks: bool = True, head_motion: bool = True, talking: bool = True, codec: str = "auto",
                        face_size: int | None = None, noise: float = _NOISE_SIGMA,
                        progress: Callable[[int, int], None] | None = None) -> LongVideoTruth:
    """Write a synthetic long video to ``path`` and its truth to ``<stem>.truth.csv`` beside it.

    Args:
        path: the video file, ``.mp4`` or ``.avi`` (its parent folder is created).
        seconds, fps, width, height: length, frame rate (10-1000) and frame size (even).
        seed: everything drawn (face, canvas, events, noise) comes from it; the same
            parameters give the same frames, and with the default counts a longer video
            begins with the frames of a shorter one (see the module docstring).
        n_micro, n_macro: exact numbers of micro- and macro-expressions (one per whole 6 s
            cell at most); None: :data:`MICRO_PER_MINUTE` / :data:`MACRO_PER_MINUTE` on
            average, drawn cell by cell. Giving one of the two makes the other its expected
            count at the default rate.
        blinks, head_motion, talking: include these distractors. ``head_motion=False`` also
            removes the slow sway, so the head is perfectly still.
        codec: ``"auto"``, or a FourCC. Auto writes MPEG-4 Part 2 (``mp4v``) into ``.mp4`` and
            Motion-JPEG (``MJPG``) into ``.avi``. ``mp4v`` because the FFmpeg bundled with the
            opencv-python wheels encodes and decodes it (checked with OpenCV 4.14), whereas
            H.264 (``avc1``) needs an encoder those wheels lack (there only a hardware encoder
            is found, and it fails). Before writing, the codec is checked once per process by a
            round trip (write three frames, read them back); if ``mp4v`` fails, the video is
            written as MJPG to ``<stem>.avi`` instead (a warning says so and
            :attr:`LongVideoTruth.path` is the file written). OpenCV sets mp4v's bitrate itself
            (``VIDEOWRITER_PROP_QUALITY`` is refused): decoded frames are about 38 dB PSNR from
            the noise-free render, most camera noise is smoothed away, and a micro-expression's
            local motion survives (its largest smoothed frame difference on the face changes by
            a few grey levels out of 10-60). MJPG keeps the noise; its files are about 9x larger
            and encode about 5x slower.
        face_size: side of the face tile in pixels (default half the smaller frame side).
        noise: camera noise, standard deviation in grey levels.
        progress: called with (frames done, frames total) about once a second of video.

    Returns the truth (also written as CSV; the distractors go to ``<stem>.distractors.csv``).
    The video is written under a temporary name and renamed when complete (replacing any file
    there), so an interrupted run never leaves a truncated file under ``path``. Progress is
    emitted as ``synthetic_video`` stage events; the generation speed is logged (info).
    """
    import cv2

    from mekit.events import Stage

    p, schedule = _setup(seconds, fps, width, height, seed, n_micro, n_macro, blinks, head_motion, talking,
                         face_size, noise)
    target, fourcc = _choose_codec(Path(path), codec)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the folder for the video ({e.strerror or e})", path=target.parent,
                        expected="a writable folder") from None
    tmp = target.with_name(f".{target.stem}.tmp-{os.getpid()}{target.suffix}")
    renderer = _Renderer(p, schedule)
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), p.fps, (p.width, p.height))
    if not writer.isOpened():
        writer.release()
        tmp.unlink(missing_ok=True)
        raise DataError(f"cannot open a {fourcc} video writer", path=target, expected="a writable path")
    n = p.n_frames
    step = max(1, int(round(p.fps)))
    t0 = time.perf_counter()
    try:
        with Stage("synthetic_video", total=n, video=target.name) as stage:
            for i in range(n):
                writer.write(renderer.frame(i))
                if (i + 1) % step == 0 or i + 1 == n:
                    stage.advance((i + 1) - stage.done)
                    if progress is not None:
                        progress(i + 1, n)
        writer.release()
        os.replace(tmp, target)
    except BaseException:
        writer.release()
        tmp.unlink(missing_ok=True)
        raise
    elapsed = time.perf_counter() - t0
    log.info("synthetic long video %s: %d frames in %.1f s (%.0f frames/s, %s)", target, n, elapsed,
             n / max(elapsed, 1e-9), fourcc)
    truth_path = target.with_name(target.stem + ".truth.csv")
    truth = _truth(p, schedule, target.stem, renderer.face_box, path=target, codec=fourcc, truth_path=truth_path)
    truth.write_csv(truth_path)
    truth.write_csv(target.with_name(target.stem + ".distractors.csv"), which="distractors")
    return truth
