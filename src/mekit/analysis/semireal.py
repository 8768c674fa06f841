"""Semi-real long sequences: coded clips of a corpus set between still stretches, with exact truth.

Clip corpora (CASME II, SAMM, SMIC, CAS(ME)^3 part A) hold each expression from its onset to its
offset only, so a spotter cannot be scored on them as they are: there is nothing to spot it
against. Here every subject's clips become one sequence, each clip set between still stretches
of its own first and last frame (the face at rest before the onset and after the offset, as the
coder saw it), so the truth is exact: an interval is where a clip lies, of kind ``micro`` when
it lasts at most 0.5 s and ``macro`` otherwise (:func:`mekit.analysis.spot_metrics.kind_from_duration`).
Every frame gets camera-like Gaussian noise (``noise`` grey levels, drawn per frame), so repeated
frames are not identical and a spotter's noise estimate is that of a camera, not zero.

What such a sequence shows and does not: it tests whether a spotter finds real facial
micro-movements (real skin, real action units at their real amplitudes) against a still face
with sensor noise, and how its onsets and offsets match the coded ones. It has no head motion,
no talking, no blinks outside the clips and no spontaneous macro-expressions between them, and
the joins are artificial: where one clip's last frame is followed by the next clip's first, the
face jumps from one recording's registration to another's (a step that no real video has).

Frames are read one at a time as the sequence is streamed (:meth:`SemiRealSequence.crops`):
nothing but the current clip frame and the clip's first and last are held. Corpora whose frames
are the corpus's own registered face crops (CASME II ``Cropped``) are used whole, resized to
``size`` pixels and turned grey, as :class:`mekit.analysis.spotting.MotionSpotter` reads a
tracker's crops.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from mekit.analysis.spot_metrics import kind_from_duration
from mekit.errors import ConfigError, DataError

__all__ = ["SemiRealSequence", "TruthSpan", "semireal_sequences"]

#: Default length range of each still stretch (seconds, drawn per clip side): short stretches
#: keep a corpus's sequences short, long enough for references a second away to be at rest.
STILL_SECONDS = (0.5, 1.5)
#: Default camera noise (grey levels, standard deviation), as the ``realdata`` spotting test.
NOISE = 1.5


@dataclass(frozen=True)
class TruthSpan:
    """Where one clip lies in its sequence (frame indices of the sequence, both included)."""

    onset: int
    apex: int | None
    offset: int
    kind: str
    sample_id: str
    emotion: str = ""
    label: str = ""


@dataclass(frozen=True)
class _Clip:
    row: Any                  # the SampleTable row (a pandas Series)
    pre: int                  # still frames before the clip
    post: int                 # still frames after it
    start: int                # sequence index of the clip's first frame


@dataclass(frozen=True)
class SemiRealSequence:
    """One subject's clips as one long sequence (see the module notes). ``crops()`` streams it."""

    name: str
    group: str
    fps: float
    n_frames: int
    truth: tuple[TruthSpan, ...]
    size: int
    noise: float
    seed: int
    clips: tuple[_Clip, ...]

    def crops(self) -> Iterator[np.ndarray]:
        """The sequence's grey ``size`` x ``size`` uint8 crops, frame 0 first, with fresh noise
        on every frame (the same on every call: the noise is seeded by the sequence)."""
        rng = np.random.default_rng([self.seed, _stable(self.name)])
        for clip in self.clips:
            row = clip.row
            on, off = int(row["onset"]), int(row["offset"])
            first = self._read(row, on)
            for _ in range(clip.pre):
                yield self._noisy(first, rng)
            last = first
            for f in range(on, off + 1):
                last = first if f == on else self._read(row, f)
                yield self._noisy(last, rng)
            for _ in range(clip.post):
                yield self._noisy(last, rng)

    def _read(self, row: Any, frame: int) -> np.ndarray:
        from mekit.data.schema import frame_path

        path = frame_path(row, frame)
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise DataError(f"semi-real sequence {self.name}: frame {frame} of {row['sample_id']} cannot be read",
                            path=path, expected="a readable image (the clip folder holds onset..offset)")
        return cv2.resize(img, (self.size, self.size), interpolation=cv2.INTER_AREA).astype(np.float32)

    def _noisy(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.noise <= 0:
            return img.astype(np.uint8)
        return np.clip(img + rng.normal(0.0, self.noise, img.shape).astype(np.float32) + 0.5, 0, 255).astype(np.uint8)


def _stable(text: str) -> int:
    """A stable 63-bit number from a text (Python's hash() changes between runs)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


def semireal_sequences(table: Any, *, fps: float | None = None, still: tuple[float, float] = STILL_SECONDS,
                       noise: float = NOISE, size: int = 128, seed: int = 0) -> list[SemiRealSequence]:
    """One :class:`SemiRealSequence` per subject of a :class:`~mekit.data.schema.SampleTable` of
    frame-folder clips (rows without onset/offset or not frame folders are left out, with a count
    in the log). Clips follow in the table's order of ``sample_id``; each still stretch lasts
    ``still`` seconds (uniform, drawn from ``seed`` and the subject). ``fps`` defaults to the
    table's (all its rows must agree). Nothing is read here: frames are read as they are streamed.
    """
    import logging

    import pandas as pd

    log = logging.getLogger(__name__)
    lo, hi = (float(v) for v in still)
    if not 0 <= lo <= hi or not math.isfinite(hi):
        raise ConfigError(f"semi-real still stretch: expected 0 <= min <= max seconds, got {still!r}")
    if not (noise >= 0 and math.isfinite(noise)):
        raise ConfigError(f"semi-real noise: expected a standard deviation >= 0 grey levels, got {noise!r}")
    if int(size) < 16:
        raise ConfigError(f"semi-real crop size: expected at least 16 pixels, got {size!r}")
    df = table.df if hasattr(table, "df") else table
    usable = df[(df["media"] == "frames") & df["onset"].notna() & df["offset"].notna()]
    if len(usable) < len(df):
        log.info("semi-real sequences: %d of %d rows left out (not a frame folder, or no onset/offset)",
                 len(df) - len(usable), len(df))
    if fps is None:
        rates = sorted({float(v) for v in usable["fps"].dropna()})
        if len(rates) != 1:
            raise DataError("semi-real sequences need one frame rate", value=rates,
                            expected="every clip at the same fps (or give fps=)")
        fps = rates[0]
    fps = float(fps)
    out = []
    for subject, rows in sorted(usable.groupby("subject"), key=lambda kv: str(kv[0])):
        rng = np.random.default_rng([int(seed), _stable(str(subject))])
        clips, truth, pos = [], [], 0
        for _, row in rows.sort_values("sample_id").iterrows():
            on, off = int(row["onset"]), int(row["offset"])
            if off < on:
                log.warning("semi-real sequences: %s has offset %d before onset %d; left out", row["sample_id"],
                            off, on)
                continue
            pre, post = (int(round(float(rng.uniform(lo, hi)) * fps)) for _ in range(2))
            start = pos + pre
            n = off - on + 1
            apex = row.get("apex")
            apex_i = None if apex is None or pd.isna(apex) else start + int(apex) - on
            clips.append(_Clip(row, pre, post, start))
            truth.append(TruthSpan(start, apex_i, start + n - 1, kind_from_duration(start, start + n - 1, fps),
                                   str(row["sample_id"]), str(row.get("emotion") or ""), str(row.get("label") or "")))
            pos = start + n + post
        if clips:
            out.append(SemiRealSequence(str(subject), str(subject), fps, pos, tuple(truth), int(size), float(noise),
                                        int(seed), tuple(clips)))
    return out
