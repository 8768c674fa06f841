"""Coverage-guided fuzzing of mekit's file readers.

Each target feeds mutated bytes to one family of readers and checks one property: a reader
either returns a result or raises :class:`mekit.errors.MekitError` (``DataError`` /
``ConfigError``) with a message for the user. Anything else is a crash:

- any other exception (``KeyError``, ``cv2.error``, ``zipfile.BadZipFile``, ...);
- a hang: one input running longer than ``--timeout`` seconds;
- a memory blow-up: the address space is capped with ``resource.setrlimit(RLIMIT_AS)`` at
  what the process holds after its imports plus ``--memory-mb`` (2 GiB by default), so a
  reader that tries to allocate more fails with ``MemoryError`` (recorded as a crash).

Targets:

``image``   :func:`mekit.preprocess.io.read_image` (full and reduced decode, RGB and BGR),
            :func:`~mekit.preprocess.io.read_flow_image`, :func:`~mekit.preprocess.io.image_size`
            and :func:`~mekit.preprocess.io.read_frames` of a still image, on bytes written to a
            ``.jpg`` or ``.png`` file (the first input byte picks the suffix).
``video``   :func:`mekit.data.video.probe_video`, :func:`~mekit.data.video.read_video_frames`
            (some frames, then all of them) and :func:`mekit.preprocess.io.video_length`, on
            bytes written to an ``.avi``/``.mp4``/``.mkv``/``.mov`` file.
``sheet``   the CASME II, SAMM, SMIC and CAS(ME)^3 coding-sheet loaders (through
            :mod:`mekit.data._sheets`) and the interval CSV of :func:`mekit.data.video.load_videos`.
            The first byte picks the loader, the format (raw CSV bytes; CSV text turned into an
            ``.xlsx`` whose numeric-looking cells are numbers; raw ``.xlsx`` bytes) and whether
            frame folders are checked.
``bundle``  :func:`mekit.engine.bundle.load_bundle`: either raw bytes of a ``.mekit`` file, or
            (structure-aware) a ``meta.json`` text and a payload written into a valid zip, so
            mutations reach the JSON and the torch/skops payload readers.

Seeds are generated in code (synthetic pixels, sheets in the real column layouts of
``tests/data/_layouts.py``, and two real bundles, logistic regression and STSTNet, trained on
a tiny synthetic corpus); nothing is read from licensed data. They are cached in
``<workdir>/seeds/<target>``.

Engine: atheris (libFuzzer, coverage of the instrumented Python code of mekit and the pure
Python readers it calls: zipfile, csv, json, openpyxl, skops). Install it with
``.venv/bin/python -m pip install -c scripts/constraints.txt atheris`` (a CPython 3.11
x86-64 wheel). Without atheris the script falls back to a built-in mutation fuzzer with
line coverage from ``sys.settrace`` (slower, same command line and output).

Every target runs in a child process for ``--seconds``; a hang or memory kill ends that child
and the next one starts, until the budget is spent. Crashing inputs go to
``--crashes`` (default ``runs/fuzz/crashes/<target>/``), one input per distinct crash
(exception type and place), each with a ``.txt`` holding its traceback; ``summary.json``
lists them. Exit status 1 when any crash was found.

Run on demand (not part of the test suite)::

    .venv/bin/python benchmarks/fuzz.py --target all --seconds 60 --seed 0
    .venv/bin/python benchmarks/fuzz.py --target bundle --repro runs/fuzz/crashes/bundle/X.bin
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = ("image", "video", "sheet", "bundle")
#: per-input time limit (seconds) by target: the bundle target builds torch models
TIMEOUTS = {"image": 5, "video": 5, "sheet": 5, "bundle": 10}
#: modules whose Python code is instrumented for coverage (besides mekit)
INSTRUMENT = {"image": ["mekit"], "video": ["mekit"],
              "sheet": ["mekit", "csv", "openpyxl"],
              "bundle": ["mekit", "zipfile", "json", "skops"]}
SEP = b"\n--payload--\n"


# -----------------------------------------------------------------------------------------
# seeds (generated in code)
# -----------------------------------------------------------------------------------------
def _rng_image(h: int, w: int, c: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, c) if c > 1 else (h, w), dtype=np.uint8)
    return img


def seeds_image() -> dict[str, bytes]:
    import cv2
    import numpy as np

    out = {}
    col, grey = _rng_image(12, 10, 3), _rng_image(9, 8, 1)
    for name, ext, img in [("jpg_colour", ".jpg", col), ("jpg_grey", ".jpg", grey), ("png_colour", ".png", col),
                           ("png_grey", ".png", grey), ("png_rgba", ".png", _rng_image(8, 8, 4)),
                           ("png16", ".png", (col.astype(np.uint16) * 257)), ("bmp", ".bmp", col),
                           ("tiff", ".tiff", col)]:
        ok, buf = cv2.imencode(ext, img)
        assert ok
        mode = 0 if ext == ".jpg" else 1
        out[name] = bytes([mode]) + buf.tobytes()
    from PIL import Image

    b = io.BytesIO()
    Image.fromarray(col).save(b, format="JPEG", progressive=True)
    out["jpg_progressive"] = b"\x00" + b.getvalue()
    b = io.BytesIO()
    Image.fromarray(np.stack([grey, grey], -1), mode="LA").save(b, format="PNG")
    out["png_grey_alpha"] = b"\x01" + b.getvalue()
    return out


VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov")


def _write_video(path: Path, codec: str, n: int = 4, size: int = 16, pix: str = "yuv420p") -> bytes:
    import av
    import numpy as np

    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=25)
        s.width = s.height = size
        s.pix_fmt = pix
        for i in range(n):
            img = np.full((size, size, 3), 40 * i, np.uint8)
            img[2:6, 2 + i:6 + i] = 255
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path.read_bytes()


def seeds_video() -> dict[str, bytes]:
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for name, suffix, codec, pix in [("avi_mjpeg", ".avi", "mjpeg", "yuvj420p"),
                                         ("avi_ffv1", ".avi", "ffv1", "yuv420p"),
                                         ("mp4_h264", ".mp4", "libx264", "yuv420p"),
                                         ("mkv_mpeg4", ".mkv", "mpeg4", "yuv420p"),
                                         ("mov_mjpeg", ".mov", "mjpeg", "yuvj420p")]:
            try:
                data = _write_video(Path(d) / f"s{suffix}", codec, pix=pix)
            except Exception as e:  # noqa: BLE001 - a codec this PyAV build lacks
                print(f"  (seed {name} skipped: {type(e).__name__}: {e})", file=sys.stderr)
                continue
            out[name] = bytes([VIDEO_SUFFIXES.index(suffix)]) + data
    return out


SHEET_LOADERS = ("casme2", "samm", "smic", "casme3", "video_intervals")
SHEET_FORMATS = ("csv", "grid_xlsx", "raw_xlsx")


def _sheet_layouts() -> dict[str, tuple[list[str], list[list], int, str]]:
    """Header, rows, preamble rows and sheet name per loader, as in tests/data/_layouts.py."""
    return {
        "casme2": (["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units",
                    "Estimated Emotion"],
                   [[1, "EP02_01f", 46, 59, 86, "4+10", "happiness"], ["sub02", "EP03_02", 10, "/", 20, 4, "others"],
                    [3, "EP01_1", 5, 7, 9, "R12", "disgust"]], 0, "Sheet1"),
        "samm": (["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
                  "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"],
                 [[6, "006_1_2", 1, 5562, 5588, 5605, 44, "Micro - 1/2", "4+7", "Anger", 3, None],
                  ["007", "007_3_1", 2, 100, -1, 120, 21, "Macro", "(R6 or R12)+R15", "Other", 7, "x"]], 3,
                 "MICRO_ONLY"),
        "smic": (["data", "subject", "clip", "label", "onset_frame", "apex_frame", "offset_frame"],
                 [["smic", 1, "s1_ne_01", 0, 58831, 58840, 58850],
                  ["smic", "s2", "s2_po_03", "positive", 3, None, None],
                  ["smic", 3, "s3_sur_01", 2, 10, 12, 15]], 0, "Sheet1"),
        "casme3": (["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"],
                   [["spNO.1", "a", 10, 15, 20, "4", "III", "anger"], ["spNO.2", "b", 0, 3, 9, "R12", "I", "happy"]],
                   0, "label"),
        "video_intervals": (["video", "onset", "apex", "offset", "label", "subject"],
                            [["clip.avi", 0, 1, 3, "happiness", "s1"], ["clip", 1, "/", 2, "", ""]], 0, "Sheet1"),
    }


def _csv_text(header, rows, preamble=0) -> str:
    import csv

    b = io.StringIO()
    w = csv.writer(b)
    for i in range(preamble):
        w.writerow([f"preamble line {i}"])
    w.writerow(header)
    for r in rows:
        w.writerow(["" if v is None else v for v in r])
    return b.getvalue()


def seeds_sheet() -> dict[str, bytes]:
    out = {}
    for li, (loader, (header, rows, pre, sheet_name)) in enumerate(_sheet_layouts().items()):
        text = _csv_text(header, rows, pre).encode()
        for fi, fmt in enumerate(SHEET_FORMATS):
            for check in (0, 1):
                mode = li + len(SHEET_LOADERS) * fi + len(SHEET_LOADERS) * len(SHEET_FORMATS) * check
                body = _grid_to_xlsx(text, sheet_name) if fmt == "raw_xlsx" else text
                if fmt == "raw_xlsx" and check:
                    continue
                out[f"{loader}_{fmt}_{'check' if check else 'nocheck'}"] = bytes([mode]) + body
    return out


def seeds_bundle(workdir: Path) -> dict[str, bytes]:
    """Two real bundles trained on a tiny synthetic corpus (logreg on HOOF, STSTNet on flow)."""
    import zipfile

    os.environ.setdefault("MEKIT_CACHE", str(workdir / "mekit-cache"))
    from mekit.config import load_config
    from mekit.engine.predict import train_bundle

    base = {"name": "fuzz_seed", "data.options": {"n_subjects": 4, "clips_per_subject": 3, "size": 64},
            "preprocess": {"detector": "none", "size": 64, "landmarks": False, "flow": "farneback", "workers": 1},
            "features.name": "hoof", "features.params": {"grid": 3, "bins": 8},
            "model.name": "logreg", "model.params": {"grid": {"C": [1.0]}, "inner_folds": 2}}
    neural = {**base, "features.name": "flow", "features.params": {"size": 16}, "model.name": "ststnet",
              "model.params": {"epochs": 1, "selection": "fixed", "batch_size": 8, "threads": 1}}
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for name, over in (("logreg", base), ("ststnet", neural)):
            p = train_bundle(load_config(None, over), Path(d) / f"{name}.mekit", progress=False)
            data = p.read_bytes()
            out[f"raw_{name}"] = b"\x00" + data
            with zipfile.ZipFile(p) as z:
                payload = "weights.pt" if "weights.pt" in z.namelist() else "model.skops"
                flag = 0 if payload == "weights.pt" else 1
                out[f"structured_{name}"] = bytes([1, flag]) + z.read("meta.json") + SEP + z.read(payload)
    return out


#: source files whose changes make cached seeds stale (bundles are written by this code)
SEED_SOURCES = {"bundle": ("engine/bundle.py", "engine/trainer.py", "engine/predict.py", "classical.py")}


def _seed_stamp(target: str) -> str:
    h = hashlib.sha1(Path(__file__).read_bytes())
    for rel in SEED_SOURCES.get(target, ()):
        f = REPO / "src" / "mekit" / rel
        h.update(f.read_bytes() if f.exists() else b"")
    return h.hexdigest()


def make_seeds(target: str, workdir: Path) -> Path:
    """The target's seed folder, generated when absent or made by other code than today's."""
    folder = workdir / "seeds" / target
    stamp = workdir / "seeds" / f"{target}.stamp"
    if folder.is_dir() and any(folder.iterdir()) and stamp.exists() and stamp.read_text() == _seed_stamp(target):
        return folder
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    seeds = {"image": seeds_image, "video": seeds_video, "sheet": seeds_sheet,
             "bundle": lambda: seeds_bundle(workdir)}[target]()
    for name, data in seeds.items():
        (tmp / name).write_bytes(data)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    stamp.write_text(_seed_stamp(target))
    return folder


# -----------------------------------------------------------------------------------------
# harnesses: one input -> the readers of a target
# -----------------------------------------------------------------------------------------
def _grid_to_xlsx(text: bytes, sheet_name: str) -> bytes:
    """CSV text -> an xlsx (numeric-looking cells become numbers, as a spreadsheet stores them)."""
    import csv

    import openpyxl
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet_name
    s = text.decode("utf-8", "replace")
    for r, row in enumerate(csv.reader(io.StringIO(s, newline="")), start=1):
        for c, cell in enumerate(row[:40], start=1):
            v: object = ILLEGAL_CHARACTERS_RE.sub("", cell)[:1000]
            if re.fullmatch(r"-?\d{1,15}", str(v)):
                v = int(v)
            elif re.fullmatch(r"-?\d*\.\d+(e-?\d+)?", str(v)):
                v = float(v)
            if v != "":
                ws.cell(row=r, column=c, value=v)
        if r >= 200:
            break
    b = io.BytesIO()
    wb.save(b)
    return b.getvalue()


class Harness:
    """Writes an input where a target's readers expect a file and calls them."""

    def __init__(self, target: str, tmp: Path) -> None:
        self.target, self.tmp = target, tmp
        self.empty_frames = tmp / "frames"
        self.empty_frames.mkdir(exist_ok=True)
        self.video_dir = tmp / "videos"
        if target == "sheet":
            self.video_dir.mkdir(exist_ok=True)
            _write_video(self.video_dir / "clip.avi", "mjpeg", pix="yuvj420p")

    def setup(self, data: bytes):
        """The call to check, or None when the input cannot be turned into a file (not a crash)."""
        if not data:
            return None
        mode, body = data[0], data[1:]
        t = self.target
        if t == "image":
            p = self.tmp / ("in.jpg" if mode % 2 == 0 else "in.png")
            p.write_bytes(body)
            return lambda: self.image(p, (1, 2, 4, 8)[(mode // 2) % 4])
        if t == "video":
            p = self.tmp / ("in" + VIDEO_SUFFIXES[mode % len(VIDEO_SUFFIXES)])
            p.write_bytes(body)
            return lambda: self.video(p)
        if t == "sheet":
            loader = SHEET_LOADERS[mode % len(SHEET_LOADERS)]
            fmt = SHEET_FORMATS[(mode // len(SHEET_LOADERS)) % len(SHEET_FORMATS)]
            check = (mode // (len(SHEET_LOADERS) * len(SHEET_FORMATS))) % 2 == 1
            if loader == "video_intervals":
                p = self.video_dir / "intervals.csv"
                p.write_bytes(body)
                return lambda: self.intervals(p)
            sheet_name = _sheet_layouts()[loader][3]
            if fmt == "csv":
                p = self.tmp / "sheet.csv"
                p.write_bytes(body)
            else:
                p = self.tmp / "sheet.xlsx"
                if fmt == "grid_xlsx":
                    try:
                        body = _grid_to_xlsx(body, sheet_name)
                    except Exception:  # noqa: BLE001 - a harness limit, not mekit's
                        return None
                p.write_bytes(body)
            return lambda: self.sheet(loader, p, check)
        if t == "bundle":
            p = self.tmp / "in.mekit"
            if mode % 2 == 0:
                p.write_bytes(body)
            else:
                import zipfile

                if not body:
                    return None
                flag, rest = body[0], body[1:]
                meta, _, payload = rest.partition(SEP)
                names = [("weights.pt",), ("model.skops",), ("weights.pt", "model.skops"), ()][flag % 4]
                with zipfile.ZipFile(p, "w") as z:
                    z.writestr("meta.json", meta)
                    for n in names:
                        z.writestr(n, payload)
            return lambda: self.bundle(p)
        raise ValueError(t)

    # the readers -------------------------------------------------------------------------
    def image(self, p: Path, reduce: int) -> None:
        from mekit.preprocess import io as mio

        mio.read_image(p)
        mio.read_image(p, reduce=reduce, rgb=False)
        mio.image_size(p)
        mio.read_flow_image(p)
        row = {"sample_id": "fuzz/x", "media": "image", "path": str(p), "onset": None, "apex": None,
               "offset": None}
        mio.read_frames(row, mio.clip_frame_numbers(row) * 2, reduce=reduce)

    def video(self, p: Path) -> None:
        from mekit.data import video
        from mekit.preprocess import io as mio

        info = video.probe_video(p)
        mio.video_length(p)
        video.read_video_frames(p, [0, min(2, info.n_frames - 1), 0])
        video.read_video_frames(p)
        row = {"sample_id": "fuzz/x", "media": "video", "path": str(p), "onset": 0, "apex": None,
               "offset": info.n_frames - 1}
        mio.read_frames(row, [0], reduce=2)

    def sheet(self, loader: str, p: Path, check: bool) -> None:
        from mekit.data import get_loader

        fn = get_loader(loader)
        t = fn(None, sheet=p, check_frames=check, frames_dir=self.empty_frames if check else None)
        t.df  # noqa: B018 - the table must be built

    def intervals(self, p: Path) -> None:
        from mekit.data.video import load_videos

        load_videos(self.video_dir, intervals=p)

    def bundle(self, p: Path) -> None:
        from mekit.engine.bundle import load_bundle

        b = load_bundle(p)
        b.classes  # noqa: B018 - a loaded bundle must name its classes


def _import_readers(target: str) -> None:
    """Import what a target calls (inside atheris' instrumentation when it is on)."""
    import mekit.errors  # noqa: F401

    if target == "image":
        import mekit.preprocess.io  # noqa: F401
    elif target == "video":
        import mekit.data.video  # noqa: F401
        import mekit.preprocess.io  # noqa: F401
    elif target == "sheet":
        import csv  # noqa: F401

        import openpyxl  # noqa: F401

        import mekit.data.casme2  # noqa: F401
        import mekit.data.casme3  # noqa: F401
        import mekit.data.samm  # noqa: F401
        import mekit.data.smic  # noqa: F401
        import mekit.data.video  # noqa: F401
    elif target == "bundle":
        import skops.io  # noqa: F401

        import mekit.engine.bundle  # noqa: F401
        import mekit.engine.trainer  # noqa: F401
        import mekit.models  # noqa: F401


def _quiet() -> None:
    import logging
    import warnings

    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    try:
        import av.logging

        av.logging.set_level(None)
    except Exception:  # noqa: BLE001
        pass


def signature(exc: BaseException) -> tuple[str, str]:
    """(short id, one-line description): the exception type and where it was raised; the
    innermost mekit frame first, so one bug found through different library paths is one crash."""
    tb = traceback.extract_tb(exc.__traceback__)
    mk = [f for f in tb if "/mekit/" in f.filename.replace(os.sep, "/") and "benchmarks" not in f.filename]
    inner = tb[-1] if tb else None

    def where(f) -> str:
        fn = f.filename.replace(os.sep, "/")
        if "/mekit/" in fn:
            short = "mekit/" + fn.rsplit("/mekit/", 1)[1]
        elif "site-packages/" in fn:
            short = fn.rsplit("site-packages/", 1)[1]
        else:
            short = fn.rsplit("/", 1)[-1]
        return f"{short}:{f.name}"

    place = where(mk[-1]) if mk else "?"
    lib = where(inner) if inner else "?"
    desc = f"{type(exc).__module__}.{type(exc).__qualname__} at {place} (raised in {lib})"
    sid = hashlib.sha1(f"{type(exc).__qualname__}|{place}".encode()).hexdigest()[:10]
    return sid, desc


class Recorder:
    """Counts executions and saves one input per distinct crash."""

    def __init__(self, target: str, crashes: Path, stats_path: Path) -> None:
        self.target, self.crashes, self.stats_path = target, crashes, stats_path
        self.crashes.mkdir(parents=True, exist_ok=True)
        self.n = 0
        self.t0 = time.time()
        self.last_write = 0.0
        self.found: dict[str, dict] = {}
        self.ok = self.errors = 0

    def run(self, harness: Harness, data: bytes) -> None:
        from mekit.errors import MekitError

        self.n += 1
        try:
            call = harness.setup(data)
        except OSError:
            call = None
        if call is not None:
            try:
                call()
                self.ok += 1
            except MekitError:
                self.errors += 1
            except KeyboardInterrupt:
                raise
            except BaseException as e:  # noqa: BLE001 - this is what the fuzzer looks for
                self.crash(e, data)
        if time.time() - self.last_write > 1.0:
            self.write_stats()

    def crash(self, e: BaseException, data: bytes) -> None:
        sid, desc = signature(e)
        if sid in self.found:
            self.found[sid]["count"] += 1
            return
        name = f"{sid}-{hashlib.sha1(data).hexdigest()[:8]}"
        (self.crashes / f"{name}.bin").write_bytes(data)
        tb = "".join(traceback.format_exception(e))
        (self.crashes / f"{name}.txt").write_text(f"{desc}\n\n{tb}")
        self.found[sid] = {"id": sid, "kind": "exception", "description": desc,
                           "message": str(e).splitlines()[0][:300] if str(e) else "", "input": f"{name}.bin",
                           "count": 1}
        self.write_stats()

    def write_stats(self) -> None:
        self.last_write = time.time()
        tmp = self.stats_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"execs": self.n, "ok": self.ok, "mekit_errors": self.errors,
                                   "seconds": time.time() - self.t0, "crashes": list(self.found.values())}))
        tmp.replace(self.stats_path)


def _cap_memory(mb: int) -> None:
    import resource

    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    limit = vm + mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def child(args: argparse.Namespace) -> None:
    """One fuzzing process for one target (started by :func:`main`)."""
    target = args._child
    workdir = Path(args.workdir)
    _quiet()
    tmp = Path(tempfile.mkdtemp(prefix=f"mekit-fuzz-{target}-"))
    stats_path = Path(args.stats)
    engine = args.engine
    try:
        if engine == "atheris":
            import atheris

            with atheris.instrument_imports(include=INSTRUMENT[target]):
                _import_readers(target)
        else:
            _import_readers(target)
        harness = Harness(target, tmp)
        rec = Recorder(target, Path(args.crashes), stats_path)
        rec.found = {c["id"]: c for c in json.loads(args.known or "[]")}
        corpus = workdir / "corpus" / target
        _cap_memory(args.memory_mb)
        if engine == "atheris":
            max_len = max((p.stat().st_size for p in corpus.iterdir()), default=4096)
            flags = [f"-max_total_time={max(1, int(args.seconds))}", f"-timeout={args.timeout}",
                     f"-rss_limit_mb={args.memory_mb + _rss_mb()}", f"-seed={args.seed}",
                     f"-max_len={max(4096, 2 * max_len)}", f"-artifact_prefix={args.artifacts}/",
                     "-print_final_stats=1", str(corpus)]
            atheris.Setup([sys.argv[0], *flags], lambda d: rec.run(harness, d))
            atheris.Fuzz()
        else:
            MutationFuzzer(rec, harness, corpus, args).loop()
        rec.write_stats()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _rss_mb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmRSS:"))


# -----------------------------------------------------------------------------------------
# fallback engine (no atheris): mutations + line coverage from sys.settrace
# -----------------------------------------------------------------------------------------
class _Hang(Exception):
    pass


class MutationFuzzer:
    """libFuzzer-like loop in pure Python: mutate a corpus entry, keep inputs reaching new lines."""

    INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]

    def __init__(self, rec: Recorder, harness: Harness, corpus: Path, args: argparse.Namespace) -> None:
        self.rec, self.harness, self.args = rec, harness, args
        self.corpus_dir = corpus
        self.corpus = [p.read_bytes() for p in sorted(corpus.iterdir())]
        self.rng = random.Random(args.seed)
        self.seen: set[tuple[str, int]] = set()
        self.include = tuple(INSTRUMENT[harness.target])

    def _tracer(self, new: set):
        def local(frame, event, arg):
            if event == "line":
                new.add((frame.f_code.co_filename, frame.f_lineno))
            return local

        def glob(frame, event, arg):
            mod = frame.f_globals.get("__name__", "")
            return local if mod.startswith(self.include) else None

        return glob

    def mutate(self, data: bytes) -> bytes:
        b = bytearray(data)
        for _ in range(self.rng.choice((1, 1, 2, 4, 8))):
            op = self.rng.randrange(8)
            n = len(b)
            if op == 0 and n:
                i = self.rng.randrange(n)
                b[i] ^= 1 << self.rng.randrange(8)
            elif op == 1 and n:
                b[self.rng.randrange(n)] = self.rng.randrange(256)
            elif op == 2:
                i = self.rng.randrange(n + 1)
                b[i:i] = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 8)))
            elif op == 3 and n > 1:
                i = self.rng.randrange(n)
                del b[i:i + self.rng.randint(1, min(64, n - i))]
            elif op == 4 and n > 4:
                i = self.rng.randrange(n - 4)
                v = self.rng.choice(self.INTERESTING)
                w = self.rng.choice((1, 2, 4))
                b[i:i + w] = (v & ((1 << (8 * w)) - 1)).to_bytes(w, self.rng.choice(("little", "big")))
            elif op == 5 and n > 2:
                i, j = sorted(self.rng.sample(range(n), 2))
                k = self.rng.randrange(n + 1)
                b[k:k] = b[i:j]
            elif op == 6 and len(self.corpus) > 1:
                other = self.rng.choice(self.corpus)
                i = self.rng.randrange(n + 1)
                b = b[:i] + bytearray(other[self.rng.randrange(len(other) + 1):])
            elif op == 7 and n > 1:
                b = b[:self.rng.randrange(1, n)]
        return bytes(b)

    def loop(self) -> None:
        deadline = time.time() + self.args.seconds

        def alarm(*_):
            raise _Hang()

        signal.signal(signal.SIGALRM, alarm)
        first = True
        while time.time() < deadline:
            if first:
                inputs, first = list(self.corpus), False
            else:
                inputs = [self.mutate(self.rng.choice(self.corpus))]
            for data in inputs:
                new: set = set()
                sys.settrace(self._tracer(new))
                signal.setitimer(signal.ITIMER_REAL, self.args.timeout)
                try:
                    self.rec.run(self.harness, data)
                except _Hang:
                    self.rec.crash(TimeoutError(f"input ran longer than {self.args.timeout} s (hang)"), data)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    sys.settrace(None)
                fresh = new - self.seen
                if fresh:
                    self.seen |= fresh
                    if data not in self.corpus:
                        self.corpus.append(data)
                        (self.corpus_dir / hashlib.sha1(data).hexdigest()).write_bytes(data)
        print(f"cov: {len(self.seen)} (lines)", file=sys.stderr)
        print(f"Done {self.rec.n} runs", file=sys.stderr)


