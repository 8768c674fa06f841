"""Speed, memory and spotting quality of `mekit analyze` on synthetic recordings with known truth.

    .venv/bin/python benchmarks/analyze.py                       # 1, 10 and 30 minutes (long)
    .venv/bin/python benchmarks/analyze.py --minutes 1,3         # a quick look

For each length, a 640x480 30 fps recording is generated (mekit.data.synthetic_long: a face with
micro- and macro-expressions among blinks, head turns, nods and talking; seeds the spotter was
never tuned on), then analysed end to end, decoding included, every output written (frames.csv,
intervals, timeline and the annotated video, as ``mekit analyze`` does by default; ``--no-video``
skips the video), with no bundle (spotting only),
in a fresh process each, so the peak resident memory (``ru_maxrss``) is that run's alone. A
recording of any length begins with the frames of the shorter ones (the generator draws each
6-second cell from the seed and the cell alone), so the lengths differ only in length. Printed
and written to ``runs/benchmarks/analyze.json``: frames per second, peak memory, and the
spotting scores against the truth (MEGC definitions: a hit is IoU >= 0.5; F1 for micro- and
macro-expressions apart), for the training-free ``motion`` spotter, and for the
``fixed_windows`` floor on the shortest length (a floor needs no second measurement). Live mode:
a recording at 30 fps and one at 100 fps played at their real frame rate (``--live``), with the
per-frame latency (p50/p95) and the frames dropped.
"""

from __future__ import annotations

import argparse
import json
import shutil
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
video, truth, spotter, live, out, video_out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1", sys.argv[5], sys.argv[6] == "1"
model = sys.argv[7] if len(sys.argv) > 7 else None
from mekit import events
# resident memory while the frames stream (sampled every 2000 frames), apart from the peak of the
# whole run (which includes writing the outputs at the end)
page = resource.getpagesize()
streaming = []
def sample(e):
    if e.kind == "progress" and e.get("stage") == "analyze" and int(e.get("done") or 0) // 2000 > len(streaming):
        with open("/proc/self/statm") as f:
            streaming.append(int(f.read().split()[1]) * page / 2**20)
t = time.perf_counter()
with events.listen(sample):
    res = analyze(video, out=out, spotter=spotter, live=live, video=video_out, model=model)
wall = time.perf_counter() - t
sc = spotting_scores(res.intervals.to_dict("records"), read_truth_csv(truth), fps=res.summary["fps"])
out = {"frames": res.summary["frames"], "wall_s": round(wall, 1), "frames_per_s": round(res.summary["frames"] / wall, 1),
       "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
       "streaming_rss_mb": [round(v, 1) for v in streaming],
       "dropped": res.summary.get("dropped", 0), "latency_ms": res.summary.get("latency_ms"),
       "micro": sc.micro.as_dict(), "macro": sc.macro.as_dict(), "f1_micro": sc.micro.f1, "f1_macro": sc.macro.f1,
       "f1_overall": sc.overall.f1}
if model:  # spot-then-recognise: each spotted interval carries the bundle's class
    from mekit.analysis.spot_metrics import strs
    rows = [{**r, "emotion": r.get("label")} for r in res.intervals.to_dict("records")]
    for kind in ("micro", "macro", "overall"):
        st = strs(rows, read_truth_csv(truth), kind=kind, fps=res.summary["fps"])
        out[f"strs_{kind}"] = {"strs": st.strs, "spotting_f1": st.spotting.f1, "recognition_f1": st.recognition.f1,
                               "hits_recognised": st.recognition.n_pairs}
