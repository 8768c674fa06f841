"""Intensity experiments (``task: intensity``): targets -> per-frame inputs -> subject-independent
folds -> fit on training subjects -> predict every frame of the held-out clips -> metrics ->
report folder. Also the trained-model side: :func:`fit_intensity_bundle` and
:func:`predict_curves` (what ``mekit predict`` calls for an intensity bundle).

Honest by construction, like :mod:`mekit.tasks.classification`:

- subject-independent protocols only (``loso``, ``group_kfold``, ``lodo``, ``megc2019``); the
  leaky ``random_split`` is refused, since a per-frame regressor that has seen other frames of
  the same clip (or person) would be scored on near-copies of its training rows;
- everything learned (scalers, ridge penalty, SVR C, early-stopping epoch) is fitted on the
  training subjects of a fold only (inner subject-grouped CV or an inner validation split);
- a model never receives a held-out clip's apex or offset annotation: its inputs are built
  from the clip's frames from the onset to the last frame on disk
  (:func:`mekit.intensity.models.input_table`); the annotations only make the targets and the
  scores. See :mod:`mekit.intensity.models` for the caveat this leaves on corpora whose folders
  end at the offset (CASME II), and the ``position_prior`` reference every report carries.

The report folder holds ``predictions.csv`` (per frame: ``sample_id, subject, fold, seed,
frame, target, pred`` plus the annotations used for scoring and the position-prior reference),
``clips.csv`` (per clip: peak value and frame against the annotated apex, per-clip errors),
``metrics.json`` (``mae, rmse, pearson, spearman, ccc, icc, peak_within_10pct`` and more),
``config.resolved.yaml``, ``environment.json``, ``report.md`` and the curve PNGs under
``curves/``; ``folds/`` keeps each finished fold for resuming.

Still images (an image folder whose ``annotations.csv`` rates each image in its ``intensity``
column, read with ``intensity.source: rating``): one value per image, no curve. A classical
regressor (``ridge``, ``svr``, ``lightgbm``) reads the registered image features named by
``intensity.image_features`` (HOG by default, the extractor classification uses), or a 2-D CNN
(``compact_cnn``, ``resnet18_flow``, ... with a regression head:
:class:`~mekit.intensity.models.StillRegressorNet`) reads the aligned face crop at
``intensity.image_size``, under the same subject-grouped protocols and metrics;
``predictions.csv`` and ``clips.csv`` then hold one row per image.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mekit import events
from mekit.config import ExperimentConfig
from mekit.errors import ConfigError, DataError
from mekit.intensity.models import (REGRESSORS, ClipInput, FrameRegressor, IntensityNet, IntensitySettings,
                                    StillRegressorNet, build_clip_inputs, clip_vector, frame_matrix, needs_of,
                                    smooth_curve)
from mekit.tasks.base import FoldJob, Prepared, save_fold_table

log = logging.getLogger(__name__)

#: Protocols an intensity run accepts: every one keeps each subject on one side of each fold.
ALLOWED_PROTOCOLS = ("loso", "group_kfold", "lodo", "megc2019")

#: The headline metric keys every intensity ``metrics.json`` carries.
HEADLINE = ("mae", "rmse", "pearson", "spearman", "ccc", "icc", "peak_within_10pct")

SELECTION_STATEMENT = ("Everything learned (scaling, regression penalties, early-stopping epochs) was fitted on "
                       "the training subjects of each fold only (inner subject-grouped CV or an inner validation "
                       "split of training subjects). Models read a clip's frames from its onset to the last "
                       "frame on disk; no apex or offset annotation of any clip reached a model's input.")

STILLS_SELECTION_STATEMENT = ("Everything learned (feature scaling, regression penalties, a CNN's early-stopping "
                              "epoch) was fitted on the training subjects of each fold only (inner subject-grouped "
                              "CV or an inner validation split of training subjects); each image is scored once, "
                              "by the fold that held its subject out.")

CAVEAT = ("The frame folders of CASME II and of the synthetic corpus end at the annotated offset, so the "
          "last frame on disk is the offset: a model that knows a frame's position within its clip benefits "
          "from that annotation indirectly. The `position_prior` reference (a curve of the relative position "
          "in the clip alone, no pixels) shows how much of the score that alone reaches.")


@dataclass
class IntensityResult:
    config: ExperimentConfig
    #: per frame (per-frame sources) or per clip (facs, rating)
    predictions: pd.DataFrame
    metrics: dict[str, Any]
    #: one row per clip: peak value and frame against the annotated apex, per-clip errors
    clips: pd.DataFrame
    out_dir: Path | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    #: every clip left out, with stage and reason (also written to excluded.csv)
    excluded: list[dict[str, str]] = field(default_factory=list)


# -- checks and targets ---------------------------------------------------------------------------
def check_config(cfg: ExperimentConfig) -> IntensitySettings:
    """The validated intensity settings of a config; refuses leaky protocols and unknown models."""
    if cfg.task != "intensity":
        raise ConfigError(f"config.task is {cfg.task!r}; the intensity runner needs task: intensity")
    name = cfg.protocol.name
    if name == "random_split":
        raise ConfigError("protocol random_split is refused for intensity: a sample-level split puts frames of "
                          "the same subjects on both sides, so the scores would not say anything about unseen "
                          f"people; use one of {', '.join(ALLOWED_PROTOCOLS)}")
    if name not in ALLOWED_PROTOCOLS:
        raise ConfigError(f"protocol {name!r} is not available for intensity; expected one of "
                          f"{', '.join(ALLOWED_PROTOCOLS)} (subject-independent protocols)")
    s = IntensitySettings.from_config(cfg.intensity)
    if _still_net(cfg.model.name, s):
        # a 2-D CNN rating still images (StillRegressorNet): whether the data are stills is known
        # once they are loaded (Intensity.prepare refuses it on clips)
        if s.classification_weight > 0:
            raise ConfigError("intensity.classification_weight > 0 (a joint model) reads clips; a still-image "
                              f"regressor ({cfg.model.name!r}) rates one image at a time")
        return s
    needs_of(cfg.model.name, s)  # ConfigError for an unknown or unsupported model
    if cfg.model.name in REGRESSORS and s.classification_weight > 0:
        raise ConfigError("intensity.classification_weight > 0 (a joint model) needs a neural model; "
                          f"{cfg.model.name!r} is a classical regressor")
    if not s.per_frame and cfg.model.name not in REGRESSORS:
        raise ConfigError(f"intensity source {s.source!r} gives one value per clip; per-clip targets are "
                          f"learned by the classical regressors ({', '.join(REGRESSORS.names())}), and those of "
                          f"still images also by a 2-D CNN ({', '.join(StillRegressorNet.models())})")
    if not s.per_frame and cfg.model.name == "position_prior":
        raise ConfigError("position_prior predicts a curve over the clip; it has nothing to say about a "
                          "per-clip intensity")
    if s.image_feature_params:  # read only on still images, but a wrong key is wrong before any loading
        from mekit.features import check_extractor_params

        check_extractor_params(s.image_features, dict(s.image_feature_params), "intensity.image_feature_params")
    return s


def _still_net(model_name: str, s: IntensitySettings) -> bool:
    """Whether the config names a CNN that rates still images (one target per image, a 2-D CNN)."""
    return not s.per_frame and model_name not in REGRESSORS and model_name in StillRegressorNet.models()


def _needs(model_name: str, s: IntensitySettings) -> set[str]:
    """Per-frame products to build: the model's, plus the position (for the reference) with
    per-frame targets, or the raw HOOF (the per-clip feature vector) with per-clip targets."""
    return needs_of(model_name, s) | ({"position"} if s.per_frame else {"hoof"})


def clip_targets(table: Any, s: IntensitySettings) -> tuple[dict[str, Any], dict[str, str]]:
    """Targets by sample id (:func:`mekit.intensity.targets.intensity_targets`) and the reasons
    of the clips left without one."""
    from mekit.data.schema import LoadReport
    from mekit.intensity.targets import intensity_targets

    rep = LoadReport()
    scale = tuple(s.scale) if s.scale is not None else None
    t = intensity_targets(table, s.source, profile=s.profile, sigma=s.sigma, column=s.column, scale=scale,
                          report=rep)
    return t, {p.sample: p.reason for p in rep.problems}


def frame_values(curve: np.ndarray, onset: int, frames: np.ndarray) -> np.ndarray:
    """A per-frame target (element i = frame onset + i) at the given frame numbers; 0 outside it."""
    idx = np.asarray(frames, np.int64) - int(onset)
    ok = (idx >= 0) & (idx < len(curve))
    out = np.zeros(len(idx), np.float64)
    out[ok] = np.asarray(curve, np.float64)[idx[ok]]
    return out


# -- one fold ----------------------------------------------------------------------------------------
def _fit(cfg: ExperimentConfig, s: IntensitySettings, model_name: str, clips: list[ClipInput],
         targets: list[Any], subjects: list[str], seed: int, soft: np.ndarray | None = None,
         classes: list[str] | None = None, fdir: Path | None = None) -> Any:
    """A fitted model (FrameRegressor or IntensityNet) on the given training clips; a neural model
    checkpoints every epoch in ``fdir`` (a fold's folder), so a killed fold resumes mid-training."""
    if model_name in REGRESSORS:
        params = cfg.model.params if model_name == cfg.model.name else {}
        reg = FrameRegressor(model_name, params, seed)
        if not s.per_frame:
            X = np.stack([clip_vector(c) for c in clips])
            return reg.fit(X, np.asarray(targets, np.float64), np.asarray(subjects))
        st = s.train_stride
        X = np.concatenate([frame_matrix(c, model_name, s.features)[::st] for c in clips])
        y = np.concatenate([np.asarray(t)[::st] for t in targets])
        g = np.concatenate([[subj] * len(c.frames[::st]) for c, subj in zip(clips, subjects)])
        return reg.fit(X, y, g)
    net = IntensityNet(model_name, cfg.model.params, s, seed, compute=cfg.compute, checkpoint_dir=fdir)
    return net.fit(clips, [np.asarray(t, np.float64) for t in targets], np.asarray(subjects), soft, classes)


def _predict(model: Any, model_name: str, clip: ClipInput, s: IntensitySettings) -> np.ndarray:
    """Smoothed, 0-1 clipped intensity of every frame of a clip."""
    if isinstance(model, IntensityNet):
        raw = model.predict_clip(clip)
    else:
        raw = model.predict(frame_matrix(clip, model_name, s.features))
    return smooth_curve(raw, s.smooth)


def _predict_pipeline(pipe: Any, model_name: str, clip: ClipInput, s: IntensitySettings) -> np.ndarray:
    return smooth_curve(np.asarray(pipe.predict(frame_matrix(clip, model_name, s.features)), np.float64), s.smooth)


# -- the experiment -------------------------------------------------------------------------------------
def _classes_and_soft(table: Any, ids: list[str]) -> tuple[list[str], dict[str, np.ndarray]]:
    from mekit.intensity.targets import soft_labels

    df = table.df.set_index("sample_id")
    classes = sorted({str(v) for v in df.loc[ids, "label"].dropna()})
    return classes, {sid: soft_labels(df.loc[sid], classes) for sid in ids}


def _is_stills(table: Any) -> bool:
    """Whether a table holds still images (one rating each) rather than clips; a mix is refused,
    since one model cannot read a per-image descriptor and a per-frame curve at once."""
    media = set(table.df["media"].astype(str))
    if "image" not in media:
        return False
    if media != {"image"}:
        raise DataError("the dataset mixes still images with clips; an intensity run reads either images "
                        "(one rating each) or clips (a curve each)", value=sorted(media),
                        expected="media 'image' only, or clips only")
    return True


def check_stills(cfg: ExperimentConfig, s: IntensitySettings) -> None:
    """What an intensity run on still images needs: a per-image target, and a classical regressor
    on image features or a 2-D CNN on the face crops."""
    if s.per_frame:
        raise ConfigError(f"intensity.source {s.source!r} gives a curve per frame, and still images have one "
                          "frame; use source 'rating' (a numeric column such as annotations.csv's intensity) "
                          "or 'facs'")
    if (cfg.model.name not in REGRESSORS or cfg.model.name == "position_prior") and not _still_net(cfg.model.name, s):
        raise ConfigError(f"model {cfg.model.name!r}: still images are rated by a classical regressor on "
                          f"image features ({', '.join(n for n in REGRESSORS.names() if n != 'position_prior')}) "
                          f"or by a 2-D CNN on the face crops ({', '.join(StillRegressorNet.models())})")


def check_clips(cfg: ExperimentConfig, s: IntensitySettings) -> None:
    """What an intensity run on clips refuses: a still-image CNN (it has no use for a clip's frames)."""
    if _still_net(cfg.model.name, s):
        raise ConfigError(f"model {cfg.model.name!r} rates still images, and the dataset holds clips; per-clip "
                          f"targets ({s.source!r}) of clips are learned by the classical regressors "
                          f"({', '.join(n for n in REGRESSORS.names() if n != 'position_prior')})")


def image_features(table: Any, cfg: ExperimentConfig, s: IntensitySettings) -> Any:
    """The registered image features (``intensity.image_features``) of every still of ``table``: a
    :class:`mekit.features.base.FeatureSet`, through the same extractors classification uses."""
    from mekit.features import get_extractor

    return get_extractor(s.image_features)(table, cfg.preprocess, progress=False, **s.image_feature_params)


def still_inputs(table: Any, cfg: ExperimentConfig, s: IntensitySettings) -> Any:
    """What the configured model reads of each still of ``table``, as a FeatureSet: the image
    features for a classical regressor, or the aligned face crops (uint8 [N, image_size,
    image_size, 3], through the same face stage as every still) for a CNN."""
    if not _still_net(cfg.model.name, s):
        return image_features(table, cfg, s)
    from mekit.features.base import FeatureSet
    from mekit.features.extractors import face_crops

    ids, crops, skipped = face_crops(table, cfg.preprocess, False, "apex", s.image_size)
    return FeatureSet(ids, crops, skipped)


def _fit_still(cfg: ExperimentConfig, s: IntensitySettings, X: np.ndarray, y: np.ndarray, groups: np.ndarray,
               seed: int, fdir: Path | None = None) -> Any:
    """A fitted still-image model: a classical regressor on image features, or a CNN on the face crops."""
    if _still_net(cfg.model.name, s):
        net = StillRegressorNet(cfg.model.name, cfg.model.params, s, seed, compute=cfg.compute, checkpoint_dir=fdir)
        return net.fit(X, y, groups)
    return _fit_rows(cfg, cfg.model.name, X, y, groups, seed)


class Intensity:
    """The intensity task (see the module docstring and :mod:`mekit.tasks.base`)."""

    name = "intensity"
    inputs_stage = "inputs"

    @staticmethod
    def fold(job: FoldJob, st: dict[str, Any]) -> tuple[int, tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]]:
        return _intensity_fold(job, st)

    @staticmethod
    def read_fold(fdir: Path) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]:
        return _read_intensity_fold(fdir)

    def check(self, cfg: ExperimentConfig) -> IntensitySettings:
        # validate_config, which runs just before, has made check_config's checks already
        return IntensitySettings.from_config(cfg.intensity)

    def neural(self, cfg: ExperimentConfig) -> bool:
        return cfg.model.name not in REGRESSORS

    def describe(self, cfg: ExperimentConfig) -> str:
        s = IntensitySettings.from_config(cfg.intensity)
        return (f"intensity run {cfg.name}: model {cfg.model.name}, target {s.source}, protocol "
                f"{cfg.protocol.name}, seeds {list(cfg.protocol.seeds)}")

    def prepare(self, cfg: ExperimentConfig, s: IntensitySettings, table: Any) -> Prepared:
        stills = _is_stills(table)
        if stills:
            check_stills(cfg, s)
        else:
            check_clips(cfg, s)
        targets, no_target = clip_targets(table, s)
        skipped = dict(no_target)
        model_name = cfg.model.name
        with_target = table.subset([sid for sid in table.sample_ids if sid in targets])
        # progress=False: build_clip_inputs would draw its own bar over whatever display listens here
        with events.Stage(self.inputs_stage, None, model=model_name):
            if stills:
                inputs: Any = still_inputs(with_target, cfg, s)
                skipped.update(inputs.skipped)
                have = set(inputs.sample_ids)
            else:
                inputs, sk = build_clip_inputs(with_target, cfg.preprocess, s, _needs(model_name, s), progress=False)
                skipped.update(sk)
                have = set(inputs)
        usable = table.subset([sid for sid in table.sample_ids if sid in have])
        joint = s.classification_weight > 0
        classes, soft = _classes_and_soft(usable, usable.sample_ids) if joint and len(usable) else ([], {})
        state = {"cfg": cfg, "s": s, "stills": stills, "inputs": inputs, "targets": targets,
                 "df": usable.df.set_index("sample_id"), "joint": joint, "classes": classes, "soft": soft,
                 "first_seed": cfg.protocol.seeds[0]}
        # the targets join the resume stamp: a rating edited in annotations.csv changes no file the
        # table fingerprint reads, and must not leave folds fitted on the old rating in use
        return Prepared(usable, state, skipped, {sid: "targets" for sid in no_target},
                        stamp_extra={k: targets[k] for k in sorted(targets)})

    def nothing_usable(self, cfg: ExperimentConfig, prepared: Prepared, excluded: list[dict[str, str]]) -> DataError:
        stills = prepared.state["stills"]
        return DataError(f"no {'image' if stills else 'clip'} has both an intensity target and readable "
                         f"{'features' if stills else 'frames'}", value=dict(list(prepared.skipped.items())[:3]),
                         expected="samples with media and annotations")

    def summarise(self, cfg: ExperimentConfig, s: IntensitySettings, prepared: Prepared, protocol: Any,
                  results: list[Any]) -> IntensityResult:
        predictions = pd.concat([r[0] for r in results], ignore_index=True)
        selections = [r[1] for r in results]
        class_rows = [r[2] for r in results if len(r[2])]
        metrics, clip_table = summarise(predictions, cfg, s, protocol, selections, stills=prepared.state["stills"])
        if not s.per_frame:
            labels = prepared.state["df"]["label"] if "label" in prepared.state["df"].columns else None
            metrics["per_class"] = per_class_metrics(clip_table, labels)
            if metrics["per_class"] and not prepared.state["joint"]:  # a joint run joins its own label column
                clip_table.insert(2, "label", clip_table["sample_id"].map(labels.astype(str)))
        if prepared.state["joint"] and class_rows:
            from mekit.evaluation.metrics import classification_metrics

            cr = pd.concat(class_rows, ignore_index=True)
            metrics["classification"] = classification_metrics(cr["true"], cr["pred"], prepared.state["classes"])
            clip_table = clip_table.merge(cr.rename(columns={"true": "label", "pred": "pred_label"}),
                                          on="sample_id", how="left")
        return IntensityResult(cfg, predictions, metrics, clip_table)

    def write_report(self, result: IntensityResult, out_dir: Path, table: Any) -> Path:
        return write_intensity_report(result, out_dir)

    def headline(self, result: IntensityResult) -> str:
        return f"MAE {result.metrics.get('mae', float('nan')):.3f}"

    def summary_line(self, result: IntensityResult) -> str:
        return summary_line(result)


