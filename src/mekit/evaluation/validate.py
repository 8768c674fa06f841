"""Check a whole experiment config against the components it names, before anything runs.

:mod:`mekit.config` checks structure (sections, keys, types); it is the bottom layer and
cannot look into the registries. Here every free-form section is checked against the
signature of what it configures:

- ``data.options`` against the loader (:func:`mekit.data.check_options`);
- ``preprocess`` by building a :class:`~mekit.preprocess.pipeline.PreprocessConfig`, and its
  ``magnify`` and ``apex_params`` against the functions they configure;
- ``features.params`` against the feature extractor (classical models) or the model's input
  builder (neural models), types by annotation;
- ``model.params`` against the classical pipeline and its classifier (scikit-learn's own
  parameter constraints judge the values), or against the training settings
  (:class:`~mekit.engine.trainer.TrainConfig`), the model constructor, the augmentation and
  the loss of a neural model;
- ``imbalance.sampler``/``sampler_params`` against the sampler;
- ``protocol.params`` against the protocol's constructor;
- ``task`` against the registered tasks; for task ``intensity``, the intensity task's own check
  and its models' parameters.

A setting the chosen components would ignore is refused as well (a synthetic sampler such as
SMOTE given to a neural model, feature parameters given to an intensity run): a config says what
ran. The ``compute`` section is checked against this machine for neural models (a CUDA device
asked for where there is none); classical models do not read it.

Every problem is a :class:`~mekit.errors.ConfigError` of one line naming the key. Heavy
libraries are imported only for the components the config names (torch for a neural
model, scikit-learn for a classifier), so the check costs what the run would import anyway.
"""

from __future__ import annotations

from typing import Any

from mekit.config import ExperimentConfig, FeatureConfig, check_seeds, from_dict
from mekit.errors import ConfigError


def _named(where: str, lookup: Any, name: Any) -> Any:
    """``lookup(name)``, with a ConfigError for an unknown name prefixed by the key that named it."""
    try:
        return lookup(name)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def validate_config(cfg: ExperimentConfig) -> None:
    """Raise a ConfigError naming the first key of ``cfg`` that its components would refuse or ignore."""
    check_seeds(cfg)
    from mekit.tasks import TASKS

    _named("task", TASKS.get, cfg.task)
    _data(cfg)
    _preprocess(cfg.preprocess)
    _protocol(cfg)
    if cfg.task == "intensity":
        if cfg.search:
            raise ConfigError("search: nested selection is available for task classification, not 'intensity'")
        _intensity(cfg)
        return
    from mekit.models.ensemble import ENSEMBLE

    if cfg.search or cfg.protocol.name == "nested" or cfg.model.name == ENSEMBLE:
        from mekit.tasks import recipes

        recipes.check(cfg)  # every candidate and member, as a run of its own would be checked
        return
    validate_recipe(cfg)


def validate_recipe(cfg: ExperimentConfig) -> None:
    """Check the model part of ``cfg`` (preprocessing, features, model, imbalance handling): what
    a search candidate or an ensemble member may change."""
    _preprocess(cfg.preprocess)
    from mekit.models.classical import CLASSIFIERS

    if cfg.model.name in CLASSIFIERS:
        _classical(cfg)
    else:
        _neural(cfg)


# -- sections every task has ---------------------------------------------------------------------
def _data(cfg: ExperimentConfig) -> None:
    import mekit.data as data
    from mekit.registry import check_params

    _named("data.loader", data.LOADERS.get, cfg.data.loader)
    check_options = getattr(data, "check_options", None)
    if check_options is not None:  # the loaders' own check (options listed by **params loaders too)
        _named("data.options", lambda opts: check_options(cfg.data.loader, opts), dict(cfg.data.options))
        return
    check_params(data.get_loader(cfg.data.loader), dict(cfg.data.options), "data.options",
                 f"loader {cfg.data.loader!r}", {"root": "the dataset folder is data.root"})


def _preprocess(section: dict[str, Any], where: str = "") -> None:
    from mekit.preprocess.pipeline import PreprocessConfig
    from mekit.registry import check_params

    if not where:
        pre = PreprocessConfig.from_dict(section)  # its errors name preprocess.<key>
    else:
        pre = _named(where, PreprocessConfig.from_dict, section)
    at = where or "preprocess"
    # the two free dicts the pipeline hands to a function as keyword arguments
    if pre.magnify is not None:
        from mekit.preprocess.magnify import magnify

        check_params(magnify, dict(pre.magnify), f"{at}.magnify", "magnification",
                     {"frames": "the aligned clip", "fps": "the clip's frame rate"})
    if pre.apex_params:
        from mekit.preprocess.apex import spot_apex

        check_params(spot_apex, dict(pre.apex_params), f"{at}.apex_params", "apex spotting",
                     {"frames": "the aligned clip", "rois": "the face's landmark regions"})


