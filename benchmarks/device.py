"""CPU vs GPU on CASME II: seconds per training epoch, a whole LOSO run, and how far the two
devices' predictions agree for the same seed.

    .venv/bin/python benchmarks/device.py              # STSTNet, 3-class, CPU (and CUDA if present)
    .venv/bin/python benchmarks/device.py --heavy      # also ResNet-18 on flow and R(2+1)D-18
    .venv/bin/python benchmarks/device.py --amp bf16   # the GPU runs in bf16 mixed precision

Reads ../shared/data/CASME2 (licensed; never copied into the repository) and skips with a message
where it is absent. Every figure comes from mekit's own runner with ``compute.device`` set, and
each run's selection record says where it actually ran (a mismatch is printed, never hidden).
Folds run one at a time on every device (``protocol.workers: 1``): forked workers cannot use
CUDA, and serial CPU folds keep the two timings comparable. The preprocessing cache is warmed
before anything is timed. Run reports go to ``runs/device/`` (gitignored); the summary is printed
and written to ``runs/device/summary.json``.

Agreement: the same seed on two devices gives the same batches and augmentations (drawn on the
CPU), so predictions differ only by floating-point rounding, which training amplifies; the
share of identical predicted labels and the largest probability difference measure it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "CASME2"
CONFIG = REPO / "configs" / "casme2_3class_ststnet.yaml"
RUNS_DIR = REPO / "runs" / "device"
NO_FLIP = {"hflip": False, "affine": 0.0}

#: name -> overrides of configs/casme2_3class_ststnet.yaml (the heavy budgets and sizes follow
#: benchmarks/casme2.py; R(2+1)D-18 runs a subject-grouped 5-fold there, as here)
MODELS: dict[str, dict[str, Any]] = {
    "ststnet": {},
    "resnet18_flow": {"model.name": "resnet18_flow", "features.params": {"size": 64},
                      "model.params": {"epochs": 10, "batch_size": 32, "lr": 0.001, "selection": "fixed",
                                       "threads": 1, "augment": NO_FLIP}},
    "r2plus1d_18": {"model.name": "r2plus1d_18", "features.name": "clip3d",
                    "features.params": {"n_frames": 8, "size": 48, "relative": True},
                    "model.params": {"epochs": 3, "batch_size": 32, "lr": 0.001, "selection": "fixed", "threads": 1},
                    "protocol.name": "group_kfold", "protocol.params": {"k": 5}},
}
HEAVY = ("resnet18_flow", "r2plus1d_18")


def _config(model: str, root: Path, device: str, amp: str):
    from mekit.config import load_config

    over = {**MODELS[model], "data.root": str(root), "name": f"device_{model}_{device.replace(':', '')}",
            "protocol.workers": 1, "compute.device": device, "compute.amp": amp, "output.plots": False}
    return load_config(CONFIG, over)


def _inputs(cfg):
    from mekit.data import load_dataset
    from mekit.engine.factory import build_inputs

    table = load_dataset(cfg.data.loader, cfg.data.root, cfg.data.label_scheme, **cfg.data.options)
    table = table.subset(table.df["label"].notna())
    feats = build_inputs(table, cfg, progress=False)
    usable = table.subset(feats.sample_ids)
    return feats.take(usable.sample_ids), usable.df["label"].to_numpy(), usable.df["subject"].to_numpy()


def epoch_seconds(cfg, X, y, groups, epochs: int = 3) -> tuple[float, str]:
    """Median seconds of a training epoch on every sample (the first epoch, which pays for
    start-up and kernel selection, is left out when there are more)."""
    import numpy as np

    from mekit import events
    from mekit.engine.trainer import NeuralModel

    stamps: list[float] = []
    params = {**cfg.model.params, "epochs": epochs, "selection": "fixed"}
    m = NeuralModel(cfg.model.name, params, class_weight=cfg.imbalance.class_weight, seed=cfg.seed,
                    compute=cfg.compute)
    t0 = time.perf_counter()
    with events.listen(lambda e: stamps.append(time.perf_counter()) if e.kind == "epoch" else None):
        m.fit(X, y, groups)
    times = np.diff([t0, *stamps])
    return float(np.median(times[1:] if len(times) > 1 else times)), m.runtime_["device"]


def loso(cfg) -> dict[str, Any]:
    import pandas as pd

    from mekit.experiment import run_experiment

    out = RUNS_DIR / cfg.name
    t0 = time.perf_counter()
    res = run_experiment(cfg, out, progress=False, resume="off")
    wall = time.perf_counter() - t0
    ran_on = sorted({str(s.get("compute", {}).get("device", "not recorded"))
                     for s in res.metrics.get("selection_per_fold", [])})
    pred = pd.read_csv(out / "predictions.csv", dtype={"sample_id": str, "true": str, "pred": str})
    return {"wall_s": round(wall, 1), "uf1": round(res.metrics["uf1"], 4), "uar": round(res.metrics["uar"], 4),
            "protocol": res.metrics.get("protocol"), "ran_on": ran_on, "predictions": pred}


def agreement(a, b) -> dict[str, Any]:
    import numpy as np

    key = ["seed", "sample_id"]
    m = a.merge(b, on=key, suffixes=("_a", "_b"))
    probs = [c for c in a.columns if c.startswith("p_")]
    diff = np.abs(m[[f"{c}_a" for c in probs]].to_numpy() - m[[f"{c}_b" for c in probs]].to_numpy())
    return {"n": len(m), "same_label": round(float((m["pred_a"] == m["pred_b"]).mean()), 4),
            "max_prob_diff": round(float(diff.max()), 4), "mean_prob_diff": round(float(diff.mean()), 5)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--heavy", action="store_true", help="also ResNet-18 on flow and R(2+1)D-18")
    ap.add_argument("--amp", default="off", help="compute.amp of the GPU runs (off, bf16, fp16)")
    ap.add_argument("--no-loso", action="store_true", help="epoch times only")
    args = ap.parse_args()
    if not (args.root / "Cropped").is_dir():
        print(f"CASME II not found at {args.root} (licensed data is never shipped with mekit): skipping")
        return
    import torch

    gpu = torch.cuda.is_available()
    devices = ["cpu", "cuda"] if gpu else ["cpu"]
    print(f"torch {torch.__version__}; GPU: {torch.cuda.get_device_name(0) if gpu else 'absent (CPU figures only)'}")
    summary: dict[str, Any] = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0) if gpu else None,
                               "models": {}}
    for model in [m for m in MODELS if args.heavy or m not in HEAVY]:
        rows: dict[str, Any] = {}
        X = y = g = None
        for dev in devices:
            cfg = _config(model, args.root, dev, args.amp if dev != "cpu" else "off")
            if X is None:
                X, y, g = _inputs(cfg)  # also warms the preprocessing cache before any timing
            sec, where = epoch_seconds(cfg, X, y, g)
            row: dict[str, Any] = {"epoch_s": round(sec, 3), "epoch_device": where, "samples": len(y)}
            if not args.no_loso:
                row.update(loso(cfg))
            rows[dev] = row
            shown = {k: v for k, v in row.items() if k != "predictions"}
            print(f"{model} on {dev}: {shown}", flush=True)
            if "ran_on" in row and not all(r.startswith(dev) for r in row["ran_on"]):
                print(f"  warning: asked for {dev}, the folds ran on {row['ran_on']}", file=sys.stderr)
        if not args.no_loso and len(rows) == 2:
            rows["agreement"] = agreement(rows["cpu"]["predictions"], rows["cuda"]["predictions"])
            rows["speedup_loso"] = round(rows["cpu"]["wall_s"] / max(rows["cuda"]["wall_s"], 1e-9), 2)
            print(f"{model} cpu vs cuda: {rows['agreement']}; LOSO speed-up x{rows['speedup_loso']}")
        rows["speedup_epoch"] = (round(rows["cpu"]["epoch_s"] / max(rows["cuda"]["epoch_s"], 1e-9), 2)
                                 if "cuda" in rows else None)
        for r in rows.values():
            if isinstance(r, dict):
                r.pop("predictions", None)
        summary["models"][model] = rows
    RUNS_DIR.mkdir(parents=True, exist_ok=True)
    (RUNS_DIR / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