# -----------------------------------------------------------------------------------------
# driver
# -----------------------------------------------------------------------------------------
def _engine(requested: str) -> str:
    if requested != "auto":
        return requested
    try:
        import atheris  # noqa: F401

        return "atheris"
    except ImportError:
        return "mutate"


def fuzz_target(target: str, args: argparse.Namespace, engine: str) -> dict:
    workdir = Path(args.workdir)
    crashes = Path(args.crashes.format(target=target)) if args.crashes else workdir / "crashes" / target
    artifacts = workdir / "artifacts" / target
    corpus = workdir / "corpus" / target
    for d in (crashes, artifacts, corpus):
        d.mkdir(parents=True, exist_ok=True)
    t = time.time()
    seeds = make_seeds(target, workdir)
    for s in seeds.iterdir():
        if not (corpus / s.name).exists():
            shutil.copy(s, corpus / s.name)
    print(f"[{target}] {len(list(seeds.iterdir()))} seeds ready ({time.time() - t:.1f} s); fuzzing "
          f"{args.seconds:.0f} s with {engine}", flush=True)
    stats_path = workdir / f"stats-{target}.json"
    known: list[dict] = []
    execs, cov, restarts = 0, None, 0
    deadline = time.time() + args.seconds
    timeout = args.timeout or TIMEOUTS[target]
    while time.time() < deadline - 2 and restarts < 50:
        stats_path.unlink(missing_ok=True)
        before = set(artifacts.iterdir())
        cmd = [sys.executable, __file__, "--_child", target, "--engine", engine, "--workdir", str(workdir),
               "--crashes", str(crashes), "--stats", str(stats_path), "--artifacts", str(artifacts),
               "--seconds", str(max(1.0, deadline - time.time())), "--seed", str(args.seed + restarts),
               "--timeout", str(timeout), "--memory-mb", str(args.memory_mb), "--known", json.dumps(known)]
        env = {**os.environ, "OPENCV_LOG_LEVEL": "OFF", "PYTHONWARNINGS": "ignore"}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=env,
                                  timeout=deadline - time.time() + 10 * timeout + 60)
            err, rc = proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as e:
            raw = e.stderr or b""
            err, rc = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw), -9
        restarts += 1
        if stats_path.exists():
            st = json.loads(stats_path.read_text())
            known = st["crashes"]
            child_execs = st["execs"]
        else:
            child_execs = 0
        m = re.findall(r"Done (\d+) runs", err) or re.findall(r"^#(\d+)\s", err, flags=re.M)
        execs += int(m[-1]) if m else child_execs
        c = re.findall(r"cov: (\d+)", err)
        if c:
            cov = max(cov or 0, int(c[-1]))
        new_art = sorted(set(artifacts.iterdir()) - before)
        for a in new_art:  # libFuzzer's own findings: timeout-*, oom-*, crash-* (a Python exception escaped)
            kind = a.name.split("-", 1)[0]
            data = a.read_bytes()
            sid = hashlib.sha1(f"{kind}|{data[:1]!r}".encode()).hexdigest()[:10]
            if any(k["id"] == sid for k in known):
                continue
            name = f"{kind}-{hashlib.sha1(data).hexdigest()[:8]}"
            shutil.copy(a, crashes / f"{name}.bin")
            tail = "\n".join(err.splitlines()[-40:])
            (crashes / f"{name}.txt").write_text(f"{kind} (libFuzzer)\n\n{tail}\n")
            what = {"timeout": f"hang: one input ran longer than {timeout} s",
                    "oom": f"memory: RSS above the {args.memory_mb} MiB limit"}.get(kind, f"libFuzzer {kind}")
            known.append({"id": sid, "kind": kind, "description": what, "message": "", "input": f"{name}.bin",
                          "count": 1})
        if rc != 0 and not new_art and not stats_path.exists():
            print(f"[{target}] child failed (rc {rc}):\n" + "\n".join(err.splitlines()[-30:]), file=sys.stderr)
            break
        if rc == 0:
            break
    elapsed = args.seconds if time.time() >= deadline - 2 else time.time() - (deadline - args.seconds)
    summary = {"target": target, "engine": engine, "seconds": round(elapsed, 1), "execs": execs,
               "execs_per_s": round(execs / max(elapsed, 1e-9), 1), "coverage": cov, "restarts": restarts,
               "crashes": known, "crash_dir": str(crashes)}
    (crashes / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def repro(target: str, path: Path) -> int:
    """Run one saved input through a target's readers and print what happens."""
    _quiet()
    _import_readers(target)
    from mekit.errors import MekitError

    with tempfile.TemporaryDirectory() as d:
        h = Harness(target, Path(d))
        call = h.setup(path.read_bytes())
        if call is None:
            print("input does not make a file (harness)")
            return 0
        try:
            call()
        except MekitError as e:
            print(f"OK: {type(e).__name__}: {e}")
            return 0
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
            return 1
    print("OK: read without error")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="all", choices=[*TARGETS, "all"])
    ap.add_argument("--seconds", type=float, default=60.0, help="time budget per target (default 60)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--crashes", default=None,
                    help="folder for crashing inputs; '{target}' is replaced (default runs/fuzz/crashes/<target>)")
    ap.add_argument("--workdir", default=str(REPO / "runs" / "fuzz"), help="seeds, corpus and stats")
    ap.add_argument("--timeout", type=int, default=0, help="per-input time limit in s (default by target)")
    ap.add_argument("--memory-mb", type=int, default=2048, help="address space allowed above the imports")
    ap.add_argument("--engine", default="auto", choices=["auto", "atheris", "mutate"])
    ap.add_argument("--repro", type=Path, default=None, help="run one saved input of --target and exit")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    for hidden in ("--stats", "--artifacts", "--known"):
        ap.add_argument(hidden, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._child:
        child(args)
        return 0
    if args.repro:
        if args.target == "all":
            ap.error("--repro needs one --target")
        return repro(args.target, args.repro)
    if args.crashes and "{target}" not in args.crashes and args.target == "all":
        args.crashes = str(Path(args.crashes) / "{target}")
    engine = _engine(args.engine)
    if engine == "mutate" and args.engine == "auto":
        print("atheris is not installed: using the built-in mutation fuzzer (sys.settrace line coverage)")
    targets = TARGETS if args.target == "all" else (args.target,)
    results = [fuzz_target(t, args, engine) for t in targets]
    print()
    print(f"{'target':8} {'engine':8} {'seconds':>7} {'execs':>8} {'execs/s':>8} {'coverage':>8} crashes")
    for r in results:
        print(f"{r['target']:8} {r['engine']:8} {r['seconds']:7.0f} {r['execs']:8d} {r['execs_per_s']:8.1f} "
              f"{r['coverage'] if r['coverage'] is not None else '-':>8} {len(r['crashes'])}")
    for r in results:
        for c in r["crashes"]:
            msg = f": {c['message']}" if c.get("message") else ""
            print(f"  [{r['target']}] {c['description']}{msg}\n      input {r['crash_dir']}/{c['input']} "
                  f"(seen {c['count']}x)")
    return 1 if any(r["crashes"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
