"""A sweep: a grid of config overrides, each point a full run, compared honestly.

``--grid model.name=svm_linear,logreg --grid model.params.C=0.1,1`` expands into the points of
the grid's product (:func:`expand`), each a mapping of dotted overrides as the command line's
``key=value`` overrides take them, with a file-safe name (the point's folder). Running them is
:func:`mekit.executors.sweep.run_sweep`; this module holds what does not run anything: parsing
the grid and the seeds, naming points, and the sweep's table (:func:`sweep_table`) from the run
folders.

The table compares the points as ``mekit compare`` does (:func:`mekit.evaluation.compare.compare_runs`:
UF1 and UAR, mean ± std over seeds, and the paired subject bootstrap of the UF1 difference and
McNemar's test against the first point). Picking the point with the best UF1 from that table is
selection on the test folds and overstates how the chosen recipe does on unseen subjects; the
sweep's honest best comes from a nested run instead (``protocol: nested`` over the same points
as its ``search``): in each outer fold an inner CV on the training subjects chooses a point and
only the held-out subjects score it (:func:`nested_summary`).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mekit.errors import ConfigError

#: the folder of the nested-selection run in a sweep's folder
NESTED = "nested"
#: top-level config keys a nested search cannot vary (the comparison, not a candidate; see
#: mekit.tasks.recipes): a grid over them gets no nested run
NOT_A_RECIPE = ("name", "seed", "task", "data", "protocol", "output", "compute", "intensity", "search")


@dataclass(frozen=True)
class Point:
    """One point of a grid: its folder name and its dotted overrides (in the grid's key order)."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        return ", ".join(f"{k}={_text(v)}" for k, v in self.overrides.items())


def _text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, default=str)


def split_values(text: str) -> list[str]:
    """``a,b,[1, 2],{x: 1}`` -> ``['a', 'b', '[1, 2]', '{x: 1}']``: commas inside brackets,
    braces or quotes belong to the value."""
    out, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return out


def parse_grid(pairs: list[str] | None) -> dict[str, list[Any]]:
    """``['model.name=svm_linear,logreg', 'model.params.C=0.1,1']`` -> ``{'model.name':
    ['svm_linear', 'logreg'], 'model.params.C': [0.1, 1]}``; each value read as YAML, as a
    ``key=value`` override is. A key given twice, an empty value or a repeated value is refused."""
    from mekit.config import load_yaml

    grid: dict[str, list[Any]] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"--grid {pair!r}: expected key=value1,value2 (e.g. model.name=svm_linear,logreg)")
        key, text = (s.strip() for s in pair.split("=", 1))
        if not key:
            raise ConfigError(f"--grid {pair!r} has no key; expected key=value1,value2")
        if key in grid:
            raise ConfigError(f"--grid {key!r} is given twice; give each key once with all its values")
        raw = split_values(text)
        if any(not r for r in raw):
            raise ConfigError(f"--grid {key}: an empty value in {text!r}; expected values separated by commas")
        values = [load_yaml(r, f"--grid {key}") for r in raw]
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) != len(values):
            raise ConfigError(f"--grid {key}: a value is repeated in {text!r}; expected distinct values")
        grid[key] = values
    if not grid:
        raise ConfigError("a sweep needs at least one --grid key=value1,value2")
    return grid


def parse_seeds(text: str | None) -> list[int] | None:
    """``0..4`` -> ``[0, 1, 2, 3, 4]`` (both ends included), ``0,3,7`` -> ``[0, 3, 7]``, ``5`` ->
    ``[5]``; None -> None (the config's own seeds)."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    m = re.fullmatch(r"(-?\d+)\s*\.\.\s*(-?\d+)", text)
    try:
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if b < a:
                raise ConfigError(f"--seeds {text!r}: the range ends before it starts; expected e.g. 0..4")
            seeds = list(range(a, b + 1))
        else:
            seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected a range such as 0..4 or a list such as 0,1,2") from None
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r} repeats a seed; expected distinct seeds")
    return seeds


def _slug(v: Any) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", _text(v)).strip("_.") or "x"


def expand(grid: dict[str, list[Any]]) -> list[Point]:
    """Every point of the grid's product, the first key varying slowest. A point's name is
    ``<key>-<value>`` per key joined by ``__``, a key shortened to its last dotted part where that
    is unambiguous among the grid's keys (``name-svm_linear__C-0.1``)."""
    keys = list(grid)
    last = [k.split(".")[-1] for k in keys]
    short = {k: (s if last.count(s) == 1 else k.replace(".", "_")) for k, s in zip(keys, last)}
    points: list[Point] = []
    names: list[str] = []
    for values in itertools.product(*(grid[k] for k in keys)):
        over = dict(zip(keys, values))
        name = "__".join(f"{short[k]}-{_slug(v)}" for k, v in over.items())[:150]
        if name in names or name == NESTED:
            name = f"{name}__{len(points) + 1}"
        names.append(name)
        points.append(Point(name, over))
    return points


