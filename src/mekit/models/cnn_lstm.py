"""CNN + recurrent network over a frame sequence.

A shared 2D backbone (``compact_cnn`` by default; any registered 2D model) embeds every
frame; an LSTM or GRU runs over the embeddings; the clip is classified from the last
hidden state or the mean over time. With an intensity head the regression is per frame,
``forward_intensity(x) -> [B, T]``, so an intensity curve (onset -> apex -> offset) can be
learned. Input "sequence": ``[B, T, C, H, W]``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mekit.errors import ConfigError
from mekit.models._base import IDENTITY_MEAN, IDENTITY_STD, MEModel, _expect_ndim, register_model
from mekit.models.siamese import build_backbone


class CNNLSTM(MEModel):
    input_kind = "sequence"
    intensity_kind = "frame"

    def __init__(self, num_classes: int = 3, backbone: str = "compact_cnn", in_chans: int = 3, rnn: str = "lstm",
                 hidden_size: int = 128, num_layers: int = 1, bidirectional: bool = False, pooling: str = "last",
                 drop_rate: float = 0.3, backbone_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        if rnn not in ("lstm", "gru"):
            raise ConfigError(f"cnn_lstm: rnn {rnn!r} is not 'lstm' or 'gru'")
        if pooling not in ("last", "mean"):
            raise ConfigError(f"cnn_lstm: pooling {pooling!r} is not 'last' or 'mean'")
        self.backbone = build_backbone(backbone, in_chans, backbone_kwargs, "cnn_lstm")
        cls = nn.LSTM if rnn == "lstm" else nn.GRU
        self.rnn = cls(self.backbone.num_features, hidden_size, num_layers=num_layers, batch_first=True,
                       bidirectional=bidirectional)
        self.pooling = pooling
        self.bidirectional = bidirectional
        self.hidden_size = hidden_size
        self.drop = nn.Dropout(drop_rate)
        self.num_features = hidden_size * (2 if bidirectional else 1)
        self.num_classes = num_classes
        self.head = self._make_classifier(num_classes)

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """Recurrent outputs per frame, ``[B, T, num_features]``."""
        _expect_ndim(x, 5, "cnn_lstm", "sequence")
        b, t = x.shape[:2]
        emb = self.backbone.forward_features(x.flatten(0, 1)).view(b, t, -1)
        out, _ = self.rnn(emb)
        return out

    def _pool(self, seq: torch.Tensor) -> torch.Tensor:
        if self.pooling == "mean":
            return seq.mean(dim=1)
        if self.bidirectional:
            # the backward direction has read the whole clip at t = 0
            h = self.hidden_size
            return torch.cat([seq[:, -1, :h], seq[:, 0, h:]], dim=1)
        return seq[:, -1]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self._pool(self.frame_features(x)))

    def forward_with_intensity(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        head = self._require_intensity()
        seq = self.frame_features(x)
        return {"logits": self.forward_head(self.drop(self._pool(seq))), "intensity": head(seq).squeeze(-1)}


@register_model("cnn_lstm", input="sequence", input_size=(8, 3, 64, 64), channels=3, mean=IDENTITY_MEAN,
                std=IDENTITY_STD, min_input_size=(3, 3, 16, 16), intensity="frame",
                help="per-frame CNN + LSTM/GRU over the sequence; per-frame intensity option")
def cnn_lstm(num_classes: int = 3, **kwargs) -> CNNLSTM:
    return CNNLSTM(num_classes=num_classes, **kwargs)