TASK = Intensity()


# -- one fold (the unit of work the shared fold loop runs, here or in a forked worker) ---------------------
#: identifier columns of a saved fold, read back as strings (a subject "006" stays "006")
_ID_COLUMNS = ("sample_id", "subject", "fold", "true", "pred_label")


def _intensity_fold(job: FoldJob,
                    st: dict[str, Any]) -> tuple[int, tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]]:
    """Fit one fold on its training subjects, predict every held-out sample (every frame of a
    held-out clip), save the fold when the run has a folder and return ``(index, (rows,
    selection, classification rows))``. Every input comes from ``st`` (built by
    :meth:`Intensity.prepare`); the models are seeded from the job's seed alone."""
    i, seed, fold, fdir = job
    cfg, s, df, targets, inputs = st["cfg"], st["s"], st["df"], st["targets"], st["inputs"]
    model_name = cfg.model.name
    tr, te = list(fold.train_ids), list(fold.test_ids)
    subj_tr = [str(df.at[k, "subject"]) for k in tr]
    class_rows: list[dict[str, Any]] = []
    if st["stills"]:
        model = _fit_still(cfg, s, inputs.take(tr), np.array([float(targets[k]) for k in tr]), np.asarray(subj_tr),
                           seed, fdir)
        pred = np.clip(model.predict(inputs.take(te)), 0.0, 1.0)
        rows = [pd.DataFrame({"sample_id": te, "subject": [str(df.at[k, "subject"]) for k in te],
                              "fold": fold.name, "seed": seed, "target": [float(targets[k]) for k in te],
                              "pred": pred})]
    else:
        tr_clips = [inputs[k] for k in tr]
        if s.per_frame:
            y_tr = [frame_values(targets[k], int(df.at[k, "onset"]), inputs[k].frames) for k in tr]
        else:
            y_tr = [float(targets[k]) for k in tr]
        sm = np.stack([st["soft"][k] for k in tr]) if st["joint"] else None
        model = _fit(cfg, s, model_name, tr_clips, y_tr, subj_tr, seed, sm, st["classes"], fdir)
        ref = (_fit(cfg, s, "position_prior", tr_clips, y_tr, subj_tr, seed)
               if s.per_frame and model_name != "position_prior" else None)
        rows = []
        for sid in te:
            rows.append(_test_rows(sid, df, inputs[sid], targets[sid], model, model_name, ref, s, fold.name, seed))
            if st["joint"] and seed == st["first_seed"]:
                p = model.predict_class(inputs[sid])
                class_rows.append({"sample_id": sid, "true": str(df.at[sid, "label"]),
                                   "pred": str(model.classes_[int(np.argmax(p))])})
    # through JSON once, so a fold computed now and one read back from disk give the same metrics.json
    sel = json.loads(json.dumps({"fold": fold.name, "seed": seed, **model.selection_}, default=_json_default))
    fold_df = pd.concat(rows, ignore_index=True)
    cls = pd.DataFrame(class_rows, columns=["sample_id", "true", "pred"])
    if fdir is not None:
        fdir.mkdir(parents=True, exist_ok=True)
        (fdir / "selection.json").write_text(json.dumps(sel))
        if len(cls):
            cls.to_csv(fdir / "classification.csv", index=False)
        save_fold_table(fold_df, fdir / "predictions.csv")  # last: its presence marks the fold done
        (fdir / "train_state.pt").unlink(missing_ok=True)  # finished: its training state is not needed
    return i, (fold_df, sel, cls)


