"""Where a unit of work runs: ``local`` (this process, one unit after another), ``processes`` (a
pool of worker processes on this machine, the default) or ``ray`` (tasks of a Ray cluster).

A unit is one fold x seed of an experiment, one clip's preprocessing or one recording's
analysis (:class:`~mekit.executors.base.Work`). The executor never changes a result: seeds come
from the unit, thread counts are fixed per unit, the data is passed to it, and the files a unit
writes end up in the same folder whatever ran it (see :mod:`mekit.executors.base`).

Layering: executors sit beside :mod:`mekit.experiment`; only the experiment, the command line
and the app import them. The stages below (preprocessing, analysis) take an executor object, or
name one, resolved through the ``"module:attr"`` string of :func:`get_executor`.
"""

from __future__ import annotations

from typing import Any

from mekit.errors import ConfigError
from mekit.executors.base import Executor, Work
from mekit.registry import Registry, resolve

EXECUTORS: Registry[Any] = Registry("executor")
EXECUTORS.add("local", "mekit.executors.local:LocalExecutor",
              help="in this process, one unit after another (debugging, profiling)")
EXECUTORS.add("processes", "mekit.executors.processes:ProcessExecutor",
              help="a pool of worker processes on this machine (protocol.workers; spawned GPU slots for neural "
                   "folds on CUDA); the default")
EXECUTORS.add("ray", "mekit.executors.ray_cluster:RayExecutor",
              help="every unit a task of a Ray cluster (--address HOST:PORT or RAY_ADDRESS); results, files, "
                   "events and logs come back here")

#: the executor a run uses when it names none
DEFAULT = "processes"


def check_executor(name: str | None, address: str | None = None) -> str:
    """``name`` (default :data:`DEFAULT`) if it is a registered executor that can take
    ``address``; a ConfigError naming the choices otherwise. Cheap: nothing is imported or
    connected, so a run checks it before any work."""
    name = name or DEFAULT
    EXECUTORS.get(name)
    if address and name != "ray":
        raise ConfigError(f"address {address!r} is read by the ray executor only (executor is {name!r}); "
                          "give --executor ray, or no --address")
    return name


def get_executor(name: str | Executor | None = None, address: str | None = None, **options: Any) -> Executor:
    """The executor registered as ``name`` (default :data:`DEFAULT`), built with ``options``;
    ``address`` (``HOST:PORT`` of a cluster) is for ``ray`` only. An executor object is returned
    as it is."""
    if isinstance(name, Executor):
        return name
    name = check_executor(name, address)
    if address:
        options["address"] = address
    return resolve(EXECUTORS.get(name))(**options)


__all__ = ["DEFAULT", "EXECUTORS", "Executor", "Work", "check_executor", "get_executor"]
