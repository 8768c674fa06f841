"""The training loop for every neural model family.

Honest by construction: early stopping and model selection use only an inner validation
split drawn from the TRAINING subjects of a fold (``selection="inner_val"``), or a fixed
epoch budget (``selection="fixed"``); the held-out fold is never seen while training.
Seeded and deterministic: the same seed and data give identical predictions.
Checkpoints are written after every epoch; a killed run resumes from the last
completed epoch of the fold it was in.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mekit.config import from_dict
from mekit.errors import ConfigError

log = logging.getLogger(__name__)


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


def _subject_val_split(groups: np.ndarray, frac: float, seed: int) -> np.ndarray:
    """Boolean mask of validation samples: whole subjects drawn from the training subjects."""
    subj = np.unique(groups)
    if len(subj) < 3:
        return np.zeros(len(groups), bool)
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(frac * len(subj))))
    val = rng.choice(subj, size=n_val, replace=False)
    return np.isin(groups, val)


class NeuralModel:
    """fit(X, y, groups) / predict_proba(X) over a registered torch model, like ClassicalModel."""

    def __init__(self, model: str, train: TrainConfig | dict | None = None, class_weight: Any = None,
                 seed: int = 0, checkpoint_dir: str | Path | None = None) -> None:
        from mekit.models import MODELS

        MODELS.get(model)
        self.model_name = model
        self.cfg = train if isinstance(train, TrainConfig) else TrainConfig.from_params(train or {})
        self.class_weight = class_weight
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

    # -- training ------------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> NeuralModel:
        import torch

        from mekit.engine.augment import AugmentConfig, augment_batch
        from mekit.engine.seed import cpu_threads, seed_everything

        seed_everything(self.seed, self.cfg.threads)
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
        if self.cfg.threads == 0:
            # Small networks run faster on one thread (thread start-up dominates their tiny
            # kernels, measured 15 s vs 0.2 s per backward pass under load); large ones use all cores.
            n_params = sum(p.numel() for p in model.parameters())
            torch.set_num_threads(1 if n_params < 1_000_000 else cpu_threads(0))
        kind = model.input_kind
        loss_fn = self._loss(y_idx[tr], n_classes)
        opt = torch.optim.AdamW(model.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        aug = from_dict(AugmentConfig, self.cfg.augment, "model.params.augment")
        gen = torch.Generator().manual_seed(self.seed)
        Xt = torch.as_tensor(np.ascontiguousarray(X), dtype=torch.float32)
        yt = torch.as_tensor(y_idx, dtype=torch.long)
        start, best, best_state, bad = 0, -np.inf, None, 0
        ckpt = self._ckpt_path()
        if ckpt is not None and ckpt.exists():
            state = torch.load(ckpt, weights_only=True)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            gen.set_state(state["gen"])
            torch.set_rng_state(state["torch_rng"])
            start, best, bad = int(state["epoch"]) + 1, float(state["best"]), int(state["bad"])
            best_state = state["best_state"] or None
            self.history_ = [dict(h) for h in state["history"]]
            log.info("resuming %s from epoch %d", ckpt, start)
        probs_w = None
        if self.cfg.balanced_sampler:
            counts = np.bincount(y_idx[tr], minlength=n_classes).astype(float)
            probs_w = torch.as_tensor(1.0 / counts[y_idx[tr]], dtype=torch.double)
        best_epoch = start - 1
        for epoch in range(start, self.cfg.epochs):
            for group in opt.param_groups:
                group["lr"] = self.cfg.lr_at(epoch)
            model.train()
            if probs_w is not None:
                order = torch.as_tensor(tr)[torch.multinomial(probs_w, len(tr), True, generator=gen)]
            else:
                order = torch.as_tensor(tr)[torch.randperm(len(tr), generator=gen)]
            total, n = 0.0, 0
            for i in range(0, len(order), self.cfg.batch_size):
                idx = order[i:i + self.cfg.batch_size]
                if len(idx) < 2 and len(order) > 2:
                    continue  # batch-norm cannot train on a single sample
                xb = augment_batch(Xt[idx], kind, aug, gen)
                loss = loss_fn(model(xb), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
                n += len(idx)
            rec = {"epoch": epoch, "lr": self.cfg.lr_at(epoch), "train_loss": total / max(n, 1)}
            if len(va):
                from sklearn.metrics import f1_score

                p = self._predict(model, Xt[va]).argmax(1)
                rec["val_uf1"] = float(f1_score(y_idx[va], p, average="macro"))
                if rec["val_uf1"] > best:
                    best, bad, best_epoch = rec["val_uf1"], 0, epoch
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    bad += 1
            self.history_.append(rec)
            if ckpt is not None:
                torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(),
                            "torch_rng": torch.get_rng_state(), "epoch": epoch, "best": best, "bad": bad,
                            "best_state": best_state or {}, "history": self.history_}, ckpt.with_suffix(".tmp"))
                ckpt.with_suffix(".tmp").replace(ckpt)
            if len(va) and bad >= self.cfg.patience:
                break
        if best_state is not None:
            model.load_state_dict(best_state)
            self.selection_ = {"method": f"early stopping on an inner validation split of "
                                         f"{len(np.unique(groups[va]))} training subjects (macro F1)",
                               "chosen": {"epoch": best_epoch, "val_uf1": round(best, 4)},
                               "validation_subjects": sorted(map(str, np.unique(groups[va])))}
        else:
            self.selection_ = {"method": f"fixed budget of {self.cfg.epochs} epochs (no selection)", "chosen": {}}
        self.model_ = model
        return self

    def _ckpt_path(self) -> Path | None:
        if self.checkpoint_dir is None:
            return None
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        return self.checkpoint_dir / "train_state.pt"

    @staticmethod
    def _predict(model, X, batch: int = 64) -> np.ndarray:
        import torch

        model.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(X), batch):
                out.append(torch.softmax(model(X[i:i + batch]), 1))
        return torch.cat(out).numpy() if out else np.zeros((0, len(model.get_classifier().weight)))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        import torch

        return self._predict(self.model_, torch.as_tensor(np.ascontiguousarray(X), dtype=torch.float32))

    def describe(self) -> dict[str, Any]:
        return {"model": self.model_name, "train": asdict(self.cfg)}
