"""HTNet-style hierarchical transformer over facial regions of a flow image.

In the manner of HTNet (Wang, Zhang, Luo, Sankaranarayana, "HTNet for micro-expression
recognition", Neurocomputing 2024, arXiv:2307.14637): the optical-flow image is cut into
facial regions around landmarks (left eye, right eye, left and right lip corners) which
are tiled 2x2 into one image (:func:`tile_regions`). Patches are embedded; at the first
level a transformer attends only *within* each region (local muscle movement), an
aggregation layer (3x3 conv, channel layer norm, stride-2 max-pool, as in HTNet's
``Aggregate``) merges neighbouring tokens and doubles the width, and the last level attends
*across* the whole face (interaction of eye and lip areas); mean pooling and a linear head
follow. The published model is NesT-sized (dim 256, 3 levels, 2/2/10 blocks, 28x28 input
with 7x7 patches); the defaults here are deliberately small (dim 32, 2 levels, 2x2 patches
so each 14x14 region is a 7x7 token grid) for corpora of a few hundred clips.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mekit.errors import ConfigError, DataError
from mekit.models._base import IDENTITY_MEAN, IDENTITY_STD, MEModel, _expect_ndim, register_model


def tile_regions(flow: torch.Tensor, centers: torch.Tensor, crop: int = 14) -> torch.Tensor:
    """Crop ``crop`` x ``crop`` windows of ``flow`` [B, C, H, W] around four landmark
    ``centers`` [B, 4, 2] (x, y pixels: left eye, right eye, left lip corner, right lip
    corner) and tile them as [[left eye, right eye], [left lip, right lip]] ->
    [B, C, 2*crop, 2*crop]. Windows are shifted inside the image where a centre is near
    the border."""
    _expect_ndim(flow, 4, "tile_regions", "flow")
    b, c, h, w = flow.shape
    if centers.shape != (b, 4, 2):
        raise DataError("tile_regions needs four (x, y) centres per sample", value=tuple(centers.shape),
                        expected=f"({b}, 4, 2)")
    if crop > h or crop > w:
        raise DataError(f"crop {crop} is larger than the flow image", value=(h, w), expected=f">= {crop} pixels")
    out = flow.new_zeros(b, c, 2 * crop, 2 * crop)
    half = crop // 2
    for i in range(b):
        for r in range(4):
            x0 = int(min(max(round(float(centers[i, r, 0])) - half, 0), w - crop))
            y0 = int(min(max(round(float(centers[i, r, 1])) - half, 0), h - crop))
            oy, ox = (r // 2) * crop, (r % 2) * crop
            out[i, :, oy:oy + crop, ox:ox + crop] = flow[i, :, y0:y0 + crop, x0:x0 + crop]
    return out


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of a [B, C, H, W] map."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class TransformerBlock(nn.Module):
    """Pre-norm multi-head self-attention + MLP on token sequences [N, L, D]."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, drop: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=drop, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(drop), nn.Linear(hidden, dim),
                                 nn.Dropout(drop))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class BlockTransformer(nn.Module):
    """Transformer applied independently inside each of ``blocks`` x ``blocks`` windows."""

    def __init__(self, dim: int, heads: int, depth: int, blocks: int, tokens: int, mlp_ratio: float,
                 drop: float) -> None:
        super().__init__()
        self.blocks = blocks
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.layers = nn.Sequential(*[TransformerBlock(dim, heads, mlp_ratio, drop) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, d, h, w = x.shape
        n = self.blocks
        bh, bw = h // n, w // n
        # [B, D, n*bh, n*bw] -> [B*n*n, bh*bw, D]: one sequence per window
        t = x.view(b, d, n, bh, n, bw).permute(0, 2, 4, 3, 5, 1).reshape(b * n * n, bh * bw, d)
        t = self.layers(t + self.pos_embed)
        return t.view(b, n, n, bh, bw, d).permute(0, 5, 1, 3, 2, 4).reshape(b, d, h, w)


class HTNet(MEModel):
    input_kind = "roi_flow"

    def __init__(self, num_classes: int = 3, image_size: int = 28, patch_size: int = 2, in_chans: int = 3,
                 dim: int = 32, heads: int = 2, num_hierarchies: int = 2, block_repeats: int | Sequence[int] = 2,
                 mlp_ratio: float = 4.0, drop_rate: float = 0.0) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ConfigError(f"htnet: image_size {image_size} is not a multiple of patch_size {patch_size}")
        repeats = [block_repeats] * num_hierarchies if isinstance(block_repeats, int) else list(block_repeats)
        if len(repeats) != num_hierarchies:
            raise ConfigError(f"htnet: block_repeats {block_repeats} needs {num_hierarchies} entries")
        self.image_size = image_size
        self.patch_embed = nn.Conv2d(in_chans, dim, patch_size, stride=patch_size)
        side = image_size // patch_size
        self.levels = nn.ModuleList()
        self.aggregates = nn.ModuleList()
        d, hd = dim, heads
        for i, level in enumerate(reversed(range(num_hierarchies))):
            n = 2 ** level  # windows per side at this level: 2x2 regions first, the whole face last
            if side % n:
                raise ConfigError(f"htnet: a {side}x{side} token grid cannot be split into {n}x{n} regions; "
                                  "choose image_size/patch_size divisible by 2**(num_hierarchies-1)")
            self.levels.append(BlockTransformer(d, hd, repeats[i], n, (side // n) ** 2, mlp_ratio, drop_rate))
            if level > 0:
                self.aggregates.append(nn.Sequential(nn.Conv2d(d, 2 * d, 3, padding=1), ChannelLayerNorm(2 * d),
                                                     nn.MaxPool2d(3, stride=2, padding=1)))
                side = (side + 1) // 2
                d, hd = 2 * d, 2 * hd
        self.norm = nn.LayerNorm(d)
        self.num_features = d
        self.num_classes = num_classes
        self.head = self._make_classifier(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        _expect_ndim(x, 4, "htnet", "roi_flow")
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise DataError(f"htnet was built for {self.image_size}x{self.image_size} region images",
                            value=tuple(x.shape), expected=f"build_model('htnet', ..., image_size={x.shape[-1]})")
        x = self.patch_embed(x)
        for i, level in enumerate(self.levels):
            x = level(x)
            if i < len(self.aggregates):
                x = self.aggregates[i](x)
        return self.norm(x.flatten(2).mean(dim=2))


@register_model("htnet", input="roi_flow", input_size=(3, 28, 28), channels=3, mean=IDENTITY_MEAN, std=IDENTITY_STD,
                help="HTNet-style hierarchical transformer: local attention per facial region, then across regions")
def htnet(num_classes: int = 3, **kwargs) -> HTNet:
    return HTNet(num_classes=num_classes, **kwargs)
