"""Continuous intensity on real CASME II, leave-one-subject-out, against the triangular timing target.

Reads ../shared/data/CASME2 (coding sheet + Cropped frames; licensed data, never copied; the
benchmark skips with a message where it is absent). Runs configs/casme2_intensity_loso.yaml
once per variant below, each with its full report folder under ``--out``, and writes the
summary to benchmarks/results/casme2_intensity.md (``--results``).

Targets (mekit's benchmark targets): frame-level Spearman >= 0.90 and MAE <= 0.10 against the
triangular target, and the predicted peak within 10 % of the clip length of the annotated
apex for at least 80 % of clips. Every variant is reported against them, met or missed.

Variants (all read the frames from the onset to the last frame on disk, never an apex or
offset annotation; CASME II folders end at the offset, see mekit.intensity.models):

- ``ridge_motion`` (the primary variant, fixed before any result was seen): per-frame HOOF of
  the flow onset -> t, clip-normalised, ridge regression; pixels and the onset frame only.
- ``ridge_motion_end_position``: adds the flow t -> last frame on disk and the relative
  position in the clip, i.e. it also reads the clip's extent on disk (= the offset here).
- ``lightgbm_motion_end_position``: the same features, gradient-boosted trees (every second
  frame of the training clips, to keep the 26 folds affordable on a CPU).
- ``ridge_motion_end``: the flows onset -> t and t -> last frame, without the position: a model
  that reads the position learns the prior's curve, whose peak sits where most apexes sit
  (the middle), and localises each clip's own peak worse; without it the peak follows the frame
  farthest in motion from both ends of the clip.
- ``ststnet_flow`` (only with ``--variants``; slow on a CPU): STSTNet's intensity head on the
  clip-normalised onset -> t flow stacks, MSE loss, early stopping on training subjects.
- every run also reports ``position_prior``: a spline of the relative position alone (no
  pixels), the share of the score the clip's extent alone gives away.

    .venv/bin/python benchmarks/casme2_intensity.py
    .venv/bin/python benchmarks/casme2_intensity.py --variants ridge_motion,ststnet_flow --root /data/CASME2

Several variants are evaluated on the same LOSO folds: any one picked afterwards as "best"
carries a selection effect, which the results file says.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "CASME2"
CONFIG = REPO / "configs" / "casme2_intensity_loso.yaml"
RESULTS = REPO / "benchmarks" / "results" / "casme2_intensity.md"

ALL_FEATURES = ["motion", "end_motion", "position"]
VARIANTS: dict[str, dict] = {
    "ridge_motion": {},
    "ridge_motion_end_position": {"intensity.features": ALL_FEATURES},
    "lightgbm_motion_end_position": {"model.name": "lightgbm", "intensity.features": ALL_FEATURES,
                                     "intensity.train_stride": 2},
    "ridge_motion_end": {"intensity.features": ["motion", "end_motion"]},
    "ststnet_flow": {"model.name": "ststnet", "intensity.train_stride": 2,
                     "model.params": {"epochs": 15, "batch_size": 128, "lr": 1e-3, "patience": 4,
                                      "augment": {"hflip": True, "affine": 0.0, "color_jitter": 0.0}}},
}
DEFAULT_VARIANTS = ["ridge_motion", "ridge_motion_end_position", "lightgbm_motion_end_position", "ridge_motion_end"]

TARGETS = {"spearman": (">=", 0.90), "mae": ("<=", 0.10), "peak_within_10pct": (">=", 0.80)}


def verdict(key: str, value: float) -> str:
    op, bar = TARGETS[key]
    ok = value >= bar if op == ">=" else value <= bar
    gap = value - bar
    return f"{'met' if ok else 'missed'} ({gap:+.3f})"


def clip_medians(folder: Path) -> dict:
    """Medians over clips of each clip's own Pearson r and peak error (fraction of its length)."""
    import pandas as pd

    c = pd.read_csv(folder / "clips.csv")
    return {"median_clip_pearson": float(c["pearson"].median()),
            "median_peak_error_fraction": float(c["peak_error_fraction"].median())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "casme2_intensity")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--reuse", action="store_true",
                    help="reuse a variant's report folder under --out when its resolved config is identical")
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                    help="comma-separated, from: " + ", ".join(VARIANTS))
    args = ap.parse_args()
    if not (args.root / "Cropped").is_dir():
        print(f"SKIPPED: CASME II is not available at {args.root} (licensed data is never shipped with mekit); "
              "pass --root to point at a copy")
        return 0
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        print(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
        return 2

    from mekit.config import load_config
    from mekit.experiment import run_experiment as run_intensity

    rows = []
    for name in names:
        over = {"data.root": str(args.root), "name": f"casme2_intensity_{name}", **VARIANTS[name]}
        cfg = load_config(CONFIG, over)
        folder = args.out / name
        stamp = folder / "config.resolved.yaml"
        # compared without protocol.workers, which changes the wall time, not the figures
        same = stamp.is_file() and load_config(stamp).results_yaml() == cfg.results_yaml()
        if args.reuse and same and (folder / "metrics.json").is_file():
            m = json.loads((folder / "metrics.json").read_text())
            wall = float(m["timing_s"]["total"])
            print(f"{name}: reusing {folder} (same resolved config)")
        else:
            t0 = time.perf_counter()
            m = run_intensity(cfg, folder, progress=sys.stderr.isatty()).metrics
            wall = time.perf_counter() - t0
        reads = list(cfg.intensity.get("features", ["motion"])) if cfg.model.name != "ststnet" \
            else ["onset->t flow stack"]
        rows.append({"variant": name, "model": cfg.model.name, "features": reads,
                     "wall_s": round(wall, 1), "timing_s": m["timing_s"], "n_clips": m["n_clips"],
                     "n_frames": m["n_frames"], "n_subjects": m["n_subjects"],
                     **{k: m[k] for k in ("mae", "rmse", "pearson", "spearman", "ccc", "icc", "peak_within_10pct",
                                          "mean_abs_peak_error_frames")},
                     "within_clip_pearson": m["per_clip"]["within_clip"]["pearson"],
                     **clip_medians(folder),
                     "reference": m["reference"]["position_prior"], "skipped": len(m["skipped"])})
        print(f"{name:32s} MAE {m['mae']:.3f}  Spearman {m['spearman']:.3f}  CCC {m['ccc']:.3f}  "
              f"peak within 10% {m['peak_within_10pct']:.3f}  ({wall:.0f} s)   position prior: "
              f"MAE {m['reference']['position_prior']['mae']:.3f}  Spearman "
              f"{m['reference']['position_prior']['spearman']:.3f}  "
              f"peak {m['reference']['position_prior']['peak_within_10pct']:.3f}")
    (args.out / "summary.json").write_text(json.dumps(rows, indent=2, default=str))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(markdown(rows, args))
    print(f"results: {args.results}")
    return 0


def markdown(rows: list[dict], args: argparse.Namespace) -> str:
    import os

    r0 = rows[0]
    lines = ["# Continuous intensity on CASME II (LOSO)", "",
             f"Measured with `benchmarks/casme2_intensity.py` on {time.strftime('%Y-%m-%d')}, "
             f"{platform.machine()} CPU ({os.cpu_count()} cores, shared with other jobs). Wall times are "
             "indicative: they include whatever preprocessing was not cached yet (a cold cache adds a few "
             "minutes of alignment and per-frame flow; the onset -> t flows were cached before these runs, "
             "the t -> end flows were computed by the first variant that reads them).", "",
             f"Data: CASME II `Cropped`, {r0['n_clips']} clips, {r0['n_frames']} frames, {r0['n_subjects']} subjects, "
             "every coded clip with frames (no label scheme). Protocol: leave-one-subject-out. Target: the "
             "triangular timing curve (0 at the onset, 1 at the apex, 0 at the offset). Curves smoothed with a "
             "Gaussian of 2 frames (fixed a priori) and clipped to 0-1.", "",
             "Targets: frame-level Spearman >= 0.90, MAE <= 0.10; predicted peak within 10 % of the clip "
             "length of the annotated apex for >= 80 % of clips.", "",
             "| variant | model | reads | MAE | RMSE | Pearson | Spearman | CCC | ICC(3,1) | peak within 10 % | "
             "mean peak error (frames) | median within-clip r | wall time (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['model']} | {', '.join(r['features'])} | {r['mae']:.3f} | "
                     f"{r['rmse']:.3f} | {r['pearson']:.3f} | {r['spearman']:.3f} | {r['ccc']:.3f} | {r['icc']:.3f} | "
                     f"{r['peak_within_10pct']:.3f} | {r['mean_abs_peak_error_frames']:.1f} | "
                     f"{r['median_clip_pearson']:.3f} | {r['wall_s']:.0f} |")
    ref = r0["reference"]
    lines.append(f"| position prior (reference, no pixels) | spline + ridge | position | {ref['mae']:.3f} | "
                 f"{ref['rmse']:.3f} | {ref['pearson']:.3f} | {ref['spearman']:.3f} | {ref['ccc']:.3f} | "
                 f"{ref['icc']:.3f} | {ref['peak_within_10pct']:.3f} | - | - | - |")
    lines += ["", "## Against the targets", "", "| variant | Spearman >= 0.90 | MAE <= 0.10 | peak >= 80 % |",
              "|---|---|---|---|"]
    for r in rows + [{"variant": "position prior (reference)", **ref}]:
        lines.append(f"| {r['variant']} | {verdict('spearman', r['spearman'])} | {verdict('mae', r['mae'])} | "
                     f"{verdict('peak_within_10pct', r['peak_within_10pct'])} |")
    best = min(rows, key=lambda r: r["mae"])
    top = max(rows, key=lambda r: r["peak_within_10pct"])
    honest = [r for r in rows if r["variant"] == "ridge_motion"]
    lines += ["", "Frame-level metrics pool all frames of all held-out clips; \"median within-clip r\" is the "
              "median over clips of each clip's own Pearson r between its predicted and target curve (does the "
              "curve have the right shape, whatever its level).", "",
              "## What the figures say", "",
              f"- The pixel-only variant `ridge_motion` (flow from the onset frame) follows the shape of each clip "
              f"(median within-clip r {rows[0]['median_clip_pearson']:.2f}) but not its level, so the pooled "
              f"frame-level figures are poor (Spearman {rows[0]['spearman']:.3f}, MAE {rows[0]['mae']:.3f}).",
              f"- The lowest MAE here, `{best['variant']}` (MAE {best['mae']:.3f}, Spearman {best['spearman']:.3f}, "
              f"peak within 10 % {best['peak_within_10pct']:.3f}), is only a little better than the position prior "
              f"alone (MAE {ref['mae']:.3f}, Spearman {ref['spearman']:.3f}): on CASME II most of what any model "
              "scores against the timing target comes from the clip's extent on disk, not from the face.",
              f"- The best peak localisation here, `{top['variant']}` (peak within 10 % "
              f"{top['peak_within_10pct']:.3f}, mean peak error {top['mean_abs_peak_error_frames']:.1f} frames)"
              + (", reads no position: the variants that do learn the prior's curve and put the peak where most "
                 "apexes sit. It does read the flow to the last frame on disk, which on CASME II is the annotated "
                 "offset" if top["variant"] == "ridge_motion_end" else "")
              + ". For scale, the apex spotter of mekit.preprocess.apex (no learning: the frame farthest in "
              "motion from both ends of the clip, in landmark regions; it reads the last frame too) puts 70.1 % of "
              "these clips within 10 % (benchmarks/apex_spotting.py).",
              *([f"- Among the variants that read nothing of the offset, `ridge_motion` (onset frame only) puts "
                 f"{honest[0]['peak_within_10pct']:.3f} of the clips' peaks within 10 %: the figure the target is "
                 f"judged on, missed by {0.8 - honest[0]['peak_within_10pct']:.3f}."] if honest else []),
              *([f"- The peak target (80 % of clips within 10 % of the clip length of the apex) is missed by every "
                 f"variant, by {min(0.8 - r['peak_within_10pct'] for r in rows):.3f} to "
                 f"{max(0.8 - r['peak_within_10pct'] for r in rows):.3f}."]
                if all(r["peak_within_10pct"] < 0.8 for r in rows) else
                [f"- The peak target (80 % of clips) is met by "
                 f"{', '.join(r['variant'] for r in rows if r['peak_within_10pct'] >= 0.8)}."]),
              *([] if any(r["variant"] == "ststnet_flow" for r in rows) else [
                  "- A neural frame-pair variant (`--variants ststnet_flow`: STSTNet's intensity head on the onset "
                  "-> t flow stacks) is available but was not run here."]), ""]
    lines += ["## Reading these figures honestly", "",
              "- No model received an apex or offset annotation: inputs are the frames from the onset to the last "
              "frame on disk. But every CASME II folder ends exactly at its offset, so the last frame on disk IS "
              "the annotated offset. `ridge_motion` uses only the onset frame as its reference and is the purest "
              "test of what the pixels say; the variants reading `end_motion` (the flow to the last frame) or "
              "the position, and the position prior, also read the clip's extent, which encodes the offset "
              "annotation, and the position prior shows how much of the score the extent alone gives (CASME "
              "II's apex lies near the middle of most clips: its relative position has mean 0.51, standard "
              "deviation 0.16). No CASME II folder continues past the offset, so an evaluation on frames after "
              "the offset (where the target is 0 and the extent cannot help) is not possible with this corpus.",
              "- The triangular target is an assumption about the shape between three annotated frames; "
              "the motion relative to the onset often does not return to zero at the annotated offset (the face "
              "does not come back exactly to its onset state), which a flow-from-onset model cannot undo.",
              "- Several variants were evaluated on the same LOSO folds; calling any one of them the best is a "
              "choice made on these test results (a selection effect). `ridge_motion` was designated the primary "
              "variant before running. Hyper-parameters within each variant (ridge alpha, LightGBM leaves, "
              "the early-stopping epoch) were chosen by inner CV on the training subjects of each fold only.",
              "- Wall time includes loading, preprocessing (cached after the first run), per-frame flow "
              "(Farneback at 112 px, cached per clip) and the 26 folds; the machine was shared with other work.",
              "", "Per-variant report folders (predictions per frame, per-clip peaks, curve PNGs) are written under "
              f"`{args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}/<variant>/`; they hold "
              "derived data of licensed clips and are not part of the repository.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
