"""Precomputed optical-flow images, in the form STSTNet and HTNet publish their inputs.

Many micro-expression papers release, instead of raw frames, one small 3-channel image per
clip whose channels are the horizontal flow ``u``, the vertical flow ``v`` and the optical
strain (or flow magnitude) between the onset and the apex frame. Two layouts are common:

- **CSV + one image folder** (HTNet, github.com/wangzhifengharrison/HTNet):
  ``combined_3_class2_for_optical_flow.csv`` with columns ``dataset, sub, filename_o, label,
  apex, imagename, sub_filename`` and a folder ``datasets/STSNet_whole_norm_u_v_os/`` of 28x28
  PNGs named ``<sub>_<filename_o> .png`` -- note the space before the extension, which HTNet's
  code writes as ``str(sub) + '_' + str(filename_o) + ' .png'``. Labels are integer codes.
- **Leave-one-subject-out folders** (STSTNet, github.com/christy1206/STSTNet, ``input/``):
  ``<root>/<subject>/u_train/<code>/<image>`` and ``<root>/<subject>/u_test/<code>/<image>``;
  every subject's ``u_test`` folder holds that subject's own samples, so the union of the
  ``u_test`` folders is the whole set exactly once (``u_train`` repeats everyone else's).

Rows (one per image): ``media='flow'``, ``path`` = the image. The corpus a row came from
(the CSV's dataset column, lower-cased, e.g. ``casme2``) is kept in the extra column
``corpus`` and qualifies the subject: ``flow_images/casme2/sub01``. That keeps subjects of
different corpora apart (SMIC ``s01`` and a user's ``s01`` never merge) and lets a
leave-one-dataset-out protocol group by ``corpus``. Sample ids are
``flow_images/<corpus>/<subject>/<clip>``.

Integer label codes follow the convention both projects use, ``{negative: 0, positive: 1,
surprise: 2}`` (STSTNet ``main.py`` and HTNet ``recognition_evaluation``'s ``label_dict``);
``label_names`` overrides it. ``emotion`` holds the name the label stands for (the text as
written, or the decoded name of a code), the raw cell is kept in the extra column
``label_code``, and ``label`` is the canonical emotion name.
"""

from __future__ import annotations

import logging
import math
import re
import string
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mekit.data.labels import canonical
from mekit.data.schema import LoadReport, SampleTable
from mekit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: Image extensions looked for (compared lower-cased).
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

#: The integer codes of STSTNet and HTNet (both: ``label_dict = {'negative': 0, 'positive': 1,
#: 'surprise': 2}``), used when ``label_names='auto'`` and every label is one of these codes.
MEGC_CODES: dict[str, str] = {"0": "negative", "1": "positive", "2": "surprise"}

#: Column names tried, in order, when a column is not named explicitly. Compared after
#: lower-casing and dropping everything but letters and digits ("Sub ID" == "sub_id").
DATASET_COLUMNS = ("dataset", "database", "corpus", "db")
SUBJECT_COLUMNS = ("subject", "sub", "subjectid", "participant")
CLIP_COLUMNS = ("clip", "filenameo", "filename", "video", "episode")
LABEL_COLUMNS = ("label", "emotion", "label3", "labelfor3", "class", "estimatedemotion")

_LOSO_TEST_DIRS = ("u_test", "test")

