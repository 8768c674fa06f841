"""Validate a dataset before anything is trained on it: ``mekit data check``.

The checks read only the :class:`~mekit.data.schema.SampleTable`, so they are the same for
every loader: per-class and per-subject counts; missing clips and frames; unreadable or
truncated images; apex outside [onset, offset]; labels outside the applied scheme; and
duplicate or near-duplicate images across splits (train/test leakage). A bad sample is listed
with its reason and left out of the counts; the rest of the table is kept
(:attr:`CheckReport.table`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mekit.data.labels import CANONICAL, LabelScheme, apply_scheme, get_scheme
from mekit.data.schema import LoadReport, Problem, SampleTable, frame_path
from mekit.errors import MekitError

log = logging.getLogger(__name__)

#: Largest Hamming distance between 64-bit perceptual hashes counted as a near-duplicate.
#: Measured on CK+48 (981 greyscale 48x48 crops, all 480k pairs): frames of one sequence
#: differ by a median of 2 bits (83% within 4), images of different subjects by a median of
#: 22 bits (1st percentile 12; 15 of 476,397 pairs within 4). So 4 catches copies and
#: near-identical frames while almost never pairing two different people.
DEFAULT_DUPLICATE_THRESHOLD = 4

Progress = Callable[[str, int, int], None]


@dataclass
class CheckReport:
    """What :func:`check_dataset` found. Counts cover only the samples that passed."""

    dataset: str
    n_samples: int
    n_subjects: int
    classes: dict[str, int]
    subjects: dict[str, int]
    subject_classes: dict[str, dict[str, int]]
    splits: dict[str, dict[str, int]]
    missing: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    label_mapping: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    scheme: str | None = None
    n_checked: int = 0
    #: The samples that passed, with the merged report (not serialised).
    table: SampleTable | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """True when nothing is missing, broken or leaking."""
        return not (self.missing or self.problems or self.duplicates)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the shape ``mekit data check --json`` prints)."""
        return {
            "dataset": self.dataset,
            "n_samples": self.n_samples,
            "n_subjects": self.n_subjects,
            "n_checked": self.n_checked,
            "scheme": self.scheme,
            "classes": dict(self.classes),
            "subjects": dict(self.subjects),
            "subject_classes": {s: dict(c) for s, c in self.subject_classes.items()},
            "splits": {s: dict(c) for s, c in self.splits.items()},
            "missing": list(self.missing),
            "problems": [p.to_dict() for p in self.problems],
            "duplicates": [dict(d) for d in self.duplicates],
            "label_mapping": dict(self.label_mapping),
            "dropped": dict(self.dropped),
            "notes": list(self.notes),
            "ok": self.ok,
        }


