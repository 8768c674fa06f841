"""Tiny fake corpora in each corpus's real on-disk layout, for loader tests.

Frames are small valid JPEG/BMP images (one random grey image encoded once and
written under every frame name), so a test can also open them. Nothing here copies
real data: clips, subjects and frame numbers are made up by the caller.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

_CACHE: dict[str, bytes] = {}


def image_bytes(fmt: str = "JPEG", size: int = 16) -> bytes:
    key = f"{fmt}{size}"
    if key not in _CACHE:
        arr = np.random.default_rng(0).integers(0, 256, (size, size), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format=fmt)
        _CACHE[key] = buf.getvalue()
    return _CACHE[key]


def write_frames(folder: Path, frames: Iterable[int], name: str, fmt: str = "JPEG") -> Path:
    """Write one image per frame number, file name ``name.format(frame=N)``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = image_bytes(fmt)
    for f in frames:
        (folder / name.format(frame=f)).write_bytes(data)
    return folder


@dataclass
class Clip:
    """One fake coded clip. ``drop`` lists frames left out of its folder; ``folder=False`` writes none."""

    subject: int | str
    name: str
    onset: int
    apex: int | None
    offset: int
    emotion: str | int
    aus: str | int = "4"
    drop: Sequence[int] = field(default_factory=tuple)
    folder: bool = True

    def frames(self) -> list[int]:
        return [f for f in range(self.onset, self.offset + 1) if f not in set(self.drop)]


