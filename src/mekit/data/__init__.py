"""Dataset loaders: every format returns one :class:`~mekit.data.schema.SampleTable`.

Loaders are registered by name with the import path of their function, so listing them
(``mekit data check --help``, the GUI's menus) imports nothing heavy.

Every loader has the signature ``load(root, **options) -> SampleTable`` and labels rows
with the canonical emotion; :func:`load_dataset` then applies a label scheme.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from mekit.registry import Registry

#: name -> "module:function"
LOADERS: Registry[str] = Registry("dataset loader")
LOADERS.add("image_folder", "mekit.data.image_folder:load_image_folder",
            help="Kaggle-style image folders: root/{train,test}/<Class>/*, nested sub-splits, or root/<Class>/*")
LOADERS.add("casme2", "mekit.data.casme2:load_casme2",
            help="CASME II: coding sheet + sub<NN>/<Filename>/reg_img<N>.jpg")
LOADERS.add("samm", "mekit.data.samm:load_samm",
            help="SAMM: sheet MICRO_ONLY + <sub>/<Filename>/<sub>_<frame:05d>.jpg")
LOADERS.add("smic", "mekit.data.smic:load_smic", help="SMIC-HS: apex sheet + frame folders")
LOADERS.add("casme3", "mekit.data.casme3:load_casme3", help="CAS(ME)^3 part A: label sheet + frame folders")
LOADERS.add("megc2019", "mekit.data.megc:load_megc2019",
            help="MEGC 2019 composite (SMIC + CASME II + SAMM), negative/positive/surprise")
LOADERS.add("flow_images", "mekit.data.flow_images:load_flow_images",
            help="precomputed optical-flow images (u, v, strain channels) + CSV, as STSTNet/HTNet publish")
LOADERS.add("video", "mekit.data.video:load_videos", help="videos (mp4, avi) + optional CSV of clip intervals")
LOADERS.add("synthetic", "mekit.data.synthetic:load_synthetic",
            help="synthetic micro-expression corpus generated in code (the default for demos and tests)")


def get_loader(name: str):
    """The loader function registered under ``name``."""
    mod, fn = LOADERS.get(name).split(":")
    return getattr(importlib.import_module(mod), fn)


def load_dataset(name: str, root: str | Path | None = None, label_scheme: Any = None, **options: Any):
    """Load a dataset by loader name and apply a label scheme (name, YAML path or LabelScheme)."""
    from mekit.data.labels import apply_scheme

    table = get_loader(name)(Path(root) if root is not None else None, **options)
    return apply_scheme(table, label_scheme) if label_scheme is not None else table


__all__ = ["LOADERS", "get_loader", "load_dataset"]
