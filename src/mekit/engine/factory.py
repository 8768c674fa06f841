"""What one fold is made of: the inputs a config asks for and a fresh model to fit on them.

Shared by the experiment runner (every fold) and by bundles (one model on all subjects), so it
sits in the engine layer below both.
"""

from __future__ import annotations

from pathlib import Path

from mekit.config import ExperimentConfig


def is_neural(model_name: str) -> bool:
    from mekit.models.classical import CLASSIFIERS
    from mekit.models.ensemble import ENSEMBLE

    # an ensemble is not itself a network: whether it trains any is its members' business
    # (mekit.tasks.recipes.is_neural_recipe)
    if model_name in CLASSIFIERS or model_name == ENSEMBLE:
        return False
    from mekit.models import MODELS

    MODELS.get(model_name)  # ConfigError naming the known models
    return True


def input_name(cfg: ExperimentConfig) -> str:
    """The registered feature extractor (classical) or input builder (neural) a run uses."""
    if not is_neural(cfg.model.name):
        return cfg.features.name
    from mekit.features import INPUTS
    from mekit.models import MODELS

    # features.name may pick another registered input builder (e.g. hsv_flow for resnet18_flow)
    return cfg.features.name if cfg.features.name in INPUTS else MODELS.meta(cfg.model.name)["input"]


def build_inputs(table, cfg: ExperimentConfig, progress: bool = True):
    """Features (classical) or model inputs (neural) for every sample of ``table``.

    The preprocessing the extractor (or builder) reads runs first, once, as a ``preprocess``
    stage of its own (:func:`mekit.features.preprocessed_for`): every part of a ``concat``
    then reads the same pass over the clips instead of decoding each clip again.
    ``progress`` is kept for callers that pass it; progress is reported as events."""
    from mekit.features import get_extractor, get_input_builder, preprocessed_for

    if is_neural(cfg.model.name):
        from mekit.models import MODELS

        kind = MODELS.meta(cfg.model.name)["input"]
        builder = input_name(cfg)
        params = dict(cfg.features.params)
        if kind == "clip3d":
            params.setdefault("layout", "clip3d")
        if kind == "image" or builder == "hsv_flow":
            meta = MODELS.meta(cfg.model.name)
            params.setdefault("mean", tuple(meta["mean"]))
            params.setdefault("std", tuple(meta["std"]))
        fn, name = get_input_builder(builder), builder
        what = f"model {cfg.model.name!r} (input {builder!r})"
    else:
        fn, name, params = get_extractor(cfg.features.name), cfg.features.name, dict(cfg.features.params)
        what = None
    if "media" in table.df.columns and (table.df["media"] == "flow").any():
        from mekit.data.flow_images import check_flow_image_input

        check_flow_image_input(name, params, what)  # before any preprocessing or fold
    with preprocessed_for(table, cfg.preprocess, name, params):
        return fn(table, cfg.preprocess, progress=progress, **params)


def make_model(cfg: ExperimentConfig, seed: int, checkpoint_dir: Path | None = None):
    """A fresh, unfitted model for one fold (classical pipeline or neural network)."""
    if is_neural(cfg.model.name):
        from mekit.engine.trainer import NeuralModel

        return NeuralModel(cfg.model.name, cfg.model.params, class_weight=cfg.imbalance.class_weight,
                           sampler=cfg.imbalance.sampler, sampler_params=cfg.imbalance.sampler_params,
                           compute=cfg.compute, seed=seed, checkpoint_dir=checkpoint_dir)
    from mekit.models.classical import make_classical

    return make_classical({"classifier": cfg.model.name, **cfg.model.params}, cfg.imbalance.class_weight,
                          cfg.imbalance.sampler, cfg.imbalance.sampler_params, seed)


#: training matrices up to this many values are fitted with BLAS/OpenMP limited to one thread.
#: Measured on a 2-core machine shared with other jobs: a LogisticRegression fit on 30 x 4
#: values took 40 ms with two OpenBLAS threads and 3 ms with one, and SMOTE's neighbour search
#: 50 ms and 1.5 ms; the classical steps here run one after another (n_jobs=1), so thread
#: start-up and contention dominate small fits. Large matrices keep the libraries' defaults.
SMALL_FIT = 2_000_000


def _fit_threads(cfg: ExperimentConfig, n_values: int):
    """A context limiting native thread pools for a small classical fit (a no-op otherwise;
    neural models set their own torch thread count through ``model.params.threads``)."""
    import contextlib

    if n_values > SMALL_FIT or is_neural(cfg.model.name):
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)
