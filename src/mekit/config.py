"""Typed, frozen experiment configuration, loaded from YAML with dotted overrides.

Config is data: every component is named by a registered string, never a pickled
object; unknown keys are rejected in one place; every run writes the resolved config
(``config.resolved.yaml``) next to its results, so it can be re-run exactly.

Every section is a frozen, typed dataclass built and checked when the config is loaded: the
ones defined here, and ``preprocess`` and ``intensity``, whose classes belong to the stages
they configure (:data:`SECTIONS`); an error names the key, the value and what was expected.
The free-form ``params`` sections (``features.params``, ``model.params``, ``protocol.params``,
``data.options``) are checked against the signatures of the components they configure by
:func:`mekit.evaluation.validate.validate_config`, which sits above the registries this bottom
layer must not import; every command calls it right after loading.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mekit.errors import ConfigError


class Section(Mapping):
    """Base of a typed, frozen config section that also reads as the mapping of its settings.

    ``section["size"]``, ``dict(section)`` and ``{**section, **overrides}`` work as on the plain
    mapping a YAML file gives, so code that merges per-part overrides into a section (a feature
    part's own ``preprocess``, say) needs no special case, and every value is still the checked,
    typed one. Subclasses are frozen dataclasses.
    """

    def __getitem__(self, key: str) -> Any:
        if key in self.__dataclass_fields__:  # type: ignore[attr-defined]
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dataclass_fields__)  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.__dataclass_fields__)  # type: ignore[attr-defined]

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)


#: The typed classes of the sections whose fields are owned by the stage they configure, named
#: "module:Class" and imported when a config is built (as registry entries are): the classes
#: sit in the layers of those stages, above this one, and a string is not an import arrow.
SECTIONS: dict[str, str] = {
    "preprocess": "mekit.preprocess.pipeline:PreprocessConfig",
    "intensity": "mekit.intensity.models:IntensitySettings",
}

#: preprocess settings that change how, not what, is computed: left out of the resume stamp
HOW_PREPROCESS = ("workers", "worker_timeout", "cache", "cache_dir", "fsync")
#: protocol settings that change where, not what, is computed: left out of the resume stamp
HOW_PROTOCOL = ("workers", "executor", "address")


def section(name: str, value: Any) -> Any:
    """``value`` (a mapping, None or already the typed section) as the typed section ``name``;
    errors name ``<name>.<key>``."""
    from mekit.registry import resolve

    cls = resolve(SECTIONS[name])
    if isinstance(value, cls):
        return value
    if value is not None and not isinstance(value, Mapping):
        raise ConfigError(f"{name}: expected a mapping of settings, got {value!r}")
    return from_dict(cls, dict(value or {}), name)


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

    #: "balanced" or null (the per-class mapping form is for code, not YAML)
    class_weight: str | None = "balanced"
    sampler: str | None = None
    sampler_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.class_weight is not None and self.class_weight != "balanced":
            raise ConfigError(f"imbalance.class_weight: {self.class_weight!r}; expected 'balanced' or null")
        if self.sampler_params and self.sampler is None:
            raise ConfigError(f"imbalance.sampler_params: {self.sampler_params!r} given without imbalance.sampler, "
                              "so nothing would read them; name the sampler too")


@dataclass(frozen=True)
class ProtocolConfig:
    name: str = "loso"
    params: dict[str, Any] = field(default_factory=dict)
    #: seeds to repeat the protocol with (fold assignment where the protocol shuffles, and each
    #: fold's model). Every protocol accepts several: a deterministic split (loso, lodo, holdout)
    #: still gives a spread over model initialisations. Null: the top-level ``seed`` alone (see
    #: ExperimentConfig); after loading it is always a tuple.
    seeds: tuple[int, ...] | None = None
    #: folds trained at the same time in worker processes (forked; for neural folds on CUDA, spawned
    #: processes sharing the GPU: GPU slots, as many as its memory holds). Results do not depend on
    #: it, since every fold seeds its own model. Keep workers x model threads within the CPU cores.
    workers: int = 1
    #: where folds run: a registered executor (mekit.executors: local, processes, ray); like
    #: ``workers`` it never changes a result, so neither it nor ``address`` is in the resume stamp
    executor: str = "processes"
    #: HOST:PORT of the Ray cluster for executor ray (null: $RAY_ADDRESS, else a local instance)
    address: str | None = None

    def __post_init__(self) -> None:
        if self.seeds is not None:
            if not self.seeds:
                raise ConfigError("protocol.seeds: an empty list; expected at least one seed")
            if len(set(self.seeds)) != len(self.seeds):
                raise ConfigError(f"protocol.seeds: {list(self.seeds)} repeats a seed, which would repeat the "
                                  "same folds; expected distinct seeds")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"protocol.workers: {self.workers!r}; expected a positive integer")
        # which executors exist is a registry above this layer (mekit.executors.EXECUTORS), checked
        # when the run starts one
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.executor):
            raise ConfigError(f"protocol.executor: {self.executor!r}; expected an executor name such as 'local', "
                              "'processes' or 'ray'")


@dataclass(frozen=True)
class OutputConfig:
    dir: str | None = None
    mlflow: bool = False
    mlflow_uri: str | None = None
    plots: bool = True


#: device names ``compute.device`` accepts (availability is checked when a model resolves it)
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:[0-9]+)?)$")


@dataclass(frozen=True)
class ComputeConfig:
    """Where and how neural models run (classical models read none of it).

    A section of its own rather than ``model.params``: the same recipe runs on a laptop and on
    a GPU server by changing this section (or ``--device``) alone, and every neural trainer
    (classification and intensity) reads it the same way.

    - ``device``: ``auto`` (CUDA, then Apple MPS, then the CPU), ``cpu``, ``cuda``, ``cuda:N``
      or ``mps``. The device a model resolved is recorded in its selection record.
    - ``amp``: mixed precision, ``off``, ``bf16`` (CPU or CUDA) or ``fp16`` (CUDA only, with
      gradient scaling).
    - ``channels_last``: memory layout of 2-D convolution inputs; ``auto`` uses it on CUDA,
      where tensor cores gain from it, and nowhere else.
    - ``deterministic``: make torch raise on an operation that has no deterministic kernel
      (instead of warning), and fix the cuBLAS workspace on CUDA, so repeated GPU runs give
      identical weights or fail loudly.
    """

    device: str = "auto"
    #: ``str | bool`` because YAML 1.1 reads a bare ``off``/``on`` as false/true; those are
    #: taken as the words they were written as
    amp: str | bool = "off"
    channels_last: str | bool = "auto"
    deterministic: bool = False

    def __post_init__(self) -> None:
        if self.amp is False:
            object.__setattr__(self, "amp", "off")
        if isinstance(self.channels_last, bool):
            object.__setattr__(self, "channels_last", "on" if self.channels_last else "off")
        if not _DEVICE.match(self.device):
            raise ConfigError(f"compute.device: {self.device!r}; expected auto, cpu, cuda, cuda:N or mps")
        if self.amp not in ("off", "bf16", "fp16"):
            raise ConfigError(f"compute.amp: {self.amp!r}; expected 'off', 'bf16' or 'fp16'")
        if self.channels_last not in ("auto", "on", "off"):
            raise ConfigError(f"compute.channels_last: {self.channels_last!r}; expected 'auto', 'on' or 'off'")


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: data, preprocessing, features, model, imbalance handling, protocol, output.

    Seeds: ``seed`` is the run's seed and ``protocol.seeds`` the seeds the protocol is repeated
    with; ``seed`` is always the first of ``protocol.seeds`` (it also seeds the final model of
    ``mekit train``). Give either one: ``seed: 3`` alone means ``protocol.seeds: [3]``, and
    ``protocol.seeds: [1, 2]`` alone means ``seed: 1``; neither means seed 0. A config that
    gives both must agree (``seed`` equal to the first of ``protocol.seeds``), else loading
    refuses it. On the command line an override of one of the two replaces both, so
    ``protocol.seeds=[1,2]`` works on a file that says ``seed: 0``.
    """

    name: str = "experiment"
    #: null: not given (the first of protocol.seeds, or 0); after loading it is always an integer
    seed: int | None = None
    #: a registered task (mekit.tasks.TASKS): "classification", or "intensity" (continuous 0-1
    #: intensity regression, see mekit.tasks.intensity)
    task: str = "classification"
    data: DataConfig = field(default_factory=DataConfig)
    #: a mapping when written; after loading, the typed, validated section
    #: (:class:`mekit.preprocess.pipeline.PreprocessConfig`, every default filled in)
    preprocess: Any = field(default_factory=dict)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    imbalance: ImbalanceConfig = field(default_factory=ImbalanceConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    #: device, mixed precision, memory layout and determinism of neural models
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    #: intensity targets and loss for task "intensity" (source, profile, loss, ...); after loading,
    #: the typed section (:class:`mekit.intensity.models.IntensitySettings`) for that task, None
    #: for the others
    intensity: Any = None
    #: the candidate recipes ``protocol: nested`` chooses among in every outer fold, each a mapping
    #: of dotted overrides of this config plus an optional ``label`` (see mekit.tasks.recipes)
    search: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        # which tasks exist is a registry (mekit.tasks.TASKS) above this layer: the name is
        # checked against it by mekit.evaluation.validate.validate_config
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.task):
            raise ConfigError(f"config.task: {self.task!r}; expected a task name such as 'classification' or "
                              "'intensity'")
        if self.task != "intensity":
            if self.intensity:
                what = sorted(self.intensity) if isinstance(self.intensity, Mapping) else self.intensity
                raise ConfigError(f"intensity: settings {what} are read only with task: intensity "
                                  f"(task is {self.task!r}); remove them or set task: intensity")
            object.__setattr__(self, "intensity", None)
        else:
            object.__setattr__(self, "intensity", section("intensity", self.intensity))
        object.__setattr__(self, "preprocess", section("preprocess", self.preprocess))
        # Resolve the seeds (see the class docstring). A config that gives both and disagrees is
        # refused by load_config, not here: configs saved with results before the two were tied
        # together (seed 0 with protocol.seeds [1, 2]) must still load.
        seeds = self.protocol.seeds
        seed = self.seed if self.seed is not None else (seeds[0] if seeds else 0)
        if seeds is None:
            object.__setattr__(self, "protocol", dataclasses.replace(self.protocol, seeds=(seed,)))
        object.__setattr__(self, "seed", seed)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def results_yaml(self) -> str:
        """The config as YAML without the settings that cannot change a result (``protocol.workers``,
        ``protocol.executor`` and ``protocol.address``, the preprocessing's workers and cache
        settings): what decides whether saved folds or runs can be reused."""
        d = self.to_dict()
        for key in HOW_PROTOCOL:
            d["protocol"].pop(key, None)
        for key in HOW_PREPROCESS:
            d["preprocess"].pop(key, None)
        if not d.get("search"):
            d.pop("search", None)  # no search: the same text as before the key existed
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


class DuplicateKeyError(yaml.YAMLError):
    """A key given twice in one YAML mapping (``key``, its ``line`` and the ``first`` line)."""

    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(f"line {line}: duplicate key {key!r} (first given on line {first}); a YAML mapping "
                         "takes each key once")
        self.key, self.line, self.first = key, line, first


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping: safe_load silently keeps
    the last of two equal keys, so a config that sets ``lr`` twice (or a label scheme that maps
    ``happy`` twice) would run with whichever came last. Every mekit YAML reader uses it."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<' merges may be overridden on purpose
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader reports it itself
                continue
            if first is not None:
                raise DuplicateKeyError(key, key_node.start_mark.line + 1, first)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


class ConfigLoader(UniqueKeyLoader):
    """The loader of experiment configs and overrides: :class:`UniqueKeyLoader` that also reads
    ``1e-3`` as a number. YAML 1.1 (PyYAML) reads it as a string, since its floats need a dot;
    nobody writing a learning rate means a string."""


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def load_yaml(text: str, source: str = "<text>") -> Any:
    """Parse YAML text with :class:`ConfigLoader`; errors name ``source`` (a file, an override)."""
    try:
        return yaml.load(text, Loader=ConfigLoader)  # noqa: S506 - ConfigLoader is a SafeLoader
    except DuplicateKeyError as e:
        raise ConfigError(f"{source}: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML ({' '.join(str(e).split())})") from None


def read_yaml_mapping(path: str | Path | None, what: str = "a mapping at the top level") -> dict[str, Any]:
    """The mapping a YAML config file holds ({} for no file); clear errors for a missing file,
    invalid YAML, a key given twice or a top level that is not a mapping."""
    if path is None:
        return {}
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {p} does not exist")
    if p.is_dir():
        raise ConfigError(f"config file {p} is a folder; expected a YAML file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not a text file (byte {e.start} is not UTF-8); expected a YAML file") from None
    except OSError as e:
        raise ConfigError(f"config file {p} cannot be read ({e.strerror or e})") from None
    raw = load_yaml(text, str(p)) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: expected {what}")
    return raw


def _override_sets_seeds(overrides: dict[str, Any]) -> tuple[bool, bool]:
    """Whether dotted overrides give ``seed`` and ``protocol.seeds``."""
    prot = overrides.get("protocol")
    return "seed" in overrides, "protocol.seeds" in overrides or (isinstance(prot, dict) and "seeds" in prot)


def check_seeds(cfg: ExperimentConfig) -> None:
    """Refuse a config whose ``seed`` is not the first of its ``protocol.seeds`` (see ExperimentConfig)."""
    seeds = cfg.protocol.seeds or ()
    if seeds and cfg.seed != seeds[0]:
        raise ConfigError(f"config.seed: {cfg.seed} disagrees with protocol.seeds {list(seeds)}; seed is the "
                          "first of protocol.seeds, so give one of the two (or make seed the first seed)")


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Load an experiment config from YAML (or defaults) and apply dotted overrides."""
    raw = copy.deepcopy(read_yaml_mapping(path))
    overrides = dict(overrides or {})
    seed_o, seeds_o = _override_sets_seeds(overrides)
    if seed_o != seeds_o:
        # an override of one of the two replaces both: the file's other one is derived again
        if seed_o and isinstance(raw.get("protocol"), dict):
            raw["protocol"].pop("seeds", None)
        if seeds_o:
            raw.pop("seed", None)
    for k, v in overrides.items():
        set_dotted(raw, k, v)
    cfg = from_dict(ExperimentConfig, raw)
    check_seeds(cfg)
    return cfg
