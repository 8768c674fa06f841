"""The ``ray`` executor: every unit a task of a Ray cluster (``ray start --head`` on one machine,
``ray start --address HOST:PORT`` on the others).

Each unit is one task with declared resources: ``num_cpus`` CPUs (the task's native thread pools
are fixed to that many, :func:`~mekit.executors.base.fixed_threads`) and, for neural units on a
cluster that has GPUs, ``gpus_per_task`` GPUs. A worker killed part-way is retried
(``max_retries``); an error raised by the unit itself is not retried, it stops the run as it
would locally.

Nothing lives only on a worker: a unit runs in a scratch folder there, with the files its local
folder already holds (a fold's checkpoint), and returns its result, the files it wrote, the
events it emitted and its log records. This process writes the files into the local folder
(the done markers last), emits the events and the records in the order they happened, then
reports the result, so a terminal, run.log or the web app see what they see for a local run.
Events arrive when a unit finishes rather than as it emits them.

Every worker must run the same mekit code as this process (a result must not depend on where it
ran): a worker whose code differs stops the run, naming its host.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mekit import events
from mekit.errors import ConfigError, MekitError
from mekit.executors.base import (Executor, Work, changed_files, collect_records, fixed_threads, read_files,
                                  replay_records, write_files)

log = logging.getLogger(__name__)


class ClusterError(MekitError):
    """The cluster could not run a unit (a worker died more often than ``max_retries``, a node
    was lost, a worker runs other code)."""


class RayExecutor(Executor):
    """Units as Ray tasks on the cluster at ``address`` (``HOST:PORT``; default ``$RAY_ADDRESS``,
    else a Ray instance started on this machine for the run). ``num_cpus``: CPUs declared per
    task, and its thread count; ``gpus_per_task``: GPUs of a neural unit where the cluster has
    any; ``max_retries``: times a task whose worker died is run again."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int = 1, gpus_per_task: float = 1.0,
                 max_retries: int = 3) -> None:
        if isinstance(num_cpus, bool) or not isinstance(num_cpus, int) or num_cpus < 1:
            raise ConfigError(f"executor ray: num_cpus {num_cpus!r}; expected a positive integer")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(f"executor ray: max_retries {max_retries!r}; expected a whole number >= 0")
        self.address = address or None
        self.num_cpus, self.gpus_per_task, self.max_retries = num_cpus, float(gpus_per_task), max_retries
        self._ray: Any = None
        self._owns = False
        self._code: str | None = None

    def describe(self) -> str:
        where = self.address or os.environ.get("RAY_ADDRESS") or "a Ray instance on this machine"
        return f"ray ({where})"

    # -- the connection -----------------------------------------------------------------------
    def connect(self) -> Any:
        """Connect to the cluster (once; a connection this process already has is used as it is)."""
        if self._ray is not None:
            return self._ray
        try:
            import ray
        except ImportError:
            raise ConfigError("executor ray: the ray package is not installed; expected ray==2.60.0 "
                              "(pip install ray==2.60.0)") from None
        if not ray.is_initialized():
            address = self.address or os.environ.get("RAY_ADDRESS") or None
            kwargs: dict[str, Any] = {"address": address, "logging_level": logging.WARNING, "log_to_driver": False}
            if address is None:
                kwargs["include_dashboard"] = False
            else:
                _check_reachable(address)
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise ConfigError(f"executor ray: cannot connect to the cluster at {address or 'this machine'} "
                                  f"({first}); expected a running cluster: `ray start --head --port PORT` on one "
                                  "machine, `ray start --address HOST:PORT` on the others, then --address "
                                  "HOST:PORT or RAY_ADDRESS") from None
            self._owns = True
        from mekit.fingerprint import code_version

        self._ray, self._code = ray, code_version()
        res = ray.cluster_resources()
        log.info("Ray cluster: %g CPUs, %g GPUs on %d nodes", res.get("CPU", 0), res.get("GPU", 0),
                 sum(1 for n in ray.nodes() if n.get("Alive")))
        return ray

    def close(self) -> None:
        if self._ray is not None and self._owns:
            self._ray.shutdown()
        self._ray, self._owns = None, False

    def gpus(self, work: Work) -> float:
        """GPUs a unit of ``work`` asks for: ``gpus_per_task`` for a neural unit where the cluster
        has GPUs, else none."""
        if not work.neural:
            return 0.0
        return self.gpus_per_task if self.connect().cluster_resources().get("GPU", 0) > 0 else 0.0

    # -- running ------------------------------------------------------------------------------
    def map(self, work: Work, units: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        if not units:
            return
        ray = self.connect()
        task = ray.remote(run_unit).options(num_cpus=self.num_cpus, num_gpus=self.gpus(work),
                                            max_retries=self.max_retries, retry_exceptions=False)
        spec = {"fn": work.fn, "relocate": work.relocate, "last": tuple(work.last), "events": events.active(),
                "log_level": logging.getLogger("mekit").getEffectiveLevel(), "threads": self.num_cpus}
        spec_ref, state_ref = ray.put(spec), ray.put(work.state)  # once for every task
        pending: dict[Any, tuple[int, Path | None]] = {}
        try:
            for pos, unit in enumerate(units):
                folder = work.folder_of(unit)
                sent = None
                if folder is not None:
                    sent = read_files(folder, work.inputs(unit) if work.inputs is not None else None)
                pending[task.remote(spec_ref, state_ref, unit, work.tags_of(unit), sent)] = pos, folder
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    pos, folder = pending.pop(ref)
                    out = self._get(ray, ref)
                    if out["code"] != self._code:
                        raise ClusterError(f"the Ray worker on {out['host']} runs mekit {out['code']}, this machine "
                                           f"{self._code}; expected the same mekit code on every machine of the "
                                           "cluster (a result must not depend on where it ran)")
                    if folder is not None:
                        write_files(folder, out["files"], out["removed"])
                    _replay(out["events"], out["logs"])
                    yield pos, out["result"]
        finally:
            for ref in pending:  # the run stopped (an error, Ctrl-C): nothing keeps computing for it
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)

    @staticmethod
    def _get(ray: Any, ref: Any) -> dict[str, Any]:
        from ray import exceptions as rex

        try:
            return ray.get(ref)
        except rex.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, BaseException):  # the unit's own error, as a local run raises it
                raise cause from None
            raise
        except rex.RayError as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ClusterError(f"the Ray cluster could not run a unit: {type(e).__name__}: {first}") from None


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail at once, in one line, when nothing listens at ``HOST:PORT`` (Ray itself retries an
    unreachable cluster for minutes before it gives up). Other forms (``auto``) are left to Ray."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "/" in host:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise ConfigError(f"executor ray: nothing answers at {address} ({why}); expected the address of a running "
                          "cluster's head (`ray start --head --port PORT` prints it)") from None


