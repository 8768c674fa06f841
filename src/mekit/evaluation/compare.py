"""One table across run folders: methods as rows, metrics as columns, deltas against a baseline,
and paired tests that say whether a difference from the baseline is more than noise.

The paired tests use the samples both runs predicted, matched by ``sample_id`` (and seed):

- ``d_uf1_paired``, ``d_uf1_paired_ci``, ``p_bootstrap``: the UF1 difference (run minus
  baseline) with its 95 % CI and a two-sided p-value from a paired subject-level bootstrap
  (:func:`mekit.evaluation.metrics.paired_subject_bootstrap`).
- ``mcnemar_b``, ``mcnemar_c``, ``mcnemar_p``: McNemar's test on correct/incorrect per sample
  (``b``: only the baseline right, ``c``: only the run right; :func:`mekit.evaluation.metrics.mcnemar`).
- ``n_paired``: how many samples the tests used.

Seeds are paired seed by seed: the bootstrap averages the per-seed UF1 difference over the
seeds both runs have (one subject draw for all of them); McNemar, which needs one independent
outcome per sample, uses the first of those seeds (the seed a run's headline figures come
from). Runs that share no seed are paired first seed with first seed, and a note says so.
Samples only one run predicted are counted in a note, never silently dropped.

Runs that differ in data, label scheme, protocol or seeds are listed in ``df.attrs["warnings"]``
(one line each); the notes on the paired tests are in ``df.attrs["notes"]``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from mekit.errors import DataError

METRICS = ("uf1", "uar", "accuracy", "weighted_f1")
#: the columns the paired tests add to the table (rows other than the baseline)
PAIRED_COLUMNS = ("d_uf1_paired", "d_uf1_paired_ci", "p_bootstrap", "mcnemar_b", "mcnemar_c", "mcnemar_p",
                  "n_paired")
_OBJECT_COLUMNS = ("d_uf1_paired_ci", "mcnemar_b", "mcnemar_c", "n_paired")
#: what a predictions.csv must hold for the paired tests
_PRED_COLUMNS = ("sample_id", "subject", "true", "pred")
_MISSING = object()  # a value a run folder does not record (as opposed to a recorded None)


def load_run(run_dir: str | Path) -> dict:
    p = Path(run_dir) / "metrics.json"
    if not p.exists():
        raise DataError("not a mekit run folder (no metrics.json)", path=run_dir)
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"metrics.json is not valid JSON ({e})", path=p) from None


def load_config_record(run_dir: str | Path) -> dict | None:
    """The run's resolved config as plain data (``config.resolved.yaml``, else ``config.yaml``);
    None when the folder holds neither. Read as data, not validated: an older run's config
    must still be comparable after the config schema moved on."""
    import yaml

    for name in ("config.resolved.yaml", "config.yaml"):
        p = Path(run_dir) / name
        if p.is_file():
            try:
                cfg = yaml.safe_load(p.read_text())
            except yaml.YAMLError as e:
                raise DataError(f"not valid YAML ({' '.join(str(e).split())})", path=p) from None
            if not isinstance(cfg, dict):
                raise DataError("not a config (expected a mapping at the top)", path=p)
            return cfg
    return None


def load_predictions(run_dir: str | Path) -> pd.DataFrame | None:
    """``predictions.csv`` with labels and ids as text and a ``seed`` column (0 where the file
    has none); None when the folder has no predictions.csv."""
    p = Path(run_dir) / "predictions.csv"
    if not p.is_file():
        return None
    try:
        # labels as written ("None", "NA" are labels, not missing values)
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read the predictions ({' '.join(str(e).split())})", path=p) from None
    missing = [c for c in _PRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"predictions lack the columns {missing}", path=p, expected=f"columns {list(_PRED_COLUMNS)}")
    if "seed" not in df.columns:
        df["seed"] = "0"
    seed = pd.to_numeric(df["seed"], errors="coerce")
    if seed.isna().any():
        row = int(seed.isna().to_numpy().argmax())
        raise DataError("seed is not an integer", path=p, row=row + 2, value=df["seed"].iloc[row])
    return df.assign(seed=seed.astype(int))[["sample_id", "subject", "seed", "true", "pred"]]


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return _MISSING
        d = d[k]
    return d


def _show(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True, separators=(",", ":"))
    return str(v)


def _differences(runs: list[dict], base: str) -> list[str]:
    """One line per kind of difference between the runs (values that a run does not record
    are left out of the comparison, never guessed)."""
    def protocol(r: dict) -> Any:
        v = r["metrics"].get("protocol", _MISSING)
        return _get(r["config"], "protocol", "name") if v is _MISSING else v

    def seeds(r: dict) -> Any:
        v = r["metrics"].get("seeds", _MISSING)
        return _get(r["config"], "protocol", "seeds") if v is _MISSING else v

    def classes(r: dict) -> Any:
        v = r["metrics"].get("classes", _MISSING)
        return sorted(v) if isinstance(v, list) else v

    aspects = [("data loader", lambda r: _get(r["config"], "data", "loader")),
               ("data root", lambda r: _get(r["config"], "data", "root")),
               ("data fingerprint", lambda r: r["fingerprint"]),
               ("number of samples", lambda r: r["metrics"].get("n_samples", _MISSING)),
               ("label scheme", lambda r: _get(r["config"], "data", "label_scheme")),
               ("classes", classes),
               ("protocol", protocol),
               ("protocol params", lambda r: _get(r["config"], "protocol", "params")),
               ("seeds", seeds)]
    out = []
    for what, value in aspects:
        values = {r["name"]: value(r) for r in runs}
        values = {k: v for k, v in values.items() if v is not _MISSING}
        if len({_show(v) for v in values.values()}) > 1:
            out.append(f"runs differ in {what}: " + ", ".join(f"{k}={_show(v)}" for k, v in values.items()))
    # the set of samples, each run against the baseline
    base_run = next(r for r in runs if r["name"] == base)
    if base_run["preds"] is not None:
        ids = set(base_run["preds"]["sample_id"])
        parts = []
        for r in runs:
            if r["name"] == base or r["preds"] is None:
                continue
            other = set(r["preds"]["sample_id"])
            if other != ids:
                parts.append(f"{r['name']} {len(other)} ({len(ids - other)} only in {base}, "
                             f"{len(other - ids)} only in {r['name']})")
        if parts:
            out.append(f"runs differ in their samples (baseline {base}: {len(ids)}): " + ", ".join(parts))
    return out


def _paired(base: dict, run: dict, n_boot: int, seed: int) -> tuple[dict[str, Any], list[str], list[str]]:
    """The paired-test cells of ``run`` against ``base``, the notes and the warnings it raises."""
    from mekit.evaluation.metrics import mcnemar, paired_subject_bootstrap

    a, b, bn, rn = base["preds"], run["preds"], base["name"], run["name"]
    notes: list[str] = []
    warns: list[str] = []
    for r in (base, run):
        if r["metrics"].get("uf1") is None:
            return {}, [f"{r['name']} is not a classification run: no paired test of {rn} against {bn}."], []
        if r["preds"] is None:
            return {}, [f"{r['name']} has no predictions.csv: no paired test of {rn} against {bn}."], []
    ca, cb = base["metrics"].get("classes") or [], run["metrics"].get("classes") or []
    if set(ca) != set(cb):
        return {}, [f"{rn} and {bn} score different classes: no paired test."], []
    for r in (base, run):
        dup = r["preds"].duplicated(["sample_id", "seed"])
        if dup.any():
            return {}, [f"{r['name']}/predictions.csv holds {int(dup.sum())} (sample_id, seed) pairs more than "
                        f"once (e.g. {r['preds'].loc[dup, 'sample_id'].iloc[0]}): no paired test of {rn} "
                        f"against {bn}."], []

    sa, sb = sorted(int(x) for x in a["seed"].unique()), sorted(int(x) for x in b["seed"].unique())
    shared = sorted(set(sa) & set(sb))
    if shared:
        a, b = a[a["seed"].isin(shared)], b[b["seed"].isin(shared)]
        unused = [f"{name} {[x for x in s if x not in shared]}" for name, s in ((bn, sa), (rn, sb))
                  if set(s) - set(shared)]
        if unused:
            notes.append(f"{rn} against {bn}: the paired tests use the shared seeds {shared}; "
                         f"seeds left out: {', '.join(unused)}.")
    else:
        notes.append(f"{rn} and {bn} share no seed ({bn}: {sa}, {rn}: {sb}); the paired tests pair {bn} seed "
                     f"{sa[0]} with {rn} seed {sb[0]}.")
        shared = [sa[0]]
        a, b = a[a["seed"] == sa[0]], b[b["seed"] == sb[0]].assign(seed=sa[0])
    ia, ib = set(a["sample_id"]), set(b["sample_id"])
    both = ia & ib
    # a sample is paired when both runs predicted it under every shared seed
    full = {s for s, n in a[a["sample_id"].isin(both)].groupby("sample_id").size().items() if n == len(shared)}
    full &= {s for s, n in b[b["sample_id"].isin(both)].groupby("sample_id").size().items() if n == len(shared)}
    left = []
    for ids, where in ((ia - ib, bn), (ib - ia, rn)):
        if ids:
            left.append(f"{len(ids)} only in {where} (e.g. {', '.join(sorted(ids)[:3])})")
    if both - full:
        left.append(f"{len(both - full)} not predicted under every shared seed")
    if left:
        notes.append(f"{rn} against {bn}: samples left out of the paired tests: {'; '.join(left)}; "
                     f"the tests use the {len(full)} both runs predicted.")
    if not full:
        return {"n_paired": 0}, notes + [f"{rn} and {bn} have no sample in common: no paired test."], warns
    a, b = a[a["sample_id"].isin(full)], b[b["sample_id"].isin(full)]

    t = a.merge(b, on=["sample_id", "seed"], suffixes=("_a", "_b"))
    differ = t.loc[t["true_a"] != t["true_b"], "sample_id"].unique()
    if len(differ):
        warns.append(f"{rn} and {bn} give different true labels to {len(differ)} shared samples "
                     f"(e.g. {', '.join(sorted(differ)[:3])}); each run is scored against its own labels.")
    if (t["subject_a"] != t["subject_b"]).any():
        warns.append(f"{rn} and {bn} assign {int((t['subject_a'] != t['subject_b']).sum())} shared samples to "
                     f"different subjects; the bootstrap draws {bn}'s subjects.")
    classes = sorted(set(ca) | set(t["true_a"]) | set(t["pred_a"]) | set(t["true_b"]) | set(t["pred_b"]))
    boot = paired_subject_bootstrap(a, b, classes, n_boot=n_boot, seed=seed)
    first = t[t["seed"] == shared[0]]
    right_a, right_b = first["true_a"] == first["pred_a"], first["true_b"] == first["pred_b"]
    mb, mc = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    lo, hi = boot["ci"]
    return {"d_uf1_paired": boot["d"], "d_uf1_paired_ci": f"[{lo:+.3f}, {hi:+.3f}]", "p_bootstrap": boot["p"],
            "mcnemar_b": mb, "mcnemar_c": mc, "mcnemar_p": mcnemar(mb, mc), "n_paired": len(full)}, notes, warns


def compare_runs(run_dirs: list[str | Path], baseline: str | None = None, n_boot: int = 2000,
                 seed: int = 0) -> pd.DataFrame:
    """Rows: runs (named by folder); columns: protocol (``(LEAKY)`` appended to a sample-level
    split) and a ``leaky`` flag, metrics, CI bounds and mean ± std over seeds where present,
    ``d_<metric>`` deltas of the headline figures against ``baseline`` (a folder name; default
    the first run), and the paired tests against it (module docstring; ``n_boot`` bootstrap
    replicates drawn from ``seed``, so the same call gives the same table).

    ``df.attrs``: ``baseline``, ``warnings`` (runs that differ in data, label scheme, protocol
    or seeds), ``notes`` (samples left out of the paired tests, and why a test is missing),
    ``n_boot`` and ``seed``."""
    if not run_dirs:
        raise DataError("no run folders given")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise DataError("bootstrap replicates must be a whole number of at least 1", value=n_boot,
                        expected="e.g. 2000")
    rows, runs = [], []
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
        runs.append({"name": name, "dir": Path(d), "metrics": m})
    df = pd.DataFrame(rows).set_index("run")
    if df.index.has_duplicates:
        raise DataError(f"run folders must have distinct names; got {list(df.index)}")
    base = baseline or df.index[0]
    if base not in df.index:
        raise DataError(f"baseline {base!r} is not one of the runs {list(df.index)}")
    for k in METRICS:
        if df[k].notna().all():
            df[f"d_{k}"] = df[k] - df.loc[base, k]

    for r in runs:
        r["config"] = load_config_record(r["dir"])
        # only a classification run's predictions hold the labels the paired tests need
        r["preds"] = load_predictions(r["dir"]) if r["metrics"].get("uf1") is not None else None
        try:
            r["fingerprint"] = json.loads((r["dir"] / "folds" / "stamp.json").read_text())["data"]
        except (OSError, ValueError, KeyError, TypeError):
            r["fingerprint"] = _MISSING
    warnings = _differences(runs, base)
    notes: list[str] = []
    cells: dict[str, dict[str, Any]] = {}
    base_run = next(r for r in runs if r["name"] == base)
    for r in runs:
        if r["name"] != base:
            cells[r["name"]], n, w = _paired(base_run, r, n_boot, seed)
            notes += n
            warnings += w
    # the columns are there whenever a classification baseline has something to be compared
    # with, empty where a test could not run (the notes say why)
    if cells and base_run["metrics"].get("uf1") is not None:
        for c in PAIRED_COLUMNS:
            values = [cells.get(run, {}).get(c) for run in df.index]
            # counts and CI text as objects (whole numbers stay whole beside the baseline's empty
            # cell), the rest as floats (NaN where no test ran)
            df[c] = pd.Series(values, index=df.index, dtype=object if c in _OBJECT_COLUMNS else float)
    df.attrs.update(baseline=base, warnings=warnings, notes=notes, n_boot=n_boot, seed=seed)
    return df


def format_cell(column: str, value: Any) -> str:
    """A table cell as the CLI and the Markdown table show it."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        if column.startswith("p_") or column.endswith("_p"):
            return "<0.001" if value < 0.001 else f"{value:.3f}"
        return f"{value:+.3f}" if column.startswith("d_") else f"{value:.3f}"
    return str(value)