def check_dataset(table_or_loader_name: SampleTable | str, root: str | Path | None = None, *,
                  label_scheme: str | LabelScheme | None = None,
                  duplicate_threshold: int | None = DEFAULT_DUPLICATE_THRESHOLD,
                  check_images: bool = True, progress: Progress | None = None,
                  **loader_options: Any) -> CheckReport:
    """Check a table, or load one by loader name first (``root`` and ``loader_options`` go to it).

    Args:
        label_scheme: scheme to apply (name, YAML path or LabelScheme); labels outside its
            classes are problems. A table that already carries a scheme is checked against it.
        duplicate_threshold: largest pHash Hamming distance reported as a near-duplicate across
            splits; ``None`` skips the duplicate search.
        check_images: open every image (and a clip's onset/apex/offset frames) to find
            unreadable or truncated files; ``False`` only checks that files exist.
        progress: called as ``progress(stage, done, total)`` while images are read.
    """
    if isinstance(table_or_loader_name, SampleTable):
        table = table_or_loader_name
        if label_scheme is not None:
            table = apply_scheme(table, label_scheme)
    else:
        from mekit.data import load_dataset

        table = load_dataset(str(table_or_loader_name), root, label_scheme=label_scheme, **loader_options)
    scheme = getattr(table, "scheme", None)
    if scheme is None and label_scheme is not None:
        scheme = get_scheme(label_scheme)

    df = table.df
    known_missing = set(table.report.missing)
    missing: list[str] = list(table.report.missing)
    problems: list[Problem] = list(table.report.problems)
    notes: list[str] = list(table.report.notes)
    bad: set[str] = set()

    def flag(sid: str, reason: str) -> None:
        problems.append(Problem(sid, reason))
        bad.add(sid)

    # labels
    for sid, lab in zip(df["sample_id"], df["label"]):
        if _isna(lab) or str(lab) == "":
            flag(sid, "no label")
        elif scheme is not None and lab not in scheme.classes:
            flag(sid, f"label {lab!r} is not a class of scheme {scheme.name} {list(scheme.classes)}")
    if scheme is None:
        known = set(CANONICAL.values())
        odd = sorted({str(x) for x in df["label"].dropna()} - known)
        if odd:
            notes.append(f"labels that are not known emotion names (check the folder/label spelling): {odd}")

    # apex inside [onset, offset]
    for sid, on, ap, off in zip(df["sample_id"], df["onset"], df["apex"], df["offset"]):
        on, ap, off = (None if _isna(v) else int(v) for v in (on, ap, off))
        if on is not None and off is not None and on > off:
            flag(sid, f"onset {on} is after offset {off}")
        elif ap is not None and on is not None and off is not None and not on <= ap <= off:
            flag(sid, f"apex {ap} is outside [onset {on}, offset {off}]")

    # files: existence, readability, frames
    rows = list(df.itertuples(index=False))
    total = len(rows)
    with _strict_pil():
        for i, r in enumerate(rows):
            if progress is not None and (i % 25 == 0 or i == total - 1):
                progress("reading files", i + 1, total)
            if r.sample_id in bad:
                continue
            try:
                reason, is_missing = _check_files(r, check_images)
            except (MekitError, KeyError, IndexError, ValueError, TypeError, OSError) as e:
                # a malformed row (say a frame_template without '{frame}') is this sample's problem
                reason, is_missing = f"cannot check its files ({type(e).__name__}: {e})", False
            if reason is None:
                continue
            if is_missing:
                bad.add(r.sample_id)
                if r.sample_id not in known_missing and str(r.path) not in known_missing:
                    missing.append(r.sample_id)
                problems.append(Problem(r.sample_id, reason))
            else:
                flag(r.sample_id, reason)

    kept = table.subset(~df["sample_id"].isin(bad)) if bad else table

    # near-duplicates across splits (train/test leakage)
    duplicates: list[dict[str, Any]] = []
    split_names = sorted({str(s) for s in kept.df["split"].fillna("")})
    if duplicate_threshold is not None and len(split_names) > 1:
        duplicates = find_cross_split_duplicates(kept, int(duplicate_threshold), progress=progress)
        if duplicates:
            notes.append(f"{len(duplicates)} image pairs across splits are duplicates or near-duplicates "
                         f"(pHash distance <= {duplicate_threshold}): test results on them are not held out")

    kdf = kept.df
    subj_classes: dict[str, dict[str, int]] = {}
    for (subj, lab), n in kdf.groupby(["subject", "label"]).size().items():
        subj_classes.setdefault(str(subj), {})[str(lab)] = int(n)
    splits: dict[str, dict[str, int]] = {}
    for (sp, lab), n in kdf.assign(split=kdf["split"].fillna("")).groupby(["split", "label"]).size().items():
        splits.setdefault(str(sp), {})[str(lab)] = int(n)
    merged = LoadReport(missing=missing, problems=problems, dropped=dict(table.report.dropped),
                        notes=notes, label_mapping=dict(table.report.label_mapping),
                        sources=dict(table.report.sources), corpora=dict(table.report.corpora),
                        corpora_absent=dict(table.report.corpora_absent))
    kept = SampleTable(kdf, merged, table.name, scheme)
    return CheckReport(
        dataset=table.name or (str(kdf["dataset"].iloc[0]) if len(kdf) else ""),
        n_samples=len(kdf), n_subjects=int(kdf["subject"].nunique()),
        classes=kept.class_counts(),
        subjects={str(k): int(v) for k, v in kdf["subject"].value_counts().sort_index().items()},
        subject_classes=dict(sorted(subj_classes.items())), splits=dict(sorted(splits.items())),
        missing=missing, problems=problems, duplicates=duplicates,
        label_mapping=dict(table.report.label_mapping), dropped=dict(table.report.dropped),
        notes=notes, scheme=scheme.name if scheme is not None else None, n_checked=total, table=kept,
    )


# -- files ------------------------------------------------------------------------------------
def _isna(v: Any) -> bool:
    return v is None or bool(pd.isna(v))


@contextmanager
def _strict_pil() -> Iterator[None]:
    """Make PIL raise on truncated files for the duration of the check (its default)."""
    from PIL import ImageFile

    old = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old


def read_error(path: Path) -> str | None:
    """Why an image cannot be decoded completely, or None when it can."""
    from PIL import Image, UnidentifiedImageError

    from mekit.media import image_defect

    # The end-marker check the readers use (mekit.preprocess.io.decode_image) first, so check
    # and every later stage agree on what is truncated; PIL then finds the rest.
    try:
        with open(path, "rb") as f:
            defect = image_defect(f.read())
    except OSError as e:
        return f"cannot read the file ({e.strerror or e})"
    if defect is not None:
        return defect
    try:
        with Image.open(path) as im:
            im.load()
    except UnidentifiedImageError:
        return "not a readable image (unknown or corrupt format)"
    except (OSError, SyntaxError, ValueError) as e:  # PIL raises OSError on truncation
        msg = str(e) or type(e).__name__
        return f"truncated or corrupt image ({msg})"
    except Exception as e:  # noqa: BLE001 - a decoder bug must not stop the whole check
        return f"cannot decode image ({type(e).__name__}: {e})"
    return None