#: What each registered feature extractor and model input builder does on a flow-image set
#: (rows with ``media='flow'``): ``(True, what it reads)`` or ``(False, what it needs and the
#: set lacks)``. A set holds one onset->apex u/v/strain image per clip and nothing else: no
#: face, no frames, no apex->offset flow. Where an extractor reads the raw flow
#: (``uv_onset_apex``), it gets :func:`mekit.preprocess.flow.flow_from_image`: u and v at the
#: image's size (28x28 in the published sets) in units of each sample's own per-channel range,
#: zero taken at the channel's median; lost against flow from frames: the crop's resolution,
#: the magnitude in pixels, the relative scale of u and v, and the exact zero point. Models
#: follow their input kind (``ststnet`` and ``resnet18_flow``: flow; ``off_apexnet``:
#: dual_flow; ``htnet``: roi_flow; every model on face crops or frames is refused).
#: :func:`check_flow_image_input` applies it; a test keeps every registered name in it.
FLOW_IMAGE_INPUTS: dict[str, tuple[bool, str]] = {
    "hoof": (True, "u/v/strain recovered from the image (onset->apex only; apex_offset=true is refused)"),
    "flow_descriptors": (True, "u/v/strain recovered from the image (pairs [onset_apex] only); mdmo, "
                               "subtract: nose and mask_eyes use the generic ROI layout, the image has no landmarks"),
    "concat": (True, "decided part by part"),
    "hog": (False, "the apex face crop"),
    "frozen_cnn": (False, "the apex face crop"),
    "lbp_top": (False, "frames sampled from onset to offset"),
    "flow": (True, "the image itself, resized to the stack size"),
    "dual_flow": (True, "the image itself (u, v and strain channels), resized to the stack size"),
    "roi_flow": (True, "the image resized to twice the size, regions at the generic face layout (no landmarks)"),
    "hsv_flow": (True, "u/v recovered from the image, HSV-rendered (hue skewed where u and v ranges differ)"),
    "image": (False, "a face crop"),
    "pair": (False, "the onset and apex face crops"),
    "sequence": (False, "frames sampled from onset to offset"),
    "clip3d": (False, "frames sampled from onset to offset"),
}


def check_flow_image_input(name: str, params: Mapping[str, Any] | None = None,
                           what: str | None = None) -> None:
    """Refuse, in one line, a feature extractor or model input builder ``name`` with ``params``
    that cannot read a flow-image set (see :data:`FLOW_IMAGE_INPUTS`). ``what`` names it in the
    message (default ``feature extractor '<name>'``). A name not in the table (a plug-in) is
    let through: it meets a DataError naming what is missing if it asks for more than the set
    holds."""
    params = dict(params or {})
    what = what or f"feature extractor {name!r}"
    if name == "concat":
        for k, part in enumerate(params.get("parts") or ()):
            if isinstance(part, Mapping) and "name" in part:
                check_flow_image_input(str(part["name"]), part.get("params"),
                                       f"{what} (part {k}, {str(part['name'])!r})")
        return
    ok, note = FLOW_IMAGE_INPUTS.get(name, (True, ""))
    if not ok:
        raise ConfigError(f"{what} cannot run on a flow-image set (loader flow_images): it needs "
                          f"{note}, and the set holds only one onset->apex u/v/strain image per clip")
    if name == "hoof" and params.get("apex_offset"):
        raise ConfigError(f"{what} with apex_offset: true cannot run on a flow-image set (loader "
                          "flow_images): it needs apex->offset flow, and the set holds onset->apex flow only")
    if name == "flow_descriptors":
        pairs = params.get("pairs", ("onset_apex",))
        extra = [p for p in ([pairs] if isinstance(pairs, str) else list(pairs)) if p != "onset_apex"]
        if extra:
            raise ConfigError(f"{what} with pairs {list(pairs)} cannot run on a flow-image "
                              f"set (loader flow_images): it needs {extra[0]} flow, and the set holds onset->apex "
                              "flow only; use pairs: [onset_apex]")