def _read_intensity_fold(fdir: Path) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]:
    """A saved fold, exactly as :func:`_intensity_fold` returned it: identifiers as strings, every
    float as written (pandas' default parser reads back exactly the shortest repr ``to_csv``
    writes), so a resumed run writes the same predictions.csv (tested byte for byte)."""
    path = fdir / "predictions.csv"
    cols = pd.read_csv(path, nrows=0).columns
    ids = [c for c in cols if c in _ID_COLUMNS]
    # only numeric columns may hold missing values (an absent apex); an identifier "NA" stays "NA"
    rows = pd.read_csv(path, dtype={c: str for c in ids}, keep_default_na=False,
                       na_values={c: ["", "NaN", "nan"] for c in cols if c not in ids})
    cls_path = fdir / "classification.csv"
    cls = (pd.read_csv(cls_path, dtype=str, keep_default_na=False) if cls_path.exists()
           else pd.DataFrame(columns=["sample_id", "true", "pred"]))
    return rows, json.loads((fdir / "selection.json").read_text()), cls


def _fit_rows(cfg: ExperimentConfig, model_name: str, X: np.ndarray, y: np.ndarray, groups: np.ndarray,
              seed: int) -> FrameRegressor:
    """A classical regressor on one row per sample (still images), selection by inner
    subject-grouped CV on the training subjects (:class:`FrameRegressor`)."""
    return FrameRegressor(model_name, cfg.model.params, seed).fit(np.asarray(X, np.float32), y, groups)