def nested_refusal(grid: dict[str, list[Any]], protocol: str) -> str | None:
    """Why a grid gets no nested run (None when it gets one): a nested search varies recipes
    only, and its outer protocol must keep subjects apart."""
    fixed = [k for k in grid if k.split(".")[0] in NOT_A_RECIPE]
    if fixed:
        return (f"the grid varies {fixed}, which a nested search cannot choose among (it compares recipes on "
                "the same data, protocol and seeds)")
    if protocol in ("nested", "random_split"):
        return f"the config's protocol {protocol!r} cannot be the outer protocol of a nested run"
    return None


def search_of(points: list[Point]) -> list[dict[str, Any]]:
    """The points as the ``search:`` list of a nested run, each labelled with its name."""
    return [{"label": p.name, **p.overrides} for p in points]


# ---------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------
def _mean_std(m: dict[str, Any], key: str) -> tuple[float | None, float | None]:
    over = (m.get("over_seeds") or {}).get(key)
    if over:
        return over.get("mean"), over.get("std")
    v = m.get(key)
    return v, None


def nested_summary(run_dir: str | Path) -> dict[str, Any]:
    """What a nested run chose: per outer fold and seed the recipe (a point's name) and its inner
    UF1, how often each recipe was chosen, and the run's UF1/UAR (mean ± std over seeds): the
    sweep's honest estimate of its best recipe."""
    m = json.loads((Path(run_dir) / "metrics.json").read_text())
    folds = []
    for s in m.get("selection_per_fold") or []:
        chosen = (s.get("chosen") or {}).get("recipe")
        inner = s.get("inner_uf1") or {}
        folds.append({"fold": s.get("fold"), "seed": s.get("seed"), "chosen": chosen,
                      "inner_uf1": inner.get(chosen) if isinstance(inner, dict) else None})
    counts: dict[str, int] = {}
    for f in folds:
        counts[str(f["chosen"])] = counts.get(str(f["chosen"]), 0) + 1
    counts = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    uf1, uf1_sd = _mean_std(m, "uf1")
    uar, uar_sd = _mean_std(m, "uar")
    return {"folds": folds, "counts": counts, "most_chosen": next(iter(counts), None), "uf1": uf1, "uf1_std": uf1_sd,
            "uar": uar, "uar_std": uar_sd, "n_folds": len(folds), "seeds": m.get("seeds", [])}


def sweep_table(out: str | Path, points: list[Point], nested: bool = False, n_boot: int = 2000,
                seed: int = 0) -> pd.DataFrame:
    """One row per point (and ``nested`` when its run is there): the grid's values, UF1 and UAR
    (mean and std over seeds), the paired tests against the first point (``mekit compare``'s
    columns) and the run's time. ``df.attrs``: ``warnings`` and ``notes`` of the comparison."""
    from mekit.evaluation.compare import PAIRED_COLUMNS, compare_runs, load_run

    out = Path(out)
    names = [p.name for p in points] + ([NESTED] if nested else [])
    cmp = compare_runs([out / p.name for p in points], baseline=points[0].name, n_boot=n_boot, seed=seed)
    warnings, notes = list(cmp.attrs.get("warnings", [])), list(cmp.attrs.get("notes", []))
    if nested:
        # the nested run differs from the points in its protocol by design: only its paired tests
        # (and notes) are taken from that comparison
        pair = compare_runs([out / points[0].name, out / NESTED], baseline=points[0].name, n_boot=n_boot, seed=seed)
        cmp = pd.concat([cmp, pair.loc[[NESTED]]])
        notes += list(pair.attrs.get("notes", []))
    rows = []
    keys = list(points[0].overrides)
    for name in names:
        m = load_run(out / name)
        point = next((p for p in points if p.name == name), None)
        row: dict[str, Any] = {"point": name}
        for k in keys:
            row[k] = _text(point.overrides[k]) if point is not None else "(nested selection)"
        for metric in ("uf1", "uar"):
            mean, sd = _mean_std(m, metric)
            row[f"{metric}_mean"], row[f"{metric}_std"] = mean, sd
        row["n_seeds"] = len(m.get("seeds") or [])
        for c in PAIRED_COLUMNS:
            if c in cmp.columns:
                v = cmp.at[name, c]
                row[c] = None if v is None or (isinstance(v, float) and math.isnan(v)) else v
                if c in ("mcnemar_b", "mcnemar_c", "n_paired") and row[c] is not None:
                    row[c] = int(row[c])  # counts stay whole numbers
        row["time_s"] = (m.get("timing_s") or {}).get("total")
        rows.append(row)
    df = pd.DataFrame(rows).set_index("point")
    df.attrs.update(baseline=points[0].name, warnings=warnings, notes=notes, n_boot=n_boot, seed=seed)
    return df


