"""MEGC 2019 composite benchmark: mekit's configurations in both forms the composite comes in, with
UF1 and UAR overall and per corpus (SMIC, CASME II, SAMM), beside the published figures.

The two forms:

- **frames** (``configs/megc2019_composite.yaml``, loader ``megc2019``): needs the SMIC-HS, CASME II
  and SAMM frames under ``--data-root`` (``CASME2/``, ``SAMM/``, ``SMIC/``). Where a corpus's frames
  are absent the run is skipped, saying which.
- **flow images** (``configs/megc2019_flow_images_*.yaml``, loader ``flow_images``): one 28x28
  u/v/optical-strain image per clip, as STSTNet and HTNet publish it. ``--flow-root PATH`` names a
  set (HTNet's CSV layout, or STSTNet's leave-one-subject-out folders). Without one, the script
  first writes a set with mekit's own writer (``mekit data export-flow``, HTNet layout) from the
  CASME II clips of ``--casme2-root`` into ``runs/megc2019/`` (gitignored; licensed data and
  anything derived from it never enter the repository) and runs on that: the CASME II part of the
  composite only, which every output says.

Every figure is what ``mekit evaluate`` gives for the same config (:func:`mekit.experiment.run_experiment`);
each run's report folder is ``runs/megc2019/<name>/``. The summary is printed and written to
``benchmarks/results/megc2019.md``. The published figures printed beside mekit's are constants of this
file, with their sources; they were not measured by mekit.

    .venv/bin/python benchmarks/megc2019.py                     # the default runs (6-8 min on 2 cores)
    .venv/bin/python benchmarks/megc2019.py --heavy             # + STSTNet, the authors' 800 epochs (30 min)
    .venv/bin/python benchmarks/megc2019.py --flow-root PATH    # a published flow-image set
    .venv/bin/python benchmarks/megc2019.py --seeds 3           # neural rows over seeds 0, 1, 2
    .venv/bin/python benchmarks/megc2019.py --only flow_ststnet --rerun

A finished run is reused while its resolved config (data root included) is unchanged; ``--rerun``
runs it again. Wall time is the whole run_experiment call (load, inputs, every fold, the report).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
CONFIGS = REPO / "configs"
RESULTS = REPO / "benchmarks" / "results" / "megc2019.md"
RUNS_DIR = REPO / "runs" / "megc2019"
#: where the flow-image set written from the CASME II clips goes (runs/ is gitignored)
DERIVED = RUNS_DIR / "flow_images_casme2"
#: how that set is computed: CASME II's own face crops used whole, TV-L1 at 128 px, the coding
#: sheet's apex (the published sets use the annotated apex); export_flow_image_set fixes the rest
#: (onset->apex, strain, 28x28, per-channel min-max as the published form)
EXPORT_PREPROCESS = {"detector": "none", "size": 128, "flow": "tvl1"}
CORPORA = {"smic": "SMIC", "casme2": "CASME II", "samm": "SAMM"}

#: flow stacks are not flipped (a min-max normalised flow image's mirror is not a flip; see casme2.py)
NO_FLIP = {"hflip": False, "affine": 0.0}
#: STSTNet at mekit's budget, the one benchmarked on CASME II (configs/casme2_3class_ststnet.yaml)
MEKIT_STSTNET = {"model.params": {"epochs": 30, "batch_size": 32, "lr": 0.005, "selection": "fixed", "threads": 1,
                                  "augment": NO_FLIP},
                 "imbalance.class_weight": "balanced"}

# -- published figures: NOT measured by mekit ---------------------------------------------------------
#: (method, source, Full UF1, Full UAR, {corpus: (UF1, UAR)}, how it was checked). None: not given; a
#: string: a figure quoted only approximately.
PUBLISHED: list[tuple[str, str, float | str | None, float | None, dict[str, tuple[float, float]], str]] = [
    ("STSTNet", "Liong et al., FG 2019 (paper)", 0.7353, 0.7605, {},
     "UF1 checked: the authors' per-clip predictions (STSTNet_logfile.txt in github.com/christy1206/STSTNet, "
     "442 clips) give UF1 0.7353 exactly. UAR: 0.7186 taking the log's first label column as the truth (its "
     "class counts are the composite's, 250/109/83), 0.7605 with truth and prediction swapped, i.e. the "
     "published UAR is a mean precision"),
    ("STSTNet", "the same per-clip predictions, scored by mekit's metric code", 0.7353, 0.7186,
     {"smic": (0.6801, 0.6703), "casme2": (0.8382, 0.8190), "samm": (0.6588, 0.6415)},
     "the authors' predictions, not a mekit model; recomputed from STSTNet_logfile.txt, truth = the column "
     "with the composite's class counts"),
    ("STSTNet", "the authors' released weights (STSTNet_python_logfile.txt)", 0.7209, 0.7250, {},
     "checked: the last line of that log"),
    ("STSTNet", "independent re-runs of the released code", "about 0.70", None, {},
     "as quoted; no source verified"),
    ("HTNet", "Wang et al., Neurocomputing 2024 (paper)", 0.8603, 0.8475, {},
     "as quoted (the repository shows its table as an image only). Its main_HTNet.py also reports a 'best' "
     "figure that keeps, per held-out subject, the epoch scoring best on that subject (a choice on the test "
     "fold)"),
    ("HTNet", "users' re-runs of the released code", 0.6552, 0.6521, {},
     "0.6484 / 0.6456 and 0.6552 / 0.6521, reported in the HTNet repository's thread 'FusionModel? The "
     "deviation of direct reproduction results is large' (2024)"),
]


@dataclass
class Run:
    name: str
    form: str                      # "frames" or "flow"
    config: str                    # file under configs/
    overrides: dict[str, Any] = field(default_factory=dict)
    what: str = ""
    neural: bool = False
    heavy: bool = False            # only with --heavy


RUNS = [
    Run("frames_default", "frames", "megc2019_composite.yaml", {},
        "flow descriptors (HOOF 5x5 + strain, mean-speed normalised, sqrt), spotted apex + logreg "
        "[config default; mekit's best classical recipe]"),
    Run("flow_descriptors", "flow", "megc2019_flow_images_descriptors.yaml", {},
        "flow descriptors on the u/v/strain recovered from each image + logreg [config default; best classical]"),
    Run("flow_ststnet", "flow", "megc2019_flow_images_ststnet.yaml", MEKIT_STSTNET,
        "STSTNet at mekit's budget: 30 epochs, batch 32, lr 0.005, class weights [mekit's default deep model]",
        neural=True),
    Run("flow_htnet", "flow", "megc2019_flow_images_htnet.yaml", {},
        "HTNet-style transformer (small), 20 epochs [config default]", neural=True),
    Run("flow_ststnet_published", "flow", "megc2019_flow_images_ststnet.yaml", {},
        "STSTNet with the authors' settings: 800 epochs, batch 256, lr 5e-5, no class weights [config default]",
        neural=True, heavy=True),
]


# -- the data -------------------------------------------------------------------------------------------
def show(path: Path) -> str:
    """A path as the results file names it: relative to the repository's parent where it lies there."""
    try:
        return "../" + Path(path).resolve().relative_to(REPO.parent).as_posix()
    except ValueError:
        return str(path)