def _test_rows(sid: str, df: pd.DataFrame, clip: ClipInput, target: Any, model: Any, model_name: str,
               ref: Any, s: IntensitySettings, fold: str, seed: int) -> pd.DataFrame:
    """Prediction rows of one held-out clip (annotations are joined here, after prediction)."""
    subject = str(df.at[sid, "subject"])
    ann = {k: (int(df.at[sid, k]) if pd.notna(df.at[sid, k]) else np.nan) for k in ("onset", "apex", "offset")}
    if not s.per_frame:
        pred = float(np.clip(model.predict(clip_vector(clip)[None])[0], 0.0, 1.0))
        return pd.DataFrame([{"sample_id": sid, "subject": subject, "fold": fold, "seed": seed,
                              "target": float(target), "pred": pred}])
    pred = _predict(model, model_name, clip, s)
    out = {"sample_id": sid, "subject": subject, "fold": fold, "seed": seed, "frame": clip.frames,
           "target": frame_values(target, ann["onset"], clip.frames), "pred": pred}
    if ref is not None:
        out["pred_position_prior"] = _predict(ref, "position_prior", clip, s)
    out.update({**ann, "end_on_disk": int(clip.frames[-1])})
    return pd.DataFrame(out)


# -- metrics ----------------------------------------------------------------------------------------------
def summarise(pred: pd.DataFrame, cfg: ExperimentConfig, s: IntensitySettings, protocol: Any,
              selections: list[dict[str, Any]], stills: bool = False) -> tuple[dict[str, Any], pd.DataFrame]:
    """metrics.json content and the per-clip (per-image, for ``stills``) table, from the
    predictions of all seeds."""
    from mekit.intensity.metrics import intensity_report, regression_metrics

    seeds = sorted(int(v) for v in pred["seed"].unique())
    first = pred[pred["seed"] == seeds[0]]
    if s.per_frame:
        m = intensity_report(first.drop(columns=["pred_position_prior"], errors="ignore"), s.peak_tolerance)
        if "pred_position_prior" in first.columns:
            r = intensity_report(first.drop(columns=["pred"]).rename(columns={"pred_position_prior": "pred"}),
                                 s.peak_tolerance)
            m["reference"] = {"position_prior": {k: r[k] for k in HEADLINE}}
        per_seed = {sd: intensity_report(pred[pred["seed"] == sd].drop(columns=["pred_position_prior"],
                                                                      errors="ignore"), s.peak_tolerance)
                    for sd in seeds} if len(seeds) > 1 else {}
        clips = _clip_table(first, m)
    else:
        m = regression_metrics(first["target"], first["pred"])
        m["peak_within_10pct"] = float("nan")  # no curve: per-clip targets have no peak frame
        m["n_clips"] = int(len(first))  # kept for stills too (one image = one sample), with unit saying which
        m["n_subjects"] = int(first["subject"].nunique())
        per_seed = {sd: regression_metrics(pred.loc[pred["seed"] == sd, "target"],
                                           pred.loc[pred["seed"] == sd, "pred"]) for sd in seeds} \
            if len(seeds) > 1 else {}
        clips = first[["sample_id", "subject", "fold", "target", "pred"]].copy()
    if per_seed:
        m["over_seeds"] = {k: {"mean": float(np.nanmean([per_seed[sd][k] for sd in seeds])),
                               "std": float(np.nanstd([per_seed[sd][k] for sd in seeds], ddof=1))}
                           for k in HEADLINE if k in per_seed[seeds[0]]}
    m.update({"task": "intensity", "protocol": protocol.name, "leaky": bool(protocol.leaky),
              "protocol_description": protocol.describe(), "seeds": seeds,
              "n_subjects": int(first["subject"].nunique()), "n_folds": int(first["fold"].nunique()),
              "target": {"source": s.source, "profile": s.profile if s.source == "timing" else None,
                         "sigma": s.sigma, "per_frame": s.per_frame},
              "unit": "image" if stills else "clip",
              "method": {"model": cfg.model.name, "features": _features_text(cfg, s, stills),
                         "flow": s.flow, "loss": None if cfg.model.name in REGRESSORS else s.loss,
                         "classification_weight": s.classification_weight, "smooth": s.smooth},
              "model_selection": STILLS_SELECTION_STATEMENT if stills else SELECTION_STATEMENT,
              "caveat": CAVEAT if s.per_frame else None,
              "selection_per_fold": selections})
    return m, clips


