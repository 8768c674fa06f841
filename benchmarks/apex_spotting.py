"""Apex spotting accuracy on CASME II: spotted apex vs the coding sheet's ApexFrame.

Reads ../shared/data/CASME2 (coding sheet + Cropped frames; licensed data, never copied).
Every present clip is aligned once (FaceAligner(detector="none") fitted on the onset,
applied to every frame, greyscale crops), then each spotting configuration is run on
the same crops. Prints, per configuration, the absolute error in frames (mean, median),
as a fraction of the clip length (mean), and the share of clips spotted within 10 % of
the clip length; then where the time went.

    .venv/bin/python benchmarks/apex_spotting.py                  # all configurations
    .venv/bin/python benchmarks/apex_spotting.py --configs ends/diff,middle --limit 40

The "middle" row is no spotting at all (the clip's middle frame): the bar any method has
to clear on a corpus whose clips are cut from onset to offset.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from mekit.preprocess.apex import spot_apex
from mekit.preprocess.face import FaceAligner, NoFaceError

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "CASME2"

# name -> spot_apex keyword arguments (None: the middle-frame baseline)
CONFIGS: dict[str, dict | None] = {
    "middle": None,
    "onset/diff": dict(reference="onset", method="diff"),
    "onset/diff/contrast": dict(reference="onset", method="diff", contrast=True),
    "onset/flow/contrast": dict(reference="onset", method="flow", contrast=True),
    "ends/diff/contrast": dict(reference="ends", method="diff", contrast=True),
    "ends/diff": dict(reference="ends", method="diff"),
    "ends/flow/contrast": dict(reference="ends", method="flow", contrast=True),
    "ends/flow": dict(reference="ends", method="flow"),  # the default
}


def clips(root: Path) -> list[dict]:
    """(sample_id, frame paths onset..offset, apex index) for every present clip."""
    try:
        from mekit.data.casme2 import load_casme2
    except ImportError:
        load_casme2 = None
    out = []
    if load_casme2 is not None:
        table = load_casme2(root)
        for _, r in table.df.iterrows():
            frames = [table.frame_path(r, f) for f in range(int(r.onset), int(r.offset) + 1)]
            out.append(dict(id=r.sample_id, frames=frames, apex=int(r.apex) - int(r.onset)))
        return out
    import pandas as pd

    sheet = pd.read_excel(root / "CASME2-coding-20140508.xlsx")
    for _, r in sheet.iterrows():
        folder = root / "Cropped" / f"sub{int(r.Subject):02d}" / str(r.Filename)
        if not folder.is_dir():
            continue
        frames = [folder / f"reg_img{f}.jpg" for f in range(int(r.OnsetFrame), int(r.OffsetFrame) + 1)]
        out.append(dict(id=f"casme2/sub{int(r.Subject):02d}/{r.Filename}", frames=frames,
                        apex=int(r.ApexFrame) - int(r.OnsetFrame)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--size", type=int, default=128, help="crop size in pixels")
    ap.add_argument("--limit", type=int, default=0, help="only the first N clips (0: all)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, from: " + ", ".join(CONFIGS))
    args = ap.parse_args()
    if not args.root.is_dir():
        raise SystemExit(f"CASME II not found at {args.root} (licensed data is never shipped with mekit)")
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown configuration(s) {unknown}; expected some of {list(CONFIGS)}")

    timing: dict[str, float] = defaultdict(float)
    t0 = time.perf_counter()
    todo = clips(args.root)
    if args.limit:
        todo = todo[: args.limit]
    timing["read sheet"] = time.perf_counter() - t0

    data = []
    with FaceAligner(detector="none") as aligner:
        for c in todo:
            t = time.perf_counter()
            frames = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in c["frames"]]
            if any(f is None for f in frames):
                print(f"skipped {c['id']}: unreadable frame(s)")
                continue
            timing["read frames"] += time.perf_counter() - t
            t = time.perf_counter()
            try:
                al = aligner.fit_clip([frames[0], frames[len(frames) // 2]])
            except NoFaceError as exc:
                print(f"skipped {c['id']}: {exc}")
                continue
            timing["fit alignment (mesh)"] += time.perf_counter() - t
            t = time.perf_counter()
            crops = np.stack([al.apply(f, args.size) for f in frames])
            timing["warp frames"] += time.perf_counter() - t
            data.append(dict(id=c["id"], crops=crops, rois=al.rois(args.size), apex=c["apex"],
                             landmarks=al.landmarks is not None))
    n_frames = sum(len(d["crops"]) for d in data)
    lengths = np.array([len(d["crops"]) for d in data])
    print(f"CASME II: {len(data)} clips, {n_frames} frames, length {lengths.min()}-{lengths.max()} "
          f"(median {int(np.median(lengths))}), {sum(d['landmarks'] for d in data)} with landmarks, "
          f"crops {args.size}x{args.size}")
    print()
    print(f"{'configuration':24s} {'MAE (frames)':>12s} {'median':>7s} {'MAE / length':>13s} "
          f"{'within 10 %':>12s} {'s / clip':>9s}")
    for name in names:
        kw = CONFIGS[name]
        t = time.perf_counter()
        if kw is None:
            pred = np.array([(len(d["crops"]) - 1) // 2 for d in data])
        else:
            pred = np.array([spot_apex(d["crops"], d["rois"], **kw) for d in data])
        dt = time.perf_counter() - t
        timing[f"spot: {name}"] = dt
        err = np.abs(pred - np.array([d["apex"] for d in data]))
        frac = err / lengths
        print(f"{name:24s} {err.mean():12.2f} {np.median(err):7.1f} {frac.mean():13.3f} "
              f"{np.mean(frac <= 0.10):11.1%} {dt / max(len(data), 1):9.4f}")
    print()
    total = sum(timing.values())
    print("where the time went:")
    for k, v in timing.items():
        print(f"  {k:28s} {v:8.2f} s  ({v / total:5.1%})")
    print(f"  {'total':28s} {total:8.2f} s")


if __name__ == "__main__":
    main()