def paired_note(df: pd.DataFrame) -> str | None:
    """What the paired-test columns mean (None when the table has none)."""
    if "d_uf1_paired" not in df:
        return None
    return (f"Paired tests against {df.attrs.get('baseline')} on the samples both runs predicted: "
            f"d_uf1_paired is the UF1 difference (mean over shared seeds) with its 95 % CI and p_bootstrap from "
            f"a subject-level bootstrap ({df.attrs.get('n_boot')} replicates, seed {df.attrs.get('seed')}); "
            f"mcnemar_p is McNemar's test on correct/incorrect per sample (first shared seed; b: only the "
            f"baseline right, c: only the run right; exact below 25 discordant pairs).")


def to_markdown(df: pd.DataFrame) -> str:
    cols = ["run"] + list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for run, r in df.iterrows():
        cells = [str(run)] + [format_cell(c, v) for c, v in r.items()]
        lines.append("| " + " | ".join(cells) + " |")
    note = f"\n\nDeltas (d_*) are against `{df.attrs.get('baseline')}`.\n"
    if "leaky" in df and df["leaky"].any():
        note += ("\nRuns marked LEAKY used a sample-level split (the same subjects in training and test); "
                 "their numbers are not comparable with subject-independent protocols.\n")
    paired = paired_note(df)
    if paired:
        note += f"\n{paired}\n"
    for n in df.attrs.get("notes", []):
        note += f"\n{n}\n"
    for w in df.attrs.get("warnings", []):
        note += f"\n**Warning:** {w}\n"
    return "\n".join(lines) + note
