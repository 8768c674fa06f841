"""Training of every neural classification model, and what every neural trainer shares: the
training settings (:class:`TrainConfig`) and the device set-up (:class:`Runtime`).

The epochs themselves (optimiser, schedule, mixed precision, early stopping, checkpoints,
``epoch`` events) run in :func:`mekit.engine.loop.run_epochs`, the loop the intensity
trainers use too; :class:`NeuralModel` says what a classification batch, loss and validation
metric are.

Honest by construction: early stopping and model selection use only an inner validation
split drawn from the TRAINING subjects of a fold (``selection="inner_val"``), or a fixed
epoch budget (``selection="fixed"``); the held-out fold is never seen while training.
Seeded and deterministic: the same seed and data give identical predictions.
Checkpoints are written after every epoch; a killed run resumes from the last
completed epoch of the fold it was in.

Devices (``compute`` section, :class:`mekit.config.ComputeConfig`): the model and each batch
move to the resolved device; the data stay on the CPU and augmentation draws from a CPU
generator there, so the random stream (batch order, flips, resampling) is the same on every
device and only floating-point rounding differs between a CPU and a GPU run.
Each epoch emits an ``epoch`` event (:mod:`mekit.events`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mekit.config import ComputeConfig, from_dict
from mekit.engine.loop import (Batch, begin_fit, checkpoint_file, choose_threads, minibatches, run_epochs,
                               selection_record)
# the inner validation split, under the name the leakage audit patches
from mekit.engine.loop import subject_val_split as _subject_val_split
from mekit.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "constant"        # learning rate over epochs: "constant" or "cosine" (to 0 at the end)
    warmup_epochs: int = 0            # linear warm-up from lr/10 before the schedule
    selection: str = "inner_val"      # "inner_val" (early stopping on training subjects) or "fixed"
    val_fraction: float = 0.2         # share of TRAINING subjects held out for early stopping
    patience: int = 8
    loss: str = "cross_entropy"       # a name in mekit.imbalance.LOSSES
    loss_params: dict[str, Any] = field(default_factory=dict)
    balanced_sampler: bool = False    # draw batches with class-balanced probabilities
    augment: dict[str, Any] = field(default_factory=dict)  # AugmentConfig fields
    threads: int = 0
    model_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.schedule not in ("constant", "cosine"):
            raise ConfigError(f"model.params.schedule: {self.schedule!r}; expected 'constant' or 'cosine'")
        if self.selection not in ("inner_val", "fixed"):
            raise ConfigError(f"model.params.selection: {self.selection!r}; expected 'inner_val' or 'fixed'")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TrainConfig:
        return from_dict(cls, params, "model.params")

    def lr_at(self, epoch: int) -> float:
        """Learning rate of ``epoch`` (0-based) under ``schedule`` and ``warmup_epochs``: a closed
        form of the epoch, so a resumed run needs no scheduler state."""
        if epoch < self.warmup_epochs:
            return self.lr * (0.1 + 0.9 * epoch / max(self.warmup_epochs, 1))
        if self.schedule == "cosine":
            span = max(self.epochs - self.warmup_epochs, 1)
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - self.warmup_epochs) / span))
        return self.lr


def as_compute(compute: ComputeConfig | dict | None) -> ComputeConfig:
    if isinstance(compute, ComputeConfig):
        return compute
    return from_dict(ComputeConfig, compute or {}, "compute")


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(spec: str = "auto"):
    """The ``torch.device`` of a ``compute.device`` value; a device that is absent is one ConfigError."""
    import torch

    if spec == "auto":
        # CUDA first (the fastest where present), then Apple's MPS, then the CPU
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not _mps_available():
            raise ConfigError("compute.device: 'mps'; this machine has no Apple MPS device (use auto or cpu)")
        return torch.device("mps")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            build = "a CPU-only build of torch" if torch.version.cuda is None else "no CUDA device visible"
            raise ConfigError(f"compute.device: {spec!r}; this machine has {build} (use auto or cpu)")
        index = int(spec.split(":")[1]) if ":" in spec else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise ConfigError(f"compute.device: {spec!r}; this machine has {torch.cuda.device_count()} CUDA "
                              f"device(s), numbered from 0")
        return torch.device("cuda", index)
    raise ConfigError(f"compute.device: {spec!r}; expected auto, cpu, cuda, cuda:N or mps")


def device_kind(compute: ComputeConfig | dict | None) -> str:
    """``cuda``, ``mps`` or ``cpu``: where ``compute`` would run. Run folds serially when this is
    ``cuda``: a process forked after CUDA started cannot use it, and one GPU gains little from
    several folds at once."""
    return resolve_device(as_compute(compute).device).type


def check_compute(compute: ComputeConfig | dict | None) -> Any:
    """Resolve ``compute`` on this machine: its device, with the settings that device refuses as
    one ConfigError line (fp16 without CUDA, mixed precision on MPS)."""
    c = as_compute(compute)
    dev = resolve_device(c.device)
    if c.amp == "fp16" and dev.type != "cuda":
        raise ConfigError(f"compute.amp: 'fp16' needs a CUDA device (this run resolves to {dev.type}); "
                          "use bf16 or off")
    if c.amp != "off" and dev.type == "mps":
        raise ConfigError(f"compute.amp: {c.amp!r} is not supported on mps; use off")
    return dev


class Runtime:
    """What a training loop needs of ``compute``: the device, autocast, gradient scaling, memory
    layout and strict determinism, set up once per fit and undone after it."""

    def __init__(self, compute: ComputeConfig | dict | None, four_d_input: bool) -> None:
        import torch

        self.cfg = as_compute(compute)
        self.device = check_compute(self.cfg)
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.cfg.amp)
        cl = self.cfg.channels_last
        # channels-last pays on CUDA tensor cores; on the CPU it mostly adds layout conversions
        self.channels_last = four_d_input and (cl == "on" or (cl == "auto" and self.device.type == "cuda"))
        self.scaler = torch.amp.GradScaler("cuda") if self.cfg.amp == "fp16" else None
        self._prev: tuple[bool, bool] | None = None

    def describe(self) -> dict[str, Any]:
        name = str(self.device)
        if self.device.type == "cuda":
            import torch

            name = f"{name} ({torch.cuda.get_device_name(self.device)})"
        return {"device": name, "amp": self.cfg.amp, "channels_last": self.channels_last,
                "deterministic": self.cfg.deterministic}

    def __enter__(self) -> Runtime:
        import os

        import torch

        if self.cfg.deterministic:
            if self.device.type == "cuda":
                # cuBLAS reads this when it creates its handle; without it deterministic matmuls raise
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
                torch.backends.cudnn.benchmark = False
            self._prev = (torch.are_deterministic_algorithms_enabled(),
                          torch.is_deterministic_algorithms_warn_only_enabled())
        self.enforce()
        return self

    def enforce(self) -> None:
        """Strict determinism, when asked for: call after seed_everything, which leaves torch
        warning (not raising) about nondeterministic operations."""
        import torch

        if self.cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=False)

    def __exit__(self, *exc: object) -> None:
        import torch

        if self._prev is not None:
            torch.use_deterministic_algorithms(self._prev[0], warn_only=self._prev[1])
            self._prev = None

    def model(self, model):
        import torch

        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def batch(self, x):
        import torch

        x = x.to(self.device, non_blocking=self.device.type == "cuda")
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def autocast(self):
        import contextlib

        import torch

        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def step(self, loss, opt) -> None:
        opt.zero_grad()
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(opt)
            self.scaler.update()
        else:
            loss.backward()
            opt.step()


def epoch_seed(seed: int, epoch: int) -> int:
    """A seed for one epoch's resampling, fixed by (seed, epoch), so a resumed run draws the same."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0])


