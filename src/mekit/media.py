"""Decoding image files: the bottom layer every reader of pixels goes through.

Both the loaders (``mekit.data``: a data check, flow-image corpora) and preprocessing
(``mekit.preprocess.io``, which re-exports these names) decode images here, so that what counts
as a damaged file is decided in one place: a truncated or corrupt file is a
:class:`~mekit.errors.DataError` naming it, never a half-grey picture.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mekit.errors import DataError

log = logging.getLogger(__name__)

REDUCTIONS = (1, 2, 4, 8)


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


