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

log = logging.getLogger(__name__)

REDUCTIONS = (1, 2, 4, 8)


def _isna(v: Any) -> bool:
    try:
        import pandas as pd

        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _imread_flag(reduce: int, grey: bool = False) -> int:
    import cv2

    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce}")
    if reduce == 1:
        return cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR
    return getattr(cv2, f"IMREAD_REDUCED_{'GRAYSCALE' if grey else 'COLOR'}_{reduce}")


#: What every image reader expects, for messages.
_EXPECTED_IMAGE = "a complete JPEG/PNG/BMP/TIFF image"

_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def image_defect(data: bytes) -> str | None:
    """Why the encoded bytes of an image file are incomplete, or None when they look whole.

    Decoders do not say: given a truncated JPEG, libjpeg prints an anonymous "Premature end
    of JPEG file" on stderr and OpenCV returns an image whose lower part is grey, which would
    then be used as if it were real. So the file's own end is checked before decoding:

    - JPEG must end with the EOI marker ``FF D9``. That is the fast path (two bytes, every
      frame of CASME II passes it). Phones append data after EOI (motion photos, maker
      trailers), so a JPEG that does not end with EOI is walked marker by marker, which
      finds whether an EOI exists before the end (trailer: fine) or not (truncated);
    - PNG must hold its IEND chunk (the last 12 bytes, or anywhere for a trailer);
    - BMP and WebP must be at least as long as their header declares.

    Other formats (TIFF) have no cheap end marker and are left to the decoder. Checking
    before decoding also keeps libjpeg from printing its message for truncated files.
    """
    n = len(data)
    if n == 0:
        return "the file is empty (0 bytes)"
    head = bytes(data[:12])
    if head[:3] == b"\xff\xd8\xff":
        if bytes(data[-2:]) == b"\xff\xd9":
            return None
        end = _jpeg_end(bytes(data))
        if end is None:
            return f"truncated JPEG: no end-of-image marker (FF D9) in its {n} bytes"
        return None
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        if bytes(data[-12:]) == _PNG_END:
            return None
        at = bytes(data).rfind(b"IEND", 8)  # data appended after IEND is ignored by decoders
        if at >= 0 and at + 8 <= n:
            return None
        return f"truncated PNG: no IEND chunk in its {n} bytes"
    if head[:2] == b"BM" and n >= 14:
        declared = int.from_bytes(head[2:6], "little")
        if declared and declared > n:  # some writers leave the size 0: nothing to compare then
            return f"truncated BMP: its header declares {declared} bytes, the file holds {n}"
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        declared = int.from_bytes(head[4:8], "little") + 8
        if declared > n:
            return f"truncated WebP: its header declares {declared} bytes, the file holds {n}"
    return None


def _jpeg_end(buf: bytes) -> int | None:
    """Offset just past the EOI marker of a JPEG, walking its segments; None when it is cut off.

    Only reached when a JPEG does not end with EOI. Header segments are skipped by their
    length (an EXIF thumbnail holds an EOI of its own); entropy-coded data after SOS is
    scanned for the next marker (inside it an FF byte is always followed by 00 or a
    restart marker). A structure the walk does not understand is not called truncated:
    the decoder is then the judge, so an odd but valid file is never refused here.
    """
    n = len(buf)
    i = 2
    while i + 1 < n:
        if buf[i] != 0xFF:
            return n  # not a marker where one should be: leave it to the decoder
        m = buf[i + 1]
        if m == 0xFF:  # fill byte
            i += 1
            continue
        if m == 0xD9:
            return i + 2
        if m == 0x01 or 0xD0 <= m <= 0xD8:  # standalone markers
            i += 2
            continue
        if i + 4 > n:
            return None
        end = i + 2 + int.from_bytes(buf[i + 2:i + 4], "big")
        if end > n:
            return None
        if m != 0xDA:
            i = end
            continue
        j = end  # SOS: entropy-coded data runs to the next real marker
        while True:
            j = buf.find(b"\xff", j)
            if j < 0 or j + 1 >= n:
                return None
            nxt = buf[j + 1]
            if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
                j += 2
            elif nxt == 0xFF:
                j += 1
            else:
                break
        i = j
    return None


def _read_bytes(p: Path) -> bytes:
    try:
        with open(p, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise DataError("frame file is missing", path=p, expected="an existing image file") from None
    except IsADirectoryError:
        raise DataError("is a folder, not an image file", path=p, expected="an image file") from None
    except OSError as e:
        raise DataError(f"cannot read image file ({e.strerror or e})", path=p,
                        expected="a readable image file") from None


def decode_image(path: str | Path, flag: int) -> np.ndarray:
    """The one place mekit decodes an image file: ``cv2.imdecode`` of its bytes with ``flag``.

    A missing, empty, truncated or undecodable file raises :class:`DataError` naming it
    (see :func:`image_defect`); reading the bytes ourselves costs no more than
    ``cv2.imread`` (which reads them too) and works for any path, non-ASCII ones included.
    """
    import cv2

    p = Path(path)
    data = _read_bytes(p)
    defect = image_defect(data)
    if defect is not None:
        raise DataError(defect, path=p, expected=_EXPECTED_IMAGE)
    try:
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    except cv2.error as e:
        raise DataError(f"cannot decode image ({str(e).strip().splitlines()[-1]})", path=p,
                        expected=_EXPECTED_IMAGE) from None
    if img is None:
        raise DataError("cannot decode image (corrupt, or not an image)", path=p, expected=_EXPECTED_IMAGE)
    return img


def read_image(path: str | Path, reduce: int = 1, rgb: bool = True) -> np.ndarray:
    """An image file as ``uint8[H, W, 3]`` (decoded at 1/``reduce`` scale).

    RGB by default; ``rgb=False`` returns OpenCV's BGR order and skips a conversion.
    A missing, empty, truncated or corrupt file raises :class:`DataError` naming it, so a
    caller that processes many samples (the preprocessing pipeline) skips that sample with
    the reason instead of using a half-grey image.
    """
    import cv2

    img = decode_image(path, _imread_flag(reduce))
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if rgb else img


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` of an image from its header (PIL reads no pixels)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
    except FileNotFoundError:
        raise DataError("frame file is missing", path=path, expected="an existing image file") from None
    except Exception as e:
        raise DataError(f"cannot read image header ({e})", path=path, expected="a readable image") from None
    return int(h), int(w)


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
