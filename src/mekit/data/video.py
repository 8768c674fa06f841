"""Videos (mp4, avi, ...) read with PyAV, whole or cut into labelled clip intervals.

Two uses:

- **Prediction on new recordings**: ``load_videos("clips/")`` makes each whole video one
  unlabelled sample (onset 0, offset n_frames - 1, fps from the stream), so the same
  preprocessing and models that run on a corpus run on a user's own files.
- **Labelled intervals in long videos**: ``load_videos("videos/", intervals="intervals.csv")``
  with one row per clip: video file, onset, optional apex, offset, optional label/emotion,
  optional subject. A video may hold several clips.

Frame numbers are **0-based indices of frames in decoding order** (the first frame of the file
is 0), whatever the container's timestamps say; :func:`read_video_frames` uses the same
numbering, so ``onset``/``apex``/``offset`` of a row can be passed to it directly. A corpus
whose sheet counts frames from 1 must subtract 1 in its CSV.

Sample ids are ``video/<path relative to root without extension>`` for whole videos and
``video/<...>/<onset>-<offset>`` for intervals; subjects are ``video/<subject>``.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mekit.data.labels import canonical
from mekit.data.schema import LoadReport, SampleTable
from mekit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: File extensions read as videos (compared lower-cased).
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg",
                                     ".wmv", ".flv")

#: Interval CSV columns tried, compared lower-cased without non-alphanumerics.
VIDEO_COLUMNS = ("video", "videofile", "videopath", "file", "filename", "path")
ONSET_COLUMNS = ("onset", "onsetframe", "start", "startframe")
APEX_COLUMNS = ("apex", "apexframe")
OFFSET_COLUMNS = ("offset", "offsetframe", "end", "endframe")
LABEL_COLUMNS = ("label", "emotion", "estimatedemotion", "class", "expression")
SUBJECT_COLUMNS = ("subject", "sub", "subjectid", "participant")
CLIP_COLUMNS = ("clip", "clipid", "id", "name")

#: Cells that mean "no apex" in coding sheets (CASME II releases write '/').
_NO_VALUE = {"", "/", "-", "nan", "none", "na", "n/a"}


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learns about a file's first video stream."""

    path: Path
    n_frames: int
    fps: float | None
    width: int
    height: int
    codec: str
    #: Frame count the container's header declares (None where it declares none).
    declared_frames: int | None = None

    @property
    def truncated(self) -> bool:
        """Fewer frames could be read than the header declares: the file was cut short."""
        return self.declared_frames is not None and self.n_frames < self.declared_frames

    def truncation_note(self) -> str:
        return (f"{self.path.name}: its header declares {self.declared_frames} frames but only "
                f"{self.n_frames} could be read (the file looks truncated); used as a {self.n_frames}-frame "
                "video")


# -- reading ----------------------------------------------------------------------------------
def _open(path: Path):
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot open the video ({_av_reason(e)})", path=path,
                        expected="a video file PyAV/FFmpeg can read (mp4, avi, ...)") from None
    if not container.streams.video:
        container.close()
        raise DataError("the file has no video stream", path=path)
    return container


