"""Fault injection: kill preprocessing, training and evaluation part-way, resume, compare.

For each scenario the script

1. runs the command once, uninterrupted, into a reference folder (and times it: ``T``);
2. starts it again in the same (emptied) folder, in its own process group, and kills it with
   SIGKILL after a delay drawn with ``random.Random(--seed)`` uniformly over the reference's
   work (from the moment the run creates its first folder, so not during the interpreter's
   start-up and imports, to its end; over ``[0.1 T, 0.9 T]`` for training), ``--kills`` times in
   a row on the same folder. Serial runs are killed as a process group; runs with
   worker processes (``protocol.workers=2`` / ``preprocess workers=2``) have only their parent
   killed, as an out-of-memory killer or a closed terminal would, and every process that
   carries the run's marker (an environment variable inherited by every fork; found with
   psutil when installed, else in ``/proc/*/environ``) still alive a second later is counted
   as an orphan, then killed so that it cannot disturb the next step;
3. runs the command to completion on the killed folder and compares the results with the
   reference: ``predictions.csv`` byte for byte and ``metrics.json`` without its timing
   fields and its ``resume`` record
   (evaluation), the arrays and metadata of every cache entry and the bytes of the
   generated corpus (preprocessing), every member of the bundle (training).

It prints one row per scenario: kills, resumed identical (yes/no), orphans found, and what
was left behind (per-epoch checkpoints a killed neural fold resumed from, fold folders
finished before the last kill). Exit status 1 when a resumed result differs or an orphan
was found.

Everything runs on the built-in synthetic corpus with a fresh ``MEKIT_CACHE`` under
``--workdir``: evaluation and training on 4 subjects x 3 clips at 64 px (Farneback flow),
sharing one preprocessed cache warmed first, so kills land in the folds; preprocessing on
8 x 5 clips at 96 px (TV-L1), generated and preprocessed from scratch, so kills land in
corpus generation as well as in clips being written.

Run on demand (not part of the test suite; about 3 minutes on 2 cores)::

    .venv/bin/python benchmarks/faults.py [--kills 2] [--seed 0] [--only evaluate]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARKER = "MEKIT_FAULT_RUN"

DATA = {"loader": "synthetic", "label_scheme": None,
        "options": {"n_subjects": 4, "clips_per_subject": 3, "size": 64}}
PREPROCESS = {"detector": "none", "size": 64, "landmarks": False, "flow": "farneback", "workers": 1}
LOGREG = {"name": "fault_logreg", "seed": 0, "data": DATA, "preprocess": PREPROCESS,
          "features": {"name": "hoof", "params": {"grid": 3, "bins": 8}},
          "model": {"name": "logreg", "params": {"grid": {"C": [0.1, 10.0]}, "inner_folds": 2}},
          "protocol": {"name": "loso"}, "output": {"plots": False}}
#: enough epochs that a fold lasts about a second, so kills land inside training and the
#: per-epoch checkpoint (folds/seed0/<fold>/train_state.pt) is what a resumed fold starts from
STSTNET = {**LOGREG, "name": "fault_ststnet", "features": {"name": "flow", "params": {"size": 16}},
           "model": {"name": "ststnet", "params": {"epochs": 60, "selection": "fixed", "batch_size": 4,
                                                   "threads": 1, "augment": {"affine": 0.0}}}}
#: the preprocessing scenarios: a larger corpus and TV-L1 flow, so that a run lasts long enough
#: (several seconds after start-up) for kills to land while clips are being written
PREPROCESS_DATA = {"n_subjects": 8, "clips_per_subject": 5, "size": 96}
PREPROCESS_ONLY = {"detector": "none", "size": 96, "landmarks": False, "flow": "tvl1"}
#: metrics.json fields that describe how a run went (times, folds read back from disk), not results
TIMING_KEYS = ("timing_s", "figures", "resume")


# -----------------------------------------------------------------------------------------
# processes
# -----------------------------------------------------------------------------------------
def _marked_pids(token: str) -> list[int]:
    """Live processes whose environment holds ``MEKIT_FAULT_RUN=token`` (zombies excluded)."""
    needle = f"{MARKER}={token}".encode()
    try:
        import psutil

        out = []
        for p in psutil.process_iter(["pid", "status"]):
            try:
                if p.info["status"] != psutil.STATUS_ZOMBIE and p.environ().get(MARKER) == token:
                    out.append(p.pid)
            except (psutil.Error, OSError):
                continue
        return sorted(out)
    except ImportError:
        pass
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if needle not in (d / "environ").read_bytes().split(b"\0"):
                continue
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            out.append(int(d.name))
    return sorted(out)


def _kill_all(token: str) -> None:
    for _ in range(20):
        pids = _marked_pids(token)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def _env(workdir: Path, cache: Path, token: str) -> dict[str, str]:
    return {**os.environ, "MEKIT_CACHE": str(cache), MARKER: token, "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _wait_for(proc: subprocess.Popen, start: Path | None, limit: float) -> float | None:
    """Seconds until ``start`` exists (0 without one); None when the process ended first."""
    t = time.perf_counter()
    if start is None:
        return 0.0
    while not start.exists():
        if proc.poll() is not None or time.perf_counter() - t > limit:
            return None
        time.sleep(0.01)
    return time.perf_counter() - t


def run_to_end(cmd: list[str], env: dict[str, str], log: Path, start: Path | None = None,
               timeout: float = 300) -> tuple[float, float]:
    """Run ``cmd`` to completion: (seconds in all, seconds until ``start`` appeared)."""
    t = time.perf_counter()
    with open(log, "ab") as f:
        f.write(f"\n$ {' '.join(cmd)}\n".encode())
        f.flush()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        t_start = _wait_for(proc, start, timeout) or 0.0
        rc = proc.wait(timeout)
    if rc != 0:
        raise RuntimeError(f"command failed (exit {rc}); see {log}")
    return time.perf_counter() - t, t_start


def run_and_kill(cmd: list[str], env: dict[str, str], log: Path, delay: float, parent_only: bool,
                 token: str, start: Path | None = None) -> tuple[bool, int]:
    """Start ``cmd``, SIGKILL it ``delay`` s after ``start`` appears (after it starts, without
    one); returns (killed before it finished, orphans)."""
    with open(log, "ab") as f:
        f.write(f"\n$ {' '.join(cmd)}   # killed {delay:.2f} s after {start or 'start'}\n".encode())
        f.flush()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            if _wait_for(proc, start, 300) is None:
                proc.wait(300)
                return False, 0
            proc.wait(delay)
            return False, 0  # finished first
        except subprocess.TimeoutExpired:
            pass
        if parent_only:
            os.kill(proc.pid, signal.SIGKILL)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(1.0)
    orphans = len(_marked_pids(token))
    _kill_all(token)  # whatever survived must not write into the folder the resumed run uses
    return True, orphans


# -----------------------------------------------------------------------------------------
# comparisons
# -----------------------------------------------------------------------------------------
def _metrics(path: Path) -> dict:
    m = json.loads(path.read_text())
    for k in TIMING_KEYS:
        m.pop(k, None)
    return m


def compare_evaluation(ref: Path, got: Path) -> list[str]:
    diffs = []
    if (ref / "predictions.csv").read_bytes() != (got / "predictions.csv").read_bytes():
        a = (ref / "predictions.csv").read_text().splitlines()
        b = (got / "predictions.csv").read_text().splitlines()
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        diffs.append(f"predictions.csv differs (first at line {first + 1}: {a[first:first + 1]} vs "
                     f"{b[first:first + 1]})")
    ma, mb = _metrics(ref / "metrics.json"), _metrics(got / "metrics.json")
    if ma != mb:
        keys = sorted(k for k in set(ma) | set(mb) if ma.get(k) != mb.get(k))
        diffs.append(f"metrics.json differs in {keys}")
    return diffs


def _npz(path: Path) -> dict:
    """A cache entry's arrays and metadata, without its own key (a hash that covers the source
    files' modification times, so it differs between two generations of the same corpus)."""
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        out = {k: (z[k].dtype.str, z[k].shape, z[k].tobytes()) for k in z.files if k != "__meta__"}
        if "__meta__" in z.files:
            meta = json.loads(str(z["__meta__"]))
            meta.pop("key", None)
            out["__meta__"] = meta
    return out