def load_flow_images(root: str | Path, csv: str | Path | None = None, images_dir: str | Path | None = None,
                     file_rule: str = "{subject}_{clip}.png", dataset_column: str | None = None,
                     subject_column: str | None = None, clip_column: str | None = None,
                     label_column: str | None = None,
                     label_names: str | Sequence[str] | Mapping[Any, str] | None = "auto",
                     verify: bool = True, dataset: str = "flow_images") -> SampleTable:
    """Load precomputed flow images (u, v, strain) and their labels into a :class:`SampleTable`.

    Args:
        root: the folder holding the CSV and the image folder (or the STSTNet ``input/`` folder).
        csv: the label CSV (absolute, or relative to ``root``). ``None`` uses the only ``*.csv``
            in ``root``; with none there, ``root`` must be a leave-one-subject-out folder tree
            ``<subject>/u_test/<code>/<image>`` (STSTNet), read without a CSV.
        images_dir: folder of the images (absolute, or relative to ``root``). ``None``: ``root``
            when it holds images itself, else the one folder below it that does.
        file_rule: how a CSV row names its image: a format string over CSV columns
            (``"{sub}_{filename_o} .png"``; the aliases ``{subject}``, ``{clip}``,
            ``{dataset}`` and ``{label}`` stand for the columns found for those roles), or the
            name of a column holding the file name (``"imagename"``). A name that is not there
            verbatim is matched ignoring spaces around the stem and letter case, so the default
            ``"{subject}_{clip}.png"`` finds HTNet's ``sub01_EP02_01f .png``; failing that, the
            same stem with another image extension is taken when it is unique.
        dataset_column, subject_column, clip_column, label_column: CSV column names; ``None``
            picks the first present of :data:`DATASET_COLUMNS`, :data:`SUBJECT_COLUMNS`,
            :data:`CLIP_COLUMNS`, :data:`LABEL_COLUMNS`. Subject and label are required; without a
            dataset column the subject is ``flow_images/<subject>``; without a clip column the
            clip is the image's stem (and ``file_rule`` cannot use ``{clip}``).
        label_names: how label cells become emotion names: ``'auto'`` decodes integer codes
            0/1/2 as negative/positive/surprise (and keeps text as written), ``None`` keeps every
            cell as written, a list maps code ``i`` to ``names[i]``, a mapping maps codes (or
            texts) to names.
        verify: decode every image to check that it is readable and has 3 channels (u, v,
            strain); unreadable or wrongly shaped images are reported and excluded.
        dataset: name that prefixes sample ids and subjects.

    Returns:
        A table with extra columns ``corpus`` (source corpus or ``''``) and ``label_code``
        (the label cell as written).

    Raises:
        DataError: the root, CSV or image folder is missing, the CSV cannot be read or lacks a
            column it needs (the message names the CSV, the column expected and those found), or
            no row could be used.
        ConfigError: ``file_rule`` or ``label_names`` is malformed.
    """
    if not dataset or "/" in str(dataset):
        raise ConfigError(f"dataset name {dataset!r} must be a non-empty name without '/'")
    if root is None:
        raise DataError("no root folder given", expected="a folder holding a label CSV and flow images")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError("flow-image folder does not exist" if not root.exists() else "is not a folder",
                        path=root, expected="a folder holding a label CSV and flow images")
    root = root.resolve()
    decode = _label_decoder(label_names)

    csv_path = _find_csv(root, csv)
    if csv_path is None:
        test_dirs = _loso_test_dirs(root)
        if not test_dirs:
            raise DataError("no label CSV and no leave-one-subject-out folders found", path=root,
                            expected="one *.csv beside the images (or csv=...), or STSTNet folders "
                                     "<subject>/u_test/<label>/<image>")
        return _load_loso(root, test_dirs, decode, label_names, verify, dataset)
    img_dir = _images_dir(root, images_dir)
    return _load_csv(csv_path, img_dir, file_rule, dataset_column, subject_column, clip_column,
                     label_column, decode, label_names, verify, dataset)


# -- writing a set in the published layouts ---------------------------------------------------
#: Layouts :func:`write_flow_image_set` writes, with what each holds.
LAYOUTS: dict[str, str] = {
    "htnet": "combined_3_class2_for_optical_flow.csv (dataset, sub, filename_o, label, apex, imagename, "
             "sub_filename) + datasets/STSNet_whole_norm_u_v_os/<sub>_<filename_o> .png",
    "ststnet": "<subject>/u_test/<label>/<subject>_<clip>.png (each subject's own samples) and "
               "<subject>/u_train/<label>/... (everyone else's)",
}
HTNET_CSV = "combined_3_class2_for_optical_flow.csv"
HTNET_IMAGES = "datasets/STSNet_whole_norm_u_v_os"
HTNET_COLUMNS = ("dataset", "sub", "filename_o", "label", "apex", "imagename", "sub_filename")