def _replay(evs: list[events.Event], records: list[dict[str, Any]]) -> None:
    """A unit's events and log records, here, in the order they happened there."""
    items = [(ev.time, 0, i) for i, ev in enumerate(evs)] + [(float(r.get("created", 0)), 1, i)
                                                           for i, r in enumerate(records)]
    for _, kind, i in sorted(items):
        if kind == 0:
            events.deliver(evs[i])
        else:
            replay_records([records[i]])


@functools.lru_cache(maxsize=1)
def _worker_code() -> str:
    from mekit.fingerprint import code_version

    return code_version()


def run_unit(spec: dict[str, Any], state: Any, unit: Any, tags: dict[str, Any],
             sent: list[tuple[str, bytes]] | None) -> dict[str, Any]:
    """One unit in a Ray task: in a scratch folder holding the files ``sent`` (None: the unit
    writes no files), with the task's thread count, its events and mekit's log records
    collected; returns them with the result and the files the unit wrote."""
    got: list[events.Event] = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(fixed_threads(spec["threads"]))
        records = stack.enter_context(collect_records(spec["log_level"]))
        files: list[tuple[str, bytes]] = []
        removed: list[str] = []
        scratch = None
        if sent is not None:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mekit-unit-")))
            write_files(scratch, sent)
            unit = spec["relocate"](unit, scratch)
        with contextlib.ExitStack() as inner:
            if spec["events"]:
                inner.enter_context(events.listen(got.append))
            inner.enter_context(events.fields(**tags))
            result = spec["fn"](unit, state)
        if scratch is not None:
            files, removed = changed_files(scratch, sent or [], spec["last"])
    return {"result": result, "files": files, "removed": removed, "events": got, "logs": records,
            "code": _worker_code(), "host": socket.gethostname(), "pid": os.getpid()}


