"""3D convolutional networks on clips ``[B, C, T, H, W]``.

* ``c3d_small``: a compact C3D-style network (Tran et al., ICCV 2015: homogeneous 3x3x3
  convolutions, the first pool spatial only so short clips keep their time axis), narrowed
  to four stages of 32..256 filters with batch norm for micro-expression-sized data.
* ``r2plus1d_18``: R(2+1)D-18 (Tran et al., "A Closer Look at Spatiotemporal Convolutions
  for Action Recognition", CVPR 2018), every 3x3x3 convolution factorised into a 1x3x3
  spatial and a 3x1x1 temporal convolution with the intermediate width M chosen so the
  parameter count matches the 3D convolution. Names and shapes follow
  ``torchvision.models.video.r2plus1d_18`` (``stem.0/1/3/4``, ``layerN.M.conv1.0.{0,1,3}``,
  ``conv1.1``, ``conv2.0``, ``conv2.1``, ``downsample.0/1``, ``fc``), so a torchvision
  Kinetics-400 state dict loads with :func:`~mekit.models.load_backbone_weights`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mekit.models._base import MEModel, _expect_ndim, load_backbone_weights, register_model

# torchvision's Kinetics-400 statistics for its video models
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


# -- c3d_small ----------------------------------------------------------------------------
def conv3d_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True))


class C3DSmall(MEModel):
    input_kind = "clip3d"

    def __init__(self, num_classes: int = 3, in_chans: int = 3, widths: Sequence[int] = (32, 64, 128, 256),
                 drop_rate: float = 0.5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_chans
        for i, w in enumerate(widths):
            layers.append(conv3d_bn_relu(cin, w))
            # C3D: pool1 is 1x2x2 so early temporal information is not merged too soon
            layers.append(nn.MaxPool3d((1, 2, 2) if i == 0 else 2, ceil_mode=True))
            cin = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.drop = nn.Dropout(drop_rate)
        self.num_features = cin
        self.num_classes = num_classes
        self.head = self._make_classifier(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        _expect_ndim(x, 5, "c3d_small", "clip3d")
        return self.drop(self.pool(self.features(x)).flatten(1))


# -- r2plus1d_18 --------------------------------------------------------------------------
class Conv2Plus1D(nn.Sequential):
    """1xkxk spatial conv -> BN -> ReLU -> kx1x1 temporal conv (torchvision's module layout)."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv3d(in_planes, midplanes, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(midplanes),
            nn.ReLU(inplace=True),
            nn.Conv3d(midplanes, out_planes, (3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0), bias=False),
        )


def midplanes_for(inplanes: int, planes: int) -> int:
    # Tran et al. 2018, sec. 3.5: M = floor(t d^2 N_{i-1} N_i / (d^2 N_{i-1} + t N_i)), t = d = 3
    return (inplanes * planes * 3 * 3 * 3) // (inplanes * 3 * 3 + 3 * planes)


class VideoBasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        # torchvision computes M once per block from (inplanes, planes) and uses it for both
        # convolutions; kept so its state dicts load
        mid = midplanes_for(inplanes, planes)
        self.conv1 = nn.Sequential(Conv2Plus1D(inplanes, planes, mid, stride), nn.BatchNorm3d(planes),
                                   nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(Conv2Plus1D(planes, planes, mid), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + identity)


class R2Plus1D(MEModel):
    head_name = "fc"
    head_prefixes = ("fc.",)
    input_kind = "clip3d"

    def __init__(self, num_classes: int = 3, layers: Sequence[int] = (2, 2, 2, 2), in_chans: int = 3,
                 drop_rate: float = 0.0) -> None:
        super().__init__()
        self.inplanes = 64
        # R(2+1)D stem: spatial 1x7x7 to 45 maps, then temporal 3x1x1 to 64 (torchvision R2Plus1dStem)
        self.stem = nn.Sequential(
            nn.Conv3d(in_chans, 45, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(45), nn.ReLU(inplace=True),
            nn.Conv3d(45, 64, (3, 1, 1), stride=1, padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(64), nn.ReLU(inplace=True))
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.drop = nn.Dropout(drop_rate)
        self.num_features = 512
        self.num_classes = num_classes
        self.fc = self._make_classifier(num_classes)
        for m in self.modules():  # torchvision's video-resnet initialisation
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv3d(self.inplanes, planes, 1, stride=stride, bias=False),
                                       nn.BatchNorm3d(planes))
        layers = [VideoBasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [VideoBasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        _expect_ndim(x, 5, "r2plus1d_18", "clip3d")
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.drop(self.avgpool(x).flatten(1))


@register_model("c3d_small", input="clip3d", input_size=(3, 16, 112, 112), channels=3, mean=KINETICS_MEAN,
                std=KINETICS_STD, min_input_size=(3, 4, 8, 8),
                help="compact C3D-style 3D CNN (4 stages, 32-256 filters, ~1.2 M parameters)")
def c3d_small(num_classes: int = 3, **kwargs) -> C3DSmall:
    return C3DSmall(num_classes=num_classes, **kwargs)


@register_model("r2plus1d_18", input="clip3d", input_size=(3, 16, 112, 112), channels=3, mean=KINETICS_MEAN,
                std=KINETICS_STD, min_input_size=(3, 2, 16, 16),
                help="R(2+1)D-18 (Tran et al. 2018), torchvision layout; factorised (2+1)D convolutions")
def r2plus1d_18(num_classes: int = 3, weights: str | None = None, **kwargs) -> R2Plus1D:
    """``weights``: path of a torchvision-layout R(2+1)D-18 state dict (e.g. Kinetics-400)."""
    model = R2Plus1D(num_classes=num_classes, **kwargs)
    if weights is not None:
        load_backbone_weights(model, weights)
    return model
