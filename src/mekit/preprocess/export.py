"""Export a corpus as a precomputed flow-image set, in the form STSTNet and HTNet publish theirs.

The onset->apex flow of every clip is computed by mekit's own preprocessing (the face stage,
apex and flow method the ``preprocess`` settings name, cached like any other run), reduced to
the published input: u, v and optical strain resized to ``size`` x ``size`` (28) and each
channel min-max scaled to [0, 1] per sample (:func:`mekit.preprocess.flow.flow_stack` with
``normalise='minmax'``, the published ``perChannelNormalize``), then written as 8-bit PNGs in
the layout :func:`mekit.data.flow_images.write_flow_image_set` knows. The set reads back with
the ``flow_images`` loader, so the flow-image path of every extractor and model can be run on
a corpus whose frames are at hand, and the result compared with the same corpus from frames.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from mekit.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def export_flow_image_set(table: Any, out: str | Path, *, layout: str = "htnet",
                          preprocess: dict[str, Any] | None = None, size: int = 28,
                          label_codes: dict[str, Any] | None = None, progress: bool = True) -> dict[str, Any]:
    """Compute the onset->apex flow image of every clip of ``table`` and write the set to ``out``.

    Args:
        table: a SampleTable of clips (frame folders or videos); still images and flow images
            have no onset->apex pair and are reported as skipped.
        out: the folder to write.
        layout: ``'htnet'`` (CSV + one image folder, ``<sub>_<filename_o> .png``) or
            ``'ststnet'`` (leave-one-subject-out folders); see
            :data:`mekit.data.flow_images.LAYOUTS`.
        preprocess: the preprocess settings (face stage, apex, flow method, crop size); the
            pair (onset->apex), the stack size (``size``), strain and the min-max scaling are
            set here, as the published form has them.
        size: side of the images (28 in the published sets).
        label_codes: label name -> code written (default: 0/1/2 for negative/positive/surprise
            when those are the labels, else the names).

    Returns ``{'out': folder, 'written': n, 'skipped': {sample_id: reason}}``. Subjects are
    written as their last part (``casme2/sub01`` -> ``sub01``) and the corpus (the table's
    ``corpus`` column, else the part before it, else the dataset) becomes the CSV's dataset
    column, as in HTNet's CSV.
    """
    from mekit.data.flow_images import LAYOUTS, write_flow_image_set
    from mekit.preprocess.pipeline import preprocess as run

    if layout not in LAYOUTS:  # before any clip is decoded
        raise ConfigError(f"flow-image layout {layout!r}: expected one of {sorted(LAYOUTS)}")
    df = table.df
    clips = df["media"].isin(["frames", "video"]) if "media" in df.columns else np.ones(len(df), bool)
    skipped = {sid: f"media {m!r} has no onset->apex frame pair" for sid, m in zip(df["sample_id"], df["media"])
               if m not in ("frames", "video")} if "media" in df.columns else {}
    if not clips.any():
        raise DataError(f"none of the {len(df)} samples is a clip to compute flow from",
                        expected="a table of frame folders or videos (media 'frames' or 'video')")
    sub = table.subset(list(df.loc[clips, "sample_id"])) if not clips.all() else table
    cfg = {**(preprocess or {}), "pairs": ["onset_apex"], "strain": True, "stack_sizes": [int(size)],
           "normalise": "minmax"}
    res = run(sub, cfg, progress=progress)
    skipped.update(res.skipped)
    samples = []
    try:
        for row in sub.df.to_dict("records"):
            sid = row["sample_id"]
            if sid in res.skipped:
                continue
            stack = res[sid][f"flow_{int(size)}"]  # float32[3, size, size] in [0, 1]
            img = np.clip(np.rint(stack.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
            # 'casme2/sub01' -> sub01 in corpus casme2; a composite's 'megc2019/samm/006' -> 006 in samm
            parts = str(row["subject"]).split("/")
            corpus = str(row.get("corpus") or (parts[-2] if len(parts) > 2 else row["dataset"]))
            samples.append({"subject": parts[-1],
                            "clip": str(row["clip"]), "corpus": corpus, "label": str(row["label"]),
                            "apex": res[sid].get("apex_frame"), "image": img})
    finally:
        res.close()
    if not samples:
        raise DataError(f"no clip of {len(df)} gave a flow image (e.g. {next(iter(skipped.items()), '')})",
                        expected="clips whose frames decode and contain a face")
    folder = write_flow_image_set(samples, out, layout=layout, label_codes=label_codes)
    log.info("flow-image set %s (%s layout): %d clips written, %d skipped", folder, layout, len(samples),
             len(skipped))
    return {"out": folder, "written": len(samples), "skipped": skipped}


__all__ = ["export_flow_image_set"]
