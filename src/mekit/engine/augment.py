"""Augmentation drawn once per clip (never per frame: a different flip or jitter on each
frame of one clip would itself look like motion).

Inputs are batches in a model's input kind (see mekit.models._base.INPUT_KINDS). For
optical-flow inputs a horizontal flip also negates the horizontal component u
(channel 0), otherwise the flipped field would point the wrong way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    hflip: bool = True
    affine: float = 0.05        # max translation (fraction of size) and scale change; rotation = 10 x this, in degrees
    color_jitter: float = 0.1   # brightness/contrast jitter for image inputs (not applied to flow)
    temporal_jitter: int = 1    # max frames of shift for sequences / 3D clips


def _as_images(x: torch.Tensor, kind: str) -> tuple[torch.Tensor, tuple]:
    """Reshape any input kind to [B, N, H, W] so one affine grid is shared by all frames of a clip."""
    shape = x.shape
    b = shape[0]
    if kind in ("pair", "sequence"):   # [B, T, C, H, W]
        return x.reshape(b, -1, shape[-2], shape[-1]), shape
    if kind == "clip3d":               # [B, C, T, H, W]
        return x.reshape(b, -1, shape[-2], shape[-1]), shape
    return x, shape


def augment_batch(x: torch.Tensor, kind: str, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    b = x.shape[0]
    flow_like = kind in ("flow", "dual_flow", "roi_flow")
    if cfg.temporal_jitter and kind in ("sequence", "clip3d"):
        tdim = 1 if kind == "sequence" else 2
        t = x.shape[tdim]
        shifts = torch.randint(-cfg.temporal_jitter, cfg.temporal_jitter + 1, (b,), generator=gen)
        idx = torch.arange(t)
        out = []
        for i in range(b):
            sel = (idx + shifts[i]).clamp(0, t - 1)
            out.append(x[i].index_select(tdim - 1, sel))
        x = torch.stack(out)
    imgs, shape = _as_images(x, kind)
    if cfg.hflip and kind != "roi_flow":  # flipping tiled regions would swap left and right regions
        flip = torch.rand(b, generator=gen) < 0.5
        if flip.any():
            imgs = imgs.clone()
            imgs[flip] = imgs[flip].flip(-1)
            if flow_like:
                imgs[flip, 0] = -imgs[flip, 0]
    if cfg.affine > 0:
        a = cfg.affine
        ang = (torch.rand(b, generator=gen) * 2 - 1) * a * 10 * torch.pi / 180
        sc = 1 + (torch.rand(b, generator=gen) * 2 - 1) * a
        tx, ty = ((torch.rand(2, b, generator=gen) * 2 - 1) * a * 2)
        theta = torch.zeros(b, 2, 3)
        theta[:, 0, 0] = torch.cos(ang) / sc
        theta[:, 0, 1] = -torch.sin(ang) / sc
        theta[:, 1, 0] = torch.sin(ang) / sc
        theta[:, 1, 1] = torch.cos(ang) / sc
        theta[:, 0, 2] = tx
        theta[:, 1, 2] = ty
        grid = F.affine_grid(theta, list(imgs.shape), align_corners=False)
        imgs = F.grid_sample(imgs, grid, padding_mode="border", align_corners=False)
    if cfg.color_jitter > 0 and not flow_like:
        j = cfg.color_jitter
        gain = 1 + (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * j
        bias = (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * j
        imgs = imgs * gain + bias
    return imgs.reshape(shape)
