"""Run a sweep: every point of a grid (:mod:`mekit.evaluation.sweep`) as a full run over the given
seeds, on one executor, then the nested-selection run over the same points, then the sweep's
table.

Layout of the sweep's folder ``out``::

    out/<point>/       a full run per point (report.md, metrics.json, predictions.csv, folds/...)
    out/nested/        the config's protocol as the outer protocol of ``protocol: nested``, the
                       points as its ``search``: the sweep's honest best
    out/sweep.csv      one row per point (and nested): UF1/UAR mean and std over seeds, paired tests
    out/sweep.md       the same, with the recipe each outer fold of the nested run chose

Started again with the same folder, a sweep reuses every finished run whose resume stamp (config,
data, mekit code; :func:`mekit.experiment.resume_stamp`) still matches, and resumes the others
from their finished folds. The executor only says where folds run: it never changes a result or
a stamp, so a sweep begun on one machine can be finished on a cluster.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mekit import events
from mekit.config import ExperimentConfig, load_config
from mekit.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    """What :func:`run_sweep` did: the table (``sweep.csv``), the nested summary (None without a
    nested run, ``nested_note`` says why), the points and the runs reused as they were."""

    table: Any
    points: list[Any]
    out_dir: Path
    nested: dict[str, Any] | None = None
    nested_note: str | None = None
    reused: list[str] = field(default_factory=list)


def _config(path: str | Path | None, overrides: dict[str, Any], seeds: list[int] | None) -> ExperimentConfig:
    over = dict(overrides)
    if seeds is not None:
        over["protocol.seeds"] = list(seeds)
    return load_config(path, over)


def _point_config(base: ExperimentConfig, path: str | Path | None, overrides: dict[str, Any], point: Any,
                  seeds: list[int] | None, recipe: bool) -> ExperimentConfig:
    """A point's config. A point that only changes the recipe (features, model, preprocessing,
    imbalance) is derived from the base config exactly as the nested run derives its candidate
    (:func:`mekit.tasks.recipes.derive`: a new model starts from its own default parameters), so
    a point's run and the nested run's candidate are one recipe; other points are the config file
    with the point's overrides."""
    import dataclasses

    if recipe:
        try:
            from mekit.tasks.recipes import derive
        except ImportError:  # a mekit without recipes: plain overrides
            derive = None
        if derive is not None:
            _, cfg = derive(base, dict(point.overrides), f"--grid point {point.name}")
            return dataclasses.replace(cfg, name=point.name)
    return _config(path, {**overrides, **point.overrides, "name": point.name}, seeds)


def _finished(run_dir: Path, cfg: ExperimentConfig, table: Any) -> bool:
    """Whether ``run_dir`` holds a finished run of ``cfg`` on ``table`` (its report written, its
    stamp the one this run would have)."""
    from mekit.experiment import resume_stamp

    try:
        m = json.loads((run_dir / "metrics.json").read_text())
        old = json.loads((run_dir / "folds" / "stamp.json").read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(m, dict) and "uf1" in m and (run_dir / "predictions.csv").is_file()
            and old == resume_stamp(cfg, table))


def run_sweep(config: str | Path | None, grid: dict[str, list[Any]], out: str | Path, *,
              overrides: dict[str, Any] | None = None, seeds: list[int] | None = None, executor: Any = None,
              address: str | None = None, nested: bool = True, n_boot: int = 2000) -> SweepResult:
    """Run every point of ``grid`` (``{dotted key: [values]}``) on the config at ``config`` (with
    ``overrides``) over ``seeds`` (default the config's ``protocol.seeds``) as a full run in
    ``out/<point>/``, each fold on ``executor`` (``local``, ``processes``, ``ray`` at
    ``address``, or an executor object; default the config's ``protocol.executor``); then, with
    ``nested``, the nested-selection run in ``out/nested/``; then ``sweep.csv`` and ``sweep.md``.
    A classification task only (UF1, UAR and the paired tests are classification figures)."""
    from mekit.evaluation import sweep as sw
    from mekit.evaluation.protocols import PROTOCOLS
    from mekit.evaluation.validate import validate_config
    from mekit.executors import Executor, get_executor
    from mekit.experiment import load_with_progress, run_experiment

    out = Path(out)
    overrides = dict(overrides or {})
    points = sw.expand(grid)
    base = _config(config, overrides, seeds)
    if base.task != "classification":
        raise ConfigError(f"a sweep compares classification runs (UF1, UAR, paired tests); the config's task is "
                          f"{base.task!r}")
    note = sw.nested_refusal(grid, base.protocol.name)
    recipe = not any(k.split(".")[0] in sw.NOT_A_RECIPE for k in grid)
    configs = []
    for p in points:  # every point checked before any run starts
        cfg = _point_config(base, config, overrides, p, seeds, recipe)
        validate_config(cfg)
        configs.append(cfg)
    seeds = list(base.protocol.seeds)
    if note is None and "nested" not in PROTOCOLS:
        note = "this mekit has no nested protocol"
    if note is None and not nested:
        note = "not asked for"
    nested_cfg = None
    if note is None:
        outer = {"outer": base.protocol.name, "outer_params": dict(base.protocol.params)}
        nested_cfg = _config(config, {**overrides, "name": sw.NESTED, "search": sw.search_of(points),
                                      "protocol": {"name": "nested", "params": outer, "seeds": seeds}}, None)
        validate_config(nested_cfg)
    runs = [(p.name, c) for p, c in zip(points, configs)] + ([(sw.NESTED, nested_cfg)] if nested_cfg else [])
    out.mkdir(parents=True, exist_ok=True)
    tables: dict[str, Any] = {}
    reused: list[str] = []
    owned = not isinstance(executor, Executor)
    ex = get_executor(executor or base.protocol.executor, address=address or base.protocol.address) \
        if owned else executor
    try:
        with events.Stage("sweep", len(runs), points=len(points)) as stage:
            for name, cfg in runs:
                data_key = json.dumps([cfg.data.loader, cfg.data.root, cfg.data.label_scheme, cfg.data.options],
                                      sort_keys=True, default=str)
                if data_key not in tables:
                    tables[data_key] = load_with_progress(cfg)
                table = tables[data_key]
                if _finished(out / name, cfg, table):
                    log.info("sweep: %s is finished in %s (same config, data and code); reused", name, out / name)
                    reused.append(name)
                else:
                    run_experiment(cfg, out / name, resume="auto", table=table, executor=ex)
                stage.advance(point=name, reused=name in reused)
    finally:
        if owned:
            ex.close()
    summary = sw.nested_summary(out / sw.NESTED) if nested_cfg is not None else None
    df = sw.sweep_table(out, points, nested=nested_cfg is not None, n_boot=n_boot)
    df.to_csv(out / "sweep.csv")
    (out / "sweep.md").write_text(sw.sweep_markdown(df, grid, seeds, str(config or "the default config"), summary,
                                                    note, ex.name))
    if summary is not None:
        log.info("sweep: nested selection UF1 %.3f; chosen most often: %s", summary["uf1"] or float("nan"),
                 summary["most_chosen"])
    return SweepResult(df, points, out, summary, note, reused)


__all__ = ["SweepResult", "run_sweep"]