def per_class_metrics(samples: pd.DataFrame, labels: pd.Series | None) -> dict[str, dict[str, Any]]:
    """Regression metrics of per-sample targets (a rating per image or per clip) within each class
    of ``labels`` (sample_id -> label), first seed only: does the model order the intensity of the
    faces of one emotion, not only tell a strong emotion from a weak one. Empty where the table
    has no labels. A class with fewer than 3 scored samples has NaN correlations."""
    from mekit.intensity.metrics import regression_metrics

    if labels is None:
        return {}
    lab = samples["sample_id"].map(labels)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted({str(v) for v in lab.dropna()}):
        part = samples[lab.astype(str) == name]
        ok = np.isfinite(part["target"].to_numpy(np.float64)) & np.isfinite(part["pred"].to_numpy(np.float64))
        if ok.sum() == 0:
            continue
        m = regression_metrics(part["target"][ok], part["pred"][ok])
        if ok.sum() < 3:
            m.update({k: float("nan") for k in ("pearson", "spearman", "ccc", "icc")})
        out[name] = {k: m[k] for k in ("mae", "pearson", "spearman", "ccc", "n")}
    return out


def _features_text(cfg: ExperimentConfig, s: IntensitySettings, stills: bool) -> str | None:
    """What the model read, in words, for metrics.json and the report."""
    if stills and _still_net(cfg.model.name, s):
        return f"the aligned face crop at {s.image_size} px"
    if stills:
        params = "".join(f", {k}={v}" for k, v in sorted(s.image_feature_params.items()))
        return f"{s.image_features} of the image{' (' + params[2:] + ')' if params else ''}"
    if cfg.model.name in REGRESSORS and cfg.model.name != "position_prior":
        return "hoof (onset->frame flow)"
    return None


