"""One PNG per sample to eyeball preprocessing: crops, flow, strain, landmarks and ROIs.

Each figure shows, left to right: the aligned onset crop with the face-mesh landmarks and the
ROI boxes drawn on it, the apex and offset crops (same alignment, so anything that looks
shifted between them is motion the flow will see), the onset->apex flow in colour (hue =
direction, brightness = speed; :func:`mekit.preprocess.flow.flow_to_hsv_image`) and the
optical strain. Drawn with matplotlib's Agg canvas (no display, no global pyplot state).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def preview_filename(sample_id: str) -> str:
    """``casme2/sub01/EP02_01f`` -> ``casme2__sub01__EP02_01f.png`` (file-safe, readable)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", sample_id.replace("/", "__")).strip("._") + ".png"


def render_preview(sample: Mapping[str, Any], path: str | Path, title: str = "") -> Path:
    """Write the preview figure of one preprocessed sample (``result[sample_id]``) to ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from mekit.preprocess.flow import flow_to_hsv_image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    panels: list[tuple[str, np.ndarray, dict[str, Any]]] = []
    frames = {k: sample.get(f"{k}_frame") for k in ("onset", "apex", "offset")}
    for k in ("onset", "apex", "offset"):
        if k in sample:
            panels.append((f"{k} (frame {frames[k]})", sample[k], {}))
    if "uv_onset_apex" in sample:
        uv = sample["uv_onset_apex"]
        mag = np.linalg.norm(uv, axis=-1)
        panels.append((f"flow onset->apex (max {mag.max():.2f} px)", flow_to_hsv_image(uv), {}))
        if "strain_onset_apex" in sample:
            panels.append(("optical strain", sample["strain_onset_apex"], {"cmap": "inferno"}))
    elif "flow" in sample:  # a flow-image sample: show its channels as colour
        stk = np.asarray(sample["flow"])
        panels.append(("flow image (u, v, strain)", np.clip(stk[:3].transpose(1, 2, 0), 0, 1), {}))
    if not panels:
        raise ValueError("nothing to draw: the sample has no crops and no flow")

    fig = Figure(figsize=(2.6 * len(panels), 3.0), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, img, kw) in zip(axes, panels):
        ax.imshow(img, **kw)
        ax.set_title(name, fontsize=8)
        ax.set_axis_off()
    if "onset" in sample:
        ax = axes[0]
        lm = np.asarray(sample.get("landmarks", np.zeros((0, 2))))
        if len(lm):
            ax.scatter(lm[:, 0], lm[:, 1], s=0.6, c="cyan", linewidths=0)
        for name, (x0, y0, x1, y1) in (sample.get("rois") or {}).items():
            # boxes are pixel-index bounds [x0, x1); pixel centres sit at integer coordinates
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=0.7, ec="yellow"))
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return path


def preview(table: Any, config: Any = None, sample_ids: Iterable[str] | None = None,
            out_dir: str | Path = "preview", limit: int | None = 8, progress: bool = False) -> list[Path]:
    """Preprocess the chosen samples (through the cache) and write one PNG each to ``out_dir``.

    ``sample_ids`` default to the first ``limit`` samples of the table. Samples the pipeline
    skipped are logged and get no file. Returns the paths written.
    """
    from mekit.errors import DataError
    from mekit.preprocess.pipeline import PreprocessConfig, preprocess

    cfg = config if isinstance(config, PreprocessConfig) else PreprocessConfig.from_dict(config or {})
    if "onset_apex" not in cfg.pairs:
        cfg = cfg.replace(pairs=["onset_apex", *cfg.pairs])
    if sample_ids is None:
        ids = table.sample_ids[: limit or None]
    else:
        ids = list(sample_ids)
        unknown = [s for s in ids if s not in set(table.sample_ids)]
        if unknown:
            raise DataError(f"sample(s) not in the dataset: {unknown[:5]}",
                            expected=f"ids such as {table.sample_ids[:3]}")
    result = preprocess(table.subset(ids), cfg, progress=progress)
    from mekit.preprocess.face import OUTSIDE_WARN

    out = Path(out_dir)
    paths = []
    for sid in result.sample_ids:
        # a crop past the frame is named on the figure too (the pipeline has logged it), so the
        # replicated border seen in the crops is not mistaken for the face's surroundings
        outside = float(result.meta[sid].get("crop_outside") or 0.0)
        title = sid if outside <= OUTSIDE_WARN else f"{sid} - {outside:.0%} of the crop is replicated border"
        paths.append(render_preview(result[sid], out / preview_filename(sid), title=title))
    for sid, why in result.skipped.items():
        log.warning("no preview for %s: %s", sid, why)
    result.close()
    return paths


__all__ = ["preview", "render_preview", "preview_filename"]