def write_sheet(path: Path, header: list[str], rows: list[list], preamble: int = 0,
                sheet_name: str = "Sheet1") -> Path:
    """An xlsx (or csv, by suffix) with ``preamble`` text rows above the header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        lines = [[f"preamble line {i}"] for i in range(preamble)] + [header] + rows
        pd.DataFrame(lines).to_csv(path, index=False, header=False)
        return path
    width = len(header)
    pre = [[f"preamble line {i}"] + [None] * (width - 1) for i in range(preamble)]
    df = pd.DataFrame(pre + [header] + rows)
    with pd.ExcelWriter(path, engine="openpyxl") as w:
        df.to_excel(w, sheet_name=sheet_name, header=False, index=False)
    return path


# -- CASME II: <root>/CASME2-coding-20140508.xlsx, <root>/Cropped/sub01/EP02_01f/reg_img46.jpg ------------
CASME2_HEADER = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units",
                 "Estimated Emotion"]


def casme2_rows(clips: Sequence[Clip]) -> list[list]:
    return [[c.subject, c.name, c.onset, c.apex, c.offset, c.aus, c.emotion] for c in clips]


def make_casme2(root: Path, clips: Sequence[Clip], frames_subdir: str = "Cropped", prefix: str = "reg_img",
                sheet: str | None = "CASME2-coding-20140508.xlsx") -> Path:
    for c in clips:
        if c.folder:
            write_frames(root / frames_subdir / f"sub{int(c.subject):02d}" / c.name, c.frames(),
                         prefix + "{frame}.jpg")
    if sheet:
        write_sheet(root / sheet, CASME2_HEADER, casme2_rows(clips))
    return root


# -- SAMM: <root>/SAMM/006/006_1_2/006_05562.jpg, sheet MICRO_ONLY ---------------------------------------
SAMM_HEADER = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
               "Duration", "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]


def make_samm(root: Path, clips: Sequence[Clip], frames_subdir: str = "SAMM", preamble: int = 0,
              sheet: str | None = "SAMM_Micro_FACS_Codes_v2.xlsx") -> Path:
    for c in clips:
        sub = f"{int(c.subject):03d}"
        if c.folder:
            write_frames(root / frames_subdir / sub / c.name, c.frames(), sub + "_{frame:05d}.jpg")
    if sheet:
        rows = [[c.subject, c.name, 1, c.onset, c.apex, c.offset, c.offset - c.onset + 1, "Micro - 1/2",
                 c.aus, c.emotion, 3, None] for c in clips]
        write_sheet(root / sheet, SAMM_HEADER, rows, preamble=preamble, sheet_name="MICRO_ONLY")
    return root


# -- SMIC-HS: <root>/HS/s1/micro/negative/s1_ne_01/image058831.bmp; SMIC-E: <root>/HS_long/SMIC_HS_E/s01/.. -
SMIC_HEADER = ["data", "subject", "clip", "label", "onset_frame", "apex_frame", "offset_frame"]
SMIC_FOLDERS = {0: "negative", 1: "positive", 2: "surprise"}


def make_smic(root: Path, clips: Sequence[Clip], layout: str = "hs", sheet: str | None = "smic_apex.xlsx",
              blank_offsets: Sequence[str] = ()) -> Path:
    """``layout`` 'hs' (SMIC-HS release, .bmp) or 'e' (SMIC-E HS_long/SMIC_HS_E, .jpg)."""
    for c in clips:
        if not c.folder:
            continue
        n = int(c.subject)
        if layout == "hs":
            emo = c.emotion if isinstance(c.emotion, str) else SMIC_FOLDERS[int(c.emotion)]
            write_frames(root / "HS" / f"s{n}" / "micro" / emo / c.name, c.frames(), "image{frame:06d}.bmp",
                         fmt="BMP")
        else:
            write_frames(root / "HS_long" / "SMIC_HS_E" / f"s{n:02d}" / c.name, c.frames(), "image{frame:06d}.jpg")
    if sheet:
        rows = [["smic", c.subject, c.name, c.emotion, c.onset, c.apex,
                 None if c.name in blank_offsets else c.offset] for c in clips]
        write_sheet(root / sheet, SMIC_HEADER, rows)
    return root


# -- CAS(ME)^3 part A: <root>/part_A/data/part_A/spNO.1/a/color/<N>.jpg, sheet "label" ---------------------
CASME3_HEADER = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]


def make_casme3(root: Path, clips: Sequence[Clip], video_frames: dict[tuple[str, str], range] | None = None,
                sheet: str | None = "casme3_table.xlsx") -> Path:
    """Each (subject, video) folder holds ``video_frames[(subject, video)]`` (default: 0..max offset + 5)."""
    videos: dict[tuple[str, str], set[int]] = {}
    dropped: dict[tuple[str, str], set[int]] = {}
    for c in clips:
        if c.folder:
            key = (str(c.subject), c.name)
            videos.setdefault(key, set()).update(range(0, c.offset + 6))
            dropped.setdefault(key, set()).update(c.drop)
    for key, frames in videos.items():
        frames = set(video_frames[key]) if video_frames and key in video_frames else frames
        write_frames(root / "part_A" / "data" / "part_A" / key[0] / key[1] / "color",
                     sorted(frames - dropped[key]), "{frame}.jpg")
    if sheet:
        rows = [[c.subject, c.name, c.onset, c.apex, c.offset, c.aus, "III", c.emotion] for c in clips]
        write_sheet(root / sheet, CASME3_HEADER, rows, sheet_name="label")
    return root


# -- damaged files and small inputs for the input-trust tests ----------------------------------
def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut a file to ``keep`` of its bytes, as an interrupted copy or download leaves it."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:int(len(data) * keep)])
    return Path(path)


def textured_image(size: int = 48, seed: int = 0, fmt: str = "JPEG", **save) -> bytes:
    """An RGB image with detail everywhere, so a truncated copy visibly loses its lower part."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **save)
    return buf.getvalue()


def make_image_folder(root: Path, classes: dict[str, int], subjects: int = 2, fmt: str = "PNG",
                      split: str | None = None) -> Path:
    """``root/[split/]<class>/S<k>_<i>.png``: ``classes[name]`` images per class, subjects S1..S<subjects>."""
    base = root / split if split else root
    data = image_bytes(fmt)
    ext = {"PNG": "png", "JPEG": "jpg", "BMP": "bmp"}[fmt]
    for name, n in classes.items():
        folder = base / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (folder / f"S{i % subjects + 1}_{name}_{i:03d}.{ext}").write_bytes(data)
    return root


def write_video(path: Path, n_frames: int = 20, size: int = 32, fps: int = 25) -> Path:
    """A small MJPEG AVI (its header declares the frame count, as AVI files do)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mjpeg", rate=fps)
        s.width = s.height = size
        s.pix_fmt = "yuvj420p"
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), (i * 10) % 256, np.uint8), format="rgb24")
            for pk in s.encode(frame):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    return path
