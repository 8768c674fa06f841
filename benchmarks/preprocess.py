"""Preprocessing speed on CASME II (all 244 clips present in ../shared/data/CASME2).

Measures, with :func:`mekit.preprocess.pipeline.preprocess` exactly as ``mekit preprocess``
runs it:

(a) face alignment + onset->apex TV-L1 flow (nscales=3, warps=3, epsilon=0.05) + strain at
    128 px, with a cold cache and then a warm one (targets on a 2-core machine: under 10 s
    cold, under 1 s warm);
(b) every frame of every clip aligned and resized to 112 px (16,452 frames; target at least
    1,000 frames/s cold);

and prints clips/s, frames/s and where the time goes (decode, face, flow, write, ...; seconds
summed over worker processes, so they can add up to more than the wall time).

Run on demand (not part of the test suite)::

    .venv/bin/python benchmarks/preprocess.py [--root ../shared/data/CASME2] [--workers 0]

It uses a fresh temporary cache folder and removes it afterwards; the licensed data is only
read, never copied.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "CASME2"


def _fmt_timings(t: dict[str, float]) -> str:
    keys = ("read", "decode", "face", "apex", "warp", "flow", "frames", "write")
    return ", ".join(f"{k} {t.get(k, 0.0):.2f}s" for k in keys if t.get(k, 0.0) >= 0.005)


def _run(label: str, table, cfg: dict, n_frames: int) -> tuple[float, object]:
    from mekit.preprocess.pipeline import preprocess

    t0 = time.perf_counter()
    res = preprocess(table, cfg, progress=False)
    wall = time.perf_counter() - t0
    n = len(res) + len(res.skipped)
    print(f"  {label:<28} {wall:7.2f} s  {n / wall:8.1f} clips/s  {n_frames / wall:9.1f} frames/s  "
          f"(computed {res.n_computed}, cached {res.n_cached}, skipped {len(res.skipped)})")
    print(f"  {'':<28} time by stage: {_fmt_timings(res.timings)}")
    for sid, why in list(res.skipped.items())[:5]:
        print(f"  {'':<28} skipped {sid}: {why}")
    return wall, res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="CASME II folder (coding sheet + Cropped/)")
    ap.add_argument("--workers", type=int, default=0, help="worker processes (0: all cores)")
    ap.add_argument("--detector", default="auto", help="face detector (auto, mediapipe, haar, none)")
    ap.add_argument("--skip-frames", action="store_true", help="skip part (b)")
    ap.add_argument("--no-fsync", action="store_true", help="do not fsync cache entries")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    if not (args.root / "Cropped").is_dir():
        print(f"skipped: CASME II not found at {args.root} (licensed data is never shipped with mekit; "
              "pass --root to point at your copy)")
        return 0

    import os

    from mekit.data import load_dataset
    from mekit.preprocess.io import clip_frame_numbers

    t0 = time.perf_counter()
    table = load_dataset("casme2", args.root)
    n_key = 3 * len(table)  # (a) decodes the onset, apex and offset of each clip
    n_all = sum(len(clip_frame_numbers(r)) for _, r in table.df.iterrows())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"CASME II: {len(table)} clips, {n_all} frames, loaded in {time.perf_counter() - t0:.2f} s; "
          f"{cores} cores, workers={args.workers or cores}")

    tmp = Path(tempfile.mkdtemp(prefix="mekit-bench-"))
    try:
        base = {"workers": args.workers, "cache_dir": str(tmp / "cache"), "detector": args.detector,
                "fsync": not args.no_fsync}
        print("(a) alignment + onset->apex TV-L1 flow + strain at 128 px (frames/s counts the onset, apex "
              "and offset decoded per clip)")
        cfg_a = {**base, "size": 128, "flow": "tvl1", "pairs": ["onset_apex"], "strain": True}
        _run("cold cache", table, cfg_a, n_key)
        _run("warm cache", table, cfg_a, n_key)
        if not args.skip_frames:
            print(f"(b) every frame aligned and resized to 112 px ({n_all} frames; alignment reused from (a))")
            cfg_b = {**base, "pairs": [], "sampling": {"method": "all"}, "frame_size": 112}
            _run("cold cache", table, cfg_b, n_all)
            _run("warm cache", table, cfg_b, n_all)
            shutil.rmtree(tmp / "cache")
            _run("cold, alignment too", table, cfg_b, n_all)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
