"""STSTNet: shallow triple-stream network on a 28x28 optical-flow stack.

Liong, Gan, See, Khor, Huang, "Shallow Triple Stream Three-dimensional CNN (STSTNet) for
Micro-expression Recognition", FG 2019 (arXiv:1902.03634). Input: horizontal flow, vertical
flow and optical strain of the onset->apex pair, 28x28x3. Three parallel streams, each a
3x3 convolution over all three channels with 3, 5 and 8 filters (padding 2), ReLU, batch
norm, 3x3 max-pool with stride 3 (padding 1), dropout 0.5; the 16 maps are concatenated,
2x2 average-pooled and fed to one fully connected layer (5*5*16 = 400 inputs). These sizes
follow the authors' released architecture and the PyTorch re-implementations of it (e.g.
the baseline shipped with HTNet); the whole net has 1,683 parameters for 3 classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mekit.models._base import IDENTITY_MEAN, IDENTITY_STD, MEModel, _expect_ndim, register_model


class Stream(nn.Sequential):
    """One STSTNet stream: conv 3x3 (padding 2) -> ReLU -> BN -> max-pool 3/3 -> dropout."""

    def __init__(self, in_chans: int, filters: int, drop_rate: float) -> None:
        # order ReLU-before-BN as in the released architecture
        super().__init__(nn.Conv2d(in_chans, filters, 3, padding=2), nn.ReLU(inplace=True),
                         nn.BatchNorm2d(filters), nn.MaxPool2d(3, stride=3, padding=1), nn.Dropout(drop_rate))


class STSTNet(MEModel):
    head_prefixes = ("head.",)

    def __init__(self, num_classes: int = 3, in_chans: int = 3, filters: Sequence[int] = (3, 5, 8),
                 drop_rate: float = 0.5) -> None:
        super().__init__()
        self.streams = nn.ModuleList(Stream(in_chans, f, drop_rate) for f in filters)
        self.pool = nn.AvgPool2d(2, stride=2)
        # 28 -> conv(pad 2) 30 -> max-pool 10 -> avg-pool 5: 5*5*sum(filters) features at 28x28;
        # LazyLinear is avoided so the parameter count is known at build time.
        self.num_features = 5 * 5 * sum(filters)
        self.num_classes = num_classes
        self.head = self._make_classifier(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        _expect_ndim(x, 4, "ststnet", "flow")
        x = torch.cat([s(x) for s in self.streams], dim=1)
        x = self.pool(x)
        if x.shape[-2:] != (5, 5):
            # other input sizes: resample to the 5x5 grid the fully connected layer expects
            x = nn.functional.adaptive_avg_pool2d(x, 5)
        return x.flatten(1)


@register_model("ststnet", input="flow", input_size=(3, 28, 28), channels=3, mean=IDENTITY_MEAN, std=IDENTITY_STD,
                help="STSTNet (Liong et al. 2019): shallow triple-stream CNN on 28x28 u/v/strain")
def ststnet(num_classes: int = 3, **kwargs) -> STSTNet:
    return STSTNet(num_classes=num_classes, **kwargs)