def _cell(v: Any, fmt: str = "{:.3f}") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return fmt.format(v)
    return str(v)


def _pm(mean: Any, sd: Any) -> str:
    if mean is None:
        return ""
    return f"{mean:.3f}" + ("" if sd is None or (isinstance(sd, float) and math.isnan(sd)) else f" ± {sd:.3f}")


def sweep_markdown(df: pd.DataFrame, grid: dict[str, list[Any]], seeds: list[int], base: str,
                   nested: dict[str, Any] | None, nested_note: str | None, executor: str) -> str:
    """sweep.md: the grid, the table, and the nested selection's honest best."""
    from mekit.evaluation.compare import format_cell, paired_note

    base_name = df.attrs.get("baseline")
    lines = [f"# Sweep of {base}", "",
             f"Grid: {'; '.join(f'`{k}` in ' + ', '.join(_text(v) for v in vs) for k, vs in grid.items())}. "
             f"Seeds: {seeds}. Each point is a full run in its own folder; runs ran on the `{executor}` executor "
             "(where a run ran never changes its results).", "",
             "| point | " + " | ".join(grid) + " | UF1 (mean ± std) | UAR (mean ± std) | d_uf1_paired | 95 % CI "
             "| p_bootstrap | McNemar p | n_paired |",
             "|---|" + "---|" * len(grid) + "---|---|---|---|---|---|---|"]
    for name, r in df.iterrows():
        cells = [str(name), *[str(r[k]) for k in grid], _pm(r["uf1_mean"], r["uf1_std"]),
                 _pm(r["uar_mean"], r["uar_std"])]
        cells += [format_cell(c, r.get(c)) if r.get(c) is not None else ""
                  for c in ("d_uf1_paired", "d_uf1_paired_ci", "p_bootstrap", "mcnemar_p", "n_paired")]
        lines.append("| " + " | ".join(cells) + " |")
    note = paired_note(df) if "d_uf1_paired" in df else None
    if note:
        lines += ["", note.replace(f"against {base_name}", f"against the first point, `{base_name}`,")]
    lines += ["", "**Do not pick the best row above as the recipe to report.** Choosing a point by its UF1 "
              "on these folds is selection on the test subjects: the figure of the point chosen that way "
              "overstates how it does on unseen people."]
    lines += ["", "## Honest best: nested selection", ""]
    if nested is None:
        lines.append(f"No nested run: {nested_note or 'not available'}.")
    else:
        lines += [f"The nested run (`{NESTED}/`: the config's protocol as the outer protocol, the grid's points "
                  "as its search) chose a point in every outer fold by an inner subject-grouped CV on that "
                  "fold's training subjects only; the held-out subjects scored only the point chosen without "
                  f"them. Its UF1 {_pm(nested['uf1'], nested['uf1_std'])}, UAR "
                  f"{_pm(nested['uar'], nested['uar_std'])} (mean ± std over seeds) is the sweep's honest "
                  "estimate of its best recipe.", ""]
        total = max(1, nested["n_folds"])
        lines += ["| point | chosen in folds |", "|---|---|"]
        lines += [f"| {k} | {v} of {nested['n_folds']} ({v / total:.0%}) |" for k, v in nested["counts"].items()]
        lines += ["", f"Chosen most often: `{nested['most_chosen']}`.", "",
                  "| outer fold | seed | chosen | its inner UF1 |", "|---|---|---|---|"]
        lines += [f"| {f['fold']} | {f['seed']} | {f['chosen']} | {_cell(f['inner_uf1'])} |" for f in nested["folds"]]
    for w in df.attrs.get("warnings", []):
        lines += ["", f"> warning: {w}"]
    for n in df.attrs.get("notes", []):
        lines += ["", f"Note: {n}"]
    return "\n".join(lines) + "\n"


__all__ = ["NESTED", "Point", "expand", "nested_refusal", "nested_summary", "parse_grid", "parse_seeds",
           "search_of", "split_values", "sweep_markdown", "sweep_table"]
