"""The Train and evaluate screen's background jobs: each calls the library function a command
calls (``mekit evaluate``, ``mekit train``, ``mekit compare``) and returns what the page shows
as JSON.

They run in a job process (:mod:`mekit.app.jobs`), so this module imports nothing heavy at the
top. ``params["config"]`` is an experiment config as plain data, built and checked by
:func:`mekit.app.routes_train.experiment_config` (paths already resolved inside the allowed
folders); it is rebuilt here with the config's own loader and checked again by the library
before any work.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

#: metrics.json entries not sent to the page (one record per fold: long, and in the report)
_NOT_SENT = ("selection_per_fold",)
#: the figures of a headline, per task (the first metrics the catalogue lists for it)
_HEADLINE = {"classification": ("uf1", "uar", "accuracy"), "intensity": ("mae", "ccc", "pearson")}


def _config(params: dict[str, Any]) -> Any:
    from mekit.config import ExperimentConfig, check_seeds, from_dict

    cfg = from_dict(ExperimentConfig, params["config"])
    check_seeds(cfg)
    return cfg


def folder_name(name: str) -> str:
    """A run's folder name: its config name, in characters every file system takes."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "run"


def evaluate(params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """``mekit evaluate``: the run folder ``<job>/<config name>/`` and its metrics."""
    from mekit.engine.factory import input_name
    from mekit.evaluation.report import excluded_summary
    from mekit.experiment import run_experiment

    cfg = _config(params)
    run = out_dir / folder_name(cfg.name)
    run_experiment(cfg, run)
    m = json.loads((run / "metrics.json").read_text())
    for key in _NOT_SENT:
        m.pop(key, None)
    files = sorted(p.name for p in run.iterdir() if p.is_file())
    headline = {k: m.get(k) for k in _HEADLINE.get(cfg.task, ()) if k in m}
    return {"name": cfg.name, "task": cfg.task, "model": cfg.model.name,
            "features": input_name(cfg) if cfg.task == "classification" else None,
            "loader": cfg.data.loader, "label_scheme": cfg.data.label_scheme, "protocol": cfg.protocol.name,
            "run": run.name, "run_dir": str(run), "files": files, "headline": headline,
            "excluded_summary": excluded_summary(m), "metrics": m}


def bundle(params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """``mekit train``: the config's model fitted on its whole dataset, as ``<name>.mekit``."""
    from mekit.engine.predict import train_bundle

    cfg = _config(params)
    path = train_bundle(cfg, out_dir / f"{folder_name(cfg.name)}.mekit")
    return {"name": cfg.name, "model": cfg.model.name, "bundle": path.name, "size": path.stat().st_size,
            "evaluation": params.get("evaluation")}


def compare(params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """``mekit compare``: one table over the run folders (the first is the baseline), saved as
    ``compare.csv`` and ``compare.md``; the notes are those of the Markdown table."""
    from mekit.evaluation.compare import compare_runs, to_markdown

    df = compare_runs(list(params["runs"]))
    df.to_csv(out_dir / "compare.csv")
    md = to_markdown(df)
    (out_dir / "compare.md").write_text(md)
    # the warnings are sent on their own (the page marks them); the Markdown repeats them as notes
    notes = [" ".join(n.replace("`", "").split()) for n in md.split("\n\n")[1:]
             if n.strip() and not n.startswith("**Warning:**")]
    rows = [{"run": str(run), **{str(k): v for k, v in r.items()}} for run, r in df.iterrows()]
    return {"baseline": df.attrs.get("baseline"), "columns": ["run", *map(str, df.columns)], "rows": rows,
            "notes": notes, "warnings": list(df.attrs.get("warnings", [])),
            "files": ["compare.csv", "compare.md"]}


__all__ = ["bundle", "compare", "evaluate", "folder_name"]