def frames_status(data_root: Path) -> tuple[bool, str]:
    """Can the frames composite run? (ok, what was found or why not)."""
    from mekit.data import load_dataset
    from mekit.data.megc import PARTS
    from mekit.errors import DataError

    absent = [CORPORA[k] for k, names in PARTS.items() if not any((data_root / n).is_dir() for n in names)]
    if absent:
        return False, (f"not run: no {' or '.join(absent)} frames under {show(data_root)} (the composite "
                       "needs the SMIC-HS, CASME II and SAMM frames; coding sheets alone are not enough)")
    try:
        table = load_dataset("megc2019", data_root)
    except DataError as e:
        return False, f"not run: {e}"
    by = table.df.groupby("dataset").size().to_dict()
    return True, "frames composite: " + ", ".join(f"{CORPORA.get(k, k)} {v}" for k, v in sorted(by.items()))


def derived_flow_set(casme2_root: Path, rerun: bool) -> Path:
    """The HTNet-layout set mekit writes from the CASME II clips (megc_3class), written once."""
    from mekit.data import load_dataset
    from mekit.preprocess.export import export_flow_image_set

    stamp = DERIVED / "written.json"
    want = {"casme2_root": str(casme2_root.resolve()), "preprocess": EXPORT_PREPROCESS, "layout": "htnet"}
    if not rerun and stamp.is_file() and json.loads(stamp.read_text()).get("params") == want:
        return DERIVED
    if DERIVED.exists():
        shutil.rmtree(DERIVED)
    table = load_dataset("casme2", casme2_root, label_scheme="megc_3class")
    t0 = time.perf_counter()
    done = export_flow_image_set(table, DERIVED, layout="htnet", preprocess=EXPORT_PREPROCESS,
                                 progress=sys.stderr.isatty())
    stamp.write_text(json.dumps({"params": want, "written": done["written"], "skipped": done["skipped"],
                                 "seconds": round(time.perf_counter() - t0, 1)}, indent=2))
    return DERIVED


