"""Speed, memory and spotting quality of `mekit analyze` on synthetic recordings with known truth.

    .venv/bin/python benchmarks/analyze.py                       # 1, 10 and 30 minutes (long)
    .venv/bin/python benchmarks/analyze.py --minutes 1,3         # a quick look

For each length, a 640x480 30 fps recording is generated (mekit.data.synthetic_long: a face with
micro- and macro-expressions among blinks, head turns, nods and talking; seeds the spotter was
never tuned on), then analysed end to end, decoding included, with no bundle (spotting only), in
a fresh process each, so the peak resident memory (``ru_maxrss``) is that run's alone. Printed
and written to ``runs/benchmarks/analyze.json``: frames per second, peak memory, and the
spotting scores against the truth (MEGC definitions: a hit is IoU >= 0.5; F1 for micro- and
macro-expressions apart), for the training-free ``motion`` spotter and the ``fixed_windows``
floor. Live mode: the same recording played at its real frame rate (``--live``), with the
per-frame latency (p50/p95) and the frames dropped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "runs" / "benchmarks" / "analyze"
#: seeds of the benchmark's recordings: none of them was used while the spotter's defaults were set
SEED = 1001

_CHILD = r"""
import json, resource, sys, time
from mekit.analysis.analyze import analyze
from mekit.analysis.spot_metrics import read_truth_csv, spotting_scores
video, truth, spotter, live, max_frames = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1", sys.argv[5]
t = time.perf_counter()
res = analyze(video, spotter=spotter, live=live, max_frames=int(max_frames) if max_frames != "0" else None)
wall = time.perf_counter() - t
sc = spotting_scores(res.intervals.to_dict("records"), read_truth_csv(truth), fps=res.summary["fps"])
out = {"frames": res.summary["frames"], "wall_s": round(wall, 1), "frames_per_s": round(res.summary["frames"] / wall, 1),
       "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
       "dropped": res.summary.get("dropped", 0), "latency_ms": res.summary.get("latency_ms"),
       "micro": sc.micro.as_dict(), "macro": sc.macro.as_dict(), "f1_micro": sc.micro.f1, "f1_macro": sc.macro.f1,
       "f1_overall": sc.overall.f1}
print(json.dumps(out, default=str))
"""


def run_child(video: Path, truth: Path, spotter: str, live: bool = False, max_frames: int = 0) -> dict:
    p = subprocess.run([sys.executable, "-c", _CHILD, str(video), str(truth), spotter, "1" if live else "0",
                        str(max_frames)], capture_output=True, text=True, cwd=REPO)
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-2000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", default="1,10,30", help="comma-separated recording lengths")
    ap.add_argument("--live-seconds", type=float, default=20.0, help="length of the live-mode runs")
    args = ap.parse_args()
    from mekit.data.synthetic_long import generate_long_video

    OUT.mkdir(parents=True, exist_ok=True)
    results: dict = {"runs": [], "live": []}
    for minutes in [float(m) for m in args.minutes.split(",") if m.strip()]:
        path = OUT / f"rec_{minutes:g}min.mp4"
        truth = generate_long_video(path, seconds=60 * minutes, fps=30.0, seed=SEED)
        for spotter in ("motion", "fixed_windows"):
            r = {"minutes": minutes, "spotter": spotter, **run_child(truth.path, truth.truth_path, spotter)}
            results["runs"].append(r)
            mi, ma = r["micro"], r["macro"]
            print(f"{minutes:g} min, {spotter}: {r['frames_per_s']} frames/s, peak {r['peak_rss_mb']} MB, "
                  f"F1 micro {r['f1_micro']:.3f} (tp/fp/fn {mi['tp']}/{mi['fp']}/{mi['fn']}), "
                  f"macro {r['f1_macro']:.3f} ({ma['tp']}/{ma['fp']}/{ma['fn']})", flush=True)
    live = generate_long_video(OUT / "live.mp4", seconds=args.live_seconds, fps=30.0, seed=SEED + 1)
    r = {"fps": 30.0, **run_child(live.path, live.truth_path, "motion", live=True)}
    results["live"].append(r)
    print(f"live at 30 fps: latency {r['latency_ms']}, dropped {r['dropped']} of {r['frames'] + r['dropped']}")
    (OUT.parent / "analyze.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
