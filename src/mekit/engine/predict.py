"""Train one model on a whole dataset into a bundle, and predict new inputs with it.

:func:`train_bundle` fits the experiment's model on EVERY labelled sample of its dataset, as
one fold whose training part is the whole corpus: the only model selection is the model's
own (inner subject-grouped CV of a classical pipeline, early stopping on an inner validation
split of subjects for a neural one), so nothing is chosen on data the model is later judged
on. How well such a model generalises is what ``mekit evaluate`` measures with a protocol;
a bundle is for using the model, not for scoring it.

:func:`predict` turns any input (an image, a folder of images, a frame folder, a video, or a
dataset through its loader) into a :class:`~mekit.data.schema.SampleTable`, runs the
bundle's own preprocessing and features on it and predicts every sample. The bundle carries
the resolved preprocessing parameters, so a later change of a default never changes what
an old bundle computes; a feature width that no longer matches is refused.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mekit.engine.bundle import PREPROCESS_RUNTIME_FIELDS
from mekit.errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from mekit.config import ExperimentConfig
    from mekit.data.schema import SampleTable
    from mekit.engine.bundle import Bundle

log = logging.getLogger(__name__)

#: PreprocessConfig fields that change how, not what, is computed; never taken from a bundle
#: (a training machine's cache folder or core count means nothing on another machine).
_RUNTIME_FIELDS = PREPROCESS_RUNTIME_FIELDS

#: Classical features and model input kinds that describe motion between frames. A still
#: image has none (its "clip" is one frame, so its flow is zero): predictions on stills with
#: these are the model's answer to "no movement" and are flagged as such.
MOTION_FEATURES = ("hoof", "lbp_top")
MOTION_INPUTS = ("flow", "dual_flow", "roi_flow", "pair", "sequence", "clip3d")

INPUT_KINDS = ("auto", "image", "images", "frames", "video")
DATASET = "input"


# ---------------------------------------------------------------------------------------
# training on a whole dataset
# ---------------------------------------------------------------------------------------
@dataclass
class FullFit:
    """A model fitted on a whole dataset, with what its bundle records."""

    model: Any
    classes: list[str]
    meta: dict[str, Any]
    table: Any  # the labelled SampleTable it was trained on
    inputs: Any  # the FeatureSet it was trained on
    skipped: dict[str, str] = field(default_factory=dict)
    #: the config the model was trained with: a search's chosen candidate, else the given one
    config: Any = None


def resolved_preprocess(preprocess: dict[str, Any]) -> dict[str, Any]:
    """Every preprocessing parameter spelled out (defaults included), runtime settings removed."""
    from mekit.preprocess.pipeline import PreprocessConfig

    d = PreprocessConfig.from_dict(preprocess or {}).to_dict()
    return {k: v for k, v in d.items() if k not in _RUNTIME_FIELDS}


def _scheme_meta(scheme: Any, classes: list[str]) -> dict[str, Any]:
    if scheme is None:
        return {"name": None, "classes": list(classes), "mapping": None,
                "description": "no label scheme: labels are canonical emotion names"}
    return {"name": scheme.name, "classes": list(scheme.classes), "mapping": dict(scheme.mapping),
            "per_dataset": {k: dict(v) for k, v in scheme.per_dataset.items()},
            "description": scheme.description}


def _features_meta(cfg: ExperimentConfig, X: Any) -> dict[str, Any]:
    from mekit.engine.factory import is_neural

    shape = [int(s) for s in X.shape[1:]]
    if is_neural(cfg.model.name):
        from mekit.models import MODELS

        meta = MODELS.meta(cfg.model.name)
        return {"kind": "model_input", "input": meta["input"], "params": dict(cfg.features.params),
                "mean": list(meta["mean"]), "std": list(meta["std"]), "shape": shape}
    return {"kind": "features", "name": cfg.features.name, "params": dict(cfg.features.params), "shape": shape}


def fit_full(config: ExperimentConfig, progress: bool = True) -> FullFit:
    """Fit ``config``'s model on every labelled sample of its dataset (see the module notes)."""
    import numpy as np

    from mekit.data import load_dataset
    from mekit.engine.factory import build_inputs, make_model

    cfg = config
    if cfg.task != "classification":
        raise ConfigError(f"config.task is {cfg.task!r}: `mekit train` writes classification bundles; "
                          "intensity models are trained by mekit.intensity")
    from mekit.models.ensemble import ENSEMBLE

    if cfg.model.name == ENSEMBLE:
        # a bundle holds one model on one input; an ensemble is evaluated by `mekit evaluate`
        raise ConfigError("model ensemble: `mekit train` bundles one model; evaluate the ensemble with `mekit "
                          "evaluate`, or train one of its members")
    recipe_selection = None
    if cfg.search:
        # a search is settled first, by the same inner CV a nested run makes in each outer fold,
        # over every subject (the run's tasks layer does it: named by string, never imported here)
        choose = _task_function("classification", "choose", "the config has a search")
        cfg, recipe_selection = choose(cfg, progress)
    table = load_dataset(cfg.data.loader, cfg.data.root, cfg.data.label_scheme, **cfg.data.options)
    scheme = getattr(table, "scheme", None)  # the label scheme the table was labelled with
    table = table.subset(table.df["label"].notna()) if len(table) else table
    if len(table) == 0:
        raise DataError(f"dataset {cfg.data.loader} at {cfg.data.root} has no labelled samples",
                        expected="labelled samples to train on")
    feats = build_inputs(table, cfg, progress)
    if not feats.sample_ids:
        reasons = "; ".join(f"{s}: {r}" for s, r in list(feats.skipped.items())[:3])
        raise DataError(f"no sample of dataset {cfg.data.loader} could be turned into model inputs ({reasons})")
    usable = table.subset(feats.sample_ids)
    present = set(usable.df["label"])
    classes = [c for c in (list(scheme.classes) if scheme is not None else usable.classes) if c in present]
    if len(classes) < 2:
        raise DataError(f"dataset {cfg.data.loader} has only the class(es) {classes} after preprocessing",
                        expected="at least two classes to train a classifier")
    from mekit.data.labels import check_trainable

    # a final model needs every class at least twice (one subject is enough: nothing is held out)
    check_trainable(usable, classes=classes, min_subjects=1)
    y = np.asarray(usable.df["label"].tolist())
    groups = np.asarray(usable.df["subject"].tolist())
    model = make_model(cfg, cfg.seed)
    log.info("training %s on all %d samples of %d subjects", cfg.model.name, len(y), len(set(groups)))
    model.fit(feats.take(usable.sample_ids), y, groups)
    meta = {
        "task": cfg.task,
        "label_scheme": _scheme_meta(scheme, classes),
        "preprocess": resolved_preprocess(cfg.preprocess),
        "features": _features_meta(cfg, feats.X),
        "training": {
            "dataset": cfg.data.loader, "root": cfg.data.root, "n_samples": len(y),
            "n_subjects": len(set(groups)), "class_counts": usable.class_counts(), "seed": cfg.seed,
            "sample_ids": list(usable.sample_ids),
            "skipped": dict(feats.skipped),
            "selection": dict(getattr(model, "selection_", {}) or {}),
            **({"recipe_selection": recipe_selection} if recipe_selection else {}),
            "note": "trained on every subject of the dataset; its accuracy on new subjects is what "
                    "`mekit evaluate` estimates, not anything measured on the training data",
        },
    }
    return FullFit(model, classes, meta, usable, feats, dict(feats.skipped), cfg)