def _av_reason(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def _fps(stream: Any) -> float | None:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    try:
        f = float(rate) if rate else None
    except (TypeError, ZeroDivisionError):
        return None
    return f if f and math.isfinite(f) and f > 0 else None


def probe_video(path: str | Path) -> VideoInfo:
    """Frame count, fps, size and codec of a video; DataError when it cannot be decoded.

    The frame count is the number of video packets (demuxed, not decoded): exact for the
    codecs micro-expression data uses (one frame per packet), and not fooled by a header
    written before a file was truncated. The first frame is decoded to prove the stream
    is readable.
    """
    import av

    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        fps = _fps(stream)
        n, first = 0, None
        try:
            # One pass: count packets, and feed them to the decoder until the first frame comes
            # out (an H.264 decoder may hold a few packets back before it emits one).
            for packet in container.demux(stream):
                n += packet.size > 0
                if first is None:
                    decoded = packet.decode()
                    first = decoded[0] if decoded else None
        except av.error.FFmpegError as e:
            raise DataError(f"cannot decode the video ({_av_reason(e)})", path=path) from None
        if n == 0 or first is None:
            raise DataError("the video stream holds no decodable frames", path=path)
        declared = int(stream.frames) if stream.frames else None
        info = VideoInfo(path, n, fps, int(first.width), int(first.height), stream.codec_context.name, declared)
        if info.truncated:
            # A cut-off download or copy: the clip is shorter than its header says. It is used
            # (its frames are real) but never quietly: loaders add a problem row as well.
            log.warning("%s", info.truncation_note())
        elif declared is not None and declared != n:
            log.debug("%s: header says %d frames, %d packets found; using %d", path, declared, n, n)
        return info
    finally:
        container.close()


def read_video_frames(path: str | Path, frames: list[int] | np.ndarray | None = None
                      ) -> tuple[np.ndarray, float | None]:
    """Decode frames of a video as RGB: ``(array[T, H, W, 3] uint8, fps)``.

    ``frames`` are 0-based decode-order indices (see the module docstring), in any order and
    possibly repeated (as :func:`mekit.preprocess.temporal.uniform` returns for short clips);
    the output follows that order. ``None`` reads every frame. Decoding is sequential from
    the start and stops after the last wanted frame, keeping only the wanted ones in memory:
    cheap for the few frames a sampler asks of a short clip, and exact where seeking by
    timestamp is not (variable frame rates, B-frames).

    Raises:
        DataError: the file cannot be decoded, or a wanted frame lies beyond its last frame.
    """
    import av

    path = Path(path)
    if frames is not None:
        wanted = [int(f) for f in np.asarray(frames).ravel()]
        if any(f < 0 for f in wanted):
            raise DataError(f"negative frame numbers {sorted(f for f in wanted if f < 0)[:5]}", path=path,
                            expected="0-based frame indices")
        if not wanted:
            raise DataError("no frames asked for", path=path, expected="a non-empty list of frame indices")
        want_set = set(wanted)
        last = max(wanted)
    container = _open(path)
    got: dict[int, np.ndarray] = {}
    all_frames: list[np.ndarray] = []
    n = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = _fps(stream)
        try:
            size0 = None
            for i, frame in enumerate(container.decode(stream)):
                n = i + 1
                # a stream whose frame size changes (joined recordings, damaged headers) cannot be
                # one clip: refuse it at the first odd frame, before it holds more of them in memory
                if size0 is None:
                    size0 = (frame.width, frame.height)
                elif (frame.width, frame.height) != size0:
                    raise DataError(f"frame {i} is {frame.width}x{frame.height} but frame 0 is "
                                    f"{size0[0]}x{size0[1]}", path=path,
                                    expected="a video whose frames all have one size")
                if frames is None:
                    all_frames.append(frame.to_ndarray(format="rgb24"))
                    continue
                if i in want_set:
                    got[i] = frame.to_ndarray(format="rgb24")
                if i >= last:
                    break
        except av.error.FFmpegError as e:
            raise DataError(f"cannot decode frame {n} of the video ({_av_reason(e)})", path=path) from None
    finally:
        container.close()
    if frames is None:
        if not all_frames:
            raise DataError("the video stream holds no decodable frames", path=path)
        return np.stack(all_frames), fps
    if last >= n:
        raise DataError(f"frame {last} asked for, but the video has {n} frames (0..{n - 1})", path=path,
                        expected="0-based frame indices below the frame count")
    return np.stack([got[f] for f in wanted]), fps


# -- loading ----------------------------------------------------------------------------------
def load_videos(root: str | Path, intervals: str | Path | None = None,
                subject_pattern: str | re.Pattern[str] | None = None, dataset: str = "video",
                extensions: tuple[str, ...] | list[str] | None = None, frame_base: int = 0) -> SampleTable:
    """Load a video file or a folder of videos into a :class:`SampleTable` (media ``'video'``).

    Args:
        root: one video file, or a folder searched (recursively) for :data:`VIDEO_EXTENSIONS`.
        intervals: a CSV of clips (absolute, or relative to the root folder): a video column
            (file name, stem or path relative to the root; optional when ``root`` is one file),
            ``onset`` and ``offset`` (0-based frame indices, inclusive), optional ``apex``
            (blank or ``/`` for none), ``label``/``emotion``, ``subject`` and ``clip``. Without
            it every video is one unlabelled clip spanning all its frames.
        subject_pattern: regular expression searched in the video's file name whose first group
            is the subject (used where the CSV has no subject column). Without either, every
            video is its own subject.
        dataset: the name that prefixes sample ids and subjects.
        extensions: video extensions to read (default :data:`VIDEO_EXTENSIONS`).
        frame_base: the number the interval CSV gives a video's first frame: 0 (default) or 1
            for sheets that count from 1. The table always holds 0-based frame indices.

    Unreadable videos (and their intervals) are reported and excluded; rows naming a video
    that is absent go to ``report.missing``; rows with bad frame numbers are reported.

    Raises:
        DataError: the root does not exist or holds no videos, the CSV cannot be read or lacks
            onset/offset columns, or nothing could be loaded.
        ConfigError: an invalid subject pattern or dataset name.
    """
    from mekit.data.image_folder import compile_subject_pattern

    if not dataset or "/" in str(dataset):
        raise ConfigError(f"dataset name {dataset!r} must be a non-empty name without '/'")
    rx = compile_subject_pattern(subject_pattern)
    exts = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in (extensions or VIDEO_EXTENSIONS))
    if root is None:
        raise DataError("no video or folder given", expected="a video file or a folder of videos")
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError("video file or folder does not exist", path=root,
                        expected="a video file or a folder of videos")
    root = root.resolve()
    if root.is_file():
        videos, base = [root], root.parent
    else:
        base = root
        videos = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in exts
                        and not any(part.startswith(".") for part in p.relative_to(root).parts))
        if not videos:
            raise DataError("no videos found", path=root,
                            expected="video files (" + ", ".join(e.lstrip(".") for e in exts) + ")")

    report = LoadReport()
    probe = _Prober(base, dataset, report)
    if intervals is None:
        records = _whole_videos(videos, probe, rx, dataset, report)
    else:
        csv_path = Path(intervals).expanduser()
        if not csv_path.is_absolute():
            csv_path = base / csv_path
        if frame_base not in (0, 1):
            raise ConfigError(f"frame_base must be 0 or 1; got {frame_base!r}")
        records = _intervals(csv_path.resolve(), videos, root if root.is_file() else None, probe, rx,
                             dataset, report, frame_base)
    if not records:
        raise DataError(f"no clip could be loaded ({len(report.problems)} problems, e.g. "
                        f"{[p.reason for p in report.problems[:2]]}; missing {report.missing[:2]})",
                        path=root)
    log.info("videos %s: %d clips from %d videos, %d problems", root, len(records), probe.n_ok,
             len(report.problems))
    return SampleTable.from_records(records, report, name=dataset)