print(json.dumps(out, default=str))
"""


def run_child(video: Path, truth: Path, spotter: str, live: bool = False, video_out: bool = False,
              model: Path | None = None) -> dict:
    out = OUT / f"{Path(video).stem}-{spotter}{'-live' if live else ''}{'-model' if model else ''}"
    if out.exists():
        shutil.rmtree(out)
    p = subprocess.run([sys.executable, "-c", _CHILD, str(video), str(truth), spotter, "1" if live else "0",
                        str(out), "1" if video_out else "0", *([str(model)] if model else [])],
                       capture_output=True, text=True, cwd=REPO)
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-2000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def recording(path: Path, seconds: float, fps: float, seed: int) -> tuple[Path, Path]:
    """The benchmark's recording and its truth file, generated unless both are already there
    (the same parameters always give the same recording; delete the folder to regenerate)."""
    from mekit.data.synthetic_long import generate_long_video

    truth = path.with_name(path.stem + ".truth.csv")
    if not (path.is_file() and truth.is_file()):
        generate_long_video(path, seconds=seconds, fps=fps, seed=seed)
    return path, truth


def strs_run(minutes: float) -> dict:
    """Spot-then-recognise on a synthetic recording: a classification bundle trained on mekit's
    synthetic corpus with the default recipe (`mekit train`), then `mekit analyze --model` on a
    recording whose faces and seeds it never saw; STRS = spotting F1 x recognition F1 of the
    hits (Liong et al.), per kind."""
    import mekit
    from mekit.config import load_config

    bundle = OUT / "synthetic_default.mekit"
    if not bundle.is_file():
        mekit.train(load_config(REPO / "src" / "mekit" / "configs" / "run_default.yaml"), bundle)
    video, truth = recording(OUT / f"rec_{minutes:g}min.mp4", 60 * minutes, 30.0, SEED)
    r = {"minutes": minutes, **run_child(video, truth, "motion", model=bundle)}
    for kind in ("micro", "macro", "overall"):
        k = r[f"strs_{kind}"]
        print(f"STRS {kind}, {minutes:g} min: {k['strs']:.3f} (spotting F1 {k['spotting_f1']:.3f} x recognition F1 "
              f"{k['recognition_f1']:.3f}), {r['frames_per_s']} frames/s with the bundle", flush=True)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", default="1,10,30", help="comma-separated recording lengths")
    ap.add_argument("--live-seconds", type=float, default=20.0, help="length of the live-mode runs")
    ap.add_argument("--live-fps", default="30,100", help="comma-separated frame rates of the live-mode runs")
    ap.add_argument("--strs", type=float, default=None, metavar="MINUTES",
                    help="also run spot-then-recognise on a recording of this length, with a bundle trained "
                         "on the synthetic corpus (mekit's default recipe)")
    ap.add_argument("--no-video", action="store_true", help="skip the annotated video (written by default, as "
                                                            "`mekit analyze` does)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict = {"runs": [], "live": []}
    lengths = [float(m) for m in args.minutes.split(",") if m.strip()]
    for minutes in lengths:
        path = OUT / f"rec_{minutes:g}min.mp4"
        video, truth = recording(path, 60 * minutes, 30.0, SEED)
        for spotter in ("motion", "fixed_windows") if minutes == min(lengths) else ("motion",):
            r = {"minutes": minutes, "spotter": spotter,
                 **run_child(video, truth, spotter, video_out=not args.no_video)}
            results["runs"].append(r)
            mi, ma = r["micro"], r["macro"]
            print(f"{minutes:g} min, {spotter}: {r['frames_per_s']} frames/s, peak {r['peak_rss_mb']} MB, "
                  f"F1 micro {r['f1_micro']:.3f} (tp/fp/fn {mi['tp']}/{mi['fp']}/{mi['fn']}), "
                  f"macro {r['f1_macro']:.3f} ({ma['tp']}/{ma['fp']}/{ma['fn']})", flush=True)
    for fps in [float(f) for f in args.live_fps.split(",") if f.strip()]:
        video, truth = recording(OUT / f"live_{args.live_seconds:g}s_{fps:g}fps.mp4", args.live_seconds, fps, SEED + 1)
        r = {"fps": fps, **run_child(video, truth, "motion", live=True, video_out=not args.no_video)}
        results["live"].append(r)
        print(f"live at {fps:g} fps: latency {r['latency_ms']}, dropped {r['dropped']} of {r['frames'] + r['dropped']}, "
              f"peak {r['peak_rss_mb']} MB", flush=True)
    if args.strs:
        results["strs"] = strs_run(args.strs)
    (OUT.parent / "analyze.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