def write_flow_image_set(samples: Sequence[Mapping[str, Any]], out: str | Path, layout: str = "htnet",
                         label_codes: Mapping[str, Any] | None = None) -> Path:
    """Write flow images in a published layout that :func:`load_flow_images` (and the authors'
    own code) reads. Computing the flow is the caller's part
    (:func:`mekit.preprocess.export.export_flow_image_set` does it from a SampleTable).

    Args:
        samples: one mapping per clip: ``subject`` and ``clip`` (names as the layout writes
            them, e.g. ``sub01``, ``EP02_01f``), ``corpus`` (the CSV's dataset column, e.g.
            ``casme2``), ``label`` (a name), ``apex`` (frame number or None) and ``image``
            (``uint8[H, W, 3]`` with channels u, v, strain, each scaled to 0..255).
        out: the folder to write (created; files already there with the same names are replaced).
        layout: ``'htnet'`` or ``'ststnet'`` (see :data:`LAYOUTS`). HTNet's images are named
            ``<sub>_<filename_o> .png``, with the space before the extension its code writes.
        label_codes: label name -> code written. ``None``: the STSTNet/HTNet codes
            (:data:`MEGC_CODES`) when every label is negative, positive or surprise, else the
            names as they are (the loader reads both).

    Returns the folder written. Images are stored as OpenCV writes a BGR array holding
    (strain, v, u), as the published sets are, so read as RGB they are (u, v, strain).
    """
    import cv2
    import numpy as np

    if layout not in LAYOUTS:
        raise ConfigError(f"flow-image layout {layout!r}: expected one of {sorted(LAYOUTS)}")
    samples = list(samples)
    if not samples:
        raise DataError("no samples to write", expected="at least one clip with a flow image")
    if label_codes is None:
        names = {str(s["label"]) for s in samples}
        inverse = {v: k for k, v in MEGC_CODES.items()}
        label_codes = inverse if names <= set(inverse) else {n: n for n in names}
    missing = sorted({str(s["label"]) for s in samples} - {str(k) for k in label_codes})
    if missing:
        raise ConfigError(f"label_codes has no code for label(s) {missing}; it maps {sorted(map(str, label_codes))}")
    codes = {str(k): str(v) for k, v in label_codes.items()}
    for s in samples:
        for key in ("subject", "clip"):
            v = str(s[key])
            if not v or v != v.strip() or any(c in v for c in '/\\'):
                raise DataError(f"{key} {v!r} of a sample cannot be written as part of a file name",
                                expected="a non-empty name without '/', '\\' or surrounding spaces")
        img = np.asarray(s["image"])
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise DataError(f"sample {s['subject']}/{s['clip']}: flow image of shape {img.shape} and "
                            f"dtype {img.dtype}", expected="uint8[H, W, 3] (u, v, strain)")
    out = Path(out).expanduser()

    def put(path: Path, img: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(img[..., ::-1]))  # RGB (u, v, strain) -> BGR
        if not ok:
            raise DataError("cannot encode the flow image", path=path)
        buf.tofile(str(path))  # tofile: names with spaces and non-ASCII folders alike

    if layout == "htnet":
        import csv

        folder = out / HTNET_IMAGES
        rows = []
        for s in samples:
            sub, clip = str(s["subject"]), str(s["clip"])
            put(folder / f"{sub}_{clip} .png", np.asarray(s["image"]))
            apex = s.get("apex")
            rows.append([str(s.get("corpus") or ""), sub, clip, codes[str(s["label"])],
                         "" if apex is None else int(apex), f"{sub}_{clip}.jpg", f"{sub}_{clip}"])
        out.mkdir(parents=True, exist_ok=True)
        with open(out / HTNET_CSV, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(HTNET_COLUMNS)
            w.writerows(rows)
        return out
    by_subject: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    seen_corpus: dict[str, str] = {}
    for s in samples:
        sub, corpus = str(s["subject"]), str(s.get("corpus") or "")
        if seen_corpus.setdefault(sub, corpus) != corpus:
            raise DataError(f"subject {sub!r} occurs in corpora {seen_corpus[sub]!r} and {corpus!r}; the "
                            "ststnet layout names folders by subject only", expected="the htnet layout")
        by_subject[sub].append(s)
    for sub in by_subject:
        for other, items in by_subject.items():
            part = "u_test" if other == sub else "u_train"
            for s in items:
                put(out / sub / part / codes[str(s["label"])] / f"{other}_{s['clip']}.png", np.asarray(s["image"]))
    return out


# -- CSV layout -------------------------------------------------------------------------------
def _load_csv(csv_path: Path, img_dir: Path, file_rule: str, dataset_column: str | None,
              subject_column: str | None, clip_column: str | None, label_column: str | None,
              decode: Any, label_names: Any, verify: bool, dataset: str) -> SampleTable:
    import pandas as pd

    try:
        # Everything as text: SAMM subjects are '006', which a numeric parse would turn into 6.
        df = pd.read_csv(csv_path, dtype=str, keep_default_na=False, sep=None, engine="python",
                         encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataError(f"cannot read the label CSV ({e})", path=csv_path) from None
    df.columns = [str(c).strip() for c in df.columns]
    header = list(df.columns)

    subj_col = _column(header, subject_column, SUBJECT_COLUMNS, "subject", csv_path, required=True)
    label_col = _column(header, label_column, LABEL_COLUMNS, "label", csv_path, required=True)
    ds_col = _column(header, dataset_column, DATASET_COLUMNS, "dataset", csv_path, required=False)
    clip_col = _column(header, clip_column, CLIP_COLUMNS, "clip", csv_path, required=False)
    aliases = {"subject": subj_col, "label": label_col, "dataset": ds_col, "clip": clip_col}
    name_of = _file_namer(file_rule, header, aliases, csv_path)

    index = _ImageIndex(img_dir)
    report = LoadReport()
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    codes = [str(v).strip() for v in df[label_col]]
    auto_codes = label_names == "auto" and bool(codes) and all(c in MEGC_CODES for c in codes if c)
    note = _code_note(csv_path.name, codes, label_names, auto_codes)
    if note:
        report.notes.append(note)
    tolerant = 0
    for i, row in enumerate(df.to_dict("records"), start=2):  # row 1 is the header
        where = f"{csv_path.name}:row {i}"
        subject = _clean(row[subj_col])
        corpus = _corpus(row[ds_col]) if ds_col else ""
        try:
            fname = name_of(row)
        except (KeyError, IndexError, ValueError) as e:
            report.add_problem(where, f"cannot build the file name from {file_rule!r} ({e})")
            continue
        clip = _clean(row[clip_col]) if clip_col else Path(fname).stem.strip()
        if not subject or not clip:
            report.add_problem(where, f"empty {'subject' if not subject else 'clip'} cell "
                                      f"(column {subj_col if not subject else clip_col!r})")
            continue
        subj_key = f"{corpus}/{subject}" if corpus else subject
        sid = f"{dataset}/{subj_key}/{clip}"
        if sid in seen:
            report.add_problem(where, f"sample {sid} appears twice in {csv_path.name}; the first row is kept")
            continue
        emotion, err = _decode(codes[i - 2], decode, auto_codes)
        if err:
            report.add_problem(sid, f"{where}: {err} (column {label_col!r})")
            continue
        rel = Path(fname.replace("\\", "/"))
        if rel.is_absolute() or ".." in rel.parts:
            # Images are looked up inside the image folder only: a path leaving it could load
            # another subject's (or another corpus's) image under this row's subject.
            report.add_problem(sid, f"{where}: file name {fname!r} leaves the image folder {img_dir}; "
                                    "expected a name inside it; row excluded")
            continue
        img, how = index.find(fname)
        if img is None:
            report.missing.append(sid)
            if len(report.missing) <= 3:
                log.debug("flow image %s not found in %s", fname, img_dir)
            continue
        tolerant += how != "exact"
        if verify:
            bad = _check_image(img)
            if bad:
                report.add_problem(sid, f"{img.name}: {bad}")
                continue
        seen.add(sid)
        report.sources[sid] = f"{where}, column {label_col!r}"
        records.append(_record(sid, dataset, subj_key, clip, img, emotion, codes[i - 2], corpus, row))

    if report.missing:
        report.notes.append(f"{len(report.missing)} images named by {csv_path.name} are absent from "
                            f"{img_dir} (rule {file_rule!r}; first: {report.missing[0]})")
    if tolerant:
        report.notes.append(f"{tolerant} file names matched ignoring spaces, letter case or extension "
                            f"(rule {file_rule!r})")
    if not ds_col:
        report.notes.append(f"{csv_path.name} has no dataset column: subjects are qualified by "
                            f"{dataset!r} only")
    _finish(report, records)
    if not records:
        raise DataError(f"none of the {len(df)} rows could be used ({len(report.missing)} images absent, "
                        f"{len(report.problems)} problems, e.g. "
                        f"{[p.reason for p in report.problems[:2]] or report.missing[:2]})",
                        path=csv_path, expected=f"images named by rule {file_rule!r} in {img_dir}")
    log.info("flow images %s: %d samples, %d missing, %d problems", csv_path, len(records),
             len(report.missing), len(report.problems))
    return SampleTable.from_records(records, report, name=dataset)


def _record(sid: str, dataset: str, subject: str, clip: str, img: Path, emotion: str, code: str,
            corpus: str, row: Mapping[str, Any] | None) -> dict[str, Any]:
    frames = {k: _int_or_none(_get_ci(row, k)) for k in ("onset", "apex", "offset")} if row else {}
    return {
        "sample_id": sid, "dataset": dataset, "subject": f"{dataset}/{subject}", "clip": clip,
        "media": "flow", "path": str(img), "frame_template": None,
        "onset": frames.get("onset"), "apex": frames.get("apex"), "offset": frames.get("offset"),
        "fps": None, "emotion": emotion, "label": canonical(emotion), "action_units": (),
        "intensity": None, "split": "", "corpus": corpus, "label_code": code,
    }


def _finish(report: LoadReport, records: list[dict[str, Any]]) -> None:
    """Record how label cells were named (code or text as written -> canonical label)."""
    report.label_mapping = {str(r["label_code"]): r["label"] for r in records}


# -- STSTNet leave-one-subject-out layout -----------------------------------------------------
def _loso_test_dirs(root: Path) -> list[Path]:
    out = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for name in _LOSO_TEST_DIRS:
            if (sub / name).is_dir():
                out.append(sub / name)
                break
    return out


def _load_loso(root: Path, test_dirs: list[Path], decode: Any, label_names: Any, verify: bool,
               dataset: str) -> SampleTable:
    report = LoadReport()
    records: list[dict[str, Any]] = []
    entries: list[tuple[str, str, Path]] = []
    for tdir in test_dirs:
        subject = tdir.parent.name
        for code_dir in sorted(p for p in tdir.iterdir() if p.is_dir()):
            for img in sorted(p for p in code_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS):
                entries.append((subject, code_dir.name, img))
    codes = [c for _, c, _ in entries]
    auto_codes = label_names == "auto" and bool(codes) and all(c in MEGC_CODES for c in codes)
    note = _code_note("label folders", codes, label_names, auto_codes)
    if note:
        report.notes.append(note)
    seen: set[str] = set()
    for subject, code, img in entries:
        clip = img.stem.strip()
        sid = f"{dataset}/{subject}/{clip}"
        if sid in seen:
            report.add_problem(sid, f"{img.relative_to(root)}: the same clip lies in two label folders; "
                                    "the first is kept")
            continue
        emotion, err = _decode(code, decode, auto_codes)
        if err:
            report.add_problem(sid, f"{img.relative_to(root)}: {err} (label folder)")
            continue
        if verify:
            bad = _check_image(img)
            if bad:
                report.add_problem(sid, f"{img.relative_to(root)}: {bad}")
                continue
        seen.add(sid)
        report.sources[sid] = f"{img.relative_to(root)} (label folder)"
        records.append(_record(sid, dataset, subject, clip, img, emotion, code, "", None))
    report.notes.append(f"leave-one-subject-out layout: read the {len(test_dirs)} "
                        f"{'/'.join(sorted({d.name for d in test_dirs}))} folders (each subject's own "
                        "samples); the train folders repeat them and are not read")
    _finish(report, records)
    if not records:
        raise DataError("no usable images in the leave-one-subject-out folders", path=root,
                        expected="<subject>/u_test/<label>/<image> with 3-channel images")
    log.info("flow images (LOSO folders) %s: %d samples", root, len(records))
    return SampleTable.from_records(records, report, name=dataset)


# -- helpers ----------------------------------------------------------------------------------
def _find_csv(root: Path, csv: str | Path | None) -> Path | None:
    if csv is not None:
        p = Path(csv).expanduser()
        if not p.is_absolute():
            p = root / p
        if not p.is_file():
            raise DataError("label CSV not found", path=p,
                            expected="a CSV with subject, clip (or file name) and label columns")
        return p.resolve()
    found = sorted(p for p in root.glob("*.csv") if p.is_file())
    if len(found) > 1:
        raise DataError(f"several CSV files: {[p.name for p in found]}", path=root,
                        expected="csv=... naming the label CSV")
    return found[0].resolve() if found else None


def _has_images(d: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() for p in d.iterdir())


def _images_dir(root: Path, images_dir: str | Path | None) -> Path:
    if images_dir is not None:
        p = Path(images_dir).expanduser()
        if not p.is_absolute():
            p = root / p
        if not p.is_dir():
            raise DataError("image folder not found", path=p, expected="a folder of flow images")
        return p.resolve()
    if _has_images(root):
        return root
    cands = [d for d in sorted(root.rglob("*")) if d.is_dir() and not d.name.startswith(".")
             and _has_images(d)]
    if len(cands) == 1:
        return cands[0]
    if not cands:
        raise DataError("no images beside the CSV or in any folder below it", path=root,
                        expected="flow images (" + ", ".join(IMAGE_EXTENSIONS) + ") or images_dir=...")
    raise DataError(f"several folders hold images: {[str(c.relative_to(root)) for c in cands[:5]]}",
                    path=root, expected="images_dir=... naming the flow-image folder")


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def _column(header: list[str], given: str | None, candidates: tuple[str, ...], role: str, csv_path: Path,
            required: bool) -> str | None:
    if given is not None:
        if given in header:
            return given
        hit = {_norm(h): h for h in header}.get(_norm(given))
        if hit is None:
            raise DataError(f"no {role} column {given!r}; columns found: {header}", path=csv_path,
                            expected=f"a column named {given!r}")
        return hit
    norm = {}
    for h in header:
        norm.setdefault(_norm(h), h)
    for c in candidates:
        if c in norm:
            return norm[c]
    if required:
        raise DataError(f"no {role} column; columns found: {header}", path=csv_path,
                        expected=f"a {role} column named one of {', '.join(candidates)} "
                                 f"(case-insensitive) or {role}_column=...")
    return None


def _file_namer(rule: str, header: list[str], aliases: dict[str, str | None], csv_path: Path):
    """A function row -> file name, from a format string or a column name."""
    if "{" not in rule:
        col = rule if rule in header else {_norm(h): h for h in header}.get(_norm(rule))
        if col is None:
            raise DataError(f"file_rule {rule!r} is neither a format string nor a column; "
                            f"columns found: {header}", path=csv_path,
                            expected="a format string such as '{subject}_{clip}.png' or a file-name column")
        return lambda row: str(row[col]).strip()
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(rule) if f is not None]
    except ValueError as e:
        raise ConfigError(f"file_rule {rule!r} is not a valid format string ({e})") from None
    mapping: dict[str, str] = {}
    for f in fields:
        key = re.split(r"[.\[!:]", f, maxsplit=1)[0]
        if not key:
            raise ConfigError(f"file_rule {rule!r} has an empty placeholder '{{}}'; name a CSV column")
        if key in header:
            mapping[key] = key
        elif key in aliases and aliases[key] is not None:
            mapping[key] = aliases[key]  # type: ignore[assignment]
        else:
            raise DataError(f"file_rule {rule!r} uses {{{key}}}, which is no column; columns found: "
                            f"{header}", path=csv_path,
                            expected="placeholders naming CSV columns or subject/clip/dataset/label")

    def name(row: Mapping[str, Any]) -> str:
        return rule.format_map({k: _clean(row[c]) for k, c in mapping.items()})

    return name


class _ImageIndex:
    """Looks file names up in a folder, tolerating HTNet's ``'name .png'`` spacing and case."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.by_key: dict[tuple[str, str], list[Path]] = defaultdict(list)
        self.by_stem: dict[tuple[str, str], list[Path]] = defaultdict(list)
        for p in folder.rglob("*"):
            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file():
                parent = p.parent.relative_to(folder).as_posix().lower()
                stem = p.stem.strip().lower()
                self.by_key[(parent, stem + p.suffix.lower())].append(p)
                self.by_stem[(parent, stem)].append(p)

    def find(self, fname: str) -> tuple[Path | None, str]:
        rel = Path(fname.replace("\\", "/"))
        exact = self.folder / rel
        if exact.is_file():
            return exact, "exact"
        parent = rel.parent.as_posix().lower()
        parent = "." if parent in ("", ".") else parent
        stem = rel.stem.strip().lower()
        hits = self.by_key.get((parent, stem + rel.suffix.lower()), [])
        if len(hits) == 1:
            return hits[0], "spacing"
        if not hits:
            hits = self.by_stem.get((parent, stem), [])
            if len(hits) == 1:
                return hits[0], "extension"
        return None, ""


def _check_image(path: Path) -> str:
    """'' when the image decodes completely to 3 channels, else the reason.

    Decoded by :func:`mekit.preprocess.io.decode_image`, the reader every stage uses, so a
    truncated image is refused here exactly as it would be later.
    """
    import cv2

    from mekit.media import decode_image

    try:
        img = decode_image(path, cv2.IMREAD_UNCHANGED)
    except DataError as e:
        return str(e).split(": ", 1)[-1] if str(e).startswith(str(path)) else str(e)
    channels = 1 if img.ndim == 2 else img.shape[2]
    if channels != 3:
        return f"has {channels} channel(s); expected 3 (u, v, optical strain)"
    return ""


def _label_decoder(label_names: Any):
    if label_names is None or label_names == "auto":
        return None
    if isinstance(label_names, str):
        raise ConfigError(f"label_names {label_names!r}: expected 'auto', None, a list of names or a "
                          "mapping of code -> name")
    if isinstance(label_names, Mapping):
        return {str(k).strip(): str(v) for k, v in label_names.items()}
    if isinstance(label_names, Sequence):
        return {str(i): str(v) for i, v in enumerate(label_names)}
    raise ConfigError(f"label_names {label_names!r}: expected 'auto', None, a list or a mapping")


def _decode(code: str, decode: dict[str, str] | None, auto_codes: bool) -> tuple[str, str]:
    """(emotion, error) for one label cell: decoded codes, text as written."""
    code = str(code).strip()
    if not code:
        return "", "empty label"
    if auto_codes:
        return MEGC_CODES[code], ""
    if decode is None:
        return code, ""
    key = code[:-2] if code.endswith(".0") else code  # '1.0' from a spreadsheet export
    for k in (code, key):
        if k in decode:
            return decode[k], ""
    if _is_int(key):
        return "", f"label code {code!r} is not in label_names (codes {sorted(decode)})"
    return code, ""  # text labels pass through unchanged


def _is_int(s: str) -> bool:
    return s.lstrip("-").isdigit()


def _code_note(source: str, codes: list[str], label_names: Any, auto_codes: bool) -> str | None:
    if auto_codes:
        return (f"{source}: integer labels read as STSTNet/HTNet codes 0=negative, 1=positive, "
                "2=surprise (give label_names to change)")
    if label_names in (None, "auto") and codes and all(_is_int(c) for c in codes if c):
        return (f"{source}: labels are integer codes {sorted(set(c for c in codes if c))} beyond the "
                "0/1/2 convention; kept as written (give label_names=[...] to name them)")
    return None


def _clean(v: Any) -> str:
    s = "" if v is None else str(v).strip()
    return s.replace("/", "_")


def _corpus(v: Any) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(v).strip().lower()).strip("_")


def _get_ci(row: Mapping[str, Any] | None, key: str) -> Any:
    if not row:
        return None
    for k, v in row.items():
        if _norm(k) in (key, f"{key}frame"):
            return v
    return None


def _int_or_none(v: Any) -> int | None:
    try:
        f = float(str(v).strip())
    except (TypeError, ValueError):
        return None
    return int(f) if math.isfinite(f) and f == int(f) else None


__all__ = ["FLOW_IMAGE_INPUTS", "HTNET_COLUMNS", "HTNET_CSV", "HTNET_IMAGES", "IMAGE_EXTENSIONS", "LAYOUTS",
           "MEGC_CODES", "check_flow_image_input", "load_flow_images", "write_flow_image_set"]
