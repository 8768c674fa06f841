"""Registered feature extractors: ``(table, preprocess: dict, progress, **params) -> FeatureSet``.

Clips go through the cached preprocessing pipeline (one face alignment per clip, flow,
sampled frames). Still images (``media='image'``) go through the same face stage (detect,
landmarks, level the eye line, crop with the margin): an uncropped photograph is cropped to
its face like a clip's frame, and a still whose loader marked it as a face crop (CK+48) gets
detector ``'none'`` under the default ``'auto'`` (see
:func:`mekit.preprocess.face.detector_for`). A still in which no face is found is skipped
with the reason, never used whole. Descriptors that cost more than the
pipeline (frozen CNN embeddings) are cached per sample under a key of every parameter.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from mekit.features.base import FeatureSet
from mekit.features.planning import Need

log = logging.getLogger(__name__)


def _pipeline(table, preprocess: dict, progress: bool, **force: Any):
    from mekit.preprocess.pipeline import preprocess as run

    return run(table, {**(preprocess or {}), **force}, progress=progress)


# ---------------------------------------------------------------------------------------
# what each extractor reads from the pipeline (see mekit.features.planning): every function
# takes the extractor's parameters (all of them, defaults filled in) and the run's preprocess
# section; the extractors below call the same functions, so the plan and the reads agree.
# ---------------------------------------------------------------------------------------
#: a still's face stage: its alignment only (no flow, no frame sampling, whatever the
#: preprocess section asks of clips)
STILL_FACES = Need({"pairs": [], "sampling": None, "magnify": None}, media="stills")
#: a clip's onset, apex and offset crops, written with its onset->apex flow
CLIP_FACES = Need({"pairs": ["onset_apex"]}, media="clips")


def face_needs(params: Mapping[str, Any], preprocess: Mapping[str, Any]) -> list[Need]:
    """hog, frozen_cnn, image, pair: face crops of stills and of clips (:func:`face_crops`).

    frozen_cnn reads crops only for samples whose embedding is not cached yet, but declares
    them for every sample, so that the plan depends on its parameters alone and not on the
    state of the embedding cache; for a sample preprocessed before, that costs one read of its
    preprocessing cache entry."""
    return [STILL_FACES, CLIP_FACES]


def hoof_needs(params: Mapping[str, Any], preprocess: Mapping[str, Any]) -> list[Need]:
    """hoof: onset->apex flow, and apex->offset with ``apex_offset``."""
    return [Need({"pairs": ["onset_apex", "apex_offset"] if params["apex_offset"] else ["onset_apex"]})]


def sampled_frames_needs(params: Mapping[str, Any], preprocess: Mapping[str, Any]) -> list[Need]:
    """lbp_top, sequence, clip3d: ``n_frames`` frames sampled uniformly, at ``size`` px."""
    return [Need({"sampling": {"method": "uniform", "n": int(params["n_frames"])}, "frame_size": int(params["size"])})]


def flow_stack_needs(params: Mapping[str, Any], preprocess: Mapping[str, Any]) -> list[Need]:
    """flow, dual_flow: the u/v/strain stack at ``size`` besides the configured stack sizes."""
    return [Need({"stack_sizes": sorted({int(params["size"]), *preprocess.get("stack_sizes", ())})})]


def roi_flow_needs(params: Mapping[str, Any], preprocess: Mapping[str, Any]) -> list[Need]:
    """roi_flow: the u/v/strain stack at twice ``size`` besides the configured stack sizes."""
    return [Need({"stack_sizes": sorted({2 * int(params["size"]), *preprocess.get("stack_sizes", ())})})]


def _read_still(path: str, alignment, size: int) -> np.ndarray:
    """The aligned ``size`` x ``size`` RGB face crop of a still image."""
    from mekit.preprocess.io import read_image

    img = read_image(path, rgb=True)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return alignment.apply(img, size)


def still_crops(table, preprocess: dict, progress: bool, size: int = 112):
    """(ids, crops, skipped) for the still images of ``table``: each through the pipeline's face
    stage (alignment only: no flow, no frame sampling, whatever ``preprocess`` asks of clips),
    then cropped at ``size`` with that alignment. The alignment is cached like a clip's, so
    a second extractor or a second run reuses it."""
    ids, crops = [], []
    res = _pipeline(table, preprocess, progress, **STILL_FACES.overrides)
    skipped = dict(res.skipped)
    for sid, path in zip(table.df["sample_id"], table.df["path"]):
        if sid in skipped:
            continue
        try:
            crops.append(_read_still(path, res.alignment(sid), size))
            ids.append(sid)
        except Exception as e:  # noqa: BLE001 - one bad image never sinks a run
            skipped[sid] = f"unreadable image {path}: {e}"
            log.warning("skipped %s: %s", sid, skipped[sid])
    res.close()
    return ids, crops, skipped


def face_crops(table, preprocess: dict, progress: bool, which: str = "apex", size: int = 112):
    """(ids, uint8[N, size, size, 3] RGB crops, skipped): the ``which`` crop of each clip, or the
    aligned face crop of each still image."""
    import cv2

    df = table.df
    still = df["media"] == "image"
    ids, crops, skipped = still_crops(table.subset(still), preprocess, progress, size) if still.any() \
        else ([], [], {})
    clips = table.subset(~still) if (~still).any() else None
    if clips is not None:
        res = _pipeline(clips, preprocess, progress, **CLIP_FACES.overrides)
        skipped.update(res.skipped)
        for sid in clips.sample_ids:
            if sid in res.skipped:
                continue
            c = res[sid][which]
            crops.append(cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) if c.shape[0] != size else c)
            ids.append(sid)
    order = {s: i for i, s in enumerate(table.sample_ids)}
    perm = sorted(range(len(ids)), key=lambda i: order[ids[i]])
    arr = np.stack([crops[i] for i in perm]) if crops else np.zeros((0, size, size, 3), np.uint8)
    return [ids[i] for i in perm], arr, skipped


def hoof_features(table, preprocess: dict, progress: bool = True, grid: int = 5, bins: int = 8,
                  use_strain: bool = True, apex_offset: bool = False) -> FeatureSet:
    """HOOF + mean strain per cell of onset->apex flow (and apex->offset when asked)."""
    from mekit.errors import ConfigError

    for name, v in (("grid", grid), ("bins", bins)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"features.params.{name}: {v!r}; expected a positive integer")
    from mekit.features.flow_features import hoof_descriptor

    (need,) = hoof_needs({"apex_offset": apex_offset}, preprocess)
    pairs = need.overrides["pairs"]
    res = _pipeline(table, preprocess, progress, **need.overrides)
    ids, rows = [], []
    for sid in table.sample_ids:
        if sid in res.skipped:
            continue
        item = res[sid]
        rows.append(np.concatenate([hoof_descriptor(item[f"uv_{p}"], item.get(f"strain_{p}") if use_strain else None,
                                                    grid, bins) for p in pairs]))
        ids.append(sid)
    width = len(pairs) * grid * grid * (bins + int(use_strain))
    return FeatureSet(ids, np.stack(rows) if rows else np.zeros((0, width), np.float32), dict(res.skipped))


def hog_features(table, preprocess: dict, progress: bool = True, size: int = 64, which: str = "apex",
                 pixels_per_cell: int = 8, cells_per_block: int = 2, orientations: int = 9) -> FeatureSet:
    """HOG of the greyscale face (apex crop for clips, the aligned face crop for stills)."""
    from mekit.features.handcrafted import hog_descriptor

    ids, crops, skipped = face_crops(table, preprocess, progress, which, size)
    grey = crops.astype(np.float32).mean(axis=3) / 255.0
    X = np.stack([hog_descriptor(g, (pixels_per_cell,) * 2, (cells_per_block,) * 2, orientations) for g in grey]) \
        if len(grey) else np.zeros((0, 0), np.float32)
    return FeatureSet(ids, X, skipped)


def lbp_top_features(table, preprocess: dict, progress: bool = True, n_frames: int = 10, size: int = 64,
                     grid: int = 5, radius: tuple = (1, 1, 2), n_points: int = 8) -> FeatureSet:
    """LBP-TOP over ``n_frames`` frames sampled uniformly from onset to offset."""
    import cv2

    from mekit.features.handcrafted import lbp_top

    (need,) = sampled_frames_needs({"n_frames": n_frames, "size": size}, preprocess)
    res = _pipeline(table, preprocess, progress, **need.overrides)
    ids, rows = [], []
    for sid in table.sample_ids:
        if sid in res.skipped:
            continue
        fr = res[sid]["frames"]
        grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in fr])
        rows.append(lbp_top(grey, grid=(grid, grid), radius=tuple(radius), n_points=n_points))
        ids.append(sid)
    return FeatureSet(ids, np.stack(rows) if rows else np.zeros((0, 0), np.float32), dict(res.skipped))


def frozen_cnn_features(table, preprocess: dict, progress: bool = True, backbone: str = "efficientnet_lite0",
                        weights: str | None = None, which: str = "apex", size: int = 224,
                        crop_size: int = 112, batch_size: int = 32) -> FeatureSet:
    """Embeddings of a frozen pretrained CNN (EfficientNet-Lite0 ImageNet weights by default,
    or any registered backbone with a user-supplied state dict). Cached per sample."""
    import torch

    from mekit.models import MODELS, build_model, load_backbone_weights
    from mekit.models.efficientnet import frozen_features
    from mekit.preprocess.cache import Cache, param_key

    from mekit.config import HOW_PREPROCESS

    # the preprocessing settings that change the crops (not workers or cache paths), as plain data
    prep = {k: v for k, v in dict(preprocess or {}).items() if k not in HOW_PREPROCESS}
    params = {"backbone": backbone, "weights": weights, "which": which, "size": size, "crop_size": crop_size,
              "preprocess": prep}
    key = param_key("frozen_cnn", params)
    # Honour the preprocessing cache switch: one-off inputs (mekit predict) name files, not
    # stable clips, and must not reuse another file's embedding under the same sample id.
    cache = Cache(enabled=bool((preprocess or {}).get("cache", True)))
    ids_all = table.sample_ids
    feats: dict[str, np.ndarray] = {}
    for sid in ids_all:
        hit = cache.load("features", key, sid)
        if hit is not None:
            feats[sid] = hit[0]["x"]
    todo = table.subset([s for s in ids_all if s not in feats])
    skipped: dict[str, str] = {}
    if len(todo):
        ids, crops, skipped = face_crops(todo, preprocess, progress, which, crop_size)
        if len(ids):
            if backbone == "efficientnet_lite0" and weights is None:
                X = frozen_features(crops, batch_size=batch_size, image_size=size)
            else:
                MODELS.get(backbone)
                net = build_model(backbone, num_classes=0, pretrained=False) if weights else \
                    build_model(backbone, num_classes=0)
                if weights:
                    load_backbone_weights(net, weights)
                net.eval()
                dc = net.data_config
                x = torch.as_tensor(crops).permute(0, 3, 1, 2).float() / 255.0
                x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
                x = (x - torch.tensor(dc["mean"]).view(1, 3, 1, 1)) / torch.tensor(dc["std"]).view(1, 3, 1, 1)
                with torch.no_grad():
                    X = torch.cat([net.forward_features(x[i:i + batch_size])
                                   for i in range(0, len(x), batch_size)]).numpy()
            for sid, row in zip(ids, X):
                feats[sid] = np.asarray(row, np.float32)
                cache.save("features", key, sid, {"x": feats[sid]})
    ids = [s for s in ids_all if s in feats]
    return FeatureSet(ids, np.stack([feats[s] for s in ids]) if ids else np.zeros((0, 0), np.float32), skipped)


def flow_input(table, preprocess: dict, progress: bool = True, name: str = "flow", size: int = 28) -> FeatureSet:
    """The u/v/strain stack [N, 3, size, size] for optical-flow CNNs (input kind 'flow')."""
    (need,) = flow_stack_needs({"size": size}, preprocess)
    res = _pipeline(table, preprocess, progress, **need.overrides)
    ids = [s for s in table.sample_ids if s not in res.skipped]
    X = res.stack(f"{name}_{size}", ids) if ids else np.zeros((0, 3, size, size), np.float32)
    return FeatureSet(ids, X, dict(res.skipped))


def roi_flow_input(table, preprocess: dict, progress: bool = True, size: int = 28) -> FeatureSet:
    """HTNet-style input (kind 'roi_flow'): the u/v/strain stack at twice ``size``, with four
    ``size/2`` windows around the eyes and lip corners (from the face-mesh ROIs, or the
    geometric default layout) tiled 2x2 into [N, 3, size, size]."""
    import torch

    from mekit.models.htnet import tile_regions

    big = 2 * int(size)
    crop_size = int((preprocess or {}).get("size", 128))
    (need,) = roi_flow_needs({"size": size}, preprocess)
    res = _pipeline(table, preprocess, progress, **need.overrides)
    ids, rows = [], []
    order = ("left_eye", "right_eye", "left_lip_corner", "right_lip_corner")
    for sid in table.sample_ids:
        if sid in res.skipped:
            continue
        item = res[sid]
        rois = item["rois"]
        # ROIs are in the pixels of the flow field: the face crop's for a clip, the image's own
        # for a precomputed flow image (whose flow is recovered at the image's size)
        scale = big / (item["uv_onset_apex"].shape[1] if "uv_onset_apex" in item else crop_size)
        centers = torch.tensor([[((rois[n][0] + rois[n][2]) / 2 * scale, (rois[n][1] + rois[n][3]) / 2 * scale)
                                 for n in order]], dtype=torch.float32)
        flow = torch.as_tensor(item[f"flow_{big}"])[None]
        rows.append(tile_regions(flow, centers, crop=int(size) // 2)[0].numpy())
        ids.append(sid)
    X = np.stack(rows) if rows else np.zeros((0, 3, size, size), np.float32)
    return FeatureSet(ids, X, dict(res.skipped))


def image_input(table, preprocess: dict, progress: bool = True, size: int = 112, which: str = "apex",
                mean: tuple = (0.0, 0.0, 0.0), std: tuple = (1.0, 1.0, 1.0)) -> FeatureSet:
    """Face crops [N, 3, size, size] (apex crop of clips, or the still's face crop), normalised with the
    model's mean/std (input kind 'image')."""
    ids, crops, skipped = face_crops(table, preprocess, progress, which, size)
    X = crops.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    X = (X - np.asarray(mean, np.float32).reshape(1, 3, 1, 1)) / np.asarray(std, np.float32).reshape(1, 3, 1, 1)
    return FeatureSet(ids, np.ascontiguousarray(X), skipped)


def pair_input(table, preprocess: dict, progress: bool = True, size: int = 64) -> FeatureSet:
    """Onset and apex crops [N, 2, 3, size, size] in 0..1 for Siamese models (input kind 'pair')."""
    ids_o, on, sk = face_crops(table, preprocess, progress, "onset", size)
    ids_a, ap, _ = face_crops(table.subset(ids_o), preprocess, False, "apex", size)
    assert ids_o == ids_a
    X = np.stack([on, ap], axis=1).transpose(0, 1, 4, 2, 3).astype(np.float32) / 255.0
    return FeatureSet(ids_o, X, sk)


def sequence_input(table, preprocess: dict, progress: bool = True, n_frames: int = 8, size: int = 64,
                   layout: str = "sequence", relative: bool = False) -> FeatureSet:
    """Frames sampled onset->offset: [N, T, 3, S, S] ('sequence') or [N, 3, T, S, S] ('clip3d'), in 0..1.

    ``relative=True`` gives each frame minus the clip's first (onset) frame instead, divided by
    the clip's 99th percentile of absolute change (so a faint and a strong expression span the
    same range, about -1..1). The subject's appearance, which is the same in every frame, then
    cancels: a from-scratch video network on raw frames of ~200 clips learns identity rather than
    the micro-movement. Computed from each clip alone, so it is fold-independent."""
    (need,) = sampled_frames_needs({"n_frames": n_frames, "size": size}, preprocess)
    res = _pipeline(table, preprocess, progress, **need.overrides)
    ids = [s for s in table.sample_ids if s not in res.skipped]
    X = res.stack("frames", ids).astype(np.float32) / 255.0 if ids else np.zeros((0, n_frames, size, size, 3))
    if relative and len(X):
        X = X - X[:, :1]
        scale = np.percentile(np.abs(X).reshape(len(X), -1), 99, axis=1)
        X = X / np.maximum(scale, 1e-3).reshape(-1, 1, 1, 1, 1)
    X = X.transpose(0, 1, 4, 2, 3)  # N, T, C, H, W
    if layout == "clip3d":
        X = X.transpose(0, 2, 1, 3, 4)
    return FeatureSet(ids, np.ascontiguousarray(X), dict(res.skipped))
