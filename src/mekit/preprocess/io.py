"""Reading the pixels of one sample, whatever its media kind.

Every reader returns RGB ``uint8`` arrays (``[H, W, 3]`` per frame); frame numbers are the
corpus's own (the ``onset``/``apex``/``offset`` of the table), never positions.

- ``frames``: a folder of images named by ``frame_template`` (``reg_img{frame}.jpg``);
- ``image``: one still image, which is its own onset, apex and offset (any frame number reads
  the same image);
- ``video``: a video file read through :func:`mekit.data.video.read_video_frames`;
- ``flow``: an image that already *is* a flow stack (u, v, strain in its R, G, B channels, as
  STSTNet/HTNet publish them): :func:`read_flow_image` loads it as ``float32[3, H, W]``.

``reduce`` (1, 2, 4 or 8) asks the JPEG decoder for a 1/``reduce`` scale image: libjpeg scales
in the DCT domain (``cv2.IMREAD_REDUCED_COLOR_2`` and friends), which roughly halves decode
time at 2 and is exact for alignment purposes (see :func:`reduced_matrix`). Other formats are
decoded in full and resized by OpenCV, with the same geometry.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mekit.errors import DataError
# image decoding lives in the bottom layer (mekit.media) so loaders can use it too; re-exported here
from mekit.media import REDUCTIONS, decode_image, image_defect, image_size, read_image  # noqa: F401

log = logging.getLogger(__name__)

def _isna(v: Any) -> bool:
    try:
        import pandas as pd

        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def reduced_matrix(matrix: np.ndarray, reduce: int) -> np.ndarray:
    """Adapt a 2x3 affine warp from full-resolution pixels to a 1/``reduce`` decoded image.

    Pixel centre ``x'`` of the reduced image covers full-resolution pixels ``r x' .. r x' + r - 1``,
    so ``x = r x' + (r - 1) / 2``; composing keeps the warp exact up to the decoder's filter.
    """
    m = np.asarray(matrix, dtype=np.float64).reshape(2, 3)
    if reduce == 1:
        return m
    r = float(reduce)
    s = np.array([[r, 0.0, (r - 1) / 2], [0.0, r, (r - 1) / 2], [0.0, 0.0, 1.0]])
    return m @ s


def frame_regex(template: str) -> re.Pattern[str]:
    """Regex with one group (the frame number) matching file names made by ``template``."""
    parts = re.split(r"\{frame(?::[^}]*)?\}", template)
    if len(parts) != 2:
        raise DataError(f"frame template {template!r} must contain exactly one '{{frame}}' placeholder")
    return re.compile("^" + re.escape(parts[0]) + r"(\d+)" + re.escape(parts[1]) + "$")


def list_frame_numbers(row: Any) -> list[int]:
    """Frame numbers present in a frame folder (sorted), from its file names."""
    folder = Path(row["path"])
    if not folder.is_dir():
        raise DataError("frame folder is missing", path=folder, expected="a folder of frames")
    rx = frame_regex(str(row["frame_template"]))
    nums = sorted(int(m.group(1)) for f in folder.iterdir() if (m := rx.match(f.name)))
    if not nums:
        raise DataError(f"no file matches the frame template {row['frame_template']!r}", path=folder)
    return nums


def key_frames(row: Any) -> tuple[int, int | None, int]:
    """``(onset, apex or None, offset)`` frame numbers; missing onset/offset come from the folder.

    For a still image all three are 0; for a video with no interval, onset 0 and the last frame.
    """
    media = row["media"]
    onset = None if _isna(row["onset"]) else int(row["onset"])
    apex = None if _isna(row["apex"]) else int(row["apex"])
    offset = None if _isna(row["offset"]) else int(row["offset"])
    if media in ("image", "flow"):
        return 0, 0, 0
    if media == "frames" and (onset is None or offset is None):
        nums = list_frame_numbers(row)
        onset = nums[0] if onset is None else onset
        offset = nums[-1] if offset is None else offset
    if media == "video" and (onset is None or offset is None):
        n = video_length(row["path"])
        onset = 0 if onset is None else onset
        offset = n - 1 if offset is None else offset
    if onset is None or offset is None:
        raise DataError(f"sample {row['sample_id']}: no onset/offset frame", expected="frame numbers")
    if offset < onset:
        raise DataError(f"sample {row['sample_id']}: offset {offset} comes before onset {onset}",
                        expected="onset <= apex <= offset")
    if apex is not None and not onset <= apex <= offset:
        raise DataError(f"sample {row['sample_id']}: apex {apex} is outside onset..offset "
                        f"{onset}..{offset}", expected="onset <= apex <= offset")
    return onset, apex, offset


def clip_frame_numbers(row: Any) -> list[int]:
    """Every frame number of the clip from onset to offset inclusive (1 for a still image)."""
    if row["media"] in ("image", "flow"):
        return [0]
    onset, _, offset = key_frames(row)
    return list(range(onset, offset + 1))


def video_length(path: str | Path) -> int:
    """Number of frames of a video that can actually be read.

    Counted from the stream (see :func:`mekit.data.video.probe_video`), not taken from the
    container's header: a truncated file's header still declares its full length, and
    trusting it would send frame numbers past the end. A truncated video is logged as a
    warning naming the declared and readable counts.
    """
    from mekit.data.video import probe_video

    return probe_video(path).n_frames


def read_frames(row: Any, frames: Sequence[int], reduce: int = 1, rgb: bool = True) -> np.ndarray:
    """Frames of one sample by frame number, ``uint8[T, H, W, 3]`` (RGB; BGR with ``rgb=False``).

    ``row`` is a row of a :class:`~mekit.data.schema.SampleTable` (Series or mapping).
    A missing or undecodable frame raises :class:`DataError` naming the file.
    """
    media = row["media"]
    frames = [int(f) for f in frames]
    if media == "frames":
        from mekit.data.schema import frame_path

        return np.stack([read_image(frame_path(row, f), reduce, rgb) for f in frames]) if frames else \
            np.zeros((0, 0, 0, 3), np.uint8)
    if media == "image":
        img = read_image(row["path"], reduce, rgb)
        return np.repeat(img[None], max(len(frames), 1), axis=0)[:len(frames)]
    if media == "video":
        import cv2

        from mekit.data.video import read_video_frames

        arr, _fps = read_video_frames(row["path"], frames)
        arr = np.asarray(arr)
        if arr.ndim == 3:
            arr = np.repeat(arr[..., None], 3, axis=-1)
        if reduce != 1 and len(arr):
            h, w = arr.shape[1:3]
            size = (-(-w // reduce), -(-h // reduce))
            arr = np.stack([cv2.resize(a, size, interpolation=cv2.INTER_AREA) for a in arr])
        arr = arr.astype(np.uint8, copy=False)
        return arr if rgb else np.ascontiguousarray(arr[..., ::-1])
    if media == "flow":
        raise DataError(f"sample {row['sample_id']} is a flow image, not frames",
                        expected="read it with read_flow_image")
    raise DataError(f"sample {row['sample_id']}: unknown media {media!r}",
                    expected="frames, image, video or flow")


def read_flow_image(path: str | Path) -> np.ndarray:
    """A precomputed flow image as ``float32[3, H, W]`` in [0, 1] (channels R, G, B = u, v, strain).

    Published flow images (STSTNet, HTNet) are written with OpenCV from a BGR array holding
    (strain, v, u), so read as RGB they are (u, v, strain): the same order as
    :func:`mekit.preprocess.flow.flow_stack`. 16-bit images are scaled by 65535.
    """
    import cv2

    p = Path(path)
    img = decode_image(p, cv2.IMREAD_UNCHANGED)
    if img.ndim == 2:
        raise DataError("flow image has one channel", path=p, expected="3 channels (u, v, strain)")
    img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
    scale = 65535.0 if img.dtype == np.uint16 else 255.0 if img.dtype == np.uint8 else 1.0
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32) / scale


__all__ = ["decode_image", "image_defect", "read_image", "read_frames", "read_flow_image", "image_size",
           "reduced_matrix", "key_frames", "clip_frame_numbers", "list_frame_numbers", "frame_regex", "video_length", "REDUCTIONS"]
