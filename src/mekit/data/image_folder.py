"""Kaggle-style image folders: one still image per sample, the class named by its folder.

Layouts accepted (as the public micro- and macro-expression image sets ship):

- ``root/train/<Class>/*`` and ``root/test/<Class>/*`` -> split ``'train'`` / ``'test'``;
- nested sub-splits, ``root/train/train1/<Class>/*`` -> split ``'train/train1'`` (every folder
  between the root and the class folder, joined by ``/``, lower-cased);
- flat ``root/<Class>/*`` -> split ``''``.

The class folder is always the image's parent folder. An optional ``annotations.csv`` (in the
root, or a path given) links file names to labels and optionally subjects and intensities; its
labels override folder names.

Class names are not checked here but in :func:`mekit.data.load_dataset`, once it is known
whether a label scheme applies (a scheme may map a user's own names): without one, a name
that is not an emotion name among names that are ('banana' beside 'happy') is taken for a
typo and its images are dropped as problem rows; a dataset none of whose names is an emotion
name keeps them as its own classes, with a warning (see :func:`mekit.data.labels.screen_labels`).

Whether an image is already a face crop is recorded per row in a ``face_cropped`` column, which
the preprocessing reads: under the default detector ``'auto'`` a face crop gets no detection
(detector ``'none'``), any other image is searched for its face and cropped to it like a clip's
frame. By default it is decided from the image's size, read from its header: at most
:data:`FACE_CROP_MAX_SIDE` pixels on its longer side is a face crop. Set ``face_cropped`` to
say so for the whole folder instead.

Sample ids are ``<dataset>/<path relative to root without extension>``, e.g.
``ckplus/anger/S010_004_00000017`` or ``fer/train/Happy/img01``: unique within a root (two
files that differ only in extension keep their extension) and stable across runs, because they
follow the files, not their order.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from mekit.data.labels import canonical
from mekit.data.schema import LoadReport, SampleTable
from mekit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: File extensions read as images (compared lower-cased).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")

#: Accepted annotation column names, compared after lower-casing and dropping every
#: character that is not a letter or digit ("File Name" == "file_name" == "filename").
FILE_COLUMNS = ("file", "filename", "filepath", "image", "imagename", "imagepath", "img", "path",
                "name")
LABEL_COLUMNS = ("label", "emotion", "class", "expression", "category")
SUBJECT_COLUMNS = ("subject", "subjectid", "participant", "person", "sub")
INTENSITY_COLUMNS = ("intensity",)

#: Images whose longer side is at most this many pixels are taken for face crops when the
#: ``face_cropped`` option is not given. Public stills sets that ship face crops ship them small
#: (CK+48 and FER2013 at 48 px, RAF-DB's aligned set at 100 px), while uncropped photographs of
#: head and shoulders come at 256 px and up; at 128 px a whole-scene photo would leave the face
#: a few dozen pixels wide, too small to align usefully, so nothing is lost by not searching.
FACE_CROP_MAX_SIDE = 128

#: Folders that zip tools and operating systems add; never classes.
_IGNORED_DIRS = {"__macosx", ".ds_store", "@eadir"}

_LAYOUT = ("root/<Class>/<image>, root/train/<Class>/<image> and root/test/<Class>/<image>, "
           "or nested root/train/<subsplit>/<Class>/<image>; images are "
           + ", ".join(e.lstrip(".") for e in IMAGE_EXTENSIONS))


def compile_subject_pattern(pattern: str | re.Pattern[str] | None) -> re.Pattern[str] | None:
    """Compile a subject regex whose first group is the subject; ConfigError when invalid."""
    if pattern is None or pattern == "":
        return None
    if isinstance(pattern, re.Pattern):
        rx = pattern
    else:
        try:
            rx = re.compile(str(pattern))
        except re.error as e:
            raise ConfigError(f"subject pattern '{pattern}' is not a valid regular expression ({e})") from None
    if rx.groups < 1:
        raise ConfigError(f"subject pattern '{rx.pattern}' has no group; expected the subject in the "
                          r"first group, e.g. '^(S\d+)_'")
    return rx


def load_image_folder(root: str | Path, subject_pattern: str | re.Pattern[str] | None = None,
                      annotations: str | Path | bool | None = None, dataset: str = "image_folder",
                      extensions: tuple[str, ...] | list[str] | None = None,
                      face_cropped: bool | str | None = None) -> SampleTable:
    """Load an image-folder dataset into a :class:`SampleTable` (media ``'image'``).

    Args:
        root: the dataset folder.
        subject_pattern: regular expression searched in each file name whose first group is the
            subject (CK+: ``r'^(S\\d+)_'`` turns ``S005_001_00000011.png`` into ``S005``). A file
            it does not match is reported and excluded. Without a pattern (and without subjects
            in the annotations) every image is its own subject, and the report warns that
            subject-grouped protocols cannot be honest then.
        annotations: a CSV linking file names to labels (optionally subject, intensity). ``None``
            uses ``root/annotations.csv`` when it exists; ``False`` ignores it.
        dataset: the name that prefixes sample ids and subjects (``'<dataset>/S005'``).
        extensions: image extensions to read (default :data:`IMAGE_EXTENSIONS`).
        face_cropped: ``True``: every image is already a face crop (no face detection under
            preprocess detector ``'auto'``); ``False``: every image is a photograph to find the
            face in; ``None`` or ``'auto'`` (default): decided per image from its size (at most
            :data:`FACE_CROP_MAX_SIDE` px on the longer side is a face crop), with a note in
            the report saying how many were taken for crops.

    Raises:
        DataError: the root is missing or holds no images in a known layout, or the
            annotations file cannot be read or lacks the columns it needs.
        ConfigError: the subject pattern is not a valid regular expression.
    """
    if not dataset or "/" in str(dataset):
        raise ConfigError(f"dataset name {dataset!r} must be a non-empty name without '/'")
    rx = compile_subject_pattern(subject_pattern)
    cropped_opt = _face_cropped_option(face_cropped)
    exts = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in (extensions or IMAGE_EXTENSIONS))
    if root is None:
        raise DataError("no root folder given", expected=f"a folder laid out as {_LAYOUT}")
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError("dataset folder does not exist", path=root, expected=f"a folder laid out as {_LAYOUT}")
    if not root.is_dir():
        raise DataError("is not a folder", path=root, expected=f"a folder laid out as {_LAYOUT}")
    root = root.resolve()

    report = LoadReport()
    ann_path = _annotation_path(root, annotations)

    images, skipped, empty_dirs, hidden = _scan(root, exts, ann_path)
    for p in skipped:
        report.add_problem(_rel(p, root), f"not an image (extension {p.suffix or '(none)'!r}; "
                                          f"expected one of {', '.join(exts)}); skipped")
    for d in empty_dirs:
        report.add_problem(_rel(d, root) + "/", "empty class folder: no images in it")
    if hidden:
        report.notes.append(f"ignored {hidden} hidden, system or metadata entries (names starting with '.', "
                            "__MACOSX, Thumbs.db, text/CSV/JSON/YAML files in the root)")
    if not images:
        raise DataError("no images found", path=root, expected=f"a folder laid out as {_LAYOUT}")

    ann = _read_annotations(ann_path, root, images, report) if ann_path is not None else {}

    ids = _sample_ids(images, root, dataset)
    records: list[dict[str, Any]] = []
    raw_names: set[str] = set()
    n_folder_labels = 0
    per_image_subject = False
    for img in images:
        rel_parent = img.parent.relative_to(root).parts
        sid = ids[img]
        entry = ann.get(img)
        if entry is not None and entry.get("error"):
            report.add_problem(sid, entry["error"])
            continue
        if entry is not None:
            emotion = entry["label"]
        elif rel_parent:
            emotion = rel_parent[-1]
            n_folder_labels += 1
        else:
            report.add_problem(sid, "image lies directly in the root: no class folder and no "
                                    f"annotation row gives its label (annotations: {ann_path or 'none'})")
            continue
        split = "/".join(p.lower() for p in rel_parent[:-1])

        subject = entry.get("subject") if entry is not None else None
        if not subject and rx is not None:
            m = rx.search(img.name)
            if m is None or not m.group(1):
                report.add_problem(sid, f"file name {img.name!r} does not match the subject pattern "
                                        f"'{rx.pattern}'; excluded")
                continue
            subject = m.group(1)
        if not subject:
            subject = sid.split("/", 1)[1]
            per_image_subject = True
        raw_names.add(emotion)
        report.sources[sid] = entry["where"] if entry is not None else f"{_rel(img, root)} (its class folder)"
        records.append({
            "sample_id": sid, "dataset": dataset, "subject": f"{dataset}/{subject}", "clip": img.name,
            "media": "image", "path": str(img), "frame_template": None,
            "onset": None, "apex": None, "offset": None, "fps": None,
            "emotion": emotion, "label": canonical(emotion), "action_units": (),
            "intensity": entry.get("intensity") if entry is not None else None, "split": split,
            "face_cropped": cropped_opt if cropped_opt is not None else _looks_cropped(img),
        })

    report.label_mapping = {name: canonical(name) for name in sorted(raw_names, key=str.lower)}
    merged = _merged_classes(report.label_mapping)
    if merged:
        report.notes.append("class names merged by canonicalisation: " + "; ".join(
            f"{', '.join(sorted(raws))} -> {lab}" for lab, raws in sorted(merged.items())))
    if ann and n_folder_labels:
        report.notes.append(f"{n_folder_labels} images have no annotation row; they keep their folder's label")
    _note_cropped(records, cropped_opt, report)
    if per_image_subject:
        report.notes.append("no subject pattern and no subject column: every image is its own subject, "
                            "so subject-grouped protocols (LOSO, grouped k-fold) cannot keep one person's "
                            "images out of both train and test; give --subject-pattern")
    if not records:
        raise DataError(f"none of the {len(images)} images could be used (see the report's problems: "
                        f"{[p.reason for p in report.problems[:3]]})", path=root)
    log.info("image folder %s: %d images, %d problems", root, len(records), len(report.problems))
    return SampleTable.from_records(records, report, name=dataset)


# -- face crops or photographs ------------------------------------------------------------------
def _face_cropped_option(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("auto", ""):
        return None
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ConfigError(f"option face_cropped is {value!r}; expected true, false or auto")


def _looks_cropped(img: Path) -> bool | None:
    """True for an image small enough to be a face crop (see FACE_CROP_MAX_SIDE), False for a
    larger one, None when its header cannot be read (the preprocessing reports that image)."""
    from mekit.media import image_size

    try:
        h, w = image_size(img)
    except DataError:
        return None
    return max(h, w) <= FACE_CROP_MAX_SIDE


def _note_cropped(records: list[dict[str, Any]], option: bool | None, report: LoadReport) -> None:
    if option is not None or not records:
        return
    n = sum(1 for r in records if r["face_cropped"] is True)
    if n == len(records):
        report.notes.append(f"all {n} images are at most {FACE_CROP_MAX_SIDE} px: taken for face crops (no face "
                            "detection under preprocess detector 'auto'); set face_cropped=false to search them")
    elif n:
        report.notes.append(f"{n} of {len(records)} images are at most {FACE_CROP_MAX_SIDE} px and are taken for "
                            "face crops (no face detection under detector 'auto'); the others are searched for "
                            "a face; set face_cropped to decide for the whole folder")


# -- scanning ---------------------------------------------------------------------------------
def _scan(root: Path, exts: tuple[str, ...], ann_path: Path | None
          ) -> tuple[list[Path], list[Path], list[Path], int]:
    """Images (sorted), non-image files, empty leaf folders, and the count of hidden entries."""
    images: list[Path] = []
    skipped: list[Path] = []
    empty: list[Path] = []
    hidden = 0
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            entries = sorted(d.iterdir())
        except OSError as e:
            raise DataError(f"cannot list folder ({e.strerror})", path=d) from None
        subdirs, n_img = [], 0
        for e in entries:
            if e.name.startswith(".") or e.name.lower() in _IGNORED_DIRS or e.name.lower() == "thumbs.db":
                hidden += 1
                continue
            if e.is_dir():
                subdirs.append(e)
            elif e.suffix.lower() in exts:
                images.append(e)
                n_img += 1
            elif ann_path is not None and e.resolve() == ann_path:
                continue
            elif d == root and e.suffix.lower() in (".csv", ".txt", ".md", ".json", ".yaml", ".yml"):
                hidden += 1  # metadata beside the class folders (README, other CSVs): not samples
                continue
            else:
                skipped.append(e)
        if not subdirs and n_img == 0 and d != root:
            empty.append(d)
        stack.extend(reversed(subdirs))
    return sorted(images), skipped, empty, hidden


def _rel(p: Path, root: Path) -> str:
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return str(p)


def _sample_ids(images: list[Path], root: Path, dataset: str) -> dict[Path, str]:
    stems = Counter((img.parent, img.stem) for img in images)
    out = {}
    for img in images:
        rel = img.relative_to(root)
        key = rel.as_posix() if stems[(img.parent, img.stem)] > 1 else rel.with_suffix("").as_posix()
        out[img] = f"{dataset}/{key}"
    return out


def _merged_classes(mapping: dict[str, str]) -> dict[str, set[str]]:
    by_label: dict[str, set[str]] = defaultdict(set)
    for raw, lab in mapping.items():
        by_label[lab].add(raw)
    return {lab: raws for lab, raws in by_label.items() if len(raws) > 1}


# -- annotations ------------------------------------------------------------------------------
def _annotation_path(root: Path, annotations: str | Path | bool | None) -> Path | None:
    if annotations is False:
        return None
    if annotations is None or annotations is True:
        p = root / "annotations.csv"
        if p.is_file():
            return p.resolve()
        if annotations is True:
            raise DataError("annotations file not found", path=p, expected="a CSV of file names and labels")
        return None
    p = Path(annotations).expanduser()
    if not p.is_absolute() and not p.exists():
        p = root / p
    if not p.is_file():
        raise DataError("annotations file not found", path=p, expected="a CSV of file names and labels")
    return p.resolve()


def _norm_col(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def _find_col(header: list[str], candidates: tuple[str, ...]) -> str | None:
    norm = {_norm_col(h): h for h in header}
    for c in candidates:
        if c in norm:
            return norm[c]
    return None


def _read_annotations(path: Path, root: Path, images: list[Path], report: LoadReport
                      ) -> dict[Path, dict[str, Any]]:
    """Annotation entries keyed by image path; rows naming no image go to ``report.missing``."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            sample = f.read(4096)
            f.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            reader = csv.DictReader(f, dialect=dialect)
            header = [h for h in (reader.fieldnames or []) if h is not None]
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read annotations ({e})", path=path) from None
    file_col = _find_col(header, FILE_COLUMNS)
    label_col = _find_col(header, LABEL_COLUMNS)
    if file_col is None or label_col is None:
        raise DataError(f"annotations have columns {header}", path=path,
                        expected=f"a file-name column (one of {', '.join(FILE_COLUMNS)}) and a label column "
                                 f"(one of {', '.join(LABEL_COLUMNS)}), case-insensitive; optional "
                                 f"subject ({', '.join(SUBJECT_COLUMNS)}) and intensity")
    subj_col = _find_col(header, SUBJECT_COLUMNS)
    int_col = _find_col(header, INTENSITY_COLUMNS)

    by_rel = {img.relative_to(root).as_posix().lower(): img for img in images}
    by_name: dict[str, list[Path]] = defaultdict(list)
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for img in images:
        by_name[img.name.lower()].append(img)
        by_stem[img.stem.lower()].append(img)

    out: dict[Path, dict[str, Any]] = {}
    for i, row in enumerate(rows, start=2):  # row 1 is the header
        ref = (row.get(file_col) or "").strip()
        if not ref:
            report.add_problem(f"{path.name}:row {i}", f"empty file name in column {file_col!r}")
            continue
        key = re.sub(r"^(\./)+", "", ref.replace("\\", "/")).lower()
        hits = [by_rel[key]] if key in by_rel else by_name.get(Path(key).name) or by_stem.get(Path(key).name) or []
        if not hits:
            report.missing.append(ref)
            continue
        if len(hits) > 1:
            report.add_problem(f"{path.name}:row {i}", f"file {ref!r} matches {len(hits)} images "
                                                     f"({', '.join(_rel(h, root) for h in hits[:3])}); give its "
                                                     "path relative to the root")
            continue
        img = hits[0]
        label = (row.get(label_col) or "").strip()
        entry: dict[str, Any] = {"label": label, "where": f"{path.name} row {i}, column {label_col!r}"}
        if not label:
            entry["error"] = f"{path.name} row {i}: empty label in column {label_col!r}"
        if subj_col is not None:
            entry["subject"] = (row.get(subj_col) or "").strip().replace("/", "_") or None
        if int_col is not None:
            raw = (row.get(int_col) or "").strip()
            if raw:
                try:
                    entry["intensity"] = float(raw)
                except ValueError:
                    report.notes.append(f"{path.name} row {i}: intensity {raw!r} is not a number; left empty")
        prev = out.get(img)
        if prev is not None and prev.get("label") != entry["label"]:
            entry = {"label": label, "where": entry["where"],
                     "error": f"{path.name}: conflicting labels {prev['label']!r} and {label!r} for {ref!r}"}
        out[img] = entry
    return out
