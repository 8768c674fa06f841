"""ResNet-18 on a flow image, in plain torch with torchvision's parameter layout.

The backbone's parameter names and shapes are those of ``torchvision.models.resnet18``
(``conv1``, ``bn1``, ``layer1``..``layer4`` of BasicBlocks with ``downsample.0/1``), so a
torchvision state dict a user supplies loads strictly with :func:`load_backbone_weights`
(its ImageNet ``fc`` is dropped). torchvision itself is not importable on mekit's CPU
machines (see ENVIRONMENT.md), hence the re-implementation.

The classifier ``fc`` is an MLP 512 -> 256 -> 128 -> 64 -> K (ReLU, dropout), the head of a
published CASME II ResNet-18 flow-image baseline; ``mlp_dims=()`` gives torchvision's single
linear layer. Input: a 3-channel flow image (e.g. HSV-rendered Farneback flow), normalised
with ImageNet statistics because that is what transferred ImageNet weights expect.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mekit.models._base import IMAGENET_MEAN, IMAGENET_STD, MEModel, _expect_ndim, load_backbone_weights, register_model


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def make_mlp_head(in_features: int, dims: Sequence[int], num_classes: int, drop_rate: float) -> nn.Module:
    """``Linear-ReLU-Dropout`` per hidden width, then the classifier; Identity when K = 0."""
    if num_classes <= 0:
        return nn.Identity()
    layers: list[nn.Module] = []
    cin = in_features
    for d in dims:
        layers += [nn.Linear(cin, d), nn.ReLU(inplace=True), nn.Dropout(drop_rate)]
        cin = d
    layers.append(nn.Linear(cin, num_classes))
    return nn.Sequential(*layers) if dims else layers[0]


class ResNetFlow(MEModel):
    head_name = "fc"
    head_prefixes = ("fc.",)

    def __init__(self, num_classes: int = 3, layers: Sequence[int] = (2, 2, 2, 2), in_chans: int = 3,
                 mlp_dims: Sequence[int] = (256, 128, 64), drop_rate: float = 0.5) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_chans, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = 512
        self.mlp_dims = tuple(mlp_dims)
        self.drop_rate = drop_rate
        self.num_classes = num_classes
        self.fc = self._make_classifier(num_classes)
        # torchvision's initialisation
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _make_classifier(self, num_classes: int) -> nn.Module:
        return make_mlp_head(self.num_features, self.mlp_dims, num_classes, self.drop_rate)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        _expect_ndim(x, 4, "resnet18_flow", "flow")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)


@register_model("resnet18_flow", input="flow", input_size=(3, 112, 112), channels=3, mean=IMAGENET_MEAN,
                std=IMAGENET_STD, min_input_size=(3, 16, 16),
                help="ResNet-18 (torchvision layout) on a 3-channel flow image, MLP head 512-256-128-64")
def resnet18_flow(num_classes: int = 3, weights: str | None = None, **kwargs) -> ResNetFlow:
    """``weights``: path of a torchvision-layout ResNet-18 state dict (e.g. ImageNet), loaded
    into the backbone; the head stays freshly initialised."""
    model = ResNetFlow(num_classes=num_classes, **kwargs)
    if weights is not None:
        load_backbone_weights(model, weights)
    return model