def flow_options(root: Path) -> dict[str, Any] | None:
    """data.options for a flow-image set: the configs' HTNet layout as shipped, {} for STSTNet's
    leave-one-subject-out folders (no CSV), None where the folder holds neither."""
    from mekit.data.flow_images import HTNET_CSV

    if (root / HTNET_CSV).is_file():
        return None  # the configs' own options
    if any((d / "u_test").is_dir() for d in root.iterdir() if d.is_dir()):
        return {}
    raise SystemExit(f"{root}: neither {HTNET_CSV} (HTNet layout) nor <subject>/u_test/ folders (STSTNet layout)")


def describe_flow_set(root: Path, options: dict | None) -> tuple[str, dict[str, int], int]:
    """A line saying what the set is, its clips per corpus and its subjects."""
    from mekit.config import load_config
    from mekit.data import load_dataset
    from mekit.evaluation.report import corpus_of

    cfg = load_config(CONFIGS / "megc2019_flow_images_descriptors.yaml",
                      {"data.root": str(root), **({"data.options": options} if options is not None else {})})
    table = load_dataset(cfg.data.loader, cfg.data.root, cfg.data.label_scheme, **cfg.data.options)
    corpus, _ = corpus_of(table.df, megc_names=True)
    counts = {k: int(v) for k, v in corpus.value_counts().sort_index().items()}
    n_subj = int(table.df["subject"].nunique())
    full = set(counts) == set(CORPORA)
    kind = "the MEGC 2019 composite" if full else (
        "NOT the composite: " + ", ".join(CORPORA.get(k, k) for k in counts) + " only")
    return f"{len(table)} clips, {n_subj} subjects ({kind})", counts, n_subj


# -- running ------------------------------------------------------------------------------------------
def resolve(run: Run, root: Path, seeds: int, options: dict | None):
    from mekit.config import load_config

    over = {**run.overrides, "data.root": str(root), "name": run.name}
    if run.form == "flow" and options is not None:
        over["data.options"] = options
    if run.neural:
        over["protocol.seeds"] = list(range(seeds))
    return load_config(CONFIGS / run.config, over)


def run_one(run: Run, root: Path, seeds: int, options: dict | None, rerun: bool) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from mekit.evaluation.validate import validate_config
    from mekit.experiment import run_experiment

    cfg = resolve(run, root, seeds, options)
    validate_config(cfg)
    out = RUNS_DIR / run.name
    stamp = out / "benchmark.json"
    text = cfg.results_yaml()
    if not rerun and stamp.is_file():
        saved = json.loads(stamp.read_text())
        if saved.get("config") == text:
            return saved["row"]
    if out.exists():
        shutil.rmtree(out)  # a fresh run, so the wall time is honest (no resumed folds)
    t0 = time.perf_counter()
    # one BLAS thread for the classical fits (faster on a shared 2-core machine); neural models set
    # torch's own thread count (model.params.threads)
    limit = None if run.neural else threadpool_limits(limits=1)
    try:
        res = run_experiment(cfg, out, progress=sys.stderr.isatty())
    finally:
        if limit is not None:
            limit.unregister()
    m = res.metrics
    meg = m.get("megc2019") or {}
    row = {"name": run.name, "form": run.form, "what": run.what, "config": run.config, "n": m["n_samples"],
           "subjects": m["n_subjects"], "protocol": m["protocol"], "per_corpus": meg.get("per_corpus", {}),
           "absent": meg.get("absent", []), "complete": meg.get("complete", False),
           "seeds": m.get("seeds"), "wall_s": round(time.perf_counter() - t0, 1)}
    out.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"config": text, "row": row}, indent=2, default=str))
    return row


# -- the tables -------------------------------------------------------------------------------------------
def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _ci(v: dict, key: str) -> str:
    ci = (v.get("ci95") or {}).get(key)
    return f"{v[key]:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def mekit_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| run | method | clips / subjects | all: UF1 [95% CI] | all: UAR [95% CI] | SMIC UF1 / UAR | "
             "CASME II UF1 / UAR | SAMM UF1 / UAR | seeds: UF1 mean ± std (all) | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        pc = r["per_corpus"]
        every = pc.get("all", {})
        cells = [f"{pc[k]['uf1']:.3f} / {pc[k]['uar']:.3f}" if k in pc else "absent" for k in CORPORA]
        sd = every.get("over_seeds", {}).get("uf1")
        seeds = f"{sd['mean']:.3f} ± {sd['std']:.3f} (n={len(r['seeds'])})" if sd else "-"
        lines.append(f"| {r['name']} | {r['what']} | {r['n']} / {r['subjects']} | {_ci(every, 'uf1')} | "
                     f"{_ci(every, 'uar')} | " + " | ".join(cells) + f" | {seeds} | {r['wall_s']:.0f} |")
    return lines