class NeuralModel:
    """fit(X, y, groups) / predict_proba(X) over a registered torch model, like ClassicalModel."""

    def __init__(self, model: str, train: TrainConfig | dict | None = None, class_weight: Any = None,
                 seed: int = 0, checkpoint_dir: str | Path | None = None, sampler: str | None = None,
                 sampler_params: dict[str, Any] | None = None,
                 compute: ComputeConfig | dict | None = None) -> None:
        from mekit.models import MODELS

        MODELS.get(model)
        self.model_name = model
        self.cfg = train if isinstance(train, TrainConfig) else TrainConfig.from_params(train or {})
        self.class_weight = class_weight
        check_neural_sampler(sampler, model)
        if sampler is not None and self.cfg.balanced_sampler:
            raise ConfigError(f"imbalance.sampler: {sampler!r} and model.params.balanced_sampler both resample the "
                              "training batches; keep one")
        self.sampler = sampler
        self.sampler_params = dict(sampler_params or {})
        self.compute = as_compute(compute)
        self.seed = int(seed)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.selection_: dict[str, Any] = {}
        self.history_: list[dict[str, float]] = []

    # -- building ------------------------------------------------------------------------
    def _build(self, n_classes: int):
        from mekit.models import build_model

        return build_model(self.model_name, num_classes=n_classes, **self.cfg.model_params)

    def _loss(self, y_idx: np.ndarray, n_classes: int):
        import torch

        from mekit.imbalance import build_loss, class_weights

        params = dict(self.cfg.loss_params)
        if self.class_weight is not None and "weight" not in params:
            mode = self.class_weight
            if isinstance(mode, dict):  # class name -> weight, to class index -> weight
                mode = {int(np.searchsorted(self.classes_, k)): v for k, v in mode.items()}
            w = class_weights(y_idx, mode=mode, classes=np.arange(n_classes))
            params["weight"] = torch.as_tensor(np.asarray(w), dtype=torch.float32)
        return build_loss(self.cfg.loss, y_train=y_idx, num_classes=n_classes, **params)

    def _epoch_order(self, tr: np.ndarray, y_tr: np.ndarray, epoch: int, gen, probs_w) -> Any:
        """The training rows of one epoch, in the order they are drawn: a shuffle of ``tr``, a
        class-balanced draw (``balanced_sampler``) or a shuffle of the rows an index sampler
        (``imbalance.sampler``) resamples from the training labels, seeded by (seed, epoch)."""
        import torch

        if probs_w is not None:
            return torch.as_tensor(tr)[torch.multinomial(probs_w, len(tr), True, generator=gen)]
        if self.sampler is None:
            return torch.as_tensor(tr)[torch.randperm(len(tr), generator=gen)]
        from mekit.imbalance import get_sampler

        smp = get_sampler(self.sampler, seed=epoch_seed(self.seed, epoch), **self.sampler_params)
        if hasattr(smp, "draw"):  # class_balanced: its own per-epoch stream
            smp.random_state = self.seed
            rows = smp.fit(None, y_tr).draw(epoch)
        else:
            smp.fit_resample(None, y_tr)
            rows = smp.sample_indices_
        rows = torch.as_tensor(np.asarray(tr)[rows])
        return rows[torch.randperm(len(rows), generator=gen)]

    # -- training ------------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> NeuralModel:
        with Runtime(self.compute, four_d_input=self._four_d()) as rt:
            return self._fit(X, y, groups, rt)

    def _four_d(self) -> bool:
        from mekit.models import MODELS

        return MODELS.meta(self.model_name)["input"] in ("flow", "dual_flow", "image", "roi_flow")

    def _fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray, rt: Runtime) -> NeuralModel:
        """One fit through :func:`mekit.engine.loop.run_epochs`: this method draws the inner
        validation split, builds the model and loss and says what a batch is (rows of the
        epoch's order, augmented); the loop does the epochs, selection and checkpoints."""
        import torch

        from mekit.engine.augment import AugmentConfig, augment_batch

        begin_fit(self.seed, self.cfg, rt)
        self.epoch_class_counts_: list[list[int]] = []
        self.classes_ = np.array(sorted(np.unique(y)))
        n_classes = len(self.classes_)
        y_idx = np.searchsorted(self.classes_, y)
        val_mask = (_subject_val_split(groups, self.cfg.val_fraction, self.seed)
                    if self.cfg.selection == "inner_val" else np.zeros(len(y), bool))
        if val_mask.all() or (val_mask.any() and len(np.unique(y_idx[~val_mask])) < 2):
            val_mask[:] = False
        tr = np.flatnonzero(~val_mask)
        va = np.flatnonzero(val_mask)
        model = self._build(n_classes)
        choose_threads(model, self.cfg.threads)
        kind = model.input_kind
        model = rt.model(model)
        loss_fn = self._loss(y_idx[tr], n_classes).to(rt.device)
        aug = from_dict(AugmentConfig, self.cfg.augment, "model.params.augment")
        Xt = torch.as_tensor(np.ascontiguousarray(X), dtype=torch.float32)
        yt = torch.as_tensor(y_idx, dtype=torch.long)
        probs_w = None
        if self.cfg.balanced_sampler:
            counts = np.bincount(y_idx[tr], minlength=n_classes).astype(float)
            probs_w = torch.as_tensor(1.0 / counts[y_idx[tr]], dtype=torch.double)

        def batches(epoch: int, gen: Any):
            order = self._epoch_order(tr, y_idx[tr], epoch, gen, probs_w)
            seen = np.zeros(n_classes, np.int64)
            for idx in minibatches(order, self.cfg.batch_size):
                yb = yt[idx]
                seen += np.bincount(yb.numpy(), minlength=n_classes)
                yield Batch(rt.batch(augment_batch(Xt[idx], kind, aug, gen)), yb.to(rt.device), len(idx))
            # (runs once the epoch's last batch is drawn) the labels training actually drew this
            # epoch, after any resampling; apart from history_, whose records stay plain numbers
            # (the runner writes them as learning curves)
            self.epoch_class_counts_.append(seen.tolist())

        def validate(m: Any) -> float:
            from sklearn.metrics import f1_score

            return float(f1_score(y_idx[va], self._predict(m, Xt[va], rt=rt).argmax(1), average="macro"))

        def set_state(saved: dict[str, Any]) -> None:
            self.epoch_class_counts_ = [list(c) for c in saved.get("class_counts", [])]

        res = run_epochs(model, self.cfg, rt, seed=self.seed, batches=batches,
                         loss=lambda logits, b: loss_fn(logits.float(), b.target),
                         validate=validate if len(va) else None, metric="val_uf1", maximize=True,
                         checkpoint=self._ckpt_path(),
                         state=(lambda: {"class_counts": self.epoch_class_counts_}, set_state))
        self.history_ = res.history
        self.selection_ = selection_record(res, self.cfg.epochs, "early stopping on an inner validation split of {n} "
                                           "training subjects (macro F1)", "val_uf1", groups[va])
        if self.sampler is not None:
            drawn = self.epoch_class_counts_[-1] if self.epoch_class_counts_ else None
            self.selection_["resampling"] = {
                "sampler": self.sampler, "params": dict(self.sampler_params),
                "how": "the training rows of each epoch resampled by index (seeded by seed and epoch); "
                       "the inner validation split and the held-out fold are never resampled",
                "last_epoch_class_counts": dict(zip(map(str, self.classes_), drawn or []))}
        self.runtime_ = rt.describe()
        self.selection_["compute"] = self.runtime_
        self._rt = rt
        self.model_ = model
        return self

    def _ckpt_path(self) -> Path | None:
        return checkpoint_file(self.checkpoint_dir)

    @staticmethod
    def _predict(model, X, batch: int = 64, rt: Runtime | None = None) -> np.ndarray:
        import torch

        model.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(X), batch):
                xb = X[i:i + batch]
                if rt is None:  # a model on the CPU in float32
                    out.append(torch.softmax(model(xb), 1))
                    continue
                with rt.autocast():
                    logits = model(rt.batch(xb))
                out.append(torch.softmax(logits.float(), 1).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, len(model.get_classifier().weight)))

    def to(self, compute: ComputeConfig | dict | str | None) -> NeuralModel:
        """Run a fitted model on another device (``compute`` or a ``compute.device`` value)."""
        self.compute = as_compute({"device": compute} if isinstance(compute, str) else compute)
        self._rt = Runtime(self.compute, four_d_input=self._four_d())
        self.model_ = self._rt.model(self.model_)
        self.runtime_ = self._rt.describe()
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        import torch

        rt = getattr(self, "_rt", None)
        return self._predict(self.model_, torch.as_tensor(np.ascontiguousarray(X), dtype=torch.float32), rt=rt)

    def describe(self) -> dict[str, Any]:
        """The training settings (what a bundle stores to rebuild the model); ``compute`` is where
        it ran, which no bundle needs to rebuild it."""
        d = {"model": self.model_name, "train": asdict(self.cfg), "compute": asdict(self.compute)}
        if getattr(self, "runtime_", None):
            d["runtime"] = dict(self.runtime_)
        if self.sampler is not None:
            d["sampler"] = {"name": self.sampler, "params": dict(self.sampler_params)}
        return d


def check_neural_sampler(sampler: str | None, model: str) -> None:
    """Refuse, as one ConfigError line, an ``imbalance.sampler`` a neural model cannot apply."""
    if sampler is None:
        return
    from mekit.imbalance import SAMPLERS

    try:
        meta = SAMPLERS.meta(sampler)
    except ConfigError as e:
        raise ConfigError(f"imbalance.sampler: {e}") from None
    if not meta.get("indices"):
        raise ConfigError(f"imbalance.sampler: {sampler!r} synthesises new feature vectors by interpolation, which "
                          f"has no meaning for the images or flow stacks neural model {model!r} reads; use an index "
                          "sampler (random_over, random_under, class_balanced)")
