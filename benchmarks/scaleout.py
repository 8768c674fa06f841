"""Scale-out: where folds run, and what it costs.

    .venv/bin/python benchmarks/scaleout.py             # ~5 minutes on 2 cores; writes benchmarks/results/scaleout.md
    .venv/bin/python benchmarks/scaleout.py --quick     # smaller corpora, to check the script

1. The same synthetic LOSO run (the demo recipe: HOOF + logistic regression with its inner
   subject-grouped grid search, 12 subjects x 6 clips, 2 seeds: 24 fold units) in this process
   (``local``), in the local process pool (``processes``, 2 workers) and on a Ray cluster of 1 and
   of 2 one-CPU worker nodes started on this machine (``ray start`` processes on the loopback
   interface). The Ray runs are timed twice: cold (the first run after the cluster starts: every
   worker process starts and imports mekit) and warm (the same run again into another folder).
   Every run's predictions.csv is compared byte for byte with the local one.
2. Ray's overhead per task: no-op units through the ``ray`` executor (the unit's function,
   events, log records and result round trip), one at a time (latency) and 200 at once
   (throughput on 2 CPUs), and the same 200 through the process pool.
3. The projected wall time of the MEGC 2019 composite (68 LOSO folds x 5 seeds = 340 fold units)
   on N machines: the per-fold time measured on a MEGC-sized synthetic corpus (68 subjects x 6
   clips = 408 samples; the composite has 442) with the same recipe, plus the measured per-task
   overhead, in waves of N x cores folds.

The machine's 2 cores are shared, so a second run can differ by some tenths of a second; the
ratios are what to read. Run folders go to a temporary folder; the tables are printed and
written to benchmarks/results/scaleout.md.
"""

from __future__ import annotations

import argparse
import filecmp
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "scaleout.md"

#: the 2019 composite: CASME II 24 + SAMM 28 + SMIC-HS 16 subjects, one LOSO fold each
MEGC_FOLDS, MEGC_SEEDS = 68, 5


def _recipe(n_subjects: int, clips: int, seeds: list[int], name: str) -> Any:
    from mekit.config import load_config

    return load_config(None, {"name": name, "data.options": {"n_subjects": n_subjects, "clips_per_subject": clips,
                                                             "size": 64},
                              "preprocess": {"detector": "none", "size": 64, "landmarks": False, "flow": "farneback",
                                             "workers": 1},
                              "features.name": "hoof", "features.params": {"grid": 5, "bins": 8},
                              "model.name": "logreg", "protocol.name": "loso", "protocol.seeds": seeds,
                              "output.plots": False})


def _timed_run(cfg: Any, out: Path, **where: Any) -> dict[str, Any]:
    """Run ``cfg`` into ``out``; the fold stages' wall time (first folds stage_start to last
    stage_end) and the whole run's."""
    from mekit import events
    from mekit.experiment import run_experiment

    got: list = []
    t0 = time.perf_counter()
    with events.listen(got.append):
        res = run_experiment(cfg, out, resume="off", **where)
    total = time.perf_counter() - t0
    folds = [e for e in got if e.get("stage") == "folds" and e.kind in ("stage_start", "stage_end")]
    return {"folds_s": folds[-1].time - folds[0].time, "total_s": total,
            "n_folds": res.metrics["resume"]["folds_total"], "uf1": res.metrics["uf1"]}


def noop(unit: int, state: Any) -> int:
    return unit