def published_table() -> list[str]:
    lines = ["| method | source | composite UF1 | composite UAR | SMIC UF1 / UAR | CASME II UF1 / UAR | "
             "SAMM UF1 / UAR | how it was checked |", "|---|---|---|---|---|---|---|---|"]
    for method, source, uf1, uar, per, how in PUBLISHED:
        cells = [f"{per[k][0]:.4f} / {per[k][1]:.4f}" if k in per else "-" for k in CORPORA]
        full = "-" if uf1 is None else uf1 if isinstance(uf1, str) else f"{uf1:.4f}"
        lines.append(f"| {method} | {source} | {full} | "
                     f"{'-' if uar is None else f'{uar:.4f}'} | " + " | ".join(cells) + f" | {how} |")
    return lines


def reference_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The same CASME II clips from frames (benchmarks/casme2.py, its stamp in runs/casme2/), when a
    flow-image row covers CASME II and that run is at hand."""
    stamp = REPO / "runs" / "casme2" / "3c_default" / "benchmark.json"
    if not stamp.is_file() or not any("casme2" in r["per_corpus"] for r in rows if r["form"] == "flow"):
        return []
    ref = json.loads(stamp.read_text())["row"]
    return ["", f"For reference, the same CASME II clips from frames with mekit's best classical recipe "
                f"(`benchmarks/casme2.py`, run `3c_default`: TV-L1 on the aligned 128 px face, spotted apex): "
                f"UF1 {ref['uf1']:.3f}, UAR {ref['uar']:.3f} over {ref['n']} clips, {ref['subjects']} subjects."]


def write_results(rows: list[dict[str, Any]], data_lines: list[str], not_run: list[str], command: str) -> str:
    head = [
        "# MEGC 2019 composite benchmarks",
        "",
        f"Written by `{command}` on {datetime.now(timezone.utc).date()} ({platform.machine()}, "
        f"{os.cpu_count()} CPU cores, shared with other jobs; no GPU).",
        "",
        "## Data",
        "",
        *[f"- {line}" for line in data_lines],
        "",
        "UF1 and UAR are pooled over all leave-one-subject-out folds, over all clips and within each corpus "
        "(the challenge's definition, protocol `megc2019`). The interval is a subject bootstrap (1,000 draws, "
        "first seed). Neural rows train a fixed epoch budget: no epoch is chosen on any data, and the last "
        "epoch's model predicts each held-out subject. Wall time: the whole run on this shared 2-core "
        "machine (an upper bound).",
        "",
        "## Measured by mekit",
        "",
    ]
    notes = ["", "Not run: " + "; ".join(not_run) + "."] if not_run else []
    pub = [
        "",
        "## Published figures (NOT measured by mekit)",
        "",
        "On the full 442-clip composite (68 subjects) unless a corpus column says otherwise. They are listed "
        "for orientation and are not comparable with a row above that is not on the composite.",
        "",
        *published_table(),
        "",
    ]
    text = "\n".join(head + mekit_table(rows) + notes + reference_lines(rows) + pub)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", type=Path, default=SHARED, help="folder holding CASME2/, SAMM/ and SMIC/ frames")
    ap.add_argument("--casme2-root", type=Path, default=SHARED / "CASME2",
                    help="CASME II, for writing a flow-image set when --flow-root is not given")
    ap.add_argument("--flow-root", type=Path, default=None,
                    help="a flow-image set (HTNet CSV layout or STSTNet leave-one-subject-out folders)")
    ap.add_argument("--seeds", type=int, default=1, help="seeds of the neural rows (0..N-1); default 1")
    ap.add_argument("--only", default="", help="comma-separated run names or glob patterns")
    ap.add_argument("--heavy", action="store_true", help="include STSTNet with the authors' 800 epochs (slow)")
    ap.add_argument("--rerun", action="store_true", help="run again even where a finished run exists")
    ap.add_argument("--list", action="store_true", help="list the runs and exit")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.seeds < 1:
        raise SystemExit("--seeds must be at least 1")
    if args.list:
        for r in RUNS:
            print(f"{r.name:26s} {r.form:6s} {r.config:42s} {r.what}" + ("  [heavy]" if r.heavy else ""))
        return
    todo = [r for r in RUNS if args.heavy or not r.heavy]
    not_run = [f"`{r.name}` ({r.what}; `--heavy`)" for r in RUNS if r.heavy and not args.heavy]
    if args.only:
        pats = [p.strip() for p in args.only.split(",") if p.strip()]
        todo = [r for r in todo if any(fnmatch.fnmatch(r.name, p) for p in pats)]
        if not todo:
            raise SystemExit(f"no run matches {args.only!r}; see --list")

    data_lines: list[str] = []
    ok, frames_line = frames_status(args.data_root)
    data_lines.append(f"Frames (`configs/megc2019_composite.yaml`): {frames_line}")
    print(data_lines[-1], flush=True)
    if not ok:
        not_run += [f"`{r.name}` (no frames composite here)" for r in todo if r.form == "frames"]
        todo = [r for r in todo if r.form != "frames"]

    flow_root, options = args.flow_root, None
    if flow_root is None:
        if not (args.casme2_root / "Cropped").is_dir():
            print(f"Flow images: no --flow-root and no CASME II at {show(args.casme2_root)} (licensed data is "
                  "never shipped with mekit): skipping the flow-image runs.")
            todo = [r for r in todo if r.form != "flow"]
            flow_root = None
        else:
            print(f"Flow images: no --flow-root; writing a set from the CASME II clips of {show(args.casme2_root)}"
                  f" with mekit's writer (HTNet layout) into {DERIVED.relative_to(REPO)} ...", flush=True)
            flow_root = derived_flow_set(args.casme2_root, args.rerun)
            data_lines.append(
                "Flow images: no published set was given (`--flow-root`), so mekit wrote one with its own writer "
                "(`export_flow_image_set`, HTNet layout: TV-L1 onset->apex flow on CASME II's own 128 px face "
                "crops, the coding sheet's apex, u/v/strain min-max scaled per image, 28x28) from the CASME II "
                "clips of the megc_3class scheme. **This is the CASME II part only, not the MEGC 2019 composite**: "
                "its figures cannot be compared with the composite's published ones (only, loosely, with a "
                "published CASME II column, whose model was trained on all three corpora).")
    else:
        options = flow_options(flow_root)
        data_lines.append(f"Flow images: the set at `{show(flow_root)}` (" + ("HTNet CSV layout" if options is None else
                                                                         "STSTNet leave-one-subject-out folders")
                          + ").")
    if flow_root is not None and any(r.form == "flow" for r in todo):
        line, counts, _ = describe_flow_set(flow_root, options)
        data_lines.append(f"The flow-image set: {line}; clips per corpus: "
                          + ", ".join(f"{CORPORA.get(k, k)} {v}" for k, v in counts.items()) + ".")
        print(data_lines[-1], flush=True)

    if not todo:
        print("Nothing to run here (see above); benchmarks/results/megc2019.md is left as it is.")
        return
    failed = {}
    for r in todo:
        print(f"... {r.name}", file=sys.stderr, flush=True)
        root = args.data_root if r.form == "frames" else flow_root
        try:
            run_one(r, root, args.seeds, options, args.rerun)
        except Exception as e:  # noqa: BLE001 - one failing run never sinks the others
            failed[r.name] = f"{type(e).__name__}: {e}"
            print(f"FAILED {r.name}: {failed[r.name]}", file=sys.stderr, flush=True)
    rows = []
    for r in RUNS:  # the table: every run finished with the config this call resolves (this call's or earlier)
        stamp = RUNS_DIR / r.name / "benchmark.json"
        root = args.data_root if r.form == "frames" else flow_root
        if root is None or not stamp.is_file():
            continue
        saved = json.loads(stamp.read_text())
        if saved.get("config") != resolve(r, root, args.seeds, options).results_yaml():
            continue
        rows.append({**saved["row"], "what": r.what})
    done = {row["name"] for row in rows}
    not_run = [n for n in not_run if n.split("`")[1] not in done]
    command = ".venv/bin/python benchmarks/megc2019.py " + " ".join(sys.argv[1:])
    text = write_results(rows, data_lines, not_run, command.strip())
    print(text)
    if failed:
        raise SystemExit("failed runs: " + "; ".join(f"{k} ({v})" for k, v in failed.items()))


if __name__ == "__main__":
    main()
