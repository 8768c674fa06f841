"""The one epoch loop every neural trainer runs (classification, intensity, still-image ratings).

A trainer builds its model and says what a batch is; :func:`run_epochs` does the rest, the
same way for all of them:

- the optimiser (AdamW at ``TrainConfig.lr`` / ``weight_decay``) and the learning rate of each
  epoch (:meth:`TrainConfig.lr_at`: warm-up, then constant or cosine);
- the forward pass under the :class:`~mekit.engine.trainer.Runtime`'s autocast, the loss in
  float32 outside it, and the step with the Runtime's gradient scaling;
- early stopping on an inner validation metric (``patience`` epochs without a strict
  improvement), after which the best epoch's weights are restored;
- a checkpoint after every epoch when given a path, from which a killed fit resumes at the
  next epoch and reaches the result of an uninterrupted one (weights, optimiser, the loop's
  CPU generator, torch's RNG, gradient scaler, selection state, history and whatever state the
  trainer adds);
- one ``epoch`` event per epoch (:mod:`mekit.events`) and the history records
  ``{"epoch", "lr", "train_loss"[, <metric>]}``.

What stays with the trainer: the model, the validation split (:func:`subject_val_split` draws
whole TRAINING subjects, so the held-out fold never reaches it), how the epoch's examples are
drawn and batched, the loss and the validation metric. The loop never sees the data.

Randomness: the loop owns one CPU ``torch.Generator`` seeded with the trainer's seed and hands it
to the trainer's batch callable, which draws the epoch's order and augmentation from it; it is
saved in the checkpoint, so a resumed epoch draws exactly what the uninterrupted one drew.

This module imports neither torch nor the trainers at import time (the layering rule: engine
code below intensity and evaluation).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from mekit import events

if TYPE_CHECKING:
    from mekit.engine.trainer import Runtime, TrainConfig

log = logging.getLogger(__name__)

#: keys of the checkpoint the loop writes itself; a trainer's own state must use other names
_LOOP_KEYS = frozenset({"model", "opt", "gen", "torch_rng", "epoch", "best", "bad", "best_epoch", "best_state",
                        "history", "scaler"})


class Batch(NamedTuple):
    """One training batch: ``x`` goes to the model (already on the Runtime's device), ``target``
    to the loss, ``n`` examples weight its loss in the epoch's mean."""

    x: Any
    target: Any
    n: int


@dataclass
class LoopResult:
    """What :func:`run_epochs` did. ``best_epoch``/``best`` are the selected epoch (0-based) and
    its metric when a validation callable chose one (its weights are then the model's), else
    None; ``stopped_early``: the patience ran out before ``epochs``; ``start_epoch``: the epoch
    the fit began at (> 0 when resumed from a checkpoint)."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best: float | None = None
    stopped_early: bool = False
    start_epoch: int = 0

    @property
    def selected(self) -> bool:
        return self.best_epoch is not None


def checkpoint_file(folder: Path | None) -> Path | None:
    """Where a trainer checkpoints in ``folder`` (``train_state.pt``, the folder created), or None
    without a folder (no checkpoints)."""
    if folder is None:
        return None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "train_state.pt"


def selection_record(res: LoopResult, epochs: int, method: str, metric: str, val_groups: np.ndarray,
                     list_subjects: bool = True) -> dict[str, Any]:
    """A trainer's ``selection_``: ``"early stopping on <method> of an inner validation split of N
    training subjects"`` with the chosen epoch and its ``metric`` (and the validation subjects'
    names), or the fixed budget when nothing was selected."""
    if not res.selected:
        return {"method": f"fixed budget of {epochs} epochs (no selection)", "chosen": {}}
    subjects = sorted(map(str, np.unique(val_groups)))
    out: dict[str, Any] = {"method": method.format(n=len(subjects)),
                           "chosen": {"epoch": res.best_epoch, metric: round(float(res.best), 4)}}
    if list_subjects:
        out["validation_subjects"] = subjects
    return out


def subject_val_split(groups: np.ndarray, frac: float, seed: int) -> np.ndarray:
    """Boolean mask of the inner validation samples: ``round(frac * subjects)`` (at least one)
    whole subjects drawn, by ``seed``, from the subjects of ``groups`` (the TRAINING subjects of a
    fold). None with fewer than 3 subjects: one left to train on would be no fit at all."""
    subj = np.unique(groups)
    if len(subj) < 3:
        return np.zeros(len(groups), bool)
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(frac * len(subj))))
    val = rng.choice(subj, size=n_val, replace=False)
    return np.isin(groups, val)


def minibatches(order: Any, batch_size: int) -> Iterator[Any]:
    """Consecutive slices of ``batch_size`` rows of an epoch's ``order`` (a tensor or an array).
    A last slice of one example is dropped when the epoch has more than two: batch norm cannot
    train on a single example."""
    for i in range(0, len(order), batch_size):
        rows = order[i:i + batch_size]
        if len(rows) < 2 and len(order) > 2:
            continue
        yield rows


def begin_fit(seed: int, cfg: TrainConfig, rt: Runtime) -> None:
    """Seed everything and enforce the Runtime's determinism: the first thing a fit does, before
    the model is built (its initial weights come from the seeded global RNG)."""
    from mekit.engine.seed import seed_everything

    seed_everything(seed, cfg.threads)
    rt.enforce()


def choose_threads(model: Any, threads: int) -> None:
    """torch's CPU threads for ``model`` when ``threads`` is 0 (auto): one for a small network
    (thread start-up dominates its tiny kernels: measured 15 s vs 0.2 s per backward pass under
    load), all cores for a large one."""
    import torch

    from mekit.engine.seed import cpu_threads

    if threads == 0:
        n_params = sum(p.numel() for p in model.parameters())
        torch.set_num_threads(1 if n_params < 1_000_000 else cpu_threads(0))


def run_epochs(model: Any, cfg: TrainConfig, rt: Runtime, *, seed: int,
               batches: Callable[[int, Any], Iterable[Batch]],
               loss: Callable[[Any, Batch], Any],
               forward: Callable[[Any, Any], Any] | None = None,
               validate: Callable[[Any], float] | None = None,
               metric: str = "val", maximize: bool = True,
               checkpoint: str | Path | None = None,
               state: tuple[Callable[[], dict[str, Any]], Callable[[dict[str, Any]], None]] | None = None,
               ) -> LoopResult:
    """Train ``model`` (built, and moved with ``rt.model``) for ``cfg.epochs`` epochs.

    ``batches(epoch, gen)`` yields the epoch's :class:`Batch` es in training order, drawing
    any randomness from ``gen`` (the loop's CPU generator); ``forward(model, x)`` (default
    ``model(x)``) runs under autocast; ``loss(out, batch)`` returns the scalar loss, computed
    in float32 (bf16/fp16 outputs lose the small differences a loss averages). ``validate(model)``
    returns the inner validation ``metric`` (``maximize``: higher is better), called in eval mode
    without gradients after every epoch; None trains the full budget with no selection.
    ``checkpoint``: the file written after each epoch and resumed from when it exists.
    ``state``: ``(get, set)`` of the trainer's own resumable state (a dict of plain values or
    tensors saved beside the loop's; its keys must not be the loop's).
    """
    import torch

    forward = forward or (lambda m, x: m(x))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(int(seed))
    res = LoopResult()
    start, bad = 0, 0
    best = -np.inf if maximize else np.inf
    best_state: dict[str, Any] | None = None
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        saved = torch.load(ckpt, weights_only=True, map_location="cpu")
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        gen.set_state(saved["gen"])
        torch.set_rng_state(saved["torch_rng"])
        start, best, bad = int(saved["epoch"]) + 1, float(saved["best"]), int(saved["bad"])
        best_state = saved["best_state"] or None
        # (files written before best_epoch was saved: the last epoch, as the loop then assumed)
        res.best_epoch = int(saved.get("best_epoch", start - 1)) if best_state is not None else None
        res.history = [dict(h) for h in saved["history"]]
        if rt.scaler is not None and saved.get("scaler"):
            rt.scaler.load_state_dict(saved["scaler"])
        if state is not None:
            state[1]({k: v for k, v in saved.items() if k not in _LOOP_KEYS})
        log.info("resuming %s from epoch %d", ckpt, start)
    res.start_epoch = start
    # a checkpoint of a fit that had already stopped early resumes to the same stop
    stopped = validate is not None and 0 < start < cfg.epochs and bad >= cfg.patience
    for epoch in range(start, cfg.epochs if not stopped else start):
        lr = cfg.lr_at(epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        model.train()
        total, n = 0.0, 0
        for b in batches(epoch, gen):
            with rt.autocast():
                out = forward(model, b.x)
            value = loss(out, b)
            rt.step(value, opt)
            total += float(value.detach()) * b.n
            n += b.n
        rec = {"epoch": epoch, "lr": lr, "train_loss": total / max(n, 1)}
        if validate is not None:
            model.eval()
            with torch.no_grad():
                rec[metric] = float(validate(model))
            if rec[metric] > best if maximize else rec[metric] < best:
                best, bad, res.best_epoch = rec[metric], 0, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                bad += 1
        res.history.append(rec)
        events.emit("epoch", stage="train", epoch=epoch + 1, epochs=cfg.epochs, loss=rec["train_loss"],
                    val=rec.get(metric), lr=rec["lr"], metric=metric)
        if ckpt is not None:
            own = state[0]() if state is not None else {}
            clash = sorted(set(own) & _LOOP_KEYS)
            if clash:
                raise ValueError(f"trainer state keys {clash} are the training loop's own")
            tmp = ckpt.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(),
                        "torch_rng": torch.get_rng_state(), "epoch": epoch, "best": best, "bad": bad,
                        "best_epoch": res.best_epoch if res.best_epoch is not None else -1,
                        "best_state": best_state or {}, "history": res.history,
                        "scaler": rt.scaler.state_dict() if rt.scaler is not None else {}, **own}, tmp)
            tmp.replace(ckpt)
        if validate is not None and bad >= cfg.patience:
            stopped = epoch + 1 < cfg.epochs
            break
    res.stopped_early = bool(stopped)
    if best_state is not None:
        model.load_state_dict(best_state)
        res.best = float(best)
    else:
        res.best_epoch = None
    return res