def _clip_table(first: pd.DataFrame, m: dict[str, Any]) -> pd.DataFrame:
    """One row per clip: peak of the predicted curve against the annotated apex, and errors."""
    peaks = m["peaks"]["per_clip"]
    rows = []
    for sid, c in first.groupby("sample_id", sort=True):
        t, p = c["target"].to_numpy(np.float64), c["pred"].to_numpy(np.float64)
        pk = peaks.get(str(sid), {})
        from mekit.intensity.metrics import regression_metrics

        rm = regression_metrics(t, p)
        rows.append({"sample_id": sid, "subject": c["subject"].iloc[0], "fold": c["fold"].iloc[0],
                     "n_frames": len(c), "onset": c["onset"].iloc[0], "apex": c["apex"].iloc[0],
                     "offset": c["offset"].iloc[0], "end_on_disk": c["end_on_disk"].iloc[0],
                     "peak_frame": pk.get("peak_frame"), "peak_value": pk.get("peak_value"),
                     "peak_error_frames": pk.get("error_frames"), "peak_error_fraction": pk.get("error_fraction"),
                     "peak_within_10pct": pk.get("within_10pct"), "mae": rm["mae"], "pearson": rm["pearson"],
                     "spearman": rm["spearman"], "mean_target": float(np.mean(t)), "mean_pred": float(np.mean(p))})
    return pd.DataFrame(rows)


def summary_line(result: IntensityResult) -> str:
    """One line (rich markup) of an intensity run's headline figures, for the CLI."""
    m = result.metrics
    parts = [f"[bold]{result.config.name}[/]: intensity, {m['protocol']} over {m['n_subjects']} subjects, "
             f"{m.get('n_clips', '-')} {m.get('unit', 'clip')}s"]
    figures = "  ".join(f"{k} {_fmt(m.get(k))}" for k in HEADLINE if k in m)
    ref = m.get("reference", {}).get("position_prior")
    tail = (f"  (position prior: MAE {_fmt(ref['mae'])}, Spearman {_fmt(ref['spearman'])})" if ref else "")
    return parts[0] + "\n" + figures + tail + f"  ({m['timing_s']['total']:.1f} s)"