class _Prober:
    """Probes each video once; reports an unreadable one once."""

    def __init__(self, base: Path, dataset: str, report: LoadReport) -> None:
        self.base, self.dataset, self.report = base, dataset, report
        self.cache: dict[Path, VideoInfo | None] = {}
        self.n_ok = 0

    def key(self, path: Path) -> str:
        try:
            rel = path.relative_to(self.base)
        except ValueError:
            rel = Path(path.name)
        return f"{self.dataset}/{rel.with_suffix('').as_posix()}"

    def __call__(self, path: Path) -> VideoInfo | None:
        if path not in self.cache:
            try:
                info = self.cache[path] = probe_video(path)
                self.n_ok += 1
            except DataError as e:
                self.cache[path] = None
                self.report.add_problem(self.key(path), f"unreadable video: {e}")
            else:
                if info.truncated:
                    self.report.add_problem(self.key(path), info.truncation_note() + "; kept")
        return self.cache[path]


def _subject(path: Path, rx: re.Pattern[str] | None) -> str | None:
    if rx is None:
        return None
    m = rx.search(path.name)
    return m.group(1) if m and m.group(1) else None


def _whole_videos(videos: list[Path], probe: _Prober, rx: re.Pattern[str] | None, dataset: str,
                  report: LoadReport) -> list[dict[str, Any]]:
    records = []
    own_subject = 0
    for v in videos:
        info = probe(v)
        if info is None:
            continue
        sid = probe.key(v)
        subject = _subject(v, rx)
        if rx is not None and subject is None:
            report.add_problem(sid, f"file name {v.name!r} does not match the subject pattern {rx.pattern!r}")
            continue
        if subject is None:
            subject = sid.split("/", 1)[1]
            own_subject += 1
        records.append(_record(sid, dataset, subject, v.name, v, 0, None, info.n_frames - 1, info.fps, None))
    if own_subject:
        report.notes.append(f"{own_subject} videos have no subject (no subject pattern): each is its own "
                            "subject; fine for prediction, not for subject-grouped protocols")
    report.notes.append("no interval CSV: each video is one unlabelled clip spanning all its frames")
    return records