def _protocol(cfg: ExperimentConfig) -> None:
    from mekit.evaluation.protocols import PROTOCOLS, check_protocol_params

    _named("protocol.name", PROTOCOLS.get, cfg.protocol.name)
    check_protocol_params(cfg.protocol.name, dict(cfg.protocol.params))


# -- classification ------------------------------------------------------------------------------
def _classical(cfg: ExperimentConfig) -> None:
    from mekit.models.classical import check_classical_params
    from mekit.features import FEATURES, INPUTS, check_extractor_params

    name = cfg.features.name
    if name not in FEATURES and name in INPUTS:
        raise ConfigError(f"features.name: {name!r} builds inputs for neural models; classical model "
                          f"{cfg.model.name!r} needs a feature extractor, one of: {', '.join(FEATURES.names())}")
    _named("features.name", FEATURES.get, name)
    check_extractor_params(name, dict(cfg.features.params))
    _flow_images(cfg, name, None)
    if name == "concat":
        for k, part in enumerate(cfg.features.params.get("parts") or []):
            if part.get("preprocess"):
                _preprocess({**cfg.preprocess, **part["preprocess"]}, f"features.params.parts[{k}].preprocess")
    check_classical_params(cfg.model.name, dict(cfg.model.params))
    _sampler(cfg)


def _sampler(cfg: ExperimentConfig) -> None:
    from mekit.imbalance import SAMPLERS
    from mekit.registry import check_params, resolve

    name = cfg.imbalance.sampler
    if name is None:
        return
    cls = resolve(_named("imbalance.sampler", SAMPLERS.get, name))
    check_params(cls, dict(cfg.imbalance.sampler_params), "imbalance.sampler_params", f"sampler {name!r}",
                 {"random_state": "set by the config's seed and protocol.seeds"})


def _neural(cfg: ExperimentConfig) -> None:
    from mekit.models.classical import CLASSIFIERS
    from mekit.features import FEATURES, INPUTS, check_input_params
    from mekit.models import MODELS

    model = cfg.model.name
    if model not in MODELS:
        known = ", ".join([*CLASSIFIERS.names(), *MODELS.names()])
        raise ConfigError(f"model.name: unknown model {model!r}; expected a classifier or a neural model: {known}")
    kind = MODELS.meta(model)["input"]
    name = cfg.features.name
    if name not in INPUTS:
        # A neural model reads its own input kind unless features.name picks another input
        # builder. A feature extractor named here would be ignored, so it is refused; the
        # default name ('hoof') cannot be told apart from one written out, and passes.
        if name in FEATURES and name != FeatureConfig.name:
            raise ConfigError(f"features.name: {name!r} is a feature extractor for classical models; neural model "
                              f"{model!r} reads input {kind!r} (leave features.name out, or pick an input builder: "
                              f"{', '.join(INPUTS.names())})")
        if name not in FEATURES:
            raise ConfigError(f"features.name: unknown input builder {name!r}; expected one of: "
                              f"{', '.join(INPUTS.names())}")
        name = kind
    check_input_params(name, dict(cfg.features.params))
    _flow_images(cfg, name, f"model {model!r} (input {name!r})")
    tc = _train_params(model, dict(cfg.model.params))
    if cfg.imbalance.sampler is not None:
        # index samplers resample each epoch's training rows; synthetic ones are refused here
        from mekit.engine.trainer import check_neural_sampler

        check_neural_sampler(cfg.imbalance.sampler, model)
        if tc.balanced_sampler:
            raise ConfigError(f"imbalance.sampler: {cfg.imbalance.sampler!r} and model.params.balanced_sampler both "
                              "resample the training batches; keep one")
        _sampler(cfg)
    _compute(cfg)


def _flow_images(cfg: ExperimentConfig, name: str, what: str | None) -> None:
    """A flow-image set holds one onset->apex flow image per clip: refuse, before any work, an
    extractor or model that needs face crops, frames or other flow (the same check runs on the
    table's rows when the inputs are built, for tables passed in directly)."""
    if cfg.data.loader == "flow_images":
        from mekit.data.flow_images import check_flow_image_input

        check_flow_image_input(name, dict(cfg.features.params), what)


def _compute(cfg: ExperimentConfig) -> None:
    """The compute section against this machine (an absent device, fp16 without CUDA)."""
    from mekit.engine.trainer import check_compute

    check_compute(cfg.compute)