def _is_temporary(rel: str) -> bool:
    return any(part.startswith(".") or part.endswith(".tmp") for part in rel.split("/"))


def stray_temporaries(root: Path) -> tuple[int, float]:
    """(count, MiB) of files under hidden or temporary folders/files that a kill left behind."""
    files = [p for p in root.rglob("*") if p.is_file() and _is_temporary(p.relative_to(root).as_posix())]
    return len(files), sum(p.stat().st_size for p in files) / 2**20


def compare_tree(ref: Path, got: Path, what: str, keyed: bool = False) -> list[str]:
    """Same files; .npz compared by arrays and metadata (zip timestamps differ), others byte for
    byte; temporaries are ignored (see :func:`stray_temporaries`). ``keyed``: a preprocessing
    cache (<stage>/<key>/<sample>.npz), matched by stage and sample whatever the key."""
    def files(root: Path) -> dict[str, Path]:
        out = {}
        for p in root.rglob("*"):
            rel = p.relative_to(root).as_posix()
            if p.is_file() and not _is_temporary(rel):
                parts = rel.split("/")
                out["/".join([parts[0], parts[-1]]) if keyed and len(parts) == 3 else rel] = p
        return out

    fa, fb = files(ref), files(got)
    diffs = []
    only_a, only_b = sorted(set(fa) - set(fb)), sorted(set(fb) - set(fa))
    if only_a:
        diffs.append(f"{what}: {len(only_a)} file(s) missing after resume, e.g. {only_a[:2]}")
    if only_b:
        diffs.append(f"{what}: {len(only_b)} extra file(s) after resume, e.g. {only_b[:2]}")
    changed = []
    for k in sorted(set(fa) & set(fb)):
        if k.endswith(".npz"):
            same = _npz(fa[k]) == _npz(fb[k])
        else:
            same = fa[k].read_bytes() == fb[k].read_bytes()
        if not same:
            changed.append(k)
    if changed:
        diffs.append(f"{what}: {len(changed)} file(s) differ, e.g. {changed[:2]}")
    return diffs