def _overhead(executor: Any, n: int) -> dict[str, float]:
    """Seconds per no-op unit: one at a time (``latency``, after one warm-up call) and ``n`` at once
    (``batch``: wall time of the whole batch divided by ``n``)."""
    from mekit.executors import Work

    work = Work(noop, None)
    list(executor.map(work, [0]))  # warm: a worker exists
    t0 = time.perf_counter()
    for i in range(20):
        list(executor.map(work, [i]))
    latency = (time.perf_counter() - t0) / 20
    t0 = time.perf_counter()
    out = list(executor.map(work, list(range(n))))
    assert sorted(r for _, r in out) == list(range(n))
    return {"latency_s": latency, "batch_s": (time.perf_counter() - t0) / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller corpora (checks the script, not the figures)")
    ap.add_argument("--cores-per-machine", type=int, default=2, help="fold slots per machine in the projection")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="mekit-scaleout-"))
    os.environ.setdefault("MEKIT_CACHE", str(tmp / "cache"))

    from mekit.executors import get_executor
    from mekit.executors.ray_cluster import local_cluster

    subjects, clips = (6, 4) if args.quick else (12, 6)
    cfg = _recipe(subjects, clips, [0, 1], "scaleout")
    rows: list[dict[str, Any]] = []

    def row(label: str, workers: int, r: dict[str, Any], out: Path) -> None:
        same = filecmp.cmp(tmp / "local" / "predictions.csv", out / "predictions.csv", shallow=False)
        rows.append({"where": label, "workers": workers, **r, "same": same})
        print(f"{label:<24} {workers} workers: folds {r['folds_s']:6.2f} s, run {r['total_s']:6.2f} s, "
              f"predictions identical to local: {same}", flush=True)

    _timed_run(cfg, tmp / "warmup", executor="local")  # the corpus and its features into the cache
    row("local (this process)", 1, _timed_run(cfg, tmp / "local", executor="local"), tmp / "local")
    pool_cfg = _recipe(subjects, clips, [0, 1], "scaleout")
    import dataclasses

    pool_cfg = dataclasses.replace(pool_cfg, protocol=dataclasses.replace(pool_cfg.protocol, workers=2))
    row("processes (local pool)", 2, _timed_run(pool_cfg, tmp / "pool", executor="processes"), tmp / "pool")
    with get_executor("processes", workers=2) as pool:
        pool_over = _overhead(pool, 200)
    ray_over: dict[str, float] = {}
    for nodes in (1, 2):
        t0 = time.perf_counter()
        with local_cluster(nodes=nodes, cpus=1, env={"MEKIT_CACHE": os.environ["MEKIT_CACHE"]}) as address:
            up = time.perf_counter() - t0
            print(f"ray cluster of {nodes} node(s) up in {up:.1f} s", flush=True)
            with get_executor("ray", address=address) as ex:
                for kind in ("cold", "warm"):
                    out = tmp / f"ray{nodes}-{kind}"
                    row(f"ray, {nodes} node(s), {kind}", nodes, _timed_run(cfg, out, executor=ex), out)
                if nodes == 2:
                    ray_over = _overhead(ex, 200)
    print(f"no-op unit: ray {ray_over['latency_s'] * 1000:.1f} ms one at a time, {ray_over['batch_s'] * 1000:.1f} ms "
          f"each in a batch of 200; process pool {pool_over['batch_s'] * 1000:.2f} ms each", flush=True)

    # the per-fold time at the composite's size, serial
    megc_subjects, megc_clips = (20, 4) if args.quick else (MEGC_FOLDS, 6)
    mcfg = _recipe(megc_subjects, megc_clips, [0], "megc_sized")
    m = _timed_run(mcfg, tmp / "megc", executor="local")  # the folds' time does not include the features
    t_fold = m["folds_s"] / m["n_folds"]
    units = MEGC_FOLDS * MEGC_SEEDS
    per_task = ray_over["batch_s"] * 2  # the batch figure was measured on 2 CPUs: seconds of one slot per task
    two = {r["where"].rsplit(", ", 1)[1]: r["folds_s"] for r in rows if r["where"].startswith("ray, 2")}
    warm_up = two["cold"] - two["warm"]  # the workers' start on the 2-node cluster
    c = args.cores_per_machine
    projection = []
    for n in (1, 2, 4, 8, 17, 34, 68, 170):
        waves = math.ceil(units / (n * c))
        projection.append({"machines": n, "slots": n * c, "waves": waves,
                           "wall_s": waves * (t_fold + per_task) + max(warm_up, 0.0)})
    serial = units * t_fold
    print(f"MEGC-sized corpus ({megc_subjects} subjects x {megc_clips} clips): {t_fold:.2f} s per fold; "
          f"{units} fold units serial: {serial / 60:.1f} min", flush=True)
    for p in projection:
        print(f"  {p['machines']:>3} machines x {c} cores: {p['waves']:>3} waves, {p['wall_s'] / 60:6.2f} min "
              f"({serial / p['wall_s']:.1f}x)")
    load = (load_before, os.getloadavg()[0])
    print(f"load average (1 min) at the start and the end: {load[0]:.1f}, {load[1]:.1f}")
    _write(rows, pool_over, ray_over, t_fold, megc_subjects, megc_clips, projection, serial, warm_up, c,
           subjects, clips, args.quick, load)
    print(f"written: {RESULTS}")


