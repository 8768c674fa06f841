"""OFF-ApexNet: two streams on the horizontal and vertical flow of the onset->apex pair.

Gan, Liong, Yau, Huang, Tan, "OFF-ApexNet on micro-expression recognition system",
Signal Processing: Image Communication 74 (2019). Each stream: 5x5 convolution with 6
filters, 2x2 max-pool, 5x5 convolution with 16 filters, 2x2 max-pool ('same' padding, 28x28
input); the two 7x7x16 maps are concatenated and classified by FC 1024 -> FC 1024 -> FC K.
For 3 classes this gives 2,664,475 parameters, the 2.66 M reported for OFF-ApexNet in the
Off-TANet comparison (PRICAI 2021) -- a check that the layer sizes are right.
"""

from __future__ import annotations

import torch
from torch import nn

from mekit.errors import DataError
from mekit.models._base import MEModel, _expect_ndim, register_model


def flow_stream(drop_rate: float = 0.0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2))


class OffApexNet(MEModel):
    """``forward_features`` returns the output of the second 1024-unit layer."""

    input_kind = "dual_flow"

    def __init__(self, num_classes: int = 3, img_size: int = 28, hidden: int = 1024, drop_rate: float = 0.5) -> None:
        super().__init__()
        self.stream_u = flow_stream()
        self.stream_v = flow_stream()
        self.img_size = img_size
        side = img_size // 2 // 2  # 'same' convs keep the size; two 2x2 pools: 28 -> 14 -> 7
        self.fc = nn.Sequential(nn.Linear(2 * 16 * side * side, hidden), nn.ReLU(inplace=True), nn.Dropout(drop_rate),
                                nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(drop_rate))
        self.num_features = hidden
        self.num_classes = num_classes
        self.head = self._make_classifier(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        _expect_ndim(x, 4, "off_apexnet", "dual_flow")
        if x.shape[1] not in (2, 3):
            raise DataError("off_apexnet expects horizontal and vertical flow channels",
                            value=tuple(x.shape), expected="[B, 2, H, W] or a [B, 3, H, W] u/v/strain stack")
        if x.shape[-1] != self.img_size or x.shape[-2] != self.img_size:
            raise DataError(f"off_apexnet was built for {self.img_size}x{self.img_size} input",
                            value=tuple(x.shape), expected=f"build_model('off_apexnet', ..., img_size={x.shape[-1]})")
        u = self.stream_u(x[:, 0:1])
        v = self.stream_v(x[:, 1:2])
        return self.fc(torch.cat([u.flatten(1), v.flatten(1)], dim=1))


@register_model("off_apexnet", input="dual_flow", input_size=(2, 28, 28), channels=2, mean=(0.0, 0.0),
                std=(1.0, 1.0), min_input_size=(2, 28, 28),
                help="OFF-ApexNet (Gan et al. 2019): two conv streams on horizontal/vertical flow, FC 1024x2")
def off_apexnet(num_classes: int = 3, **kwargs) -> OffApexNet:
    return OffApexNet(num_classes=num_classes, **kwargs)
