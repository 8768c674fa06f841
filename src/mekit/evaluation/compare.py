"""One table across run folders: methods as rows, metrics as columns, deltas against a baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mekit.errors import DataError

METRICS = ("uf1", "uar", "accuracy", "weighted_f1")


def load_run(run_dir: str | Path) -> dict:
    p = Path(run_dir) / "metrics.json"
    if not p.exists():
        raise DataError("not a mekit run folder (no metrics.json)", path=run_dir)
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"metrics.json is not valid JSON ({e})", path=p) from None


def compare_runs(run_dirs: list[str | Path], baseline: str | None = None) -> pd.DataFrame:
    """Rows: runs (named by folder); columns: protocol (``(LEAKY)`` appended to a sample-level
    split) and a ``leaky`` flag, metrics, CI bounds and mean ± std over seeds where present,
    and ``d_<metric>`` deltas against ``baseline`` (a folder name; default the first run)."""
    if not run_dirs:
        raise DataError("no run folders given")
    rows = []
    names = [Path(d).name for d in run_dirs]
    for i, d in enumerate(run_dirs):
        m = load_run(d)
        # two folders of the same name (runs/a/exp, runs/b/exp) are told apart by their parent
        name = names[i] if names.count(names[i]) == 1 else f"{Path(d).parent.name}/{names[i]}"
        r = {"run": name, "protocol": m.get("protocol", "") + (" (LEAKY)" if m.get("leaky") else ""),
             "leaky": bool(m.get("leaky", False)), "n": m.get("n_samples")}
        for k in METRICS:
            r[k] = m.get(k)
            ci = m.get("bootstrap_ci95", {}).get(k)
            if ci:
                r[f"{k}_ci"] = f"{ci[0]:.3f}-{ci[1]:.3f}"
        seeds = m.get("over_seeds", {}).get("uf1")
        if seeds:
            r["uf1_seeds"] = f"{seeds['mean']:.3f} ± {seeds['std']:.3f} (n={len(m.get('seeds', []))})"
        t = m.get("timing_s", {}).get("total")
        if t is not None:
            r["time_s"] = t
        rows.append(r)
    df = pd.DataFrame(rows).set_index("run")
    if df.index.has_duplicates:
        raise DataError(f"run folders must have distinct names; got {list(df.index)}")
    base = baseline or df.index[0]
    if base not in df.index:
        raise DataError(f"baseline {base!r} is not one of the runs {list(df.index)}")
    for k in METRICS:
        if df[k].notna().all():
            df[f"d_{k}"] = df[k] - df.loc[base, k]
    df.attrs["baseline"] = base
    return df


def to_markdown(df: pd.DataFrame) -> str:
    cols = ["run"] + list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for run, r in df.iterrows():
        cells = [str(run)] + [f"{v:+.3f}" if c.startswith("d_") and isinstance(v, float) else
                              f"{v:.3f}" if isinstance(v, float) else str(v) for c, v in r.items()]
        lines.append("| " + " | ".join(cells) + " |")
    note = f"\n\nDeltas (d_*) are against `{df.attrs.get('baseline')}`.\n"
    if "leaky" in df and df["leaky"].any():
        note += ("\nRuns marked LEAKY used a sample-level split (the same subjects in training and test); "
                 "their numbers are not comparable with subject-independent protocols.\n")
    return "\n".join(lines) + note