def _record(sid: str, dataset: str, subject: str, clip: str, path: Path, onset: int, apex: int | None,
            offset: int, fps: float | None, emotion: str | None) -> dict[str, Any]:
    return {
        "sample_id": sid, "dataset": dataset, "subject": f"{dataset}/{subject.replace('/', '_')}",
        "clip": clip, "media": "video", "path": str(path), "frame_template": None,
        "onset": onset, "apex": apex, "offset": offset, "fps": fps,
        "emotion": emotion, "label": canonical(emotion) if emotion else None, "action_units": (),
        "intensity": None, "split": "",
    }


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def _col(header: list[str], candidates: tuple[str, ...]) -> str | None:
    norm: dict[str, str] = {}
    for h in header:
        norm.setdefault(_norm(h), h)
    return next((norm[c] for c in candidates if c in norm), None)


def _frame(cell: Any) -> int | None:
    """A frame-number cell as int; None when blank; ValueError when not a whole number."""
    s = str(cell).strip()
    if s.lower() in _NO_VALUE:
        return None
    try:
        f = float(s)
    except ValueError:
        raise ValueError(s) from None
    if not math.isfinite(f) or f != int(f):
        raise ValueError(s)
    return int(f)


def _intervals(csv_path: Path, videos: list[Path], single: Path | None, probe: _Prober,
               rx: re.Pattern[str] | None, dataset: str, report: LoadReport, frame_base: int = 0
               ) -> list[dict[str, Any]]:
    import pandas as pd

    if not csv_path.is_file():
        raise DataError("interval CSV not found", path=csv_path,
                        expected="a CSV with video, onset, offset (and optional apex, label, subject) columns")
    try:
        df = pd.read_csv(csv_path, dtype=str, keep_default_na=False, sep=None, engine="python",
                         encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataError(f"cannot read the interval CSV ({e})", path=csv_path) from None
    header = [str(c).strip() for c in df.columns]
    df.columns = header
    cols = {role: _col(header, cands) for role, cands in (
        ("video", VIDEO_COLUMNS), ("onset", ONSET_COLUMNS), ("apex", APEX_COLUMNS),
        ("offset", OFFSET_COLUMNS), ("label", LABEL_COLUMNS), ("subject", SUBJECT_COLUMNS),
        ("clip", CLIP_COLUMNS))}
    needed = ["onset", "offset"] + ([] if single is not None else ["video"])
    absent = [r for r in needed if cols[r] is None]
    if absent:
        names = {"video": VIDEO_COLUMNS, "onset": ONSET_COLUMNS, "offset": OFFSET_COLUMNS}
        raise DataError(f"no {' / '.join(absent)} column; columns found: {header}", path=csv_path,
                        expected="; ".join(f"{r}: one of {', '.join(names[r])}" for r in absent)
                        + " (case-insensitive)")

    by_rel = {v.relative_to(probe.base).as_posix().lower(): v for v in videos}
    by_name: dict[str, list[Path]] = {}
    for v in videos:
        by_name.setdefault(v.name.lower(), []).append(v)
        by_name.setdefault(v.stem.lower(), []).append(v)

    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    n_own = 0
    for i, row in enumerate(df.to_dict("records"), start=2):  # row 1 is the header
        where = f"{csv_path.name}:row {i}"
        if cols["video"] is not None and str(row[cols["video"]]).strip():
            ref = str(row[cols["video"]]).strip()
            video = _resolve(ref, csv_path, by_rel, by_name, single)
            if video is None:
                report.missing.append(ref)
                continue
            if video == "ambiguous":
                report.add_problem(where, f"video {ref!r} matches several files; give its path relative "
                                          "to the root")
                continue
        elif single is not None:
            video = single
        else:
            report.add_problem(where, f"empty video cell (column {cols['video']!r})")
            continue
        assert isinstance(video, Path)
        try:
            onset, offset = _frame(row[cols["onset"]]), _frame(row[cols["offset"]])
            apex = _frame(row[cols["apex"]]) if cols["apex"] else None
        except ValueError as e:
            report.add_problem(where, f"frame number {e.args[0]!r} is not a whole number")
            continue
        if onset is None or offset is None:
            report.add_problem(where, "onset and offset are required (blank cell)")
            continue
        onset, offset = onset - frame_base, offset - frame_base
        apex = None if apex is None else apex - frame_base
        sid = f"{probe.key(video)}/{onset}-{offset}"
        shifted = f"; CSV numbers minus frame_base {frame_base}" if frame_base else ""
        info = probe(video)
        if info is None:
            continue  # reported once per video by the prober
        last = info.n_frames - 1
        if not 0 <= onset <= offset <= last:
            report.add_problem(sid, f"{where}: onset {onset} / offset {offset} not within 0 <= onset <= "
                                    f"offset <= {last} (frames of {video.name} are 0-based, "
                                    f"{info.n_frames} in all{shifted})")
            continue
        if apex is not None and not onset <= apex <= offset:
            report.add_problem(sid, f"{where}: apex {apex} lies outside onset..offset {onset}..{offset}")
            continue
        if sid in seen:
            report.add_problem(sid, f"{where}: the same interval appears twice; the first row is kept")
            continue
        label = str(row[cols["label"]]).strip() if cols["label"] else ""
        subject = str(row[cols["subject"]]).strip() if cols["subject"] else ""
        if not subject:
            subject = _subject(video, rx) or ""
        if not subject:
            subject = probe.key(video).split("/", 1)[1]
            n_own += 1
        clip = str(row[cols["clip"]]).strip() if cols["clip"] else ""
        seen.add(sid)
        if cols["label"]:
            probe.report.sources[sid] = f"{where}, column {cols['label']!r}"
        records.append(_record(sid, dataset, subject, clip or f"{video.name}:{onset}-{offset}", video,
                               onset, apex, offset, info.fps, label or None))
    if n_own:
        report.notes.append(f"{n_own} clips have no subject column or pattern match: the video is the "
                            "subject")
    unlabelled = sum(r["emotion"] is None for r in records)
    if unlabelled:
        report.notes.append(f"{unlabelled} clips have no label (for prediction only)")
    if report.missing:
        report.notes.append(f"{len(report.missing)} interval rows name videos that are absent "
                            f"(first: {report.missing[0]!r})")
    return records


def _is_file(p: Path) -> bool:
    """``p.is_file()``, False for a name the file system cannot hold (too long, a NUL byte)."""
    try:
        return p.is_file()
    except (OSError, ValueError):
        return False


def _resolve(ref: str, csv_path: Path, by_rel: dict[str, Path], by_name: dict[str, list[Path]],
             single: Path | None) -> Path | str | None:
    p = Path(ref).expanduser()
    if p.is_absolute():
        return p.resolve() if _is_file(p) else None
    if _is_file(csv_path.parent / p):
        return (csv_path.parent / p).resolve()
    key = ref.replace("\\", "/").lstrip("./").lower()
    if key in by_rel:
        return by_rel[key]
    hits = by_name.get(Path(key).name) or []
    if len(set(hits)) == 1:
        return hits[0]
    if len(set(hits)) > 1:
        return "ambiguous"
    if single is not None and Path(key).stem == single.stem.lower():
        return single
    return None


__all__ = ["VIDEO_EXTENSIONS", "VideoInfo", "load_videos", "probe_video", "read_video_frames"]
