"""Inputs found by benchmarks/fuzz.py that made a reader fail with something other than a
MekitError, rebuilt in code at their smallest. Each reader must answer them with one clear
DataError/ConfigError (the CLI prints it as one line), never another exception."""

from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest

from mekit.errors import MekitError

# -- video ----------------------------------------------------------------------------------


def _mpeg4_stream(size: int, n: int = 2) -> bytes:
    """A raw MPEG-4 part 2 elementary stream of ``n`` frames of ``size`` x ``size`` pixels."""
    av = pytest.importorskip("av")
    buf = io.BytesIO()
    with av.open(buf, "w", format="m4v") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        for i in range(n):
            img = np.full((size, size, 3), 60 * i, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return buf.getvalue()


@pytest.fixture
def size_changing_video(tmp_path):
    """Two streams back to back: frames 0-1 are 16 x 16, frames 2-3 are 32 x 32 (a spliced or
    damaged file; the fuzzer found a 16 x 16 clip whose third frame decoded at 1507 x 5148)."""
    p = tmp_path / "spliced.m4v"
    p.write_bytes(_mpeg4_stream(16) + _mpeg4_stream(32))
    return p


def test_video_whose_frame_size_changes_is_refused(size_changing_video):
    from mekit.data.video import read_video_frames

    with pytest.raises(MekitError):
        read_video_frames(size_changing_video, [0, 3])


def test_whole_video_whose_frame_size_changes_is_refused(size_changing_video):
    from mekit.data.video import read_video_frames

    with pytest.raises(MekitError):
        read_video_frames(size_changing_video)


# -- coding sheets --------------------------------------------------------------------------


def test_clip_name_with_a_nul_byte_is_a_problem_not_a_crash(tmp_path):
    """A NUL byte in a Filename cell reached Path.resolve() (ValueError: embedded null byte)."""
    from mekit.data.casme2 import load_casme2

    sheet = tmp_path / "coding.csv"
    sheet.write_text("Subject,Filename,OnsetFrame,ApexFrame,OffsetFrame,Estimated Emotion\n"
                     "1,EP\x0002,1,2,3,happiness\n2,EP03,1,2,3,disgust\n")
    try:
        table = load_casme2(sheet=sheet, check_frames=False)
    except MekitError:
        return
    assert all("\x00" not in p for p in table.df["path"])


def test_clip_name_longer_than_a_file_name_is_a_problem_not_a_crash(tmp_path):
    """A Filename cell over 255 bytes (the fuzzer's: 128 x '\xa4' read as cp1252, 2 bytes each in
    UTF-8) made Path.is_dir() raise OSError [Errno 36] File name too long, where the subject's
    folder exists."""
    from mekit.data.casme2 import load_casme2

    (tmp_path / "Cropped" / "sub01").mkdir(parents=True)
    (tmp_path / "coding.csv").write_text("Subject,Filename,OnsetFrame,ApexFrame,OffsetFrame,Estimated Emotion\n"
                                         f"1,{'x' * 300},1,2,3,happiness\n2,EP03,1,2,3,disgust\n")
    try:
        load_casme2(tmp_path, check_frames=False)
    except MekitError:
        pass


_SMIC_SHEET = "subject,clip,label,onset_frame,apex_frame,offset_frame\n1,s1_ne_01,0,10,12,15\n"


def test_smic_label_with_a_nul_byte_is_a_problem_not_a_crash(tmp_path):
    """SMIC-HS files a clip under micro/<label>/; where the clip name carries no ne/po/sur code
    the label cell is that folder name, and a NUL byte in it reached Path.resolve()."""
    from mekit.data.smic import load_smic

    (tmp_path / "smic.csv").write_text(_SMIC_SHEET + "3,clip3,pos\x00x,3,4,5\n")
    try:
        load_smic(sheet=tmp_path / "smic.csv", check_frames=False)
    except MekitError:
        pass


def test_smic_label_cannot_move_a_clip_outside_the_corpus(tmp_path):
    """Found next to the one above: a label is a path component, so '../../../..' in it escapes
    the frames folder, as a clip name with separators would (which unsafe_name refuses)."""
    from mekit.data.smic import load_smic

    (tmp_path / "smic.csv").write_text(_SMIC_SHEET + "3,clip3,../../../../x,3,4,5\n")
    try:
        table = load_smic(sheet=tmp_path / "smic.csv", check_frames=False)
    except MekitError:
        return
    root = str(tmp_path.resolve())
    assert all(p.startswith(root) for p in table.df["path"])


def test_interval_row_naming_a_video_longer_than_a_file_name_is_a_problem_not_a_crash(tmp_path):
    """The same bug in the interval CSV of load_videos (found by reading, next to the one above)."""
    from mekit.data.video import load_videos

    (tmp_path / "clip.m4v").write_bytes(_mpeg4_stream(16, n=3))
    (tmp_path / "intervals.csv").write_text(f"video,onset,offset\n{'y' * 300}.avi,0,2\nclip.m4v,0,2\n")
    try:
        load_videos(tmp_path, intervals="intervals.csv")
    except MekitError:
        pass


# -- bundles --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle_bytes(tmp_path_factory) -> bytes:
    """A real (tiny) classical bundle, members stored uncompressed so bytes can be edited."""
    from mekit.models.classical import ClassicalModel
    from mekit.config import load_config
    from mekit.engine.bundle import save_bundle

    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 3))
    y = np.where(X[:, 0] > 0, "pos", "neg")
    m = ClassicalModel("logreg").fit(X, y, np.array([f"s{i % 4}" for i in range(24)]))
    p = save_bundle(tmp_path_factory.mktemp("bundle") / "m.mekit", m, load_config(), list(m.classes_))
    out = io.BytesIO()
    with zipfile.ZipFile(p) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
    return out.getvalue()


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: z.read(n) for n in z.namelist()}


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def _load(tmp_path, data: bytes):
    from mekit.engine.bundle import load_bundle

    p = tmp_path / "fuzzed.mekit"
    p.write_bytes(data)
    return load_bundle(p)


