"""Typed, frozen experiment configuration, loaded from YAML with dotted overrides.

Config is data: every component is named by a registered string, never a pickled
object; unknown keys are rejected in one place; every run writes the resolved config
(``config.resolved.yaml``) next to its results, so it can be re-run exactly.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mekit.errors import ConfigError


@dataclass(frozen=True)
class DataConfig:
    loader: str = "synthetic"
    root: str | None = None
    label_scheme: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FeatureConfig:
    """Feature extractor for classical pipelines (ignored by end-to-end neural models)."""

    name: str = "hoof"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelConfig:
    name: str = "logreg"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImbalanceConfig:
    """How class imbalance is handled; everything here is fitted on the training part of a fold only."""

    class_weight: str | None = "balanced"
    sampler: str | None = None
    sampler_params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProtocolConfig:
    name: str = "loso"
    params: dict[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)
    #: folds trained at the same time in forked processes (classification runs; intensity runs are
    #: serial). Results do not depend on it, since every fold seeds its own model. Keep workers x
    #: model threads within the CPU cores.
    workers: int = 1


@dataclass(frozen=True)
class OutputConfig:
    dir: str | None = None
    mlflow: bool = False
    mlflow_uri: str | None = None
    plots: bool = True


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = "experiment"
    seed: int = 0
    #: "classification", or "intensity" (continuous 0-1 intensity regression, see mekit.intensity)
    task: str = "classification"
    data: DataConfig = field(default_factory=DataConfig)
    preprocess: dict[str, Any] = field(default_factory=dict)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    imbalance: ImbalanceConfig = field(default_factory=ImbalanceConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    #: intensity targets and loss for task "intensity" (source, profile, loss, ...)
    intensity: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in ("classification", "intensity"):
            raise ConfigError(f"config.task: {self.task!r}; expected 'classification' or 'intensity'")

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def results_yaml(self) -> str:
        """The config as YAML without the settings that cannot change a result (``protocol.workers``):
        what decides whether saved folds or runs can be reused."""
        d = self.to_dict()
        d["protocol"].pop("workers", None)
        return yaml.safe_dump(d, sort_keys=False)


def to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            value = [value]
        return tuple(_coerce(args[0], v, where) for v in value)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


def from_dict(cls: type, data: Any, where: str = "config") -> Any:
    """Build dataclass ``cls`` from a mapping; unknown keys are an error naming the key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(names)}")
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested dict, creating levels as needed."""
    parts = key.split(".")
    cur = d
    for p in parts[:-1]:
        nxt = cur.get(p)
        if nxt is None:
            nxt = cur[p] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"override {key!r}: {p!r} is not a section")
        cur = nxt
    cur[parts[-1]] = value


def read_yaml_mapping(path: str | Path | None, what: str = "a mapping at the top level") -> dict[str, Any]:
    """The mapping a YAML config file holds ({} for no file); clear errors for a missing file,
    invalid YAML or a top level that is not a mapping."""
    if path is None:
        return {}
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {p} does not exist")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({e})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: expected {what}")
    return raw


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Load an experiment config from YAML (or defaults) and apply dotted overrides."""
    raw = copy.deepcopy(read_yaml_mapping(path))
    for k, v in (overrides or {}).items():
        set_dotted(raw, k, v)
    return from_dict(ExperimentConfig, raw)
