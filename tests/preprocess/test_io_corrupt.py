"""Damaged image and video files are an error for their sample in every reader, never half an image.

A truncated JPEG decodes, with OpenCV, to an image whose lower part is grey and only an
anonymous "Premature end of JPEG file" on stderr; used as a frame it poisons the flow and the
features without a trace. These tests pin that every reader in mekit.preprocess.io refuses it
(DataError naming the file) and that the preprocessing pipeline skips that one clip with the
reason while the others go on.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from PIL import Image  # noqa: E402

from mekit.data.schema import SampleTable  # noqa: E402
from mekit.errors import DataError  # noqa: E402
from mekit.preprocess.io import read_flow_image, read_frames, read_image, video_length  # noqa: E402


def _image(fmt: str = "JPEG", size: int = 48, seed: int = 0, **save) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **save)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# -- the readers --------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt,ext", [("JPEG", "jpg"), ("PNG", "png"), ("BMP", "bmp")])
def test_truncated_image_is_a_data_error_naming_the_file(tmp_path, fmt, ext):
    data = _image(fmt)
    p = _write(tmp_path / f"frame.{ext}", data[: len(data) * 2 // 3])
    with pytest.raises(DataError, match="truncated") as e:
        read_image(p)
    assert str(p) in str(e.value)


@pytest.mark.parametrize("reduce", [1, 2])
def test_truncated_jpeg_is_refused_at_every_decode_scale(tmp_path, reduce):
    data = _image("JPEG", size=64)
    p = _write(tmp_path / "reg_img46.jpg", data[:-2])  # only the end marker is missing
    with pytest.raises(DataError, match="reg_img46.jpg.*truncated JPEG"):
        read_image(p, reduce=reduce, rgb=False)


def test_empty_and_garbage_files_are_data_errors(tmp_path):
    empty = _write(tmp_path / "empty.jpg", b"")
    with pytest.raises(DataError, match=r"empty.jpg: the file is empty \(0 bytes\)"):
        read_image(empty)
    junk = _write(tmp_path / "junk.png", b"this is not an image at all" * 10)
    with pytest.raises(DataError, match="junk.png: cannot decode image"):
        read_image(junk)
    with pytest.raises(DataError, match="missing"):
        read_image(tmp_path / "absent.jpg")
    (tmp_path / "folder.jpg").mkdir()
    with pytest.raises(DataError, match="folder.jpg"):
        read_image(tmp_path / "folder.jpg")


def test_no_anonymous_libjpeg_message_for_a_truncated_file(tmp_path, capfd):
    data = _image("JPEG", size=64)
    p = _write(tmp_path / "cut.jpg", data[: len(data) // 2])
    with pytest.raises(DataError):
        read_image(p)
    err = capfd.readouterr().err
    assert "Premature end of JPEG file" not in err


def test_complete_images_still_read_exactly(tmp_path):
    # Trailing bytes after the end marker (phones append motion-photo data or maker trailers)
    # and progressive JPEGs are whole images: no false alarm, and the pixels are the decoder's.
    base = _image("JPEG", size=40, seed=3)
    prog = _image("JPEG", size=40, seed=3, progressive=True)
    for name, data in [("plain.jpg", base), ("trailer.jpg", base + b"\x00" * 7 + b"MotionPhoto" * 20),
                       ("progressive.jpg", prog), ("image.png", _image("PNG")), ("image.bmp", _image("BMP"))]:
        p = _write(tmp_path / name, data)
        img = read_image(p)
        ref = cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        assert img.dtype == np.uint8 and img.shape == ref.shape and np.array_equal(img, ref), name


def test_image_defect_is_cheap_on_whole_jpegs():
    from mekit.preprocess.io import image_defect

    # CASME II preprocessing decodes ~16k frames: the check must cost microseconds, not a decode.
    data = _image("JPEG", size=256)
    assert image_defect(data) is None
    n = 2000
    t = time.perf_counter()
    for _ in range(n):
        image_defect(data)
    per_call = (time.perf_counter() - t) / n
    assert per_call < 50e-6, f"{per_call * 1e6:.1f} us per call"


def test_read_frames_refuses_a_truncated_frame_of_a_clip(tmp_path):
    folder = tmp_path / "sub01" / "EP01"
    for f in range(10, 14):
        _write(folder / f"reg_img{f}.jpg", _image("JPEG", seed=f))
    truncated = folder / "reg_img12.jpg"
    truncated.write_bytes(truncated.read_bytes()[:300])
    row = {"sample_id": "fake/sub01/EP01", "media": "frames", "path": str(folder),
           "frame_template": "reg_img{frame}.jpg"}
    assert read_frames(row, [10, 11]).shape[0] == 2
    with pytest.raises(DataError, match="reg_img12.jpg.*truncated"):
        read_frames(row, [10, 11, 12])


def test_read_flow_image_refuses_a_truncated_png(tmp_path):
    data = _image("PNG", size=28)
    p = _write(tmp_path / "sub01_EP02_01f .png", data[:-20])
    with pytest.raises(DataError, match="truncated PNG"):
        read_flow_image(p)


def test_image_media_sample_is_refused_too(tmp_path):
    data = _image("JPEG")
    p = _write(tmp_path / "happy" / "S1_001.jpg", data[: len(data) // 2])
    row = {"sample_id": "ck/happy/S1_001", "media": "image", "path": str(p), "frame_template": None}
    with pytest.raises(DataError, match="S1_001.jpg"):
        read_frames(row, [0])


# -- videos -------------------------------------------------------------------------------------
def _video(path: Path, n: int = 20) -> Path:
    av = pytest.importorskip("av")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mjpeg", rate=25)
        s.width = s.height = 32
        s.pix_fmt = "yuvj420p"
        for i in range(n):
            fr = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 10, np.uint8), format="rgb24")
            for pk in s.encode(fr):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    return path


def test_video_length_counts_readable_frames_and_warns_on_truncation(tmp_path, caplog):
    p = _video(tmp_path / "clip.avi", 20)
    assert video_length(p) == 20
    data = p.read_bytes()
    p.write_bytes(data[: int(len(data) * 0.6)])
    with caplog.at_level("WARNING"):
        n = video_length(p)
    assert 0 < n < 20  # the header still says 20; the frames past the cut do not exist
    msg = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "clip.avi" in msg and "declares 20 frames" in msg and f"only {n}" in msg


# -- the pipeline skips the one clip ------------------------------------------------------------
def test_preprocess_skips_a_clip_with_a_truncated_frame_and_names_it(tmp_path):
    from mekit.preprocess.pipeline import preprocess

    rng = np.random.default_rng(0)
    recs = []
    for k in range(2):
        folder = tmp_path / "corpus" / f"sub0{k + 1}" / "EP01"
        folder.mkdir(parents=True)
        img = cv2.GaussianBlur(rng.integers(0, 256, (72, 64, 3)).astype(np.uint8), (0, 0), 1.5)
        for f in range(20, 27):
            cv2.imwrite(str(folder / f"reg_img{f}.jpg"), np.roll(img, f - 20, axis=1))
        recs.append({"sample_id": f"fake/sub0{k + 1}/EP01", "dataset": "fake", "subject": f"fake/sub0{k + 1}",
                     "clip": "EP01", "media": "frames", "path": str(folder), "frame_template": "reg_img{frame}.jpg",
                     "onset": 20, "apex": 23, "offset": 26, "fps": 200.0, "emotion": "happy", "label": "happy"})
    bad = tmp_path / "corpus" / "sub02" / "EP01" / "reg_img23.jpg"
    bad.write_bytes(bad.read_bytes()[:400])
    table = SampleTable.from_records(recs, name="fake")
    cfg = {"detector": "none", "landmarks": False, "size": 32, "workers": 1, "cache_dir": str(tmp_path / "c")}
    res = preprocess(table, cfg, progress=False)
    assert "fake/sub02/EP01" in res.skipped
    reason = res.skipped["fake/sub02/EP01"]
    assert "reg_img23.jpg" in reason and "truncated" in reason
    assert "fake/sub01/EP01" not in res.skipped