def test_bundle_with_a_bad_crc_is_refused(tmp_path, bundle_bytes):
    """zipfile.BadZipFile: Bad CRC-32 for file 'meta.json'."""
    data = bytearray(bundle_bytes)
    data[data.index(b'"format"') + 2] ^= 0x20  # one flipped bit inside meta.json's stored bytes
    with pytest.raises(MekitError):
        _load(tmp_path, bytes(data))


def test_bundle_with_corrupt_deflate_data_is_refused(tmp_path, bundle_bytes):
    """zlib.error: Error -3 while decompressing data."""
    data = bytearray(_zip(_members(bundle_bytes), zipfile.ZIP_DEFLATED))
    start = 30 + len("meta.json")  # meta.json is the first member: its data follows the local header
    data[start:start + 8] = b"\xff" * 8
    with pytest.raises(MekitError):
        _load(tmp_path, bytes(data))


def test_bundle_needing_a_newer_zip_version_is_refused(tmp_path, bundle_bytes):
    """NotImplementedError: zip file version 24.1 (central directory 'version needed')."""
    data = bytearray(bundle_bytes)
    cd = data.index(b"PK\x01\x02")
    data[cd + 6:cd + 8] = struct.pack("<H", 241)
    with pytest.raises(MekitError):
        _load(tmp_path, bytes(data))


def test_bundle_with_a_member_name_that_is_not_utf8_is_refused(tmp_path, bundle_bytes):
    """UnicodeDecodeError from zipfile: the UTF-8 flag is set on a name that is not UTF-8."""
    data = bytearray(bundle_bytes)
    cd = data.index(b"PK\x01\x02")
    flags = struct.unpack_from("<H", data, cd + 8)[0]
    struct.pack_into("<H", data, cd + 8, flags | 0x800)
    data[cd + 46] = 0xEC  # first byte of the name ('m' of meta.json): an invalid UTF-8 lead byte
    data[cd + 47] = 0x41
    with pytest.raises(MekitError):
        _load(tmp_path, bytes(data))


def test_bundle_whose_directory_offset_points_past_the_file_start_is_refused(tmp_path, bundle_bytes):
    """OSError [Errno 22] Invalid argument: a member's computed offset is negative (seek)."""
    data = bytearray(bundle_bytes)
    eocd = data.rindex(b"PK\x05\x06")
    cd_offset = struct.unpack_from("<I", data, eocd + 16)[0]
    struct.pack_into("<I", data, eocd + 16, cd_offset + 4096)
    with pytest.raises(MekitError):
        _load(tmp_path, bytes(data))


def test_bundle_meta_without_model_classes_is_refused(tmp_path, bundle_bytes):
    """KeyError: 'model_classes' (a valid payload under a meta.json that lacks the field)."""
    import json

    members = _members(bundle_bytes)
    meta = json.loads(members["meta.json"])
    del meta["model_classes"]
    members["meta.json"] = json.dumps(meta).encode()
    with pytest.raises(MekitError):
        _load(tmp_path, _zip(members))


@pytest.mark.parametrize("version", ['"one"', "null", "[1]", "1e999"])
def test_bundle_meta_with_a_format_version_that_is_not_a_number_is_refused(tmp_path, bundle_bytes, version):
    """int(meta['format_version']) on text, null or a list: ValueError/TypeError/OverflowError."""
    import json

    members = _members(bundle_bytes)
    meta = json.loads(members["meta.json"])
    text = json.dumps({**meta, "format_version": 0}).replace('"format_version": 0', f'"format_version": {version}')
    members["meta.json"] = text.encode()
    with pytest.raises(MekitError):
        _load(tmp_path, _zip(members))