def _write(rows: list[dict], pool_over: dict, ray_over: dict, t_fold: float, megc_subjects: int, megc_clips: int,
           projection: list[dict], serial: float, warm_up: float, cores: int, subjects: int, clips: int,
           quick: bool, load: tuple[float, float]) -> None:
    local = next(r for r in rows if r["where"].startswith("local"))
    lines = [f"# Scale-out benchmark{' (--quick)' if quick else ''}", "",
             f"`.venv/bin/python benchmarks/scaleout.py` on {os.cpu_count()} cores ({platform.machine()}, Python "
             f"{platform.python_version()}), {time.strftime('%Y-%m-%d')}. The cores are shared with other work "
             f"(load average {load[0]:.1f} at the start, {load[1]:.1f} at the end, on {os.cpu_count()} cores), so "
             "figures move between runs; read the ratios.", "",
             f"## One synthetic LOSO run, four places ({subjects} subjects x {clips} clips, 2 seeds: "
             f"{local['n_folds']} fold units; HOOF + logistic regression with its inner grid search)", "",
             "| where | workers | folds (s) | whole run (s) | speed-up of the folds | predictions.csv |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['where']} | {r['workers']} | {r['folds_s']:.2f} | {r['total_s']:.2f} | "
                     f"{local['folds_s'] / r['folds_s']:.2f}x | {'identical' if r['same'] else 'DIFFERENT'} |")
    lines += ["", "Cold: the first run after the cluster started (every Ray worker process starts and imports "
              "mekit, scikit-learn and the features' libraries); warm: the same run again. The whole run also "
              "holds loading, the features (computed here, on the driver) and the report.", "",
              "## Per-task overhead (no-op units)", "",
              "| executor | one unit at a time | each of 200 at once |", "|---|---|---|",
              f"| ray (2 one-CPU nodes) | {ray_over['latency_s'] * 1000:.1f} ms | "
              f"{ray_over['batch_s'] * 1000:.1f} ms |",
              f"| processes (pool of 2) | {pool_over['latency_s'] * 1000:.2f} ms (one unit runs in this process) | "
              f"{pool_over['batch_s'] * 1000:.2f} ms (pool start included) |", "",
              "A unit on Ray also carries its events, its log records and, for a fold, the files it wrote; the "
              "run's state (features, labels) goes to the object store once per run, not per task.", "",
              f"## Projection: the MEGC 2019 composite, {MEGC_FOLDS} LOSO folds x {MEGC_SEEDS} seeds", "",
              f"Per fold, measured on a MEGC-sized synthetic corpus ({megc_subjects} subjects x {megc_clips} clips, "
              f"this recipe, serial): **{t_fold:.2f} s**. All {MEGC_FOLDS * MEGC_SEEDS} fold units one after "
              f"another: {serial / 60:.1f} min. On N machines of {cores} cores (one fold per core), in waves of "
              f"N x {cores} folds, each fold plus the per-task overhead measured above, plus the workers' start "
              f"({max(warm_up, 0.0):.1f} s, cold minus warm). It assumes the machines' cores are free, which "
              "this machine's were not while it ran (see the load above):", "",
              "| machines | fold slots | waves | projected folds wall time | speed-up |", "|---|---|---|---|---|"]
    for p in projection:
        lines.append(f"| {p['machines']} | {p['slots']} | {p['waves']} | {p['wall_s'] / 60:.2f} min "
                     f"({p['wall_s']:.0f} s) | {serial / p['wall_s']:.1f}x |")
    lines += ["", "The features are computed once, on the driver, before any fold (a cached preprocessing is "
              "read, not redone); a network's folds take minutes each, so for neural recipes multiply by "
              "their per-fold time: the overhead then vanishes and the waves are all that count.", ""]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