def train_bundle(config: ExperimentConfig, out: str | Path, progress: bool = True) -> Path:
    """Train ``config``'s model on its whole dataset and write one bundle (``.mekit``) to ``out``.

    The bundle holds the weights (or the fitted scikit-learn pipeline), the resolved config,
    the label scheme (classes in order, name, mapping), the resolved preprocessing
    parameters, the features config and the package versions; :func:`predict` rebuilds the
    exact pipeline from it. A config with ``task: intensity`` is handed to
    :func:`mekit.tasks.intensity.fit_intensity_bundle`. ``out`` naming an existing folder
    writes ``<config name>.mekit`` inside it; an unwritable ``out`` is refused before training.
    """
    from mekit.engine.bundle import save_bundle

    out = output_file(out, f"{config.name}.mekit", "bundle")
    _check_bundleable(config)
    if config.task == "intensity":
        fit_intensity_bundle = _task_function("intensity", "fit", "config.task is 'intensity'")
        return Path(fit_intensity_bundle(config, out, progress))
    fit = fit_full(config, progress)
    path = save_bundle(out, fit.model, fit.config, fit.classes, fit.meta)
    log.info("bundle written to %s", path)
    return path


def _check_bundleable(config: ExperimentConfig) -> None:
    """Refuse, before any training, a FLAML search that may pick a learner a bundle cannot hold."""
    from mekit.engine.bundle import FLAML_LEARNERS

    if config.model.name != "flaml":
        return
    from mekit.models.classical import FlamlClassifier

    learners = config.model.params.get("estimator_list", FlamlClassifier().estimator_list)
    names = [learners] if isinstance(learners, str) else list(learners)
    bad = [n for n in names if n not in FLAML_LEARNERS]
    if bad:
        raise ConfigError(f"model.params.estimator_list: {bad} cannot be stored in a bundle; "
                          f"`mekit train` takes some of {list(FLAML_LEARNERS)}")