def _check_files(r: Any, check_images: bool) -> tuple[str | None, bool]:
    """(reason, is_missing) for one row; reason None when the sample is fine."""
    media = r.media
    path = Path(str(r.path)) if r.path is not None and not _isna(r.path) else None
    if path is None:
        return "no path", True
    if media == "frames":
        if not path.is_dir():
            return f"clip folder missing: {path}", True
        on, ap, off = (None if _isna(v) else int(v) for v in (r.onset, r.apex, r.offset))
        row = {"media": media, "path": str(path), "frame_template": r.frame_template, "sample_id": r.sample_id}
        try:
            present = set(os.listdir(path))
        except OSError as e:
            return f"cannot list clip folder ({e.strerror})", False
        if on is not None and off is not None:
            absent = [f for f in range(on, off + 1) if frame_path(row, f).name not in present]
            if absent:
                return (f"{len(absent)} of {off - on + 1} frames missing in {path.name} "
                        f"(e.g. {frame_path(row, absent[0]).name}; expected frames {on}..{off})"), False
        elif not present:
            return f"clip folder is empty: {path}", True
        if check_images:
            for f in dict.fromkeys(x for x in (on, ap, off) if x is not None):
                err = read_error(frame_path(row, f))
                if err:
                    return f"frame {f} ({frame_path(row, f).name}): {err}", False
        return None, False
    if not path.exists():
        return f"file missing: {path}", True
    if media in ("image", "flow") and check_images:
        err = read_error(path)
        if err:
            return f"{path.name}: {err}", False
    elif media == "video" and check_images:
        err = _video_error(path)
        if err:
            return f"{path.name}: {err}", False
    return None, False


def _video_error(path: Path) -> str | None:
    try:
        import av

        with av.open(str(path)) as c:
            next(c.decode(video=0))
    except StopIteration:
        return "video has no frames"
    except Exception as e:  # noqa: BLE001 - PyAV raises many error types for broken files
        return f"cannot decode video ({type(e).__name__}: {e})"
    return None


# -- duplicates -------------------------------------------------------------------------------
def representative_image(row: Any) -> Path | None:
    """The still image that stands for a sample: the image itself, or a clip's apex frame
    (the middle of onset..offset where the apex is empty); None for videos."""
    media = row["media"]
    if media in ("image", "flow"):
        return Path(row["path"])
    if media == "frames":
        on, ap, off = (None if _isna(row[k]) else int(row[k]) for k in ("onset", "apex", "offset"))
        f = ap if ap is not None else ((on + off) // 2 if on is not None and off is not None else on)
        if f is None:
            frames = sorted(Path(row["path"]).glob("*")) if Path(row["path"]).is_dir() else []
            return frames[len(frames) // 2] if frames else None
        return frame_path(row, f)
    return None


def _phash_bits(path: Path) -> np.ndarray | None:
    import imagehash
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(imagehash.phash(im).hash, dtype=bool).ravel()
    except Exception:  # noqa: BLE001 - unreadable files were already reported
        return None


def find_cross_split_duplicates(table: SampleTable, threshold: int = DEFAULT_DUPLICATE_THRESHOLD,
                                progress: Progress | None = None) -> list[dict[str, Any]]:
    """Pairs of samples in different splits whose perceptual hashes (imagehash.phash, 64 bits)
    differ in at most ``threshold`` bits, closest first.

    Any two different split names count (train vs test, train/train1 vs train/train2), because a
    copy in both halves of any split leaks.
    """
    df = table.df
    ids, splits, bits = [], [], []
    n = len(df)
    for i, (_, row) in enumerate(df.iterrows()):
        if progress is not None and (i % 25 == 0 or i == n - 1):
            progress("hashing images", i + 1, n)
        try:
            p = representative_image(row)
        except (MekitError, KeyError, IndexError, ValueError, TypeError, OSError):
            p = None  # already reported by the file checks
        h = _phash_bits(p) if p is not None else None
        if h is not None:
            ids.append(row["sample_id"])
            splits.append("" if _isna(row["split"]) else str(row["split"]))
            bits.append(h)
    if not bits:
        return []
    B = np.stack(bits).astype(np.float32)
    split_arr = np.asarray(splits)
    out: list[dict[str, Any]] = []
    chunk = 1024
    for start in range(0, len(B), chunk):
        a = B[start:start + chunk]
        # Hamming distance of 0/1 vectors: a.(1-b) + (1-a).b
        dist = a @ (1.0 - B).T + (1.0 - a) @ B.T
        ii, jj = np.nonzero(dist <= threshold)
        for i, j in zip(ii, jj):
            gi = start + int(i)
            if int(j) <= gi or split_arr[gi] == split_arr[j]:
                continue
            out.append({"a": ids[gi], "b": ids[int(j)], "split_a": splits[gi], "split_b": splits[int(j)],
                        "distance": int(round(float(dist[i, j])))})
    out.sort(key=lambda d: (d["distance"], d["a"], d["b"]))
    log.info("duplicate search: %d hashed, %d pairs within %d bits", len(ids), len(out), threshold)
    return out


__all__ = ["CheckReport", "DEFAULT_DUPLICATE_THRESHOLD", "check_dataset", "find_cross_split_duplicates",
           "read_error", "representative_image"]