# ---------------------------------------------------------------------------------------
# a cluster on this machine (tests, benchmarks, trying the executor out)
# ---------------------------------------------------------------------------------------
def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _ray_command() -> list[str]:
    import shutil
    import sys

    here = Path(sys.executable).with_name("ray")  # the environment's own ray, not one on PATH
    found = str(here) if here.exists() else shutil.which("ray")
    if found is None:
        raise ConfigError("executor ray: the `ray` command is not installed; expected ray==2.60.0")
    return [found]


@contextlib.contextmanager
def local_cluster(nodes: int = 2, cpus: int = 1, host: str = "127.0.0.2", object_store_mb: int = 100,
                  env: dict[str, str] | None = None, timeout: float = 120.0) -> Iterator[str]:
    """A Ray cluster of ``nodes`` nodes (a head and ``nodes - 1`` workers) of ``cpus`` CPUs each,
    started as separate ``ray start --block`` processes on this machine; yields its address
    (``HOST:PORT``). When the block ends, every process it started is ended by its process group
    (each node runs in a session of its own with its raylet, object store and workers), whatever
    happened, and its temporary folder is removed: nothing of it outlives the block, and no other
    Ray process on the machine is touched.

    ``host``: a loopback address other than 127.0.0.1 (Ray replaces 127.0.0.1 and localhost by the
    machine's network address, any other loopback address is kept), so the cluster talks over the
    loopback interface only."""
    import shutil
    import signal
    import subprocess
    import time

    tmp = tempfile.mkdtemp(prefix="mkray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port = _free_port(host)
    common = ["--node-ip-address", host, "--num-cpus", str(cpus), "--disable-usage-stats",
              "--object-store-memory", str(object_store_mb * 1024 * 1024), "--block"]
    procs: list[subprocess.Popen] = []
    environ = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}

    def start(args: list[str], name: str) -> None:
        logf = open(Path(tmp) / f"{name}.out", "wb")  # noqa: SIM115 - closed with the process
        procs.append(subprocess.Popen([*_ray_command(), "start", *args, *common], stdout=logf,
                                      stderr=subprocess.STDOUT, env=environ, start_new_session=True))
        logf.close()
        t0 = time.monotonic()
        while b"Ray runtime started" not in (Path(tmp) / f"{name}.out").read_bytes():
            if procs[-1].poll() is not None or time.monotonic() - t0 > timeout:
                tail = (Path(tmp) / f"{name}.out").read_text(errors="replace")[-2000:]
                raise ClusterError(f"the Ray {name} did not start (exit {procs[-1].poll()}): {tail}")
            time.sleep(0.2)

    try:
        start(["--head", "--port", str(port), "--include-dashboard=false", "--temp-dir", tmp,
               "--dashboard-agent-listen-port", str(_free_port(host))], "head")
        for i in range(1, nodes):
            start(["--address", f"{host}:{port}", "--dashboard-agent-listen-port", str(_free_port(host))],
                  f"worker{i}")
        yield f"{host}:{port}"
    finally:
        sessions = {p.pid for p in procs}  # each `ray start` leads a session: its raylet, stores, workers
        for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            for pid in _members(sessions):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            t0 = time.monotonic()
            while time.monotonic() - t0 < wait:
                for p in procs:
                    p.poll()  # reap the leaders
                if not _members(sessions):
                    break
                time.sleep(0.1)
        shutil.rmtree(tmp, ignore_errors=True)


def _members(sessions: set[int]) -> list[int]:
    """The live processes of the sessions ``sessions`` (Linux: read from /proc; workers run in
    process groups of their own, but in their node's session)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp session ...
        if int(fields[3]) in sessions and fields[0] != "Z":
            out.append(int(d.name))
    return out


__all__ = ["ClusterError", "RayExecutor", "local_cluster", "run_unit"]