# ---------------------------------------------------------------------------------------
# output files
# ---------------------------------------------------------------------------------------
def output_file(out: str | Path, default_name: str, what: str) -> Path:
    """The file ``out`` names, made ready to write, or one DataError line saying why not.

    An existing folder means ``<folder>/<default_name>``. Missing parent folders are
    created. Writability is tried with a real file (a permission-bit test says nothing for
    root, nor for a read-only file system), so a long training or prediction never ends
    with an unwritable output.
    """
    from mekit.paths import probe_writable

    path = Path(out).expanduser()
    if path.is_dir():
        path = path / default_name
    if path.is_dir():
        raise DataError(f"{what} output is a folder", path=path, expected="a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe_writable(path.parent)
    except OSError as e:
        why = ("a part of it is a file, not a folder" if isinstance(e, (FileExistsError, NotADirectoryError))
               else e.strerror or type(e).__name__)
        raise DataError(f"cannot write the {what} there ({why})", path=path,
                        expected="a path in a writable folder") from None
    return path


def _write_csv(df: Any, out: Path) -> None:
    tmp = out.with_name(out.name + ".tmp")
    try:
        df.to_csv(tmp, index=False)
        tmp.replace(out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise DataError(f"cannot write the predictions ({e.strerror or type(e).__name__})", path=out,
                        expected="a path in a writable folder") from None


# ---------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------
def input_record(name: str, media: str, path: Path, template: str | None = None, onset: int | None = None,
                 offset: int | None = None, fps: float | None = None) -> dict[str, Any]:
    """The SampleTable row of an ad-hoc input (dataset ``input``, its own subject, no label)."""
    return {"sample_id": f"{DATASET}/{name}", "dataset": DATASET, "subject": f"{DATASET}/{name}",
            "clip": path.name, "media": media, "path": str(path), "frame_template": template,
            "onset": onset, "apex": None, "offset": offset, "fps": fps, "emotion": None, "label": None,
            "action_units": (), "intensity": None, "split": ""}


def frame_template(names: list[str]) -> tuple[str, list[int]] | None:
    """``('img{frame}.jpg', [numbers])`` when the file names are one clip's frames, else None.

    The frame number is the last run of digits in a name; the names are one clip when every
    name gives the same text around that number, at least two numbers differ and
    ``template.format(frame=n)`` writes each name back (zero padding kept as ``{frame:03d}``).
    """
    parts, digits = set(), []
    for n in names:
        hits = list(re.finditer(r"\d+", n))
        if not hits:
            return None
        last = hits[-1]
        parts.add((n[:last.start()], n[last.end():]))
        digits.append(last.group())
    nums = [int(d) for d in digits]
    if len(parts) != 1 or len(names) < 2 or len(set(nums)) != len(nums):
        return None
    pre, post = parts.pop()
    width = min(len(d) for d in digits)
    padded = any(len(d) > 1 and d.startswith("0") for d in digits)
    placeholder = f"{{frame:0{width}d}}" if padded else "{frame}"
    template = pre.replace("{", "{{").replace("}", "}}") + placeholder + post.replace("{", "{{").replace("}", "}}")
    if any(template.format(frame=k) != n for k, n in zip(nums, names)):
        return None  # mixed padding: not one clip's numbering
    return template, sorted(nums)


def _images_in(folder: Path) -> list[Path]:
    from mekit.data.image_folder import IMAGE_EXTENSIONS

    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS)


_EXPECTED = "an image, a folder of images, a frame folder, a video, or a dataset (--loader NAME --root PATH)"


def input_table(input: str | Path | None = None, loader: str | None = None, root: str | Path | None = None,
                kind: str = "auto", fps: float | None = None, **loader_options: Any) -> SampleTable:
    """A SampleTable for whatever is to be predicted.

    With ``loader``, the dataset at ``root`` (or ``input``) through that loader, its rows
    labelled by their canonical emotion. Otherwise ``input`` is, by ``kind``:

    - ``image``: one image file (one sample);
    - ``images``: a flat folder of images, each a sample (no class folders);
    - ``frames``: a folder holding one clip's frames, ordered by the number in their names;
      onset = first frame, offset = last, apex left empty so the pipeline spots it;
    - ``video``: a video file (one clip spanning all its frames), via the video loader;
    - ``auto`` (default): a file by its extension; a folder is a frame folder when its file
      names differ only by one frame number (``img001.jpg``, ``img002.jpg``, ...), else a
      folder of images (or of videos, when it holds videos and no images). Pass ``images``
      or ``frames`` where that guess is wrong.

    ``fps`` is the frame rate of a frame folder (needed only by motion magnification).

    Every ad-hoc sample is dataset ``input`` and its own subject ``input/<name>``.
    """
    from mekit.data.schema import SampleTable

    if loader:
        from mekit.data import load_dataset

        src = root if root is not None else input
        if fps is not None:  # a loader's own option (the synthetic corpus has one)
            loader_options["fps"] = fps
        return load_dataset(loader, src, None, **loader_options)
    if loader_options:
        raise ConfigError(f"options {sorted(loader_options)} are loader options; give --loader NAME with them")
    if kind not in INPUT_KINDS:
        raise ConfigError(f"input kind {kind!r}; expected one of {INPUT_KINDS}")
    if input is None:
        raise DataError("nothing to predict", expected=_EXPECTED)
    p = Path(input).expanduser()
    if not p.exists():
        raise DataError("input does not exist", path=p, expected=_EXPECTED)
    p = p.resolve()
    from mekit.data.image_folder import IMAGE_EXTENSIONS
    from mekit.data.video import VIDEO_EXTENSIONS

    if p.is_file():
        if kind == "auto":
            suffix = p.suffix.lower()
            kind = "image" if suffix in IMAGE_EXTENSIONS else "video" if suffix in VIDEO_EXTENSIONS else ""
            if not kind:
                raise DataError(f"unrecognised file type {p.suffix!r}", path=p,
                                expected="an image (" + ", ".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
                                + ") or a video (" + ", ".join(e.lstrip(".") for e in VIDEO_EXTENSIONS) + ")")
        if kind == "image":
            return SampleTable.from_records([input_record(p.stem, "image", p)], name=DATASET)
        if kind == "video":
            from mekit.data.video import load_videos

            return load_videos(p, dataset=DATASET)
        raise DataError(f"is a file, not a folder (input kind {kind!r})", path=p, expected=_EXPECTED)

    images = _images_in(p)
    if kind == "video":
        from mekit.data.video import load_videos

        return load_videos(p, dataset=DATASET)
    if kind == "image":
        raise DataError("is a folder, not an image file", path=p, expected="an image file")
    if not images and kind == "auto" and any(f.suffix.lower() in VIDEO_EXTENSIONS for f in p.iterdir()):
        from mekit.data.video import load_videos

        return load_videos(p, dataset=DATASET)  # a folder of videos: each one clip
    if not images:
        subdirs = [d for d in p.iterdir() if d.is_dir() and not d.name.startswith(".")]
        why = ("holds only sub-folders: for a dataset give its loader (--loader NAME)" if subdirs
               else "holds no images")
        raise DataError(why, path=p, expected=_EXPECTED)
    found = frame_template([f.name for f in images]) if kind in ("auto", "frames") else None
    if kind == "frames" and found is None:
        raise DataError("file names are not one clip's numbered frames", path=p,
                        expected="frames named like img1.jpg, img2.jpg, ... (one number that changes)")
    if found is not None:
        template, nums = found
        return SampleTable.from_records([input_record(p.name, "frames", p, template, nums[0], nums[-1], fps)],
                                        name=DATASET)
    stems = [f.stem for f in images]
    dup = {s for s in stems if stems.count(s) > 1}
    records = [input_record(f.name if f.stem in dup else f.stem, "image", f) for f in images]
    return SampleTable.from_records(records, name=DATASET)


#: the longest an expression lasts (macro-expressions: 1/2 to 4 s): a clip longer than this is a
#: recording that may hold several expressions, not one expression to label
LONGEST_EXPRESSION_S = 4.0
#: frames of the longest expression at the highest frame rate corpora use (500 fps), for frame
#: folders whose rate is not known
LONGEST_EXPRESSION_FRAMES = 2000


def _refuse_recordings(table: SampleTable) -> None:
    """Refuse an ad-hoc video or frame folder longer than any expression: a classification bundle
    gives one label per clip, and a recording of an interview holding four expressions would come
    back as one label. ``mekit analyze`` spots the expressions in it and labels each."""
    for r in table.df.itertuples():
        if r.media not in ("video", "frames") or r.onset is None or r.offset is None:
            continue
        n = int(r.offset) - int(r.onset) + 1
        fps = float(r.fps) if r.fps is not None and r.fps == r.fps and r.fps > 0 else None
        long = n / fps > LONGEST_EXPRESSION_S if fps else n > LONGEST_EXPRESSION_FRAMES
        if long:
            length = f"{n / fps:.1f} s" if fps else f"{n} frames"
            raise DataError(f"is a recording of {length}, longer than any expression ({LONGEST_EXPRESSION_S:g} s): "
                            "a bundle labels one expression clip, and a recording may hold several",
                            path=r.path, expected=f"one expression clip; to spot and label the expressions of "
                            f"a recording use `mekit analyze {r.path} --model BUNDLE`")


# ---------------------------------------------------------------------------------------
# prediction
# ---------------------------------------------------------------------------------------
def bundle_config(bundle: Bundle, cache: bool = True) -> ExperimentConfig:
    """The experiment config that rebuilds ``bundle``'s pipeline (its resolved preprocessing)."""
    from mekit.config import ExperimentConfig, from_dict
    from mekit.engine.bundle import strip_runtime

    # load_bundle strips these already; a Bundle built in memory goes through it here too
    meta = strip_runtime(bundle.meta)
    cfg = from_dict(ExperimentConfig, meta["config"])
    pre = dict(meta.get("preprocess") or cfg.preprocess)
    if not cache:
        pre["cache"] = False
    cfg = replace(cfg, preprocess=pre)
    feats = meta.get("features") or {}
    if feats.get("input") == "image" and "mean" in feats:  # the normalisation it was trained with
        params = {**cfg.features.params, "mean": tuple(feats["mean"]), "std": tuple(feats["std"])}
        cfg = replace(cfg, features=replace(cfg.features, params=params))
    return cfg


def _still_note(bundle: Bundle, table: SampleTable) -> str | None:
    feats = bundle.meta.get("features") or {}
    motion = feats.get("name") in MOTION_FEATURES or feats.get("input") in MOTION_INPUTS
    n = int((table.df["media"] == "image").sum())
    if motion and n:
        what = feats.get("name") or feats.get("input")
        return (f"{n} input(s) are still images: this bundle's {what} inputs describe motion between frames, "
                "and a still image has none, so its prediction is the model's answer to 'no movement'")
    return None


def predict_table(bundle: Bundle, table: SampleTable, progress: bool = True,
                  cache: bool = True) -> pd.DataFrame:
    """Predict every sample of ``table`` with ``bundle``.

    Returns one row per predicted sample: ``sample_id``, ``pred``, ``p_<class>`` for every
    class of the bundle (summing to 1), and ``true`` (the label under the bundle's label
    scheme) where the table has labels. Samples that could not be preprocessed are left out
    and listed in ``df.attrs['skipped']`` (sample id -> reason); ``df.attrs['notes']`` holds
    caveats. ``cache=False`` keeps the preprocessing of ad-hoc inputs out of the cache (their
    sample ids name files, not stable corpus clips).
    """
    import numpy as np
    import pandas as pd

    from mekit.data.labels import LabelScheme, canonical
    from mekit.engine.factory import build_inputs

    classes = bundle.classes
    cfg = bundle_config(bundle, cache)
    feats = build_inputs(table, cfg, progress)
    skipped = {s: r for s, r in feats.skipped.items()}
    if not feats.sample_ids:
        reasons = "; ".join(f"{s}: {r}" for s, r in list(skipped.items())[:3]) or "no samples"
        raise DataError(f"no input could be predicted ({reasons})")
    want = (bundle.meta.get("features") or {}).get("shape")
    got = [int(s) for s in feats.X.shape[1:]]
    if want is not None and list(want) != got:
        raise DataError(f"the inputs built now have shape {got} but the bundle was trained on {list(want)}",
                        expected="the same mekit feature code that wrote the bundle")
    ids = list(feats.sample_ids)
    proba = np.asarray(bundle.model.predict_proba(feats.X), dtype=float)
    full = np.zeros((len(ids), len(classes)))
    for j, c in enumerate(bundle.model.classes_):
        full[:, classes.index(str(c))] = proba[:, j]
    out = pd.DataFrame({"sample_id": ids, "pred": [classes[i] for i in full.argmax(1)],
                        **{f"p_{c}": full[:, k] for k, c in enumerate(classes)}})
    rows = table.df.set_index("sample_id").loc[ids]
    sm = bundle.meta.get("label_scheme")
    if sm and sm.get("mapping") is not None:
        scheme = LabelScheme(sm["name"], tuple(sm["classes"]), dict(sm["mapping"]),
                             {k: dict(v) for k, v in (sm.get("per_dataset") or {}).items()})
        true = [None if e is None else scheme.map(e, ds) for e, ds in zip(rows["emotion"], rows["dataset"])]
    else:
        true = [None if lab is None else canonical(lab) for lab in rows["label"]]
    if any(t is not None for t in true):
        out["true"] = true
    notes = [n for n in (_still_note(bundle, table.subset(ids)),) if n]
    seen = set((bundle.meta.get("training") or {}).get("sample_ids") or ()) & set(ids)
    if seen:
        notes.append(f"{len(seen)} of these samples were in the bundle's training data: predictions on them "
                     "say nothing about accuracy on new subjects (use `mekit evaluate` for that)")
    unlabelled = sum(t is None for t in true)
    if "true" in out and unlabelled:
        notes.append(f"{unlabelled} sample(s) have no label under the bundle's scheme (true left empty)")
    out.attrs["skipped"] = skipped
    out.attrs["notes"] = notes
    log.info("predicted %d samples, skipped %d", len(out), len(skipped))
    return out


#: Bundles of other tasks are fitted and predicted by their task's own module, which sits in a
#: layer above the engine: named here by "module:function" strings and imported when used, so
#: the engine never imports upward.
TASK_BUNDLES: dict[str, dict[str, str]] = {
    "intensity": {"fit": "mekit.tasks.intensity:fit_intensity_bundle",
                  "predict": "mekit.tasks.intensity:predict_curves"},
    "classification": {"choose": "mekit.tasks.classification:choose_recipe"},
}


def _task_function(task: str, what: str, context: str) -> Any:
    import importlib

    spec = TASK_BUNDLES[task][what]
    module, attr = spec.split(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"{context}, but {module}.{attr} is not available in this installation ({e})") from None


def _predict_intensity(bundle: Bundle, table: SampleTable, out: Path | None, path: Path) -> Any:
    predict_curves = _task_function("intensity", "predict",
                                    f"{path}: this bundle predicts intensity curves (task 'intensity')")
    out_dir = None if out is None else (out.with_suffix("") if out.suffix.lower() == ".csv" else out)
    if out_dir is not None:  # an unwritable folder is named now, not after the curves are computed
        output_file(out_dir / "intensity_predictions.csv", "intensity_predictions.csv", "intensity predictions")
    result = predict_curves(bundle, table, out_dir)
    if out_dir is not None and hasattr(result, "attrs"):
        result.attrs["written_to"] = str(out_dir)
    return result


def predict(bundle_path: str | Path, input: str | Path | None = None, loader: str | None = None,
            root: str | Path | None = None, out_csv: str | Path | None = None, kind: str = "auto",
            progress: bool = False, fps: float | None = None, device: str | None = None,
            **loader_options: Any) -> pd.DataFrame:
    """Predict ``input`` (see :func:`input_table`) with the bundle at ``bundle_path``.

    Writes the predictions to ``out_csv`` when given (see :func:`predict_table` for the
    columns; samples that failed are listed in ``attrs['skipped']``, never silently lost);
    ``out_csv`` naming an existing folder writes ``predictions.csv`` inside it, and a path
    that cannot be written is refused before anything is predicted.
    An intensity bundle (``meta['task'] == 'intensity'``) is handed to
    :func:`mekit.tasks.intensity.predict_curves` with ``out_csv`` read as a folder
    (``preds.csv`` -> ``preds/``), and its result is returned.
    ``device``: where a neural model runs (a ``compute.device`` value; default ``auto``).
    """
    from mekit.engine.bundle import load_bundle

    path = Path(bundle_path)
    if device is not None:
        from mekit.config import ComputeConfig

        ComputeConfig(device=device)  # a misspelt device is refused before the bundle is read
    bundle = load_bundle(path, device=device)
    if kind == "auto" and bundle.meta.get("unit") == "image" and input is not None and Path(input).is_dir():
        # a bundle that rates still images reads a folder as images, even when their names
        # (S6_00.png, S6_01.png, ...) look like the frames of one clip
        kind = "images"
    table = input_table(input, loader, root, kind, fps, **loader_options)
    if bundle.meta.get("task") == "intensity":
        return _predict_intensity(bundle, table, None if out_csv is None else Path(out_csv), path)
    out = None if out_csv is None else output_file(out_csv, "predictions.csv", "predictions")
    # A loader reports every sample it had a problem with, also those it kept (e.g. "3 frames
    # absent ...; clip kept"): only those absent from the table were left out; the others are
    # predicted, and their problems become notes.
    kept = set(table.sample_ids)
    skipped_at_load = {p.sample: p.reason for p in table.report.problems if p.sample not in kept}
    kept_notes = [f"{p.sample}: {p.reason}" for p in table.report.problems if p.sample in kept]
    if len(table) == 0:
        raise DataError("nothing to predict: the input holds no samples", path=input or root, expected=_EXPECTED)
    if loader is None:
        _refuse_recordings(table)
    df = predict_table(bundle, table, progress=progress, cache=loader is not None)
    df.attrs["skipped"] = {**skipped_at_load, **df.attrs["skipped"]}
    df.attrs["notes"] = [*df.attrs["notes"], *kept_notes]
    if out is not None:
        _write_csv(df, out)
        df.attrs["written_to"] = str(out)
    return df


# ---------------------------------------------------------------------------------------
# what is available
# ---------------------------------------------------------------------------------------
def catalogue() -> dict[str, Any]:
    """Registered neural models (with the input each expects), classifiers and feature extractors."""
    from mekit.models.classical import CLASSIFIERS
    from mekit.config import to_plain
    from mekit.features import FEATURES
    from mekit.models import INPUT_KINDS as MODEL_INPUTS
    from mekit.models import MODELS

    models = []
    for name in MODELS.names():
        m = to_plain(MODELS.meta(name))
        models.append({"name": name, "input": m.pop("input"), "input_size": m.pop("input_size"),
                       "channels": m.pop("channels"), "help": m.pop("help"), **m})
    classifiers = [{"name": n, "help": CLASSIFIERS.meta(n).get("help", ""),
                    "grid": to_plain(CLASSIFIERS.meta(n).get("grid", {}))} for n in CLASSIFIERS.names()]
    features = [{"name": n, "help": FEATURES.meta(n).get("help", "")} for n in FEATURES.names()]
    return {"models": models, "classifiers": classifiers, "features": features, "input_kinds": dict(MODEL_INPUTS)}


__all__ = ["FullFit", "bundle_config", "catalogue", "fit_full", "frame_template", "input_table", "output_file",
           "predict", "predict_table", "resolved_preprocess", "train_bundle"]