def compare_bundle(ref: Path, got: Path) -> list[str]:
    with zipfile.ZipFile(ref) as za, zipfile.ZipFile(got) as zb:
        if sorted(za.namelist()) != sorted(zb.namelist()):
            return [f"bundle members differ: {za.namelist()} vs {zb.namelist()}"]
        return [f"bundle member {n} differs" for n in za.namelist() if za.read(n) != zb.read(n)]


# -----------------------------------------------------------------------------------------
# scenarios
# -----------------------------------------------------------------------------------------
@dataclass
class Scenario:
    name: str
    kind: str  # evaluate | preprocess | train
    config: dict | None = None
    workers: int = 1

    def start(self, folder: Path) -> Path | None:
        """A path the command creates once its imports are done and its work begins: kill delays
        are drawn over the work, not over the interpreter's start-up."""
        if self.kind == "evaluate":
            return folder / "out" / "folds"  # made by the runner once the corpus is loaded
        if self.kind == "preprocess":
            return folder / "mekit-cache"  # made when the corpus is looked up
        return None

    def command(self, folder: Path, cfg_path: Path | None) -> list[str]:
        py = [sys.executable, "-m", "mekit"]
        if self.kind == "evaluate":
            return [*py, "evaluate", "--config", str(cfg_path), "--out", str(folder / "out"),
                    f"protocol.workers={self.workers}"]
        if self.kind == "train":
            return [*py, "train", "--config", str(cfg_path), "--out", str(folder / "model.mekit")]
        opts = [x for k, v in PREPROCESS_DATA.items() for x in ("--option", f"{k}={v}")]
        over = [f"{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in PREPROCESS_ONLY.items()]
        return [*py, "preprocess", "synthetic", *over, f"workers={self.workers}",
                f"cache_dir={folder / 'preprocess-cache'}", *opts]


@dataclass
class Outcome:
    scenario: Scenario
    kills: int = 0
    identical: bool | None = None
    orphans: int = 0
    notes: list[str] = field(default_factory=list)
    diffs: list[str] = field(default_factory=list)


SCENARIOS = [
    Scenario("preprocess, serial", "preprocess", workers=1),
    Scenario("preprocess, workers=2", "preprocess", workers=2),
    Scenario("evaluate logreg, serial", "evaluate", LOGREG, 1),
    Scenario("evaluate logreg, workers=2", "evaluate", LOGREG, 2),
    Scenario("evaluate ststnet, serial", "evaluate", STSTNET, 1),
    Scenario("evaluate ststnet, workers=2", "evaluate", STSTNET, 2),
    Scenario("train ststnet", "train", STSTNET, 1),
]


def _write_config(path: Path, cfg: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_scenario(sc: Scenario, root: Path, shared_cache: Path, kills: int, rng: random.Random,
                 log: Path) -> Outcome:
    out = Outcome(sc)
    slug = "".join(c if c.isalnum() else "_" for c in sc.name)
    base = root / slug
    shutil.rmtree(base, ignore_errors=True)
    # Both runs use the same folder (paths enter cache keys and reports): the reference is
    # made there first and moved aside.
    ref, got = base / "reference", base / "run"
    got.mkdir(parents=True)
    cfg_path = _write_config(base / "config.yaml", sc.config) if sc.config else None
    # preprocessing generates its corpus and cache from scratch; the others share the warmed
    # cache so that kills land in the folds
    cache = got / "mekit-cache" if sc.kind == "preprocess" else shared_cache
    token = uuid.uuid4().hex
    cmd = sc.command(got, cfg_path)
    env = _env(root, cache, token)
    t_ref, t_start = run_to_end(cmd, env, log, sc.start(got))
    work = t_ref - t_start
    got.rename(ref)
    got.mkdir()
    for _ in range(kills):
        delay = rng.uniform(0.05 * work, 0.95 * work) if t_start else rng.uniform(0.1 * t_ref, 0.9 * t_ref)
        killed, orphans = run_and_kill(cmd, env, log, delay, parent_only=sc.workers > 1, token=token,
                                       start=sc.start(got))
        out.kills += killed
        out.orphans += orphans
        if not killed:
            out.notes.append(f"finished before the kill at {delay:.1f} s")
    states = list(got.rglob("train_state.pt"))
    if states:
        out.notes.append(f"{len(states)} mid-fold checkpoint(s) resumed")
    done = list(got.glob("out/folds/*/*/predictions.csv"))
    if sc.kind == "evaluate":
        out.notes.append(f"{len(done)} fold(s) done before resume")
    run_to_end(cmd, env, log)
    if sc.kind == "evaluate":
        out.diffs = compare_evaluation(ref / "out", got / "out")
    elif sc.kind == "train":
        out.diffs = compare_bundle(ref / "model.mekit", got / "model.mekit")
    else:
        out.diffs = (compare_tree(ref / "preprocess-cache", got / "preprocess-cache", "preprocess cache", True)
                     + compare_tree(ref / "mekit-cache" / "synthetic", got / "mekit-cache" / "synthetic",
                                    "synthetic corpus"))
    n_tmp, mib = stray_temporaries(got)
    if n_tmp:
        out.notes.append(f"{n_tmp} temporary file(s) left behind ({mib:.1f} MiB)")
    out.identical = not out.diffs
    out.notes.insert(0, f"T={t_ref:.1f}s" + (f" (work {work:.1f}s)" if t_start else ""))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=2, help="kills per scenario before the resuming run")
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill delays")
    ap.add_argument("--only", default=None, help="run scenarios whose name contains this text")
    ap.add_argument("--workdir", type=Path, default=REPO / "runs" / "faults")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    root = args.workdir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    log = root / "faults.log"
    log.write_text("")
    scenarios = [s for s in SCENARIOS if not args.only or args.only in s.name]
    shared = root / "shared-cache"
    if any(s.kind != "preprocess" for s in scenarios):
        t = time.perf_counter()
        warm = root / "warm"
        warm.mkdir(exist_ok=True)
        for cfg in {id(s.config): s.config for s in scenarios if s.config}.values():
            # one serial fold-free pass fills the synthetic corpus and the preprocessing cache
            c = _write_config(warm / f"{cfg['name']}.yaml", {**cfg, "model": {**cfg["model"]}})
            run_to_end([sys.executable, "-m", "mekit", "evaluate", "--config", str(c), "--out",
                        str(warm / cfg["name"])], _env(root, shared, uuid.uuid4().hex), log)
        print(f"cache warmed in {time.perf_counter() - t:.1f} s")
    results = []
    for sc in scenarios:
        t = time.perf_counter()
        try:
            res = run_scenario(sc, root, shared, args.kills, rng, log)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            res = Outcome(sc, identical=False, diffs=[f"error: {e}"])
        results.append(res)
        print(f"  {sc.name}: {time.perf_counter() - t:.1f} s", flush=True)
    print()
    print(f"{'scenario':30} {'kills':>5} {'resumed identical':>17} {'orphans found':>13}  notes")
    for r in results:
        ident = "-" if r.identical is None else "yes" if r.identical else "no"
        print(f"{r.scenario.name:30} {r.kills:5d} {ident:>17} {r.orphans:13d}  {'; '.join(r.notes)}")
    for r in results:
        for d in r.diffs:
            print(f"  {r.scenario.name}: {d}")
    print(f"\nlog: {log}")
    return 0 if all(r.identical and not r.orphans for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