# -- report -------------------------------------------------------------------------------------------------
def _fmt(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "-"
    return "n/a" if not np.isfinite(f) else f"{f:.3f}"


def intensity_markdown(m: dict[str, Any], cfg: ExperimentConfig, figures: list[str]) -> str:
    t = m["target"]
    unit = m.get("unit", "clip")  # metrics.json written before stills were supported has none
    target = t["source"] + (f" ({t['profile']} profile)" if t.get("profile") else "")
    lines = [f"# {cfg.name}", "",
             f"Task: continuous emotion intensity (0-1). Target: **{target}**"
             + (" per frame." if t["per_frame"] else f" per {unit}."),
             f"Protocol: **{m['protocol_description']}**, {m['n_folds']} folds, {m['n_subjects']} subjects, "
             f"{m.get('n_clips', '-')} {unit}s" + (f", {m.get('n_frames')} frames." if t["per_frame"] else "."),
             f"Method: model `{m['method']['model']}`" + (f", features {m['method']['features']}"
                                                           if m["method"]["features"] else "")
             + (f", flow `{m['method']['flow']}`" if unit == "clip" else "")
             + (f", loss `{m['method']['loss']}`" if m["method"]["loss"] else "")
             + (f", joint with classification (weight {m['method']['classification_weight']})"
                if m["method"]["classification_weight"] else "")
             + (f", curves smoothed with a Gaussian of {m['method']['smooth']} frames" if m["method"]["smooth"]
                and t["per_frame"] else "") + ".", ""]
    ref = m.get("reference", {}).get("position_prior")
    head = "| metric | model |" + (" position prior (reference) |" if ref else "")
    lines += [head, "|---|---|" + ("---|" if ref else "")]
    names = {"mae": "MAE", "rmse": "RMSE", "pearson": "Pearson r", "spearman": "Spearman rho",
             "ccc": "Lin's CCC", "icc": "ICC(3,1)", "peak_within_10pct": "peak within 10 % of the apex"}
    for k in HEADLINE:
        if k == "peak_within_10pct" and not t["per_frame"]:
            continue
        seeds = m.get("over_seeds", {}).get(k)
        cell = _fmt(m.get(k)) + (f" (seeds {seeds['mean']:.3f} ± {seeds['std']:.3f})" if seeds else "")
        lines.append(f"| {names[k]} | {cell} |" + (f" {_fmt(ref.get(k))} |" if ref else ""))
    if not t["per_frame"]:
        lines.append("")  # a paragraph straight after a table would be read as one more row
    if m.get("per_class"):
        lines += [f"Within each class (the {unit}s of one label only, first seed): does the model rank the "
                  "intensity of one emotion's faces, not only a strong emotion against a weak one.", "",
                  f"| class | {unit}s | MAE | Pearson r | Spearman rho | Lin's CCC |", "|---|---|---|---|---|---|"]
        lines += [f"| {k} | {v['n']} | {_fmt(v['mae'])} | {_fmt(v['pearson'])} | {_fmt(v['spearman'])} | "
                  f"{_fmt(v['ccc'])} |" for k, v in m["per_class"].items()]
        lines.append("")
    if t["per_frame"]:
        pc = m["per_clip"]
        lines += ["", "Frame-level metrics pool every frame of every held-out clip (first seed).", "",
                  "| per clip | MAE | Pearson | CCC |", "|---|---|---|---|",
                  f"| mean intensity of the clip (target vs predicted) | {_fmt(pc['mean'].get('mae'))} | "
                  f"{_fmt(pc['mean'].get('pearson'))} | {_fmt(pc['mean'].get('ccc'))} |",
                  f"| peak intensity of the clip | {_fmt(pc['peak'].get('mae'))} | {_fmt(pc['peak'].get('pearson'))} "
                  f"| {_fmt(pc['peak'].get('ccc'))} |",
                  f"| within each clip (mean over clips) | {_fmt(pc['within_clip'].get('mae'))} | "
                  f"{_fmt(pc['within_clip'].get('pearson'))} | {_fmt(pc['within_clip'].get('ccc'))} |", "",
                  f"Predicted peak vs annotated apex: mean absolute error {_fmt(m.get('mean_abs_peak_error_frames'))} "
                  f"frames (median {_fmt(m.get('median_abs_peak_error_frames'))}); "
                  f"{_fmt(m.get('peak_within_10pct'))} of clips peak within 10 % of the clip length of the apex. "
                  "Per-clip peak values and frames are in `clips.csv`.", ""]
        if "classification" in m:
            c = m["classification"]
            lines += [f"Joint classification head: UF1 {_fmt(c.get('uf1'))}, UAR {_fmt(c.get('uar'))}, "
                      f"accuracy {_fmt(c.get('accuracy'))}.", ""]
        lines += [f"**Caveat.** {m['caveat']}", ""]
    lines += [f"**Model selection.** {m['model_selection']}", ""]
    from mekit.evaluation.report import excluded_summary, resume_paragraph

    lines += [f"**Excluded.** {excluded_summary(m)}", ""]
    if m.get("resume"):
        lines += [resume_paragraph(m["resume"]), ""]
    for f in figures:
        lines += [f"![{Path(f).stem}]({f})", ""]
    return "\n".join(lines)


def write_intensity_report(result: IntensityResult, out: Path) -> Path:
    """Write the report folder of an intensity run (see the module docstring)."""
    from mekit.evaluation.report import run_environment

    cfg, m = result.config, result.metrics
    s = IntensitySettings.from_config(cfg.intensity)
    from mekit.paths import prepare_out_dir

    prepare_out_dir(out)
    result.predictions.to_csv(out / "predictions.csv", index=False)
    result.clips.to_csv(out / "clips.csv", index=False)
    pd.DataFrame(result.excluded, columns=["sample", "stage", "reason"]).to_csv(out / "excluded.csv", index=False)
    (out / "config.resolved.yaml").write_text(cfg.to_yaml())
    (out / "environment.json").write_text(json.dumps(run_environment(cfg, m.get("selection_per_fold")), indent=2))
    figures: list[str] = []
    if cfg.output.plots and s.per_frame:
        from mekit.intensity.plots import plot_intensity_grid

        first = result.predictions[result.predictions["seed"] == result.predictions["seed"].min()]
        cols = ["sample_id", "frame", "target", "pred", "onset", "apex", "offset"]
        for select, prefix in (("first", "curves"), ("worst", "curves_worst")):
            n = s.plot_clips if select == "first" else max(1, s.plot_clips // 2)
            paths = plot_intensity_grid(first[cols], out / "curves", max_clips=n, select=select, prefix=prefix)
            figures += [str(p.relative_to(out)) for p in paths]
    m["figures"] = figures
    (out / "metrics.json").write_text(json.dumps(m, indent=2, default=_json_default))
    (out / "report.md").write_text(intensity_markdown(m, cfg, figures))
    return out


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# -- trained models ---------------------------------------------------------------------------------------
def fit_intensity_bundle(config: ExperimentConfig, path: str | Path, progress: bool = True,
                         table: Any = None) -> Path:
    """Fit the config's intensity model on every usable clip and save it as a bundle.

    The bundle's meta carries ``task: "intensity"`` and the resolved ``intensity`` settings,
    so :func:`predict_curves` rebuilds the same inputs. Selection (inner CV or inner
    validation split) still uses only the clips given.
    """
    from mekit.data import load_dataset
    from mekit.engine.bundle import save_bundle

    cfg = config
    s = check_config(cfg)
    if table is None:
        table = load_dataset(cfg.data.loader, cfg.data.root, cfg.data.label_scheme, **cfg.data.options)
    targets, _ = clip_targets(table, s)
    if _is_stills(table):
        return _fit_stills_bundle(cfg, s, table, targets, path)
    clips, _ = build_clip_inputs(table.subset([sid for sid in table.sample_ids if sid in targets]),
                                 cfg.preprocess, s, _needs(cfg.model.name, s), progress)
    usable = table.subset([sid for sid in table.sample_ids if sid in clips])
    if len(usable) == 0:
        raise DataError("no clip has both an intensity target and readable frames")
    df = usable.df.set_index("sample_id")
    ids = usable.sample_ids
    if s.per_frame:
        y = [frame_values(targets[i], int(df.at[i, "onset"]), clips[i].frames) for i in ids]
    else:
        y = [float(targets[i]) for i in ids]
    joint = s.classification_weight > 0
    classes, soft = _classes_and_soft(usable, ids) if joint else ([], {})
    model = _fit(cfg, s, cfg.model.name, [clips[i] for i in ids], y, [str(df.at[i, "subject"]) for i in ids],
                 cfg.seed, np.stack([soft[i] for i in ids]) if joint else None, classes)
    return save_bundle(path, model, cfg, list(model.classes_),
                       extra={"task": "intensity", "intensity": s.to_dict(), "selection": model.selection_,
                              "n_clips": len(ids)})


def _fit_stills_bundle(cfg: ExperimentConfig, s: IntensitySettings, table: Any, targets: dict[str, Any],
                       path: str | Path) -> Path:
    """The still-image side of :func:`fit_intensity_bundle`: the regressor on the image features of
    every rated image (selection by inner subject-grouped CV, as in an experiment's folds)."""
    from mekit.engine.bundle import save_bundle

    check_stills(cfg, s)
    rated = table.subset([sid for sid in table.sample_ids if sid in targets])
    feats = still_inputs(rated, cfg, s)
    if not feats.sample_ids:
        raise DataError("no image has both an intensity rating and readable features",
                        value=dict(list(feats.skipped.items())[:3]), expected="images with annotations")
    df = rated.df.set_index("sample_id")
    ids = list(feats.sample_ids)
    model = _fit_still(cfg, s, feats.take(ids), np.array([float(targets[k]) for k in ids]),
                       np.array([str(df.at[k, "subject"]) for k in ids]), cfg.seed)
    return save_bundle(path, model, cfg, list(model.classes_),
                       extra={"task": "intensity", "intensity": s.to_dict(), "selection": model.selection_,
                              "unit": "image", "n_images": len(ids)})


def _predict_stills(model: Any, cfg: ExperimentConfig, s: IntensitySettings, table: Any) -> pd.DataFrame:
    """One row per image of ``table``: its predicted intensity (and its rating where the table has one)."""
    feats = still_inputs(table, cfg, s)
    for sid, why in feats.skipped.items():
        log.warning("predict_curves: %s left out: %s", sid, why)
    try:
        targets, _ = clip_targets(table, s)
    except (ConfigError, DataError):
        targets = {}
    ids = list(feats.sample_ids)
    df = table.df.set_index("sample_id")
    pred = np.clip(np.asarray(model.predict(feats.take(ids)), np.float64), 0.0, 1.0) if ids else np.zeros(0)
    out = pd.DataFrame({"sample_id": ids, "subject": [str(df.at[k, "subject"]) for k in ids],
                        "target": [float(targets[k]) if k in targets else np.nan for k in ids], "pred": pred})
    out.attrs["skipped"] = dict(feats.skipped)
    return out


def predict_curves(bundle: Any, table: Any, out_dir: str | Path | None = None) -> pd.DataFrame:
    """Per-frame intensity of every clip of ``table`` with an intensity bundle.

    ``bundle`` is a :class:`mekit.engine.bundle.Bundle` (or a path to one) whose meta says
    ``task: "intensity"``. Inputs are built exactly as in training, from the frames only (the
    table's apex and offset are never read for them). Returns one row per frame:
    ``sample_id, subject, frame, pred`` and ``target`` where the table's annotations give one
    (NaN otherwise), plus ``onset, apex, offset`` for plots. With ``out_dir``, writes
    ``intensity_predictions.csv`` and curve PNGs under ``out_dir/curves``. For a bundle trained
    on per-clip targets (facs, rating) the rows are per clip (no ``frame``) and no curves are drawn.
    """
    from mekit.config import from_dict
    from mekit.engine.bundle import load_bundle

    if not hasattr(bundle, "meta"):
        bundle = load_bundle(bundle)
    meta = bundle.meta
    if meta.get("task") != "intensity":
        raise ConfigError(f"bundle task is {meta.get('task', 'classification')!r}; predict_curves needs an "
                          "intensity bundle (trained with task: intensity)")
    cfg = from_dict(ExperimentConfig, meta["config"])
    s = IntensitySettings.from_config(meta.get("intensity") or cfg.intensity)
    name = cfg.model.name
    if meta.get("kind") == "neural":
        net = StillRegressorNet if meta.get("unit") == "image" else IntensityNet
        model: Any = net.from_fitted(bundle.model, s)
    else:
        model = bundle.model.model_
    if meta.get("unit") == "image":
        out = _predict_stills(model, cfg, s, table)
        if out_dir is not None:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            out.to_csv(Path(out_dir) / "intensity_predictions.csv", index=False)
        return out
    clips, skipped = build_clip_inputs(table, cfg.preprocess, s, _needs(name, s), progress=False)
    for sid, why in skipped.items():
        log.warning("predict_curves: %s left out: %s", sid, why)
    try:
        targets, _ = clip_targets(table, s)
    except (ConfigError, DataError):
        targets = {}
    df = table.df.set_index("sample_id")
    rows = []
    for sid in table.sample_ids:
        if sid not in clips:
            continue
        clip = clips[sid]
        subject = str(df.at[sid, "subject"])
        if not s.per_frame:
            pred = float(np.clip(model.predict(clip_vector(clip)[None])[0], 0.0, 1.0))
            rows.append(pd.DataFrame([{"sample_id": sid, "subject": subject,
                                       "target": float(targets[sid]) if sid in targets else np.nan, "pred": pred}]))
            continue
        pred = _predict(model, name, clip, s) if isinstance(model, IntensityNet) else \
            _predict_pipeline(model, name, clip, s)
        ann = {k: (int(df.at[sid, k]) if pd.notna(df.at[sid, k]) else np.nan) for k in ("onset", "apex", "offset")}
        tgt = frame_values(targets[sid], ann["onset"], clip.frames) if sid in targets \
            else np.full(len(clip.frames), np.nan)
        rows.append(pd.DataFrame({"sample_id": sid, "subject": subject, "frame": clip.frames, "target": tgt,
                                  "pred": pred, **ann}))
    cols = ["sample_id", "subject", "frame", "target", "pred", "onset", "apex", "offset"] if s.per_frame \
        else ["sample_id", "subject", "target", "pred"]
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        out.to_csv(out_dir / "intensity_predictions.csv", index=False)
        if s.per_frame and len(out):
            from mekit.intensity.plots import plot_intensity_grid

            plot_intensity_grid(out, out_dir / "curves", max_clips=max(len(clips), 1), prefix="curves")
    return out