def _train_params(model: str, params: dict[str, Any], where: str = "model.params") -> Any:
    """Check a neural model's training settings and return them as a TrainConfig."""
    from mekit.engine.augment import AugmentConfig
    from mekit.engine.trainer import TrainConfig
    from mekit.imbalance import LOSSES
    from mekit.models import check_model_options
    from mekit.registry import check_params, resolve

    tc = TrainConfig.from_params(params)  # unknown keys and types, naming model.params.<key>
    for key in ("epochs", "batch_size"):
        if getattr(tc, key) < 1:
            raise ConfigError(f"{where}.{key}: {getattr(tc, key)!r}; expected a positive integer")
    for key in ("warmup_epochs", "threads", "patience"):
        if getattr(tc, key) < 0:
            raise ConfigError(f"{where}.{key}: {getattr(tc, key)!r}; expected an integer of at least 0")
    if not tc.lr > 0:
        raise ConfigError(f"{where}.lr: {tc.lr!r}; expected a positive learning rate")
    if not 0 < tc.val_fraction < 1:
        raise ConfigError(f"{where}.val_fraction: {tc.val_fraction!r}; expected a share between 0 and 1")
    check_model_options(model, tc.model_params, f"{where}.model_params")
    from_dict(AugmentConfig, tc.augment, f"{where}.augment")
    builder = resolve(_named(f"{where}.loss", LOSSES.get, tc.loss))
    check_params(builder, tc.loss_params, f"{where}.loss_params", f"loss {tc.loss!r}",
                 {"y_train": "the training labels of each fold", "num_classes": "set from the classes of the data"})
    return tc


# -- intensity -----------------------------------------------------------------------------------
def _intensity(cfg: ExperimentConfig) -> None:
    from mekit.intensity.models import REGRESSORS, FrameRegressor
    from mekit.tasks.intensity import check_config

    check_config(cfg)  # the intensity section, the protocol and the model, as the runner checks them
    # per-frame features are set in the intensity section; these would be ignored
    if cfg.features.params or cfg.features.name != FeatureConfig.name:
        raise ConfigError("features: task intensity builds its own per-frame inputs (intensity.grid, intensity.bins, "
                          "intensity.features, intensity.stack_size, ...); remove the features section")
    if cfg.imbalance.sampler is not None:
        raise ConfigError(f"imbalance.sampler: {cfg.imbalance.sampler!r} is not used by task intensity "
                          "(a regression has no classes to resample)")
    params = dict(cfg.model.params)
    if cfg.model.name in REGRESSORS:
        FrameRegressor(cfg.model.name, params)
        return
    # the intensity trainer takes its loss from the intensity section and draws frames, not
    # class-balanced batches, and never shifts a clip in time (that would misalign its targets)
    ignored = {"loss": "the regression loss is intensity.loss", "loss_params": "the regression loss is intensity.loss",
               "balanced_sampler": "intensity training draws frames, not class-balanced batches"}
    for key, why in ignored.items():
        if key in params:
            raise ConfigError(f"model.params.{key}: not used by task intensity ({why})")
    if "temporal_jitter" in (params.get("augment") or {}):
        raise ConfigError("model.params.augment.temporal_jitter: not used by task intensity (a shift in time would "
                          "misalign the per-frame targets)")
    _train_params(cfg.model.name, params)
    _compute(cfg)


def resolved_config(cfg: ExperimentConfig) -> dict[str, Any]:
    """The config as plain data with the defaults of its free-form sections filled in: every
    preprocessing setting, every keyword the feature extractor (or input builder) takes, the
    neural training settings, the intensity settings. What ``mekit config show`` prints; the
    config is validated first, so every value shown is one a run accepts."""
    import inspect

    validate_config(cfg)
    d = cfg.to_dict()
    from mekit.preprocess.pipeline import PreprocessConfig

    d["preprocess"] = PreprocessConfig.from_dict(cfg.preprocess).to_dict()
    from mekit.engine.factory import input_name, is_neural

    neural = is_neural(cfg.model.name)
    from mekit.models.ensemble import ENSEMBLE

    if cfg.search or cfg.model.name == ENSEMBLE:
        return d  # each candidate or member is resolved when it runs (mekit.tasks.recipes)
    if cfg.task == "classification":
        from mekit.features import get_extractor, get_input_builder

        name = input_name(cfg)
        fn = get_input_builder(name) if neural else get_extractor(name)
        skip = {"table", "preprocess", "progress"}
        defaults = {p.name: p.default for p in inspect.signature(fn).parameters.values()
                    if p.name not in skip and p.default is not inspect.Parameter.empty
                    and p.kind is not p.VAR_KEYWORD}
        d["features"] = {"name": name, "params": {**defaults, **dict(cfg.features.params)}}
    if neural:
        import dataclasses

        from mekit.engine.trainer import TrainConfig

        train = {f.name: f.default for f in dataclasses.fields(TrainConfig)
                 if f.default is not dataclasses.MISSING}
        d["model"]["params"] = {**train, **dict(cfg.model.params)}
    if cfg.task == "intensity":
        from mekit.intensity.models import IntensitySettings

        d["intensity"] = IntensitySettings.from_config(cfg.intensity).to_dict()
    return d
